/**
 * Slack slash commands: request signatures and the `/rotate` command grammar. Pure, so the
 * server's security checks are tested without a socket.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { RotationMode } from "./automation";

/**
 * Slack signs `v0:<timestamp>:<raw body>`; a request more than this far from our clock, in
 * either direction, is refused so a captured request cannot be replayed later. Five minutes is
 * Slack's own recommendation.
 */
export const maxClockSkewSeconds = 5 * 60;

/** Why a request's signature was not accepted (short, safe to return to the caller). */
export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/**
 * Verify Slack's `X-Slack-Signature` (`v0=` + hex HMAC-SHA256 with the signing secret) and
 * `X-Slack-Request-Timestamp`. Constant-time comparison; `nowSeconds` is injected.
 */
export function verifySlackSignature(args: {
    signingSecret: string;
    timestamp: string | undefined;
    signature: string | undefined;
    rawBody: Buffer;
    nowSeconds: number;
}): SignatureCheck {
    const { signingSecret, timestamp, signature, rawBody, nowSeconds } = args;
    if (!timestamp || !signature) return { ok: false, reason: "missing Slack signature headers" };
    if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "malformed request timestamp" };
    const skew = nowSeconds - Number(timestamp);
    if (skew > maxClockSkewSeconds) return { ok: false, reason: "request timestamp too old" };
    if (skew < -maxClockSkewSeconds) return { ok: false, reason: "request timestamp in the future" };
    const expected = Buffer.from(`v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:`).update(rawBody).digest("hex")}`, "utf8");
    const given = Buffer.from(signature, "utf8");
    // timingSafeEqual needs equal lengths; a length mismatch reveals nothing about the secret.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: "bad signature" };
    return { ok: true };
}

/** Sign a body the way Slack does; for tests and for checking a deployment by hand. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string | Buffer): string {
    return `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:`).update(rawBody).digest("hex")}`;
}

/** What `/rotate <text>` asks for. */
export type SlashCommand =
    | { kind: "rotate"; stack: string; mode: Exclude<RotationMode, "scheduled">; reason: string }
    | { kind: "status"; stack: string }
    | { kind: "help" };

/** The grammar, shown when a command does not parse. */
export const slashUsage = "Usage: `/rotate <stack> [emergency|revoke] [reason...]`, `/rotate status <stack>`, `/rotate help`";

const stackPattern = /^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,199}$/;

/**
 * Parse the text after `/rotate`. `/rotate prod` is a plain request (usual waits), `emergency`
 * zeroes the waits, `revoke` also deactivates the old key at once.
 */
export function parseSlashCommand(text: string): SlashCommand | { kind: "error"; message: string } {
    const words = text.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0 || (words.length === 1 && words[0].toLowerCase() === "help")) return words.length === 0 ? { kind: "error", message: slashUsage } : { kind: "help" };
    if (words[0].toLowerCase() === "status") {
        if (words.length !== 2 || !stackPattern.test(words[1])) return { kind: "error", message: `Name one stack. ${slashUsage}` };
        return { kind: "status", stack: words[1] };
    }
    const [stack, second, ...rest] = words;
    if (!stackPattern.test(stack)) return { kind: "error", message: `\`${stack.slice(0, 40)}\` is not a stack name. ${slashUsage}` };
    const flag = second?.toLowerCase();
    const mode = flag === "emergency" || flag === "revoke" ? flag : "request";
    const reasonWords = mode === "request" ? words.slice(1) : rest;
    const reason = reasonWords.join(" ").slice(0, 200);
    return { kind: "rotate", stack, mode, reason };
}
