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
