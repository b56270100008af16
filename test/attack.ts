/**
 * A bounded re-run of the cheap attack classes of issue 10 against the chatops server on
 * 127.0.0.1 and the CLI: unsigned floods, replays, stalled and oversized requests, mistyped
 * modes, a failing audit log, shutdown with stalled clients, and `--port ''`. Every class is
 * bounded in count and time. Prints, per class: tried, handled cleanly, failures; exits 1 if
 * any failed. Run: `node --import tsx test/attack.ts`.
 */
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRotationClient } from "../rotation/ops/automation";
import { createChatopsServer, type AuditRecord, type ChatopsOptions } from "../rotation/ops/chatops";
import { slackSignature } from "../rotation/ops/slack";
import { FakeClock, FakeStack, fakeOpener } from "./support/fake-stack";

const secret = "attack-run-signing-secret-0123456789";
const results: { name: string; tried: number; clean: number; failures: string[] }[] = [];

async function server(overrides: Partial<ChatopsOptions> = {}) {
    const clock = new FakeClock(Date.now());
    const stack = new FakeStack({ clock });
    await stack.cron();
    const audit: AuditRecord[] = [];
    const chatops = createChatopsServer({
        signingSecret: secret,
        allowedUsers: ["U0001"],
        allowedChannels: ["C0001"],
        workDir: "/project",
        client: createRotationClient({ openStack: fakeOpener({ prod: stack }), sleep: async () => {} }),
        audit: async (r) => void audit.push(r),
        postResponse: async () => {},
        requestTimeoutMs: 1_000,
        ...overrides,
    });
    const { port } = await chatops.listen(0, "127.0.0.1");
    return { chatops, port, stack, audit };
}

function form(text: string, extra = ""): string {
    return new URLSearchParams({ user_id: "U0001", user_name: "alice", channel_id: "C0001", command: "/rotate", response_url: "https://hooks.slack.com/commands/T1/2/x", text, extra }).toString();
}

function post(port: number, body: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, method: "POST", path: "/slack/commands", headers: { "content-type": "application/x-www-form-urlencoded", ...headers } }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.end(body);
    });
}

function signed(body: string, timestamp = String(Math.floor(Date.now() / 1000))): Record<string, string> {
    return { "x-slack-request-timestamp": timestamp, "x-slack-signature": slackSignature(secret, timestamp, body) };
}

function socketClosedWithin(socket: Socket, ms: number): Promise<{ closed: boolean; text: string }> {
    return new Promise((resolve) => {
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (c: string) => (text += c));
        socket.on("error", () => {});
        const timer = setTimeout(() => {
            socket.destroy();
            resolve({ closed: false, text });
        }, ms);
        socket.on("close", () => {
            clearTimeout(timer);
            resolve({ closed: true, text });
        });
    });
}

function open(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
        const s = connect(port, "127.0.0.1", () => resolve(s));
        s.on("error", reject);
    });
}

async function record(name: string, tried: number, check: (fail: (why: string) => void) => Promise<number>): Promise<void> {
    const failures: string[] = [];
    const started = Date.now();
    const clean = await check((why) => failures.push(why));
    results.push({ name: `${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`, tried, clean, failures });
}

async function main(): Promise<void> {
    await record("unsigned flood", 2_000, async (fail) => {
        const { chatops, port, audit, stack } = await server();
        let clean = 0;
        const firstMinute = Math.floor(Date.now() / 60_000);
        for (let batch = 0; batch < 100; batch++) {
            const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => post(port, form("prod emergency"), { "x-slack-request-timestamp": String(Math.floor(Date.now() / 1000)), "x-slack-signature": `v0=${String(batch * 20 + i).padStart(64, "0")}` })));
            clean += statuses.filter((s) => s === 401).length;
        }
        await chatops.close();
        // At most 10 lines and one count per minute the flood touched.
        const minutes = Math.floor(Date.now() / 60_000) - firstMinute + 1;
        if (audit.length > 11 * minutes) fail(`audit grew to ${audit.length} lines in ${minutes} minute(s)`);
        if (stack.ups.length > 0) fail("a rotation ran");
        return clean;
    });

    await record("replayed signed requests", 250, async (fail) => {
        const { chatops, port, stack } = await server({ cooldownMs: 0 });
        let clean = 0;
        for (let i = 0; i < 50; i++) {
            const body = form(i === 0 ? "prod emergency replayed" : i % 2 ? "status prod" : "help", `n${i}`);
            const headers = signed(body);
            if ((await post(port, body, headers)) === 200) clean++;
            else fail(`first request ${i} refused`);
            for (let r = 0; r < 4; r++) if ((await post(port, body, headers)) === 409) clean++;
        }
        // The emergency ran once (three ups: mint, deactivate, delete); its replays ran nothing.
        await chatops.idle();
        if (stack.ups.length !== 3) fail(`${stack.ups.length} ups for one emergency and its replays`);
        await chatops.close();
        return clean;
    });

    await record("stalled connections", 60, async (fail) => {
        const { chatops, port } = await server();
        const sockets = await Promise.all(Array.from({ length: 60 }, () => open(port)));
        sockets.forEach((s, i) => {
            if (i % 3 === 1) s.write("POST /slack/commands HTTP/1.1\r\nHost: x\r\n");
            if (i % 3 === 2) s.write("POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\ntext=");
        });
        const closed = await Promise.all(sockets.map((s) => socketClosedWithin(s, 3_000)));
        await chatops.close();
        const open_ = closed.filter((c) => !c.closed).length;
        if (open_ > 0) fail(`${open_} sockets still open after 3 s (timeout 1 s)`);
        return closed.filter((c) => c.closed).length;
    });

    await record("oversized bodies", 40, async (fail) => {
        const { chatops, port } = await server({ maxBodyBytes: 16 * 1024 });
        let clean = 0;
        await Promise.all(
            Array.from({ length: 40 }, async (_, i) => {
                const s = await open(port);
                const declared = i % 2 === 0 ? "Content-Length: 10000000\r\n" : "Transfer-Encoding: chunked\r\n";
                s.write(`POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n${declared}\r\n`);
                const trickle = setInterval(() => {
                    if (!s.writable) return;
                    const chunk = "x".repeat(8192);
                    s.write(i % 2 === 0 ? chunk : `${chunk.length.toString(16)}\r\n${chunk}\r\n`);
                }, 20);
                const r = await socketClosedWithin(s, 3_000);
                clearInterval(trickle);
                if (r.closed && /^HTTP\/1\.1 413 /.test(r.text)) clean++;
                else fail(`request ${i}: ${r.closed ? "closed" : "open"} with ${JSON.stringify(r.text.slice(0, 20))}`);
            }),
        );
        await chatops.close();
        return clean;
    });

    await record("mistyped modes and stray words", 60, async (fail) => {
        const { chatops, port, stack } = await server();
        const words = ["emergancy", "revok", "emergency!", "now", "please", "EMERGENCYY", "revoke-now", "req", "urgent", "rotate"];
        let clean = 0;
        for (let i = 0; i < 60; i++) {
            const text = i % 6 === 5 ? `${words[i % words.length]} prod` : `prod ${words[i % words.length]} reason ${i}`;
            const body = form(text, `m${i}`);
            const status = await post(port, body, signed(body));
            if (status === 400) clean++;
            else fail(`"${text}" answered ${status}`);
        }
        await chatops.idle();
        if (stack.ups.length > 0) fail(`${stack.ups.length} ups ran`);
        await chatops.close();
        return clean;
    });

    await record("failing audit log", 30, async (fail) => {
        const { chatops, port, stack } = await server({
            audit: async (r) => {
                if (r.outcome === "accepted") throw new Error("EIO");
            },
        });
        let clean = 0;
        for (let i = 0; i < 30; i++) {
            const body = form(["prod emergency", "prod revoke", "status prod"][i % 3], `a${i}`);
            if ((await post(port, body, signed(body))) === 503) clean++;
        }
        await chatops.idle();
        if (stack.ups.length > 0 || stack.calls.length > 0) fail("acted without an audit line");
        await chatops.close();
        return clean;
    });

    await record("serve shutdown with stalled clients (real CLI)", 1, async (fail) => {
        const dir = await mkdtemp(join(tmpdir(), "ckr-attack-"));
        await writeFile(join(dir, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
        const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "..", "bin", "ci-key-rotation.ts"), "serve", "--port", "0", "--cwd", dir], {
            cwd: join(__dirname, ".."),
            env: { ...process.env, SLACK_SIGNING_SECRET: secret, CI_KEY_ROTATION_ALLOWED_USERS: "U0001", CI_KEY_ROTATION_ALLOWED_CHANNELS: "C0001" },
            stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        const port = await new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("serve did not start")), 20_000);
            child.stderr.setEncoding("utf8").on("data", (c: string) => {
                stderr += c;
                const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
                if (m) {
                    clearTimeout(timer);
                    resolve(Number(m[1]));
                }
            });
        });
        const sockets = await Promise.all(Array.from({ length: 20 }, () => open(port)));
        sockets.forEach((s) => s.write("POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntext="));
        sockets.forEach((s) => s.on("error", () => {}));
        await new Promise((r) => setTimeout(r, 200));
        const started = Date.now();
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
        clearTimeout(killer);
        sockets.forEach((s) => s.destroy());
        const took = Date.now() - started;
        if (code !== 0 || took > 3_000) {
            fail(`exit ${code} after ${took} ms`);
            return 0;
        }
        return 1;
    });

    await record("--port '' and other non-ports (real CLI)", 4, async (fail) => {
        let clean = 0;
        for (const port of ["", " ", "1e3", "0x50"]) {
            const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "..", "bin", "ci-key-rotation.ts"), "serve", "--port", port], {
                cwd: join(__dirname, ".."),
                env: { ...process.env, SLACK_SIGNING_SECRET: secret, CI_KEY_ROTATION_ALLOWED_USERS: "U0001", CI_KEY_ROTATION_ALLOWED_CHANNELS: "C0001" },
                stdio: "ignore",
            });
            const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
            const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
            clearTimeout(killer);
            if (code === 2) clean++;
            else fail(`--port ${JSON.stringify(port)} exited ${code}`);
        }
        return clean;
    });

    let failed = 0;
    console.log(`${"class".padEnd(56)} ${"tried".padStart(6)} ${"clean".padStart(6)} failures`);
    for (const r of results) {
        failed += r.failures.length;
        console.log(`${r.name.padEnd(56)} ${String(r.tried).padStart(6)} ${String(r.clean).padStart(6)} ${r.failures.length}${r.failures.length ? `  (${r.failures.slice(0, 3).join("; ")})` : ""}`);
    }
    const tried = results.reduce((n, r) => n + r.tried, 0);
    const clean = results.reduce((n, r) => n + r.clean, 0);
    console.log(`${"total".padEnd(56)} ${String(tried).padStart(6)} ${String(clean).padStart(6)} ${failed}`);
    process.exitCode = failed > 0 || clean !== tried ? 1 : 0;
}

void main();
