import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readStackFileConfig } from "../rotation/ops/operator-policy";
import { readStackConfig } from "../rotation/rehearsal/stack";

// The two readers of Pulumi.<stack>.yaml without the Pulumi CLI (`policy` and `simulate`) must
// name the file in every problem with it, and never read a broken file as an empty config.

const dir = mkdtempSync(join(tmpdir(), "stack-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(join(dir, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");

const broken: { what: string; text: string; problem: RegExp }[] = [
    {
        what: "a YAML syntax error",
        text: "config:\n  ci-key-rotation:every: [P7D\n",
        problem: /^Pulumi\.syntax\.yaml, line 3, column 1: .*(indented|flow|end with)/i,
    },
    {
        what: "a duplicate key",
        text: "config:\n  ci-key-rotation:every: P7D\n  ci-key-rotation:every: P14D\n",
        problem: /^Pulumi\.duplicate\.yaml, line 3, column 3: a key is given twice \(YAML keys must be unique\): keep one of them$/,
    },
    {
        what: "a top-level list",
        text: "- config:\n    ci-key-rotation:every: P7D\n",
        problem: /^Pulumi\.list\.yaml must be a YAML mapping with a `config:` section, not a list$/,
    },
    {
        what: "a config section that is a list",
        text: "config:\n  - ci-key-rotation:every: P7D\n",
        problem: /^Pulumi\.configlist\.yaml: `config` must be a mapping of settings \(ci-key-rotation:every: P7D\), not a list$/,
    },
];
const stacks = ["syntax", "duplicate", "list", "configlist"];
broken.forEach((c, i) => writeFileSync(join(dir, `Pulumi.${stacks[i]}.yaml`), c.text));

describe("stack files", () => {
    broken.forEach((c, i) => {
        test(`\`policy\` names the file for ${c.what}`, async () => {
            const result = await readStackFileConfig(dir, stacks[i]);
            assert.equal(result.ok, false);
            if (!result.ok) {
                assert.equal(result.problems.length, 1, result.problems.join("\n"));
                assert.match(result.problems[0].replace(dir + "/", ""), c.problem);
            }
        });

        test(`\`simulate\` names the file for ${c.what}`, () => {
            assert.throws(
                () => readStackConfig(dir, stacks[i]),
                (e: Error) => {
                    assert.match(e.message.replace(dir + "/", ""), c.problem);
                    return true;
                },
            );
        });
    });
});

describe("`policy` reading a stack file", () => {
    const credentials = "    - name: deploy\n      targets:\n        - type: github-repository\n          repository: acme/api\n";

    test("reports a `ci-key-rotation:__proto__` key as unknown instead of dropping it", async () => {
        writeFileSync(join(dir, "Pulumi.proto.yaml"), `config:\n  ci-key-rotation:__proto__: x\n  ci-key-rotation:credentials:\n${credentials}`);
        const result = await readStackFileConfig(dir, "proto");
        assert.equal(result.ok, false);
        if (!result.ok) assert.ok(result.problems.some((p) => p.includes("__proto__")), result.problems.join("\n"));
    });

    test("reads the same file without it", async () => {
        writeFileSync(join(dir, "Pulumi.plain.yaml"), `config:\n  ci-key-rotation:credentials:\n${credentials}`);
        const result = await readStackFileConfig(dir, "plain");
        assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        assert.equal(result.config.sets[0].name, "deploy");
    });
});
