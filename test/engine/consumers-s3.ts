/**
 * Consumer reads of `aws-s3-env-file` targets through the real AWS SDK (and, when installed, the
 * AWS CLI) against moto: the object written as the provider writes it (PutObject with SSE-KMS,
 * terraform-provider-aws internal/service/s3/object.go `resourceObjectUpload`), read back by the
 * provider's HeadObject (the target check's evidence) and by a container entrypoint (GetObject,
 * then the shell sources it). What moto enforces and what it does not is said where it matters.
 */
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from "@aws-sdk/client-iam";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
    CreateBucketCommand,
    DeleteObjectCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectVersionsCommand,
    PutBucketVersioningCommand,
    PutObjectCommand,
    S3Client,
} from "@aws-sdk/client-s3";
import assert from "node:assert/strict";
import { accessKeyIdMetadata, envFileText, objectKey, s3Spec, type S3EnvFileTarget } from "../../providers/s3/spec";
import { ensureMoto, log, run, startMoto } from "./rig";
import type { Scenario } from "./scenarios";

type Keys = { accessKeyId: string; secretAccessKey: string };

const region = "eu-west-1";
// Fake keys in AWS's shapes; never real material.
const key1 = { id: "AKIAENGINES3KEY00001", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYENGINE0001" };
const key2 = { id: "AKIAENGINES3KEY00002", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYENGINE0002" };

/** Run `sh` with the documented entrypoint, `aws s3 cp` replaced by `body` on stdin when the CLI is absent. */
async function entrypointEnv(script: string, env: NodeJS.ProcessEnv, stdin?: string): Promise<Record<string, string>> {
    const r = await run("sh", ["-c", script], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, ...(stdin !== undefined ? { input: stdin } : {}) });
    if (r.code !== 0) throw new Error(`entrypoint failed (${r.code}): ${r.stderr.replace(/wJalr\S+/g, "<secret>").slice(-500)}`);
    return Object.fromEntries(r.stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

export const s3Consumers: Scenario[] = [
    {
        id: "C-s3",
        title: "S3 env file: PutObject with SSE-KMS as the provider does, the provider's HeadObject evidence, a container entrypoint's GetObject and shell parse, a rotation and the provider's delete of every version",
        async run() {
            // A moto of its own with IAM checks on after the setup calls (INITIAL_NO_AUTH_ACTION_COUNT),
            // so a principal without s3:GetObject is refused.
            const setupCalls = 11;
            const moto = await startMoto(await ensureMoto(), { INITIAL_NO_AUTH_ACTION_COUNT: String(setupCalls) });
            try {
                const root = { accessKeyId: "testing", secretAccessKey: "testing" };
                const s3As = (credentials: Keys) => new S3Client({ region, endpoint: moto.url, forcePathStyle: true, credentials });
                const s3 = s3As(root);
                let calls = 0;
                const count = <T>(p: Promise<T>) => (calls++, p);

                const kmsKey = (await count(new KMSClient({ region, endpoint: moto.url, credentials: root }).send(new CreateKeyCommand({ Description: "team key" })))).KeyMetadata!.Arn!;
                const target = {
                    type: "aws-s3-env-file",
                    bucket: "acme-ci-env",
                    prefix: "deploy",
                    env: "production",
                    kmsKey,
                    bucketKey: true,
                    contentType: "text/plain; charset=utf-8",
                    bucketPolicy: "document",
                    variables: { AWS_REGION: region, GREETING: "hello world $HOME" },
                    tags: { Team: "platform" },
                } as S3EnvFileTarget;
                const Bucket = target.bucket;
                const Key = objectKey(target);
                await count(s3.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: region } })));
                await count(s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: "Enabled" } })));
                const iam = moto.iam;
                const user = async (name: string, statements?: object[]): Promise<Keys> => {
                    await count(iam.send(new CreateUserCommand({ UserName: name })));
                    const k = (await count(iam.send(new CreateAccessKeyCommand({ UserName: name })))).AccessKey!;
                    if (statements) await count(iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: "p", PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: statements }) })));
                    return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
                };
                // The operator and the reader get exactly what `ci-key-rotation policy` prints for the target.
                const operator = await user("operator", s3Spec.awsPermissions!(target));
                const reader = await user("container-task", s3Spec.readerPermissions!(target));
                const stranger = await user("stranger");
                assert.equal(calls, setupCalls, "every setup call must be counted: moto checks IAM from the next call on");

                // The provider's upload: the inputs `declare` registers, mapped as resourceObjectUpload maps them.
                const put = (k: typeof key1) =>
                    s3As(operator).send(
                        new PutObjectCommand({
                            Bucket,
                            Key,
                            Body: envFileText(target, "deploy", k.id, k.secret),
                            ContentType: target.contentType,
                            ServerSideEncryption: "aws:kms",
                            SSEKMSKeyId: kmsKey,
                            BucketKeyEnabled: true,
                            Metadata: { [accessKeyIdMetadata]: k.id },
                            Tagging: "Team=platform",
                        }),
                    );
                const first = await put(key1);
                assert.equal(first.ServerSideEncryption, "aws:kms");
                assert.equal(first.SSEKMSKeyId, kmsKey, "the object records its key");

                // resourceObjectRead's HeadObject: the metadata is the target check's evidence.
                const head = await s3As(operator).send(new HeadObjectCommand({ Bucket, Key }));
                assert.deepEqual(head.Metadata, { [accessKeyIdMetadata]: key1.id });
                assert.equal(head.SSEKMSKeyId, kmsKey, "Read stores the key ARN S3 reports: an alias ARN in config would differ on every run");

                // The container's GetObject as its task role: the text and its SSE headers.
                const get = await s3As(reader).send(new GetObjectCommand({ Bucket, Key }));
                const body = await get.Body!.transformToString();
                assert.equal(get.ServerSideEncryption, "aws:kms");
                assert.equal(get.SSEKMSKeyId, kmsKey);
                assert.match(body, new RegExp(`^AWS_ACCESS_KEY_ID=${key1.id}$`, "m"));

                // The documented entrypoint, run by sh: through the AWS CLI when installed, else on the body.
                const cli = (await run("aws", ["--version"]).catch(() => ({ code: 1 }))).code === 0;
                const script = cli
                    ? `creds=$(aws s3 cp "s3://${Bucket}/${Key}" -) || exit 1\nset -a; eval "$creds"; set +a\nunset creds\nexec env`
                    : `creds=$(cat) || exit 1\nset -a; eval "$creds"; set +a\nunset creds\nexec env`;
                const cliEnv = { AWS_ENDPOINT_URL: moto.url, AWS_DEFAULT_REGION: region, AWS_ACCESS_KEY_ID: reader.accessKeyId, AWS_SECRET_ACCESS_KEY: reader.secretAccessKey };
                const env = await entrypointEnv(script, cli ? cliEnv : {}, cli ? undefined : body);
                log(`C-s3: entrypoint ran ${cli ? "aws s3 cp" : "on the GetObject body (no aws CLI)"}`);
                assert.equal(env.AWS_ACCESS_KEY_ID, key1.id);
                assert.equal(env.AWS_SECRET_ACCESS_KEY, key1.secret, "the shell reads the secret as written (+ and / unquoted)");
                assert.equal(env.AWS_REGION, region);
                assert.equal(env.GREETING, "hello world $HOME", "a quoted value is taken literally, not expanded");

                // moto enforces identity policies: a principal without s3:GetObject is refused.
                await assert.rejects(s3As(stranger).send(new GetObjectCommand({ Bucket, Key })), (e: Error) => e.name === "AccessDenied");
                // NOT enforced by moto: S3 does not ask moto's KMS to decrypt on GetObject, so a reader
                // with s3:GetObject but without kms:Decrypt on the object's key still gets the text here;
                // on AWS it gets AccessDenied. The rehearsal models that (rotation/rehearsal/stores/s3.ts).
                // Nor does moto evaluate the bucket policy's SSE condition keys: with the documented Deny
                // statements it refused compliant SSE-KMS puts too (seen with moto 5.2.5), so the
                // statements are checked for shape in test/s3.config.test.ts, not here.

                // A rotation overwrites the same key; the container started after it reads key 2.
                const second = await put(key2);
                const again = await (await s3As(reader).send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();
                assert.match(again, new RegExp(`^AWS_ACCESS_KEY_ID=${key2.id}$`, "m"));
                // In a versioned bucket the old text stays as a noncurrent version: the docs' lifecycle rule expires it.
                const versions = (await s3As(operator).send(new ListObjectVersionsCommand({ Bucket, Prefix: Key }))).Versions ?? [];
                assert.deepEqual(versions.map((v) => v.VersionId).sort(), [first.VersionId, second.VersionId].sort());
                assert.ok(first.VersionId && second.VersionId && first.VersionId !== second.VersionId);

                // The provider's Delete in a versioned bucket: every version of the key (delete.go `deleteAllObjectVersions`).
                for (const v of versions) await s3As(operator).send(new DeleteObjectCommand({ Bucket, Key, VersionId: v.VersionId }));
                await assert.rejects(s3As(reader).send(new GetObjectCommand({ Bucket, Key })), (e: Error) => e.name === "NoSuchKey");
                assert.deepEqual((await s3As(operator).send(new ListObjectVersionsCommand({ Bucket, Prefix: Key }))).Versions ?? [], []);
            } finally {
                await moto.stop();
            }
        },
    },
];
