import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fakeSecretFor, keyIdFor, reveal } from "./support/mocks";
import { ofType, runProgram, type RunResult } from "./support/run";
import { runSettled } from "./support/run-settled";

const credentials = [
    {
        name: "deploy",
        targets: [
            { type: "github-repository", repository: "acme/api", variables: { AWS_REGION: "eu-west-1" } },
            { type: "github-environment", repository: "acme/api", environment: "production" },
        ],
    },
];
const config = { credentials, "aws:region": "eu-west-1" };
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const SECRET1 = fakeSecretFor("deploy-key-1");
const SECRET2 = fakeSecretFor("deploy-key-2");
const HANDMADE = "AKIAHANDMADE00000001";
const userArn = "arn:aws:iam::123456789012:user/ci/ci-deploy";
const dynamic = "pulumi-nodejs:dynamic:Resource";

const checksOf = (r: RunResult, kind: string) => ofType(r, dynamic).filter((x) => reveal(x.inputs).plain.kind === kind);
const keysOf = (r: RunResult) => ofType(r, "aws:iam/accessKey:AccessKey").map((k) => ({ name: k.name, ...k.inputs, ...(k.importId ? { import: k.importId } : {}) }));
const targetValues = (r: RunResult) =>
    [
        ...new Set(
            r.registrations.filter((x) => /^github:index\/\w*Secret:/.test(x.type)).map((x) => reveal(x.inputs).plain.value as string),
        ),
    ].sort();

/** GitHub reports when the provider wrote each secret; AWS when it created each key. */
const providerTimes = (writtenAt: string, keyCreatedAt: string) => (r: { type: string }) =>
    /^github:index\/\w*Secret:/.test(r.type) ? { updatedAt: writtenAt } : r.type === "aws:iam/accessKey:AccessKey" ? { createDate: keyCreatedAt } : undefined;

describe("step 2: the new key is checked before any target is written", () => {
    let first: RunResult;

    test("every run declares the key check for the current key: exact inputs, the secret only as a secret input", async () => {
        first = await runProgram({ config, now: "2026-11-01T00:00:00Z", world: { extraState: providerTimes("2026-11-01T00:00:20Z", "2026-11-01T00:00:02Z") } });
        assert.equal(first.error, undefined, first.error?.stack);
        const [check] = checksOf(first, "key-check");
        assert.equal(check.name, "deploy-key-check");
        const { plain, secretPaths } = reveal(check.inputs);
        const { __provider, ...rest } = plain;
        assert.deepEqual(rest, { kind: "key-check", set: "deploy", accessKeyId: KEY1, secretAccessKey: SECRET1, userArn, region: "eu-west-1", timeoutMs: 30_000 });
        assert.deepEqual(secretPaths, ["secretAccessKey"]);
        assert.equal(typeof __provider, "string");
        assert.ok(!__provider.includes(SECRET1), "the serialized provider captured the secret");
        assert.match(__provider, /require\("@aws-sdk\/client-sts"\)/);
    });

    test("targets take the key the check passed, still as secrets", () => {
        assert.deepEqual(targetValues(first), [KEY1, SECRET1].sort());
        const check = first.registrations.findIndex((r) => r.name === "deploy-key-check");
        // Under mocks a registration waits for its inputs: a secret reads the check's output, so
        // it can only register once the check has (in a real run: once the check has passed).
        const firstSecret = first.registrations.findIndex((r) => /^github:index\/\w*Secret:/.test(r.type));
        assert.ok(check >= 0 && check < firstSecret, "a target secret was registered before the key check");
    });

    test("the target check gets every secret write GitHub can vouch for, and no secret", () => {
        const [check] = checksOf(first, "target-check");
        assert.equal(check.name, "deploy-target-check");
        const { __provider, ...plain } = reveal(check.inputs).plain;
        const repo = { target: "github repository acme/api", path: "credentials[0].targets[0]", writtenAt: "2026-11-01T00:00:20Z" };
        const env = { target: "github environment acme/api:production", path: "credentials[0].targets[1]", writtenAt: "2026-11-01T00:00:20Z" };
        assert.deepEqual(plain, {
            kind: "target-check",
            set: "deploy",
            accessKeyId: KEY1,
            keyCreatedAt: "2026-11-01T00:00:02Z",
            writes: [
                { ...repo, what: "secret AWS_ACCESS_KEY_ID" },
                { ...repo, what: "secret AWS_SECRET_ACCESS_KEY" },
                { ...env, what: "secret AWS_ACCESS_KEY_ID" },
                { ...env, what: "secret AWS_SECRET_ACCESS_KEY" },
            ],
        });
        assert.ok(!JSON.stringify(check.inputs).includes(SECRET1));
    });

    test("the check follows the current key: after a mint it checks key 2 with the set's validateTimeout", async () => {
        const r = await runProgram({
            config: { ...config, credentials: [{ ...credentials[0], rotation: { validateTimeout: "PT2M" } }] },
            now: "2026-11-08T00:30:00Z",
            world: { stackOutputs: { rotation: first.outputs!.rotation }, accessKeys: { "ci-deploy": [{ accessKeyId: KEY1, status: "Active", createDate: "2026-11-01T00:00:02Z" }] } },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        const { plain } = reveal(checksOf(r, "key-check")[0].inputs);
        assert.deepEqual([plain.accessKeyId, plain.secretAccessKey, plain.timeoutMs], [KEY2, SECRET2, 120_000]);
        assert.deepEqual(targetValues(r), [KEY2, SECRET2].sort());
    });

    test("a validateTimeout beyond PT10M is refused before anything is registered", async () => {
        const r = await runProgram({ config: { ...config, validateTimeout: "PT1H" }, now: "2026-11-01T00:00:00Z" });
        assert.match(r.error?.message ?? "", /validateTimeout must be at most PT10M/);
        assert.deepEqual(r.registrations, []);
    });

    test("a preview declares the same checks without failing on unknown values", async () => {
        const r = await runProgram({ config, now: "2026-11-01T00:00:00Z", preview: true });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.equal(checksOf(r, "key-check").length, 1);
        assert.equal(checksOf(r, "target-check").length, 1);
    });
});

describe("drift before minting: an unmanaged key blocks, or is adopted", () => {
    let first: RunResult;
    const withHandmade = (rotation: unknown) => ({
        stackOutputs: { rotation },
        accessKeys: {
            "ci-deploy": [
                { accessKeyId: KEY1, status: "Active", createDate: "2026-11-01T00:00:02Z" },
                { accessKeyId: HANDMADE, status: "Active", createDate: "2026-10-01T00:00:00Z" },
            ],
        },
    });

    test("blocked: the message names the key and both ways out, with the config path", async () => {
        first = await runProgram({ config, now: "2026-11-01T00:00:00Z" });
        const r = await runSettled({ config, now: "2026-11-08T01:00:00Z", world: withHandmade(first.outputs!.rotation) });
        const message = r.loggedErrors.join("\n");
        assert.equal(r.exitCode, 32);
        assert.match(message, new RegExp(`IAM shows key ${HANDMADE} \\(Active, created 2026-10-01T00:00:00Z\\) that ci-key-rotation does not manage`));
        assert.match(message, new RegExp(`delete it if nothing uses it \\(aws iam delete-access-key --user-name ci-deploy --access-key-id ${HANDMADE}\\)`));
        assert.match(message, new RegExp(`adopt it .* \\(pulumi config set --path 'ci-key-rotation:credentials\\[0\\]\\.adoptKeys\\[0\\]' ${HANDMADE}\\)`));
        assert.deepEqual(r.registrations, []);
    });

    let adopted: RunResult;
    test("adopted: imported as the old key beside the current one; targets keep the current key", async () => {
        const adopting = { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE] }] };
        adopted = await runProgram({ config: adopting, now: "2026-11-08T01:00:00Z", world: withHandmade(first.outputs!.rotation) });
        assert.equal(adopted.error, undefined, adopted.error?.stack);
        assert.deepEqual(keysOf(adopted), [
            { name: "deploy-key-2", user: "ci-deploy", status: "Active", import: HANDMADE },
            { name: "deploy-key-1", user: "ci-deploy", status: "Active" },
        ]);
        assert.deepEqual(targetValues(adopted), [KEY1, SECRET1].sort());
        assert.equal(reveal(checksOf(adopted, "key-check")[0].inputs).plain.accessKeyId, KEY1);
        const state = adopted.outputs!.rotation.sets.deploy;
        assert.equal(state.phase, "pushed");
        assert.equal(state.generation, 2);
        assert.deepEqual(state.keys[0], { generation: 2, accessKeyId: HANDMADE, status: "Active", createdAt: "2026-10-01T00:00:00.000Z", adoptedAt: "2026-11-08T01:00:00.000Z" });
        assert.equal(adopted.outputs!.sets.deploy.step, "none");
        assert.match(adopted.outputs!.sets.deploy.reason, new RegExp(`adopted key ${HANDMADE}`));
        // Overlap counts from the adoption: whatever uses the key learns of the rotation only now.
        assert.equal(adopted.outputs!.sets.deploy.next.dueAt, "2026-11-09T01:00:00.000Z");
    });

    const after = (previous: RunResult, now: string, lastUse: Record<string, { at?: string; service?: string; region?: string }>) =>
        runProgram({
            config: { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE] }] },
            now,
            lastUse,
            world: {
                stackOutputs: { rotation: previous.outputs!.rotation },
                accessKeys: { "ci-deploy": previous.outputs!.rotation.sets.deploy.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) },
            },
        });

    test("the adopted key is gated like any old key: use after adoption + settle holds it, naming the use", async () => {
        const r = await after(adopted, "2026-11-09T02:00:00Z", { [HANDMADE]: { at: "2026-11-09T01:30:00Z", service: "s3", region: "eu-west-1" } });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(r.lastUseAsked, [HANDMADE]);
        assert.equal(r.outputs!.sets.deploy.step, "none");
        assert.match(r.outputs!.sets.deploy.warnings.join("\n"), new RegExp(`key ${HANDMADE} \\(generation 2\\) of set "deploy" was last used at 2026-11-09T01:30:00.000Z \\(s3 in eu-west-1\\), after it was adopted at 2026-11-08T01:00:00.000Z`));
        // No import once the key is in the state.
        assert.deepEqual(keysOf(r)[0], { name: "deploy-key-2", user: "ci-deploy", status: "Active" });
    });

    test("unused, it is deactivated (no import any more) and later deleted by the engine", async () => {
        const r = await after(adopted, "2026-11-09T02:00:00Z", { [HANDMADE]: { at: "2026-11-05T00:00:00Z", service: "s3", region: "eu-west-1" } });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(keysOf(r), [
            { name: "deploy-key-2", user: "ci-deploy", status: "Inactive" },
            { name: "deploy-key-1", user: "ci-deploy", status: "Active" },
        ]);
        assert.deepEqual(targetValues(r), [KEY1, SECRET1].sort());
        const gone = await after(r, "2026-11-12T03:00:00Z", {});
        assert.equal(gone.error, undefined, gone.error?.stack);
        assert.deepEqual(keysOf(gone).map((k) => k.name), ["deploy-key-1"]);
        assert.deepEqual(gone.outputs!.rotation.sets.deploy.retired, [HANDMADE]);
    });

    test("a set without state adopts the user's key and mints its first pushable key in the same run", async () => {
        const r = await runProgram({
            config: { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE] }] },
            now: "2026-11-01T00:00:00Z",
            world: { accessKeys: { "ci-deploy": [{ accessKeyId: HANDMADE, status: "Active", createDate: "2026-10-01T00:00:00Z" }] } },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(keysOf(r), [
            { name: "deploy-key-1", user: "ci-deploy", status: "Active", import: HANDMADE },
            { name: "deploy-key-2", user: "ci-deploy", status: "Active" },
        ]);
        // The adopted key's secret is unknown: only the minted key reaches targets and the check.
        assert.deepEqual(targetValues(r), [KEY2, SECRET2].sort());
        assert.equal(reveal(checksOf(r, "key-check")[0].inputs).plain.accessKeyId, KEY2);
        assert.equal(r.outputs!.rotation.sets.deploy.phase, "pushed");
        assert.equal(r.outputs!.sets.deploy.step, "mint");
    });

    test("an Inactive key is adopted straight into retiring", async () => {
        const r = await runProgram({
            config: { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE] }] },
            now: "2026-11-08T01:00:00Z",
            world: { ...withHandmade(first.outputs!.rotation), accessKeys: { "ci-deploy": [{ accessKeyId: KEY1, status: "Active" }, { accessKeyId: HANDMADE, status: "Inactive" }] } },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(keysOf(r)[0], { name: "deploy-key-2", user: "ci-deploy", status: "Inactive", import: HANDMADE });
        assert.equal(r.outputs!.rotation.sets.deploy.phase, "retiring");
        assert.equal(r.outputs!.sets.deploy.next.dueAt, "2026-11-11T01:00:00.000Z");
    });

    test("two keys to adopt on a set without state are refused: the mint needs a free slot", async () => {
        const r = await runSettled({
            config: { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE, "AKIAHANDMADE00000002"] }] },
            now: "2026-11-01T00:00:00Z",
            world: { accessKeys: { "ci-deploy": [{ accessKeyId: HANDMADE, status: "Active" }, { accessKeyId: "AKIAHANDMADE00000002", status: "Active" }] } },
        });
        assert.equal(r.exitCode, 32);
        assert.match(r.loggedErrors.join("\n"), /`credentials\[0\]\.adoptKeys` lists two keys of IAM user ci-deploy/);
        assert.deepEqual(r.registrations, []);
        // A set blocked on its first run has no state to keep.
        assert.deepEqual(r.rotation?.ok && r.rotation.value.sets, {});
    });

    test("a key both adopted and forgotten is a config error", async () => {
        const r = await runProgram({ config: { ...config, credentials: [{ ...credentials[0], adoptKeys: [HANDMADE] }], forgetKeys: [HANDMADE] }, now: "2026-11-01T00:00:00Z" });
        assert.match(r.error?.message ?? "", /forgetKeys\[0\] AKIAHANDMADE00000001 is also listed in credentials\[0\]\.adoptKeys/);
    });
});
