import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { getParameter, instancesOf, runnerRole, ssmParameterModels, ssmParameterView } from "../rotation/rehearsal/stores/aws-ssm-parameter";
import { Random } from "../rotation/rehearsal/random";
import { World } from "../rotation/rehearsal/world";
import type { ModelContext } from "../rotation/rehearsal/targets";
import { slowTier } from "./support/rehearsal-child";

// Rehearsals of a set whose targets are a GitHub repository and SSM parameters delivered to three
// tagged runners as a credentials file: a few simulated weeks each (fast enough for `npm test`).

const hour = 3_600_000;
const day = 24 * hour;
const start = Date.parse("2026-01-01T00:00:00Z");
const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "github-repository", repository: "acme/api" },
            { type: "aws-ssm-parameter", kmsKey: "alias/ci-deploy", distribute: { instanceTag: { key: "ci-runner", value: "deploy" } } },
        ],
    },
];
const config = (extra: Record<string, string> = {}) => ({
    "ci-key-rotation:credentials": JSON.stringify(credentials),
    "ci-key-rotation:every": "P7D",
    "ci-key-rotation:overlap": "PT24H",
    "ci-key-rotation:settle": "PT12H",
    "ci-key-rotation:retireAfter": "PT24H",
    "ci-key-rotation:gateTimeout": "PT24H",
    "ci-key-rotation:cadence": "PT6H",
    ...extra,
});
const [, runner2, runner3] = instancesOf("ci-runner", "deploy");

function rehearse(overrides: Partial<SimulationOptions> = {}, extra: Record<string, string> = {}): Promise<SimulationResult> {
    return simulate({ config: config(extra), stack: "dev", start, durationMs: 21 * day, cadenceMs: 6 * hour, seed: 11, jobs: { perDay: 24, longestMs: 6 * hour }, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

describe("rehearsal with an SSM parameter target delivered to runners", () => {
    test("three normal weeks: every rotation reaches the parameters and every runner's file, no job breaks", async () => {
        const result = await rehearse();
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.runsFailed, 0);
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.keysMinted, 4, "weekly keys over three weeks: the first and three rotations");
        // The runners' jobs ran (a consumer that never finds a file runs no job: this proves delivery).
        assert.ok(result.jobs.started > 300);
        const deactivations = result.runs.flatMap((r) => r.operations).filter((o) => o.action === "update" && o.type === "aws:iam/accessKey:AccessKey");
        // Mints on days 7 and 14 are followed by deactivations a day later; day 21's falls after the span.
        assert.equal(deactivations.length, 2, "each old key was switched off once its overlap ended (the gate saw no use)");
    });

    test("a normal year: 52 weekly rotations reach every runner's file, no job breaks", { skip: slowTier ? false : "slow tier: TEST_TIER=slow" }, async () => {
        const result = await rehearse({ durationMs: 365 * day });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.runsFailed, 0);
        assert.equal(result.summary.brokenJobs, 0);
        assert.equal(result.summary.keysMinted, 53);
    });

    test("a runner that misses a delivery keeps using the old key: the gate holds deactivation until gateTimeout, then its jobs break (explained by the fault)", async () => {
        const mint = start + 7 * day;
        const result = await rehearse({ faults: { deliveryFails: [{ instance: runner2, from: mint - hour, until: mint + 6 * hour }] } }, { "ci-key-rotation:onGateTimeout": "proceed" });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.ok(result.runs.some((r) => r.faults.some((f) => f === `Run Command failed on ${runner2}: it keeps its old credentials file`)), "the fault hit the delivery");
        // The old key's deactivation waits for the gate (pushed + overlap = mint + 24 h; gateTimeout 24 h more).
        const deactivation = result.runs.find((r) => Date.parse(r.at) > mint && r.operations.some((o) => o.action === "update" && o.type === "aws:iam/accessKey:AccessKey"));
        assert.ok(deactivation);
        assert.ok(Date.parse(deactivation.at) >= mint + 2 * day, `deactivated at ${deactivation.at}: the gate should have held it while ${runner2} used the old key`);
        // Then the runner that missed the delivery breaks; no other consumer does.
        assert.ok(result.summary.brokenJobs > 0);
        for (const job of result.jobs.broken) assert.match(job.consumer, new RegExp(`instance ${runner2} `), `${job.consumer} broke: ${job.reason}`);
    });

    test("onGateTimeout fail: the runner that missed the delivery keeps working, the runs fail naming the key in use", async () => {
        const mint = start + 7 * day;
        const result = await rehearse({ durationMs: 12 * day, faults: { deliveryFails: [{ instance: runner3, from: mint - hour, until: mint + 6 * hour }] } }, { "ci-key-rotation:onGateTimeout": "fail" });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        const failed = result.runs.filter((r) => !r.ok);
        assert.ok(failed.length > 0, "after gateTimeout the runs fail instead of switching the key off");
        assert.match(failed[0].error ?? "", /last used|still in use|gate/i);
    });

    test("with a State Manager schedule, the runner that missed the delivery catches up once reachable: the gate does not hold, no job breaks", async () => {
        const mint = start + 7 * day;
        const scheduled = [{ ...credentials[0], targets: [credentials[0].targets[0], { ...credentials[0].targets[1], distribute: { instanceTag: { key: "ci-runner", value: "deploy" }, schedule: "rate(30 minutes)" } }] }];
        const result = await rehearse(
            { faults: { deliveryFails: [{ instance: runner2, from: mint - hour, until: mint + 6 * hour }] } },
            { "ci-key-rotation:credentials": JSON.stringify(scheduled), "ci-key-rotation:onGateTimeout": "proceed" },
        );
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        const deactivation = result.runs.find((r) => Date.parse(r.at) > mint && r.operations.some((o) => o.action === "update" && o.type === "aws:iam/accessKey:AccessKey"));
        assert.ok(deactivation && Date.parse(deactivation.at) < mint + 2 * day, "the old key went off when its overlap ended");
        const staleRuns = result.runs.filter((r) => r.faults.some((f) => f.startsWith(`${runner2} holds an old credentials file`)));
        assert.ok(staleRuns.length > 0 && staleRuns.every((r) => Date.parse(r.at) < mint + 12 * hour), "stale only until the first run after the fault window");
    });

    test("throttled PutParameter fails the run; the next runs finish the rotation (I8)", async () => {
        const from = start + 7 * day;
        const result = await rehearse({ faults: { throttle: [{ from, until: from + 12 * hour, type: "aws:ssm/parameter:Parameter" }] } });
        assert.equal(result.summary.violationCount, 0, violations(result));
        const throttled = result.runs.filter((r) => r.faults.some((f) => f.startsWith("throttled update")));
        assert.ok(throttled.length >= 1 && throttled.every((r) => !r.ok));
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.keysMinted, 4, "no key minted twice for the failed push");
    });

    test("KMS refusing the runner role breaks the jobs that read the parameters at job time (only while it lasts), and delivery with it", async () => {
        const from = start + 3 * day;
        const result = await rehearse({ faults: { kmsDeny: [{ from, until: from + day, principal: runnerRole }] } });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.ok(result.summary.brokenJobs > 0, "the readers could not decrypt");
        for (const job of result.jobs.broken) {
            const at = Date.parse(job.at);
            assert.ok(at >= from && at < from + day + 6 * hour, `job broke at ${job.at}, outside the denial`);
            assert.match(job.consumer, /reading \/ci\/deploy\/AWS_ACCESS_KEY_ID and \/ci\/deploy\/AWS_SECRET_ACCESS_KEY as /);
        }
    });

    test("an emergency request rotates within hours; revoke kills the old key with the mint and the runners' next jobs read the new file", async () => {
        const emergency = await rehearse({ durationMs: 10 * day, requests: [{ at: start + 3 * day + 1, mode: "emergency" }] });
        assert.equal(emergency.summary.violationCount, 0, violations(emergency));
        assert.equal(emergency.summary.keysMinted, 2);
        assert.equal(emergency.summary.brokenJobs, 0, JSON.stringify(emergency.jobs.broken.slice(0, 3)));
        const revoke = await rehearse({ durationMs: 10 * day, requests: [{ at: start + 3 * day + 1, mode: "revoke" }] });
        assert.equal(revoke.summary.violationCount, 0, violations(revoke));
        const revokeRun = revoke.runs.find((r) => Date.parse(r.at) > start + 3 * day && r.operations.length > 0)!;
        assert.ok(revokeRun.ok);
        for (const job of revoke.jobs.broken) assert.ok(Date.parse(job.startedAt) < Date.parse(revokeRun.at) + 60_000, `${job.consumer} broke on a job started after the revoke: ${job.reason}`);
    });
});

describe("the SSM fake", () => {
    const ctxOf = (world: World, now: number, faults: string[] = []): ModelContext => ({ world, clock: { now: () => now, sleep: async () => {} }, noteFault: (t) => faults.push(t) });

    test("a parameter write is a new version, decrypts for the runner role with its ARN as context, and runs the document on tagged instances", async () => {
        const world = new World(new Random(1));
        const m = ssmParameterModels;
        const content = JSON.stringify({
            mainSteps: [{ inputs: { runCommand: ["aws ssm get-parameter --with-decryption --name '/ci/x/credentials' --output text > \"$TMP\"", "mv -f \"$TMP\" '/home/runner/.aws/credentials'"] } }],
        });
        const doc = { name: "doc", content };
        for (const w of m["aws:ssm/document:Document"].writes!(doc, undefined)) world.stores.write(w.address, w, 0);
        const docArn = ((await m["aws:ssm/document:Document"].outputs!(doc, ctxOf(world, 0))) as { arn: string }).arn;
        const pattern = JSON.stringify({ detail: { name: ["/ci/x/credentials"] } });
        for (const w of m["aws:cloudwatch/eventRule:EventRule"].writes!({ eventPattern: pattern }, undefined)) world.stores.write(w.address, w, 0);
        const rule = ((await m["aws:cloudwatch/eventRule:EventRule"].outputs!({ eventPattern: pattern }, ctxOf(world, 0))) as { name: string }).name;
        await m["aws:cloudwatch/eventTarget:EventTarget"].outputs!({ rule, arn: docArn, runCommandTargets: [{ key: "tag:ci-runner", values: ["x"] }] }, ctxOf(world, 0));
        const param = m["aws:ssm/parameter:Parameter"];
        const put = async (value: string, at: number) => {
            const inputs = { name: "/ci/x/credentials", value, keyId: "alias/ci" };
            for (const w of param.writes!(inputs, undefined)) world.stores.write(w.address, w, at);
            return (await param.outputs!(inputs, ctxOf(world, at))) as { version: number };
        };
        const file = (id: string) => `[default]\naws_access_key_id = ${id}\naws_secret_access_key = s-${id}\n`;
        assert.equal((await put(file("A1"), 1)).version, 1);
        assert.equal((await put(file("A2"), 2)).version, 2);
        assert.equal(getParameter(world.stores, world, "/ci/x/credentials", runnerRole).value, file("A2"));
        world.kms.denied.add(runnerRole);
        assert.match(getParameter(world.stores, world, "/ci/x/credentials", runnerRole).error!, /AccessDeniedException: .* kms:Decrypt/);
        world.kms.denied.delete(runnerRole);
        const view = ssmParameterView(
            { type: "aws-ssm-parameter", path: "/ci/x", format: "credentials-file", fileName: "credentials", profile: "default", tier: "Standard", distribute: { instanceTag: { key: "ci-runner", value: "x" }, path: "/home/runner/.aws/credentials", owner: "runner", profile: "default" } },
            "x",
        );
        assert.deepEqual(view.holds(world.stores), { accessKeyId: "A2", secret: "s-A2" });
        // Every tagged instance got the file; as of instant 1 they held the first key.
        assert.equal(view.consumers.length, 4);
        for (const c of view.consumers.slice(1)) {
            assert.deepEqual(c.read(world.stores, world), { accessKeyId: "A2", secret: "s-A2" });
            assert.deepEqual(c.read(world.stores.asOf(1), world), { accessKeyId: "A1", secret: "s-A1" });
        }
    });
});
