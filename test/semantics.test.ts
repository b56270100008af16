/**
 * The program under the real engine's semantics (issue 9): the state a run reports depends on
 * everything the set did, steps are ordered by dependencies rather than registration order, and
 * one blocked set does not stop the others.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { keyIdFor } from "./support/mocks";
import { captureUnhandledRejections, runSettled, type SettledRun } from "./support/run-settled";

const target = { type: "github-repository", repository: "acme/api", variables: { AWS_REGION: "eu-west-1" } };
const credentials = [{ name: "deploy", targets: [target] }];
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const secretResource = "github-repository-acme-api-aws_secret_access_key";
const variableResource = "github-repository-acme-api-var-aws_region";

/** What IAM lists after a run that reported `rotation`. */
function iamAfter(rotation: any): Record<string, { accessKeyId: string; status: string; createDate: string }[]> {
    const out: Record<string, { accessKeyId: string; status: string; createDate: string }[]> = {};
    for (const [name, set] of Object.entries(rotation.sets as Record<string, any>)) {
        out[`ci-${name}`] = set.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }));
    }
    return out;
}

const index = (r: SettledRun, step: string) => {
    const i = r.steps.indexOf(step);
    assert.ok(i >= 0, `no step "${step}" in ${JSON.stringify(r.steps)}`);
    return i;
};

let steady: any;
before(async () => {
    // The test runner installs its handler when the first test starts: take over after that.
    captureUnhandledRejections();
    const first = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z" });
    assert.ok(first.rotation?.ok, String(first.error ?? (first.rotation as any)?.error));
    steady = first.rotation.value;
});

/**
 * The run registered `rotation` (a failed step no longer rejects the whole output: under
 * `--continue-on-error` the failed set falls back), and the set's entry is its previous state.
 */
function assertKept(r: SettledRun, previous: any, message: string): void {
    assert.equal(r.rotation?.ok, true, `no \`rotation\` registered: ${String((r.rotation as any)?.error)}`);
    const { unconfirmed: _, statusFailed: __, ...deploy } = (r.rotation as any).value.sets.deploy;
    assert.deepEqual(deploy, previous.sets.deploy, message);
    assert.equal(r.sets?.ok, true);
}

describe("the state does not advance on a failed run (stack outputs are saved by failed updates)", () => {
    const mintRun = (fail?: (r: { type: string; name: string }) => string | undefined) =>
        runSettled({ config: { credentials }, now: "2026-11-08T01:00:00Z", world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), fail } });

    test("a mint with every step succeeding reports `pushed`", async () => {
        const r = await mintRun();
        assert.equal(r.rotation?.ok, true, String((r.rotation as any)?.error));
        assert.equal((r.rotation as any).value.sets.deploy.phase, "pushed");
    });

    test("a mint whose key check fails keeps the set's previous state", async () => {
        const r = await mintRun((x) => (x.name === "deploy-key-check" ? "KeyCheckError: Key did not authenticate with STS GetCallerIdentity" : undefined));
        assert.ok(r.steps.includes("fail deploy-key-check"));
        assertKept(r, steady, "a run whose key check failed advanced the set's state");
        assert.match((r.sets as any).value.deploy.reason, /^failed: /);
    });

    test("a mint whose target write fails keeps the set's previous state", async () => {
        const r = await mintRun((x) => (x.name === secretResource ? "PUT https://api.github.com/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY: 403 Resource not accessible by integration" : undefined));
        assert.ok(r.steps.includes(`fail ${secretResource}`));
        assertKept(r, steady, "a run whose target write failed reported `pushed`");
    });

    test("a mint whose plain variable write fails keeps the set's previous state", async () => {
        const r = await mintRun((x) => (x.name === variableResource ? "PATCH https://api.github.com/repos/acme/api/actions/variables/AWS_REGION: 502 Bad Gateway" : undefined));
        assertKept(r, steady, "a run whose variable write failed advanced the set's state");
    });

    test("a mint whose target check fails keeps the set's previous state", async () => {
        const r = await mintRun((x) => (x.name === "deploy-target-check" ? "TargetCheckError: a target did not take the key" : undefined));
        assertKept(r, steady, "a run whose target check failed advanced the set's state");
    });

    test("a deactivation whose UpdateAccessKey fails is not reported as Inactive", async () => {
        const pushed = await mintRun();
        assert.ok(pushed.rotation?.ok);
        const state = (pushed.rotation as any).value;
        const r = await runSettled({
            config: { credentials },
            now: "2026-11-09T02:00:00Z",
            world: {
                stackOutputs: { rotation: state },
                accessKeys: iamAfter(state),
                fail: (x) => (x.name === "deploy-key-1" ? "updating IAM Access Key (AKIA...): operation error IAM: UpdateAccessKey, https response error StatusCode: 503" : undefined),
            },
            lastUse: { [KEY1]: { at: "2026-11-08T00:00:00Z" } },
        });
        assert.ok(r.steps.includes("fail deploy-key-1"), JSON.stringify(r.steps));
        assertKept(r, state, "a failed deactivation was reported as `retiring`");
        assert.deepEqual((r.rotation as any).value.sets.deploy.statusFailed, [KEY1], "the key whose status change failed is listed for the next run");
    });
});

describe("steps are ordered by dependencies, not by registration order", () => {
    const slow = (names: string[]) => (r: { name: string }) => (names.includes(r.name) ? 40 : undefined);

    test("revoke: the old key is deactivated before the new key is created", async () => {
        const r = await runSettled({
            config: { credentials, request: "leak-1", revoke: "true" },
            now: "2026-11-02T00:00:00Z",
            world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), delay: slow(["deploy-key-1"]) },
        });
        assert.equal(r.rotation?.ok, true, String(r.error ?? (r.rotation as any)?.error));
        assert.ok(index(r, "end deploy-key-1") < index(r, "start deploy-key-2"), JSON.stringify(r.steps));
    });

    test("the key check finishes before any target is written", async () => {
        const r = await runSettled({
            config: { credentials },
            now: "2026-11-08T01:00:00Z",
            world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), delay: slow(["deploy-key-check"]) },
        });
        const checked = index(r, "end deploy-key-check");
        for (const s of r.steps.filter((x) => x.startsWith("start github-repository-acme-api-aws_"))) assert.ok(index(r, s) > checked, JSON.stringify(r.steps));
    });

    test("the target check runs after every target resource, those without evidence included", async () => {
        const r = await runSettled({
            config: { credentials },
            now: "2026-11-08T01:00:00Z",
            world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), delay: slow([variableResource]) },
        });
        assert.ok(index(r, `end ${variableResource}`) < index(r, "start deploy-target-check"), JSON.stringify(r.steps));
        assert.equal((r.rotation as any).value.sets.deploy.keys.at(-1).accessKeyId, KEY2);
    });
});

describe("blast radius: one blocked set does not stop the others", () => {
    const two = [
        { name: "deploy", targets: [target] },
        { name: "build", targets: [{ type: "github-repository", repository: "acme/builder" }] },
    ];

    test("the other set mints; the blocked set registers nothing, keeps its state, and the run ends non-zero naming it", async () => {
        const first = await runSettled({ config: { credentials: two }, now: "2026-11-01T00:00:00Z" });
        assert.ok(first.rotation?.ok, String(first.error ?? (first.rotation as any)?.error));
        const before = first.rotation.value;
        const iam = iamAfter(before);
        // Someone made a key for the build user by hand.
        iam["ci-build"].push({ accessKeyId: "AKIAHANDMADE00000009", status: "Active", createDate: "2026-10-01T00:00:00Z" });
        const r = await runSettled({ config: { credentials: two }, now: "2026-11-08T01:00:00Z", world: { stackOutputs: { rotation: before }, accessKeys: iam } });

        assert.equal(r.error, undefined, r.error?.stack);
        assert.equal(r.exitCode, 32, "a run with a blocked set must end non-zero");
        assert.match(r.loggedErrors.join("\n"), /No step was taken for set "build"[\s\S]*AKIAHANDMADE00000009/);
        assert.doesNotMatch(r.loggedErrors.join("\n"), /set "deploy"/);
        // Nothing of the blocked set is registered, so nothing of it is updated or deleted.
        assert.deepEqual(r.registrations.filter((x) => x.name.startsWith("build-") || x.name.includes("acme-builder")), []);
        assert.ok(r.registrations.some((x) => x.name === "deploy-key-2"));
        assert.ok(r.rotation?.ok, String((r.rotation as any)?.error));
        const after = r.rotation.value;
        assert.equal(after.sets.deploy.phase, "pushed");
        assert.deepEqual(after.sets.build, before.sets.build);
        assert.ok(r.sets?.ok);
        assert.match(r.sets.value.build.reason, /^blocked: /);
        assert.equal(r.sets.value.deploy.step, "mint");
    });

    test("a set whose AWS reads fail is blocked alone", async () => {
        const first = await runSettled({ config: { credentials: two }, now: "2026-11-01T00:00:00Z" });
        assert.ok(first.rotation?.ok);
        const minted = await runSettled({ config: { credentials: two }, now: "2026-11-08T01:00:00Z", world: { stackOutputs: { rotation: first.rotation.value }, accessKeys: iamAfter(first.rotation.value) } });
        assert.ok(minted.rotation?.ok);
        const before = minted.rotation.value;
        // Both sets are due to deactivate key 1; IAM answers the last use of deploy's key only.
        const r = await runSettled({
            config: { credentials: two },
            now: "2026-11-09T02:00:00Z",
            world: { stackOutputs: { rotation: before }, accessKeys: iamAfter(before) },
            lastUse: { [KEY1]: { at: "2026-11-08T00:00:00Z" } },
        });
        assert.equal(r.exitCode, 32);
        assert.match(r.loggedErrors.join("\n"), /set "build"[\s\S]*could not read the last use/);
        assert.ok(r.rotation?.ok);
        assert.equal(r.rotation.value.sets.deploy.phase, "retiring");
        assert.deepEqual(r.rotation.value.sets.build, before.sets.build);
        assert.deepEqual(r.registrations.filter((x) => x.name.startsWith("build-") || x.name.includes("acme-builder")), []);
    });
});

describe("the engine this program needs", () => {
    test("an engine without the features of CLI 3.133 is refused before anything is read or registered", async () => {
        const { installMocks } = await import("./support/mocks");
        const { registrations } = installMocks({});
        const program = (await import("../index")).default;
        await assert.rejects(program({ env: { CI_KEY_ROTATION_NOW: "2026-11-01T00:00:00Z" }, engineSupportsParameterization: false }), /needs Pulumi CLI 3\.133 or later[\s\S]*Upgrade the `pulumi` CLI/);
        assert.deepEqual(registrations, []);
    });
});

describe("the legacy DIY backend layout", () => {
    // What the legacy layout answers for a project-scoped name (pulumi/pulumi
    // sdk/go/common/tokens/stack_name.go `ParseStackName`, via pkg/backend/diy/store.go).
    const legacyBackend = (r: { type: string; inputs: Record<string, any> }) =>
        r.type === "pulumi:pulumi:StackReference" && String(r.inputs.name).includes("/")
            ? `a stack name may only contain alphanumeric, hyphens, underscores, or periods: invalid character '/' at position ${String(r.inputs.name).indexOf("/")}`
            : undefined;

    test("a project-scoped self-reference rejected by the legacy layout says what to do, and nothing is registered", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { fail: legacyBackend } });
        assert.equal(r.error?.name, "StateError", r.error?.stack);
        assert.match(r.error!.message, /legacy DIY layout[\s\S]*`pulumi state upgrade`[\s\S]*PULUMI_DIY_BACKEND_LEGACY_LAYOUT=true/);
        assert.deepEqual(r.registrations, []);
    });

    test("with PULUMI_DIY_BACKEND_LEGACY_LAYOUT set, the program reads its state by the bare stack name", async () => {
        const r = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { fail: legacyBackend }, env: { PULUMI_DIY_BACKEND_LEGACY_LAYOUT: "true" } });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.ok(r.rotation?.ok);
        assert.equal(r.rotation.value.sets.deploy.phase, "steady");
    });
});
