/**
 * The program under mocks, for the plan's decisions that change what is declared: a set paused
 * on its first run, and the key of an interrupted mint that the engine never checkpointed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keyIdFor } from "./support/mocks";
import { ofType, runProgram } from "./support/run";

const credentials = [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }] }];

describe("the program and the plan's semantics", () => {
    test("paused on its first run: no key, no target, an empty state; the first unpaused run mints key 1", async () => {
        const paused = await runProgram({ config: { credentials, paused: "true" }, now: "2026-11-01T00:00:00Z" });
        assert.equal(paused.error, undefined, paused.error?.stack);
        assert.deepEqual(ofType(paused, "aws:iam/accessKey:AccessKey"), []);
        assert.deepEqual(paused.registrations.filter((r) => r.type.startsWith("github:")), []);
        assert.deepEqual(paused.outputs!.rotation.sets.deploy.keys, []);
        assert.equal(paused.outputs!.sets.deploy.paused, true);

        const resumed = await runProgram({ config: { credentials }, now: "2026-11-01T01:00:00Z", world: { stackOutputs: { rotation: paused.outputs!.rotation } } });
        assert.equal(resumed.error, undefined, resumed.error?.stack);
        assert.deepEqual(ofType(resumed, "aws:iam/accessKey:AccessKey").map((k) => k.name), ["deploy-key-1"]);
        assert.equal(resumed.outputs!.sets.deploy.step, "mint");
    });

    test("an interrupted mint's never-used key is imported under the mint's name, and targets keep key 1", async () => {
        const first = await runProgram({ config: { credentials }, now: "2026-11-01T00:00:00Z" });
        assert.equal(first.error, undefined, first.error?.stack);
        const key1 = keyIdFor("deploy-key-1");
        const orphan = "AKIAORPHAN0000000002";
        const r = await runProgram({
            config: { credentials },
            now: "2026-11-08T01:00:00Z",
            world: {
                stackOutputs: { rotation: first.outputs!.rotation },
                accessKeys: {
                    "ci-deploy": [
                        { accessKeyId: key1, status: "Active", createDate: "2026-11-01T00:00:00Z" },
                        { accessKeyId: orphan, status: "Active", createDate: "2026-11-08T00:00:05Z" },
                    ],
                },
            },
            lastUse: { [orphan]: {} },
        });
        assert.equal(r.error, undefined, r.error?.stack);
        assert.deepEqual(r.lastUseAsked, [orphan]);
        const keys = ofType(r, "aws:iam/accessKey:AccessKey").map((k) => ({ name: k.name, importId: k.importId, status: k.inputs.status }));
        assert.deepEqual(keys, [
            { name: "deploy-key-2", importId: orphan, status: "Active" },
            { name: "deploy-key-1", importId: undefined, status: "Active" },
        ]);
        assert.equal(r.outputs!.sets.deploy.accessKeyId, key1);
        assert.match(r.outputs!.sets.deploy.warnings.join("\n"), /AKIAORPHAN0000000002 .*never used/);
    });
});
