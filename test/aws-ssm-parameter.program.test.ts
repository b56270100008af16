import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fakeSecretFor, isSecretInput, keyIdFor, reveal, settle, type MockWorld } from "./support/mocks";
import { runSettled, type SettledRun } from "./support/run-settled";
import { confirmTargetWrites } from "../rotation/pulumi/verify";

// The program with SSM Parameter Store targets, under mocks: the exact inputs of the parameters and
// of the delivery to instances, the key only as a secret, and the target check's evidence.

const KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "aws-ssm-parameter" },
            {
                type: "aws-ssm-parameter",
                path: "/runners/deploy",
                format: "credentials-file",
                kmsKey: KMS,
                tier: "Advanced",
                tags: { Team: "platform" },
                distribute: { instanceTag: { key: "ci-runner", value: "deploy" }, schedule: "rate(30 minutes)" },
            },
        ],
    },
];
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const SECRET1 = fakeSecretFor("deploy-key-1");
const SECRET2 = fakeSecretFor("deploy-key-2");
const PARAMETER = "aws:ssm/parameter:Parameter";
const DOCUMENT = "aws:ssm/document:Document";
const RULE = "aws:cloudwatch/eventRule:EventRule";
const EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget";
const ROLE = "aws:iam/role:Role";
const ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy";
const ASSOCIATION = "aws:ssm/association:Association";
const DOC_ARN = "arn:aws:ssm:eu-west-1:123456789012:document/ci-key-rotation-aws-ssm-parameter-runners-deploy-credentials";
const file = (id: string, secret: string) => `[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}\n`;

/** What SSM and the provider add: the parameter's version and ARN, the value read back; the document's ARN. */
function world(readBack: (inputs: Record<string, any>) => unknown = (inputs) => inputs.value): MockWorld {
    return {
        extraState: ({ type, inputs }) => {
            if (type === PARAMETER) return { version: 1, arn: `arn:aws:ssm:eu-west-1:123456789012:parameter${inputs.name}`, value: readBack(inputs) };
            if (type === DOCUMENT) return { arn: `arn:aws:ssm:eu-west-1:123456789012:document/${inputs.name}` };
            if (type === ROLE) return { arn: "arn:aws:iam::123456789012:role/distribute" };
            if (type === RULE) return { name: "rule-name" };
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
const parameters = (r: SettledRun) => ofType(r, PARAMETER).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName);

async function afterRun(previous: SettledRun, now: string, w: MockWorld = world()): Promise<SettledRun> {
    assert.ok(previous.rotation?.ok, "previous run succeeded");
    const rotation = previous.rotation.value;
    const keys = Object.values(rotation.sets as Record<string, any>).flatMap((s) => s.keys);
    return runSettled({
        config: { credentials },
        now,
        world: { ...w, stackOutputs: { rotation }, accessKeys: { "ci-deploy": keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) } },
    });
}

describe("program with SSM Parameter Store targets", () => {
    test("a mint run registers SecureString parameters with exact inputs, the values only as secrets, replaced delete-first", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        assert.equal(r.error, undefined);
        assert.ok(r.rotation?.ok, String(!r.rotation?.ok && r.rotation?.error));
        const description = 'AWS access key of credential set "deploy", rotated by ci-key-rotation: edits here are overwritten.';
        assert.deepEqual(parameters(r), [
            {
                name: "aws-ssm-parameter-ci-deploy-AWS_ACCESS_KEY_ID",
                plain: { name: "/ci/deploy/AWS_ACCESS_KEY_ID", type: "SecureString", value: KEY1, keyId: "alias/aws/ssm", tier: "Standard", description },
                secretPaths: ["value"],
            },
            {
                name: "aws-ssm-parameter-ci-deploy-AWS_SECRET_ACCESS_KEY",
                plain: { name: "/ci/deploy/AWS_SECRET_ACCESS_KEY", type: "SecureString", value: SECRET1, keyId: "alias/aws/ssm", tier: "Standard", description },
                secretPaths: ["value"],
            },
            {
                name: "aws-ssm-parameter-runners-deploy-credentials-credentials",
                plain: { name: "/runners/deploy/credentials", type: "SecureString", value: file(KEY1, SECRET1), keyId: KMS, tier: "Advanced", description, tags: { Team: "platform" } },
                secretPaths: ["value"],
            },
        ]);
        for (const p of ofType(r, PARAMETER)) {
            assert.equal(r.resourceOptions.get(p.name)?.deleteBeforeReplace, true, `${p.name}: a create-then-delete replacement would delete the parameter it just wrote`);
            assert.equal(p.inputs.insecureValue, undefined);
            assert.equal(p.inputs.overwrite, undefined);
        }
        // The secret's parameter waits for the key id's, so its change event sees both new.
        const idUrn = [...r.resourceOptions.entries()].find(([n]) => n === "aws-ssm-parameter-ci-deploy-AWS_ACCESS_KEY_ID");
        assert.ok(idUrn);
        assert.ok(r.resourceOptions.get("aws-ssm-parameter-ci-deploy-AWS_SECRET_ACCESS_KEY")!.dependencies.some((u) => u.endsWith("::aws-ssm-parameter-ci-deploy-AWS_ACCESS_KEY_ID")));
        for (const x of r.registrations) assert.ok(!JSON.stringify(redact(x.inputs)).includes(SECRET1), `${x.type} ${x.name} carries the secret in plaintext`);
        assert.ok(!JSON.stringify(r.rotation.value).includes(SECRET1));
        assert.ok(!JSON.stringify(r.sets?.ok && r.sets.value).includes(SECRET1));
    });

    test("distribute registers the document, the rule on the file's change event, the Run Command target with a scoped role, and the association", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const [doc] = ofType(r, DOCUMENT);
        assert.equal(doc.inputs.name, "ci-key-rotation-aws-ssm-parameter-runners-deploy-credentials");
        assert.equal(doc.inputs.documentType, "Command");
        assert.equal(doc.inputs.documentFormat, "JSON");
        const content = JSON.parse(doc.inputs.content);
        assert.equal(content.schemaVersion, "2.2");
        const script: string[] = content.mainSteps[0].inputs.runCommand;
        assert.ok(script.includes("aws ssm get-parameter --region \"$REGION\" --with-decryption --name '/runners/deploy/credentials' --query Parameter.Value --output text > \"$TMP\""));
        assert.ok(script.includes('chmod 0400 "$TMP"'));
        assert.ok(script.includes('chown runner:runner "$TMP"'));
        assert.equal(script.at(-2), "mv -f \"$TMP\" '/home/runner/.aws/credentials'");
        assert.ok(!doc.inputs.content.includes(SECRET1) && !doc.inputs.content.includes(KEY1), "the document holds no key");

        const [rule] = ofType(r, RULE);
        assert.deepEqual(JSON.parse(rule.inputs.eventPattern), {
            source: ["aws.ssm"],
            "detail-type": ["Parameter Store Change"],
            detail: { name: ["/runners/deploy/credentials"], operation: ["Create", "Update"] },
        });
        const [target] = ofType(r, EVENT_TARGET);
        assert.deepEqual(
            { rule: target.inputs.rule, arn: target.inputs.arn, roleArn: target.inputs.roleArn, runCommandTargets: target.inputs.runCommandTargets },
            { rule: "rule-name", arn: DOC_ARN, roleArn: "arn:aws:iam::123456789012:role/distribute", runCommandTargets: [{ key: "tag:ci-runner", values: ["deploy"] }] },
        );
        const [role] = ofType(r, ROLE);
        assert.deepEqual(JSON.parse(role.inputs.assumeRolePolicy).Statement, [{ Effect: "Allow", Principal: { Service: "events.amazonaws.com" }, Action: "sts:AssumeRole" }]);
        const [policy] = ofType(r, ROLE_POLICY);
        assert.deepEqual(JSON.parse(policy.inputs.policy).Statement, [
            { Sid: "Document", Effect: "Allow", Action: "ssm:SendCommand", Resource: DOC_ARN },
            { Sid: "TaggedInstances", Effect: "Allow", Action: "ssm:SendCommand", Resource: "arn:aws:ec2:*:*:instance/*", Condition: { StringEquals: { "ssm:resourceTag/ci-runner": "deploy" } } },
        ]);
        const [association] = ofType(r, ASSOCIATION);
        assert.deepEqual(
            { name: association.inputs.name, targets: association.inputs.targets, scheduleExpression: association.inputs.scheduleExpression },
            { name: "ci-key-rotation-aws-ssm-parameter-runners-deploy-credentials", targets: [{ key: "tag:ci-runner", values: ["deploy"] }], scheduleExpression: "rate(30 minutes)" },
        );
        assert.equal(ofType(r, DOCUMENT).length, 1, "only the target with distribute delivers");
        // The rule's target exists before the parameter's first write (its Create event is delivered),
        // and the association runs after it (its first run reads the new key).
        const paramDeps = r.resourceOptions.get("aws-ssm-parameter-runners-deploy-credentials-credentials")!.dependencies;
        assert.ok(paramDeps.some((u) => u.endsWith(`${EVENT_TARGET}::aws-ssm-parameter-runners-deploy-credentials-distribute`)), "the parameter waits for the delivery's event target");
        // Options are recorded by name; the association registers last of the delivery's resources, so it holds the name's entry.
        const associationDeps = r.resourceOptions.get("aws-ssm-parameter-runners-deploy-credentials-distribute")!.dependencies;
        assert.ok(associationDeps.some((u) => u.endsWith(`${PARAMETER}::aws-ssm-parameter-runners-deploy-credentials-credentials`)), "the association waits for the parameter");
    });

    test("the parameters' value outputs are secrets, and the target check gets the key id read back as evidence", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const stored = [...(pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, { state: Record<string, unknown> }> }).getRegisteredResources().entries()].filter(([urn]) =>
            urn.includes(`${PARAMETER}::`),
        );
        assert.equal(stored.length, 3);
        for (const [urn, s] of stored) assert.ok(pulumi.runtime.isRpcSecret(s.state.value), `${urn} value must be secret`);
        const check = r.registrations.find((x) => Array.isArray(reveal(x.inputs).plain.writes));
        assert.ok(check, "a target check is registered");
        const { plain } = reveal(check.inputs);
        assert.deepEqual(
            plain.writes.map((w: any) => ({ what: w.what, accessKeyId: w.accessKeyId })),
            [
                { what: "parameter /ci/deploy/AWS_ACCESS_KEY_ID", accessKeyId: KEY1 },
                { what: "parameter /runners/deploy/credentials", accessKeyId: KEY1 },
            ],
        );
        assert.ok(!JSON.stringify(plain).includes(SECRET1));
    });

    test("a no-change run registers the same inputs, and the next mint changes only the values", async () => {
        const first = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const again = await afterRun(first, "2026-11-01T00:00:00Z");
        assert.ok(again.rotation?.ok);
        for (const type of [PARAMETER, DOCUMENT, RULE, EVENT_TARGET, ROLE, ROLE_POLICY, ASSOCIATION]) {
            assert.deepEqual(
                ofType(again, type).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName),
                ofType(first, type).map((x) => ({ name: x.name, ...reveal(x.inputs) })).sort(byName),
                `${type} inputs changed on a run with nothing due`,
            );
        }
        const mint = await afterRun(first, "2027-02-15T00:00:00Z");
        assert.ok(mint.rotation?.ok, String(!mint.rotation?.ok && mint.rotation?.error));
        const before = parameters(first);
        const after = parameters(mint);
        assert.deepEqual(after.map((p) => p.plain.value), [KEY2, SECRET2, file(KEY2, SECRET2)]);
        assert.deepEqual(
            after.map((p) => ({ ...p, plain: { ...p.plain, value: undefined } })),
            before.map((p) => ({ ...p, plain: { ...p.plain, value: undefined } })),
            "only the values change on a rotation (no replace-causing input moves)",
        );
        assert.equal(ofType(mint, DOCUMENT)[0].inputs.content, ofType(first, DOCUMENT)[0].inputs.content, "the document does not change on a rotation");
    });

    test("the set's KMS key is the default, a target's own kmsKey wins", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: world() });
        const { ssmParameterStore } = await import("../providers/aws-ssm-parameter/store");
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
        const base = { type: "aws-ssm-parameter" as const, format: "credentials-file" as const, fileName: "credentials", profile: "default", tier: "Standard" as const };
        ssmParameterStore.declare({ ...base, path: "/a" }, ctx("a"));
        ssmParameterStore.declare({ ...base, path: "/b", kmsKey: "alias/own" }, ctx("b"));
        await settle();
        const kms = Object.fromEntries(ofType(r, PARAMETER).filter((x) => x.name === "a-credentials" || x.name === "b-credentials").map((x) => [x.name, x.inputs.keyId]));
        assert.deepEqual(kms, { "a-credentials": "arn:aws:kms:eu-west-1:123456789012:key/set-key", "b-credentials": "alias/own" });
    });
});

describe("target check on a stale write", () => {
    test("a parameter that reads back another key id fails the run naming the parameter", async () => {
        const r = await runSettled({
            config: { credentials: [{ name: "deploy", targets: [{ type: "aws-ssm-parameter" }] }] },
            now: "2026-11-01T00:00:00Z",
            world: world((inputs) => (inputs.name.endsWith("AWS_ACCESS_KEY_ID") ? "AKIAOLDOLDOLDOLDOLD0" : inputs.value)),
        });
        const check = r.registrations.find((x) => Array.isArray(reveal(x.inputs).plain.writes));
        assert.ok(check);
        assert.throws(
            () => confirmTargetWrites(reveal(check.inputs).plain as any),
            (e: Error) => {
                assert.match(e.message, /`credentials\[0\]\.targets\[0\]` \(aws-ssm-parameter \/ci\/deploy\): parameter \/ci\/deploy\/AWS_ACCESS_KEY_ID holds key AKIAOLDOLDOLDOLDOLD0/);
                assert.ok(!e.message.includes(SECRET1));
                return true;
            },
        );
    });
});
