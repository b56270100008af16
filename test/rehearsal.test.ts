import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { readStackConfig } from "../rotation/rehearsal/stack";
import { dynamicModels, gitlabAddress, modelFor, resourceModels, scopeMatches, viewOf } from "../rotation/rehearsal/targets";
import { Random } from "../rotation/rehearsal/random";
import { SecretStores, World } from "../rotation/rehearsal/world";
import type { Target } from "../providers";
import { rehearseInChild, simulateCommandInChild, slowTier, stopRehearsalChildren } from "./support/rehearsal-child";

after(stopRehearsalChildren);

const root = join(__dirname, "..");
const dev = readStackConfig(root, "dev");
const start = Date.parse("2026-01-01T00:00:00Z");
const hour = 3_600_000;
const day = 24 * hour;

function options(overrides: Partial<SimulationOptions>): SimulationOptions {
    return { config: dev.config, project: dev.project, stack: "dev", start, durationMs: 30 * day, cadenceMs: hour, seed: 7, ...overrides };
}

/** A rehearsal in a child process, outside the test harness (test/support/rehearsal-child.ts). */
function rehearse(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return rehearseInChild(options(overrides));
}

/** A rehearsal in this process: for tests that swap a resource model, which a child would not see. */
function rehearseHere(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return simulate(options(overrides));
}

/** Slow-tier tests (`npm run test:slow`); `npm test` skips them and says where they run. */
const slow = { skip: slowTier ? false : "slow tier: npm run test:slow" };

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

const changed = (r: SimulationResult) => r.runs.filter((run) => run.operations.length > 0 && run.twinOf === undefined);

test("a normal year of the example stack keeps every invariant and breaks no CI job", slow, async () => {
    const result = await rehearse({ durationMs: 365 * day, cadenceMs: 12 * hour });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.brokenJobs, 0);
    assert.equal(result.summary.runsFailed, 0);
    // Weekly keys: 1 + 52 rotations; each run that changed something was followed by an idle twin.
    assert.equal(result.summary.keysMinted, 53);
    assert.ok(result.checks.I6.checked >= 150, "every changing run gets a twin run at the same instant");
    assert.ok(result.summary.oldestTargetKeyAgeHours <= 7 * 24 + 6);
    assert.ok(result.summary.longestTwoActiveHours >= 24 && result.summary.longestTwoActiveHours <= 30);
});

test("a kill right after the mint created the new key: the next runs retire that key, never push it, never make a third (I8)", async () => {
    const result = await rehearse({ durationMs: 10 * day, faults: { crashAt: [{ at: Date.parse("2026-01-08T00:00:00Z"), after: 1 }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const crashed = result.runs.find((r) => r.at === "2026-01-08T00:00:00.000Z")!;
    assert.equal(crashed.ok, false);
    assert.deepEqual(crashed.faults, ["crash after 1 operation(s)"]);
    assert.deepEqual(
        crashed.operations.map((o) => `${o.action} ${o.name}`),
        ["create deploy-key-2"],
    );
    // The engine recorded the key, but a killed update saves no outputs: the rotation state does
    // not know it, and the program cannot tell whether its secret was ever handed out.
    const orphan = crashed.operations[0].accessKeyId!;
    assert.ok(result.runs.every((r) => r.sets.deploy.targetKey !== orphan), "the key of the killed run reached a target");
    const key = result.keys.find((k) => k.accessKeyId === orphan)!;
    assert.ok(key.deactivatedAt !== undefined && key.deactivatedAt <= "2026-01-09T01:00:00.000Z", `retired at ${key.deactivatedAt}`);
    assert.equal(result.checks.I1.failed, 0);
    assert.ok(result.runs.filter((r) => r.at > "2026-01-08T00:00:00.000Z").every((r) => r.ok));
});

test("an API error at every operation of a mint run is recovered by later runs (I8)", async () => {
    // The fast tier samples the first and last operation; the slow tier tries every one.
    for (const op of slowTier ? [1, 2, 3, 4, 5, 6, 7] : [1, 7]) {
        // Two-hourly runs: the mint still falls on 2026-01-08T00:00, at half the cost.
        const result = await rehearse({ durationMs: 12 * day, cadenceMs: 2 * hour, faults: { failAt: [{ at: Date.parse("2026-01-08T00:00:00Z"), op }] } });
        const failed = result.runs.find((r) => r.at === "2026-01-08T00:00:00.000Z")!;
        // A refused GitHub update saves the planned value (the bridged provider's partial state), so
        // the mint cannot be finished: its key is retired and targets are written with key 1 again
        // (docs/failures.md). The checker holds that retirement to its own rule (no target holds
        // the retired key when it is deactivated, a full `overlap` after the rollback), so every
        // violation here is a defect.
        const refusedGithub = failed.operations.length < op && /github/i.test(failed.error ?? "");
        assert.deepEqual(result.violations, [], `fault at operation ${op} (${failed.error}; ${failed.operations.map((o) => `${o.action} ${o.name} ${o.accessKeyId ?? ""}`).join(", ")}):\n${result.violations.slice(0, 6).map((v) => `${v.invariant} at ${v.at}: ${v.message.slice(0, 300)}`).join("\n")}`);
        assert.equal(failed.ok, false);
        // Two recoveries are right, depending on where the run failed. After the new key exists,
        // a failure before any target holds it (an orphan), or a target write that failed (the key
        // is `unconfirmed`: a refused write is not retried, docs/failures.md), retires the key
        // (overlap, deactivate, delete) and the rotation mints once more. Otherwise the next run
        // finishes the mint with it. Either way the rotation ends on one key every target holds.
        const orphan = failed.operations.find((o) => o.action === "create" && o.name === "deploy-key-2")?.accessKeyId;
        const neverHeld = result.runs.every((r) => r.sets.deploy.targetKey !== orphan);
        const retired = orphan !== undefined && (refusedGithub || neverHeld || result.summary.keysMinted === 3);
        assert.equal(result.summary.keysMinted, retired ? 3 : 2, `fault at operation ${op}`);
        if (orphan !== undefined && neverHeld) assert.equal(result.summary.keysMinted, 3, `fault at operation ${op}: key ${orphan} never reached a target, yet it was not retired`);
        if (retired) assert.ok(result.keys.find((k) => k.accessKeyId === orphan)!.deactivatedAt, `fault at operation ${op}: key ${orphan} was never retired`);
    }
});

test("revoke deactivates the old key in the mint run, before the new key exists", async () => {
    const result = await rehearse({ durationMs: 5 * day, requests: [{ at: Date.parse("2026-01-03T10:30:00Z"), mode: "revoke" }] });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const run = result.runs.find((r) => r.at === "2026-01-03T11:00:00.000Z")!;
    assert.equal(run.sets.deploy.step, "revoke");
    const keyOps = run.operations.filter((o) => o.type === "aws:iam/accessKey:AccessKey");
    assert.deepEqual(
        keyOps.map((o) => [o.action, o.name, o.status]),
        [
            ["update", "deploy-key-1", "Inactive"],
            ["create", "deploy-key-2", undefined],
        ],
    );
    // The emergency retirement deletes the revoked key at the next run.
    const next = result.runs.find((r) => r.at === "2026-01-03T12:00:00.000Z")!;
    assert.equal(next.sets.deploy.step, "delete");
});

test("a request mid-rotation fast-forwards: deactivate, delete, then mint, never three keys", async () => {
    const result = await rehearse({ durationMs: 12 * day, requests: [{ at: Date.parse("2026-01-08T05:00:00Z"), mode: "normal" }] });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.checks.I1.failed, 0);
    const steps = changed(result)
        .filter((r) => r.at >= "2026-01-08")
        .slice(0, 4)
        .map((r) => `${r.at.slice(0, 13)} ${r.sets.deploy.step}`);
    // The request was seen with keys 1 and 2 alive: both must go, so the rotation runs until key 3.
    assert.deepEqual(steps.map((s) => s.split(" ")[1]), ["mint", "deactivate", "delete", "mint"]);
    assert.ok(steps[3] < "2026-01-15", `the request's mint comes before the weekly one: ${steps.join(", ")}`);
    for (const run of result.runs) for (const set of Object.values(run.sets)) assert.ok(set.keys.length <= 2);
});

test("simulate writes JSON with every run and an empty violation list, and exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rehearsal-"));
    const { code, output } = await simulateCommandInChild(["--dir", root, "--days", "10", "--json", join(dir, "r.json"), "--svg", join(dir, "r.svg")]);
    assert.equal(code, 0, output);
    const report = JSON.parse(readFileSync(join(dir, "r.json"), "utf8"));
    assert.equal(report.version, 1);
    assert.deepEqual(report.summary.violations, []);
    const scheduled = report.runs.filter((r: { twinOf?: number }) => r.twinOf === undefined);
    assert.equal(scheduled.length, 10 * 24 + 1);
    assert.ok(report.runs.every((r: { checks: Record<string, unknown> }) => "I7" in r.checks));
    const text = output;
    assert.match(text, /invariant violations:\s+0/);
    assert.match(text, /keys minted:\s+2/);
    // Key ids (20 characters) appear; nothing shaped like a 40-character secret access key does.
    for (const file of ["r.json", "r.svg"]) assert.doesNotMatch(readFileSync(join(dir, file), "utf8"), /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/])/);
    assert.match(readFileSync(join(dir, "r.svg"), "utf8"), /^<svg /);
});

test("simulate exits 1 when an invariant is violated: a consumer stuck on the old key stalls rotation (I5)", async () => {
    const { code, output } = await simulateCommandInChild(["--dir", root, "--days", "20", "--quiet", "--rogue", "2026-01-01T00:00:00Z/2026-03-01T00:00:00Z"]);
    assert.equal(code, 1, output);
    assert.match(output, /I5 at .*more than .*max\(every/);
});

test("simulate rejects bad options with exit 2 and names the option", async () => {
    const { code, output } = await simulateCommandInChild(["--dir", root, "--cadence", "hourly"]);
    assert.equal(code, 2);
    assert.match(output, /`--cadence` must be a positive ISO-8601 duration/);
});

const gitlabStack = {
    ...dev.config,
    "ci-key-rotation:credentials": JSON.stringify([
        {
            name: "deploy",
            user: { name: "ci-deploy", path: "/ci/" },
            targets: [
                { type: "gitlab-project", project: "acme/platform/api", environmentScope: "production", variables: { AWS_REGION: "eu-west-1" } },
                { type: "gitlab-group", group: "acme/platform" },
                { type: "github-repository", repository: "acme/api" },
            ],
        },
    ]),
};

test("GitLab project and group targets rotate with every invariant held and no broken GitLab job", async () => {
    const result = await rehearse({ config: gitlabStack, durationMs: 16 * day });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.brokenJobs, 0);
    assert.equal(result.summary.keysMinted, 3);
    const mint = changed(result).find((r) => r.at.startsWith("2026-01-08"))!;
    assert.equal(mint.sets.deploy.step, "mint");
    const names = mint.operations.map((o) => `${o.action} ${o.name}`);
    // The key check passes before any target is written; the target check comes after the writes.
    const check = names.indexOf("update deploy-key-check");
    assert.ok(check > names.indexOf("create deploy-key-2"));
    const gitlabKeyWrites = mint.operations.filter((o) => o.action === "update" && o.addresses?.some((a) => a.startsWith("gitlab:") && /:var:AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY):/.test(a)));
    for (const write of gitlabKeyWrites) assert.ok(mint.operations.indexOf(write) > check, write.name);
    assert.equal(gitlabKeyWrites.length, 4);
    assert.equal(names[names.length - 1], "update deploy-target-check");
    assert.equal(mint.sets.deploy.targetKey, mint.operations.find((o) => o.name === "deploy-key-2")!.accessKeyId);
});

test("a GitLab job reads a project variable over a group one, and the most specific environment scope", () => {
    const names = { accessKeyId: "AWS_ACCESS_KEY_ID", secretAccessKey: "AWS_SECRET_ACCESS_KEY" };
    const stores = new SecretStores();
    const put = (scope: string, owner: string, env: string, value: string) => stores.write(gitlabAddress(scope, owner, names.accessKeyId, env), { value, secret: false }, 0);
    put("group", "acme", "*", "acme-any");
    put("group", "acme/platform", "*", "platform-any");
    put("group", "acme/platform", "review/*", "platform-review");
    put("project", "acme/platform/api", "production", "api-production");
    const read = (target: Target) => viewOf(target, "").consumers[0].read(stores, new World(new Random(1))).accessKeyId;
    const project = { type: "gitlab-project", names, protected: true, masked: true, hidden: false, raw: true } as const;
    assert.equal(read({ ...project, project: "acme/platform/api", environmentScope: "production" }), "api-production");
    // No project variable in scope: the nearest group's, most specific scope first.
    assert.equal(read({ ...project, project: "acme/platform/api", environmentScope: "review/*" }), "platform-review");
    assert.equal(read({ ...project, project: "acme/platform/web", environmentScope: "*" }), "platform-any");
    assert.equal(read({ ...project, project: "acme/tools", environmentScope: "*" }), "acme-any");
    assert.equal(scopeMatches("review/*", "review/feature-1"), true);
    assert.equal(scopeMatches("production", "production-eu"), false);
    assert.equal(scopeMatches("production", undefined), false);
});

test("a resource the rehearsal has no model of fails the run and stops the rehearsal", async () => {
    const model = dynamicModels["key-check"];
    delete dynamicModels["key-check"];
    try {
        await assert.rejects(rehearseHere({ durationMs: 2 * day }), /no model of deploy-key-check, a dynamic resource of kind "key-check"/);
    } finally {
        dynamicModels["key-check"] = model;
    }
    assert.throws(() => modelFor("pulumi-nodejs:dynamic:Resource", "mystery", {}), /mystery, a dynamic resource without a `kind` input/);
    assert.throws(() => modelFor("aws:sqs/queue:Queue", "queue", {}), /no model of queue \(aws:sqs\/queue:Queue\)/);
});

// Open finding (issue 9): the next run retires the key instead of pushing it, because it cannot
// tell that the engine recorded the key's secret (`PlanInput.recorded` is never filled); with every
// key check slow, no key ever reaches a target. Kept as todo so it runs and reports.
test("when IAM is slow to make a new key usable, the key check fails the mint run before any target is written; the next run pushes it", async () => {
    const result = await rehearse({ durationMs: 10 * day, faults: { slowKeyRate: 1 } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.brokenJobs, 0);
    assert.equal(result.summary.keysMinted, 2);
    const failed = result.runs.filter((r) => !r.ok);
    assert.deepEqual(
        failed.map((r) => r.at),
        // The first key became usable after the first run gave up and was pushed an hour later;
        // its age still counts from IAM's creation date, so the next mint is due a week after it.
        ["2026-01-01T00:00:00.000Z", "2026-01-08T00:00:00.000Z"],
    );
    const mint = failed[1];
    assert.match(mint.error!, /deploy-key-check: Key AKIA\w+ of set "deploy" did not authenticate with STS GetCallerIdentity .* within 30s/);
    assert.ok(mint.faults.some((f) => /^IAM slow/.test(f)), mint.faults.join("; "));
    assert.deepEqual(
        mint.operations.map((o) => `${o.action} ${o.name}`),
        ["create deploy-key-2"],
    );
    const previous = result.runs[mint.index - 1].sets.deploy.targetKey;
    assert.equal(mint.sets.deploy.targetKey, previous, "the unverified key reached no target");
    const next = result.runs[mint.index + 1];
    assert.ok(next.ok && next.operations.some((o) => o.name === "deploy-key-check"));
    assert.equal(next.sets.deploy.targetKey, mint.operations[0].accessKeyId);
});

test("the target check reads the GitHub secrets' updatedAt: a write the evidence dates before the key fails the run", async () => {
    const model = resourceModels["github:index/actionsSecret:ActionsSecret"];
    resourceModels["github:index/actionsSecret:ActionsSecret"] = { ...model, outputs: () => ({ updatedAt: "2025-12-31T00:00:00Z" }) };
    try {
        // Only the first run is read: three hours rehearse it and the run after, in this process.
        const result = await rehearseHere({ durationMs: 3 * hour });
        const first = result.runs[0];
        assert.equal(first.ok, false);
        assert.match(first.error!, /create deploy-target-check: Set "deploy": 4 targets did not take key AKIA\w+:/);
        assert.match(first.error!, /`credentials\[0\]\.targets\[0\]` \(github repository acme\/api\): secret AWS_ACCESS_KEY_ID was last written at 2025-12-31T00:00:00Z/);
    } finally {
        resourceModels["github:index/actionsSecret:ActionsSecret"] = model;
    }
});

test("I7 covers the state of dynamic resources: a key check whose outputs carried the secret is a violation", async () => {
    const model = dynamicModels["key-check"];
    // (An output named like the secret input would be re-marked secret by the engine; another name is not.)
    dynamicModels["key-check"] = { ...model, outputs: async (inputs, ctx) => ({ ...(await model.outputs!(inputs, ctx)), signedWith: inputs.secretAccessKey }) };
    try {
        const result = await rehearseHere({ durationMs: 1 * day });
        assert.ok(result.violations.some((v) => v.invariant === "I7" && /appears in plaintext in the state of deploy-key-check/.test(v.message)), violations(result));
    } finally {
        dynamicModels["key-check"] = model;
    }
});

test("a deactivation whose UpdateAccessKey fails is retried by later runs, never taken for a key switched back on by hand (I8)", async () => {
    const deactivation = (r: SimulationResult["runs"][number]) => r.operations.findIndex((o) => o.action === "update" && o.name === "deploy-key-1" && o.status === "Inactive");
    const base = await rehearse({ durationMs: 12 * day });
    const planned = base.runs.find((r) => r.twinOf === undefined && deactivation(r) >= 0)!;
    assert.ok(planned, "the fault-free rehearsal deactivates deploy-key-1");
    const result = await rehearse({ durationMs: 12 * day, faults: { failAt: [{ at: Date.parse(planned.at), op: deactivation(planned) + 1 }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const failed = result.runs.find((r) => r.at === planned.at && r.twinOf === undefined)!;
    assert.equal(failed.ok, false, "the injected error fails the deactivation run");
    const later = result.runs.filter((r) => r.at > planned.at);
    assert.ok(later.every((r) => r.ok), later.filter((r) => !r.ok).map((r) => `${r.at}: ${r.error}`).join("\n"));
    assert.deepEqual(failed.faults, ["API error at operation 1 (update deploy-key-1)"]);
    // The run after the failure sets the engine's record back (Active, as IAM shows), the next deactivates.
    const retry = later.filter((r) => r.operations.some((o) => o.name === "deploy-key-1"));
    assert.deepEqual(retry.slice(0, 2).map((r) => r.operations.filter((o) => o.name === "deploy-key-1").map((o) => `${o.action} ${o.status}`).join()), ["update Active", "update Inactive"]);
    const old = result.keys.find((k) => k.accessKeyId === retry[0].operations[0].accessKeyId)!;
    assert.ok(old.deactivatedAt && old.deactivatedAt > planned.at, `key ${old.accessKeyId} deactivated at ${old.deactivatedAt}`);
    assert.ok(old.deletedAt, `key ${old.accessKeyId} is deleted in the end`);
});
