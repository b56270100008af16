/**
 * The report of a rotation: per set, the steps each run took, keys and phases before and after,
 * and one summary sentence.
 */
import type { SetState } from "../core/state";
import type { RotateOptions, RotationOutcome, RotationReport, SetReport, StepTaken } from "./automation-types";
import type { ParsedOutputs } from "./stack";

export function buildReport(args: {
    options: RotateOptions;
    requestId?: string;
    started: Date;
    finished: Date;
    before: ParsedOutputs;
    runs: ParsedOutputs[];
    outcome: RotationOutcome;
    warnings: string[];
}): RotationReport {
    const { options, requestId, started, finished, before, runs, outcome } = args;
    const last = runs.at(-1);
    const names = [...new Set([...Object.keys(before.state?.sets ?? {}), ...Object.keys(last?.state?.sets ?? {})])];
    const sets = names.map((name): SetReport => {
        const was = before.state?.sets[name];
        const is = last?.state?.sets[name];
        const steps: StepTaken[] = [];
        const warnings = new Set<string>();
        for (const run of runs) {
            const summary = run.summaries[name];
            if (!summary) continue;
            if (summary.step !== "none") steps.push({ step: summary.step, reason: summary.reason, at: run.state?.asOf ?? "" });
            for (const w of summary.warnings) warnings.add(w);
        }
        const requested = options.mode === "scheduled" || !options.sets || options.sets.includes(name);
        return {
            name,
            requested,
            phaseBefore: was?.phase,
            phaseAfter: is?.phase ?? was?.phase,
            steps,
            keyBefore: before.summaries[name]?.accessKeyId ?? currentKey(was),
            keyAfter: last?.summaries[name]?.accessKeyId ?? currentKey(is ?? was),
            keysBefore: was?.keys.map((k) => k.accessKeyId) ?? [],
            keysAfter: (is ?? was)?.keys.map((k) => k.accessKeyId) ?? [],
            targets: last?.summaries[name]?.targets ?? before.summaries[name]?.targets ?? [],
            warnings: [...warnings],
            next: last?.summaries[name]?.next ?? before.summaries[name]?.next,
            paused: last?.summaries[name]?.paused ?? before.summaries[name]?.paused ?? false,
            ...(requestId && requested ? { requestComplete: is ? isComplete(is, requestId) : false } : {}),
        };
    });
    return {
        stack: options.stack,
        mode: options.mode,
        ...(requestId ? { requestId } : {}),
        reason: options.reason,
        requestedBy: options.requestedBy,
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        durationMs: finished.getTime() - started.getTime(),
        runs: runs.length,
        outcome,
        summary: summarize(options, outcome, sets, runs.length),
        sets,
        warnings: args.warnings,
    };
}

function currentKey(state: SetState | undefined): string | undefined {
    return state && [...state.keys].reverse().find((k) => k.status === "Active")?.accessKeyId;
}

function summarize(options: RotateOptions, outcome: RotationOutcome, sets: SetReport[], runs: number): string {
    const stepCount = sets.reduce((n, s) => n + s.steps.length, 0);
    const did = `${stepCount} step${stepCount === 1 ? "" : "s"} in ${runs} run${runs === 1 ? "" : "s"}`;
    if (options.mode === "scheduled") return `Scheduled run of \`${options.stack}\`: ${did}.`;
    const label = `${options.mode === "request" ? "Rotation request" : options.mode === "emergency" ? "Emergency rotation" : "Revocation"} of \`${options.stack}\``;
    if (outcome === "done") return `${label} complete: every old key is deleted (${did}).`;
    const pending = sets.filter((s) => s.requested && s.requestComplete === false);
    const waits = pending.map((s) => `${s.name}: ${s.paused ? "paused" : s.next?.dueAt ? `${s.next.step} due at ${s.next.dueAt}` : `${s.next?.step ?? "next step"} at the next run`}`);
    if (outcome === "waiting") return `${label}: did what is due now (${did}); scheduled runs finish it (${waits.join("; ")}).`;
    return `${label} did not finish (${did}); still pending: ${waits.join("; ")}.`;
}

/** Whether a set finished request `requestId`. */
export function isComplete(set: SetState, requestId: string): boolean {
    return set.lastRequest === requestId && !set.request;
}
