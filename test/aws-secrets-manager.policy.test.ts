import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createRotationClient } from "../rotation/ops/automation";
import { main, type CliIo } from "../rotation/ops/cli";
import { fakeOpener } from "./support/fake-stack";

// `ci-key-rotation policy` with a Secrets Manager target: the operator's statements scoped to the
// secret, and `--readers`, the policy a consumer's role needs to read it.

const stackFile = `config:
  ci-key-rotation:credentials:
    - name: deploy
      targets:
        - type: github-repository
          repository: acme/api
        - type: aws-secrets-manager
        - type: aws-secrets-manager
          name: team/api
          kmsKey: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
          readers: [arn:aws:iam::123456789012:role/ci-runner]
`;

async function cli(argv: string[], stack = stackFile) {
    const cwd = await mkdtemp(join(tmpdir(), "ckr-sm-policy-"));
    await writeFile(join(cwd, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
    await writeFile(join(cwd, "Pulumi.prod.yaml"), stack);
    let stdout = "";
    let stderr = "";
    const io: CliIo = {
        stdout: (t) => (stdout += t),
        stderr: (t) => (stderr += t),
        interactive: false,
        prompt: async () => "",
        env: {},
        cwd,
        client: createRotationClient({ openStack: fakeOpener({}) }),
        user: "alice",
        untilShutdown: async () => {},
    };
    const code = await main(argv, io);
    return { code, stdout, stderr };
}

const sm = (n: string) => `arn:aws:secretsmanager:*:123456789012:secret:${n}-??????`;

describe("ci-key-rotation policy with a Secrets Manager target", () => {
    it("gives the operator the calls the provider makes, scoped to each secret, and KMS only through Secrets Manager for that secret", async () => {
        const run = await cli(["policy", "--account", "123456789012"]);
        assert.equal(run.code, 0, run.stderr);
        const doc = JSON.parse(run.stdout);
        const sids = doc.Statement.map((s: any) => s.Sid);
        assert.equal(new Set(sids).size, sids.length, `IAM refuses repeated Sids: ${sids.join(", ")}`);
        const write = doc.Statement.filter((s: any) => /^SecretsManagerWriteDeploy2?$/.test(s.Sid));
        assert.equal(write.length, 2);
        assert.deepEqual(write.map((s: any) => s.Resource), [sm("ci/deploy/aws-credentials"), sm("team/api")]);
        assert.deepEqual(write[0].Action, [
            "secretsmanager:CreateSecret",
            "secretsmanager:DeleteSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:GetSecretValue",
            "secretsmanager:ListSecretVersionIds",
            "secretsmanager:PutSecretValue",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
            "secretsmanager:UpdateSecret",
            "secretsmanager:UpdateSecretVersionStage",
        ]);
        assert.ok(write[1].Action.includes("secretsmanager:PutResourcePolicy"), "readers need the resource policy");
        assert.ok(!write[0].Action.includes("secretsmanager:PutResourcePolicy"), "no readers, no resource policy");
        const kms = doc.Statement.filter((s: any) => /^SecretsManagerKmsDeploy2?$/.test(s.Sid));
        assert.deepEqual(kms[1], {
            Sid: "SecretsManagerKmsDeploy2",
            Effect: "Allow",
            Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            Resource: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            Condition: { StringLike: { "kms:ViaService": "secretsmanager.*.amazonaws.com", "kms:EncryptionContext:SecretARN": sm("team/api") } },
        });
        assert.equal(kms[0].Resource, "*", "the set's or the AWS-managed key: not known from config, limited by the conditions");
    });

    it("--readers prints one identity policy per AWS-side target, none for GitHub", async () => {
        const run = await cli(["policy", "--readers", "--account", "123456789012", "--partition", "aws-cn"]);
        assert.equal(run.code, 0, run.stderr);
        const out = JSON.parse(run.stdout);
        assert.deepEqual(
            out.map((p: any) => [p.path, p.target]),
            [
                ["credentials[0].targets[1]", "aws-secrets-manager ci/deploy/aws-credentials"],
                ["credentials[0].targets[2]", "aws-secrets-manager team/api"],
            ],
        );
        assert.deepEqual(out[1].policy, {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ReadSecret", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: "arn:aws-cn:secretsmanager:*:123456789012:secret:team/api-??????" },
                {
                    Sid: "DecryptSecret",
                    Effect: "Allow",
                    Action: ["kms:Decrypt"],
                    Resource: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    Condition: { StringLike: { "kms:ViaService": "secretsmanager.*.amazonaws.com", "kms:EncryptionContext:SecretARN": "arn:aws-cn:secretsmanager:*:123456789012:secret:team/api-??????" } },
                },
            ],
        });
    });

    it("--readers --target prints just that document, by path or label, ready to paste", async () => {
        const byPath = await cli(["policy", "--readers", "--target", "credentials[0].targets[2]"]);
        assert.equal(byPath.code, 0, byPath.stderr);
        const doc = JSON.parse(byPath.stdout);
        assert.equal(doc.Version, "2012-10-17");
        assert.equal(doc.Statement[0].Resource, "arn:aws:secretsmanager:*:*:secret:team/api-??????");
        const byLabel = await cli(["policy", "--readers", "--target", "aws-secrets-manager team/api"]);
        assert.equal(byLabel.stdout, byPath.stdout);
        const unknown = await cli(["policy", "--readers", "--target", "credentials[0].targets[0]"]);
        assert.notEqual(unknown.code, 0);
        assert.match(unknown.stderr, /`--target` credentials\[0\]\.targets\[0\] is no target with reader permissions; targets with reader permissions: credentials\[0\]\.targets\[1\] \(aws-secrets-manager ci\/deploy\/aws-credentials\), credentials\[0\]\.targets\[2\]/);
        const stray = await cli(["policy", "--target", "x"]);
        assert.notEqual(stray.code, 0);
        assert.match(stray.stderr, /`--target` is only used with `--readers`/);
    });

    it("--readers on a stack with only CI-service targets says there is nothing to print", async () => {
        const run = await cli(["policy", "--readers"], "config:\n  ci-key-rotation:credentials:\n    - name: deploy\n      targets:\n        - type: github-repository\n          repository: acme/api\n");
        assert.equal(run.code, 0);
        assert.equal(run.stdout, "[]\n");
        assert.match(run.stderr, /no reader policies/);
    });
});
