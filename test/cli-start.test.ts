import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { RunError } from "@pulumi/pulumi";
import { ConfigError } from "../rotation/core/config";
import { StateError } from "../rotation/core/state";

const run = promisify(execFile);

/** Run the CLI in a child process; resolve with its exit code and how much of Pulumi's SDK it loaded. */
async function start(args: string[]): Promise<{ code: number; pulumiModules: number; first: string[]; stderr: string }> {
    const out = join(await mkdtemp(join(tmpdir(), "ckr-load-")), "loaded.json");
    let code = 0;
    let stderr = "";
    try {
        ({ stderr } = await run(process.execPath, ["--import", "tsx", join(__dirname, "support", "load-check.ts"), "--", ...args], { cwd: join(__dirname, ".."), env: { ...process.env, LOAD_CHECK_OUT: out } }));
    } catch (err) {
        code = (err as { code: number }).code;
        stderr = (err as { stderr: string }).stderr;
    }
    return { code, stderr, ...JSON.parse(await readFile(out, "utf8")) };
}

describe("CLI start-up", () => {
    it("--help and argument errors do not load the Pulumi SDK", async () => {
        for (const [args, code] of [
            [["--help"], 0],
            [["rotate", "--help"], 0],
            [["rotate", "--bogus"], 2],
            [["serve", "--port", "x"], 2],
            [["status", "--stack", "no such stack!"], 2],
        ] as const) {
            const r = await start([...args]);
            assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
            assert.equal(r.pulumiModules, 0, `${args.join(" ")} loaded ${r.first.join(", ")}`);
        }
    });

    it("config and state errors are still Pulumi RunErrors (printed without a stack trace)", () => {
        assert.equal(RunError.isInstance(new ConfigError(["x"])), true);
        assert.equal(RunError.isInstance(new StateError("x")), true);
        assert.equal(RunError.isInstance(new Error("x")), false);
    });

    // `policy` validates the stack file against the stores' specs (providers/*/spec.ts, pure), never
    // their resources (providers/*/store.ts load @pulumi/pulumi and @pulumi/github).
    it("policy does not load the Pulumi SDK", async () => {
        const cwd = await mkdtemp(join(tmpdir(), "ckr-start-"));
        await writeFile(join(cwd, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
        await writeFile(join(cwd, "Pulumi.prod.yaml"), "config:\n  ci-key-rotation:credentials:\n    - name: deploy\n      targets:\n        - type: github-repository\n          repository: acme/app\n");
        const r = await start(["policy", "--cwd", cwd]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.pulumiModules, 0, `policy loaded ${r.first.join(", ")}`);
    });
});
