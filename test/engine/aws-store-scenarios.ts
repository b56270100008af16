/**
 * Engine scenarios of the AWS-native stores: the program's `declare` run by the real engine, the
 * test-only AWS plugin (aws-provider.ts) carrying the resources out against moto, and a consumer's
 * read through the AWS SDK. Ids `A<n>`; run one with `ENGINE_SCENARIOS=A1 npm run test:engine`.
 *
 * - A1 `aws-s3-env-file` (bucketPolicy: document): first up writes the env file with SSE-KMS;
 *   `--expect-no-changes` right after; a rotation across time leaves the file holding the new key
 *   and the old key deleted in IAM; no secret in plaintext in `stack export`; `pulumi destroy`
 *   removes every version of the file. Not `bucketPolicy: manage`: the policy it writes denies
 *   requests without TLS (`aws:SecureTransport`), moto evaluates bucket policies and serves plain
 *   HTTP on loopback, so the program's own PutObject is refused (403) there, as it would be on AWS
 *   over HTTP.
 * - A2 `aws-ssm-parameter` (format: parameters): the same course; the consumer reads both
 *   SecureStrings with GetParameter(WithDecryption); destroy deletes both parameters.
 * - A3 `aws-secrets-manager`: the same course; the consumer reads AWSCURRENT (and AWSPREVIOUS
 *   during the overlap) with GetSecretValue; destroy schedules the secret's deletion.
 * - A4 the set's own KMS key (`kms.create`) with an `aws-s3-env-file` target that names no key: the
 *   file is encrypted under the set's key, the alias points at it, no changes after, destroy
 *   deletes the alias and schedules the key's deletion.
 */
import { CreateKeyCommand, DescribeKeyCommand, KMSClient, ListAliasesCommand } from "@aws-sdk/client-kms";
import { GetSecretValueCommand, ListSecretVersionIdsCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { GetParameterCommand, GetParametersByPathCommand, SSMClient } from "@aws-sdk/client-ssm";
import { CreateBucketCommand, GetObjectCommand, ListObjectVersionsCommand, PutBucketVersioningCommand, S3Client } from "@aws-sdk/client-s3";
import assert from "node:assert/strict";
import { errorLines, Stack, tail, type Scenario } from "./scenarios";
import type { RunResult } from "./rig";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const region = "us-east-1";

function expectOk(r: RunResult, what: string): void {
    assert.equal(r.code, 0, `${what} exited ${r.code}: ${errorLines(r.stdout + r.stderr)}\n${tail(r.stdout + r.stderr, 8)}`);
}

/** `KEY=value` lines of a dotenv text (values single-quoted by the store, unquoted here when simple). */
function dotenv(text: string): Record<string, string> {
    return Object.fromEntries(
        text
            .split("\n")
            .filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^'(.*)'$/, "$1")]),
    );
}

export const awsStoreScenarios: Scenario[] = [
    {
        id: "A1",
        title: "aws-s3-env-file under the engine: first up writes the SSE-KMS env file, no changes after, a rotation overwrites it, nothing secret in state, destroy removes it",
        async run(ctx) {
            const user = "ci-deploy-s3";
            const Bucket = "acme-ci-env-engine";
            const Key = "deploy/production";
            const s3 = new S3Client({ region, endpoint: ctx.moto.url, forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
            const kms = new KMSClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
            // The bucket must exist (the program does not create it; docs/stores/aws-s3-env-file.md).
            await s3.send(new CreateBucketCommand({ Bucket }));
            await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: "Enabled" } }));
            const kmsKey = (await kms.send(new CreateKeyCommand({ Description: "env file key" }))).KeyMetadata!.Arn!;

            const stack = await Stack.create(ctx, "s3env", [{ name: "deploy", user, project: 5151 }]);
            try {
                // The set's only target is the env file (Stack.create writes a GitLab one: replaced here).
                stack.ws.writeStackConfig(
                    stack.name,
                    `config:\n  aws:region: ${region}\n  ci-key-rotation:credentials:\n    - name: deploy\n      user:\n        name: ${user}\n      targets:\n` +
                        `        - type: aws-s3-env-file\n          bucket: ${Bucket}\n          prefix: deploy\n          env: production\n          kmsKey: ${kmsKey}\n`,
                );
                const read = async () => {
                    const o = await s3.send(new GetObjectCommand({ Bucket, Key }));
                    return { env: dotenv(await o.Body!.transformToString()), sse: o.ServerSideEncryption, kmsKeyId: o.SSEKMSKeyId, metadata: o.Metadata ?? {} };
                };
                const liveKey = async () => {
                    const state = await stack.stateKeys();
                    const file = await read();
                    const id = file.env.AWS_ACCESS_KEY_ID;
                    const held = state.find((k) => k.id === id);
                    assert.ok(held?.secret, `the state has no secret for the key the env file holds (${id})`);
                    assert.ok(file.env.AWS_SECRET_ACCESS_KEY === held.secret, `AWS_SECRET_ACCESS_KEY in s3://${Bucket}/${Key} is not the secret of ${id}`);
                    assert.equal(file.sse, "aws:kms", "the env file is not SSE-KMS");
                    assert.equal(file.kmsKeyId, kmsKey, "the env file is not encrypted under the target's kmsKey");
                    assert.equal(Object.values(file.metadata)[0], id, "the object's access-key-id metadata (the target check's evidence) is not the key it holds");
                    const iam = await stack.iamKeys(user);
                    assert.equal(iam.find((k) => k.id === id)?.status, "Active", `the key the env file holds (${id}) is not Active in IAM`);
                    return id;
                };

                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await liveKey();
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(HOUR) } }), "pulumi up --expect-no-changes");

                // Rotation: mint (+8d), deactivate (+10d), delete (+14d).
                expectOk(await stack.up(8 * DAY), "up at +8d");
                const k2 = await liveKey();
                assert.notEqual(k2, k1, "+8d: the env file still holds key 1");
                expectOk(await stack.up(10 * DAY), "up at +10d");
                expectOk(await stack.up(14 * DAY), "up at +14d");
                assert.deepEqual(await stack.iamKeys(user), [{ id: k2, status: "Active" }], "+14d: key 1 is not deleted in IAM");
                assert.equal(await liveKey(), k2);
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(14 * DAY + HOUR) } }), "pulumi up --expect-no-changes after the rotation");

                // No secret in plaintext in the state.
                const { text } = await stack.exportState(false);
                for (const secret of ctx.secrets) assert.ok(!text.includes(secret), "pulumi stack export shows a secret access key in plaintext");
                const object = (await stack.exportState(false)).deployment.resources.find((r: any) => r.type === "aws:s3/bucketObjectv2:BucketObjectv2");
                assert.ok(object, "no BucketObjectv2 in the state");
                for (const side of ["inputs", "outputs"]) {
                    assert.equal(typeof object[side].content, "object", `the object's ${side}.content is not a secret in state`);
                }

                // destroy: the file (every version) and the bucket policy are gone.
                expectOk(await stack.cmd(["destroy", "--yes", "--skip-preview"], { env: { CI_KEY_ROTATION_NOW: stack.at(15 * DAY) } }), "pulumi destroy");
                const versions = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: Key }));
                assert.equal((versions.Versions ?? []).length + (versions.DeleteMarkers ?? []).length, 0, "destroy left versions of the env file");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "A2",
        title: "aws-ssm-parameter under the engine: first up writes both SecureStrings, no changes after, a rotation overwrites them, nothing secret in state, destroy removes them",
        async run(ctx) {
            const user = "ci-deploy-ssm";
            const path = "/ci/engine/deploy";
            const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
            const ssm = new SSMClient({ region, endpoint: ctx.moto.url, credentials });
            const kmsKey = (await new KMSClient({ region, endpoint: ctx.moto.url, credentials }).send(new CreateKeyCommand({ Description: "parameter key" }))).KeyMetadata!.Arn!;
            const stack = await Stack.create(ctx, "ssmparam", [{ name: "deploy", user, project: 5252 }]);
            try {
                stack.ws.writeStackConfig(
                    stack.name,
                    `config:\n  aws:region: ${region}\n  ci-key-rotation:credentials:\n    - name: deploy\n      user:\n        name: ${user}\n      targets:\n` +
                        `        - type: aws-ssm-parameter\n          path: ${path}\n          kmsKey: ${kmsKey}\n`,
                );
                // What a job reads: both parameters, decrypted.
                const read = async (name: string) => (await ssm.send(new GetParameterCommand({ Name: `${path}/${name}`, WithDecryption: true }))).Parameter!;
                const liveKey = async () => {
                    const idParam = await read("AWS_ACCESS_KEY_ID");
                    const secretParam = await read("AWS_SECRET_ACCESS_KEY");
                    assert.equal(idParam.Type, "SecureString");
                    assert.equal(secretParam.Type, "SecureString");
                    const id = idParam.Value!;
                    const held = (await stack.stateKeys()).find((k) => k.id === id);
                    assert.ok(held?.secret, `the state has no secret for the key the parameter holds (${id})`);
                    assert.ok(secretParam.Value === held.secret, `${path}/AWS_SECRET_ACCESS_KEY is not the secret of ${id}`);
                    assert.equal((await stack.iamKeys(user)).find((k) => k.id === id)?.status, "Active", `the key the parameters hold (${id}) is not Active in IAM`);
                    return id;
                };

                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await liveKey();
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(HOUR) } }), "pulumi up --expect-no-changes");

                expectOk(await stack.up(8 * DAY), "up at +8d");
                const k2 = await liveKey();
                assert.notEqual(k2, k1, "+8d: the parameters still hold key 1");
                expectOk(await stack.up(10 * DAY), "up at +10d");
                expectOk(await stack.up(14 * DAY), "up at +14d");
                assert.deepEqual(await stack.iamKeys(user), [{ id: k2, status: "Active" }], "+14d: key 1 is not deleted in IAM");
                assert.equal(await liveKey(), k2);
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(14 * DAY + HOUR) } }), "pulumi up --expect-no-changes after the rotation");

                const { text, deployment } = await stack.exportState(false);
                for (const secret of ctx.secrets) assert.ok(!text.includes(secret), "pulumi stack export shows a secret access key in plaintext");
                const params = deployment.resources.filter((r: any) => r.type === "aws:ssm/parameter:Parameter");
                assert.equal(params.length, 2, "expected two parameters in the state");
                for (const p of params) for (const side of ["inputs", "outputs"]) assert.equal(typeof p[side].value, "object", `${p.urn} ${side}.value is not a secret in state`);

                expectOk(await stack.cmd(["destroy", "--yes", "--skip-preview"], { env: { CI_KEY_ROTATION_NOW: stack.at(15 * DAY) } }), "pulumi destroy");
                const left = await ssm.send(new GetParametersByPathCommand({ Path: path, Recursive: true }));
                assert.deepEqual((left.Parameters ?? []).map((p) => p.Name), [], "destroy left parameters");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "A3",
        title: "aws-secrets-manager under the engine: first up writes AWSCURRENT, no changes after, a rotation moves key 1 to AWSPREVIOUS and key 2 to AWSCURRENT, nothing secret in state, destroy deletes the secret",
        async run(ctx) {
            const user = "ci-deploy-sm";
            const SecretId = "ci/engine/deploy";
            const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
            const sm = new SecretsManagerClient({ region, endpoint: ctx.moto.url, credentials });
            const kmsKey = (await new KMSClient({ region, endpoint: ctx.moto.url, credentials }).send(new CreateKeyCommand({ Description: "secret key" }))).KeyMetadata!.Arn!;
            const stack = await Stack.create(ctx, "smsecret", [{ name: "deploy", user, project: 5353 }]);
            try {
                stack.ws.writeStackConfig(
                    stack.name,
                    `config:\n  aws:region: ${region}\n  ci-key-rotation:credentials:\n    - name: deploy\n      user:\n        name: ${user}\n      targets:\n` +
                        `        - type: aws-secrets-manager\n          name: ${SecretId}\n          kmsKey: ${kmsKey}\n`,
                );
                const stage = async (VersionStage: string) => JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId, VersionStage }))).SecretString!) as Record<string, string>;
                const liveKey = async () => {
                    const current = await stage("AWSCURRENT");
                    const id = current.AccessKeyId;
                    const held = (await stack.stateKeys()).find((k) => k.id === id);
                    assert.ok(held?.secret, `the state has no secret for the key AWSCURRENT holds (${id})`);
                    assert.ok(current.SecretAccessKey === held.secret, `AWSCURRENT's SecretAccessKey is not the secret of ${id}`);
                    assert.equal((await stack.iamKeys(user)).find((k) => k.id === id)?.status, "Active", `the key AWSCURRENT holds (${id}) is not Active in IAM`);
                    return id;
                };

                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await liveKey();
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(HOUR) } }), "pulumi up --expect-no-changes");

                expectOk(await stack.up(8 * DAY), "up at +8d");
                const k2 = await liveKey();
                assert.notEqual(k2, k1, "+8d: AWSCURRENT still holds key 1");
                // The replaced version resource's delete must not have taken the overlap's AWSPREVIOUS.
                assert.equal((await stage("AWSPREVIOUS")).AccessKeyId, k1, "+8d: AWSPREVIOUS is not key 1");
                expectOk(await stack.up(10 * DAY), "up at +10d");
                expectOk(await stack.up(14 * DAY), "up at +14d");
                assert.deepEqual(await stack.iamKeys(user), [{ id: k2, status: "Active" }], "+14d: key 1 is not deleted in IAM");
                assert.equal(await liveKey(), k2);
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(14 * DAY + HOUR) } }), "pulumi up --expect-no-changes after the rotation");
                const versions = (await sm.send(new ListSecretVersionIdsCommand({ SecretId }))).Versions ?? [];
                assert.equal(versions.filter((v) => v.VersionStages?.includes("AWSCURRENT")).length, 1, "not exactly one AWSCURRENT version");

                const { text, deployment } = await stack.exportState(false);
                for (const secret of ctx.secrets) assert.ok(!text.includes(secret), "pulumi stack export shows a secret access key in plaintext");
                const version = deployment.resources.find((r: any) => r.type === "aws:secretsmanager/secretVersion:SecretVersion");
                assert.ok(version, "no SecretVersion in the state");
                for (const side of ["inputs", "outputs"]) assert.equal(typeof version[side].secretString, "object", `the version's ${side}.secretString is not a secret in state`);

                expectOk(await stack.cmd(["destroy", "--yes", "--skip-preview"], { env: { CI_KEY_ROTATION_NOW: stack.at(15 * DAY) } }), "pulumi destroy");
                await assert.rejects(sm.send(new GetSecretValueCommand({ SecretId })), /deleted|deletion|not find|ResourceNotFound/i, "destroy left the secret readable");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "A4",
        title: "the set's KMS key (kms.create) under the engine: an env file encrypted under it, the alias, no changes after, destroy schedules the key's deletion",
        async run(ctx) {
            const user = "ci-deploy-kms";
            const Bucket = "acme-ci-env-kms";
            const Key = "deploy/staging";
            const alias = "alias/ci-key-rotation/engine";
            const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
            const s3 = new S3Client({ region, endpoint: ctx.moto.url, forcePathStyle: true, credentials });
            const kms = new KMSClient({ region, endpoint: ctx.moto.url, credentials });
            await s3.send(new CreateBucketCommand({ Bucket }));
            await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: "Enabled" } }));
            const stack = await Stack.create(ctx, "setkms", [{ name: "deploy", user, project: 5454 }]);
            try {
                stack.ws.writeStackConfig(
                    stack.name,
                    `config:\n  aws:region: ${region}\n  ci-key-rotation:credentials:\n    - name: deploy\n      user:\n        name: ${user}\n` +
                        `      kms:\n        create: true\n        alias: ${alias}\n        decrypters:\n          - arn:aws:iam::123456789012:role/ci-runner\n      targets:\n` +
                        `        - type: aws-s3-env-file\n          bucket: ${Bucket}\n          prefix: deploy\n          env: staging\n`,
                );
                expectOk(await stack.up(0), "first pulumi up");
                const { deployment } = await stack.exportState(false);
                const keyState = deployment.resources.find((r: any) => r.type === "aws:kms/key:Key");
                assert.ok(keyState, "no aws:kms Key in the state");
                const keyArn = keyState.outputs.arn as string;
                const o = await s3.send(new GetObjectCommand({ Bucket, Key }));
                const env = dotenv(await o.Body!.transformToString());
                assert.equal(o.ServerSideEncryption, "aws:kms");
                assert.equal(o.SSEKMSKeyId, keyArn, "the env file is not encrypted under the set's key");
                const held = (await stack.stateKeys()).find((k) => k.id === env.AWS_ACCESS_KEY_ID);
                assert.ok(held?.secret && env.AWS_SECRET_ACCESS_KEY === held.secret, "the env file does not hold the state's key");
                const aliases = (await kms.send(new ListAliasesCommand({}))).Aliases ?? [];
                assert.equal(aliases.find((a) => a.AliasName === alias)?.TargetKeyId, keyState.id, `${alias} does not point at the set's key`);
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(HOUR) } }), "pulumi up --expect-no-changes");

                expectOk(await stack.cmd(["destroy", "--yes", "--skip-preview"], { env: { CI_KEY_ROTATION_NOW: stack.at(2 * HOUR) } }), "pulumi destroy");
                assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyState.id }))).KeyMetadata?.KeyState, "PendingDeletion", "destroy did not schedule the key's deletion");
                const after = (await kms.send(new ListAliasesCommand({}))).Aliases ?? [];
                assert.ok(!after.some((a) => a.AliasName === alias), "destroy left the alias");
            } finally {
                await stack.dispose();
            }
        },
    },
];
