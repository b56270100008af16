/**
 * Every AWS SDK call ci-key-rotation makes, with the clients injected (tests pass fakes).
 *
 * This module has no runtime imports on purpose: the key check's dynamic provider
 * (`rotation/pulumi/verify.ts`) is serialized with the functions it calls, and closure serialization of
 * `@aws-sdk` v3 modules fails. The SDK's command classes are therefore `require`d inside the
 * functions, at call time.
 */
import type { LastUse } from "./plan";

/** The part of an AWS SDK v3 client the calls use (`IAMClient`, `STSClient`, or a test fake). */
export interface SdkClient {
    send(command: unknown): Promise<any>;
}

/** Time for the retry loop, injected so tests neither sleep nor depend on the real clock. */
export interface RetryClock {
    /** Milliseconds since some fixed instant. */
    now(): number;
    sleep(ms: number): Promise<void>;
}

/** The real clock. */
export const realClock: RetryClock = {
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What the key check proves: this access key authenticates as this user. */
export interface KeyIdentityCheck {
    /** Set name, for messages. */
    set: string;
    accessKeyId: string;
    /** The set's IAM user ARN, as the `aws.iam.User` resource reports it. */
    userArn: string;
    /** Region the STS client calls, for messages. */
    region: string;
    /** Give up after this long (the set's `validateTimeout`). */
    timeoutMs: number;
}

/** A successful key check. */
export interface KeyConfirmed {
    /** The ARN STS reported (equal to the user ARN). */
    arn: string;
    /** Calls made, 1 when the key worked at once. */
    attempts: number;
}

/** First wait between attempts; doubled after each failure up to {@link maxBackoffMs}. */
export const firstBackoffMs = 1_000;
/** Longest wait between attempts. */
export const maxBackoffMs = 8_000;

/**
 * Step 2 of AWS's recipe: call STS GetCallerIdentity with the new key (the client must be built
 * with that key's credentials) until it answers with the set's user ARN. IAM is eventually
 * consistent, so a fresh key may be rejected for a while (`InvalidClientTokenId`): every error is
 * retried with exponential back-off until `timeoutMs` has passed. An answer naming another
 * principal is not a propagation delay and fails at once.
 *
 * Errors name the key id and the setting to change; they never contain the secret (the caller
 * additionally redacts it from any message, since SDK messages are not under our control).
 */
export async function confirmKeyIdentity(sts: SdkClient, check: KeyIdentityCheck, clock: RetryClock = realClock): Promise<KeyConfirmed> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { GetCallerIdentityCommand } = require("@aws-sdk/client-sts") as typeof import("@aws-sdk/client-sts");
    const started = clock.now();
    let wait = firstBackoffMs;
    let attempts = 0;
    let lastError = "";
    for (;;) {
        attempts++;
        let arn: string | undefined;
        try {
            const out = await sts.send(new GetCallerIdentityCommand({}));
            arn = String(out?.Arn ?? "");
        } catch (err) {
            const e = err as { name?: string; Code?: string; message?: string };
            lastError = `${e?.name ?? e?.Code ?? "Error"}: ${e?.message ?? String(err)}`;
        }
        if (arn !== undefined) {
            if (arn === check.userArn) return { arn, attempts };
            const fail = new Error(
                `Key ${check.accessKeyId} of set "${check.set}" authenticates as ${arn || "(no ARN)"}, not as the set's user ${check.userArn}. ` +
                    "The key stays and nothing was deactivated, but it must not be used: check that no other program manages this IAM user or its keys, then run again.",
            );
            fail.name = "KeyCheckError";
            throw fail;
        }
        const elapsed = clock.now() - started;
        if (elapsed + wait > check.timeoutMs) {
            const fail = new Error(
                `Key ${check.accessKeyId} of set "${check.set}" did not authenticate with STS GetCallerIdentity (region ${check.region}) within ` +
                    `${Math.round(check.timeoutMs / 1000)}s: ${attempts} attempt${attempts === 1 ? "" : "s"}, last error ${lastError}. ` +
                    "IAM may need longer to make a new key usable. The key stays, the targets were not written and nothing was deactivated; the next run checks it again. " +
                    `If this repeats, raise \`validateTimeout\` for set "${check.set}" and check that this machine can reach STS.`,
            );
            fail.name = "KeyCheckError";
            throw fail;
        }
        await clock.sleep(wait);
        wait = Math.min(wait * 2, maxBackoffMs);
    }
}

/**
 * IAM GetAccessKeyLastUsed for one key, as the last-used gate needs it. A key never used has no
 * `LastUsedDate`; IAM then reports service and region as `N/A`, which become absent here.
 */
export async function readLastUse(iam: SdkClient, userName: string, accessKeyId: string): Promise<LastUse> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { GetAccessKeyLastUsedCommand } = require("@aws-sdk/client-iam") as typeof import("@aws-sdk/client-iam");
    let out: { UserName?: string; AccessKeyLastUsed?: { LastUsedDate?: Date | string; ServiceName?: string; Region?: string } };
    try {
        out = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId }));
    } catch (err) {
        const e = err as { name?: string; message?: string };
        const why = `${e?.name ?? "Error"}: ${e?.message ?? String(err)}`;
        if (e?.name === "AccessDenied" || e?.name === "AccessDeniedException") {
            throw new Error(
                `The last-used gate could not read the last use of key ${accessKeyId} (IAM user ${userName}): ${why}. ` +
                    "Allow `iam:GetAccessKeyLastUsed` on that user for the credentials this program runs with, or set `lastUsedGate: false` for the set.",
            );
        }
        throw new Error(`The last-used gate could not read the last use of key ${accessKeyId} (IAM user ${userName}): ${why}. No step was taken; run again.`);
    }
    if (out.UserName && out.UserName !== userName) {
        throw new Error(`IAM says key ${accessKeyId} belongs to ${out.UserName}, not ${userName}; check the set's \`user.name\`.`);
    }
    const last = out.AccessKeyLastUsed;
    const known = (s: string | undefined) => (s && s !== "N/A" ? s : undefined);
    const date = last?.LastUsedDate;
    const at = date === undefined || date === null ? undefined : new Date(date).toISOString();
    return {
        ...(at ? { at } : {}),
        ...(known(last?.ServiceName) ? { service: last!.ServiceName } : {}),
        ...(known(last?.Region) ? { region: last!.Region } : {}),
    };
}

/** Credentials and region for an SDK client, resolved the way the AWS provider resolves them. */
export interface SdkClientConfig {
    region: string;
    /** A named profile from `aws:profile`; the SDK reads it from the shared config files. */
    profile?: string;
    /** Static keys from `aws:accessKey` / `aws:secretKey` / `aws:token`. */
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * The region and credentials the AWS provider uses, for the SDK clients: `aws:region` (else
 * `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1`, where IAM lives), static keys from
 * `aws:accessKey`/`aws:secretKey`/`aws:token`, a profile from `aws:profile`; otherwise the SDK's
 * default chain, which reads the same environment variables and files the provider reads.
 * `config` reads raw stack config by full key (e.g. `aws:region`).
 */
export function sdkClientConfig(config: (key: string) => string | undefined, env: NodeJS.ProcessEnv): SdkClientConfig {
    const value = (key: string) => {
        const v = config(key);
        return v === undefined || v === "" ? undefined : v;
    };
    const region = value("aws:region") ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
    const accessKeyId = value("aws:accessKey");
    const secretAccessKey = value("aws:secretKey");
    if (accessKeyId && secretAccessKey) {
        const sessionToken = value("aws:token");
        return { region, credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
    }
    const profile = value("aws:profile");
    return { region, ...(profile ? { profile } : {}) };
}
