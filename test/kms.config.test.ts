import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateConfig } from "../rotation/core/config";
import { operatorPolicy } from "../rotation/ops/operator-policy";
import { specFor } from "../providers/specs";

// Config of the set's KMS key (`credentials[].kms`) and of `encrypt` on GitHub and GitLab targets.

const role = "arn:aws:iam::123456789012:role/ci-runner";
const keyArn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

function ok(raw: unknown) {
    const result = validateConfig(raw);
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    return result.config;
}

function problems(raw: unknown): string[] {
    const result = validateConfig(raw);
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

describe("set KMS key config", () => {
    it("fills in the managed key's defaults: alias by set name, 30 days' deletion window", () => {
        const config = ok({ credentials: [{ name: "deploy", kms: { create: true, decrypters: [role] }, targets: [{ type: "github-repository", repository: "acme/api" }] }] });
        assert.deepEqual(config.sets[0].kms, { create: true, decrypters: [role], alias: "alias/ci-key-rotation/deploy", deletionWindowInDays: 30 });
    });

    it("takes an existing key by id, ARN or alias", () => {
        for (const key of ["1234abcd-12ab-34cd-56ef-1234567890ab", keyArn, "alias/ci/shared", "arn:aws:kms:eu-west-1:123456789012:alias/ci/shared", "mrk-1234abcd12ab34cd56ef1234567890ab"]) {
            const config = ok({ credentials: [{ name: "deploy", kms: { key }, targets: [{ type: "github-repository", repository: "acme/api" }] }] });
            assert.deepEqual(config.sets[0].kms, { key });
        }
    });

    it("reports every problem of the set's key at once, each with its path", () => {
        const target = { type: "github-repository", repository: "acme/api" };
        assert.deepEqual(
            problems({
                credentials: [
                    { name: "a", kms: { create: true }, targets: [target] },
                    { name: "b", kms: { key: "alias/aws/secretsmanager" }, targets: [{ ...target, repository: "acme/b" }] },
                    { name: "c", kms: { key: "my-key", create: true }, targets: [{ ...target, repository: "acme/c" }] },
                    {
                        name: "d",
                        kms: { create: true, decrypters: ["arn:aws:sts::123456789012:assumed-role/ci-runner/i-0abc", "ci-runner"], alias: "alias/aws/x", deletionWindowInDays: 3 },
                        targets: [{ ...target, repository: "acme/d" }],
                    },
                    { name: "e", kms: {}, targets: [{ ...target, repository: "acme/e" }] },
                ],
            }),
            [
                "credentials[0].kms.decrypters is required with `create`: list the role ARNs that decrypt at job time",
                "credentials[1].kms.key must not be an AWS managed key (alias/aws/...): its key policy cannot be changed to let only named roles decrypt; use a customer managed key",
                'credentials[2].kms.key must be a KMS key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN (arn:aws:kms:<region>:<account>:key/<id>) or an alias ("alias/name" or its ARN)',
                "credentials[2].kms.create cannot be used with `key` (an existing key): remove one of them",
                "credentials[3].kms.decrypters[0] must be the role's ARN (arn:aws:iam::<account>:role/<name>), not an assumed-role session ARN",
                "credentials[3].kms.decrypters[1] must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)",
                'credentials[3].kms.alias must not start with "alias/aws/" (reserved by AWS)',
                "credentials[3].kms.deletionWindowInDays must be at least 7 (KMS's shortest waiting period)",
                "credentials[4].kms.create is required: set `create: true` for a key the set manages, or `key` for an existing key",
            ],
        );
    });

    it("rejects two managed keys with the same alias", () => {
        const set = (name: string, repository: string) => ({ name, kms: { create: true, decrypters: [role], alias: "alias/ci" }, targets: [{ type: "github-repository", repository }] });
        assert.deepEqual(problems({ credentials: [set("a", "acme/a"), set("b", "acme/b")] }), [
            `credentials[1].kms.alias "alias/ci" is already the alias of credentials[0]'s key: give each set's key its own alias`,
        ]);
    });
});

describe("encrypt config on GitHub and GitLab targets", () => {
    const encrypt = { context: { repository: "acme/api" } };

    it("is accepted on every GitHub and GitLab target type, and changes the default names", () => {
        const config = ok({
            credentials: [
                {
                    name: "deploy",
                    kms: { create: true, decrypters: [role] },
                    targets: [
                        { type: "github-repository", repository: "acme/api", encrypt },
                        { type: "github-environment", repository: "acme/api", environment: "prod", encrypt },
                        { type: "github-organization", organization: "acme", encrypt },
                        { type: "github-dependabot", repository: "acme/api", encrypt },
                        { type: "gitlab-project", project: "acme/api", encrypt },
                        { type: "gitlab-group", group: "acme", encrypt: { key: keyArn, context: { group: "acme" } } },
                    ],
                },
            ],
        });
        const destinations = config.sets[0].targets.map(({ target, spec }) => spec.destinations(target)[1]);
        assert.deepEqual(destinations, [
            "github repository acme/api secret aws_secret_access_key_ciphertext",
            "github environment acme/api:prod secret aws_secret_access_key_ciphertext",
            "github organization acme secret aws_secret_access_key_ciphertext",
            "github dependabot acme/api secret aws_secret_access_key_ciphertext",
            "gitlab project acme/api variable AWS_SECRET_ACCESS_KEY_CIPHERTEXT environment scope *",
            "gitlab group acme variable AWS_SECRET_ACCESS_KEY_CIPHERTEXT environment scope *",
        ]);
    });

    it("needs a key: its own, or the set's", () => {
        assert.deepEqual(problems({ credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api", encrypt }] }] }), [
            "credentials[0].targets[0].encrypt.key is required when the set has no key: name a KMS key here, or give credentials[0].kms (create: true, or an existing key)",
        ]);
        ok({ credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api", encrypt: { ...encrypt, key: keyArn } }] }] });
    });

    it("reports bad contexts and keys with their paths", () => {
        assert.deepEqual(
            problems({
                credentials: [
                    {
                        name: "deploy",
                        kms: { key: keyArn },
                        targets: [
                            { type: "github-repository", repository: "acme/api", encrypt: { context: {} } },
                            { type: "gitlab-project", project: "acme/api", encrypt: { key: "alias/aws/ssm", context: { "aws-x": "y", team: "a b" } } },
                            { type: "github-repository", repository: "acme/web", encrypt: { key: keyArn } },
                        ],
                    },
                ],
            }),
            [
                "credentials[0].targets[0].encrypt.context must have at least one pair: it is what keeps a copied ciphertext from decrypting elsewhere",
                "credentials[0].targets[1].encrypt.key must not be an AWS managed key (alias/aws/...): its key policy cannot be changed to let only named roles decrypt; use a customer managed key",
                'credentials[0].targets[1].encrypt.context.aws-x must not start with "aws" (reserved by AWS)',
                "credentials[0].targets[1].encrypt.context.team must be 1-256 letters, digits or _ . - / : @ +",
                "credentials[0].targets[2].encrypt.context is required",
            ],
        );
    });

    it("gives readers Decrypt only with the target's context, and the operator Encrypt on a target's own key", () => {
        const target = { type: "github-repository", repository: "acme/api", encrypt: { key: keyArn, context: { repository: "acme/api", env: "prod" } } } as const;
        const spec = specFor(target.type);
        const [decrypt] = spec.readerPermissions?.(target as never) ?? [];
        assert.match(decrypt.Sid, /^KmsDecrypt[0-9A-F]{8}$/);
        assert.deepEqual(spec.readerPermissions?.(target as never), [
            {
                Sid: decrypt.Sid,
                Effect: "Allow",
                Action: ["kms:Decrypt"],
                Resource: keyArn,
                Condition: { StringEquals: { "kms:EncryptionContext:repository": "acme/api", "kms:EncryptionContext:env": "prod" } },
            },
        ]);
        const [encrypt] = spec.awsPermissions?.(target as never) ?? [];
        assert.deepEqual(spec.awsPermissions?.(target as never), [{ Sid: encrypt.Sid, Effect: "Allow", Action: ["kms:DescribeKey", "kms:Encrypt"], Resource: keyArn }]);
        // Another context, another statement with its own Sid (IAM rejects two equal Sids).
        const other = { ...target, encrypt: { ...target.encrypt, context: { repository: "acme/web" } } };
        assert.notEqual(spec.readerPermissions?.(other as never)[0].Sid, decrypt.Sid);
        const plain = { type: "github-repository", repository: "acme/api" } as const;
        assert.deepEqual(spec.readerPermissions?.(plain as never), []);
    });
});

describe("operator policy for the set's key", () => {
    it("lets the operator create and manage only keys tagged with the set, and name its alias", () => {
        const config = ok({ credentials: [{ name: "deploy", kms: { create: true, decrypters: [role] }, targets: [{ type: "github-repository", repository: "acme/api", encrypt: { context: { r: "a" } } }] }] });
        const statements = operatorPolicy(config, { account: "123456789012" }).Statement.filter((s) => s.Sid.startsWith("Kms"));
        assert.deepEqual(statements.map((s) => s.Sid), ["KmsCreateKeyDeploy", "KmsKeyDeploy", "KmsAliasDeploy", "KmsListAliasesDeploy"]);
        assert.deepEqual(statements[0].Condition, { StringEquals: { "aws:RequestTag/CredentialSet": "deploy" } });
        assert.ok(statements[1].Action.includes("kms:Encrypt") && statements[1].Action.includes("kms:ScheduleKeyDeletion") && !statements[1].Action.includes("kms:Decrypt"));
        assert.deepEqual(statements[1].Condition, { StringEquals: { "aws:ResourceTag/CredentialSet": "deploy" } });
        assert.deepEqual(statements[2].Resource, ["arn:aws:kms:*:123456789012:alias/ci-key-rotation/deploy", "arn:aws:kms:*:123456789012:key/*"]);
    });

    it("lets the operator only describe and encrypt with an existing key", () => {
        const config = ok({ credentials: [{ name: "deploy", kms: { key: keyArn }, targets: [{ type: "github-repository", repository: "acme/api", encrypt: { context: { r: "a" } } }] }] });
        const statements = operatorPolicy(config).Statement.filter((s) => s.Sid.startsWith("Kms"));
        assert.deepEqual(statements, [{ Sid: "KmsUseKeyDeploy", Effect: "Allow", Action: ["kms:DescribeKey", "kms:Encrypt"], Resource: keyArn }]);
    });
});
