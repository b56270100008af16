import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fakeSecretFor, keyIdFor, reveal } from "./support/mocks";
import { ofType, runProgram, type RunResult } from "./support/run";

// The program with a set's KMS key and encrypting GitHub and GitLab targets, under mocks: the
// exact inputs of the key, its alias, the ciphertexts and the secrets, for a mint run and a run
// that changes nothing; the secret only ever as a secret.

const runner = "arn:aws:iam::123456789012:role/ci-runner";
const sharedKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const credentials = [
    {
        name: "deploy",
        kms: { create: true, decrypters: [runner], deletionWindowInDays: 14 },
        targets: [
            { type: "github-repository", repository: "acme/api", encrypt: { context: { repository: "acme/api" } } },
            { type: "gitlab-project", project: "acme/web", encrypt: { context: { project: "acme/web", env: "prod" } } },
            { type: "github-repository", repository: "acme/plain" },
            { type: "github-environment", repository: "acme/api", environment: "prod", encrypt: { key: sharedKey, context: { environment: "prod" } } },
        ],
    },
];
const config = { credentials, "aws:region": "eu-west-1", "gitlab:token": "glpat-test" };
const KEY1 = keyIdFor("deploy-key-1");
const SECRET1 = fakeSecretFor("deploy-key-1");
const managedKeyId = "0000aaaa-11bb-22cc-33dd-444444eeeeee";
const managedKeyArn = `arn:aws:kms:eu-west-1:123456789012:key/${managedKeyId}`;

/** What the AWS provider adds: the key's ids, and a ciphertext named after the resource. */
function extraState(r: { type: string; name: string }) {
    if (r.type === "aws:kms/key:Key") return { arn: managedKeyArn, keyId: managedKeyId };
    if (r.type === "aws:kms/ciphertext:Ciphertext") return { ciphertextBlob: `CIPHERTEXT-of-${r.name}` };
    return undefined;
}

const one = (r: RunResult, type: string) => {
    const all = ofType(r, type);
    assert.equal(all.length, 1, `one ${type}`);
    return all[0];
};

describe("program with the set's KMS key and encrypting targets", () => {
    let first: RunResult;

    test("a mint run creates the key with rotation, the window and a policy that lets only the runner decrypt, with each context", async () => {
        first = await runProgram({ config, now: "2026-11-01T00:00:00Z", world: { extraState } });
        assert.equal(first.error, undefined, first.error?.stack);
        const key = one(first, "aws:kms/key:Key");
        assert.equal(key.name, "deploy-kms-key");
        const { policy, ...rest } = reveal(key.inputs).plain;
        assert.deepEqual(rest, {
            description: 'ci-key-rotation: encrypts the CI access key of credential set "deploy" for its targets',
            enableKeyRotation: true,
            deletionWindowInDays: 14,
            tags: { ManagedBy: "ci-key-rotation", CredentialSet: "deploy" },
        });
        assert.deepEqual(JSON.parse(policy), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "AccountAdministersNotDecrypts", Effect: "Allow", Principal: { AWS: "arn:aws:iam::123456789012:root" }, NotAction: ["kms:Decrypt", "kms:ReEncryptFrom"], Resource: "*" },
                // The operator reads back what the provider wrote (GetSecretValue, GetParameter WithDecryption):
                // the account's IAM policies may grant Decrypt, but only through the AWS stores.
                {
                    Sid: "AccountDecryptsThroughAwsStores",
                    Effect: "Allow",
                    Principal: { AWS: "arn:aws:iam::123456789012:root" },
                    Action: "kms:Decrypt",
                    Resource: "*",
                    Condition: { StringLike: { "kms:ViaService": ["secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com", "s3.*.amazonaws.com"] } },
                },
                {
                    Sid: "DecryptWithContext1",
                    Effect: "Allow",
                    Principal: { AWS: [runner] },
                    Action: "kms:Decrypt",
                    Resource: "*",
                    Condition: { StringEquals: { "kms:EncryptionContext:repository": "acme/api" } },
                },
                {
                    Sid: "DecryptWithContext2",
                    Effect: "Allow",
                    Principal: { AWS: [runner] },
                    Action: "kms:Decrypt",
                    Resource: "*",
                    Condition: { StringEquals: { "kms:EncryptionContext:project": "acme/web", "kms:EncryptionContext:env": "prod" } },
                },
                {
                    Sid: "DecryptThroughAwsStores",
                    Effect: "Allow",
                    Principal: { AWS: [runner] },
                    Action: "kms:Decrypt",
                    Resource: "*",
                    Condition: { StringLike: { "kms:ViaService": ["secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com", "s3.*.amazonaws.com"] } },
                },
            ],
        });
        const alias = one(first, "aws:kms/alias:Alias");
        assert.equal(alias.name, "deploy-kms-alias");
        assert.deepEqual(reveal(alias.inputs).plain, { name: "alias/ci-key-rotation/deploy", targetKeyId: managedKeyId });
    });

    test("each encrypting target gets a ciphertext of the secret, with its key (the set's by default) and context; the plaintext only as a secret", () => {
        const ciphertexts = ofType(first, "aws:kms/ciphertext:Ciphertext")
            .map((c) => {
                const { plain, secretPaths } = reveal(c.inputs);
                return { name: c.name, ...plain, secretPaths };
            })
            .sort((a, b) => a.name.localeCompare(b.name));
        assert.deepEqual(ciphertexts, [
            {
                name: "github-environment-acme-api-prod-aws_secret_access_key_ciphertext-ciphertext",
                keyId: sharedKey,
                plaintext: SECRET1,
                context: { environment: "prod" },
                secretPaths: ["plaintext"],
            },
            {
                name: "github-repository-acme-api-aws_secret_access_key_ciphertext-ciphertext",
                keyId: managedKeyArn,
                plaintext: SECRET1,
                context: { repository: "acme/api" },
                secretPaths: ["plaintext"],
            },
            {
                name: "gitlab-project-acme-web-all-aws_secret_access_key_ciphertext-ciphertext",
                keyId: managedKeyArn,
                plaintext: SECRET1,
                context: { project: "acme/web", env: "prod" },
                secretPaths: ["plaintext"],
            },
        ]);
    });

    test("encrypting targets hold the ciphertext and the plain key id under their own names; the plain target holds the secret", () => {
        const written = first.registrations
            .filter((r) => /^github:index\/\w*Secret:/.test(r.type) || (r.type === "pulumi-nodejs:dynamic:Resource" && reveal(r.inputs).plain.kind === "gitlab-variable"))
            .map((r) => {
                const { plain, secretPaths } = reveal(r.inputs);
                return `${plain.secretName ?? plain.key}=${plain.value}${secretPaths.includes("value") ? " (secret)" : ""}`;
            })
            .sort();
        // The GitHub SDK marks every secret's value secret; GitLab's ciphertext needs no secrecy.
        assert.deepEqual(written, [
            `AWS_ACCESS_KEY_ID=${KEY1} (secret)`,
            `AWS_SECRET_ACCESS_KEY=${SECRET1} (secret)`,
            `AWS_SECRET_ACCESS_KEY_CIPHERTEXT=CIPHERTEXT-of-github-environment-acme-api-prod-aws_secret_access_key_ciphertext-ciphertext (secret)`,
            `AWS_SECRET_ACCESS_KEY_CIPHERTEXT=CIPHERTEXT-of-github-repository-acme-api-aws_secret_access_key_ciphertext-ciphertext (secret)`,
            `AWS_SECRET_ACCESS_KEY_CIPHERTEXT=CIPHERTEXT-of-gitlab-project-acme-web-all-aws_secret_access_key_ciphertext-ciphertext`,
            `CI_AWS_ACCESS_KEY_ID=${KEY1}`,
            `CI_AWS_ACCESS_KEY_ID=${KEY1} (secret)`,
            `CI_AWS_ACCESS_KEY_ID=${KEY1} (secret)`,
        ]);
        // The secret reaches encrypting targets only as the ciphertext.
        const encrypting = first.registrations.filter((r) => JSON.stringify(reveal(r.inputs).plain).includes("CIPHERTEXT"));
        for (const r of encrypting) assert.ok(!JSON.stringify(reveal(r.inputs).plain).includes(SECRET1), `${r.name} carries the secret`);
        assert.ok(!JSON.stringify(first.outputs).includes(SECRET1), "the outputs carry the secret");
    });

    test("a run with nothing due declares the same key, alias and ciphertexts (no diff: nothing encrypted or written again)", async () => {
        const keys = first.outputs!.rotation.sets.deploy.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }));
        const again = await runProgram({
            config,
            now: "2026-11-01T01:00:00Z",
            world: { extraState, stackOutputs: { rotation: first.outputs!.rotation }, accessKeys: { "ci-deploy": keys } },
        });
        assert.equal(again.error, undefined, again.error?.stack);
        assert.equal(again.outputs!.sets.deploy.step, "none");
        for (const type of ["aws:kms/key:Key", "aws:kms/alias:Alias", "aws:kms/ciphertext:Ciphertext"]) {
            const inputs = (r: RunResult) => ofType(r, type).map((x) => ({ name: x.name, ...reveal(x.inputs).plain })).sort((a, b) => a.name.localeCompare(b.name));
            assert.deepEqual(inputs(again), inputs(first), type);
        }
    });
});

describe("program with an existing key", () => {
    test("a set naming an existing key ARN creates no key and encrypts with that ARN", async () => {
        const r = await runProgram({
            config: { "aws:region": "eu-west-1", credentials: [{ name: "deploy", kms: { key: sharedKey }, targets: [{ type: "github-repository", repository: "acme/api", encrypt: { context: { repository: "acme/api" } } }] }] },
            now: "2026-11-01T00:00:00Z",
            world: { extraState },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.equal(ofType(r, "aws:kms/key:Key").length, 0);
        assert.equal(ofType(r, "aws:kms/alias:Alias").length, 0);
        assert.equal(reveal(one(r, "aws:kms/ciphertext:Ciphertext").inputs).plain.keyId, sharedKey);
    });

    test("a set naming an existing key by alias looks its ARN up (DescribeKey) and encrypts with the ARN", async () => {
        const r = await runProgram({
            config: { "aws:region": "eu-west-1", credentials: [{ name: "deploy", kms: { key: "alias/ci/shared" }, targets: [{ type: "gitlab-group", group: "acme", encrypt: { context: { group: "acme" } } }] }] },
            now: "2026-11-01T00:00:00Z",
            world: { extraState },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(r.invocations.filter((i) => i.token === "aws:kms/getKey:getKey").map((i) => i.inputs.keyId), ["alias/ci/shared"]);
        assert.equal(reveal(one(r, "aws:kms/ciphertext:Ciphertext").inputs).plain.keyId, "arn:aws:kms:eu-west-1:123456789012:key/0000aaaa-0000-0000-0000-00000000a11a");
    });

    test("an encrypting target of a set without a key is a config error, and nothing is registered", async () => {
        const r = await runProgram({
            config: { credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api", encrypt: { context: { repository: "acme/api" } } }] }] },
            now: "2026-11-01T00:00:00Z",
        });
        assert.match(String(r.error?.message), /credentials\[0\]\.targets\[0\]\.encrypt\.key is required when the set has no key/);
        assert.equal(r.registrations.length, 0);
    });
});
