import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fakeSecretFor, keyIdFor, reveal } from "./support/mocks";
import { ofType, runProgram, type RunResult } from "./support/run";
import { runSettled } from "./support/run-settled";

const credentials = [
    {
        name: "deploy",
        user: {
            path: "/ci/",
            tags: { Team: "platform" },
            managedPolicyArns: ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/deploy"],
            inlinePolicy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:PutObject", Resource: "arn:aws:s3:::artifacts/*" }] },
            permissionsBoundary: "arn:aws:iam::123456789012:policy/ci-boundary",
        },
        targets: [
            { type: "github-repository", repository: "acme/api", variables: { AWS_REGION: "eu-west-1" } },
            { type: "github-environment", repository: "acme/api", environment: "production", names: { accessKeyId: "PROD_KEY_ID", secretAccessKey: "PROD_SECRET" } },
            { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web", "worker"] },
            { type: "github-dependabot", repository: "acme/api" },
        ],
    },
];
const repoIds = { "acme/web": 101, "acme/worker": 102 };
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const SECRET1 = fakeSecretFor("deploy-key-1");
const SECRET2 = fakeSecretFor("deploy-key-2");

/** A run after `previous`, with IAM showing what the previous run left. */
async function runAfter(previous: RunResult, now: string, extra: Record<string, unknown> = {}, lastUse?: Record<string, { at?: string }>) {
    const rotation = previous.outputs!.rotation;
    const keys = Object.values(rotation.sets as Record<string, any>).flatMap((s) => s.keys);
    return runProgram({
        config: { credentials, ...extra },
        now,
        world: { stackOutputs: { rotation }, repoIds, accessKeys: { "ci-deploy": keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) } },
        lastUse,
    });
}

const secretsOf = (r: RunResult) =>
    r.registrations
        .filter((x) => x.type.startsWith("github:index/") && /Secret:/.test(x.type) && !/Repositories/.test(x.type))
        .map((x) => {
            const { plain, secretPaths } = reveal(x.inputs);
            return { type: x.type.split(":")[2], name: plain.secretName, value: plain.value, secret: secretPaths.includes("value"), repository: plain.repository, environment: plain.environment, visibility: plain.visibility };
        });

describe("the program, run after run", () => {
    let first: RunResult;

    test("first run: creates the user, key 1, and writes it to every target as secrets", async () => {
        first = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds } });
        assert.equal(first.error, undefined, first.error?.stack);

        const [user] = ofType(first, "aws:iam/user:User");
        assert.equal(user.name, "deploy-user");
        assert.deepEqual(user.inputs, {
            name: "ci-deploy",
            path: "/ci/",
            permissionsBoundary: "arn:aws:iam::123456789012:policy/ci-boundary",
            tags: { Team: "platform", ManagedBy: "ci-key-rotation", CredentialSet: "deploy" },
        });
        assert.deepEqual(
            ofType(first, "aws:iam/userPolicyAttachment:UserPolicyAttachment").map((r) => [r.name, r.inputs]),
            [
                ["deploy-policy-aws-readonlyaccess", { user: "ci-deploy", policyArn: "arn:aws:iam::aws:policy/ReadOnlyAccess" }],
                ["deploy-policy-123456789012-deploy", { user: "ci-deploy", policyArn: "arn:aws:iam::123456789012:policy/deploy" }],
            ],
        );
        const [inline] = ofType(first, "aws:iam/userPolicy:UserPolicy");
        assert.deepEqual(inline.inputs, { user: "ci-deploy", name: "deploy-ci", policy: JSON.stringify(credentials[0].user.inlinePolicy) });

        assert.deepEqual(
            ofType(first, "aws:iam/accessKey:AccessKey").map((r) => [r.name, r.inputs]),
            [["deploy-key-1", { user: "ci-deploy", status: "Active" }]],
        );

        assert.deepEqual(secretsOf(first).sort((a, b) => `${a.type}${a.name}`.localeCompare(`${b.type}${b.name}`)), [
            { type: "ActionsEnvironmentSecret", name: "PROD_KEY_ID", value: KEY1, secret: true, repository: "api", environment: "production", visibility: undefined },
            { type: "ActionsEnvironmentSecret", name: "PROD_SECRET", value: SECRET1, secret: true, repository: "api", environment: "production", visibility: undefined },
            { type: "ActionsOrganizationSecret", name: "AWS_ACCESS_KEY_ID", value: KEY1, secret: true, repository: undefined, environment: undefined, visibility: "selected" },
            { type: "ActionsOrganizationSecret", name: "AWS_SECRET_ACCESS_KEY", value: SECRET1, secret: true, repository: undefined, environment: undefined, visibility: "selected" },
            { type: "ActionsSecret", name: "AWS_ACCESS_KEY_ID", value: KEY1, secret: true, repository: "api", environment: undefined, visibility: undefined },
            { type: "ActionsSecret", name: "AWS_SECRET_ACCESS_KEY", value: SECRET1, secret: true, repository: "api", environment: undefined, visibility: undefined },
            { type: "DependabotSecret", name: "AWS_ACCESS_KEY_ID", value: KEY1, secret: true, repository: "api", environment: undefined, visibility: undefined },
            { type: "DependabotSecret", name: "AWS_SECRET_ACCESS_KEY", value: SECRET1, secret: true, repository: "api", environment: undefined, visibility: undefined },
        ]);
        assert.deepEqual(
            ofType(first, "github:index/actionsOrganizationSecretRepositories:ActionsOrganizationSecretRepositories").map((r) => r.inputs),
            [
                { secretName: "AWS_ACCESS_KEY_ID", selectedRepositoryIds: [101, 102] },
                { secretName: "AWS_SECRET_ACCESS_KEY", selectedRepositoryIds: [101, 102] },
            ],
        );
        assert.deepEqual(ofType(first, "github:index/actionsVariable:ActionsVariable").map((r) => r.inputs), [{ repository: "api", variableName: "AWS_REGION", value: "eu-west-1" }]);
        assert.deepEqual(
            ofType(first, "pulumi:providers:github").map((r) => [r.name, r.inputs.owner]),
            [["deploy-github-acme", "acme"]],
        );
        // Every GitHub resource goes through the owner's provider.
        for (const r of first.registrations.filter((x) => x.type.startsWith("github:index/"))) assert.match(r.provider ?? "", /deploy-github-acme/);
    });

    test("first run: the only calls are the key list and the selected repositories' ids", () => {
        assert.deepEqual(
            first.invocations.map((i) => [i.token, i.inputs.user ?? i.inputs.fullName]),
            [
                ["aws:iam/getAccessKeys:getAccessKeys", "ci-deploy"],
                ["github:index/getRepository:getRepository", "acme/web"],
                ["github:index/getRepository:getRepository", "acme/worker"],
            ],
        );
        assert.deepEqual(first.lastUseAsked, []);
    });

    test("first run: outputs carry the state and a summary, and never the secret", async () => {
        const { rotation, sets } = first.outputs!;
        assert.deepEqual(rotation, {
            version: 1,
            asOf: "2026-11-01T00:00:00.000Z",
            sets: {
                deploy: {
                    generation: 1,
                    phase: "steady",
                    keys: [{ generation: 1, accessKeyId: KEY1, status: "Active", createdAt: "2026-11-01T00:00:00.000Z", pushedAt: "2026-11-01T00:00:00.000Z" }],
                    changedAt: "2026-11-01T00:00:00.000Z",
                },
            },
        });
        assert.equal(sets.deploy.user, "ci-deploy");
        assert.equal(sets.deploy.userArn, "arn:aws:iam::123456789012:user/ci/ci-deploy");
        assert.equal(sets.deploy.accessKeyId, KEY1);
        assert.equal(sets.deploy.step, "mint");
        assert.deepEqual(sets.deploy.next, { step: "mint", dueAt: "2026-11-08T00:00:00.000Z", why: "the generation-1 key is due for rotation at 2026-11-08T00:00:00.000Z" });
        assert.deepEqual(sets.deploy.targets, ["github repository acme/api", "github environment acme/api:production", "github organization acme", "github dependabot acme/api"]);
        assert.equal(await pulumi.isSecret(first.raw!.rotation), false);
        assert.equal(await pulumi.isSecret(first.raw!.sets), false);
        const text = JSON.stringify(first.outputs);
        assert.ok(!text.includes(SECRET1), "an output contains the secret access key");
    });

    let second: RunResult;
    test("a run with nothing due changes nothing and asks IAM only for the key list", async () => {
        second = await runAfter(first, "2026-11-01T01:00:00Z");
        assert.equal(second.error, undefined, second.error?.stack);
        assert.deepEqual(ofType(second, "aws:iam/accessKey:AccessKey").map((r) => [r.name, r.inputs]), [["deploy-key-1", { user: "ci-deploy", status: "Active" }]]);
        assert.deepEqual(secretsOf(second).map((s) => s.value).sort(), secretsOf(first).map((s) => s.value).sort());
        assert.equal(second.outputs!.sets.deploy.step, "none");
        assert.deepEqual(second.outputs!.rotation.sets, first.outputs!.rotation.sets);
        assert.equal(second.invocations.filter((i) => i.token === "aws:iam/getAccessKeys:getAccessKeys").length, 1);
        assert.deepEqual(second.lastUseAsked, []);
    });

    let third: RunResult;
    test("after `every`: key 2 is created after key 1 is re-declared, and every target gets key 2", async () => {
        third = await runAfter(second, "2026-11-08T00:30:00Z");
        assert.equal(third.error, undefined, third.error?.stack);
        assert.deepEqual(
            ofType(third, "aws:iam/accessKey:AccessKey").map((r) => [r.name, r.inputs]),
            [
                ["deploy-key-1", { user: "ci-deploy", status: "Active" }],
                ["deploy-key-2", { user: "ci-deploy", status: "Active" }],
            ],
        );
        const values = new Set(secretsOf(third).map((s) => s.value));
        assert.deepEqual([...values].sort(), [KEY2, SECRET2].sort());
        assert.ok(secretsOf(third).every((s) => s.secret));
        const state = third.outputs!.rotation.sets.deploy;
        assert.equal(state.phase, "pushed");
        assert.deepEqual(state.keys.map((k: any) => [k.accessKeyId, k.status]), [[KEY1, "Active"], [KEY2, "Active"]]);
        assert.equal(third.outputs!.sets.deploy.accessKeyId, KEY2);
        assert.equal(third.outputs!.sets.deploy.next.dueAt, "2026-11-09T00:30:00.000Z");
    });

    test("before `overlap` is over, IAM's last-used is not even asked", async () => {
        const r = await runAfter(third, "2026-11-08T12:00:00Z");
        assert.equal(r.outputs!.sets.deploy.step, "none");
        assert.deepEqual(r.lastUseAsked, []);
    });

    test("the last-used gate holds key 1 while something uses it, and says so", async () => {
        const r = await runAfter(third, "2026-11-09T01:00:00Z", {}, { [KEY1]: { at: "2026-11-08T23:00:00Z" } });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(r.lastUseAsked, [KEY1]);
        assert.equal(r.outputs!.sets.deploy.step, "none");
        assert.match(r.outputs!.sets.deploy.warnings[0], new RegExp(`key ${KEY1} \\(generation 1\\) of set "deploy" was last used at 2026-11-08T23:00:00.000Z`));
        assert.deepEqual(ofType(r, "aws:iam/accessKey:AccessKey").map((x) => x.inputs.status), ["Active", "Active"]);
    });

    let fourth: RunResult;
    test("after `overlap`, with key 1 unused since the push, key 1 is deactivated and targets keep key 2", async () => {
        fourth = await runAfter(third, "2026-11-09T01:00:00Z", {}, { [KEY1]: { at: "2026-11-08T01:00:00Z" } });
        assert.equal(fourth.error, undefined, fourth.error?.stack);
        assert.deepEqual(
            ofType(fourth, "aws:iam/accessKey:AccessKey").map((r) => [r.name, r.inputs.status]),
            [
                ["deploy-key-1", "Inactive"],
                ["deploy-key-2", "Active"],
            ],
        );
        assert.deepEqual([...new Set(secretsOf(fourth).map((s) => s.value))].sort(), [KEY2, SECRET2].sort());
        assert.equal(fourth.outputs!.rotation.sets.deploy.phase, "retiring");
    });

    test("after `retireAfter`, key 1 is no longer declared (the engine deletes it) and the state says so", async () => {
        const fifth = await runAfter(fourth, "2026-11-12T02:00:00Z");
        assert.equal(fifth.error, undefined, fifth.error?.stack);
        assert.deepEqual(ofType(fifth, "aws:iam/accessKey:AccessKey").map((r) => r.name), ["deploy-key-2"]);
        const state = fifth.outputs!.rotation.sets.deploy;
        assert.equal(state.phase, "steady");
        assert.deepEqual(state.retired, [KEY1]);
        assert.equal(fifth.outputs!.sets.deploy.step, "delete");
    });

    test("revoke: key 1 is switched off before key 2 exists, in the same run", async () => {
        const r = await runAfter(second, "2026-11-02T00:00:00Z", { request: "leak-2026-11-02", revoke: "true" });
        assert.equal(r.error, undefined, r.error?.stack);
        const keys = ofType(r, "aws:iam/accessKey:AccessKey");
        assert.deepEqual(keys.map((k) => [k.name, k.inputs.status]), [["deploy-key-1", "Inactive"], ["deploy-key-2", "Active"]]);
        assert.ok(r.registrations.indexOf(keys[0]) < r.registrations.indexOf(keys[1]));
        assert.equal(r.outputs!.sets.deploy.step, "revoke");
        assert.equal(r.outputs!.rotation.sets.deploy.request.id, "leak-2026-11-02");
    });

    test("paused: nothing changes even when a rotation is due", async () => {
        const r = await runAfter(second, "2026-12-01T00:00:00Z", { paused: "true" });
        assert.deepEqual(ofType(r, "aws:iam/accessKey:AccessKey").map((k) => k.name), ["deploy-key-1"]);
        assert.equal(r.outputs!.sets.deploy.paused, true);
        assert.equal(r.outputs!.sets.deploy.next.step, "none");
    });
});

describe("the program refuses to act blind", () => {
    test("a key IAM shows but the state does not know blocks the set: nothing registered, state kept, run ends non-zero", async () => {
        const first = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds } });
        const r = await runSettled({
            config: { credentials },
            now: "2026-11-08T01:00:00Z",
            world: {
                repoIds,
                stackOutputs: { rotation: first.outputs!.rotation },
                accessKeys: { "ci-deploy": [{ accessKeyId: KEY1, status: "Active" }, { accessKeyId: "AKIAHANDMADE00000001", status: "Active", createDate: "2026-10-01T00:00:00Z" }] },
            },
        });
        assert.equal(r.exitCode, 32);
        assert.match(r.loggedErrors.join("\n"), /No step was taken for set "deploy" [\s\S]*IAM shows key AKIAHANDMADE00000001 .* that ci-key-rotation does not manage/);
        assert.deepEqual(r.registrations, []);
        assert.ok(r.rotation?.ok);
        assert.deepEqual(r.rotation.value.sets, first.outputs!.rotation.sets);
    });

    test("a state written by a newer release is not guessed at", async () => {
        const r = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds, stackOutputs: { rotation: { version: 2, asOf: "x", sets: {} } } } });
        assert.equal(r.error?.name, "StateError");
        assert.match(r.error!.message, /has version 2, and this program reads version 1/);
        assert.deepEqual(r.registrations, []);
    });

    test("a malformed clock override is an error, not a silent real-time run", async () => {
        const r = await runProgram({ config: { credentials }, now: "next tuesday", world: { repoIds } });
        assert.match(r.error!.message, /`CI_KEY_ROTATION_NOW` must be an ISO-8601 instant with a zone/);
        assert.deepEqual(r.registrations, []);
    });
});

describe("secrets", () => {
    test("the key handed to targets is a Pulumi secret, and so is every target's value", async () => {
        const r = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds } });
        assert.equal(r.error, undefined);
        for (const s of secretsOf(r)) assert.equal(s.secret, true, `${s.type} ${s.name} value is not secret`);
        // The variables hold plain configuration, never key material.
        for (const v of ofType(r, "github:index/actionsVariable:ActionsVariable")) assert.ok(![KEY1, SECRET1].includes(v.inputs.value));
    });

    test("the component wraps the key's secret even when the engine would not", async () => {
        const { settle } = await import("./support/mocks");
        const { CredentialSet } = await import("../rotation/pulumi/credential-set");
        const { validateConfig } = await import("../rotation/core/config");
        const { plan } = await import("../rotation/core/plan");
        const { DateTime } = await import("luxon");
        // A mock that returns the secret as a plain value, as an engine that forgot would.
        pulumi.runtime.setMocks(
            {
                newResource: (a) => ({ id: a.type === "aws:iam/accessKey:AccessKey" ? "AKIAPLAIN00000000001" : `${a.name}-id`, state: { ...a.inputs, secret: "plain-secret-value-xxxxxxxxxxxxxxxxxxxx" } }),
                call: (a) => {
                    throw new Error(`Mock call not implemented: ${a.token}`);
                },
            },
            "ci-key-rotation",
            "dev",
            false,
            "organization",
        );
        const config = validateConfig({ credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }] }] });
        assert.ok(config.ok);
        const now = DateTime.fromISO("2026-11-01T00:00:00Z");
        const result = plan({ set: "deploy", user: "ci-deploy", state: undefined, observed: [], policy: config.config.sets[0].policy, now });
        assert.equal(result.kind, "decision");
        const set = new CredentialSet("deploy", { config: config.config.sets[0], decision: (result as { decision: any }).decision, now });
        assert.equal(await pulumi.isSecret(set.current!.secretAccessKey), true);
        assert.equal(await pulumi.isSecret(set.current!.accessKeyId), false);
        assert.equal(await pulumi.isSecret(set.state), false);
        assert.ok(!JSON.stringify(await new Promise((r) => set.summary.apply(r))).includes("plain-secret-value"));
        await settle();
    });

    test("a preview plans the same step without failing on unknown key values", async () => {
        const r = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds }, preview: true });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(ofType(r, "aws:iam/accessKey:AccessKey").map((k) => k.name), ["deploy-key-1"]);
    });
});
