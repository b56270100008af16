import assert from "node:assert/strict";
import { test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { Random } from "../rotation/rehearsal/random";
import { resourceModels } from "../rotation/rehearsal/targets";
import { operatorPrincipal, World } from "../rotation/rehearsal/world";
import { keyPolicy } from "../providers/kms/spec";
import { slowTier } from "./support/rehearsal-child";

// Rehearsals of a set whose key is KMS-encrypted in its GitHub and GitLab targets: jobs on a
// runner with a role decrypt the ciphertext at job time with the target's context.

const runner = "arn:aws:iam::123456789012:role/ci-runner";
const hour = 3_600_000;
const day = 24 * hour;
const start = Date.parse("2026-01-01T00:00:00Z");
const credentials = [
    {
        name: "deploy",
        kms: { create: true, decrypters: [runner] },
        targets: [
            { type: "github-repository", repository: "acme/api", encrypt: { context: { repository: "acme/api" } } },
            { type: "gitlab-project", project: "acme/web", encrypt: { context: { project: "acme/web" } } },
            { type: "github-repository", repository: "acme/plain" },
        ],
    },
];
const config = {
    "ci-key-rotation:credentials": JSON.stringify(credentials),
    "ci-key-rotation:every": "P7D",
    "ci-key-rotation:overlap": "PT24H",
    "ci-key-rotation:retireAfter": "P3D",
    "aws:region": "eu-west-1",
};

function rehearse(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return simulate({ config, project: "ci-key-rotation", stack: "dev", start, durationMs: 20 * day, cadenceMs: 6 * hour, seed: 11, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

test("weeks of rotation with encrypting targets: every invariant holds, every job decrypts, Encrypt only when a key is minted", async () => {
    const result = await rehearse({});
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.runsFailed, 0);
    assert.equal(result.summary.brokenJobs, 0, JSON.stringify(result.jobs.broken.slice(0, 3)));
    assert.ok(result.jobs.started > 100, "jobs ran");
    assert.ok(result.summary.keysMinted >= 3);
});

test("KMS denies the runner Decrypt for a day: those jobs fail, saying so, and work again after", async () => {
    const from = Date.parse("2026-01-09T00:00:00Z");
    const until = from + day;
    const result = await rehearse({ faults: { kmsDenied: [{ principal: runner, from, until }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const broken = result.jobs.broken;
    assert.ok(broken.length > 0, "jobs that cannot decrypt are reported broken");
    for (const b of broken) {
        assert.match(b.reason, /could not decrypt the secret: AccessDeniedException/);
        const at = Date.parse(b.at);
        assert.ok(at >= from && at < until, `a job broke outside the denial: ${b.at}`);
        assert.doesNotMatch(b.consumer, /acme\/plain/, "the plain target needs no KMS");
    }
});

test("KMS throttles Encrypt during a mint: those runs fail, a later one finishes the rotation, no encrypting target is torn (I8)", async () => {
    const from = Date.parse("2026-01-08T00:00:00Z");
    const result = await rehearse({ faults: { kmsThrottled: [{ from, until: from + 7 * hour }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const failed = result.runs.filter((r) => !r.ok);
    assert.ok(failed.length >= 1 && failed.every((r) => r.faults.some((f) => f.startsWith("KMS throttled Encrypt"))), JSON.stringify(failed.map((r) => r.faults)));
    // An encrypting target's id waits for its ciphertext: no job there reads the new id beside the
    // old key's ciphertext. (The failed run may still leave the plain target torn, as any failed
    // run can: the engine stops between its two writes; those jobs are explained by the fault.)
    const encrypting = result.jobs.broken.filter((b) => !b.consumer.includes("acme/plain"));
    assert.deepEqual(encrypting, []);
});

test("a ciphertext made with another context than the jobs use breaks them, and the invariants say so (I2)", async () => {
    const model = resourceModels["aws:kms/ciphertext:Ciphertext"];
    const outputs = model.outputs!;
    model.outputs = (inputs, ctx) => outputs({ ...inputs, context: { wrong: "context" } }, ctx);
    try {
        const result = await rehearse({ durationMs: 3 * day });
        assert.ok(result.summary.brokenJobs > 0);
        assert.ok(result.violations.some((v) => v.invariant === "I2" && /could not decrypt the secret: InvalidCiphertextException/.test(v.message)), violations(result));
    } finally {
        model.outputs = outputs;
    }
});

test("an emergency rotation and a revoke with encrypting targets keep every invariant", async () => {
    for (const mode of ["emergency", "revoke"] as const) {
        const result = await rehearse({ durationMs: 6 * day, requests: [{ at: Date.parse("2026-01-03T10:30:00Z"), mode }] });
        assert.equal(result.summary.violationCount, 0, `${mode}: ${violations(result)}`);
        assert.equal(result.summary.runsFailed, 0, mode);
    }
});

test("the fake KMS applies the program's key policy: only the decrypter, only with the target's context", () => {
    const world = new World(new Random(1));
    const arn = world.kms.ensureKey("set-deploy", []);
    world.kms.putKeyPolicy(arn, JSON.stringify(keyPolicy({ partition: "aws", account: "123456789012", decrypters: [runner], contexts: [{ repository: "acme/api" }] })));
    const sealed = world.kms.encrypt(arn, "plaintext", { repository: "acme/api" });
    assert.equal(world.kms.decrypt(runner, sealed, { repository: "acme/api" }), "plaintext");
    assert.throws(() => world.kms.decrypt("arn:aws:iam::123456789012:role/other", sealed, { repository: "acme/api" }), /AccessDeniedException/);
    assert.throws(() => world.kms.decrypt(runner, sealed, { repository: "acme/web" }), /InvalidCiphertextException/);
    // A ciphertext made with a context the policy does not grant does not decrypt for the runner either.
    const other = world.kms.encrypt(arn, "plaintext", { repository: "acme/web" });
    assert.throws(() => world.kms.decrypt(runner, other, { repository: "acme/web" }), /AccessDeniedException/);
});

test("the fake KMS honours the key policy's kms:ViaService statement: the decrypter reads through SSM, SM and S3 with the store's context, never directly", () => {
    const world = new World(new Random(1));
    const arn = world.kms.ensureKey("set-deploy", []);
    world.kms.putKeyPolicy(arn, JSON.stringify(keyPolicy({ partition: "aws", account: "123456789012", decrypters: [runner], contexts: [{ repository: "acme/api" }] })));
    const context = { PARAMETER_ARN: "arn:aws:ssm:us-east-1:123456789012:parameter/ci/deploy" };
    const sealed = world.kms.encrypt(arn, "plaintext", context);
    for (const via of ["ssm.us-east-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com", "s3.us-east-1.amazonaws.com"]) {
        assert.equal(world.kms.decrypt(runner, sealed, context, undefined, via), "plaintext", via);
    }
    // Not directly (no service), not through a service the policy does not name, not as another principal.
    assert.throws(() => world.kms.decrypt(runner, sealed, context), /AccessDeniedException/);
    assert.throws(() => world.kms.decrypt(runner, sealed, context, undefined, "lambda.us-east-1.amazonaws.com"), /AccessDeniedException/);
    assert.throws(() => world.kms.decrypt("arn:aws:iam::210987654321:role/other", sealed, context, undefined, "ssm.us-east-1.amazonaws.com"), /AccessDeniedException/);
});

test("the operator reads back through SSM and Secrets Manager what it wrote under the set's key (the provider's GetParameter/GetSecretValue), but never decrypts directly", () => {
    const world = new World(new Random(1));
    const arn = world.kms.ensureKey("set-deploy", []);
    world.kms.putKeyPolicy(arn, JSON.stringify(keyPolicy({ partition: "aws", account: "123456789012", decrypters: [runner], contexts: [{ repository: "acme/api" }] })));
    const context = { SecretARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ci/deploy-AbCdEf" };
    const sealed = world.kms.encrypt(arn, "plaintext", context);
    assert.equal(world.kms.decrypt(operatorPrincipal, sealed, context, undefined, "secretsmanager.us-east-1.amazonaws.com"), "plaintext");
    assert.equal(world.kms.decrypt(operatorPrincipal, sealed, context, undefined, "ssm.us-east-1.amazonaws.com"), "plaintext");
    assert.throws(() => world.kms.decrypt(operatorPrincipal, sealed, context), /AccessDeniedException/);
    const direct = world.kms.encrypt(arn, "plaintext", { repository: "acme/api" });
    assert.throws(() => world.kms.decrypt(operatorPrincipal, direct, { repository: "acme/api" }), /AccessDeniedException/);
});

test("a set with an existing key (by alias): jobs decrypt with the runner role, every invariant holds", async () => {
    const existing = [{ ...credentials[0], kms: { key: "alias/ci/shared" } }];
    const result = await rehearse({ durationMs: 10 * day, config: { ...config, "ci-key-rotation:credentials": JSON.stringify(existing) } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.runsFailed, 0, JSON.stringify(result.runs.filter((r) => !r.ok).map((r) => r.error)));
    assert.equal(result.summary.brokenJobs, 0);
    assert.ok(result.jobs.started > 50);
});

test("a normal year with encrypting targets: every invariant holds, no job breaks", { skip: slowTier ? false : "slow tier: npm run test:slow" }, async () => {
    const result = await rehearse({ durationMs: 365 * day, cadenceMs: 12 * hour });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.runsFailed, 0);
    assert.equal(result.summary.brokenJobs, 0);
    assert.equal(result.summary.keysMinted, 53);
});
