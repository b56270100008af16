import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { getSecretValue, secretsManagerModels, secretsManagerView } from "../rotation/rehearsal/stores/aws-secrets-manager";
import { Random } from "../rotation/rehearsal/random";
import { World } from "../rotation/rehearsal/world";
import type { ModelContext } from "../rotation/rehearsal/targets";

// Rehearsals of a set whose targets are a GitHub repository and a Secrets Manager secret read by a
// runner role of another account: a few simulated weeks each (fast enough for `npm test`).

const hour = 3_600_000;
const day = 24 * hour;
const start = Date.parse("2026-01-01T00:00:00Z");
const reader = "arn:aws:iam::210987654321:role/ci-runner";
const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "github-repository", repository: "acme/api" },
            { type: "aws-secrets-manager", kmsKey: "alias/ci-deploy", readers: [reader] },
        ],
    },
];
const config = {
    "ci-key-rotation:credentials": JSON.stringify(credentials),
    "ci-key-rotation:every": "P7D",
    "ci-key-rotation:overlap": "PT24H",
    "ci-key-rotation:settle": "PT12H",
    "ci-key-rotation:retireAfter": "PT24H",
    "ci-key-rotation:gateTimeout": "PT24H",
    "ci-key-rotation:cadence": "PT6H",
};

function rehearse(overrides: Partial<SimulationOptions> = {}): Promise<SimulationResult> {
    return simulate({ config, stack: "dev", start, durationMs: 21 * day, cadenceMs: 6 * hour, seed: 11, jobs: { perDay: 24, longestMs: 6 * hour }, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

describe("rehearsal with a Secrets Manager target", () => {
    test("three normal weeks: every rotation reaches the secret, no invariant breaks, no reader's job breaks", async () => {
        const result = await rehearse();
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.runsFailed, 0);
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.keysMinted, 4, "weekly keys over three weeks: the first and three rotations");
        assert.ok(result.jobs.started > 300, "the secret's reader ran jobs all along");
    });

    test("throttled PutSecretValue fails the run; the key stays in the other target, the next runs finish the rotation (I8)", async () => {
        const from = start + 7 * day;
        const result = await rehearse({ faults: { throttle: [{ from, until: from + 12 * hour, type: "aws:secretsmanager/secretVersion:SecretVersion" }] } });
        assert.equal(result.summary.violationCount, 0, violations(result));
        const throttled = result.runs.filter((r) => r.faults.some((f) => f.startsWith("throttled create")));
        assert.ok(throttled.length >= 1, "the fault hit the version's create");
        assert.ok(throttled.every((r) => !r.ok), "a throttled write fails the run");
        assert.ok(result.runs.some((r) => r.ok && Date.parse(r.at) >= from + 12 * hour), "later runs succeed");
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.keysMinted, 4, "no key minted twice for the failed push");
    });

    test("KMS refusing the reader breaks its jobs (and only while it lasts), and the rotation goes on", async () => {
        const from = start + 3 * day;
        const result = await rehearse({ faults: { kmsDeny: [{ from, until: from + day, principal: reader }] } });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.ok(result.summary.brokenJobs > 0, "the reader's jobs could not decrypt the secret");
        for (const job of result.jobs.broken) {
            const at = Date.parse(job.at);
            assert.ok(at >= from && at < from + day + 6 * hour, `job broke at ${job.at}, outside the denial`);
            assert.match(job.consumer, /secret ci\/deploy\/aws-credentials as arn:aws:iam::210987654321:role\/ci-runner/);
        }
        assert.equal(result.summary.keysMinted, 4);
    });

    test("an emergency request rotates within hours and no reader's job breaks", async () => {
        const result = await rehearse({ durationMs: 10 * day, requests: [{ at: start + 3 * day + 1, mode: "emergency" }] });
        assert.equal(result.summary.violationCount, 0, violations(result));
        assert.equal(result.summary.keysMinted, 2, "the first key and the emergency's (the next weekly one is due after the span)");
        assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
        assert.equal(result.summary.runsFailed, 0);
    });

    test("revoke: the old key dies with the mint; the reader's next job reads the new AWSCURRENT", async () => {
        const result = await rehearse({ durationMs: 10 * day, requests: [{ at: start + 3 * day + 1, mode: "revoke" }] });
        assert.equal(result.summary.violationCount, 0, violations(result));
        const revokeRun = result.runs.find((r) => Date.parse(r.at) > start + 3 * day && r.operations.length > 0)!;
        assert.ok(revokeRun.ok);
        // Jobs that started before the revoke run's writes landed (its key check takes simulated
        // seconds) and ran on with the old key may break (the request explains them); none later.
        for (const job of result.jobs.broken) assert.ok(Date.parse(job.startedAt) < Date.parse(revokeRun.at) + 60_000, `${job.consumer} broke on a job started after the revoke: ${job.reason}`);
    });
});

describe("the Secrets Manager fake", () => {
    const ctxOf = (world: World, now: number): ModelContext => ({ world, clock: { now: () => now, sleep: async () => {} }, noteFault: () => {} });
    const secretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ci/x-Rh3arS";

    test("a put makes AWSCURRENT, the previous one becomes AWSPREVIOUS; the reader decrypts through KMS with the secret's ARN", async () => {
        const world = new World(new Random(1));
        const secret = secretsManagerModels["aws:secretsmanager/secret:Secret"];
        const version = secretsManagerModels["aws:secretsmanager/secretVersion:SecretVersion"];
        for (const w of secret.writes!({ name: "ci/x" }, undefined)) world.stores.write(w.address, w, 0);
        await secret.outputs!({ name: "ci/x" }, ctxOf(world, 0));
        const v1 = (await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A1","SecretAccessKey":"s1"}' }, ctxOf(world, 1))) as { versionStages: string[]; versionId: string };
        assert.deepEqual(v1.versionStages, ["AWSCURRENT"]);
        const v2 = (await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A2","SecretAccessKey":"s2"}' }, ctxOf(world, 2))) as { versionStages: string[] };
        assert.deepEqual(v2.versionStages, ["AWSCURRENT"]);
        const role = "arn:aws:iam::123456789012:role/ci-runner";
        assert.equal(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", role).value, '{"AccessKeyId":"A2","SecretAccessKey":"s2"}');
        assert.equal(getSecretValue(world.stores, world, "ci/x", "AWSPREVIOUS", role).value, '{"AccessKeyId":"A1","SecretAccessKey":"s1"}');
        // Another account's principal needs the resource policy; KMS may still refuse it.
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", reader).error!, /AccessDeniedException: .* secretsmanager:GetSecretValue/);
        world.kms.denied.add(role);
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", role).error!, /AccessDeniedException: .* kms:Decrypt/);
        world.kms.denied.delete(role);
        // With a resource policy naming it, another account's principal still cannot use the AWS-managed key.
        world.stores.write("aws-sm:ci/x:secret:policy", { value: JSON.stringify({ Statement: [{ Principal: { AWS: [reader] } }] }), secret: false }, 3);
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", reader).error!, /AccessDeniedException: .* kms:Decrypt on resource: .*key-/);
        // The job view reads AWSCURRENT as of its own instant.
        const view = secretsManagerView({ type: "aws-secrets-manager", name: "ci/x", recoveryWindowInDays: 30 }, "x");
        assert.deepEqual(view.holds(world.stores.asOf(1)), { accessKeyId: "A1", secret: "s1" });
        assert.deepEqual(view.holds(world.stores), { accessKeyId: "A2", secret: "s2" });
    });
    test("a change of kmsKey re-encrypts AWSCURRENT and AWSPREVIOUS under the new key and keeps the old key working", async () => {
        // AWS Secrets Manager User Guide, "Change the encryption key for a secret": UpdateSecret with
        // a new KmsKeyId re-encrypts the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions with the new
        // key (given kms:Encrypt on it, which the operator policy grants) and keeps them encrypted
        // with the previous key too, so either key decrypts them.
        const world = new World(new Random(1));
        const oldReader = "arn:aws:iam::210987654321:role/old-reader";
        const newReader = "arn:aws:iam::210987654321:role/new-reader";
        world.kms.ensureKey("alias/old", [oldReader]);
        world.kms.ensureKey("alias/new", [newReader]);
        const secret = secretsManagerModels["aws:secretsmanager/secret:Secret"];
        const version = secretsManagerModels["aws:secretsmanager/secretVersion:SecretVersion"];
        for (const w of secret.writes!({ name: "ci/x" }, undefined)) world.stores.write(w.address, w, 0);
        await secret.outputs!({ name: "ci/x", kmsKeyId: "alias/old" }, ctxOf(world, 0));
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A1","SecretAccessKey":"s1"}' }, ctxOf(world, 1));
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A2","SecretAccessKey":"s2"}' }, ctxOf(world, 2));
        world.stores.write("aws-sm:ci/x:secret:policy", { value: JSON.stringify({ Statement: [{ Principal: { AWS: [oldReader, newReader] } }] }), secret: false }, 2);
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", newReader).error!, /kms:Decrypt|not authorized|AccessDenied/);
        // The update of the secret (kms_key_id in place: UpdateSecret).
        await secret.outputs!({ name: "ci/x", kmsKeyId: "alias/new" }, ctxOf(world, 3));
        for (const stage of ["AWSCURRENT", "AWSPREVIOUS"]) {
            assert.ok(getSecretValue(world.stores, world, "ci/x", stage, newReader).value, `${stage} as the new key's reader`);
            assert.ok(getSecretValue(world.stores, world, "ci/x", stage, oldReader).value, `${stage} as the old key's reader`);
        }
    });
    test("removing kmsKey leaves the secret under its key: the provider's update sends no KmsKeyId", async () => {
        // terraform-provider-aws internal/service/secretsmanager/secret.go `resourceSecretUpdate`:
        // `KmsKeyId` is set only `if v, ok := d.GetOk("kms_key_id")`, so an emptied kms_key_id is an
        // UpdateSecret without it, which keeps the key (only an explicit empty string would switch to
        // aws/secretsmanager, UpdateSecret API reference).
        const world = new World(new Random(1));
        world.kms.ensureKey("alias/team", [reader]);
        const secret = secretsManagerModels["aws:secretsmanager/secret:Secret"];
        const version = secretsManagerModels["aws:secretsmanager/secretVersion:SecretVersion"];
        for (const w of secret.writes!({ name: "ci/x" }, undefined)) world.stores.write(w.address, w, 0);
        await secret.outputs!({ name: "ci/x", kmsKeyId: "alias/team" }, ctxOf(world, 0));
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A1","SecretAccessKey":"s1"}' }, ctxOf(world, 1));
        world.stores.write("aws-sm:ci/x:secret:policy", { value: JSON.stringify({ Statement: [{ Principal: { AWS: [reader] } }] }), secret: false }, 1);
        await secret.outputs!({ name: "ci/x" }, ctxOf(world, 2));
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A2","SecretAccessKey":"s2"}' }, ctxOf(world, 3));
        // Another account's reader still decrypts with the team key (aws/secretsmanager would refuse it).
        assert.equal(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", reader).value, '{"AccessKeyId":"A2","SecretAccessKey":"s2"}');
    });
    test("a secret created again under a deleted one's name without kmsKey is under aws/secretsmanager", async () => {
        // CreateSecret without KmsKeyId (secret.go `resourceSecretCreate`): the AWS-managed key,
        // whatever key the deleted secret of that name had.
        const world = new World(new Random(1));
        world.kms.ensureKey("alias/team", [reader]);
        const secret = secretsManagerModels["aws:secretsmanager/secret:Secret"];
        const version = secretsManagerModels["aws:secretsmanager/secretVersion:SecretVersion"];
        const create = async (inputs: Record<string, unknown>, at: number) => {
            for (const w of secret.writes!(inputs, undefined)) world.stores.write(w.address, w, at);
            await secret.outputs!(inputs, ctxOf(world, at));
        };
        await create({ name: "ci/x", kmsKeyId: "alias/team" }, 0);
        world.stores.delete("aws-sm:ci/x:secret", 5);
        await create({ name: "ci/x" }, 10);
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A1","SecretAccessKey":"s1"}' }, ctxOf(world, 11));
        world.stores.write("aws-sm:ci/x:secret:policy", { value: JSON.stringify({ Statement: [{ Principal: { AWS: [reader] } }] }), secret: false }, 12);
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", reader).error ?? "", /kms:Decrypt on resource: .*key-/);
    });
    test("a secret created again under a deleted one's name has no value until its first version", async () => {
        // CreateSecret without a value makes a secret with no versions: GetSecretValue of
        // AWSCURRENT is ResourceNotFoundException, never the deleted secret's old key.
        const world = new World(new Random(1));
        const secret = secretsManagerModels["aws:secretsmanager/secret:Secret"];
        const version = secretsManagerModels["aws:secretsmanager/secretVersion:SecretVersion"];
        const create = async (at: number) => {
            for (const w of secret.writes!({ name: "ci/x" }, undefined)) world.stores.write(w.address, w, at);
            await secret.outputs!({ name: "ci/x" }, ctxOf(world, at));
        };
        await create(0);
        await version.outputs!({ secretId: secretArn, secretString: '{"AccessKeyId":"A1","SecretAccessKey":"s1"}' }, ctxOf(world, 1));
        world.stores.delete("aws-sm:ci/x:secret", 5);
        await create(10);
        const role = "arn:aws:iam::123456789012:role/ci-runner";
        assert.match(getSecretValue(world.stores, world, "ci/x", "AWSCURRENT", role).error ?? "", /ResourceNotFoundException/);
        assert.deepEqual(secretsManagerView({ type: "aws-secrets-manager", name: "ci/x", recoveryWindowInDays: 30 }, "x").holds(world.stores), {});
    });
});
