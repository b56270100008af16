import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecretsManagerTarget } from "../providers/aws-secrets-manager/spec";
import { validateConfig } from "../rotation/core/config";

// Config validation of Secrets Manager targets: defaults (the name from the set), and every
// problem reported with its path.

function problemsOf(credentials: unknown[]): string[] {
    const result = validateConfig({ credentials });
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

function targetsOf(credentials: unknown[]): SecretsManagerTarget[] {
    const result = validateConfig({ credentials });
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    return result.config.sets.flatMap((s) => s.targets.map((t) => t.target as SecretsManagerTarget));
}

describe("Secrets Manager tag values", () => {
    it("refuses values with characters Secrets Manager rejects at TagResource", () => {
        // Secrets Manager's Tag `Value` pattern is the keys' one: letters, digits, spaces and _.:/=+-@.
        const problems = problemsOf([{ name: "deploy", targets: [{ type: "aws-secrets-manager", tags: { owner: "a&b" } }] }]);
        assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[0].tags.owner ")), problems.join("\n"));
        targetsOf([{ name: "deploy", targets: [{ type: "aws-secrets-manager", tags: { Team: "platform/ci+ops@x:y=z_1.- " } }] }]);
    });
});

describe("Secrets Manager resource names", () => {
    it("refuses two secrets whose resource names collide, whatever their JSON keys", () => {
        // `ci/a+b` and `ci/a=b` both name their secret `aws-secrets-manager-ci-a-b-secret`.
        const problems = problemsOf([
            { name: "deploy", targets: [{ type: "aws-secrets-manager", name: "ci/a+b" }, { type: "aws-secrets-manager", name: "ci/a=b", names: { accessKeyId: "Id", secretAccessKey: "Secret" } }] },
        ]);
        assert.ok(problems.some((p) => p.includes("would have the same Pulumi resource name") && p.includes("-secret")), problems.join("\n"));
    });
});

describe("Secrets Manager readers of several accounts", () => {
    it("need a customer-managed key: aws/secretsmanager serves only the secret's own account", () => {
        // UpdateSecret/CreateSecret `KmsKeyId` API reference: principals of other accounts cannot use
        // the AWS-managed key. Readers in two accounts mean at least one is refused at every job.
        const readers = ["arn:aws:iam::123456789012:role/ci-runner", "arn:aws:iam::210987654321:role/deployer"];
        for (const extra of [{}, { kmsKey: "alias/aws/secretsmanager" }]) {
            const problems = problemsOf([{ name: "deploy", targets: [{ type: "aws-secrets-manager", readers, ...extra }] }]);
            assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[0].kmsKey ")), problems.join("\n"));
        }
        targetsOf([{ name: "deploy", targets: [{ type: "aws-secrets-manager", readers, kmsKey: "alias/ci-deploy" }] }]);
        targetsOf([{ name: "deploy", targets: [{ type: "aws-secrets-manager", readers: [readers[0], "arn:aws:iam::123456789012:role/other"] }] }]);
    });
});

describe("Secrets Manager target config", () => {
    it("derives the secret's name from the set and fills in the recovery window", () => {
        assert.deepEqual(
            targetsOf([
                { name: "deploy", targets: [{ type: "aws-secrets-manager" }] },
                { name: "release", targets: [{ type: "aws-secrets-manager", name: "team/release", recoveryWindowInDays: 0 }] },
            ]),
            [
                { type: "aws-secrets-manager", name: "ci/deploy/aws-credentials", recoveryWindowInDays: 30 },
                { type: "aws-secrets-manager", name: "team/release", recoveryWindowInDays: 0 },
            ],
        );
    });

    it("reports every problem at once, each with its path", () => {
        assert.deepEqual(
            problemsOf([
                {
                    name: "deploy",
                    targets: [
                        { type: "aws-secrets-manager", name: "bad name!" },
                        { type: "aws-secrets-manager", name: "ci/deploy-AbC123" },
                        { type: "aws-secrets-manager", name: "a", kmsKey: "my-key", readers: ["arn:aws:iam::123:role/x", "role/ci"], recoveryWindowInDays: 3 },
                        { type: "aws-secrets-manager", name: "b", names: { accessKeyId: "k", secretAccessKey: "k" }, readers: ["arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"] },
                        { type: "aws-secrets-manager", name: "c", tags: { "aws:x": "y" } },
                    ],
                },
            ]),
            [
                "credentials[0].targets[0].name must be 1-512 letters, digits and /_+=.@- (Secrets Manager's rule for secret names)",
                "credentials[0].targets[1].name must not end with a hyphen followed by six characters (Secrets Manager adds -XXXXXX to ARNs, so such a name makes partial ARNs ambiguous): drop or change the suffix",
                'credentials[0].targets[2].kmsKey must be a KMS key id, key ARN, alias ("alias/ci") or alias ARN',
                'credentials[0].targets[2].readers[0] must be an IAM role, user or account root ARN ("arn:aws:iam::123456789012:role/ci-runner")',
                'credentials[0].targets[2].readers[1] must be an IAM role, user or account root ARN ("arn:aws:iam::123456789012:role/ci-runner")',
                "credentials[0].targets[2].recoveryWindowInDays must be 0 (delete at once) or between 7 and 30 days (Secrets Manager's rule)",
                'credentials[0].targets[4].tags.aws:x must not start with "aws:" (AWS reserves the prefix)',
                "credentials[0].targets[3].names.secretAccessKey must differ from names.accessKeyId",
                "credentials[0].targets[3].readers[1] repeats readers[0]",
            ].sort(),
        );
    });

    it("rejects two targets writing one secret, also by default names, also across sets and by case", () => {
        const problems = problemsOf([
            { name: "deploy", targets: [{ type: "aws-secrets-manager" }, { type: "aws-secrets-manager", name: "ci/deploy/aws-credentials" }] },
            { name: "other", targets: [{ type: "aws-secrets-manager", name: "CI/Deploy/AWS-Credentials" }] },
        ]);
        assert.deepEqual(problems, [
            "credentials[0].targets[1] writes aws secrets manager secret ci/deploy/aws-credentials, which credentials[0].targets[0] already writes",
            "credentials[1].targets[0] writes aws secrets manager secret ci/deploy/aws-credentials, which credentials[0].targets[0] already writes",
        ]);
    });
});
