/**
 * Scenarios of the engine conformance suite (issue 13), in order of value. Each runs real `pulumi`
 * commands against moto and the loopback GitLab server and asserts on IAM, the stored variables,
 * the saved state and the exit codes.
 */
import { ListAccessKeysCommand, ListUsersCommand } from "@aws-sdk/client-iam";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { startFakeGitlab, type FakeGitlab, type StoredVariable } from "../support/gitlab-server";
import * as path from "node:path";
import { createWorkspace, freePort, log, programRoot, repoRoot, run, type Binaries, type Moto, type RunResult, type Workspace } from "./rig";

/** What every scenario gets. */
export interface Context {
    bins: Binaries;
    moto: Moto;
    /** Logs of every command run, for the plaintext check (scenario 7). */
    logs: string[];
    /** Every secret access key seen in a state (scenario 7). */
    secrets: Set<string>;
    /** The stack scenario 2 rotated, reused by 7, 8 and 10. */
    rotated?: Stack;
}

export interface Scenario {
    id: string;
    title: string;
    run(ctx: Context): Promise<void>;
}

/**
 * Scenarios that fail on the program (or the engine) as it is, for a reason reported and not yet
 * fixed: they still run and print the finding, and count as skipped unless ENGINE_STRICT=1. A
 * known finding that passes is reported so it can be removed from here.
 */
export const knownFindings: Record<string, string> = {};

const gitlabToken = "glpat-engine-suite-0001";
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** One stack in its own workspace, with the GitLab fake its targets write to. */
export class Stack {
    /** Requests to GitLab whose path matches get 403 from the proxy in front of the fake. */
    block?: RegExp;
    /** While set, every GitLab request with this method gets this answer from the proxy. */
    fail?: { method: string; status: number; body: unknown; path?: RegExp };
    /**
     * While set, every GitLab request with this method (and path) reaches GitLab, which applies
     * it, but its answer never comes back: the provider's per-request timeout fires (a write that
     * times out after it landed, the worst kind).
     */
    swallow?: { method: string; path?: RegExp };
    /** While set, called before each GitLab request is answered; the request waits for it. */
    hold?: (method: string, url: string) => Promise<void> | undefined;
    private proxy?: http.Server;

    constructor(
        readonly ctx: Context,
        readonly ws: Workspace,
        readonly gitlab: FakeGitlab,
        readonly name: string,
        /** Real time at the first run; instants are offsets from it. */
        readonly t0: number,
    ) {}

    static async create(
        ctx: Context,
        name: string,
        sets: Array<{ name: string; user: string; project: number; githubRepository?: string }>,
        extraConfig: Record<string, string> = {},
        extraEnv: NodeJS.ProcessEnv = {},
    ): Promise<Stack> {
        const projects = Object.fromEntries(sets.map((s) => [s.project, `acme/${s.name}`]));
        const gitlab = await startFakeGitlab({ tokens: { [gitlabToken]: "maintainer" }, projects });
        const holder: { stack?: Stack } = {};
        const proxy = await blockingProxy(
            gitlab.baseUrl,
            (method, url) => holder.stack?.hold?.(method, url),
            (method, url) => {
                const st = holder.stack;
                if (st?.swallow && st.swallow.method === method && (!st.swallow.path || st.swallow.path.test(url))) return { swallow: true };
                if (st?.fail && st.fail.method === method && (!st.fail.path || st.fail.path.test(url))) return { status: st.fail.status, body: st.fail.body };
                if (st?.block?.test(url)) return { status: 403, body: { message: "403 Forbidden" } };
                return undefined;
            },
        );
        const ws = await createWorkspace(ctx.bins, {
            ...process.env,
            AWS_ACCESS_KEY_ID: "testing",
            AWS_SECRET_ACCESS_KEY: "testing",
            AWS_REGION: "us-east-1",
            AWS_ENDPOINT_URL: ctx.moto.url,
            GITLAB_TOKEN: gitlabToken,
            GITLAB_BASE_URL: proxy.url,
            ...extraEnv,
        });
        const stack = new Stack(ctx, ws, gitlab, name, Date.now());
        holder.stack = stack;
        stack.proxy = proxy.server;
        const init = await ws.pulumi(["stack", "init", name]);
        if (init.code !== 0) {
            await stack.dispose();
            assert.fail(`pulumi stack init ${name}: ${init.stderr}`);
        }
        const creds = sets
            .map(
                (s) =>
                    `    - name: ${s.name}\n      user:\n        name: ${s.user}\n      targets:\n        - type: gitlab-project\n          project: ${s.project}\n          protected: false\n` +
                    (s.githubRepository ? `        - type: github-repository\n          repository: ${s.githubRepository}\n` : ""),
            )
            .join("");
        const extra = Object.entries(extraConfig)
            .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
            .join("");
        ws.writeStackConfig(name, `config:\n  aws:region: us-east-1\n${extra}  ci-key-rotation:credentials:\n${creds}`);
        return stack;
    }

    /** `pulumi <args> --stack <name>`, logged. */
    async cmd(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (c: ChildProcess) => void; detached?: boolean } = {}): Promise<RunResult> {
        const r = await this.ws.pulumi([...args, "--stack", this.name], opts);
        // The suite's own `--show-secrets` reads are not logs a user would see.
        if (!args.includes("--show-secrets")) this.ctx.logs.push(r.stdout, r.stderr);
        return r;
    }

    /** `pulumi up` at t0 + offset. */
    up(offsetMs: number, extra: string[] = [], opts: { onSpawn?: (c: ChildProcess) => void; detached?: boolean } = {}): Promise<RunResult> {
        // As the scheduled job runs it (docs/failures.md): one set's failed write must not cancel the
        // other sets' steps (pulumi/pulumi pkg/resource/deploy/step_executor.go `cancelDueToError`).
        return this.cmd(["up", "--yes", "--skip-preview", "--continue-on-error", ...extra], { env: { CI_KEY_ROTATION_NOW: this.at(offsetMs) }, onSpawn: opts.onSpawn, detached: opts.detached });
    }

    at(offsetMs: number): string {
        return new Date(this.t0 + offsetMs).toISOString();
    }

    /** Stack outputs (secrets masked). */
    async outputs(): Promise<Record<string, any>> {
        const r = await this.cmd(["stack", "output", "--json"]);
        assert.equal(r.code, 0, `pulumi stack output: ${r.stderr}`);
        return JSON.parse(r.stdout);
    }

    /** `pulumi stack export`, optionally with secrets decrypted. */
    async exportState(showSecrets = false): Promise<{ text: string; deployment: any }> {
        const r = await this.cmd(["stack", "export", ...(showSecrets ? ["--show-secrets"] : [])]);
        assert.equal(r.code, 0, `pulumi stack export: ${r.stderr}`);
        return { text: r.stdout, deployment: JSON.parse(r.stdout).deployment };
    }

    /** Access key resources in the saved state: id, status, decrypted secret. */
    async stateKeys(): Promise<Array<{ urn: string; id: string; status: string; secret?: string }>> {
        const { deployment } = await this.exportState(true);
        return (deployment.resources ?? [])
            .filter((r: any) => r.type === "aws:iam/accessKey:AccessKey")
            .map((r: any) => {
                const secret = plain(r.outputs?.secret);
                if (secret) this.ctx.secrets.add(secret);
                return { urn: r.urn, id: r.id, status: r.outputs?.status, secret };
            });
    }

    async iamKeys(user: string): Promise<Array<{ id: string; status: string }>> {
        const out = await this.ctx.moto.iam.send(new ListAccessKeysCommand({ UserName: user }));
        return (out.AccessKeyMetadata ?? []).map((k) => ({ id: k.AccessKeyId!, status: String(k.Status) })).sort((a, b) => a.id.localeCompare(b.id));
    }

    variables(project: number): Map<string, StoredVariable> {
        return new Map((this.gitlab.variables.get(`project:${project}`) ?? []).map((v) => [v.key, v]));
    }

    /**
     * Invariant after a successful run: the project holds exactly one key, it exists in IAM and is
     * Active, and its secret is the one the state holds for that key.
     */
    async assertTargetHoldsLiveKey(user: string, project: number): Promise<string> {
        const vars = this.variables(project);
        const id = vars.get("AWS_ACCESS_KEY_ID")?.value;
        assert.ok(id, `project ${project} has no AWS_ACCESS_KEY_ID`);
        const iam = await this.iamKeys(user);
        assert.deepEqual(
            iam.find((k) => k.id === id),
            { id, status: "Active" },
            `the key GitLab holds (${id}) is not Active in IAM: ${JSON.stringify(iam)}`,
        );
        const state = await this.stateKeys();
        const held = state.find((k) => k.id === id);
        assert.ok(held?.secret, `the state has no secret for ${id}`);
        assert.ok(vars.get("AWS_SECRET_ACCESS_KEY")?.value === held.secret, `AWS_SECRET_ACCESS_KEY in project ${project} is not the secret of ${id}`);
        return id;
    }

    /** Stops the fakes and removes the workspace (kept with ENGINE_KEEP=1, for a look at the state). */
    async dispose(): Promise<void> {
        const proxy = this.proxy;
        if (proxy) {
            proxy.closeAllConnections();
            await new Promise<void>((r) => proxy.close(() => r()));
        }
        await this.gitlab.close();
        if (process.env.ENGINE_KEEP) log(`kept ${this.ws.dir}`);
        else this.ws.remove();
    }
}

/** What the proxy does with one request (see {@link blockingProxy}). */
type ProxyAnswer = { status: number; body: unknown } | { swallow: true } | undefined;

/**
 * A loopback HTTP proxy in front of the GitLab fake: first waits for what `holdFor` returns, then
 * answers what `answer(method, path)` returns (a refused project, GitLab failing writes), forwards a
 * `swallow`ed request without ever answering, and forwards everything else.
 */
async function blockingProxy(
    target: string,
    holdFor: (method: string, url: string) => Promise<void> | undefined,
    answer: (method: string, url: string) => ProxyAnswer,
): Promise<{ url: string; server: http.Server }> {
    const upstream = new URL(target);
    const server = http.createServer(async (req, res) => {
        const wait = holdFor(req.method ?? "", req.url ?? "");
        if (wait) await wait.catch(() => {});
        const canned = answer(req.method ?? "", req.url ?? "");
        if (canned && "swallow" in canned) {
            const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => up.resume());
            fwd.on("error", () => {});
            req.pipe(fwd);
            // No answer: the client's own timeout ends the request.
            return;
        }
        if (canned) {
            req.resume();
            res.writeHead(canned.status, { "Content-Type": "application/json" });
            res.end(JSON.stringify(canned.body));
            return;
        }
        const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
        });
        fwd.on("error", () => {
            res.writeHead(502);
            res.end();
        });
        req.pipe(fwd);
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    return { url: `http://127.0.0.1:${port}${upstream.pathname}`, server };
}

/** A secret from `stack export --show-secrets`: `{ <sig>: <secret sig>, plaintext: "\"...\"" }` or a string. */
function plain(value: unknown): string | undefined {
    if (typeof value === "string") return value;
    const v = value as { plaintext?: string; value?: unknown } | undefined;
    if (v?.plaintext !== undefined) {
        const parsed = JSON.parse(v.plaintext);
        return typeof parsed === "string" ? parsed : undefined;
    }
    if (typeof v?.value === "string") return v.value;
    return undefined;
}

function expectOk(r: RunResult, what: string): void {
    assert.equal(r.code, 0, `${what} exited ${r.code}${r.signal ? ` (${r.signal})` : ""}:\n${tail(r.stdout + r.stderr)}`);
}

/** The error lines of a command's output (Pulumi's diagnostics), for failure messages. */
export function errorLines(text: string): string {
    const lines = text.split("\n").filter((l) => /\berror\b/i.test(l) && !/errored/.test(l));
    return [...new Set(lines.map((l) => l.trim()))].slice(0, 3).join(" | ") || tail(text, 5);
}

/** The last lines of a command's output, for failure messages. */
export function tail(text: string, lines = 25): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function step(stack: Stack, set = "deploy"): Promise<string> {
    return (await stack.outputs()).sets?.[set]?.step;
}

/**
 * Scenario 4: `kill -9` of `pulumi up` (the whole process group: CLI, language host, plugins, as
 * when a CI runner dies) during a mint, at `point`:
 * - `key-exists`: IAM has the new key, GitLab has not been written (its writes fail meanwhile);
 * - `between-writes`: GitLab holds the new AWS_ACCESS_KEY_ID but not yet its secret.
 * Then runs on the schedule. With `cancel`, `pulumi cancel` runs first and the runs are plain
 * `pulumi up`: the file backend keeps the killed update's lock (`.pulumi/locks/...`), and the CLI
 * says to remove it with `pulumi cancel`. Without, the runs go through the automation library,
 * which must clear that stale lock itself (rotation/ops/stale-lock.ts).
 * The engine's own handling of the pending CREATE it finds next: it warns and goes on (pulumi/pulumi
 * pkg/resource/deploy/deployment_executor.go, printPendingOperationsWarning); the key the kill left
 * in IAM is not in the state.
 */
function killScenario(id: string, point: "key-exists" | "between-writes", cancel: boolean): Scenario {
    return {
        id,
        title: `kill -9 of the update ${point === "key-exists" ? "after the new key exists" : "between the two GitLab writes"}: the next runs recover${cancel ? " after `pulumi cancel`" : " without manual steps"} (no third key, no LimitExceeded loop)`,
        async run(ctx) {
            const user = `ci-deploy-kill${id}`;
            const project = 400 + scenarios.findIndex((s) => s.id === id);
            const stack = await Stack.create(ctx, `kill${id}`, [{ name: "deploy", user, project }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                stack.fail =
                    point === "key-exists"
                        ? { method: "PUT", status: 503, body: { message: "503 Service Unavailable" } }
                        : { method: "PUT", status: 503, body: { message: "503 Service Unavailable" }, path: /AWS_SECRET_ACCESS_KEY/ };
                let child: ChildProcess | undefined;
                const killed = stack.up(8 * DAY, [], { onSpawn: (c) => (child = c) });
                const reached = async () => {
                    const keys = await stack.iamKeys(user);
                    if (point === "key-exists") return keys.length >= 2;
                    const held = stack.variables(project).get("AWS_ACCESS_KEY_ID")?.value;
                    return held !== undefined && held !== k1;
                };
                const deadline = Date.now() + 180_000;
                while (!(await reached()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
                assert.ok(await reached(), `the update never reached the kill point (${point})`);
                // The CLI starts each plugin in its own process group: kill the whole tree, as a dying runner would.
                for (const pid of [child!.pid!, ...descendants(child!.pid!)]) {
                    try {
                        process.kill(pid, "SIGKILL");
                    } catch {
                        /* already gone */
                    }
                }
                const r = await killed;
                assert.equal(r.signal, "SIGKILL", "pulumi up ended before the kill");
                log(`scenario ${id}: killed pulumi up (${point})`);
                stack.fail = undefined;
                if (cancel) expectOk(await stack.cmd(["cancel", "--yes"]), "pulumi cancel");
                // Runs on the schedule's instants: the program may finish the interrupted mint at once, or
                // first retire the key the kill left behind (it has no secret to push) and mint later.
                // Every run must succeed, keep at most two keys, and leave GitLab holding a live key.
                // Without `pulumi cancel`, the runs go through the automation library (what the
                // `ci-key-rotation rotate` cron job and chatops use): it must clear the killed update's
                // lock by itself (rotation/ops/stale-lock.ts). A plain `pulumi up` cannot.
                const lib = cancel ? undefined : await automationLibrary();
                const staleLockEvents: string[] = [];
                const runAt = async (offset: number): Promise<{ ok: boolean; text: string }> => {
                    if (!lib) {
                        const r = await stack.up(offset);
                        return { ok: r.code === 0, text: r.stdout + r.stderr };
                    }
                    const client = lib.createRotationClient({ openStack: libraryStackOpener(ctx, stack, offset) });
                    try {
                        const report = await client.rotate({
                            stack: stack.name,
                            workDir: stack.ws.projectDir,
                            mode: "scheduled",
                            reason: "scheduled run",
                            requestedBy: "cron",
                            onProgress: (e) => {
                                if (e.kind === "stale-lock") staleLockEvents.push(e.message);
                                if (e.kind === "output") ctx.logs.push(e.text);
                            },
                        });
                        return { ok: true, text: report.warnings.join("\n") };
                    } catch (err) {
                        return { ok: false, text: (err as Error).message };
                    }
                };
                let held = k1;
                for (const offset of [8 * DAY + HOUR, 8 * DAY + 2 * HOUR, 10 * DAY, 12 * DAY, 13 * DAY, 14 * DAY]) {
                    const r = await runAt(offset);
                    const set = r.ok ? (await stack.outputs()).sets?.deploy : undefined;
                    log(`scenario ${id}: run at +${(offset / DAY).toFixed(2)}d ${r.ok ? "succeeded" : "failed"}${set ? `: ${set.step} (${set.reason})` : `: ${errorLines(r.text)}`}`);
                    assert.ok(r.ok, `the run at +${(offset / DAY).toFixed(2)}d after the kill failed:\n${tail(r.text)}`);
                    assert.ok(!/LimitExceeded/.test(r.text), "a run after the kill hit LimitExceeded");
                    if (lib && offset === 8 * DAY + HOUR) {
                        assert.equal(staleLockEvents.length, 1, `the first run after the kill did not clear the stale lock once: ${JSON.stringify(staleLockEvents)}`);
                        assert.match(r.text, /removed the lock of an update that is no longer running/, "the report does not say the stale lock was removed");
                        log(`scenario ${id}: ${staleLockEvents[0]}`);
                    }
                    const keys = await stack.iamKeys(user);
                    assert.ok(keys.length <= 2, `IAM has ${keys.length} keys`);
                    held = await stack.assertTargetHoldsLiveKey(user, project);
                    if (held !== k1) break;
                }
                assert.notEqual(held, k1, "the rotation never completed after the kill (GitLab still holds key 1 at +14d)");
            } finally {
                await stack.dispose();
            }
        },
    };
}

/** Every process below `root` (from /proc), deepest last. */
function descendants(root: number): number[] {
    const children = new Map<number, number[]>();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
        } catch {
            /* exited meanwhile */
        }
    }
    const out: number[] = [];
    const walk = (pid: number) => {
        for (const c of children.get(pid) ?? []) {
            out.push(c);
            walk(c);
        }
    };
    walk(root);
    return out;
}

/** The automation library of the program under test (`ci-key-rotation/automation`). */
async function automationLibrary(): Promise<typeof import("../../rotation/ops/automation")> {
    return import(path.join(programRoot, "rotation", "ops", "automation.ts"));
}

/**
 * A `StackOpener` for the library that drives the rig's `pulumi` with the stack's workspace
 * environment, at t0 + `offsetMs`.
 */
function libraryStackOpener(ctx: Context, stack: Stack, offsetMs: number) {
    return async ({ stack: name, workDir }: { stack: string; workDir: string }) => {
        const { LocalWorkspace, PulumiCommand } = await import("@pulumi/pulumi/automation");
        const pulumiCommand = await PulumiCommand.get({ root: path.dirname(ctx.bins.binDir), skipVersionCheck: true });
        const env = Object.fromEntries(Object.entries({ ...stack.ws.env, CI_KEY_ROTATION_NOW: stack.at(offsetMs) }).filter((e): e is [string, string] => e[1] !== undefined));
        return LocalWorkspace.selectStack({ stackName: name, workDir }, { pulumiCommand, envVars: env });
    };
}

/** Runs the `ci-key-rotation` CLI of the program under test on the stack, on the real clock; logged. */
function cliOf(ctx: Context, stack: Stack) {
    return async (args: string[]): Promise<RunResult> => {
        const r = await run(process.execPath, ["--import", "tsx", path.join(programRoot, "bin", "ci-key-rotation.ts"), ...args, "--stack", stack.name, "--cwd", stack.ws.projectDir], {
            cwd: repoRoot,
            env: stack.ws.env,
            timeoutMs: 600_000,
        });
        ctx.logs.push(r.stdout, r.stderr);
        return r;
    };
}

/**
 * A stand-in for Slack's `response_url`: an https server on 127.0.0.1 with a self-signed
 * certificate (made by `openssl`; the server process trusts it through NODE_EXTRA_CA_CERTS), since
 * the chatops server posts reports only to https URLs.
 */
async function startSlackReceiver(dir: string): Promise<{ url: string; caFile: string; messages: Array<{ path: string; text: string }>; stop(): Promise<void> }> {
    const key = path.join(dir, "slack-key.pem");
    const cert = path.join(dir, "slack-cert.pem");
    const r = await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    assert.equal(r.code, 0, `openssl could not make a certificate: ${r.stderr}`);
    const messages: Array<{ path: string; text: string }> = [];
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            try {
                messages.push({ path: req.url ?? "", text: String(JSON.parse(body).text) });
            } catch {
                messages.push({ path: req.url ?? "", text: body });
            }
            res.writeHead(200);
            res.end("ok");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        url: `https://127.0.0.1:${port}`,
        caFile: cert,
        messages,
        stop: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

/** The rotation from scenario 2, created on demand for scenarios that need a rotated stack. */
async function rotatedStack(ctx: Context): Promise<Stack> {
    if (ctx.rotated) return ctx.rotated;
    const stack = await Stack.create(ctx, "rotated", [{ name: "deploy", user: "ci-deploy-rot", project: 4242 }]);
    ctx.rotated = stack;
    expectOk(await stack.up(0), "first pulumi up");
    return stack;
}

// Run order: 7 checks the logs of every command before it, 10 destroys the stack 2 rotated.
export const scenarios: Scenario[] = [
    {
        id: "1",
        title: "first up on an empty backend writes key 1 everywhere; --expect-no-changes passes right after",
        async run(ctx) {
            const stack = await Stack.create(ctx, "first", [{ name: "deploy", user: "ci-deploy-first", project: 101 }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const iam = await stack.iamKeys("ci-deploy-first");
                assert.equal(iam.length, 1, `IAM has ${iam.length} keys after the first run`);
                const id = await stack.assertTargetHoldsLiveKey("ci-deploy-first", 101);
                assert.equal(id, iam[0].id);
                assert.equal(await step(stack), "mint");
                expectOk(await stack.cmd(["up", "--yes", "--expect-no-changes"], { env: { CI_KEY_ROTATION_NOW: stack.at(HOUR) } }), "pulumi up --expect-no-changes");
                assert.deepEqual(await stack.iamKeys("ci-deploy-first"), iam, "the second run changed IAM");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "2",
        title: "a full rotation across time: mint, mint (push), deactivate, delete",
        async run(ctx) {
            const stack = await rotatedStack(ctx);
            const user = "ci-deploy-rot";
            const k1 = await stack.assertTargetHoldsLiveKey(user, 4242);
            assert.equal(await step(stack), "mint");

            // every P7D: the second key is minted and pushed; both Active through the overlap.
            expectOk(await stack.up(8 * DAY), "up at +8d");
            assert.equal(await step(stack), "mint", "+8d: expected a mint");
            const k2 = await stack.assertTargetHoldsLiveKey(user, 4242);
            assert.notEqual(k2, k1, "the targets still hold key 1");
            assert.deepEqual((await stack.iamKeys(user)).map((k) => k.status), ["Active", "Active"]);

            // overlap PT24H later: key 1 is deactivated, key 2 stays.
            expectOk(await stack.up(10 * DAY), "up at +10d");
            assert.equal(await step(stack), "deactivate", "+10d: expected deactivate");
            const keys = await stack.iamKeys(user);
            assert.deepEqual(keys.find((k) => k.id === k1)?.status, "Inactive");
            assert.deepEqual(keys.find((k) => k.id === k2)?.status, "Active");
            assert.equal(await stack.assertTargetHoldsLiveKey(user, 4242), k2);

            // retireAfter P3D later: key 1 is deleted.
            expectOk(await stack.up(14 * DAY), "up at +14d");
            assert.equal(await step(stack), "delete", "+14d: expected delete");
            assert.deepEqual(await stack.iamKeys(user), [{ id: k2, status: "Active" }]);
            assert.equal(await stack.assertTargetHoldsLiveKey(user, 4242), k2);
        },
    },
    {
        id: "8",
        title: "pulumi preview shows the planned step and changes nothing",
        async run(ctx) {
            const stack = await rotatedStack(ctx);
            const user = "ci-deploy-rot";
            const before = { iam: await stack.iamKeys(user), vars: JSON.stringify([...stack.variables(4242)]), state: (await stack.exportState(false)).text };
            // Far enough ahead that a mint is due.
            const r = await stack.cmd(["preview"], { env: { CI_KEY_ROTATION_NOW: stack.at(40 * DAY) } });
            expectOk(r, "pulumi preview");
            assert.match(r.stdout + r.stderr, /mint/i, "the preview does not name the planned step");
            assert.deepEqual(await stack.iamKeys(user), before.iam, "preview changed IAM");
            assert.equal(JSON.stringify([...stack.variables(4242)]), before.vars, "preview changed GitLab variables");
            assert.equal((await stack.exportState(false)).text, before.state, "preview changed the saved state");
        },
    },
    {
        id: "3",
        title: "a GitLab write failure during a mint: the run fails, state does not advance, CI's key stays Active, the next run completes",
        async run(ctx) {
            const user = "ci-deploy-fail";
            const stack = await Stack.create(ctx, "writefail", [{ name: "deploy", user, project: 303 }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, 303);
                const rotationBefore = JSON.stringify((await stack.outputs()).rotation);
                // GitLab answers every write with 500 (retried by the provider, then fatal), then with 422.
                const faults = [
                    { what: "500", fail: { method: "PUT", status: 500, body: { message: "500 Internal Server Error" } } },
                    { what: "422", fail: { method: "PUT", status: 422, body: { message: { value: ["is invalid"] } } } },
                ];
                for (const [i, f] of faults.entries()) {
                    stack.fail = f.fail;
                    const failed = await stack.up(8 * DAY + i * HOUR);
                    stack.fail = undefined;
                    assert.notEqual(failed.code, 0, `the run with GitLab answering ${f.what} succeeded`);
                    const keys = await stack.iamKeys(user);
                    assertKeptAndRecorded((await stack.outputs()).rotation, rotationBefore, keys, k1, `after a ${f.what}`);
                    assert.equal(keys.find((k) => k.id === k1)?.status, "Active", `the key CI holds was deactivated after a ${f.what}`);
                    assert.equal(stack.variables(303).get("AWS_ACCESS_KEY_ID")?.value, k1, `GitLab lost the key it held after a ${f.what}`);
                    assert.ok(keys.length <= 2, `IAM has ${keys.length} keys after a ${f.what}`);
                }
                expectOk(await stack.up(8 * DAY + 2 * HOUR), "the next pulumi up");
                const k2 = await stack.assertTargetHoldsLiveKey(user, 303);
                assert.notEqual(k2, k1, "the next run did not complete the rotation");
                assert.ok((await stack.iamKeys(user)).length <= 2);
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "3t",
        title: "a GitLab write that times out after GitLab applied it, during a mint: the run fails, the key CI holds stays Active, the next run completes",
        async run(ctx) {
            const user = "ci-deploy-timeout";
            const project = 304;
            const stack = await Stack.create(ctx, "writetimeout", [{ name: "deploy", user, project }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                const rotationBefore = JSON.stringify((await stack.outputs()).rotation);
                // Every variable write reaches GitLab (which stores it) but no answer comes back: the
                // provider's per-request timeout (30 s, providers/gitlab/variable.ts `request`) fires on
                // each of its 5 attempts, and the run fails after about 2.75 minutes.
                stack.swallow = { method: "PUT" };
                const failed = await stack.up(8 * DAY);
                stack.swallow = undefined;
                assert.notEqual(failed.code, 0, "the run whose GitLab writes all timed out succeeded");
                assert.match(failed.stdout + failed.stderr, /no answer within/, "the failure does not say GitLab did not answer");
                const keys = await stack.iamKeys(user);
                assertKeptAndRecorded((await stack.outputs()).rotation, rotationBefore, keys, k1, "after a timed-out write");
                assert.ok(keys.length <= 2, `IAM has ${keys.length} keys after the timeout`);
                assert.equal(keys.find((k) => k.id === k1)?.status, "Active", "key 1 was deactivated after the timeout");
                // Whatever GitLab holds now (the write landed, or not) must be a key that works.
                const held = stack.variables(project).get("AWS_ACCESS_KEY_ID")?.value;
                assert.equal(keys.find((k) => k.id === held)?.status, "Active", `GitLab holds ${held}, which is not Active in IAM: ${JSON.stringify(keys)}`);
                expectOk(await stack.up(8 * DAY + HOUR), "the next pulumi up");
                const k2 = await stack.assertTargetHoldsLiveKey(user, project);
                assert.notEqual(k2, k1, "the next run did not complete the rotation");
                assert.ok((await stack.iamKeys(user)).length <= 2);
            } finally {
                await stack.dispose();
            }
        },
    },
    killScenario("4", "key-exists", false),
    killScenario("4b", "key-exists", true),
    killScenario("4c", "between-writes", true),
    {
        id: "9",
        title: "one set blocked: the other set takes its step; the run exits non-zero naming the blocked set",
        async run(ctx) {
            const stack = await Stack.create(ctx, "blocked", [
                { name: "good", user: "ci-good", project: 901 },
                { name: "bad", user: "ci-bad", project: 902 },
            ]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const good1 = await stack.assertTargetHoldsLiveKey("ci-good", 901);
                const bad1 = await stack.assertTargetHoldsLiveKey("ci-bad", 902);
                // GitLab refuses set "bad"'s project from now on (the token lost its role there).
                stack.block = /\/projects\/902\//;
                const r = await stack.up(8 * DAY);
                assert.notEqual(r.code, 0, "the run with a blocked set exited 0");
                assert.match(r.stdout + r.stderr, /\bbad\b/, "the failure does not name the blocked set");
                const good2 = stack.variables(901).get("AWS_ACCESS_KEY_ID")?.value;
                assert.notEqual(good2, good1, "set good did not take its step");
                assert.equal(stack.variables(902).get("AWS_ACCESS_KEY_ID")?.value, bad1);
                assert.equal((await stack.iamKeys("ci-bad")).find((k) => k.id === bad1)?.status, "Active", "set bad's held key was deactivated");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "5",
        title: "two pulumi up at once on one stack: one wins, the other fails on the lock, no third key",
        async run(ctx) {
            const user = "ci-deploy-race";
            const stack = await Stack.create(ctx, "race", [{ name: "deploy", user, project: 505 }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const [a, b] = await Promise.all([stack.up(8 * DAY), stack.up(8 * DAY)]);
                const codes = [a.code, b.code].sort();
                assert.equal(codes.filter((c) => c === 0).length, 1, `expected exactly one update to succeed, exit codes ${a.code} and ${b.code}`);
                const loser = a.code === 0 ? b : a;
                assert.match(loser.stdout + loser.stderr, /locked|Conflict|another update/i, "the losing update does not say the stack is locked");
                const keys = await stack.iamKeys(user);
                assert.equal(keys.length, 2, `IAM has ${keys.length} keys after two concurrent runs`);
                await stack.assertTargetHoldsLiveKey(user, 505);
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "5l",
        title: "two rotations at once through the automation library: without retry one fails on the lock (stack-locked); with the documented retry both succeed, one after the other",
        async run(ctx) {
            const user = "ci-deploy-racelib";
            const project = 506;
            const stack = await Stack.create(ctx, "racelib", [{ name: "deploy", user, project }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                const lib = await automationLibrary();
                // One client per "process": a client serialises its own rotations of a stack, so two
                // clients are what two cron jobs, or cron and chatops, are.
                const client = (offsetMs: number, lockRetry: { attempts: number; initialDelayMs: number; maxDelayMs: number }) =>
                    lib.createRotationClient({ openStack: libraryStackOpener(ctx, stack, offsetMs), lockRetry });
                const rotate = (c: ReturnType<typeof client>, events: string[], waits: number[] = []) =>
                    c.rotate({
                        stack: stack.name,
                        workDir: stack.ws.projectDir,
                        mode: "scheduled",
                        reason: "engine-suite",
                        requestedBy: "engine",
                        onProgress: (e) => {
                            events.push(e.kind);
                            if (e.kind === "locked") waits.push(e.retryInMs);
                        },
                    });

                // No retry: exactly one wins, the other fails on the lock.
                const noRetry = { attempts: 1, initialDelayMs: 1000, maxDelayMs: 1000 };
                const raceEvents: string[] = [];
                const both = await Promise.allSettled([rotate(client(8 * DAY, noRetry), raceEvents), rotate(client(8 * DAY, noRetry), raceEvents)]);
                assert.ok(!raceEvents.includes("stale-lock"), "the winner's live lock was taken for a stale one");
                const won = both.filter((r) => r.status === "fulfilled");
                const lost = both.filter((r): r is PromiseRejectedResult => r.status === "rejected");
                assert.equal(won.length, 1, `expected exactly one rotation to succeed: ${both.map((r) => (r.status === "rejected" ? String(r.reason?.message).split("\n")[0] : "ok")).join(" | ")}`);
                assert.equal(lost[0].reason?.kind, "stack-locked", `the losing rotation failed with ${lost[0].reason?.kind}: ${lost[0].reason?.message}`);
                assert.match(lost[0].reason.message, /locked by another update/);
                assert.equal((await stack.iamKeys(user)).length, 2, "IAM does not hold two keys after the mint");
                const k2 = await stack.assertTargetHoldsLiveKey(user, project);
                assert.notEqual(k2, k1);

                // The documented retry (attempts, doubling delays): both succeed, the second after the
                // first released the lock. The deactivation is due at +10d; one run takes it.
                const retry = { attempts: 6, initialDelayMs: 2000, maxDelayMs: 10_000 };
                const events: string[][] = [[], []];
                const waits: number[][] = [[], []];
                const [a, b] = await Promise.allSettled([rotate(client(10 * DAY, retry), events[0], waits[0]), rotate(client(10 * DAY, retry), events[1], waits[1])]);
                for (const r of [a, b]) assert.equal(r.status, "fulfilled", `a rotation with lock retry failed: ${r.status === "rejected" ? r.reason?.message : ""}`);
                assert.ok(waits.some((w) => w.length > 0), "neither rotation waited for the lock (the two did not overlap, or the retry did not report it)");
                // The waits double from initialDelayMs up to maxDelayMs (LockRetry's documented schedule).
                for (const w of waits) assert.deepEqual(w, w.map((_, i) => Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** i)), `lock waits ${JSON.stringify(w)}`);
                assert.ok(!events.flat().includes("stale-lock"), "a live lock was taken for a stale one");
                const steps = [a, b].map((r) => (r as PromiseFulfilledResult<any>).value.sets[0]?.steps.map((s: { step: string }) => s.step).join(",") ?? "");
                assert.deepEqual(steps.sort(), ["", "deactivate"], `expected one deactivation and one run with nothing to do, got ${JSON.stringify(steps)}`);
                const keys = await stack.iamKeys(user);
                assert.equal(keys.find((k) => k.id === k1)?.status, "Inactive");
                assert.equal(await stack.assertTargetHoldsLiveKey(user, project), k2);
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "6",
        title: "ci-key-rotation rotate --emergency and status drive real updates through the Automation API",
        async run(ctx) {
            const user = "ci-deploy-emergency";
            const stack = await Stack.create(ctx, "emergency", [{ name: "deploy", user, project: 606 }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, 606);
                const cli = (args: string[]) =>
                    run(process.execPath, ["--import", "tsx", path.join(programRoot, "bin", "ci-key-rotation.ts"), ...args, "--stack", stack.name, "--cwd", stack.ws.projectDir], {
                        cwd: repoRoot,
                        // The real clock: the CLI runs several updates, and one instant allows one step per set.
                        env: stack.ws.env,
                        timeoutMs: 600_000,
                    });
                const rotate = await cli(["rotate", "--emergency", "--yes", "--reason", "engine-suite"]);
                ctx.logs.push(rotate.stdout, rotate.stderr);
                expectOk(rotate, "ci-key-rotation rotate --emergency");
                const keys = await stack.iamKeys(user);
                assert.equal(keys.length, 1, `IAM has ${keys.length} keys after an emergency rotation: ${JSON.stringify(keys)}`);
                assert.notEqual(keys[0].id, k1, "the emergency rotation kept the old key");
                assert.equal(await stack.assertTargetHoldsLiveKey(user, 606), keys[0].id);
                const status = await cli(["status", "--json"]);
                ctx.logs.push(status.stdout, status.stderr);
                expectOk(status, "ci-key-rotation status --json");
                assert.ok(status.stdout.includes(keys[0].id), "status does not show the current key");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "6r",
        title: "ci-key-rotation rotate --revoke: the old key is Inactive in the run that mints, before (and without waiting for) the push; then status",
        async run(ctx) {
            const user = "ci-deploy-revoke";
            const project = 607;
            const stack = await Stack.create(ctx, "revoke", [{ name: "deploy", user, project }]);
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                // Hold every GitLab variable write until key 1 is no longer Active in IAM (or 120 s).
                // If the deactivation waited for the push, the hold would time out with key 1 Active.
                let gate: Promise<void> | undefined;
                let k1AtFirstPush: string | undefined;
                let released = false;
                stack.hold = (method, url) => {
                    if (released || !(method === "PUT" || method === "POST") || !/\/variables/.test(url)) return undefined;
                    gate ??= (async () => {
                        const deadline = Date.now() + 120_000;
                        for (;;) {
                            k1AtFirstPush = (await stack.iamKeys(user)).find((k) => k.id === k1)?.status ?? "deleted";
                            if (k1AtFirstPush !== "Active" || Date.now() > deadline) break;
                            await new Promise((r) => setTimeout(r, 200));
                        }
                        released = true;
                    })();
                    return gate;
                };
                const rotate = await cliOf(ctx, stack)(["rotate", "--revoke", "--yes", "--json", "--reason", "engine-suite-leak"]);
                stack.hold = undefined;
                expectOk(rotate, "ci-key-rotation rotate --revoke");
                assert.ok(gate, "the revoke wrote nothing to GitLab");
                assert.equal(k1AtFirstPush, "Inactive", `key 1 was ${k1AtFirstPush} while the first push of the new key waited: the revoke's deactivation waits for the push`);
                const report = JSON.parse(rotate.stdout);
                assert.equal(report.sets[0]?.steps[0]?.step, "revoke", `the first run's step is ${report.sets[0]?.steps[0]?.step}, not revoke`);
                const keys = await stack.iamKeys(user);
                assert.equal(keys.length, 1, `IAM has ${keys.length} keys after the revoke: ${JSON.stringify(keys)}`);
                assert.notEqual(keys[0].id, k1, "the revoke kept the leaked key");
                assert.equal(await stack.assertTargetHoldsLiveKey(user, project), keys[0].id);
                const status = await cliOf(ctx, stack)(["status", "--json"]);
                expectOk(status, "ci-key-rotation status --json");
                assert.ok(status.stdout.includes(keys[0].id), "status does not show the current key");
                assert.ok(!status.stdout.includes(k1), "status still shows the revoked key");
            } finally {
                await stack.dispose();
            }
        },
    },
    {
        id: "6s",
        title: "serve: two signed Slack requests back to back (request, then emergency) end in real updates, never two at once; reports reach the response_url",
        async run(ctx) {
            const user = "ci-deploy-chatops";
            const project = 608;
            const stack = await Stack.create(ctx, "chatops", [{ name: "deploy", user, project }]);
            const slack = await startSlackReceiver(stack.ws.dir);
            let serve: ChildProcess | undefined;
            let serveLog = "";
            try {
                expectOk(await stack.up(0), "first pulumi up");
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                const signingSecret = "engine-suite-signing-secret";
                const port = await freePort();
                const audit = path.join(stack.ws.dir, "audit.jsonl");
                const config = path.join(stack.ws.dir, "chatops.json");
                fs.writeFileSync(config, JSON.stringify({ allowedUsers: ["U0ENGINE"], allowedChannels: ["C0ENGINE"], stacks: [stack.name], responseUrlHosts: ["127.0.0.1"] }));
                serve = spawn(process.execPath, ["--import", "tsx", path.join(programRoot, "bin", "ci-key-rotation.ts"), "serve", "--port", String(port), "--config", config, "--audit-log", audit, "--cwd", stack.ws.projectDir], {
                    cwd: repoRoot,
                    // The real clock, as a server has; the report is posted over https to the receiver.
                    env: { ...stack.ws.env, SLACK_SIGNING_SECRET: signingSecret, NODE_EXTRA_CA_CERTS: slack.caFile },
                    stdio: ["ignore", "pipe", "pipe"],
                });
                serve.stdout!.on("data", (d) => (serveLog += d));
                serve.stderr!.on("data", (d) => (serveLog += d));
                const deadline = Date.now() + 60_000;
                while (!/listening on/.test(serveLog)) {
                    assert.ok(Date.now() < deadline && serve.exitCode === null, `serve did not start:\n${tail(serveLog)}`);
                    await new Promise((r) => setTimeout(r, 100));
                }
                const post = async (text: string) => {
                    const body = new URLSearchParams({
                        command: "/rotate",
                        text,
                        user_id: "U0ENGINE",
                        user_name: "engine",
                        channel_id: "C0ENGINE",
                        response_url: `${slack.url}/commands/${encodeURIComponent(text)}`,
                    }).toString();
                    const timestamp = String(Math.floor(Date.now() / 1000));
                    const signature = `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
                    const res = await fetch(`http://127.0.0.1:${port}/slack/commands`, {
                        method: "POST",
                        headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp, "x-slack-signature": signature },
                        body,
                    });
                    return { status: res.status, text: await res.text() };
                };
                // Back to back, without waiting for the first rotation.
                const first = await post(`${stack.name} request engine-suite`);
                const second = await post(`${stack.name} emergency engine-suite`);
                assert.equal(first.status, 200, `the request was refused: ${first.text}`);
                assert.equal(second.status, 200, `the emergency was refused: ${second.text}`);
                // Both reports, or 8 minutes.
                const until = Date.now() + 480_000;
                while (slack.messages.length < 2 && Date.now() < until && serve.exitCode === null) await new Promise((r) => setTimeout(r, 500));
                ctx.logs.push(serveLog, ...slack.messages.map((m) => m.text));
                assert.equal(slack.messages.length, 2, `expected two reports at the response_url, got ${slack.messages.length}:\n${tail(serveLog)}`);
                for (const m of slack.messages) assert.ok(!/failed|locked/i.test(m.text), `a report says it failed:\n${m.text}`);
                const results = fs
                    .readFileSync(audit, "utf8")
                    .trim()
                    .split("\n")
                    .map((l) => JSON.parse(l))
                    .filter((r) => r.event === "result");
                assert.deepEqual(results.map((r) => [r.mode, r.outcome, r.delivered]).sort(), [["emergency", "done", true], ["request", "waiting", true]], `audit results: ${JSON.stringify(results)}`);
                // Never two updates at once: the stack's update history has no overlap.
                const history = await stack.cmd(["stack", "history", "--json"]);
                expectOk(history, "pulumi stack history");
                const updates = (JSON.parse(history.stdout) as Array<{ kind: string; startTime: string; endTime: string }>)
                    .filter((u) => u.kind === "update")
                    .map((u) => ({ start: Date.parse(u.startTime), end: Date.parse(u.endTime) }))
                    .sort((x, y) => x.start - y.start);
                assert.ok(updates.length >= 3, `only ${updates.length} updates in the history`);
                for (let i = 1; i < updates.length; i++) {
                    assert.ok(updates[i].start >= updates[i - 1].end, `two updates overlapped: ${JSON.stringify(updates[i - 1])} and ${JSON.stringify(updates[i])}`);
                }
                assert.ok(!/locked/i.test(serveLog), `serve met a locked stack:\n${tail(serveLog)}`);
                // The emergency ran to the end: one key, not key 1, and GitLab holds it.
                const keys = await stack.iamKeys(user);
                assert.equal(keys.length, 1, `IAM has ${keys.length} keys after the emergency: ${JSON.stringify(keys)}`);
                assert.notEqual(keys[0].id, k1);
                assert.equal(await stack.assertTargetHoldsLiveKey(user, project), keys[0].id);
            } finally {
                if (serve && serve.exitCode === null) {
                    const exited = new Promise((r) => serve!.once("exit", r));
                    serve.kill("SIGTERM");
                    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
                    if (serve.exitCode === null) serve.kill("SIGKILL");
                }
                await slack.stop();
                await stack.dispose();
            }
        },
    },
    {
        id: "7",
        title: "no secret access key in plaintext in stack export or any log",
        async run(ctx) {
            const stack = await rotatedStack(ctx);
            await stack.stateKeys();
            const { text } = await stack.exportState(false);
            assert.ok(ctx.secrets.size > 0, "no secret was collected from the states");
            for (const secret of ctx.secrets) {
                assert.ok(!text.includes(secret), "pulumi stack export shows a secret access key in plaintext");
                const at = ctx.logs.findIndex((l) => l.includes(secret));
                assert.equal(at, -1, `a command's output shows a secret access key in plaintext:\n${tail(ctx.logs[at] ?? "", 10).split(secret).join("[secret]")}`);
            }
            // The file backend's checkpoint on disk too.
            const { readdirSync, readFileSync, statSync } = await import("node:fs");
            const { join } = await import("node:path");
            const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
            for (const file of walk(join(stack.ws.dir, "state"))) {
                const body = readFileSync(file, "utf8");
                for (const secret of ctx.secrets) assert.ok(!body.includes(secret), `${file} holds a secret access key in plaintext`);
            }
        },
    },
    {
        id: "10",
        title: "pulumi destroy removes the user, the keys and every variable written",
        async run(ctx) {
            const stack = await rotatedStack(ctx);
            try {
                assert.ok((await stack.iamKeys("ci-deploy-rot")).length > 0, "nothing to destroy: the stack never got its keys");
                assert.ok(stack.variables(4242).size > 0, "nothing to destroy: GitLab holds no variables");
                expectOk(await stack.cmd(["destroy", "--yes"], { env: { CI_KEY_ROTATION_NOW: stack.at(15 * DAY) } }), "pulumi destroy");
                const users = await ctx.moto.iam.send(new ListUsersCommand({}));
                assert.ok(!(users.Users ?? []).some((u) => u.UserName === "ci-deploy-rot"), "the IAM user survived destroy");
                assert.deepEqual([...stack.variables(4242).keys()], [], "GitLab variables survived destroy");
            } finally {
                ctx.rotated = undefined;
                await stack.dispose();
            }
        },
    },
    {
        id: "11",
        title: "model vs engine: the rehearsal and the real engine agree run by run (outcome, step, phase, key statuses, the key GitLab holds)",
        async run(ctx) {
            const user = "ci-deploy-model";
            const project = 1101;
            const extra = { "ci-key-rotation:cadence": "PT12H" };
            const stack = await Stack.create(ctx, "model", [{ name: "deploy", user, project }], extra);
            try {
                // The same config as Pulumi hands it to the program: structured values as JSON text.
                const config = {
                    "aws:region": "us-east-1",
                    ...extra,
                    "ci-key-rotation:credentials": JSON.stringify([{ name: "deploy", user: { name: user }, targets: [{ type: "gitlab-project", project, protected: false }] }]),
                };
                const { simulate } = (await import(path.join(programRoot, "rotation", "rehearsal", "simulation.ts"))) as typeof import("../../rotation/rehearsal/simulation");
                // Daily runs to +11d: mint, mint, deactivate, delete. Not further: moto stamps keys with
                // the real time, so a later mint would be due from a creation date the model does not share.
                const model = await simulate({ config, stack: "model", start: stack.t0, durationMs: 11 * DAY + HOUR, cadenceMs: DAY, seed: 11 });
                const view = (s: { step?: string; phase?: string; generation?: number; keys?: Array<{ generation: number; status: string; accessKeyId: string }> }, heldId?: string) => ({
                    step: s.step,
                    phase: s.phase,
                    generation: s.generation,
                    keys: (s.keys ?? []).map((k) => `${k.generation}:${k.status}`).join(","),
                    held: (s.keys ?? []).find((k) => k.accessKeyId === heldId)?.generation,
                });
                const differences: string[] = [];
                for (const run of model.runs) {
                    const r = await stack.up(Date.parse(run.at) - stack.t0);
                    const engineOk = r.code === 0;
                    const engineSet = engineOk ? (await stack.outputs()).sets?.deploy : undefined;
                    const expected = { ok: run.ok, ...view(run.sets.deploy ?? {}, run.sets.deploy?.targetKey) };
                    const actual = { ok: engineOk, ...(engineSet ? view(engineSet, stack.variables(project).get("AWS_ACCESS_KEY_ID")?.value) : {}) };
                    if (!engineOk || !run.ok) {
                        if (engineOk !== run.ok) differences.push(`run ${run.index} at ${run.at}: model ${run.ok ? "ok" : `failed (${run.error})`}, engine ${engineOk ? "ok" : `failed: ${errorLines(r.stdout + r.stderr)}`}`);
                        continue;
                    }
                    if (JSON.stringify(expected) !== JSON.stringify(actual)) differences.push(`run ${run.index} at ${run.at}: model ${JSON.stringify(expected)}, engine ${JSON.stringify(actual)}`);
                }
                assert.deepEqual(differences, [], `the rehearsal and the engine differ:\n${differences.join("\n")}`);
            } finally {
                await stack.dispose();
            }
        },
    },
];

/**
 * After a run whose target write failed: the set's entry and `asOf` are the previous run's, and
 * `recorded` lists exactly the key the failed run created (the engine saved it with its secret
 * before the write failed), so the next run finishes the mint with it.
 */
function assertKeptAndRecorded(rotation: any, before: string, keys: { id: string }[], held: string, when: string): void {
    const previous = JSON.parse(before);
    assert.deepEqual(rotation.sets, previous.sets, `the saved rotation state advanced ${when}`);
    assert.equal(rotation.asOf, previous.asOf, `asOf moved ${when}`);
    const created = keys.filter((k) => k.id !== held).map((k) => k.id);
    assert.deepEqual(rotation.recorded, { deploy: created }, `the failed run's key is not recorded ${when}`);
}
