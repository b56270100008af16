/**
 * Smoke run of the test-only GitHub plugin on the real engine: `pulumi up`, a no-change `up`, a
 * value change refused by GitHub, the run after it, and `destroy`, against the fake GitHub API.
 * Run by hand after the engine suite has built the CLI:
 *
 *   PULUMI_BIN_DIR=<dir with pulumi and pulumi-language-nodejs> node --import tsx test/engine/github-rig/smoke.ts
 *
 * Prints what GitHub holds after each step and exits non-zero if an expectation fails.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startGithubFake } from "../github-fake";
import { installGithubProvider } from "../github-provider";

async function main() {
    const binDir = process.env.PULUMI_BIN_DIR;
    if (!binDir) throw new Error("set `PULUMI_BIN_DIR` to the directory holding the built `pulumi`");
    const pulumi = path.join(binDir, "pulumi");
    const root = path.resolve(__dirname, "..", "..", "..");
    const fake = await startGithubFake({ repositories: ["acme/api", { fullName: "acme/deploy", environments: ["production"] }] });
    const tmp = mkdtempSync(path.join(tmpdir(), "github-smoke-"));
    try {
        const project = path.join(tmp, "project");
        for (const d of [project, path.join(tmp, "state"), path.join(tmp, "home")]) mkdirSync(d, { recursive: true });
        for (const f of ["Pulumi.yaml", "index.js"]) copyFileSync(path.join(__dirname, "smoke", f), path.join(project, f));
        symlinkSync(path.join(root, "node_modules"), path.join(project, "node_modules"));
        const env: NodeJS.ProcessEnv = {
            ...process.env,
            PATH: `${binDir}${path.delimiter}${process.env.PATH}`,
            PULUMI_HOME: path.join(tmp, "home"),
            PULUMI_BACKEND_URL: `file://${path.join(tmp, "state")}`,
            PULUMI_CONFIG_PASSPHRASE: "smoke",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_SKIP_CONFIRMATIONS: "true",
            GITHUB_RIG_TIME_SCALE: process.env.GITHUB_RIG_TIME_SCALE ?? "0.05",
        };
        // Asynchronous: the fake answers from this process while pulumi runs.
        const p = (args: string[]) =>
            new Promise<{ code: number | null; out: string }>((resolve, reject) => {
                const started = Date.now();
                const child = spawn(pulumi, args, { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
                let out = "";
                child.stdout.on("data", (d) => (out += d));
                child.stderr.on("data", (d) => (out += d));
                child.on("error", reject);
                child.on("close", (code) => {
                    process.stderr.write(`[smoke] pulumi ${args.join(" ")} -> ${code} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
                    resolve({ code, out });
                });
            });
        const ok = async (args: string[]) => {
            const r = await p(args);
            if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${r.out}`);
            return r.out;
        };
        await installGithubProvider(pulumi, env);
        await ok(["stack", "init", "dev"]);
        await ok(["config", "set", "github:baseUrl", fake.url]);
        await ok(["config", "set", "--secret", "github:token", fake.token!]);
        const v1 = "smoke-Secret/Value+1";
        const v2 = "smoke-Secret/Value+2";
        await ok(["config", "set", "--secret", "value", v1]);

        await ok(["up", "--yes", "--skip-preview"]);
        for (const scope of ["repo:acme/api", "env:acme/deploy:production", "dependabot:acme/api", "org:acme"] as const) {
            assert.equal(fake.secretValue(scope, "AWS_SECRET_ACCESS_KEY"), v1, scope);
        }
        assert.deepEqual(fake.selectedRepositories("secret", "acme", "AWS_SECRET_ACCESS_KEY"), ["acme/api"]);
        assert.equal(fake.variableValue("org:acme", "AWS_REGION"), "eu-west-1");
        const exported = await ok(["stack", "export", "--show-secrets=false"]);
        assert.ok(!exported.includes(v1), "the secret value is not in plaintext in the state");
        await ok(["up", "--yes", "--expect-no-changes"]);
        await ok(["refresh", "--yes", "--expect-no-changes"]);

        // A change made at GitHub (timestamps have one-second resolution): refresh records it in
        // remoteUpdatedAt and the next up writes the declared value again (diffSecret).
        await new Promise((r) => setTimeout(r, 1100));
        fake.seedSecret("repo:acme/api", "AWS_SECRET_ACCESS_KEY", "changed-outside");
        await ok(["refresh", "--yes"]);
        await ok(["up", "--yes", "--skip-preview"]);
        assert.equal(fake.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), v1, "the drifted secret is written again");

        await ok(["config", "set", "--secret", "value", v2]);
        fake.fail({ method: "PUT", path: "/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY", status: 500, times: Infinity });
        const failed = await p(["up", "--yes", "--skip-preview"]);
        assert.notEqual(failed.code, 0, "GitHub refused the write: the update fails");
        fake.clearFailures();
        assert.equal(fake.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), v1);
        // The engine stops starting steps after the failure: which other writes ran depends on timing.
        process.stderr.write(`[smoke] after the refused write: ${JSON.stringify(fake.inventory().map((k) => k))}\n`);
        const next = await p(["up", "--yes", "--skip-preview"]);
        process.stderr.write(`[smoke] run after the refused write: exit ${next.code}; repository secret holds ${fake.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY") === v2 ? "the new value" : "the OLD value"}\n`);
        process.stderr.write(`[smoke] organization selection after it: ${JSON.stringify(fake.selectedRepositories("secret", "acme", "AWS_SECRET_ACCESS_KEY"))}\n`);

        await ok(["destroy", "--yes", "--skip-preview"]);
        assert.deepEqual(fake.inventory(), [], "destroy removes every secret and variable");
        const stateFiles = (dir: string): string[] =>
            readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? stateFiles(path.join(dir, f)) : [path.join(dir, f)]));
        for (const f of stateFiles(path.join(tmp, "state"))) assert.ok(!readFileSync(f, "utf8").includes(v1), `no plaintext secret in ${f}`);
        process.stderr.write("[smoke] ok\n");
    } finally {
        await fake.stop();
        rmSync(tmp, { recursive: true, force: true });
    }
}

main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
});
