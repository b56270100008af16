import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SsmParameterTarget } from "../providers/aws-ssm-parameter/spec";
import { ssmParameterSpec } from "../providers/aws-ssm-parameter/spec";
import { validateConfig } from "../rotation/core/config";
import { operatorPolicy } from "../rotation/ops/operator-policy";

// Config validation of SSM Parameter Store targets: defaults (the path from the set), SSM's name
// and hierarchy rules, and every problem reported at once with its path.

function problemsOf(credentials: unknown[]): string[] {
    const result = validateConfig({ credentials });
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

function targetsOf(credentials: unknown[]): SsmParameterTarget[] {
    const result = validateConfig({ credentials });
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    return result.config.sets.flatMap((s) => s.targets.map((t) => t.target as SsmParameterTarget));
}

describe("SSM Parameter Store target config", () => {
    it("derives the path from the set and fills in format, tier and the delivery's defaults", () => {
        assert.deepEqual(
            targetsOf([
                {
                    name: "deploy",
                    targets: [
                        { type: "aws-ssm-parameter" },
                        { type: "aws-ssm-parameter", path: "/runners/deploy", format: "credentials-file", distribute: { instanceTag: { key: "ci-runner", value: "deploy" } } },
                    ],
                },
            ]),
            [
                { type: "aws-ssm-parameter", path: "/ci/deploy", format: "parameters", fileName: "credentials", profile: "default", tier: "Standard" },
                {
                    type: "aws-ssm-parameter",
                    path: "/runners/deploy",
                    format: "credentials-file",
                    fileName: "credentials",
                    profile: "default",
                    tier: "Standard",
                    distribute: { instanceTag: { key: "ci-runner", value: "deploy" }, path: "/home/runner/.aws/credentials", owner: "runner", profile: "default" },
                },
            ],
        );
    });

    it("reports every problem at once, each with its path: SSM's name rules, reserved prefixes, depth, the delivery", () => {
        assert.deepEqual(
            problemsOf([
                {
                    name: "deploy",
                    targets: [
                        { type: "aws-ssm-parameter", path: "/aws/x//y/", kmsKey: "key-1", tier: "Premium", format: "xml", tags: { "aws:x": "v" } },
                        { type: "aws-ssm-parameter", path: "ci/deploy", names: { accessKeyId: "a/b", secretAccessKey: "S" } },
                        { type: "aws-ssm-parameter", path: "/" + Array.from({ length: 15 }, (_, i) => `l${i}`).join("/") },
                        { type: "aws-ssm-parameter", path: "/SSMx", format: "credentials-file", distribute: { instanceTag: { key: "ci" }, path: "relative/file", owner: "Root!", schedule: "every hour" } },
                        { type: "aws-ssm-parameter", names: { accessKeyId: "SAME", secretAccessKey: "SAME" } },
                        { type: "aws-ssm-parameter", path: "/ci/x", format: "credentials-file", names: { accessKeyId: "ID" } },
                    ],
                },
            ]),
            [
                'credentials[0].targets[0].path must not end with "/" or hold an empty level ("//")',
                'credentials[0].targets[0].path must not start with "aws" or "ssm" (AWS reserves them, in any case)',
                'credentials[0].targets[0].format must be "parameters" or "credentials-file"',
                'credentials[0].targets[0].kmsKey must be a KMS key id, key ARN, alias ("alias/ci") or alias ARN',
                'credentials[0].targets[0].tier must be "Standard", "Advanced" or "Intelligent-Tiering"',
                'credentials[0].targets[0].tags.aws:x must not start with "aws:" (AWS reserves the prefix)',
                'credentials[0].targets[1].path must start with "/" (a fully qualified hierarchy such as "/ci/deploy")',
                "credentials[0].targets[1].names.accessKeyId must be 1-256 letters, digits and _.- (one level of a parameter name, without /)",
                `credentials[0].targets[2].names gives the parameter name "/l0/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14/AWS_ACCESS_KEY_ID", which must have at most 15 levels (SSM's hierarchy limit); it has 16`,
                `credentials[0].targets[2].names gives the parameter name "/l0/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14/AWS_SECRET_ACCESS_KEY", which must have at most 15 levels (SSM's hierarchy limit); it has 16`,
                'credentials[0].targets[3].path must not start with "aws" or "ssm" (AWS reserves them, in any case)',
                "credentials[0].targets[3].distribute.instanceTag.value is required",
                'credentials[0].targets[3].distribute.path must be an absolute file path of letters, digits and _.- ("/home/runner/.aws/credentials")',
                "credentials[0].targets[3].distribute.owner must be a Linux user or group name (lower-case letters, digits, _ and -, at most 32)",
                'credentials[0].targets[3].distribute.schedule must be a State Manager schedule such as "rate(30 minutes)" or "cron(0 */1 * * ? *)"',
                "credentials[0].targets[4].names.secretAccessKey must differ from names.accessKeyId",
                'credentials[0].targets[5].names applies only to format "parameters": remove it, or use fileName',
            ],
        );
    });

    it("rejects a name longer than SSM allows once the ARN is counted", () => {
        const long = `/${"a".repeat(940)}`;
        const problems = problemsOf([{ name: "deploy", targets: [{ type: "aws-ssm-parameter", path: long }] }]);
        assert.deepEqual(problems, [
            `credentials[0].targets[0].names gives the parameter name "${long}/AWS_ACCESS_KEY_ID", which must be at most 956 characters (SSM counts the whole parameter ARN, 1011 characters)`,
            `credentials[0].targets[0].names gives the parameter name "${long}/AWS_SECRET_ACCESS_KEY", which must be at most 956 characters (SSM counts the whole parameter ARN, 1011 characters)`,
        ]);
    });

    it("rejects two targets that write the same parameter or deliver to the same file on the same instances", () => {
        const problems = problemsOf([
            { name: "deploy", targets: [{ type: "aws-ssm-parameter", path: "/ci/shared" }, { type: "aws-ssm-parameter", path: "/a", distribute: { instanceTag: { key: "ci", value: "x" } } }] },
            { name: "other", targets: [{ type: "aws-ssm-parameter", path: "/ci/shared" }, { type: "aws-ssm-parameter", path: "/b", distribute: { instanceTag: { key: "ci", value: "x" } } }] },
        ]);
        assert.deepEqual(problems, [
            "credentials[1].targets[0] writes aws ssm parameter /ci/shared/AWS_ACCESS_KEY_ID and aws ssm parameter /ci/shared/AWS_SECRET_ACCESS_KEY, which credentials[0].targets[0] already writes",
            "credentials[1].targets[1] writes instances tagged ci=x file /home/runner/.aws/credentials, which credentials[0].targets[1] already writes",
        ]);
    });

    it("gives readers GetParameter(s)/ByPath on the path and kms:Decrypt only through SSM for these parameters", () => {
        const [t] = targetsOf([{ name: "deploy", targets: [{ type: "aws-ssm-parameter", kmsKey: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }] }]);
        assert.deepEqual(ssmParameterSpec.readerPermissions!(t), [
            {
                Sid: "ReadSsmParameterscideploy1a8514c6",
                Effect: "Allow",
                Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                Resource: ["arn:aws:ssm:*:*:parameter/ci/deploy", "arn:aws:ssm:*:*:parameter/ci/deploy/AWS_ACCESS_KEY_ID", "arn:aws:ssm:*:*:parameter/ci/deploy/AWS_SECRET_ACCESS_KEY"],
            },
            {
                Sid: "ReadSsmParametersKmscideploy1a8514c6",
                Effect: "Allow",
                Action: ["kms:Decrypt"],
                Resource: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                Condition: {
                    StringLike: {
                        "kms:ViaService": "ssm.*.amazonaws.com",
                        "kms:EncryptionContext:PARAMETER_ARN": ["arn:aws:ssm:*:*:parameter/ci/deploy/AWS_ACCESS_KEY_ID", "arn:aws:ssm:*:*:parameter/ci/deploy/AWS_SECRET_ACCESS_KEY"],
                    },
                },
            },
        ]);
    });

    it("puts the operator's SSM statements in `policy` once per target, with Sids IAM accepts and no two alike", () => {
        const result = validateConfig({
            credentials: [
                {
                    name: "deploy",
                    targets: [
                        { type: "aws-ssm-parameter", path: "/ci/a-b" },
                        { type: "aws-ssm-parameter", path: "/ci/ab", distribute: { instanceTag: { key: "ci", value: "x" } } },
                    ],
                },
            ],
        });
        assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        const statements = operatorPolicy(result.config).Statement;
        const sids = statements.map((s) => s.Sid);
        assert.equal(new Set(sids).size, sids.length, `duplicate Sids: ${sids.join(", ")}`);
        for (const sid of sids) assert.match(sid, /^[A-Za-z0-9]+$/);
        const put = statements.filter((s) => s.Action.includes("ssm:PutParameter"));
        assert.deepEqual(put.map((s) => s.Resource), [
            ["arn:aws:ssm:*:*:parameter/ci/a-b/AWS_ACCESS_KEY_ID", "arn:aws:ssm:*:*:parameter/ci/a-b/AWS_SECRET_ACCESS_KEY"],
            ["arn:aws:ssm:*:*:parameter/ci/ab/AWS_ACCESS_KEY_ID", "arn:aws:ssm:*:*:parameter/ci/ab/AWS_SECRET_ACCESS_KEY"],
        ]);
        const pass = statements.filter((s) => s.Action.includes("iam:PassRole"));
        assert.deepEqual(pass.map((s) => s.Condition), [{ StringEquals: { "iam:PassedToService": "events.amazonaws.com" } }], "only the delivering target passes a role, and only to EventBridge");
    });
});
