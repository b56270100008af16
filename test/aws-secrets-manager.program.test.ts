import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fakeSecretFor, isSecretInput, keyIdFor, reveal, settle, type MockWorld } from "./support/mocks";
import { runSettled, type SettledRun } from "./support/run-settled";
import { confirmTargetWrites } from "../rotation/pulumi/verify";

// The program with Secrets Manager targets, under mocks: the exact inputs of the secret, its
// version and its policy, the key only as a secret, and the target check's evidence.

const readers = ["arn:aws:iam::123456789012:role/ci-runner", "arn:aws:iam::210987654321:root"];
const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "aws-secrets-manager" },
            {
                type: "aws-secrets-manager",
                name: "ci/shared/deploy",
                names: { accessKeyId: "id", secretAccessKey: "secret" },
                kmsKey: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                readers,
                tags: { Team: "platform" },
                recoveryWindowInDays: 7,
            },
        ],
    },
];
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const SECRET1 = fakeSecretFor("deploy-key-1");
const SECRET2 = fakeSecretFor("deploy-key-2");
const SECRET = "aws:secretsmanager/secret:Secret";
const VERSION = "aws:secretsmanager/secretVersion:SecretVersion";
const POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy";

/** What Secrets Manager and the provider add: the ARN (name + 6 random characters), the version id read back. */
function world(stages: string[] = ["AWSCURRENT"]): MockWorld {
    return {
        extraState: ({ type, name, inputs }) => {
            if (type === SECRET) return { arn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${inputs.name}-AbC123` };
            if (type === VERSION) return { versionId: `version-of-${name}`, versionStages: stages, arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC123" };
            if (type === "aws:iam/accessKey:AccessKey") return { createDate: "2026-11-01T00:00:00Z" };
            return undefined;
        },
    };
}

/** Inputs with every secret value replaced by a marker: what the engine would store in plaintext. */
function redact(v: unknown): unknown {
    if (isSecretInput(v)) return "[secret]";
    if (Array.isArray(v)) return v.map(redact);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x)]));
    return v;
}

const ofType = (r: SettledRun, type: string) => r.registrations.filter((x) => x.type === type);
const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

async function afterRun(previous: SettledRun, now: string, extra: Record<string, unknown> = {}, w: MockWorld = world()): Promise<SettledRun> {
    assert.ok(previous.rotation?.ok, "previous run succeeded");
    const rotation = previous.rotation.value;
    const keys = Object.values(rotation.sets as Record<string, any>).flatMap((s) => s.keys);
    return runSettled({
        config: { credentials, ...extra },
        now,
        world: { ...w, stackOutputs: { rotation }, accessKeys: { "ci-deploy": keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) } },
    });
}

describe("program with Secrets Manager targets", () => {
    test("a mint run registers the secret, its version and the readers' policy with exact inputs, the key only as a secret", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        assert.equal(r.error, undefined);
        assert.ok(r.rotation?.ok, String(!r.rotation?.ok && r.rotation?.error));
        const secrets = ofType(r, SECRET).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName);
        assert.deepEqual(secrets, [
            {
                name: "aws-secrets-manager-ci-deploy-aws-credentials-secret",
                plain: {
                    name: "ci/deploy/aws-credentials",
                    description: 'AWS access key of credential set "deploy", rotated by ci-key-rotation: values written here are overwritten.',
                    recoveryWindowInDays: 30,
                },
                secretPaths: [],
            },
            {
                name: "aws-secrets-manager-ci-shared-deploy-secret",
                plain: {
                    name: "ci/shared/deploy",
                    description: 'AWS access key of credential set "deploy", rotated by ci-key-rotation: values written here are overwritten.',
                    kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    recoveryWindowInDays: 7,
                    tags: { Team: "platform" },
                },
                secretPaths: [],
            },
        ]);
        const versions = ofType(r, VERSION).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName);
        assert.deepEqual(versions, [
            {
                name: "aws-secrets-manager-ci-deploy-aws-credentials-version",
                plain: { secretId: "aws-secrets-manager-ci-deploy-aws-credentials-secret-id", secretString: JSON.stringify({ AccessKeyId: KEY1, SecretAccessKey: SECRET1 }), versionStages: ["AWSCURRENT"] },
                secretPaths: ["secretString"],
            },
            {
                name: "aws-secrets-manager-ci-shared-deploy-version",
                plain: { secretId: "aws-secrets-manager-ci-shared-deploy-secret-id", secretString: JSON.stringify({ id: KEY1, secret: SECRET1 }), versionStages: ["AWSCURRENT"] },
                secretPaths: ["secretString"],
            },
        ]);
        const policies = ofType(r, POLICY).map((x) => ({ name: x.name, inputs: x.inputs }));
        assert.equal(policies.length, 1, "only the target with readers has a resource policy");
        assert.equal(policies[0].name, "aws-secrets-manager-ci-shared-deploy-policy");
        assert.equal(policies[0].inputs.secretArn, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/shared/deploy-AbC123");
        assert.equal(policies[0].inputs.blockPublicPolicy, true);
        assert.deepEqual(JSON.parse(policies[0].inputs.policy), {
            Version: "2012-10-17",
            Statement: [{ Sid: "ReadCredentials", Effect: "Allow", Principal: { AWS: readers }, Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], Resource: "*" }],
        });
        // Replacement of a version is create-then-delete (see providers/aws-secrets-manager/store.ts):
        // the new version is AWSCURRENT before the old resource's delete, which never removes it.
        for (const v of ofType(r, VERSION)) assert.equal(r.resourceOptions.get(v.name)?.deleteBeforeReplace, false);
        // No registered input holds the secret in plaintext (secret inputs left out).
        for (const x of r.registrations) assert.ok(!JSON.stringify(redact(x.inputs)).includes(SECRET1), `${x.type} ${x.name} carries the secret in plaintext`);
        assert.ok(!JSON.stringify(r.rotation.value).includes(SECRET1));
        assert.ok(!JSON.stringify(r.sets?.ok && r.sets.value).includes(SECRET1));
    });

    test("the version's secretString output is a secret, and the target check gets only the key id as evidence", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const stored = [...(pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, { state: Record<string, unknown> }> }).getRegisteredResources().entries()].filter(([urn]) =>
            urn.includes(`${VERSION}::`),
        );
        assert.equal(stored.length, 2);
        for (const [urn, s] of stored) assert.ok(pulumi.runtime.isRpcSecret(s.state.secretString), `${urn} secretString must be secret`);
        const check = r.registrations.find((x) => x.inputs.kind !== undefined && Array.isArray(reveal(x.inputs).plain.writes));
        assert.ok(check, "a target check is registered");
        const { plain, secretPaths } = reveal(check.inputs);
        assert.deepEqual(secretPaths, []);
        assert.deepEqual(
            plain.writes.map((w: any) => ({ what: w.what, accessKeyId: w.accessKeyId })),
            [
                { what: "secret ci/deploy/aws-credentials, stage AWSCURRENT", accessKeyId: KEY1 },
                { what: "secret ci/shared/deploy, stage AWSCURRENT", accessKeyId: KEY1 },
            ],
        );
        assert.ok(!JSON.stringify(plain).includes(SECRET1));
    });

    test("a no-change run registers the same inputs (no diff), and the next mint replaces only the versions", async () => {
        const first = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const again = await afterRun(first, "2026-11-01T00:00:00Z");
        assert.ok(again.rotation?.ok);
        for (const type of [SECRET, VERSION, POLICY]) {
            assert.deepEqual(
                ofType(again, type).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName),
                ofType(first, type).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName),
                `${type} inputs changed on a run with nothing due`,
            );
        }
        const mint = await afterRun(first, "2027-02-15T00:00:00Z");
        assert.ok(mint.rotation?.ok, String(!mint.rotation?.ok && mint.rotation?.error));
        const v = ofType(mint, VERSION).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName);
        assert.deepEqual(v.map((x) => x.name), ["aws-secrets-manager-ci-deploy-aws-credentials-version", "aws-secrets-manager-ci-shared-deploy-version"]);
        assert.equal(v[0].plain.secretString, JSON.stringify({ AccessKeyId: KEY2, SecretAccessKey: SECRET2 }));
        assert.deepEqual(
            ofType(mint, SECRET).map((x) => reveal(x.inputs).plain).sort((a, b) => a.name.localeCompare(b.name)),
            ofType(first, SECRET).map((x) => reveal(x.inputs).plain).sort((a, b) => a.name.localeCompare(b.name)),
            "the secret itself does not change on a rotation",
        );
    });

    test("the set's KMS key is the default, a target's own kmsKey wins", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const { secretsManagerStore } = await import("../providers/aws-secrets-manager/store");
        const parent = new pulumi.ComponentResource("ci-key-rotation:test:Parent", "kms-parent");
        const key = { generation: 1, accessKeyId: pulumi.output(KEY1), secretAccessKey: pulumi.secret(SECRET1) };
        const ctx = (resourceName: string) => ({
            setName: "deploy",
            resourceName,
            previousResourceNames: [],
            parent,
            key,
            kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/set-key",
            configPath: "credentials[0].targets[0]",
            once: <R>(_k: string, make: () => R) => make(),
        });
        secretsManagerStore.declare({ type: "aws-secrets-manager", name: "ci/a", recoveryWindowInDays: 30 }, ctx("a"));
        secretsManagerStore.declare({ type: "aws-secrets-manager", name: "ci/b", kmsKey: "alias/own", recoveryWindowInDays: 30 }, ctx("b"));
        await settle();
        const kms = Object.fromEntries(ofType(r, SECRET).filter((x) => x.name === "a-secret" || x.name === "b-secret").map((x) => [x.name, x.inputs.kmsKeyId]));
        assert.deepEqual(kms, { "a-secret": "arn:aws:kms:eu-west-1:123456789012:key/set-key", "b-secret": "alias/own" });
    });
});

describe("target check on a stale write", () => {
    test("a version that is not AWSCURRENT fails the run naming the secret and the version", async () => {
        const r = await runSettled({ config: { credentials: [{ name: "deploy", targets: [{ type: "aws-secrets-manager" }] }] }, now: "2026-11-01T00:00:00Z", world: world(["AWSPREVIOUS"]) });
        const check = r.registrations.find((x) => Array.isArray(reveal(x.inputs).plain.writes));
        assert.ok(check);
        const inputs = reveal(check.inputs).plain;
        assert.throws(
            () => confirmTargetWrites(inputs as any),
            (e: Error) => {
                assert.match(e.message, /`credentials\[0\]\.targets\[0\]` \(aws-secrets-manager ci\/deploy\/aws-credentials\): secret ci\/deploy\/aws-credentials, stage AWSCURRENT holds key none from this stack \(its version version-of-aws-secrets-manager-ci-deploy-aws-credentials-version is labelled AWSPREVIOUS/);
                assert.ok(!e.message.includes(SECRET1));
                return true;
            },
        );
    });
});
