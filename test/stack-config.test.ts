import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { readStackConfig } from "../rotation/pulumi/program";

const credentials = JSON.stringify([{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }] }]);

test("a `ci-key-rotation:__proto__` key in stack config is reported as unknown, not dropped", () => {
    pulumi.runtime.setAllConfig({ "ci-key-rotation:credentials": credentials, "ci-key-rotation:__proto__": "x" }, []);
    assert.throws(() => readStackConfig(), (err: Error) => /__proto__/.test(err.message));
});

test("the same config without it is read", () => {
    pulumi.runtime.setAllConfig({ "ci-key-rotation:credentials": credentials }, []);
    assert.equal(readStackConfig().sets[0].name, "deploy");
});
