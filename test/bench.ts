/**
 * Benchmark: how the program scales with the number of targets, and what a run with nothing due
 * costs. Run with `npm run bench`. Targets (checked here, never in timed tests):
 *   - a run with nothing due makes exactly one IAM read per set and no GitHub reads beyond the
 *     repository ids of selected organization targets;
 *   - evaluation time per target stays flat (linear scaling) from 10 to 500 targets;
 *   - the compiled program loads in well under a second.
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import * as path from "node:path";
import { runProgram } from "./support/run";

interface Row {
    sets: number;
    targets: number;
    registrations: number;
    iamReads: number;
    otherReads: number;
    ms: number;
}

function credentials(sets: number, targetsPerSet: number) {
    return Array.from({ length: sets }, (_, i) => ({
        name: `set-${i}`,
        targets: Array.from({ length: targetsPerSet }, (_, j) => ({ type: "github-repository", repository: `acme/repo-${i}-${j}` })),
    }));
}

async function measure(sets: number, targetsPerSet: number): Promise<Row> {
    const config = { credentials: credentials(sets, targetsPerSet) };
    // A first run to obtain the state, then the run that is measured: nothing is due.
    const first = await runProgram({ config, now: "2026-11-01T00:00:00Z" });
    if (first.error) throw first.error;
    const rotation = first.outputs!.rotation;
    const accessKeys = Object.fromEntries(
        Object.entries(rotation.sets as Record<string, any>).map(([name, s]) => [`ci-${name}`, s.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }))]),
    );
    const start = performance.now();
    const r = await runProgram({ config, now: "2026-11-01T01:00:00Z", world: { stackOutputs: { rotation }, accessKeys } });
    const ms = performance.now() - start;
    if (r.error) throw r.error;
    const steps = Object.values(r.outputs!.sets as Record<string, any>).filter((s) => s.step !== "none");
    if (steps.length > 0) throw new Error("a run with nothing due took a step");
    return {
        sets,
        targets: sets * targetsPerSet,
        registrations: r.registrations.length,
        iamReads: r.invocations.filter((i) => i.token.startsWith("aws:")).length + r.lastUseAsked.length,
        otherReads: r.invocations.filter((i) => !i.token.startsWith("aws:")).length,
        ms,
    };
}

async function main() {
    const root = path.resolve(__dirname, "..");
    const load = performance.now();
    execFileSync(process.execPath, ["-e", "require('./dist/index.js')"], { cwd: root });
    const loadMs = performance.now() - load;
    console.log(`compiled program: node start + load ${loadMs.toFixed(0)} ms`);

    await measure(1, 1); // warm-up: module loading and JIT
    const rows: Row[] = [];
    for (const [sets, per] of [
        [1, 10],
        [5, 10],
        [10, 10],
        [25, 10],
        [50, 10],
    ] as const) {
        rows.push(await measure(sets, per));
    }
    console.log("\nnothing-due run under mocks");
    console.log("sets  targets  registrations  IAM reads  other reads   ms    ms/target");
    for (const r of rows) {
        console.log(
            `${String(r.sets).padStart(4)}  ${String(r.targets).padStart(7)}  ${String(r.registrations).padStart(13)}  ${String(r.iamReads).padStart(9)}  ${String(r.otherReads).padStart(11)}  ${r.ms.toFixed(0).padStart(5)}  ${(r.ms / r.targets).toFixed(2).padStart(9)}`,
        );
    }
    const perTarget = rows.map((r) => r.ms / r.targets);
    const growth = perTarget[perTarget.length - 1] / perTarget[1];
    const readsOk = rows.every((r) => r.iamReads === r.sets && r.otherReads === 0);
    console.log(`\nper-target time, 500 vs 50 targets: x${growth.toFixed(2)} (linear scaling keeps this near 1)`);
    console.log(`reads with nothing due: ${readsOk ? "one IAM ListAccessKeys per set, nothing else" : "MORE THAN EXPECTED"}`);
    if (!readsOk) process.exitCode = 1;
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
