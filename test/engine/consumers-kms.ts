/**
 * Consumers of an encrypting GitHub or GitLab target (`encrypt`, providers/kms), through the real
 * AWS SDK against moto: the set's key is made as terraform-provider-aws makes it for
 * rotation/pulumi/credential-set.ts (CreateKey with the program's key policy and tags,
 * EnableKeyRotation, CreateAlias), the ciphertext as `aws_kms_ciphertext` makes it (one Encrypt
 * with the target's context, base64 of the blob: internal/service/kms/ciphertext.go), and the job
 * does what docs/stores/kms.md's snippet does: base64-decode, Decrypt with the same context, use
 * the key.
 *
 * What moto enforces (moto 5.2.5 moto/kms/utils.py `encrypt`/`decrypt`): the encryption context is
 * AES-GCM additional data, so Decrypt with another context or none fails with
 * InvalidCiphertextException, as in KMS. What it does not (moto/kms/policy_validator.py checks
 * only Deny statements, and only for DescribeKey): the key policy's Decrypt grants, so a principal
 * the policy does not name still decrypts here. That refusal is covered by the rehearsal's fake
 * (rotation/rehearsal/world.ts `FakeKms.putKeyPolicy`, test/rehearsal.kms.test.ts), not here.
 */
import assert from "node:assert/strict";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EnableKeyRotationCommand, EncryptCommand, GetKeyPolicyCommand, GetKeyRotationStatusCommand, KMSClient } from "@aws-sdk/client-kms";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { keyPolicy } from "../../providers/kms/spec";
import { log } from "./rig";
import type { Context, Scenario } from "./scenarios";

const region = "us-east-1";
const operator = { accessKeyId: "testing", secretAccessKey: "testing" };

export const kmsConsumers: Scenario[] = [
    {
        id: "C-kms",
        title: "KMS: a job decrypts the target's ciphertext with its context and the key works; another context does not decrypt",
        async run(ctx: Context) {
            const kms = new KMSClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const iam = new IAMClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const user = `ci-kms-consumer-${Date.now()}`;
            await iam.send(new CreateUserCommand({ UserName: user, Path: "/ci/" }));
            const key = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
            ctx.secrets.add(key.SecretAccessKey!);

            const runner = "arn:aws:iam::123456789012:role/ci-runner";
            const context = { repository: "acme/api" };
            const policy = JSON.stringify(keyPolicy({ partition: "aws", account: "123456789012", decrypters: [runner], contexts: [context] }));
            const created = await kms.send(
                new CreateKeyCommand({ Policy: policy, Description: "ci-key-rotation consumer scenario", Tags: [{ TagKey: "CredentialSet", TagValue: "deploy" }] }),
            );
            const keyArn = created.KeyMetadata!.Arn!;
            await kms.send(new EnableKeyRotationCommand({ KeyId: keyArn }));
            await kms.send(new CreateAliasCommand({ AliasName: `alias/ci-key-rotation/kms-${Date.now()}`, TargetKeyId: created.KeyMetadata!.KeyId }));
            assert.deepEqual(JSON.parse((await kms.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: "default" }))).Policy!), JSON.parse(policy), "the key keeps the program's policy");
            assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyArn }))).KeyRotationEnabled, true);

            // What the target holds: the provider's Encrypt, base64.
            const sealed = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from(key.SecretAccessKey!), EncryptionContext: context }));
            const stored = Buffer.from(sealed.CiphertextBlob!).toString("base64");
            assert.ok(!stored.includes(key.SecretAccessKey!), "the stored value is not the secret");

            // The job: `base64 -d | aws kms decrypt --encryption-context repository=acme/api`.
            const opened = await kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(stored, "base64"), EncryptionContext: context }));
            const secret = Buffer.from(opened.Plaintext!).toString("utf8");
            assert.equal(secret, key.SecretAccessKey);
            assert.equal(opened.KeyId, keyArn);
            const sts = new STSClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: key.AccessKeyId!, secretAccessKey: secret } });
            assert.match((await sts.send(new GetCallerIdentityCommand({}))).Arn ?? "", new RegExp(`user/(ci/)?${user}$`));

            // The ciphertext copied to another place (another context, or none) does not decrypt.
            const others: Record<string, string>[] = [{ repository: "acme/web" }, {}, { repository: "acme/api", extra: "x" }];
            for (const other of others) {
                await assert.rejects(
                    kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(stored, "base64"), EncryptionContext: other })),
                    (e: Error) => e.name === "InvalidCiphertextException",
                    `decrypting with context ${JSON.stringify(other)} must fail`,
                );
            }
            log("C-kms: moto enforces the encryption context; it does not evaluate the key policy's Decrypt grants (see the file header)");
        },
    },
];
