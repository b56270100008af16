import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { createRotationClient, Interrupt } from "../rotation/ops/automation";
import { createChatopsServer, jsonLinesAudit, type AuditRecord, type ChatopsOptions, type ChatopsServer, type SlackMessage } from "../rotation/ops/chatops";
import { parseSlashCommand, slackSignature, verifySlackSignature } from "../rotation/ops/slack";
import { FakeClock, FakeStack, fakeOpener } from "./support/fake-stack";

const secret = "8f742231b10e8888abcd99yyyzzz85a5";
const responseUrl = "https://hooks.slack.com/commands/T0001/1234/abcdefSECRETPATH";

let running: ChatopsServer | undefined;
afterEach(async () => {
    await running?.close();
    running = undefined;
});

async function start(overrides: Partial<ChatopsOptions> = {}, stacks: string[] = ["prod"]) {
    const clock = new FakeClock();
    const fakes: Record<string, FakeStack> = {};
    for (const name of stacks) {
        fakes[name] = new FakeStack({ clock });
        await fakes[name].cron();
    }
    clock.advance("PT1H");
    const client = createRotationClient({ openStack: fakeOpener(fakes), now: clock.now, sleep: async () => {} });
    const audit: AuditRecord[] = [];
    const posted: { url: string; message: SlackMessage }[] = [];
    const chatops = createChatopsServer({
        signingSecret: secret,
        allowedUsers: ["U0001"],
        allowedChannels: ["C0001"],
        workDir: "/project",
        client,
        audit: async (r) => void audit.push(r),
        postResponse: async (url, message) => void posted.push({ url, message }),
        now: () => clock.ms,
        ...overrides,
    });
    running = chatops;
    const { port } = await chatops.listen(0, "127.0.0.1");
    return { clock, fakes, stack: fakes[stacks[0]], chatops, port, audit, posted };
}

function form(fields: Record<string, string>): string {
    return new URLSearchParams({ token: "legacy-verification-token", team_id: "T0001", user_name: "alice", command: "/rotate", response_url: responseUrl, user_id: "U0001", channel_id: "C0001", ...fields }).toString();
}

function rawSocket(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => resolve(socket));
        socket.on("error", reject);
    });
}

/** Resolves with what the server sent once it closes the socket; rejects after `withinMs`. */
function closed(socket: Socket, withinMs: number): Promise<{ text: string }> {
    return new Promise((resolve, reject) => {
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (c: string) => (text += c));
        socket.on("error", () => {}); // a reset after the answer is a close too
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`the server kept the socket open for ${withinMs} ms (received ${JSON.stringify(text.slice(0, 60))})`));
        }, withinMs);
        socket.on("close", () => {
            clearTimeout(timer);
            resolve({ text });
        });
    });
}

interface Sent {
    status: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
}

function send(port: number, body: string, options: { timestamp?: number; signature?: string; contentType?: string; path?: string; nowMs: number; chunked?: boolean }): Promise<Sent> {
    const timestamp = String(options.timestamp ?? Math.floor(options.nowMs / 1000));
    const headers: Record<string, string> = {
        "content-type": options.contentType ?? "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": options.signature ?? slackSignature(secret, timestamp, body),
    };
    return new Promise((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, method: "POST", path: options.path ?? "/slack/commands", headers }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
        });
        req.on("error", reject);
        if (options.chunked) {
            // No Content-Length: the server only learns the size while reading.
            for (let i = 0; i < body.length; i += 500) req.write(body.slice(i, i + 500));
            req.end();
        } else {
            req.end(body);
        }
    });
}

/** No audit line may hold the signing secret, the response URL or Slack's legacy token. */
function assertNoSecrets(audit: AuditRecord[]) {
    const text = JSON.stringify(audit);
    for (const s of [secret, "SECRETPATH", "legacy-verification-token", "v0="]) assert.ok(!text.includes(s), `audit holds ${s}`);
}

describe("Slack signature", () => {
    const body = Buffer.from("text=prod");
    const now = 1_800_000_000;
    const sig = slackSignature(secret, String(now), body);
    const check = (o: Partial<Parameters<typeof verifySlackSignature>[0]>) =>
        verifySlackSignature({ signingSecret: secret, timestamp: String(now), signature: sig, rawBody: body, nowSeconds: now, ...o });

    it("accepts Slack's signature within five minutes either way", () => {
        assert.deepEqual(check({}), { ok: true });
        assert.deepEqual(check({ nowSeconds: now + 300 }), { ok: true });
        assert.deepEqual(check({ nowSeconds: now - 300 }), { ok: true });
    });

    it("refuses a changed body, a wrong secret, a truncated signature, and old or future timestamps", () => {
        assert.deepEqual(check({ rawBody: Buffer.from("text=prod emergency") }), { ok: false, reason: "bad signature" });
        assert.deepEqual(check({ signingSecret: "other" }), { ok: false, reason: "bad signature" });
        assert.deepEqual(check({ signature: sig.slice(0, -1) }), { ok: false, reason: "bad signature" });
        assert.deepEqual(check({ nowSeconds: now + 301 }), { ok: false, reason: "request timestamp too old" });
        assert.deepEqual(check({ nowSeconds: now - 301 }), { ok: false, reason: "request timestamp in the future" });
        assert.deepEqual(check({ timestamp: "12abc" }), { ok: false, reason: "malformed request timestamp" });
        assert.deepEqual(check({ signature: undefined }), { ok: false, reason: "missing Slack signature headers" });
    });
});

describe("/rotate grammar", () => {
    it("parses requests, emergencies, revocations and status", () => {
        assert.deepEqual(parseSlashCommand("prod"), { kind: "rotate", stack: "prod", mode: "request", reason: "" });
        assert.deepEqual(parseSlashCommand("prod request routine check"), { kind: "rotate", stack: "prod", mode: "request", reason: "routine check" });
        assert.deepEqual(parseSlashCommand(" prod  EMERGENCY  key in  logs "), { kind: "rotate", stack: "prod", mode: "emergency", reason: "key in logs" });
        assert.deepEqual(parseSlashCommand("prod revoke"), { kind: "rotate", stack: "prod", mode: "revoke", reason: "" });
        assert.deepEqual(parseSlashCommand("status prod"), { kind: "status", stack: "prod" });
        assert.equal(parseSlashCommand("").kind, "error");
        assert.equal(parseSlashCommand("status").kind, "error");
        assert.equal(parseSlashCommand("pr*d emergency").kind, "error");
    });

    it("refuses a mistyped mode and unknown words instead of running a plain request", () => {
        const refused = (text: string) => {
            const r = parseSlashCommand(text);
            assert.equal(r.kind, "error", text);
            return (r as { message: string }).message;
        };
        assert.match(refused("prod emergancy"), /^`emergancy` is not a mode \(did you mean `emergency`\?\)\. Usage: /);
        assert.match(refused("prod revok leaked"), /did you mean `revoke`/);
        assert.match(refused("prod routine check"), /^`routine` is not a mode\. Usage: `\/rotate <stack> \[request\|emergency\|revoke\] \[reason\.\.\.\]`/);
        // A mode word where the stack belongs is not a stack name.
        assert.match(refused("emergency prod"), /^Name the stack first/);
        assert.match(refused("revoke"), /^Name the stack first/);
        assert.match(refused("status prod extra"), /Name one stack/);
    });
});

describe("chatops server", () => {
    it("acknowledges a valid request at once and posts the final report", async () => {
        const { port, clock, chatops, stack, audit, posted } = await start();
        const res = await send(port, form({ text: "prod emergency key pasted in a log" }), { nowMs: clock.ms });
        assert.equal(res.status, 200);
        assert.match(res.headers["content-type"] as string, /application\/json/);
        assert.deepEqual(JSON.parse(res.body), { response_type: "ephemeral", text: "Rotating `prod` (emergency); the report follows here." });
        await chatops.idle();
        assert.equal(stack.ups.length, 3);
        assert.match(stack.ups[0].request.request as string, /^emergency-\d{8}T\d{6}Z-key-pasted-in-a-log$/);
        assert.equal(posted.length, 1);
        assert.equal(posted[0].url, responseUrl);
        assert.equal(posted[0].message.response_type, "in_channel");
        assert.match(posted[0].message.text, /Emergency rotation of `prod` complete/);
        assert.match(posted[0].message.text, /by slack:U0001 \(alice\)/);
        assert.deepEqual(
            audit.map((a) => [a.event, a.outcome, a.user, a.stack, a.mode]),
            [
                ["request", "accepted", "U0001", "prod", "emergency"],
                ["result", "done", "U0001", "prod", "emergency"],
            ],
        );
        assert.equal(audit[1].delivered, true);
        assert.equal(audit[1].requestId, stack.ups[0].request.request);
        assertNoSecrets(audit);
    });

    it("refuses a bad signature with 401 and rotates nothing", async () => {
        const { port, clock, chatops, stack, audit, posted } = await start();
        const body = form({ text: "prod emergency" });
        const res = await send(port, body, { nowMs: clock.ms, signature: slackSignature("not-the-secret", String(Math.floor(clock.ms / 1000)), body) });
        assert.equal(res.status, 401);
        assert.equal(res.body, "bad signature\n");
        await chatops.idle();
        assert.deepEqual(stack.calls, []);
        assert.deepEqual(posted, []);
        assert.equal(audit.length, 1);
        assert.equal(audit[0].outcome, "refused");
        assert.equal(audit[0].why, "bad signature");
        assert.equal(audit[0].user, undefined, "an unsigned request's claims are not recorded as fact");
        assert.equal(audit[0].remote, "127.0.0.1");
        assertNoSecrets(audit);
    });

    it("refuses replays: stale and future timestamps", async () => {
        const { port, clock, chatops, stack, audit } = await start();
        const now = Math.floor(clock.ms / 1000);
        const stale = await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms, timestamp: now - 301 });
        const future = await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms, timestamp: now + 301 });
        assert.equal(stale.status, 401);
        assert.equal(stale.body, "request timestamp too old\n");
        assert.equal(future.status, 401);
        assert.equal(future.body, "request timestamp in the future\n");
        await chatops.idle();
        assert.deepEqual(stack.calls, []);
        assert.deepEqual(audit.map((a) => a.why), ["request timestamp too old", "request timestamp in the future"]);
    });

    it("refuses users and channels not on the allowlists with 403", async () => {
        const { port, clock, chatops, stack, audit, posted } = await start();
        const user = await send(port, form({ text: "prod emergency", user_id: "U0666" }), { nowMs: clock.ms });
        const channel = await send(port, form({ text: "prod emergency", channel_id: "C0666" }), { nowMs: clock.ms });
        assert.equal(user.status, 403);
        assert.match(user.body, /not on the allowlist/);
        assert.equal(channel.status, 403);
        assert.match(channel.body, /not allowed in this channel/);
        await chatops.idle();
        assert.deepEqual(stack.calls, []);
        assert.deepEqual(posted, []);
        assert.deepEqual(audit.map((a) => [a.outcome, a.status, a.user, a.channel]), [
            ["refused", 403, "U0666", "C0001"],
            ["refused", 403, "U0001", "C0666"],
        ]);
        assertNoSecrets(audit);
    });

    it("refuses malformed bodies with a 4xx and a short reason", async () => {
        const { port, clock, chatops, stack, audit } = await start();
        const cases: [string, { contentType?: string }, number, RegExp][] = [
            [new URLSearchParams({ text: "prod emergency", user_id: "U0001" }).toString(), {}, 400, /^missing channel_id, command, response_url\n$/],
            [form({ text: "" }), {}, 400, /Usage: `\/rotate <stack>/],
            [form({ text: "pr*d emergency" }), {}, 400, /is not a stack name/],
            [form({ text: "prod", response_url: "https://attacker.example/collect" }), {}, 400, /response_url is not a Slack URL/],
            [JSON.stringify({ text: "prod emergency" }), { contentType: "application/json" }, 415, /form-encoded/],
        ];
        for (const [body, options, status, reason] of cases) {
            const res = await send(port, body, { nowMs: clock.ms, ...options });
            assert.equal(res.status, status, body);
            assert.match(res.body, reason);
        }
        await chatops.idle();
        assert.deepEqual(stack.calls, []);
        assert.equal(audit.length, cases.length);
        assert.ok(audit.every((a) => a.outcome === "refused"));
        assertNoSecrets(audit);
    });

    it("refuses an oversized body with 413", async () => {
        const { port, clock, chatops, stack, audit } = await start({ maxBodyBytes: 1024 });
        const res = await send(port, form({ text: `prod emergency ${"x".repeat(2000)}` }), { nowMs: clock.ms });
        assert.equal(res.status, 413);
        assert.equal(res.body, "body larger than 1024 bytes\n");
        const chunked = await send(port, form({ text: `prod emergency ${"x".repeat(2000)}` }), { nowMs: clock.ms, chunked: true });
        assert.equal(chunked.status, 413);
        await chatops.idle();
        assert.deepEqual(stack.calls, []);
        assert.deepEqual(audit.map((a) => [a.outcome, a.status]), [
            ["refused", 413],
            ["refused", 413],
        ]);
    });

    it("stops reading an oversized body after answering 413, and closes the connection", async () => {
        const { port, clock, audit } = await start({ maxBodyBytes: 1024 });
        const socket = await rawSocket(port);
        const timestamp = String(Math.floor(clock.ms / 1000));
        socket.write(
            `POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n` +
                `X-Slack-Request-Timestamp: ${timestamp}\r\nX-Slack-Signature: v0=00\r\n\r\n${"x".repeat(4096)}`,
        );
        // The client trickles the rest of the declared megabyte; the server must not wait for it.
        const trickle = setInterval(() => socket.writable && socket.write("x".repeat(100)), 100);
        const started = Date.now();
        const { text } = await closed(socket, 5_000);
        clearInterval(trickle);
        assert.match(text, /^HTTP\/1\.1 413 /);
        assert.match(text, /\r\nconnection: close\r\n/i);
        assert.ok(Date.now() - started < 3_000, `closed after ${Date.now() - started} ms`);
        assert.deepEqual(audit.map((a) => [a.outcome, a.status]), [["refused", 413]]);
    });

    it("closes idle and stalled connections after the request timeout", async () => {
        const { port } = await start({ requestTimeoutMs: 600 });
        const idle = await rawSocket(port);
        const stalled = await rawSocket(port);
        stalled.write("POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntext=pro");
        const kept = await rawSocket(port);
        kept.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); // keep-alive after the answer
        const started = Date.now();
        const results = await Promise.all([closed(idle, 4_000), closed(stalled, 4_000), closed(kept, 4_000)]);
        const after = Date.now() - started;
        assert.ok(after < 2_500, `sockets lived ${after} ms with a 600 ms timeout`);
        assert.match(results[2].text, /^HTTP\/1\.1 200 /);
    });

    it("shuts down promptly with a client stalled mid-request, and still finishes accepted work", async () => {
        const { port, clock, chatops, stack, posted } = await start();
        const release = stack.hold();
        assert.equal((await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms })).status, 200);
        const stalled = await rawSocket(port);
        stalled.write("POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntext=pro");
        await new Promise((r) => setTimeout(r, 100));
        const started = Date.now();
        const closing = chatops.close();
        const socketClosed = await closed(stalled, 4_000);
        assert.ok(Date.now() - started < 3_000, "the stalled socket was closed at shutdown");
        assert.equal(socketClosed.text, "");
        release();
        await closing;
        assert.ok(Date.now() - started < 4_000, `close took ${Date.now() - started} ms`);
        assert.equal(posted.length, 1, "the accepted emergency finished and reported");
        running = undefined;
    });

    it("cancels accepted rotations when its signal aborts, clears their request and reports it", async () => {
        const controller = new AbortController();
        const { port, clock, chatops, stack, posted, audit } = await start({ signal: controller.signal });
        const release = stack.hold();
        assert.equal((await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms })).status, 200);
        await stack.upsStarted();
        const closing = chatops.close();
        controller.abort(new Interrupt("SIGTERM", false));
        await closing;
        release();
        running = undefined;
        assert.equal(stack.signals, 1);
        assert.deepEqual([...stack.config.keys()], []);
        assert.match(posted[0].message.text, /^Rotation of `prod` failed: Interrupted: the rotation of `prod` stopped/);
        assert.equal(audit.at(-1)?.outcome, "failed");
    });

    it("holds plain requests for a stack during the cooldown, but not emergencies", async () => {
        const { port, clock, chatops, stack, audit } = await start({ cooldownMs: 15 * 60 * 1000 });
        assert.equal((await send(port, form({ text: "prod request routine" }), { nowMs: clock.ms })).status, 200);
        await chatops.idle();
        const upsAfterFirst = stack.ups.length;
        clock.ms += 60_000;
        const again = await send(port, form({ text: "prod request again" }), { nowMs: clock.ms });
        assert.equal(again.status, 429);
        assert.match(again.body, /rotated less than 15 minutes ago/);
        assert.ok(Number(again.headers["retry-after"]) > 0);
        await chatops.idle();
        assert.equal(stack.ups.length, upsAfterFirst, "the refused request rotated nothing");
        const emergency = await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms });
        assert.equal(emergency.status, 200);
        await chatops.idle();
        assert.ok(stack.ups.length > upsAfterFirst);
        clock.ms += 16 * 60_000;
        assert.equal((await send(port, form({ text: "prod request later" }), { nowMs: clock.ms })).status, 200);
        await chatops.idle();
        assert.deepEqual(
            audit.filter((a) => a.event === "request").map((a) => [a.outcome, a.status]),
            [
                ["accepted", 200],
                ["refused", 429],
                ["accepted", 200],
                ["accepted", 200],
            ],
        );
    });

    it("concurrent requests for one stack start one rotation, and both get the report", async () => {
        const { port, clock, chatops, stack, audit, posted } = await start();
        const release = stack.hold();
        const first = await send(port, form({ text: "prod emergency leak" }), { nowMs: clock.ms });
        const second = await send(port, form({ text: "prod emergency leak", response_url: "https://hooks.slack.com/commands/T0001/2/other" }), { nowMs: clock.ms });
        assert.equal(first.status, 200);
        assert.equal(second.status, 200);
        assert.match(JSON.parse(second.body).text, /already running \(requested by slack:U0001 \(alice\)\)/);
        release();
        await chatops.idle();
        const requestIds = new Set(stack.ups.map((u) => u.request.request));
        assert.equal(requestIds.size, 1);
        assert.equal(stack.calls.filter((c) => c.op === "setConfig" && c.key === "ci-key-rotation:request").length, 1);
        assert.equal(posted.length, 2);
        assert.equal(posted[0].message.text.split("\n")[0], posted[1].message.text.split("\n")[0]);
        assert.equal(audit.filter((a) => a.event === "result" && a.outcome === "done").length, 2);
    });

    it("refuses a replayed signed request inside the five-minute window, for every mode", async () => {
        const { port, clock, chatops, stack, audit } = await start();
        for (const text of ["prod emergency leak", "status prod", "prod revoke", "help"]) {
            const body = form({ text });
            const timestamp = Math.floor(clock.ms / 1000);
            const first = await send(port, body, { nowMs: clock.ms, timestamp });
            assert.equal(first.status, 200, text);
            await chatops.idle();
            const upsBefore = stack.ups.length;
            clock.ms += 60_000; // still inside the window
            const replay = await send(port, body, { nowMs: clock.ms, timestamp });
            assert.equal(replay.status, 409, text);
            assert.equal(replay.body, "request already received (replayed)\n");
            await chatops.idle();
            assert.equal(stack.ups.length, upsBefore, `the replay of "${text}" ran nothing`);
        }
        const refused = audit.filter((a) => a.outcome === "refused");
        assert.equal(refused.length, 4);
        assert.ok(refused.every((a) => a.status === 409 && a.why === "request already received (replayed)" && a.user === "U0001"));
    });

    it("answers /rotate status with a posted status and changes nothing", async () => {
        const { port, clock, chatops, stack, posted, audit } = await start();
        const res = await send(port, form({ text: "status prod" }), { nowMs: clock.ms });
        assert.equal(res.status, 200);
        await chatops.idle();
        assert.deepEqual(stack.changes, []);
        assert.equal(posted[0].message.response_type, "ephemeral");
        assert.match(posted[0].message.text, /deploy \(IAM user ci-deploy\): steady, generation 1/);
        assert.deepEqual(audit.map((a) => [a.event, a.action, a.outcome]), [
            ["request", "status", "accepted"],
            ["result", "status", "done"],
        ]);
    });

    it("refuses stacks it does not serve, and reports a failed rotation", async () => {
        const { port, clock, chatops, audit, posted, fakes } = await start({ stacks: ["prod", "gone"] }, ["prod"]);
        const other = await send(port, form({ text: "staging emergency" }), { nowMs: clock.ms });
        assert.equal(other.status, 403);
        const gone = await send(port, form({ text: "gone emergency" }), { nowMs: clock.ms });
        assert.equal(gone.status, 200);
        await chatops.idle();
        assert.deepEqual(fakes.prod.calls, []);
        assert.match(posted[0].message.text, /Rotation of `gone` failed: Stack `gone` does not exist/);
        assert.deepEqual(audit.at(-1)?.outcome, "failed");
    });

    it("audits an unsigned flood in bounded lines: the first few, then one count per minute", async () => {
        const { port, clock, chatops, audit } = await start();
        for (let i = 0; i < 200; i++) {
            const res = await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms, signature: `v0=${String(i).padStart(64, "0")}` });
            assert.equal(res.status, 401);
        }
        clock.ms += 61_000;
        for (let i = 0; i < 3; i++) await send(port, "x", { nowMs: clock.ms, signature: "v0=00" });
        await chatops.close();
        running = undefined;
        const individual = audit.filter((a) => a.count === undefined);
        const summaries = audit.filter((a) => a.count !== undefined);
        assert.equal(individual.length, 13, "10 in the first minute, 3 in the next");
        assert.deepEqual(
            summaries.map((a) => [a.outcome, a.status, a.count, a.why]),
            [["refused", 401, 190, "190 more unsigned requests refused in this minute (not audited one by one)"]],
        );
    });

    it("does not act when the accepting audit line cannot be written", async () => {
        const { port, clock, chatops, stack } = await start({
            audit: async (r) => {
                if (r.outcome === "accepted") throw new Error("ENOSPC: no space left on device");
            },
        });
        const res = await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms });
        assert.equal(res.status, 503);
        assert.equal(res.body, "the audit log cannot be written; nothing was done\n");
        const status = await send(port, form({ text: "status prod" }), { nowMs: clock.ms });
        assert.equal(status.status, 503);
        await chatops.idle();
        assert.deepEqual(stack.calls, [], "no unaudited rotation or status read");
    });

    it("writes the audit as JSON lines", async () => {
        const dir = await mkdtemp(join(tmpdir(), "ckr-audit-"));
        const file = join(dir, "audit.jsonl");
        const { port, clock, chatops } = await start({ audit: jsonLinesAudit(file) });
        await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms, signature: "v0=deadbeef" });
        await send(port, form({ text: "prod emergency" }), { nowMs: clock.ms });
        await chatops.idle();
        const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
        const records = lines.map((l) => JSON.parse(l) as AuditRecord);
        assert.deepEqual(records.map((r) => [r.event, r.outcome]), [
            ["request", "refused"],
            ["request", "accepted"],
            ["result", "done"],
        ]);
        assert.ok(records.every((r) => typeof r.at === "string"));
        assertNoSecrets(records);
    });
});
