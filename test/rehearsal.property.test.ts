import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import fc from "fast-check";
import { test } from "node:test";
import { fork } from "node:child_process";
import { checkScenarios, shareVariable, type PropertyOutcome, type PropertyShare } from "./support/rehearsal-property";
import { configProblems, scenarioArb, stackConfig } from "./support/rehearsal-scenarios";

// The slow tier (`npm run test:slow`) checks 300 scenarios; `npm test` a sample of 2 (one per core).
const runs = Number(process.env.REHEARSAL_PROPERTY_RUNS ?? (process.env.TEST_TIER === "slow" ? 300 : 2));
const seed = Number(process.env.REHEARSAL_PROPERTY_SEED ?? 20261123);
// REHEARSAL_PROPERTY_KNOWN=skip passes scenarios whose violations follow from the open findings
// below, to look past them for new ones (each share otherwise stops at its first failure).
const skipKnown = process.env.REHEARSAL_PROPERTY_KNOWN === "skip";
// One share per core, each in its own process: rehearsals are CPU-bound and independent. Share i draws its scenarios with
// seed + i, so a failure names the seed (and path) that replays it with REHEARSAL_PROPERTY_WORKERS=1.
const workers = Math.max(1, Math.min(Number(process.env.REHEARSAL_PROPERTY_WORKERS ?? availableParallelism()), runs));

/**
 * Check one share in a child process (the runtime and the program are per process). A larger
 * young generation: a rehearsal allocates many short-lived Outputs and promises (measured: 15%
 * less time).
 */
function inChild(share: PropertyShare): Promise<PropertyOutcome> {
    return new Promise((resolve, reject) => {
        const child = fork(require.resolve("./support/rehearsal-property"), [], { env: { ...process.env, [shareVariable]: JSON.stringify(share) }, execArgv: [...process.execArgv, "--max-semi-space-size=64"], stdio: "inherit" });
        child.once("message", (outcome) => resolve(outcome as PropertyOutcome));
        child.once("error", reject);
        child.once("exit", (code) => reject(new Error(`property share (seed ${share.seed}) exited with code ${code} before reporting`)));
    });
}

test("drawn configurations validate, and they draw every AWS-native store, KMS key and store fault", () => {
    const seen = new Map<string, number>();
    const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    for (const s of fc.sample(scenarioArb, { numRuns: 1000, seed })) {
        assert.deepEqual(configProblems(s), [], stackConfig(s)["ci-key-rotation:credentials"]);
        for (const set of JSON.parse(stackConfig(s)["ci-key-rotation:credentials"]) as { kms?: { create?: boolean }; targets: { type: string; encrypt?: { key?: string } }[] }[]) {
            if (set.kms) count(set.kms.create ? "managed key" : "existing key");
            for (const t of set.targets) count(t.encrypt ? (t.encrypt.key ? "encrypt with own key" : "encrypt with the set's key") : t.type);
        }
        for (const [fault, drawn] of Object.entries(s.storeFaults)) if (drawn) count(fault);
    }
    for (const k of ["managed key", "existing key", "encrypt with own key", "encrypt with the set's key", "aws-s3-env-file", "aws-secrets-manager", "aws-ssm-parameter", "s3", "deliveryFails", "smThrottle", "kmsThrottled", "kmsDenial"]) {
        assert.ok((seen.get(k) ?? 0) >= 50, `${k} drawn ${seen.get(k) ?? 0} times in 1000 scenarios`);
    }
});

// Open findings (issue 9). (1) The set's first two runs are both killed: no output of either is
// saved, and the first key was used by its own key check, so from IAM alone it may be a key made by
// hand; the set stops with a message naming both keys (docs/interrupted-runs.md). (2) Several runs
// in a row fail on refused (or skipped) writes, and the engine's records of two target resources of
// one set end up claiming different keys (a bridged provider saves the planned value of a failed
// update), so neither key the next run may write differs from both records; one secret keeps a
// value no run writes again, and its jobs fail with SignatureDoesNotMatch until the next rotation
// (docs/failures.md). On 24 November, 300 scenarios of seed 20261201 had 2 of (2) and none of (1).
// Replay with REHEARSAL_PROPERTY_SEED=20261201 REHEARSAL_PROPERTY_WORKERS=1 REHEARSAL_PROPERTY_RUNS=150.
// The suite still runs and reports every counterexample; `todo` keeps the finding visible without
// failing CI, and `knownFinding` tells it from new violations in the report. Fixed since: the first
// run failing twice, a failed deactivation, IAM slow on every mint, a refused write followed by a
// kill, a write skipped because its KMS ciphertext failed taken for a refused one, and a revoke's
// refused GitHub write (each has its own test).
// Also accepted (docs/failures.md): a mint whose GitHub write was refused is retired and its
// targets rolled back to the previous key, so until that key is deactivated I3 (newest Active key
// in targets) and then I4 fail by their letter for that key alone (`withoutAccepted`).
const openFindings = "two killed first runs stop the set; a failed GitHub write can leave a torn target (see comment above)";

test(`${runs} random scenarios of at least 60 runs keep every invariant`, { timeout: 600_000, todo: openFindings }, async () => {
    const started = Date.now();
    const shares = Array.from({ length: workers }, (_, i): PropertyShare => ({ numRuns: Math.floor(runs / workers) + (i < runs % workers ? 1 : 0), seed: seed + i, skipKnown }));
    const outcomes = workers === 1 ? [await checkScenarios(shares[0])] : await Promise.all(shares.map(inChild));
    const scenarios = outcomes.reduce((n, o) => n + o.scenarios, 0);
    const total = outcomes.reduce((n, o) => n + o.runs, 0);
    const known = outcomes.reduce((n, o) => n + (o.known ?? 0), 0);
    process.stdout.write(`# rehearsal property: ${scenarios} scenarios (${known} with open findings passed), ${total} runs, ${workers} process(es), ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const knownBy: Record<string, number> = {};
    for (const o of outcomes) for (const [k, n] of Object.entries(o.knownBy ?? {})) knownBy[k] = (knownBy[k] ?? 0) + n;
    if (known > 0) process.stdout.write(`# open findings: ${JSON.stringify(knownBy)}\n`);
    const failures = outcomes.flatMap((o, i) => (o.failure ? [`share ${i} (seed ${shares[i].seed}, ${shares[i].numRuns} scenarios; replay with REHEARSAL_PROPERTY_SEED=${shares[i].seed} REHEARSAL_PROPERTY_WORKERS=1 REHEARSAL_PROPERTY_RUNS=${shares[i].numRuns}):\n${o.failure}`] : []));
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
});
