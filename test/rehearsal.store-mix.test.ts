import assert from "node:assert/strict";
import { test } from "node:test";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { runScenario, withoutAccepted, type Scenario } from "./support/rehearsal-scenarios";

// Fixed-seed reductions of what the random property scenarios (test/rehearsal.property.test.ts)
// found when they combine the AWS-native stores with the set's KMS key.

const runner = "arn:aws:iam::123456789012:role/ci-runner";
const hour = 3_600_000;
const day = 24 * hour;
const start = Date.parse("2026-01-01T00:00:00Z");

function config(targets: object[]): Record<string, string> {
    return {
        "aws:region": "us-east-1",
        "ci-key-rotation:credentials": JSON.stringify([{ name: "deploy", kms: { create: true, decrypters: [runner] }, targets: [{ type: "github-repository", repository: "acme/api" }, ...targets] }]),
        "ci-key-rotation:every": "P7D",
        "ci-key-rotation:overlap": "PT24H",
        "ci-key-rotation:retireAfter": "P3D",
    };
}

function rehearse(targets: object[], overrides: Partial<SimulationOptions> = {}): Promise<SimulationResult> {
    return simulate({ config: config(targets), stack: "dev", start, durationMs: 3 * day, cadenceMs: 6 * hour, seed: 11, ...overrides });
}

/** A scenario as the property suite drew it: its JSON drops the options drawn as absent, which read as absent. */
function drawn(s: object): Scenario {
    return s as unknown as Scenario;
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

// The set's managed key lets its decrypters use it through Secrets Manager and S3 (the key
// policy's `kms:ViaService` statement): the runner role reads a secret or an env file encrypted
// under the set's key. Shown by its jobs running at all: a day of KMS refusing the runner breaks
// them then, and only then.
for (const [store, target, consumer] of [
    ["a Secrets Manager secret", { type: "aws-secrets-manager" }, "job reading secret ci/deploy/aws-credentials"],
    ["an SSM SecureString", { type: "aws-ssm-parameter" }, "job reading /ci/deploy/AWS_ACCESS_KEY_ID"],
    ["an S3 env file", { type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci", env: "production", readers: [runner] }, "container reading s3://acme-ci-env/ci/production"],
] as const) {
    test(`the runner, a decrypter of the set's managed key, reads ${store} encrypted under it`, async () => {
        const from = start + day;
        const result = await rehearse([target], { faults: { kmsDeny: [{ from, until: from + day, principal: runner }] } });
        assert.equal(result.summary.violationCount, 0, violations(result));
        const broken = result.jobs.broken.filter((b) => b.consumer.startsWith(consumer));
        assert.ok(broken.length > 0, `the reader's jobs ran before the denial and broke during it: ${JSON.stringify(result.jobs.broken.slice(0, 3))}`);
        for (const b of broken) assert.ok(Date.parse(b.at) >= from && Date.parse(b.at) < from + day, `broke outside the denial: ${b.at}`);
    });
}

// Open: a reader that can never decrypt goes unseen. CiJobs (rotation/rehearsal/jobs.ts `start`)
// counts a place's jobs only from the first time it read credentials (before the first run there
// are none); a reader the key never lets decrypt (a task role that is not among the set's
// `decrypters`: the set's key policy names only them, and denies everyone else) never reads any,
// so its jobs never start and the rehearsal reports 0 broken jobs while every real container
// starts without a key. Fix in jobs.ts (count a place once its target holds a key, not once its
// consumer read one) or refuse the config (a target that encrypts with the set's managed key and
// names `readers` outside `decrypters`, in rotation/core/config-checks.ts).
test("an S3 reader that is not a decrypter of the set's managed key shows as broken containers", { todo: "jobs of a reader that never decrypts are never counted (see the comment above)" }, async () => {
    const result = await rehearse([{ type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci", env: "production", readers: ["arn:aws:iam::123456789012:role/api-task"] }]);
    assert.ok(result.summary.brokenJobs > 0 || result.summary.violationCount > 0, "every container of the task role starts without a key, and the rehearsal says nothing");
});

// Found by the property suite (REHEARSAL_PROPERTY_SEED=20261124 path 34, replayed here as drawn):
// a mint fails on a target write (a random API error on the SSM parameter), so the next run rolls
// the targets back to the previous key (docs/failures.md); that run's write of the Dependabot
// secret fails too, after the key id was written. The GitHub provider saves the planned value of a
// failed update (docs/rehearsal.md, the engine table), so the engine's record says the secret holds
// the old key's secret while GitHub still holds the new key's: rolling back again wrote nothing and
// the target stayed torn (I3, "a secret that does not match"; Dependabot jobs failing with
// SignatureDoesNotMatch). The run after a failed rollback now writes the other way: it finishes the
// mint with the unconfirmed key, a real difference for every target the rollback declared.
const tornRollback = drawn({"sets":1,"targets":[{"type":"gitlab-group","group":"acme","environmentScope":"production"},{"type":"github-dependabot","repository":"acme/bot"}],"overlapH":3,"settleH":2,"retireH":2,"gate":true,"gateTimeoutH":3,"slackH":1,"cadenceMin":90,"runCount":66,"requests":[{"run":41,"mode":"normal"}],"failRate":0.1,"slowKeyRate":0,"crashRate":0,"kill":{"run":35,"after":1},"missRate":0.1,"jitterMin":10,"reject":{"run":3,"lengthH":4},"seed":999981,"stores":[{"kms":{"key":"arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"},"encrypt":"none","encryptOwnKey":false,"s3":{"ownKey":false,"bucketKey":false,"manage":true},"sm":{"kmsKey":"arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"},"ssm":{"format":"parameters","kmsKey":"alias/ci-deploy","distribute":"rate(30 minutes)"}},{"kms":{"key":"alias/team-ci"},"encrypt":"none","encryptOwnKey":false}],"storeFaults":{"kmsThrottled":{"run":47,"lengthH":1},"deliveryFails":{"run":9,"lengthH":1}}});

test("a rollback whose own GitHub write fails leaves no torn target behind", async () => {
    const result = withoutAccepted(await runScenario(tornRollback));
    assert.equal(result.summary.violationCount, 0, violations(result).slice(0, 2000));
});

// Found by the property suite (REHEARSAL_PROPERTY_SEED=7001 path 5): in one run, the write of an
// encrypting Dependabot target's secret fails (its planned value is saved, GitHub keeps the old
// ciphertext) and the run is then killed, so no output of it is saved. Later runs finish the mint,
// see no diff for that secret, and the target check fails. A target check that fails on the key a
// run pushes (with every write succeeding) now marks that key unconfirmed, so the next run retires
// it and writes every target with the previous key (a real diff): docs/failures.md.
const staleAfterKill = drawn({"sets":2,"targets":[{"type":"github-dependabot","repository":"acme/bot"},{"type":"gitlab-group","group":"acme","environmentScope":"production"}],"overlapH":1,"settleH":1,"retireH":1,"gate":true,"gateTimeoutH":3,"slackH":3,"cadenceMin":30,"runCount":66,"requests":[],"failRate":0.03,"slowKeyRate":0,"crashRate":0.05,"kill":{"run":5,"after":4},"missRate":0.1,"jitterMin":0,"seed":317521,"stores":[{"kms":{"key":"alias/team-ci"},"encrypt":"all","encryptOwnKey":false,"s3":{"ownKey":false,"bucketKey":true,"manage":true,"reader":"runner"},"sm":{"reader":"other-account"}},{"kms":{"create":true,"decrypters":["arn:aws:iam::123456789012:role/ci-runner"]},"encrypt":"all","encryptOwnKey":false,"s3":{"ownKey":true,"bucketKey":true,"manage":false,"reader":"task"},"sm":{}}],"storeFaults":{}});

test("a refused GitHub write followed by a kill in the same run is recovered by later runs (I8)", async () => {
    const result = withoutAccepted(await runScenario(staleAfterKill));
    assert.equal(result.summary.violationCount, 0, violations(result).slice(0, 2000));
});

// Found by the property suite (REHEARSAL_PROPERTY_SEED=20261202 path 84): a mint's writes keep
// failing. One run rolls the Dependabot target back from the unconfirmed key and its write of the
// key id fails (the engine's record now claims the old key, GitHub holds the new one), so the next
// run finishes the mint with the new key, a real write there. That run's KMS Encrypt for the
// target's ciphertext fails, so GitHub's secrets are never written (the engine skips what depends
// on a failed step) and their records are unchanged; but the run took the skip for a refused
// write, marked the key unconfirmed again and rolled back once more: no difference to write, and
// the Dependabot target kept the new key's id while that key was deactivated and deleted.
const skippedTakenForRefused = drawn({"sets":1,"targets":[{"type":"github-dependabot","repository":"acme/bot"}],"overlapH":2,"settleH":2,"retireH":1,"gate":false,"gateTimeoutH":2,"slackH":11,"cadenceMin":90,"runCount":65,"requests":[{"run":44,"mode":"normal"},{"run":72,"mode":"normal"}],"failRate":0.1,"slowKeyRate":0.2,"crashRate":0,"missRate":0.1,"jitterMin":10,"reject":{"run":56,"lengthH":3},"seed":999982,"stores":[{"kms":{"key":"arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"},"encrypt":"first","encryptOwnKey":false,"s3":{"ownKey":true,"bucketKey":true,"manage":false,"reader":"runner"},"sm":{"kmsKey":"alias/ci-deploy","reader":"runner"},"ssm":{"format":"parameters","kmsKey":"alias/ci-deploy","distribute":"rate(30 minutes)"}},{"kms":{"create":true,"decrypters":["arn:aws:iam::123456789012:role/ci-runner"]},"encrypt":"first","encryptOwnKey":true,"sm":{"kmsKey":"arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666","reader":"runner"},"ssm":{"format":"credentials-file"}}],"storeFaults":{"kmsThrottled":{"run":16,"lengthH":6},"kmsDenial":{"window":{"run":18,"lengthH":3},"kind":"denied","everyone":false}}});

test("a GitHub secret skipped because its KMS ciphertext failed is not taken for a refused write (I2, I4)", async () => {
    const result = withoutAccepted(await runScenario(skippedTakenForRefused));
    assert.equal(result.summary.violationCount, 0, violations(result).slice(0, 2000));
});

// Found by the property suite (REHEARSAL_PROPERTY_SEED=20261201, the 29th scenario): a revoke
// switches the old key off and its run fails creating the new key; the next run creates it, and
// its write of one GitHub secret fails. The provider saved the planned value, so the engine's
// record already claims the new key; after a revoke there is no other key to roll back to, so
// every later run declared the same value, wrote nothing, and failed its target check (I8, a
// manual step). That run now replaces the set's GitHub secrets (a new replacement trigger,
// delete-first): a real write.
const revokeAfterRefusedWrite = drawn({"sets":2,"targets":[{"type":"github-repository","repository":"acme/api"},{"type":"github-dependabot","repository":"acme/bot"}],"overlapH":2,"settleH":2,"retireH":1,"gate":true,"gateTimeoutH":2,"slackH":2,"cadenceMin":90,"runCount":65,"requests":[{"run":3,"mode":"revoke"},{"run":2,"mode":"revoke"}],"failRate":0.03,"slowKeyRate":0,"crashRate":0,"kill":{"run":57,"after":7},"missRate":0.1,"jitterMin":0,"reject":{"run":10,"lengthH":6},"seed":491230,"stores":[{"kms":{"create":true,"decrypters":["arn:aws:iam::123456789012:role/ci-runner"]},"encrypt":"first","encryptOwnKey":false,"s3":{"ownKey":false,"bucketKey":false,"manage":false,"reader":"runner"},"sm":{"reader":"other-account"}},{"kms":{"key":"arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"},"encrypt":"none","encryptOwnKey":false,"s3":{"ownKey":true,"bucketKey":false,"manage":true,"reader":"task"}}],"storeFaults":{"s3":{"window":{"run":57,"lengthH":4},"code":"KMSAccessDenied"},"kmsThrottled":{"run":35,"lengthH":3},"kmsDenial":{"window":{"run":17,"lengthH":6},"kind":"deny","everyone":false}}});

test("after a revoke, a refused GitHub write is written again by replacing the secret (I8)", async () => {
    const result = withoutAccepted(await runScenario(revokeAfterRefusedWrite));
    assert.equal(result.summary.violationCount, 0, violations(result).slice(0, 2000));
});

// Found by the property suite (REHEARSAL_PROPERTY_SEED=7000 path 68): after a mint run whose write
// of a GitHub repository secret failed (run 8, random API error), set0's repository later held a
// key that was deactivated (I2 at run 39) and then deleted, and set1's key check failed on an
// Inactive key (I8 at run 44). Fixed with the scenario above it: a skipped write is no refused one.
const deactivatedWhileHeld = drawn({"sets":2,"targets":[{"type":"github-repository","repository":"acme/api"}],"overlapH":3,"settleH":1,"retireH":1,"gate":true,"gateTimeoutH":1,"slackH":1,"cadenceMin":60,"runCount":66,"requests":[{"run":29,"mode":"revoke"},{"run":61,"mode":"revoke"}],"failRate":0.03,"slowKeyRate":0,"crashRate":0.05,"missRate":0.1,"jitterMin":0,"reject":{"run":43,"lengthH":4},"seed":999981,"stores":[{"kms":{"key":"alias/team-ci"},"encrypt":"all","encryptOwnKey":false,"s3":{"ownKey":true,"bucketKey":false,"manage":true,"reader":"task"}},{"encrypt":"all","encryptOwnKey":true,"sm":{"reader":"other-account"}}],"storeFaults":{"s3":{"window":{"run":43,"lengthH":1},"code":"SlowDown"},"smThrottle":{"run":26,"lengthH":6},"kmsDenial":{"window":{"run":1,"lengthH":6},"kind":"denied","everyone":true}}});

test("after a failed GitHub write, no key a target holds is deactivated (I2, I4)", async () => {
    const result = withoutAccepted(await runScenario(deactivatedWhileHeld));
    assert.equal(result.summary.violationCount, 0, violations(result).slice(0, 2000));
});
