/**
 * The engine suite's GitHub plugin (test/engine/github-rig) checks secret inputs as the provider's
 * schema does (exactly one of `value` / `valueEncrypted`), and refuses the schema's deprecated
 * aliases, so the engine suite fails if the program ever sends them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resourceKinds } from "./engine/github-rig/resources";

const secret = resourceKinds["github:index/actionsSecret:ActionsSecret"];

describe("engine suite GitHub plugin: secret value inputs", () => {
    it("accepts `value` alone", () => {
        assert.deepEqual(secret.check?.({ repository: "api", secretName: "AWS_SECRET_ACCESS_KEY", value: "x" }) ?? [], []);
    });

    it("refuses the deprecated plaintextValue and encryptedValue, naming the replacement", () => {
        for (const key of ["plaintextValue", "encryptedValue"]) {
            const failures = secret.check?.({ repository: "api", secretName: "AWS_SECRET_ACCESS_KEY", [key]: "x" }) ?? [];
            assert.equal(failures.length, 1, key);
            assert.equal(failures[0].property, key);
            assert.match(failures[0].reason, /deprecated .*use `value`/);
        }
    });

    it("refuses both value inputs at once", () => {
        const failures = secret.check?.({ repository: "api", secretName: "AWS_SECRET_ACCESS_KEY", value: "x", valueEncrypted: "y" }) ?? [];
        assert.equal(failures.length, 1);
    });
});
