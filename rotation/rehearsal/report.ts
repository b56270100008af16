import type { SimulationOptions, SimulationResult } from "./simulation";

/**
 * What a rehearsal prints and writes. Key ids appear (they name keys in AWS and are not secret);
 * secret access keys never do: nothing here reads them.
 */

/** Rows of the table of runs that changed something or failed. */
export function changeTable(result: SimulationResult): string {
    const rows: string[][] = [["time", "set", "step", "keys", "target key"]];
    for (const run of result.runs) {
        if (run.operations.length === 0 && run.ok) continue;
        for (const [name, set] of Object.entries(run.sets)) {
            const step = run.ok ? set.step : `failed${run.faults.length ? ` (${run.faults.join("; ")})` : ""}`;
            const keys = set.keys.map((k) => `${k.generation ? `g${k.generation} ` : ""}${k.accessKeyId} ${k.status}`).join(", ");
            rows.push([run.at.replace(".000Z", "Z") + (run.twinOf !== undefined ? " (twin)" : ""), name, step, keys || "-", set.targetKey ?? "-"]);
        }
    }
    if (rows.length === 1) return "No run changed anything.\n";
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    return rows.map((r, n) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd() + (n === 0 ? "\n" + widths.map((w) => "-".repeat(w)).join("  ") : "")).join("\n") + "\n";
}

/** The summary block: the numbers a person decides on. */
export function summaryText(result: SimulationResult, options: Pick<SimulationOptions, "stack">): string {
    const s = result.summary;
    const lines = [
        `Rehearsal of stack "${options.stack}": ${s.runs} runs (${result.scheduled} scheduled, ${result.missed} missed, ${s.runsFailed} failed) in ${(result.elapsedMs / 1000).toFixed(1)} s (${s.runsPerSecond} runs/s)`,
        `  keys minted:                          ${s.keysMinted}`,
        `  oldest key age seen in a target:      ${days(s.oldestTargetKeyAgeHours)}`,
        `  longest time with two active keys:    ${days(s.longestTwoActiveHours)}`,
        `  runs with no change:                  ${s.runsWithoutChange}`,
        `  runs answered from an earlier run:    ${s.runsSkipped} (inputs repeated; --no-skip evaluates every run)`,
        `  CI jobs run / broken:                 ${result.jobs.started} / ${s.brokenJobs}`,
        ...(result.jobs.rogueUses ? [`  rogue consumer uses / failures:       ${result.jobs.rogueUses} / ${result.jobs.rogueFailures}`] : []),
        ...(s.tornTargets ? [`  targets left with a mismatched pair:  ${s.tornTargets} (after failed runs)`] : []),
        `  invariant checks:                     ${Object.entries(result.checks)
            .map(([id, c]) => `${id} ${c.checked}`)
            .join(", ")}`,
        `  invariant violations:                 ${s.violationCount}`,
    ];
    for (const v of s.violations.slice(0, 20)) lines.push(`    ${v.invariant} at ${v.at} (run ${v.run}): ${v.message}`);
    if (s.violations.length > 20) lines.push(`    ... ${s.violationCount - 20} more (see --json)`);
    return lines.join("\n") + "\n";
}

function days(hours: number): string {
    return hours >= 48 ? `${(hours / 24).toFixed(1)} days (${hours} h)` : `${hours} h`;
}

/** Version of the JSON report; bumped on any incompatible change (docs/rehearsal.md "JSON report"). */
export const reportVersion = 1;

/** The JSON report (docs/rehearsal.md documents it: other tools read it). */
export function jsonReport(result: SimulationResult, options: SimulationOptions): unknown {
    return {
        version: reportVersion,
        stack: options.stack,
        options: {
            start: new Date(options.start).toISOString(),
            days: options.durationMs / 86_400_000,
            cadenceMinutes: options.cadenceMs / 60_000,
            seed: options.seed,
            requests: (options.requests ?? []).map((r) => ({ at: new Date(r.at).toISOString(), mode: r.mode })),
            faults: options.faults ?? {},
            jobs: options.jobs ?? {},
        },
        summary: {
            ...result.summary,
            scheduled: result.scheduled,
            missed: result.missed,
            elapsedMs: result.elapsedMs,
            checks: result.checks,
        },
        runs: result.runs,
        keys: result.keys,
        jobs: result.jobs,
    };
}
