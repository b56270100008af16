/**
 * The engine conformance rig: builds (or reuses) the Pulumi CLI and the Node.js language host from
 * Go modules, installs moto, starts moto on 127.0.0.1, and runs real `pulumi` commands against a
 * file backend in a temporary directory. Test-only: nothing here ships in dist/.
 *
 * Builds are cached in `${XDG_CACHE_HOME:-~/.cache}/ci-key-rotation-engine`, keyed by the Pulumi
 * version and a hash of the wrapper modules (test/engine/rig, test/engine/langhost): a second run
 * does not rebuild.
 */
import { IAMClient } from "@aws-sdk/client-iam";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** The repository root (this file is test/engine/rig.ts). */
export const repoRoot = path.resolve(__dirname, "..", "..");
/**
 * The program under test: this checkout, or `ENGINE_PROGRAM_DIR` (another checkout of the project,
 * e.g. `git archive <branch>` unpacked, with node_modules) to run the same scenarios on another
 * revision of the program.
 */
export const programRoot = path.resolve(process.env.ENGINE_PROGRAM_DIR || repoRoot);
const rigModule = path.join(repoRoot, "test", "engine", "rig");
/** Wrapper module of the real Node.js language host (see its go.mod for why v3.68.0). */
const languageHostModule = path.join(repoRoot, "test", "engine", "langhost");
/** The sdk/v3 release whose `nodejs/cmd/pulumi-language-nodejs` the rig builds. */
const languageHostVersion = "v3.68.0";

/**
 * The pkg/v3 release the Go module proxy serves. `@pulumi/pulumi` in package.json is 3.270; the
 * proxy refuses pkg/v3 v3.261.0 and newer ("This module version is not available"), and 3.259.0
 * resolves. The engine of 3.259 runs SDK 3.270 programs (the SDK negotiates features with the
 * engine through SupportsFeature).
 */
export const pulumiVersion = "v3.259.0";
/** The moto release installed from PyPI. */
export const motoVersion = "5.2.5";
/** Plugin versions the packages ask for (package.json `pulumi.version` of each). */
export const awsPluginVersion: string = JSON.parse(fs.readFileSync(path.join(repoRoot, "node_modules", "@pulumi", "aws", "package.json"), "utf8")).version;

export const cacheRoot = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "ci-key-rotation-engine");

/**
 * The Go checksum database does not answer at its own address from the project's machines, while
 * the module proxy serves it under `<proxy>/sumdb/<name>` (its `/supported` answers 200). So the
 * rig points GOSUMDB at the configured proxy: go.sum entries are still verified.
 */
async function goEnv(): Promise<NodeJS.ProcessEnv> {
    if (process.env.GOSUMDB) return { ...process.env, GOFLAGS: "-mod=mod" };
    const r = await run("go", ["env", "GOPROXY"]);
    const proxy = r.stdout
        .trim()
        .split(/[,|]/)
        .find((p) => p !== "direct" && p !== "off");
    return { ...process.env, GOFLAGS: "-mod=mod", ...(proxy ? { GOSUMDB: `sum.golang.org ${proxy.replace(/\/+$/, "")}/sumdb/sum.golang.org` } : {}) };
}

/** Progress line on stderr. */
export function log(message: string): void {
    process.stderr.write(`[engine] ${message}\n`);
}

/** Result of a finished child process. */
export interface RunResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

/** Runs a command without blocking the event loop (the fakes answer from this process). */
export function run(
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; onSpawn?: (child: ChildProcess) => void; detached?: boolean } = {},
): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        // detached: its own process group, so a test can kill the command and everything it started.
        const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["pipe", "pipe", "pipe"], detached: opts.detached });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
        child.on("error", reject);
        child.on("close", (code, signal) => {
            if (timer) clearTimeout(timer);
            resolve({ code, signal, stdout, stderr });
        });
        child.stdin.end(opts.input ?? "");
        opts.onSpawn?.(child);
    });
}

function hashFiles(files: string[]): string {
    const h = createHash("sha256");
    for (const f of files) h.update(path.relative(rigModule, f)).update(fs.readFileSync(f));
    return h.digest("hex").slice(0, 12);
}

/** Where the built binaries live, and how long getting them took. */
export interface Binaries {
    binDir: string;
    pulumi: string;
    built: boolean;
    seconds: number;
}

/**
 * Builds `pulumi` (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi, wrapper module test/engine/rig) and
 * the real Node.js language host (package nodejs/cmd/pulumi-language-nodejs of
 * github.com/pulumi/pulumi/sdk/v3 at v3.68.0, wrapper module test/engine/langhost: the last release
 * that kept the host inside a module the Go proxy serves, see its go.mod) unless the cache has them
 * for these versions and module hashes, and writes the `pulumi-resource-pulumi-nodejs` launcher
 * beside them.
 */
export async function ensureBinaries(): Promise<Binaries> {
    const started = Date.now();
    const key = hashFiles(["go.mod", "go.sum", "../langhost/go.mod", "../langhost/go.sum"].map((f) => path.join(rigModule, f)));
    const binDir = path.join(cacheRoot, `pulumi-${pulumiVersion}-${key}`, "bin");
    const pulumi = path.join(binDir, "pulumi");
    const host = path.join(binDir, "pulumi-language-nodejs");
    let built = false;
    fs.mkdirSync(binDir, { recursive: true });
    const versionFlag = (v: string) => `-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${v}`;
    const env = await goEnv();
    for (const [out, pkg, cwd, version] of [
        [pulumi, "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", rigModule, pulumiVersion],
        [host, "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs", languageHostModule, languageHostVersion],
    ] as const) {
        if (!fs.existsSync(out)) {
            log(`building ${path.basename(out)} ${version} (Go, cold builds take many minutes on 2 cores)`);
            const tmp = `${out}.tmp-${process.pid}`;
            const r = await run("nice", ["-n", "19", "go", "build", "-o", tmp, "-ldflags", versionFlag(version), pkg], { cwd, env });
            if (r.code !== 0) throw new Error(`go build ${pkg} failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
            fs.renameSync(tmp, out);
            built = true;
        }
    }
    // What the CLI's distribution ships as sdk/nodejs/dist/pulumi-resource-pulumi-nodejs (pulumi/pulumi at
    // pkg/v3.259.0): resolve @pulumi/pulumi/cmd/dynamic-provider from the working directory and run it.
    const launcher = path.join(binDir, "pulumi-resource-pulumi-nodejs");
    fs.writeFileSync(
        launcher,
        '#!/bin/sh\nPULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH=$(node -e "console.log(require.resolve(\'@pulumi/pulumi/cmd/dynamic-provider\'))")\n' +
            'if [ ! -z "$PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH" ]; then\n    node "$PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH" "$@"\nfi\n',
        { mode: 0o755 },
    );
    return { binDir, pulumi, built, seconds: (Date.now() - started) / 1000 };
}

/** Installs moto[server] into a virtualenv in the cache unless present; returns its `moto_server`. */
export async function ensureMoto(): Promise<string> {
    const venv = path.join(cacheRoot, `moto-${motoVersion}`);
    const server = path.join(venv, "bin", "moto_server");
    if (fs.existsSync(server)) return server;
    log(`installing moto[server]==${motoVersion} into ${venv}`);
    let r = await run("python3", ["-m", "venv", venv]);
    if (r.code !== 0) throw new Error(`python3 -m venv failed: ${r.stderr}`);
    r = await run(path.join(venv, "bin", "pip"), ["install", "-q", `moto[server]==${motoVersion}`]);
    if (r.code !== 0) throw new Error(`pip install moto[server]==${motoVersion} failed: ${r.stderr.slice(-2000)}`);
    return server;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

/** A running moto server. */
export interface Moto {
    url: string;
    iam: IAMClient;
    /** Forget every resource (moto's reset API). */
    reset(): Promise<void>;
    stop(): Promise<void>;
}

/** Start moto; `env` adds variables (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`, which turns on moto's IAM checks). */
export async function startMoto(server: string, env: NodeJS.ProcessEnv = {}): Promise<Moto> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(server, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 60_000;
    for (;;) {
        try {
            const res = await fetch(`${url}/moto-api/`);
            if (res.ok) break;
        } catch {
            /* not up yet */
        }
        if (child.exitCode !== null || Date.now() > deadline) {
            child.kill("SIGKILL");
            throw new Error(`moto did not start on ${url}: ${stderr.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 250));
    }
    const iam = new IAMClient({ region: "us-east-1", endpoint: url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    return {
        url,
        iam,
        async reset() {
            await fetch(`${url}/moto-api/reset`, { method: "POST" });
        },
        async stop() {
            if (child.exitCode === null) {
                const done = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
                if (child.exitCode === null) child.kill("SIGKILL");
            }
        },
    };
}

/** One isolated Pulumi home, backend and project directory. */
export interface Workspace {
    dir: string;
    projectDir: string;
    env: NodeJS.ProcessEnv;
    /** Runs `pulumi <args>` in the project directory. */
    pulumi(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (child: ChildProcess) => void; detached?: boolean }): Promise<RunResult>;
    /** Writes Pulumi.<stack>.yaml. */
    writeStackConfig(stack: string, yamlText: string): void;
    remove(): void;
}

/**
 * A temporary directory with PULUMI_HOME (plugins installed there from local files, so nothing is
 * fetched), a file backend and a project directory that links the repository's Pulumi.yaml,
 * package.json, dist/ and node_modules/.
 */
export async function createWorkspace(bins: Binaries, baseEnv: NodeJS.ProcessEnv): Promise<Workspace> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ckr-engine-"));
    const home = path.join(dir, "home");
    const state = path.join(dir, "state");
    const projectDir = path.join(dir, "project");
    for (const d of [home, state, projectDir]) fs.mkdirSync(d, { recursive: true });
    fs.copyFileSync(path.join(programRoot, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
    for (const f of ["package.json", "dist", "node_modules"]) fs.symlinkSync(path.join(programRoot, f), path.join(projectDir, f));

    // The AWS plugin is Node code; its binary is a launcher with absolute paths.
    const awsLauncher = path.join(dir, "pulumi-resource-aws");
    const tsx = path.join(repoRoot, "node_modules", "tsx", "dist", "loader.mjs");
    fs.writeFileSync(awsLauncher, `#!/bin/sh\nexec node --import ${JSON.stringify(`file://${tsx}`)} ${JSON.stringify(path.join(repoRoot, "test", "engine", "aws-provider.ts"))} "$@"\n`, {
        mode: 0o755,
    });

    const env: NodeJS.ProcessEnv = {
        ...baseEnv,
        PATH: `${bins.binDir}${path.delimiter}${process.env.PATH}`,
        PULUMI_HOME: home,
        // metadata=skip: no `.attrs` sidecar files. gocloud.dev's fileblob writes them in place
        // (blob/fileblob/attrs.go, setAttrs: os.Create, then encode), so a kill -9 at the wrong moment
        // leaves `<stack>.json.attrs` empty and every later command fails with "failed to load
        // checkpoint: EOF" (seen in scenario 4c). The checkpoint itself is replaced atomically
        // (temp file and rename). See docs/engine-suite.md, "Findings".
        PULUMI_BACKEND_URL: `file://${state}?metadata=skip`,
        PULUMI_CONFIG_PASSPHRASE: "engine-suite-passphrase",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        NO_COLOR: "1",
    };
    const ws: Workspace = {
        dir,
        projectDir,
        env,
        pulumi: (args, opts = {}) =>
            run(bins.pulumi, [...args, "--non-interactive", "--color", "never"], {
                cwd: projectDir,
                env: { ...env, ...opts.env },
                timeoutMs: opts.timeoutMs ?? 300_000,
                onSpawn: opts.onSpawn,
                detached: opts.detached,
            }),
        writeStackConfig(stack, yamlText) {
            fs.writeFileSync(path.join(projectDir, `Pulumi.${stack}.yaml`), yamlText);
        },
        remove() {
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    const r = await run(bins.pulumi, ["plugin", "install", "resource", "aws", awsPluginVersion, "--file", awsLauncher, "--non-interactive"], { env });
    if (r.code !== 0) throw new Error(`pulumi plugin install resource aws ${awsPluginVersion} failed: ${r.stderr}${r.stdout}`);
    return ws;
}
