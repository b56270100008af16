import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { SimulationOptions, SimulationResult } from "../rotation/rehearsal/simulation";
import { Random } from "../rotation/rehearsal/random";
import { defaultContainerRole, getObject, parseEnvFile, s3Address, s3View } from "../rotation/rehearsal/stores/s3";
import { World } from "../rotation/rehearsal/world";
import { envFileText, type S3EnvFileTarget } from "../providers/s3/spec";
import { rehearseInChild, slowTier, stopRehearsalChildren } from "./support/rehearsal-child";

// Rehearsals of S3 env-file targets: containers read the file at start, through KMS as their
// own role; normal weeks, S3 and KMS faults, an emergency, a revoke, and containers that
// outlive the overlap.

after(stopRehearsalChildren);

const kms = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666";
const start = Date.parse("2026-01-01T00:00:00Z");
const hour = 3_600_000;
const day = 24 * hour;

const target = { type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci/deploy", env: "production", kmsKey: kms, variables: { AWS_REGION: "eu-west-1" } };

function config(extra: Record<string, string> = {}): Record<string, string> {
    return {
        "aws:region": "eu-west-1",
        "ci-key-rotation:every": "P7D",
        "ci-key-rotation:overlap": "PT24H",
        "ci-key-rotation:retireAfter": "P3D",
        "ci-key-rotation:credentials": JSON.stringify([{ name: "deploy", user: { name: "ci-deploy", path: "/ci/" }, targets: [target] }]),
        ...extra,
    };
}

function rehearse(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return rehearseInChild({ config: config(), project: "ci-key-rotation", stack: "dev", start, durationMs: 20 * day, cadenceMs: hour, seed: 11, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

const changed = (r: SimulationResult) => r.runs.filter((run) => run.operations.length > 0 && run.twinOf === undefined);

describe("S3 env files in the rehearsal", () => {
    test("three weeks: weekly rotations overwrite the file in place, containers always start with an Active key", async () => {
        const result = await rehearse({});
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.runsFailed, 0);
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.keysMinted, 3);
        const objectOps = result.runs.flatMap((r) => r.operations).filter((o) => o.type === "aws:s3/bucketObjectv2:BucketObjectv2");
        assert.deepEqual([...new Set(objectOps.map((o) => o.action))], ["create", "update"], "created once, then updated in place: never deleted");
    });

    test("a normal year: 52 weekly rotations, every container starts with an Active key", { skip: slowTier ? false : "slow tier: npm run test:slow" }, async () => {
        const result = await rehearse({ durationMs: 365 * day });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.runsFailed, 0);
        assert.equal(result.summary.brokenJobs, 0);
        assert.equal(result.summary.keysMinted, 53);
    });

    for (const code of ["SlowDown", "KMSAccessDenied"] as const) {
        test(`S3 ${code} during a mint fails that run; later runs finish the rotation with no violation (I8)`, async () => {
            const from = Date.parse("2026-01-08T00:00:00Z");
            const result = await rehearse({ durationMs: 18 * day, faults: { s3Faults: [{ from, until: from + 3 * hour, code }] } });
            assert.equal(result.summary.violationCount, 0, violations(result));
            const failed = result.runs.filter((r) => !r.ok);
            assert.ok(failed.length >= 1 && failed.every((r) => Date.parse(r.at) < from + 3 * hour), JSON.stringify(failed.map((r) => r.at)));
            assert.ok(failed.some((r) => r.faults.some((f) => f.includes(`S3 ${code}`))));
            assert.equal(result.summary.brokenJobs, 0);
            // Key 2's write was refused, so it is retired, never finished (docs/failures.md: a
            // refused write is not retried by the provider); key 3 then replaces key 1, and by the
            // end the rotation is complete on key 3.
            const last = result.runs[result.runs.length - 1];
            assert.deepEqual(last.sets.deploy.keys.map((k) => k.generation), [3]);
        });
    }

    test("an emergency request rotates at once and retires the old key without breaking the containers' next start", async () => {
        const result = await rehearse({ durationMs: 5 * day, requests: [{ at: Date.parse("2026-01-03T10:30:00Z"), mode: "emergency" }] });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.deepEqual(changed(result).filter((r) => r.at >= "2026-01-03").map((r) => r.sets.deploy.step).slice(0, 3), ["mint", "deactivate", "delete"]);
    });

    test("revoke deactivates the leaked key in the mint run; containers started before it lose their key (expected)", async () => {
        const result = await rehearse({ durationMs: 5 * day, requests: [{ at: Date.parse("2026-01-03T10:30:00Z"), mode: "revoke" }] });
        assert.equal(result.summary.violationCount, 0, violations(result));
        const run = result.runs.find((r) => r.at === "2026-01-03T11:00:00.000Z")!;
        assert.equal(run.sets.deploy.step, "revoke");
    });

    test("containers that live longer than overlap still use the old key when it is deactivated; overlap longer than their life keeps them whole", async () => {
        const jobs = { perDay: 12, longestMs: 2 * day };
        const short = await rehearse({ jobs, config: config({ "ci-key-rotation:lastUsedGate": "false" }) });
        // The rehearsal counts each such container as a broken CI job (I2): the key it started
        // with was deactivated while it ran.
        assert.ok(short.jobs.broken.length > 0, "a two-day container outlives a one-day overlap");
        assert.ok(short.jobs.broken.every((j) => j.when === "end" && /inactive|does not exist/.test(j.reason)), JSON.stringify(short.jobs.broken.slice(0, 2)));
        assert.ok(short.violations.length > 0 && short.violations.every((v) => v.invariant === "I2" && v.message.includes("container reading s3://")), violations(short));
        const long = await rehearse({ jobs, config: config({ "ci-key-rotation:lastUsedGate": "false", "ci-key-rotation:overlap": "P3D", "ci-key-rotation:retireAfter": "P1D" }) });
        assert.equal(long.summary.violationCount, 0, violations(long));
        assert.equal(long.summary.brokenJobs, 0);
    });
});

describe("S3 env files moved in config", () => {
    test("moving a managed file to another key: the new object is written before the old one is deleted, the bucket policy is updated in place", async () => {
        const managed = { ...target, bucketPolicy: "manage" };
        const moved = { ...managed, env: "prod" };
        const at = Date.parse("2026-01-03T00:30:00Z");
        const stack = (t: object) =>
            config({ "ci-key-rotation:credentials": JSON.stringify([{ name: "deploy", user: { name: "ci-deploy", path: "/ci/" }, targets: [t] }]) });
        const result = await rehearse({ durationMs: 5 * day, config: stack(managed), configChanges: [{ at, config: stack(moved) }] });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.brokenJobs, 0);
        const run = result.runs.find((r) => r.at === "2026-01-03T01:00:00.000Z")!;
        const s3Ops = run.operations.filter((o) => o.type.startsWith("aws:s3/")).map((o) => [o.action, o.type.split(":")[2], o.addresses?.join(",")]);
        // The engine deletes what is no longer declared after the program ends; the other two steps run in either order.
        assert.deepEqual(s3Ops[s3Ops.length - 1], ["delete", "BucketObjectv2", "s3:acme-ci-env/ci/deploy/production"]);
        assert.deepEqual(s3Ops.slice(0, -1).sort(), [
            ["create", "BucketObjectv2", "s3:acme-ci-env/ci/deploy/prod"],
            ["update", "BucketPolicy", "s3-policy:acme-ci-env"],
        ]);
    });
});

describe("S3 env-file model", () => {
    const t = { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/prod.env", kmsKey: kms, bucketKey: true, contentType: "text/plain", bucketPolicy: "document" } as S3EnvFileTarget;

    function worldWithFile(decrypters: string[] | "any"): World {
        const world = new World(new Random(1));
        world.kms.ensureKey(kms, decrypters);
        const body = envFileText(t, "deploy", "AKIAEXAMPLE000000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        world.stores.write(s3Address(t.bucket, "ci/prod.env"), { value: body, secret: true, meta: { kmsKeyId: kms, bucketKeyEnabled: true } }, 0);
        return world;
    }

    test("a reader the key lets decrypt gets the file; the container's environment holds the key", () => {
        const world = worldWithFile([defaultContainerRole]);
        const [container] = s3View(t, "x").consumers;
        assert.deepEqual(container.read(world.stores, world), { accessKeyId: "AKIAEXAMPLE000000001", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" });
    });

    test("a reader without kms:Decrypt on the object's key gets AccessDenied, and the container starts without a key", () => {
        const world = worldWithFile(["arn:aws:iam::123456789012:role/someone-else"]);
        const got = getObject(world.stores, world, t.bucket, "ci/prod.env", defaultContainerRole);
        assert.ok("error" in got && got.error.startsWith("AccessDenied:"), JSON.stringify(got));
        assert.deepEqual(s3View(t, "x").consumers[0].read(world.stores, world), {});
        // A key policy edited by hand to deny the role: the same.
        const open = worldWithFile("any");
        open.kms.denied.add(defaultContainerRole);
        assert.deepEqual(s3View(t, "x").consumers[0].read(open.stores, open), {});
    });

    test("the entrypoint's parse reads quoted and plain values as sh would", () => {
        assert.deepEqual(parseEnvFile("# c\nA=1\nB='x y $z'\n\nC=\n"), { A: "1", B: "x y $z", C: "" });
    });
});
