import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fakeSecretFor, keyIdFor, reveal } from "./support/mocks";
import { ofType, runProgram, type RunResult } from "./support/run";

// The program with S3 env-file targets, under mocks: the exact inputs of the object and the
// managed bucket policy on a mint run, a no-change run and a rotation, and the key only as a secret.

const kms = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666";
const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci/deploy", env: "production", kmsKey: kms, variables: { AWS_REGION: "eu-west-1" }, tags: { Team: "platform" } },
            {
                type: "aws-s3-env-file",
                bucket: "acme-ci-staging",
                key: "staging.env",
                kmsKey: kms,
                bucketKey: false,
                contentType: "text/x-shellscript",
                names: { accessKeyId: "CI_KEY_ID", secretAccessKey: "CI_SECRET" },
                readers: ["arn:aws:iam::123456789012:role/app-task"],
                bucketPolicy: "manage",
            },
        ],
    },
];

const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const SECRET1 = fakeSecretFor("deploy-key-1");
const SECRET2 = fakeSecretFor("deploy-key-2");
const header = '# AWS access key of credential set "deploy", rotated by ci-key-rotation: edits here are overwritten.';

async function runAfter(previous: RunResult, now: string) {
    const rotation = previous.outputs!.rotation;
    const keys = Object.values(rotation.sets as Record<string, any>).flatMap((s) => s.keys);
    return runProgram({
        config: { credentials },
        now,
        world: { stackOutputs: { rotation }, accessKeys: { "ci-deploy": keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) } },
    });
}

const objectsOf = (r: RunResult) =>
    ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").map((x) => {
        const { plain, secretPaths } = reveal(x.inputs);
        return { name: x.name, inputs: plain, secretPaths };
    })
    // Registration order follows when inputs resolve; compare by name.
    .sort((a, b) => a.name.localeCompare(b.name));

function expectedObjects(keyId: string, secret: string) {
    return ([
        {
            name: "s3-env-file-s3-acme-ci-env-ci-deploy-production-object",
            inputs: {
                bucket: "acme-ci-env",
                key: "ci/deploy/production",
                content: `${header}\nAWS_ACCESS_KEY_ID=${keyId}\nAWS_SECRET_ACCESS_KEY=${secret}\nAWS_REGION=eu-west-1\n`,
                contentType: "text/plain; charset=utf-8",
                serverSideEncryption: "aws:kms",
                kmsKeyId: kms,
                bucketKeyEnabled: true,
                metadata: { "access-key-id": keyId },
                tags: { Team: "platform" },
            },
            secretPaths: ["content"],
        },
        {
            name: "s3-env-file-s3-acme-ci-staging-staging-env-object",
            inputs: {
                bucket: "acme-ci-staging",
                key: "staging.env",
                content: `${header}\nCI_KEY_ID=${keyId}\nCI_SECRET=${secret}\n`,
                contentType: "text/x-shellscript",
                serverSideEncryption: "aws:kms",
                kmsKeyId: kms,
                metadata: { "access-key-id": keyId },
            },
            secretPaths: ["content"],
        },
    ]).sort((a, b) => a.name.localeCompare(b.name));
}

describe("program with S3 env-file targets", () => {
    let first: RunResult;

    test("mint run: one SSE-KMS object per target with exact inputs, the key's text only as a secret", async () => {
        first = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z" });
        assert.equal(first.error, undefined, first.error?.stack);
        assert.deepEqual(objectsOf(first), expectedObjects(KEY1, SECRET1));
        for (const { name } of objectsOf(first)) {
            assert.deepEqual(first.resourceOptions.get(name)?.additionalSecretOutputs, ["content"], name);
            // Default create-then-delete: a moved file exists at its new address before the old one goes.
            assert.equal(first.resourceOptions.get(name)?.deleteBeforeReplace, false, name);
        }
    });

    test("the managed bucket policy is named by the bucket and denies unencrypted puts, other keys, plain HTTP and other readers", () => {
        const [policy] = ofType(first, "aws:s3/bucketPolicy:BucketPolicy");
        assert.equal(ofType(first, "aws:s3/bucketPolicy:BucketPolicy").length, 1, "only the target that says manage");
        assert.equal(policy.name, "s3-bucket-policy-acme-ci-staging");
        assert.equal(policy.inputs.bucket, "acme-ci-staging");
        const doc = JSON.parse(policy.inputs.policy);
        const object = "arn:aws:s3:::acme-ci-staging/staging.env";
        assert.deepEqual(
            doc.Statement.map((s: any) => [s.Sid.replace(/[0-9a-f]{8}$/, ""), s.Effect, s.Action, s.Resource, s.Condition]),
            [
                ["DenyUnencryptedPut", "Deny", "s3:PutObject", object, { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } }],
                ["DenyPutWithOtherKey", "Deny", "s3:PutObject", object, { StringNotEquals: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kms } }],
                ["DenyInsecureTransport", "Deny", "s3:*", object, { Bool: { "aws:SecureTransport": false } }],
                ["DenyOtherReaders", "Deny", ["s3:GetObject", "s3:GetObjectVersion"], object, { ArnNotEquals: { "aws:PrincipalArn": ["arn:aws:iam::123456789012:role/app-task"] } }],
            ],
        );
    });

    test("the file is written after the managed bucket policy: a new kmsKey never meets the old DenyPutWithOtherKey", () => {
        // The policy denies PutObject under any key but the target's. Were the two independent, the
        // engine could upload the file under a new key while the old policy still names the old one:
        // AccessDenied, a failed run.
        const managed = first.resourceOptions.get("s3-env-file-s3-acme-ci-staging-staging-env-object")!;
        assert.ok(managed.dependencies.some((urn) => urn.endsWith("::s3-bucket-policy-acme-ci-staging")), JSON.stringify(managed.dependencies));
        // A file whose bucket policy the program does not manage waits for nothing of S3's.
        const documented = first.resourceOptions.get("s3-env-file-s3-acme-ci-env-ci-deploy-production-object")!;
        assert.ok(!documented.dependencies.some((urn) => urn.includes("s3-bucket-policy")), JSON.stringify(documented.dependencies));
    });

    test("the target check gets each file's access key id as evidence", () => {
        const [check] = first.registrations.filter((r) => r.name === "deploy-target-check");
        const writes = reveal(check.inputs).plain.writes.map((w: any) => ({ what: w.what, accessKeyId: w.accessKeyId })).sort((a: any, b: any) => a.what.localeCompare(b.what));
        assert.deepEqual(writes, [
            { what: "env file s3://acme-ci-env/ci/deploy/production", accessKeyId: KEY1 },
            { what: "env file s3://acme-ci-staging/staging.env", accessKeyId: KEY1 },
        ]);
    });

    test("no-change run: the same inputs, so the engine sees no diff and uploads nothing", async () => {
        const r = await runAfter(first, "2026-11-02T00:00:00Z");
        assert.equal(r.error, undefined, r.error?.stack);
        assert.equal(r.outputs!.sets.deploy.step, "none");
        assert.deepEqual(objectsOf(r), expectedObjects(KEY1, SECRET1));
        assert.deepEqual(ofType(r, "aws:s3/bucketPolicy:BucketPolicy").map((p) => p.inputs), ofType(first, "aws:s3/bucketPolicy:BucketPolicy").map((p) => p.inputs));
    });

    test("rotation: the same objects (updated in place) now hold key 2; no output carries a secret", async () => {
        const r = await runAfter(first, "2026-11-09T00:00:00Z");
        assert.equal(r.error, undefined, r.error?.stack);
        assert.equal(r.outputs!.sets.deploy.step, "mint");
        assert.deepEqual(objectsOf(r), expectedObjects(KEY2, SECRET2));
        const outputs = JSON.stringify(r.outputs);
        assert.ok(!outputs.includes(SECRET1) && !outputs.includes(SECRET2));
    });

    test("a target without a KMS key in a set without one is a config error, and nothing is registered", async () => {
        const r = await runProgram({ config: { credentials: [{ name: "deploy", targets: [{ type: "aws-s3-env-file", bucket: "acme-ci-env", env: "production" }] }] }, now: "2026-11-01T00:00:00Z" });
        assert.match(r.error?.message ?? "", /credentials\[0\]\.targets\[0\]\.kmsKey is required when the set has no KMS key/);
        assert.deepEqual(r.registrations, []);
    });
});
