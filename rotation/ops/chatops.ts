/**
 * The chatops endpoint: an HTTP server for Slack's `/rotate` slash command. It verifies every
 * request, acknowledges within Slack's three seconds, runs the rotation through the library and
 * posts the report to the command's `response_url`. Every request, accepted or refused, leaves
 * one audit line; finished work leaves another.
 */
import { appendFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { Duration } from "luxon";
import type { RotationClient, RotationMode } from "./automation";
import { formatRotationReport, formatStatusReport } from "./report-text";
import { maxClockSkewSeconds, parseSlashCommand, slashUsage, verifySlackSignature } from "./slack";

/** A message for Slack's `response_url`. */
export interface SlackMessage {
    response_type: "ephemeral" | "in_channel";
    text: string;
}

/** One audit line. Never holds a secret, a signature, a token or the `response_url`. */
export interface AuditRecord {
    at: string;
    /** `request`: the decision on an incoming request; `result`: the end of accepted work. */
    event: "request" | "result";
    outcome: "accepted" | "refused" | "done" | "waiting" | "incomplete" | "failed";
    /** HTTP status answered (request events). */
    status?: number;
    /** Why refused, or what failed, in a sentence. */
    why?: string;
    /** Slack user id and name; only for signed requests (unsigned ones prove nothing). */
    user?: string;
    userName?: string;
    channel?: string;
    /** `rotate` or `status`. */
    action?: "rotate" | "status";
    stack?: string;
    mode?: RotationMode;
    reason?: string;
    requestId?: string;
    /** Whether the final report reached Slack (result events). */
    delivered?: boolean;
    /** Peer address, for refused requests that were not signed. */
    remote?: string;
    /**
     * Present on a summary line: how many further unsigned requests were refused with `status`
     * in the minute before `at` without a line each.
     */
    count?: number;
}

/** Options of {@link createChatopsServer}. */
export interface ChatopsOptions {
    /** Slack app signing secret (env `SLACK_SIGNING_SECRET`). Never logged. */
    signingSecret: string;
    /** Slack user ids (`U...`) allowed to use `/rotate`. Empty refuses everyone. */
    allowedUsers: string[];
    /** Channel ids (`C...`, `G...`, `D...`) where `/rotate` is accepted. Empty refuses everywhere. */
    allowedChannels: string[];
    /** Stacks that may be named. Default: any stack of the project in `workDir`. */
    stacks?: string[];
    /** Directory holding `Pulumi.yaml`. */
    workDir: string;
    /**
     * After a rotation of a stack is accepted, plain (non-emergency) requests for it are refused
     * this long. Default 15 minutes: a request mints at once, so a second one soon after only
     * churns keys; emergencies are never held back.
     */
    cooldownMs?: number;
    /** Default 16 KiB: Slack's slash-command payloads are far smaller. */
    maxBodyBytes?: number;
    /**
     * How long a connection may take to send a whole request, and how long an idle connection
     * lives. Default 10 s: Slack gives up after three, so a slower client is stalled or hostile.
     */
    requestTimeoutMs?: number;
    /**
     * At shutdown, how long requests still being received get before their connections are
     * closed. Default 1 s. Accepted rotations are never cut: `close` waits for them.
     */
    shutdownGraceMs?: number;
    /**
     * Hosts a `response_url` may point at. Default `hooks.slack.com`: the server POSTs reports
     * there, and must not be turned into a client for arbitrary URLs.
     */
    responseUrlHosts?: string[];
    client: Pick<RotationClient, "rotate" | "status" | "inFlight">;
    /** Default: `fetch` POST of JSON, 10 s timeout. */
    postResponse?: (url: string, message: SlackMessage) => Promise<void>;
    /**
     * Appends one record. A request is acted on only after its `accepted` record was written:
     * when that write fails, the request is refused with 503 and nothing runs.
     */
    audit: (record: AuditRecord) => Promise<void>;
    /**
     * Unsigned refused requests audited one by one per minute; the rest of the minute is one
     * summary line per status. Default 10: anyone who can reach the port can send them, and the
     * audit log must not grow with a flood.
     */
    unsignedAuditPerMinute?: number;
    /**
     * Cancels the rotations this server started (see `RotateOptions.signal`): each stops cleanly,
     * clears its request, and its report says what it left. The CLI aborts it on the second
     * SIGINT/SIGTERM of a shutdown.
     */
    signal?: AbortSignal;
    /** Default `Date.now`. */
    now?: () => number;
    /** Operational log lines (no secrets). Default: none. */
    log?: (line: string) => void;
}

/** A running (or ready) chatops server. */
export interface ChatopsServer {
    readonly server: Server;
    /** Listen; resolves with the bound address (port 0 picks a free one). */
    listen(port: number, host: string): Promise<AddressInfo>;
    /** Resolves when every accepted command has finished and its report was posted. */
    idle(): Promise<void>;
    /** Stop accepting, wait for running work, close. */
    close(): Promise<void>;
}

/** Where a refusal ends: status and a short reason (sent to the caller and audited). */
class Refusal extends Error {
    constructor(
        readonly status: number,
        readonly why: string,
        readonly signed: Partial<AuditRecord> = {},
    ) {
        super(why);
    }
}

/** The default of {@link ChatopsOptions.cooldownMs}: 15 minutes (see there for why). */
export const defaultCooldownMs = 15 * 60 * 1000;

/** Create the server; call `listen` to start it. */
export function createChatopsServer(options: ChatopsOptions): ChatopsServer {
    const now = options.now ?? Date.now;
    const maxBody = options.maxBodyBytes ?? 16 * 1024;
    const cooldownMs = options.cooldownMs ?? defaultCooldownMs;
    const hosts = options.responseUrlHosts ?? ["hooks.slack.com"];
    const post = options.postResponse ?? postJson;
    const log = options.log ?? (() => {});
    const users = new Set(options.allowedUsers);
    const channels = new Set(options.allowedChannels);
    const stacks = options.stacks && new Set(options.stacks);
    const lastAccepted = new Map<string, number>();
    // Signatures of requests seen, until their timestamp leaves the window (in seconds). A
    // captured request passes the signature and timestamp checks for five minutes: remembering
    // it is what refuses the replay. Only signed requests get here, so only Slack adds entries.
    const seen = new Map<string, number>();
    const firstSighting = (signature: string, timestamp: number): boolean => {
        const nowSeconds = Math.floor(now() / 1000);
        for (const [sig, until] of seen) if (until < nowSeconds) seen.delete(sig);
        if (seen.has(signature)) return false;
        seen.set(signature, timestamp + maxClockSkewSeconds);
        return true;
    };
    const requestTimeout = options.requestTimeoutMs ?? 10_000;
    const shutdownGrace = options.shutdownGraceMs ?? 1_000;
    // Background work (rotations, status reads, report posting) and requests being received.
    const work = new Set<Promise<void>>();
    const receiving = new Set<Promise<void>>();

    const auditOrFail = (record: Omit<AuditRecord, "at">) => options.audit({ at: new Date(now()).toISOString(), ...record });
    const audit = (record: Omit<AuditRecord, "at">) => auditOrFail(record).catch((err) => log(`audit write failed: ${(err as Error).message}`));
    /** Audit the acceptance of a request, or refuse it: nothing runs unaudited. */
    const auditAccepted = async (record: Omit<AuditRecord, "at">) => {
        try {
            await auditOrFail(record);
        } catch (err) {
            log(`audit write failed, request refused: ${(err as Error).message}`);
            throw new Refusal(503, "the audit log cannot be written; nothing was done", { user: record.user, userName: record.userName, channel: record.channel });
        }
    };

    // Unsigned refusals: the first few each minute one by one, then a count per status.
    const unsignedPerMinute = options.unsignedAuditPerMinute ?? 10;
    let floodMinute = -1;
    let floodAudited = 0;
    const floodSuppressed = new Map<number, number>();
    let floodTimer: NodeJS.Timeout | undefined;
    const flushFlood = async () => {
        clearTimeout(floodTimer);
        floodTimer = undefined;
        const counts = [...floodSuppressed];
        floodSuppressed.clear();
        for (const [status, count] of counts) {
            await audit({ event: "request", outcome: "refused", status, count, why: `${count} more unsigned requests refused in this minute (not audited one by one)` });
        }
    };
    const auditUnsigned = async (record: Omit<AuditRecord, "at">) => {
        const minute = Math.floor(now() / 60_000);
        if (minute !== floodMinute) {
            // Before awaiting, so concurrent refusals of the new minute count against it.
            floodMinute = minute;
            floodAudited = 0;
            await flushFlood();
        }
        if (floodAudited < unsignedPerMinute) {
            floodAudited++;
            return audit(record);
        }
        floodSuppressed.set(record.status!, (floodSuppressed.get(record.status!) ?? 0) + 1);
        // Written when the minute ends even if the flood stops (and at close).
        floodTimer ??= setTimeout(() => void flushFlood(), 60_000).unref();
    };

    const track = (task: Promise<void>, into = work) => {
        const settled = task.catch((err) => log(`background task failed: ${(err as Error).message}`)).finally(() => into.delete(settled));
        into.add(settled);
    };

    async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
        const remote = req.socket.remoteAddress;
        try {
            if (req.method === "GET" && req.url === "/healthz") return send(res, 200, "ok");
            if (req.url !== "/slack/commands") throw new Refusal(404, "not found");
            if (req.method !== "POST") throw new Refusal(405, "use POST");
            const body = await readBody(req, maxBody);
            const check = verifySlackSignature({
                signingSecret: options.signingSecret,
                timestamp: header(req, "x-slack-request-timestamp"),
                signature: header(req, "x-slack-signature"),
                rawBody: body,
                nowSeconds: Math.floor(now() / 1000),
            });
            if (!check.ok) throw new Refusal(401, check.reason);
            if (!/^application\/x-www-form-urlencoded\b/i.test(header(req, "content-type") ?? "")) throw new Refusal(415, "expected a form-encoded slash command");
            const form = new URLSearchParams(body.toString("utf8"));
            const field = (name: string) => form.get(name) ?? undefined;
            const who: Partial<AuditRecord> = { user: field("user_id"), userName: field("user_name"), channel: field("channel_id") };
            if (!firstSighting(header(req, "x-slack-signature")!, Number(header(req, "x-slack-request-timestamp")))) throw new Refusal(409, "request already received (replayed)", who);
            const missing = ["user_id", "channel_id", "command", "response_url"].filter((f) => !field(f));
            if (missing.length > 0) throw new Refusal(400, `missing ${missing.join(", ")}`, who);
            if (!users.has(who.user!)) throw new Refusal(403, "you are not on the allowlist of /rotate users", who);
            if (!channels.has(who.channel!)) throw new Refusal(403, "/rotate is not allowed in this channel", who);
            const responseUrl = field("response_url")!;
            if (!allowedUrl(responseUrl, hosts)) throw new Refusal(400, "response_url is not a Slack URL", who);

            const command = parseSlashCommand(field("text") ?? "");
            if (command.kind === "error") throw new Refusal(400, command.message, who);
            if (command.kind === "help") {
                await auditAccepted({ event: "request", outcome: "accepted", status: 200, ...who, why: "help" });
                return ephemeral(res, slashUsage);
            }
            if (stacks && !stacks.has(command.stack)) throw new Refusal(403, `stack \`${command.stack}\` is not served here`, { ...who, stack: command.stack });

            if (command.kind === "status") {
                await auditAccepted({ event: "request", outcome: "accepted", status: 200, ...who, action: "status", stack: command.stack });
                ephemeral(res, `Reading the status of \`${command.stack}\`…`);
                track(runStatus(command.stack, responseUrl, who));
                return;
            }

            const { stack, mode } = command;
            const reason = command.reason || `${mode} requested in Slack by ${who.userName ?? who.user}`;
            const details: Partial<AuditRecord> = { ...who, action: "rotate", stack, mode, reason };
            const running = options.client.inFlight(stack, options.workDir);
            const last = lastAccepted.get(stack);
            if (mode === "request" && last !== undefined && now() - last < cooldownMs) {
                const wait = Math.ceil((last + cooldownMs - now()) / 1000);
                res.setHeader("Retry-After", String(wait));
                throw new Refusal(429, `\`${stack}\` was rotated less than ${Duration.fromMillis(cooldownMs).toFormat("m")} minutes ago; try again in ${wait}s, or use \`emergency\``, details);
            }
            await auditAccepted({ event: "request", outcome: "accepted", status: 200, ...details });
            lastAccepted.set(stack, now());
            ephemeral(
                res,
                running
                    ? `A ${running.mode} rotation of \`${stack}\` is already running (requested by ${running.requestedBy}); you will get its report here.`
                    : `Rotating \`${stack}\` (${mode}); the report follows here.`,
            );
            track(runRotate(stack, mode, reason, responseUrl, details));
        } catch (err) {
            const refusal = err instanceof Refusal ? err : new Refusal(500, "internal error");
            if (!(err instanceof Refusal)) log(`request failed: ${(err as Error).message}`);
            if (refusal.status === 413 && !res.headersSent) {
                // The rest of the body is never read: answer, then close the connection rather
                // than drain a body the client may trickle for as long as it likes.
                res.setHeader("connection", "close");
                send(res, refusal.status, refusal.why);
                res.on("finish", () => setTimeout(() => req.socket.destroy(), 200).unref());
            }
            const record: Omit<AuditRecord, "at"> = { event: "request", outcome: "refused", status: refusal.status, why: refusal.why, ...refusal.signed, ...(refusal.signed.user ? {} : { remote }) };
            await (refusal.signed.user ? audit(record) : auditUnsigned(record));
            if (!res.headersSent) send(res, refusal.status, refusal.why);
        }
    }

    async function runRotate(stack: string, mode: Exclude<RotationMode, "scheduled">, reason: string, url: string, details: Partial<AuditRecord>): Promise<void> {
        const requestedBy = `slack:${details.user}${details.userName ? ` (${details.userName})` : ""}`;
        let message: SlackMessage;
        let record: Omit<AuditRecord, "at">;
        try {
            const report = await options.client.rotate({ stack, workDir: options.workDir, mode, reason, requestedBy, signal: options.signal });
            message = { response_type: "in_channel", text: formatRotationReport(report) };
            record = { event: "result", outcome: report.outcome, ...details, requestId: report.requestId, why: report.summary };
        } catch (err) {
            const text = (err as Error).message;
            message = { response_type: "in_channel", text: `Rotation of \`${stack}\` failed: ${text}` };
            record = { event: "result", outcome: "failed", ...details, why: text.split("\n")[0] };
        }
        const delivered = await deliver(url, message);
        await audit({ ...record, delivered });
    }

    async function runStatus(stack: string, url: string, who: Partial<AuditRecord>): Promise<void> {
        let message: SlackMessage;
        let outcome: AuditRecord["outcome"] = "done";
        let why: string | undefined;
        try {
            message = { response_type: "ephemeral", text: formatStatusReport(await options.client.status({ stack, workDir: options.workDir })) };
        } catch (err) {
            outcome = "failed";
            why = (err as Error).message.split("\n")[0];
            message = { response_type: "ephemeral", text: `Status of \`${stack}\` failed: ${(err as Error).message}` };
        }
        const delivered = await deliver(url, message);
        await audit({ event: "result", outcome, ...who, action: "status", stack, why, delivered });
    }

    async function deliver(url: string, message: SlackMessage): Promise<boolean> {
        try {
            await post(url, message);
            return true;
        } catch (err) {
            log(`posting the report to Slack failed: ${(err as Error).message}`);
            return false;
        }
    }

    // Slack gives up after three seconds; a slow or stalled client must not hold a socket long.
    // Node checks headersTimeout and requestTimeout only every `connectionsCheckingInterval`
    // (default 30 s, which let sockets live 30-45 s): check often enough to honour them.
    const server = createServer(
        {
            requestTimeout,
            headersTimeout: requestTimeout,
            keepAliveTimeout: Math.min(5_000, requestTimeout),
            connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(requestTimeout / 4))),
        },
        (req, res) => track(handle(req, res), receiving),
    );
    // Inactivity on any socket, whatever state its request is in.
    server.timeout = requestTimeout;

    return {
        server,
        listen(port, host) {
            return new Promise((resolveListen, reject) => {
                server.once("error", reject);
                server.listen(port, host, () => {
                    server.off("error", reject);
                    resolveListen(server.address() as AddressInfo);
                });
            });
        },
        async idle() {
            while (receiving.size > 0 || work.size > 0) await Promise.all([...receiving, ...work]);
        },
        async close() {
            const closed = new Promise<void>((r) => server.close(() => r()));
            server.closeIdleConnections();
            // Requests still arriving get a short grace; a stalled client must not hold shutdown.
            let timer: NodeJS.Timeout | undefined;
            const grace = new Promise<void>((r) => (timer = setTimeout(r, shutdownGrace)));
            await Promise.race([Promise.all([...receiving]), grace]);
            clearTimeout(timer);
            server.closeAllConnections();
            while (receiving.size > 0 || work.size > 0) await Promise.all([...receiving, ...work]);
            await flushFlood();
            await closed;
        },
    };
}

function header(req: IncomingMessage, name: string): string | undefined {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
}

function send(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(`${text}\n`);
}

/** HTTP 200 with an ephemeral message: only the person who typed the command sees it. */
function ephemeral(res: ServerResponse, text: string): void {
    const body = JSON.stringify({ response_type: "ephemeral", text } satisfies SlackMessage);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(body);
}

/** The raw body (the signature covers its exact bytes), refused past `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
    return new Promise((resolveBody, reject) => {
        const declared = Number(req.headers["content-length"]);
        if (Number.isFinite(declared) && declared > limit) return reject(new Refusal(413, `body larger than ${limit} bytes`));
        const chunks: Buffer[] = [];
        let size = 0;
        let refused = false;
        req.on("data", (chunk: Buffer) => {
            if (refused) return;
            size += chunk.length;
            if (size > limit) {
                refused = true;
                chunks.length = 0;
                req.pause();
                reject(new Refusal(413, `body larger than ${limit} bytes`));
                return;
            }
            chunks.push(chunk);
        });
        req.on("end", () => {
            if (!refused) resolveBody(Buffer.concat(chunks));
        });
        req.on("error", reject);
        // A connection closed mid-body (timeout, shutdown, client gone) ends the request here.
        req.on("close", () => {
            if (!req.complete) reject(new Refusal(408, "the connection closed before the whole request arrived"));
        });
    });
}

function allowedUrl(text: string, hosts: string[]): boolean {
    try {
        const url = new URL(text);
        return url.protocol === "https:" && hosts.includes(url.hostname);
    } catch {
        return false;
    }
}

async function postJson(url: string, message: SlackMessage): Promise<void> {
    const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(10_000),
    });
    // The URL itself is a credential for the channel: never put it in an error.
    if (!res.ok) throw new Error(`Slack answered ${res.status} to the report`);
}

/** Appends audit records as JSON lines, one write at a time so lines never interleave. */
export function jsonLinesAudit(file: string): (record: AuditRecord) => Promise<void> {
    let last: Promise<void> = Promise.resolve();
    return (record) => {
        const line = `${JSON.stringify(record)}\n`;
        last = last.catch(() => {}).then(() => appendFile(file, line, { mode: 0o600 }));
        return last;
    };
}

/** The chatops settings a config file (JSON or YAML) may hold. */
export const chatopsFileSchema = z.strictObject({
    allowedUsers: z.array(z.string().regex(/^[UW][A-Z0-9]{2,}$/, "must be a Slack user id (U...)")).optional(),
    allowedChannels: z.array(z.string().regex(/^[CGD][A-Z0-9]{2,}$/, "must be a Slack channel id (C..., G... or D...)")).optional(),
    stacks: z.array(z.string().min(1)).optional(),
    cooldown: z
        .string()
        .refine((s) => Duration.fromISO(s).isValid, "must be an ISO-8601 duration such as PT15M")
        .optional(),
    auditLog: z.string().min(1).optional(),
    responseUrlHosts: z.array(z.string().min(1)).optional(),
});

/** Parsed chatops file settings. */
export type ChatopsFileConfig = z.output<typeof chatopsFileSchema>;
