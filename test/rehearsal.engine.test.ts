import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { readStackConfig } from "../rotation/rehearsal/stack";

/**
 * Scenarios of issue 9: each defect the real engine and providers expose shows up in the
 * rehearsal as a violation or a failed assertion, because the rehearsal's engine and fakes follow
 * the real ones (docs/rehearsal.md). They are short rehearsals of a one-set stack.
 */

const root = join(__dirname, "..");
const dev = readStackConfig(root, "dev");
const hour = 3_600_000;
const day = 24 * hour;
const t = (iso: string) => Date.parse(iso);

type Target = Record<string, unknown>;

/** A stack with one set `deploy` (user `ci-deploy`) and the given targets; weekly keys, a day's overlap. */
function stack(targets: Target[], set: Record<string, unknown> = {}): Record<string, string> {
    return {
        "aws:region": dev.config["aws:region"],
        "ci-key-rotation:every": "P7D",
        "ci-key-rotation:overlap": "PT24H",
        "ci-key-rotation:retireAfter": "P3D",
        "ci-key-rotation:credentials": JSON.stringify([{ name: "deploy", user: { name: "ci-deploy", path: "/ci/" }, targets, ...set }]),
    };
}

const repo: Target = { type: "github-repository", repository: "acme/api" };

function rehearse(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return simulate({ config: stack([repo]), project: dev.project, stack: "dev", start: t("2026-01-01T00:00:00Z"), durationMs: 2 * day, cadenceMs: hour, seed: 7, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations
        .slice(0, 6)
        .map((v) => `${v.invariant} at ${v.at}: ${v.message.slice(0, 400)}`)
        .join("\n");
}

const keyOps = (r: SimulationResult["runs"][number]) => r.operations.filter((o) => o.type === "aws:iam/accessKey:AccessKey").map((o) => `${o.action} ${o.name}${o.status ? ` ${o.status}` : ""}`);

test("issue 9.1: the first run of a new set succeeds although getAccessKeys fails for the missing user with the provider's text", async () => {
    const result = await rehearse({ durationMs: 3 * hour });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.runs[0].ok, true, result.runs[0].error);
    assert.equal(result.summary.keysMinted, 1);
});

test("issue 9.2: a mint whose target writes fail is not saved as pushed; the old key is deactivated a full overlap after the targets took the new one", async () => {
    const rejectUntil = t("2026-01-09T12:00:00Z");
    // The refused GitHub write saves the planned value (the bridged provider's partial state), so
    // the mint is retired, not finished: key 2 goes (overlap, retireAfter), then a new mint.
    const result = await rehearse({ durationMs: 16 * day, faults: { rejectWrites: [{ from: t("2026-01-08T00:00:00Z"), until: rejectUntil }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    for (const run of result.runs) if (!run.ok) assert.ok(run.faults.length > 0, `run at ${run.at} failed with no fault: ${run.error}`);
    const first = result.keys[0];
    assert.ok(first.deactivatedAt !== undefined && Date.parse(first.deactivatedAt) >= rejectUntil + day, `key 1 deactivated at ${first.deactivatedAt}`);
});

test("issue 9.3: an organization secret with selected repositories keeps them through a rotation", async () => {
    const org = { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web", "worker"] };
    const result = await rehearse({ config: stack([org]), durationMs: 9 * day });
    assert.equal(result.summary.keysMinted, 2);
    assert.equal(result.summary.brokenJobs, 0, result.jobs.broken.slice(0, 3).map((j) => `${j.consumer} at ${j.at}: ${j.reason}`).join("\n"));
    assert.equal(result.summary.violationCount, 0, violations(result));
});

test("issue 9.4: changing the case of the secret names replaces the secrets without leaving a target empty", async () => {
    const env = { type: "github-environment", repository: "acme/api", environment: "production" };
    const lower = { names: { accessKeyId: "aws_access_key_id", secretAccessKey: "aws_secret_access_key" } };
    const result = await rehearse({
        config: stack([repo, env]),
        durationMs: 3 * day,
        configChanges: [{ at: t("2026-01-02T00:30:00Z"), config: stack([{ ...repo, ...lower }, { ...env, ...lower }]) }],
    });
    // The secret written is never deleted afterwards: every run leaves the targets on the key (I3)
    // and no job breaks. A delete-first replacement still leaves GitHub without the secret between
    // its delete and its create, which I2 (checked at every operation) reports for that run alone.
    const replacing = result.runs.find((r) => r.at === "2026-01-02T01:00:00.000Z")!;
    assert.deepEqual(
        result.violations.filter((v) => !(v.invariant === "I2" && v.run === replacing.index && / holds no key$/.test(v.message))),
        [],
        violations(result),
    );
    assert.equal(result.summary.brokenJobs, 0);
    const last = result.runs[result.runs.length - 1];
    assert.ok(last.sets.deploy.targetKey, "the repository target still holds the key");
});

test("issue 9.5: revoke switches the old key off before the new key exists, in every step order the engine draws", async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
        const result = await rehearse({ seed, durationMs: 20 * hour, requests: [{ at: t("2026-01-01T10:30:00Z"), mode: "revoke" }] });
        const run = result.runs.find((r) => r.at === "2026-01-01T11:00:00.000Z")!;
        assert.equal(run.ok, true, `seed ${seed}: ${run.error}`);
        assert.deepEqual(keyOps(run), ["update deploy-key-1 Inactive", "create deploy-key-2"], `seed ${seed}`);
        const names = run.operations.map((o) => o.name);
        // Data flow already orders these: the key check before any write, the target check last.
        for (const write of names.filter((n) => n.includes("github"))) assert.ok(names.indexOf(write) > names.indexOf("deploy-key-check"), `seed ${seed}: ${names.join(", ")}`);
        assert.equal(names[names.length - 1], "deploy-target-check", `seed ${seed}`);
        assert.equal(result.summary.violationCount, 0, `seed ${seed}:\n${violations(result)}`);
    }
});

test("issue 9.6: a kill while the mint's key is being created leaves an orphan key that later runs take over or retire, never a third key", async () => {
    const result = await rehearse({ durationMs: 11 * day, faults: { crashAt: [{ at: t("2026-01-08T00:00:00Z"), after: 0, inFlight: true }] } });
    const killed = result.runs.find((r) => r.at === "2026-01-08T00:00:00.000Z")!;
    assert.deepEqual(
        killed.operations.map((o) => `${o.action} ${o.name}${o.lost ? " (lost)" : ""}`),
        ["create deploy-key-2 (lost)"],
    );
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.checks.I1.failed, 0);
    const later = result.runs.filter((r) => r.at > "2026-01-08T06:00:00.000Z");
    assert.ok(later.every((r) => r.ok), later.filter((r) => !r.ok).slice(0, 2).map((r) => `${r.at}: ${r.error}`).join("\n"));
});

test("issue 9.9: the last-used gate lets go once the consumer that kept the old key stops", async () => {
    const result = await rehearse({ durationMs: 12 * day, jobs: { rogue: { from: t("2026-01-01T00:00:00Z"), until: t("2026-01-09T03:00:00Z") } } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const first = result.keys[0];
    // The consumer stops at 03:00 on the 9th; the gate must let go before gateTimeout (P1D after
    // the due time, 2026-01-10T00:00), when it would otherwise fail every run.
    assert.ok(first.deactivatedAt !== undefined && first.deactivatedAt < "2026-01-10T00:00:00.000Z", `key 1 deactivated at ${first.deactivatedAt}`);
});

test("issue 9.9: an emergency request that arrives after an interrupted mint deletes the key that mint created", async () => {
    const request = t("2026-01-08T00:30:00Z");
    const result = await rehearse({
        durationMs: 10 * day,
        faults: { crashAt: [{ at: t("2026-01-08T00:00:00Z"), after: 0, inFlight: true }] },
        requests: [{ at: request, mode: "emergency" }],
    });
    const before = result.keys.filter((k) => Date.parse(k.createdAt) < request);
    assert.equal(before.length, 2, "key 1 and the key of the interrupted mint");
    for (const k of before) assert.ok(k.deletedAt !== undefined, `key ${k.accessKeyId} (created ${k.createdAt}) was never deleted`);
    assert.equal(result.summary.violationCount, 0, violations(result));
});

test("issue 9.9: a paused set takes no step, not even its first mint", async () => {
    const result = await rehearse({ config: stack([repo], { rotation: { paused: true } }), durationMs: 3 * hour });
    assert.equal(result.summary.keysMinted, 0);
    assert.equal(result.summary.violationCount, 0, violations(result));
});

test("issue 9.9: I5 holds the bound one step per run delivers when the cron runs far less often than the stack says", async () => {
    // The stack says hourly; the cron runs every 60 hours. A deactivation and a delete that each
    // start a gap late push the delete past the due mint, and the mint waits for the next run.
    const result = await rehearse({ durationMs: 30 * day, cadenceMs: 60 * hour });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.ok(result.summary.oldestTargetKeyAgeHours > 7 * 24 + 60, `oldest key ${result.summary.oldestTargetKeyAgeHours} h: the scenario must reach past every + G`);
});

test("the engine draws the order of independent steps from the seed, within what the dependencies allow", async () => {
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
        const result = await rehearse({ config: stack([repo, { type: "github-environment", repository: "acme/api", environment: "production" }]), durationMs: 1, seed });
        const names = result.runs[0].operations.map((o) => o.name);
        orders.add(names.join(","));
        assert.ok(names.indexOf("deploy-key-1") > names.indexOf("deploy-user"), names.join(", "));
        assert.ok(names.indexOf("deploy-key-check") > names.indexOf("deploy-key-1"), names.join(", "));
        assert.equal(names[names.length - 1], "deploy-target-check");
    }
    assert.ok(orders.size > 1, "four seeds drew one order");
});

test("a CLI before 3.112 drops the stack outputs a failed update had not registered: the rotation state is gone after it", async () => {
    // The mint's key create fails before the outputs (which wait for the key's id) resolve.
    const faults = { failAt: [{ at: t("2026-01-08T00:00:00Z"), op: 1 }] };
    const failedRun = (r: SimulationResult) => r.runs.find((run) => run.at === "2026-01-08T00:00:00.000Z")!;
    const current = await rehearse({ durationMs: 8 * day + hour, faults });
    assert.equal(failedRun(current).ok, false);
    // The saved state still knows key 1 (generation 1) after the failed update ...
    assert.deepEqual(failedRun(current).sets.deploy.keys.map((k) => k.generation), [1]);
    const legacy = await rehearse({ durationMs: 8 * day + hour, faults, legacyOutputs: true });
    assert.equal(failedRun(legacy).ok, false);
    // ... an old CLI saved none: the next run reads no rotation state.
    assert.deepEqual(failedRun(legacy).sets.deploy.keys.map((k) => k.generation), [0]);
});
