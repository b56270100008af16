import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { configKeys, decodeRawConfig, validateConfig } from "../rotation/core/config";
import { clockVariable, readClock } from "../rotation/pulumi/clock";
import { defaultPolicy } from "../rotation/core/policy";
import { parseState } from "../rotation/core/state";
import * as automation from "../rotation/ops/automation";

const root = path.resolve(__dirname, "..");
const project = parse(readFileSync(path.join(root, "Pulumi.yaml"), "utf8"));

describe("Pulumi.yaml", () => {
    test("declares every config key the program reads, each with a description", () => {
        assert.deepEqual(Object.keys(project.config).sort(), [...configKeys].sort());
        for (const [key, decl] of Object.entries<any>(project.config)) assert.ok(decl.description?.length > 10, `${key} has no description`);
    });

    test("its defaults are the program's documented defaults", () => {
        for (const [key, value] of Object.entries(defaultPolicy)) {
            const declared = project.config[key].default;
            const expected = typeof value === "object" ? value.toISO() : value;
            assert.equal(declared, expected, `Pulumi.yaml default of ${key}`);
        }
    });

    test("runs compiled JavaScript, not TypeScript on the fly", () => {
        assert.equal(project.runtime.options.typescript, false);
        const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
        assert.equal(pkg.main, "dist/index.js");
    });
});

describe("the example stack", () => {
    test("Pulumi.dev.yaml is valid configuration", () => {
        const stack = parse(readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8"));
        const values: Record<string, string> = {};
        for (const [key, value] of Object.entries<any>(project.config)) values[key] = typeof value.default === "object" ? JSON.stringify(value.default) : String(value.default ?? "");
        for (const [key, value] of Object.entries<any>(stack.config)) {
            if (key.startsWith("ci-key-rotation:")) values[key.slice("ci-key-rotation:".length)] = typeof value === "string" ? value : JSON.stringify(value);
        }
        const { raw, problems } = decodeRawConfig(values);
        assert.deepEqual(problems, []);
        const result = validateConfig(raw);
        assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        assert.deepEqual(
            result.config.sets[0].targets.map((t) => t.spec.label(t.target)),
            ["github repository acme/api", "github environment acme/api:production", "github organization acme", "s3 env file s3://acme-ci-env/deploy/production", "aws-secrets-manager ci/deploy/aws-credentials", "github repository acme/infra", "aws-ssm-parameter /ci/deploy"],
        );
    });
});

describe("the clock", () => {
    test("is the real time unless pinned", () => {
        const { now, warning } = readClock({}, () => new Date("2026-11-23T12:34:56Z"));
        assert.equal(now.toISO(), "2026-11-23T12:34:56.000Z");
        assert.equal(warning, undefined);
    });

    test("a pinned clock is used and reported", () => {
        const { now, warning } = readClock({ [clockVariable]: "2027-01-01T10:00:00+02:00" });
        assert.equal(now.toISO(), "2027-01-01T08:00:00.000Z");
        assert.match(warning!, /CI_KEY_ROTATION_NOW is set: acting as if it were 2027-01-01T08:00:00.000Z/);
    });

    test("a pinned time without a zone is refused rather than guessed", () => {
        assert.throws(() => readClock({ [clockVariable]: "2027-01-01T10:00:00" }), /must be an ISO-8601 instant with a zone/);
    });
});

describe("the stored state", () => {
    const good = { version: 1, asOf: "2026-11-01T00:00:00Z", sets: { deploy: { generation: 1, phase: "steady", keys: [{ generation: 1, accessKeyId: "AKIA1", status: "Active", createdAt: "2026-11-01T00:00:00Z" }], changedAt: "2026-11-01T00:00:00Z" } } };

    test("no output means a first run", () => {
        assert.equal(parseState(undefined), undefined);
    });

    test("a version-1 state is read back as it was written", () => {
        assert.deepEqual(parseState(good), good);
    });

    test("keys a failed run created are read back per set, also for a set with no state yet", () => {
        const withRecorded = { ...good, recorded: { deploy: ["AKIA2"], staging: ["AKIA3"] } };
        assert.deepEqual(parseState(withRecorded)?.recorded, { deploy: ["AKIA2"], staging: ["AKIA3"] });
    });

    for (const [what, value, message] of [
        ["text", "steady", /is not a ci-key-rotation state object/],
        ["a newer version", { ...good, version: 2 }, /has version 2, and this program reads version 1/],
        ["no sets", { version: 1, asOf: "x" }, /is missing `asOf` or `sets`/],
        ["an unknown phase", { ...good, sets: { deploy: { ...good.sets.deploy, phase: "done" } } }, /malformed entry for set "deploy"/],
        ["a key without id", { ...good, sets: { deploy: { ...good.sets.deploy, keys: [{ generation: 1 }] } } }, /malformed entry for set "deploy"/],
        ["recorded keys that are not ids", { ...good, recorded: { deploy: [1] } }, /malformed `recorded` entry/],
    ] as const) {
        test(`${what} is refused with what to do`, () => {
            assert.throws(() => parseState(value), message);
        });
    }
});

describe("the library entry (`ci-key-rotation/automation`)", () => {
    test("package.json points `./automation` at the compiled entry", () => {
        const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
        assert.deepEqual(pkg.exports["./automation"], { types: "./dist/rotation/ops/automation.d.ts", default: "./dist/rotation/ops/automation.js" });
    });

    test("still exports every value it exported before the split", () => {
        const values = [
            "Interrupt", "OperationError", "createRotationClient", "defaultLockRetry", "installHint", "isConcurrentUpdate",
            "minimumPulumiVersion", "olderThanMinimum", "requestIdFor", "rotate", "rotationModes", "status", "toOperationError",
        ];
        const exported = Object.keys(automation).filter((k) => k !== "__esModule" && k !== "default");
        assert.deepEqual(exported.sort(), values.sort());
    });

    test("still exports every type it exported before the split (checked by the type check)", () => {
        // Each name below fails `tsc -p tsconfig.test.json` if the entry stops exporting it.
        type Types = [
            automation.RotationMode, automation.StackOutputs, automation.RotationStack, automation.StackOpener, automation.LockRetry,
            automation.AutomationDeps, automation.ProgressEvent, automation.RotateOptions, automation.StepTaken, automation.SetReport,
            automation.RotationOutcome, automation.RotationReport, automation.StatusOptions, automation.KeyStatus, automation.SetStatus,
            automation.StatusReport, automation.InFlightRotation, automation.RotationClient,
        ];
        const count: Types["length"] = 18;
        assert.equal(count, 18);
    });
});

describe("the test tiers", () => {
    const scripts = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts as Record<string, string>;
    const listed = (script: string) => new Set(scripts[script].split(/\s+/).filter((w) => w.startsWith("test/") && w.endsWith(".test.ts")));
    const files = readdirSync(path.join(root, "test")).filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);

    test("every test file runs in `npm test` or `npm run test:slow` (both run in CI), and every listed file exists", () => {
        const fast = listed("test");
        const slow = listed("test:slow");
        assert.deepEqual(files.filter((f) => !fast.has(f) && !slow.has(f)), [], "test files in no tier");
        assert.deepEqual([...fast, ...slow].filter((f) => !files.includes(f)), [], "tiers list files that do not exist");
    });

    test("the fast tier leaves out only rehearsal files, which the slow tier runs in full", () => {
        const fast = listed("test");
        const slowOnly = files.filter((f) => !fast.has(f));
        for (const f of slowOnly) assert.match(f, /^test\/rehearsal\./, `${f} runs only in the slow tier`);
    });
});
