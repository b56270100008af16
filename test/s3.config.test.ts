import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bucketPolicyStatements, dotenvLine, envFileText, objectKeyProblems, s3Spec, type S3EnvFileTarget } from "../providers/s3/spec";
import { validateConfig } from "../rotation/core/config";

// Config validation of S3 env-file targets, the env file's text, and the policies they imply.

const kms = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666";

function problemsOf(targets: unknown[]): string[] {
    const result = validateConfig({ credentials: [{ name: "deploy", targets }] });
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

function targetsOf(targets: unknown[]): S3EnvFileTarget[] {
    const result = validateConfig({ credentials: [{ name: "deploy", targets }] });
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    return result.config.sets[0].targets.map((t) => t.target as S3EnvFileTarget);
}

describe("S3 env-file target config", () => {
    it("fills in documented defaults", () => {
        assert.deepEqual(targetsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci/deploy", env: "production", kmsKey: kms }]), [
            {
                type: "aws-s3-env-file",
                bucket: "acme-ci-env",
                prefix: "ci/deploy",
                env: "production",
                kmsKey: kms,
                bucketKey: true,
                contentType: "text/plain; charset=utf-8",
                bucketPolicy: "document",
            },
        ]);
    });

    it("reports every problem at once, each with its path", () => {
        assert.deepEqual(
            problemsOf([
                { type: "aws-s3-env-file", bucket: "Acme_CI", key: "ci/prod.env", kmsKey: kms },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "/ci//prod.env", kmsKey: "alias/ci" },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci", kmsKey: kms },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/a.env", env: "staging", kmsKey: kms },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/b.env", kmsKey: kms, variables: { "AWS-REGION": "x", NOTE: "it's", MULTI: "a\nb" } },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/f.env", kmsKey: kms, variables: { AWS_SECRET_ACCESS_KEY: "x" } },
                { type: "aws-s3-env-file", bucket: "192.168.1.1", key: "ci/c.env", kmsKey: kms, readers: ["role/ci"], bucketPolicy: "replace" },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/d.env", kmsKey: kms, tags: { "aws:owner": "x" }, bucketKey: "yes" },
                { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/e.env" },
            ]),
            [
                "credentials[0].targets[0].bucket must be lower-case letters, digits, dots and hyphens only",
                "credentials[0].targets[0].bucket must begin and end with a letter or digit",
                "credentials[0].targets[1].key must not start with / (the provider strips it)",
                "credentials[0].targets[1].key must not contain // (the provider folds it into one /)",
                "credentials[0].targets[1].kmsKey must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); an alias or bare key id is not accepted: S3 records the key ARN, so anything else would differ on every run",
                "credentials[0].targets[2].env is required with prefix (the key is <prefix>/<env>)",
                "credentials[0].targets[3].env cannot be given with key: give key, or env (with an optional prefix)",
                "credentials[0].targets[4].variables.AWS-REGION must be letters, digits and underscores, not starting with a digit (a shell variable name)",
                "credentials[0].targets[4].variables.NOTE must not contain a single quote (the env file single-quotes values, and sh cannot escape one inside them)",
                "credentials[0].targets[4].variables.MULTI must be one line (no line breaks or NUL: an environment variable holds one line)",
                "credentials[0].targets[5].variables.AWS_SECRET_ACCESS_KEY is already the name of an access key variable: choose another name",
                "credentials[0].targets[6].bucket must not look like an IP address",
                "credentials[0].targets[6].readers[0] must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)",
                'credentials[0].targets[6].bucketPolicy must be "document" or "manage"',
                "credentials[0].targets[7].bucketKey must be true or false",
                'credentials[0].targets[7].tags.aws:owner must not start with "aws:" (reserved by AWS)',
                "credentials[0].targets[8].kmsKey is required when the set has no KMS key (credentials[].kms): give the ARN of the key readers may decrypt with",
            ],
        );
    });

    it("refuses two targets that write the same object, also when one spells it as prefix and env", () => {
        const problems = problemsOf([
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/deploy/production", kmsKey: kms },
            { type: "aws-s3-env-file", bucket: "acme-ci-env", prefix: "ci/deploy", env: "production", kmsKey: kms },
        ]);
        assert.ok(
            problems.some((p) => p.startsWith("credentials[0].targets[1] writes s3 object s3://acme-ci-env/ci/deploy/production, which credentials[0].targets[0] already writes")),
            problems.join("\n"),
        );
    });

    it("refuses two files whose keys differ only in case: their resources would share one URN and fail `pulumi up`", () => {
        // Resource names are lower-cased slugs of the label (rotation/pulumi/credential-set.ts `slug`),
        // and the resource-name check leaves out labels equal ignoring case.
        const problems = problemsOf([
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/Prod.env", kmsKey: kms },
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/prod.env", kmsKey: kms },
        ]);
        assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[1] writes s3 object")), problems.join("\n"));
    });

    it("refuses a * in the key: in the policies' ARNs it is a wildcard that reaches other objects", () => {
        // `arn:aws:s3:::acme-ci-env/ci/*.env` in readerPermissions would let the reader get every
        // .env file of ci/, and the operator's DeleteObject would reach them too.
        for (const at of [{ key: "ci/*.env" }, { prefix: "ci/*", env: "prod" }, { prefix: "ci", env: "*" }]) {
            const problems = problemsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", kmsKey: kms, ...at }]);
            assert.ok(problems.some((p) => /^credentials\[0\]\.targets\[0\]\.(key|prefix|env) must not contain \*/.test(p)), problems.join("\n"));
        }
    });

    it("refuses tag keys and values with characters S3 rejects at PutObjectTagging", () => {
        // S3 object tags: letters, digits, spaces and + - = . _ : / @ (S3 User Guide, "Categorizing
        // your storage using tags"); anything else passed validation and failed the upload.
        const problems = problemsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/t.env", kmsKey: kms, tags: { "team#1": "ok", owner: "a&b" } }]);
        assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[0].tags.team#1 ")), problems.join("\n"));
        assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[0].tags.owner ")), problems.join("\n"));
        targetsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/t.env", kmsKey: kms, tags: { "Team Name": "platform/ci+ops@x:y=z_1.-" } }]);
    });

    it("refuses a content type that cannot be an HTTP header value", () => {
        // Content-Type is sent as a header of PutObject: a line break or control character fails the upload.
        const problems = problemsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/t.env", kmsKey: kms, contentType: "text/plain\r\nx-amz-acl: public-read" }]);
        assert.ok(problems.some((p) => p.startsWith("credentials[0].targets[0].contentType ")), problems.join("\n"));
    });

    it("refuses two files whose resource names collide, whatever their variable names", () => {
        // `ci/a.env` and `ci/a-env` both name their object `s3-env-file-s3-acme-ci-env-ci-a-env-object`.
        const problems = problemsOf([
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/a.env", kmsKey: kms },
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/a-env", kmsKey: kms, names: { accessKeyId: "KEY_ID", secretAccessKey: "KEY_SECRET" } },
        ]);
        assert.ok(problems.some((p) => p.includes("would have the same Pulumi resource name") && p.includes("-object")), problems.join("\n"));
    });

    it("refuses two targets that both manage one bucket's policy, and allows one per bucket", () => {
        const problems = problemsOf([
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/prod", kmsKey: kms, bucketPolicy: "manage" },
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/staging", kmsKey: kms, bucketPolicy: "manage" },
        ]);
        assert.ok(problems.some((p) => p.includes("writes s3 bucket policy of acme-ci-env, which credentials[0].targets[0] already writes")), problems.join("\n"));
        targetsOf([
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/prod", kmsKey: kms, bucketPolicy: "manage" },
            { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/staging", kmsKey: kms },
        ]);
    });

    it("accepts the keys of S3's safe characters and refuses every key the provider would rewrite", () => {
        fc.assert(
            fc.property(fc.stringMatching(/^[A-Za-z0-9!_.*'()\/-]{1,40}$/), (key) => {
                // terraform-provider-aws `sdkv1CompatibleCleanKey`, restated.
                const cleaned = key.replace(/^\.\//, "").replace(/^\/+/, "").replace(/\/+/g, "/");
                if (cleaned !== key) assert.notDeepEqual(objectKeyProblems(key), [], key);
            }),
        );
        assert.deepEqual(objectKeyProblems("ci/deploy/production.env"), []);
        assert.deepEqual(objectKeyProblems("./ci"), ["must not contain . or .. segments"]);
    });
});

describe("the env file's text", () => {
    const [target] = targetsOf([{ type: "aws-s3-env-file", bucket: "acme-ci-env", env: "production", kmsKey: kms, variables: { AWS_REGION: "eu-west-1", GREETING: "hello world $HOME" } }]);

    it("holds the key and the fixed variables, quoting only values a shell would interpret", () => {
        assert.equal(
            envFileText(target, "deploy", "AKIAEXAMPLE000000001", "abc+/DEF0123456789abcdefghijklmnopqrstuv"),
            [
                '# AWS access key of credential set "deploy", rotated by ci-key-rotation: edits here are overwritten.',
                "AWS_ACCESS_KEY_ID=AKIAEXAMPLE000000001",
                "AWS_SECRET_ACCESS_KEY=abc+/DEF0123456789abcdefghijklmnopqrstuv",
                "AWS_REGION=eu-west-1",
                "GREETING='hello world $HOME'",
                "",
            ].join("\n"),
        );
    });

    it("never puts a value it cannot write into the error", () => {
        assert.throws(() => dotenvLine("AWS_SECRET_ACCESS_KEY", "it's-secret"), (e: Error) => e.message.includes("AWS_SECRET_ACCESS_KEY") && !e.message.includes("it's-secret"));
    });
});

describe("S3 env-file policies", () => {
    const [plain, guarded] = targetsOf([
        { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/prod.env", kmsKey: kms },
        { type: "aws-s3-env-file", bucket: "acme-ci-env", key: "ci/staging.env", kmsKey: kms, bucketKey: false, readers: ["arn:aws:iam::123456789012:role/app-task", "arn:aws:iam::123456789012:role/ci-operator"] },
    ]);

    it("denies unencrypted puts, puts under another key and plain HTTP; other readers only when readers are given", () => {
        const sids = (t: S3EnvFileTarget) => bucketPolicyStatements(t, kms).map((s) => s.Sid.replace(/[0-9a-f]{8}$/, ""));
        assert.deepEqual(sids(plain), ["DenyUnencryptedPut", "DenyPutWithOtherKey", "DenyInsecureTransport"]);
        assert.deepEqual(sids(guarded), ["DenyUnencryptedPut", "DenyPutWithOtherKey", "DenyInsecureTransport", "DenyOtherReaders"]);
        const [unencrypted, otherKey] = bucketPolicyStatements(plain, kms);
        assert.deepEqual(unencrypted.Condition, { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } });
        assert.deepEqual(otherKey.Condition, { StringNotEquals: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kms } });
        assert.equal(unencrypted.Resource, "arn:aws:s3:::acme-ci-env/ci/prod.env");
        // Two files in one bucket get statements that can sit side by side in one policy.
        assert.notEqual(bucketPolicyStatements(plain, kms)[0].Sid, bucketPolicyStatements(guarded, kms)[0].Sid);
    });

    it("gives readers GetObject on the file and kms:Decrypt only through S3 for that file's context", () => {
        assert.deepEqual(s3Spec.readerPermissions!(plain), [
            { Sid: "S3EnvFileRead", Effect: "Allow", Action: ["s3:GetObject"], Resource: "arn:aws:s3:::acme-ci-env/ci/prod.env" },
            {
                Sid: "S3EnvFileDecrypt",
                Effect: "Allow",
                Action: ["kms:Decrypt"],
                Resource: kms,
                Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" }, StringEquals: { "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::acme-ci-env" } },
            },
        ]);
        // Without a bucket key asked for, the bucket's default may still use one: both contexts.
        assert.deepEqual(s3Spec.readerPermissions!(guarded)[1].Condition?.StringEquals, {
            "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::acme-ci-env", "arn:aws:s3:::acme-ci-env/ci/staging.env"],
        });
    });

    it("asks the operator for bucket policy rights only when it manages the policy", () => {
        const actions = (t: S3EnvFileTarget) => s3Spec.awsPermissions!(t).flatMap((s) => s.Action);
        assert.ok(!actions(plain).includes("s3:PutBucketPolicy"));
        assert.ok(actions({ ...plain, bucketPolicy: "manage" }).includes("s3:PutBucketPolicy"));
        assert.ok(actions(plain).includes("kms:GenerateDataKey"));
    });
});
