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
export const slashUsage = "Usage: `/rotate <stack> [request|emergency|revoke] [reason...]`, `/rotate status <stack>`, `/rotate help`";

const stackPattern = /^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,199}$/;
const modeWords = ["request", "emergency", "revoke"] as const;
const keywords = [...modeWords, "status", "help"];

/**
 * Parse the text after `/rotate`. `/rotate prod` is a plain request (usual waits), `emergency`
 * zeroes the waits, `revoke` also deactivates the old key at once. A reason follows the mode
 * word (`/rotate prod request routine check`). Any other word where the mode belongs is refused:
 * a mistyped `emergancy` must not run a plain request, and a mode word must not be read as a
 * stack name.
 */
export function parseSlashCommand(text: string): SlashCommand | { kind: "error"; message: string } {
    const words = text.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return { kind: "error", message: slashUsage };
    const first = words[0].toLowerCase();
    if (first === "help") return words.length === 1 ? { kind: "help" } : { kind: "error", message: slashUsage };
    if (first === "status") {
        if (words.length !== 2 || !stackPattern.test(words[1]) || keywords.includes(words[1].toLowerCase())) return { kind: "error", message: `Name one stack. ${slashUsage}` };
        return { kind: "status", stack: words[1] };
    }
    if ((modeWords as readonly string[]).includes(first)) return { kind: "error", message: `Name the stack first, then the mode. ${slashUsage}` };
    const [stack, second, ...rest] = words;
    if (!stackPattern.test(stack)) return { kind: "error", message: `\`${stack.slice(0, 40)}\` is not a stack name. ${slashUsage}` };
    if (second === undefined) return { kind: "rotate", stack, mode: "request", reason: "" };
    const mode = modeWords.find((m) => m === second.toLowerCase());
    if (!mode) {
        const near = modeWords.find((m) => editDistance(m, second.toLowerCase()) <= 2);
        return { kind: "error", message: `\`${second.slice(0, 40)}\` is not a mode${near ? ` (did you mean \`${near}\`?)` : ""}. ${slashUsage}` };
    }
    return { kind: "rotate", stack, mode, reason: rest.join(" ").slice(0, 200) };
}

/** Levenshtein distance, for "did you mean" on short words. */
function editDistance(a: string, b: string): number {
    if (Math.abs(a.length - b.length) > 2) return 3;
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const next = [i];
        for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        row = next;
    }
    return row[b.length];
}
