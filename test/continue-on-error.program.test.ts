/**
 * One set's failed write under `pulumi up --continue-on-error`: the engine answers the failed
 * registration with `Result.FAIL` and the SDK rejects that resource's outputs (the mocks reject
 * them the same way). The failed set keeps its previous state, the other sets take their step,
 * and a mint refused by the bridged GitHub provider is retired by the next run, which writes the
 * key GitHub still holds (a real difference), instead of finishing it (no difference: nothing
 * written, a stuck rotation).
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { keyIdFor, reveal } from "./support/mocks";
import { captureUnhandledRejections, runSettled } from "./support/run-settled";

const two = [
    { name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }] },
    { name: "build", targets: [{ type: "github-repository", repository: "acme/builder" }] },
];
const KEY1 = keyIdFor("deploy-key-1");
const KEY2 = keyIdFor("deploy-key-2");
const deploySecret = "github-repository-acme-api-aws_secret_access_key";
const deployId = "github-repository-acme-api-aws_access_key_id";

function iamAfter(rotation: any): Record<string, { accessKeyId: string; status: string; createDate: string }[]> {
    const out: Record<string, { accessKeyId: string; status: string; createDate: string }[]> = {};
    for (const [name, set] of Object.entries(rotation.sets as Record<string, any>)) {
        out[`ci-${name}`] = set.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }));
    }
    return out;
}

let steady: any;

/** The mint run a week after `steady`, with the step of resource `name` failing with `message`. */
function mintFailingAt(name: string, message: string) {
    return runSettled({ config: { credentials: two }, now: "2026-11-08T01:00:00Z", world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), fail: (x) => (x.name === name ? message : undefined) } });
}
before(async () => {
    captureUnhandledRejections();
    const first = await runSettled({ config: { credentials: two }, now: "2026-11-01T00:00:00Z" });
    assert.ok(first.rotation?.ok, String(first.error ?? (first.rotation as any)?.error));
    steady = first.rotation.value;
});

describe("one set's failed write does not hold back the others", () => {
    const refused = "PUT http://127.0.0.1/api/v3/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY: 500 Internal Server Error";
    const failedMint = () =>
        runSettled({
            config: { credentials: two },
            now: "2026-11-08T01:00:00Z",
            world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady), fail: (x) => (x.name === deploySecret ? refused : undefined) },
        });

    test("the failed set keeps its previous state; the other set's mint is saved", async () => {
        const r = await failedMint();
        assert.ok(r.steps.includes(`fail ${deploySecret}`), JSON.stringify(r.steps));
        assert.equal(r.rotation?.ok, true, `no \`rotation\` registered: ${String((r.rotation as any)?.error)}`);
        const after = r.rotation.value;
        assert.equal(after.sets.build.phase, "pushed", "set build did not take its step");
        const { unconfirmed, ...deploy } = after.sets.deploy;
        assert.deepEqual(deploy, steady.sets.deploy, "set deploy's state advanced although its write failed");
        assert.ok(r.sets?.ok, String((r.sets as any)?.error));
        assert.match(r.sets.value.deploy.reason, /^failed: /);
        assert.equal(r.sets.value.build.step, "mint");
    });

    test("`asOf` stays the last run in which no set failed, so `status` can warn about failing runs", async () => {
        const r = await failedMint();
        assert.ok(r.rotation?.ok);
        assert.equal(r.rotation.value.asOf, steady.asOf);
        const ok = await runSettled({ config: { credentials: two }, now: "2026-11-08T01:00:00Z", world: { stackOutputs: { rotation: steady }, accessKeys: iamAfter(steady) } });
        assert.ok(ok.rotation?.ok);
        assert.notEqual(ok.rotation.value.asOf, steady.asOf);
    });

    test("the key whose GitHub write failed is listed as unconfirmed in the set's saved entry", async () => {
        const r = await failedMint();
        assert.ok(r.rotation?.ok);
        assert.deepEqual(r.rotation.value.sets.deploy.unconfirmed, [KEY2]);
        assert.equal(r.rotation.value.sets.build.unconfirmed, undefined);
    });

    test("a target check that fails after every write succeeded lists the pushed key as unconfirmed", async () => {
        const r = await mintFailingAt("deploy-target-check", 'Set "deploy": a target did not take key');
        assert.ok(r.rotation?.ok);
        assert.deepEqual(r.rotation.value.sets.deploy.unconfirmed, [KEY2]);
        assert.equal(r.rotation.value.recorded, undefined, "an unconfirmed key is not finished");
    });

    test("a failed key check lists nothing as unconfirmed (no target was written)", async () => {
        const r = await mintFailingAt("deploy-key-check", "KeyCheckError: Key did not authenticate");
        assert.ok(r.rotation?.ok);
        assert.deepEqual(r.rotation.value.sets.deploy, steady.sets.deploy);
    });

    test("the next run retires the unconfirmed key and writes key 1 to GitHub again (a real difference)", async () => {
        const failed = await failedMint();
        assert.ok(failed.rotation?.ok);
        const saved = failed.rotation.value;
        const iam = iamAfter(saved);
        iam["ci-deploy"].push({ accessKeyId: KEY2, status: "Active", createDate: "2026-11-08T01:00:01Z" });
        const r = await runSettled({
            config: { credentials: two },
            now: "2026-11-08T02:00:00Z",
            world: { stackOutputs: { rotation: saved }, accessKeys: iam },
            lastUse: { [KEY2]: { at: "2026-11-08T01:00:05Z" } },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.ok(r.rotation?.ok, String((r.rotation as any)?.error));
        const key2 = r.registrations.find((x) => x.name === "deploy-key-2");
        assert.equal(key2?.importId, KEY2, "the unconfirmed key is declared again only by import");
        const id = r.registrations.find((x) => x.name === deployId);
        assert.equal(reveal(id!.inputs).plain.value, KEY1, "GitHub's AWS_ACCESS_KEY_ID is not declared with key 1");
        const deploy = r.rotation.value.sets.deploy;
        assert.equal(deploy.unconfirmed, undefined);
        assert.deepEqual(
            deploy.keys.map((k: any) => [k.accessKeyId, k.status, Boolean(k.adoptedAt)]),
            [
                [KEY2, "Active", true],
                [KEY1, "Active", false],
            ],
        );
    });
});

describe("a mint whose key check failed is finished by the next run", () => {
    test("the failed run records the key it created, and the next run pushes that key without asking IAM", async () => {
        const failed = await mintFailingAt("deploy-key-check", "KeyCheckError: Key did not authenticate");
        assert.ok(failed.rotation?.ok);
        const saved = failed.rotation.value;
        assert.deepEqual(saved.sets.deploy, steady.sets.deploy, "the failed set keeps its previous state");
        assert.deepEqual(saved.recorded, { deploy: [KEY2] }, "the key the engine created is recorded for the next run");
        const iam = iamAfter(saved);
        iam["ci-deploy"].push({ accessKeyId: KEY2, status: "Active", createDate: "2026-11-08T01:00:01Z" });
        // No last use given: a key IAM shows never used would be retired if it were not recorded.
        const r = await runSettled({ config: { credentials: two }, now: "2026-11-08T02:00:00Z", world: { stackOutputs: { rotation: saved }, accessKeys: iam } });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.ok(r.rotation?.ok, String((r.rotation as any)?.error));
        assert.equal(r.registrations.find((x) => x.name === "deploy-key-2")?.importId, KEY2, "the engine's key is declared again by import (a no-op where it is recorded)");
        assert.equal(reveal(r.registrations.find((x) => x.name === deployId)!.inputs).plain.value, KEY2, "the recorded key reaches GitHub");
        const after = r.rotation.value;
        assert.equal(after.recorded, undefined, "a completed run leaves nothing recorded");
        assert.deepEqual(after.sets.deploy.keys.map((k: any) => [k.accessKeyId, k.status]), [[KEY1, "Active"], [KEY2, "Active"]]);
        assert.equal(after.sets.deploy.phase, "pushed");
    });

    test("a first run whose key check fails records its key although the set has no state to keep", async () => {
        const first = await runSettled({ config: { credentials: two }, now: "2026-11-01T00:00:00Z", world: { fail: (x) => (x.name === "deploy-key-check" ? "KeyCheckError: Key did not authenticate" : undefined) } });
        assert.ok(first.rotation?.ok, String((first.rotation as any)?.error));
        assert.equal(first.rotation.value.sets.deploy, undefined);
        assert.deepEqual(first.rotation.value.recorded, { deploy: [KEY1] });
        assert.equal(first.rotation.value.sets.build.phase, "steady");
    });
});

test("a first run whose GitHub write fails lists its key as unconfirmed at the top of `rotation`, since the set has no entry to hold it", async () => {
    const refused = "PUT http://127.0.0.1/api/v3/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY: 500 Internal Server Error";
    const first = await runSettled({ config: { credentials: two }, now: "2026-11-01T00:00:00Z", world: { fail: (x) => (x.name === deploySecret ? refused : undefined) } });
    assert.ok(first.rotation?.ok, String((first.rotation as any)?.error));
    assert.equal(first.rotation.value.sets.deploy, undefined);
    assert.deepEqual(first.rotation.value.unconfirmed, { deploy: [KEY1] });
    assert.equal(first.rotation.value.recorded, undefined, "a key whose target may hold a refused value is never finished");
});

describe("a target resource skipped because one it waits on failed is no refused write", () => {
    // With `encrypt`, both GitHub secrets wait on the KMS ciphertext. When Encrypt fails, they are
    // never sent to GitHub (the engine skips what depends on a failed step), so their records are
    // unchanged: the key is recorded and finished by the next run, not retired as unconfirmed.
    const encrypting = [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api", encrypt: { key: "alias/ci", context: { repository: "acme/api" } } }] }];
    // With `encrypt` the secret is named AWS_SECRET_ACCESS_KEY_CIPHERTEXT (docs/stores/kms.md).
    const sealedSecret = "github-repository-acme-api-aws_secret_access_key_ciphertext";
    const ciphertext = `${sealedSecret}-ciphertext`;

    test("a failed KMS Encrypt leaves the minted key recorded, not unconfirmed", async () => {
        const first = await runSettled({ config: { credentials: encrypting }, now: "2026-11-01T00:00:00Z" });
        assert.ok(first.rotation?.ok, String((first.rotation as any)?.error));
        const saved = first.rotation.value;
        const r = await runSettled({
            config: { credentials: encrypting },
            now: "2026-11-08T01:00:00Z",
            world: { stackOutputs: { rotation: saved }, accessKeys: iamAfter(saved), fail: (x) => (x.name === ciphertext ? "ThrottlingException: Rate exceeded" : undefined) },
        });
        assert.ok(r.rotation?.ok, String((r.rotation as any)?.error));
        assert.equal(r.rotation.value.sets.deploy.unconfirmed, undefined, "the skipped secrets were never written, so nothing may hold a refused value");
        assert.deepEqual(r.rotation.value.recorded, { deploy: [KEY2] });
    });

    test("a refused write of the secret itself still lists the key as unconfirmed", async () => {
        const first = await runSettled({ config: { credentials: encrypting }, now: "2026-11-01T00:00:00Z" });
        assert.ok(first.rotation?.ok, String((first.rotation as any)?.error));
        const saved = first.rotation.value;
        const r = await runSettled({
            config: { credentials: encrypting },
            now: "2026-11-08T01:00:00Z",
            world: { stackOutputs: { rotation: saved }, accessKeys: iamAfter(saved), fail: (x) => (x.name === sealedSecret ? "PUT .../actions/secrets/AWS_SECRET_ACCESS_KEY_CIPHERTEXT: 500 Internal Server Error" : undefined) },
        });
        assert.ok(r.rotation?.ok, String((r.rotation as any)?.error));
        assert.deepEqual(r.rotation.value.sets.deploy.unconfirmed, [KEY2]);
        assert.equal(r.rotation.value.recorded, undefined);
    });
});

test("GitHub secrets carry the set's rewrite trigger, \"none\" until a revoke must rewrite a refused write; variables carry none", async () => {
    const withVariable = [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api", variables: { AWS_REGION: "eu-west-1" } }] }];
    const first = await runSettled({ config: { credentials: withVariable }, now: "2026-11-01T00:00:00Z" });
    assert.ok(first.rotation?.ok, String((first.rotation as any)?.error));
    assert.equal(first.resourceOptions.get(deploySecret)?.replacementTrigger, "none");
    assert.equal(first.resourceOptions.get(deployId)?.replacementTrigger, "none");
    assert.equal(first.resourceOptions.get("github-repository-acme-api-var-aws_region")?.replacementTrigger, undefined);
    const saved = { ...first.rotation.value, sets: { deploy: { ...first.rotation.value.sets.deploy, rewriteTrigger: KEY1 } } };
    const next = await runSettled({ config: { credentials: withVariable }, now: "2026-11-01T01:00:00Z", world: { stackOutputs: { rotation: saved }, accessKeys: iamAfter(saved) } });
    assert.ok(next.rotation?.ok, String((next.rotation as any)?.error));
    assert.equal(next.resourceOptions.get(deploySecret)?.replacementTrigger, KEY1, "the saved trigger is declared again: nothing is replaced");
    assert.equal(next.rotation.value.sets.deploy.rewriteTrigger, KEY1);
});
