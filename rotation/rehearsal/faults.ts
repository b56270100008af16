import { CrashSignal, type PendingOperation, type RunContext } from "./engine";
import { Random } from "./random";
import { ApiError, defaultPropagationMs, type FakeKms } from "./world";

/** A time window, epoch milliseconds, `from` included and `until` excluded. */
export interface Window {
    from: number;
    until: number;
}

/** The faults a rehearsal injects. Every field is optional; the default injects nothing. */
export interface FaultOptions {
    /** Probability that any one write operation fails with an API error. */
    failRate?: number;
    /** An API error at operation `op` (1-based) of the first run at or after `at`. */
    failAt?: { at: number; op: number }[];
    /**
     * A crash (the `pulumi up` process killed) after `after` operations of the first run at or
     * after `at`. With `inFlight`, the kill comes while the next operation's provider call is in
     * flight: the call takes effect (a key is created) and the engine never records it.
     */
    crashAt?: { at: number; after: number; inFlight?: boolean }[];
    /** Probability that a run crashes after a random number of its operations (half of them with the next one in flight). */
    crashRate?: number;
    /** Targets whose store addresses contain `match` (every target when absent) reject writes in the window. */
    rejectWrites?: (Window & { match?: string })[];
    /**
     * S3 env-file writes fail in the window: `SlowDown` (throttling that outlasts the provider's
     * retries) or `KMSAccessDenied` (the operator lost kms:GenerateDataKey on the object's key).
     */
    s3Faults?: (Window & { code: "SlowDown" | "KMSAccessDenied" })[];
    /**
     * Creates and updates of resources of `type` (a Pulumi type token) fail with AWS's
     * `ThrottlingException` in the window (e.g. PutSecretValue of a Secrets Manager version).
     */
    throttle?: (Window & { type: string })[];
    /** KMS refuses `principal` every Decrypt in the window (a key policy edited by hand). */
    kmsDeny?: (Window & { principal: string })[];
    /** Run Command fails on `instance` in the window (offline, agent stopped): it keeps its old credentials file. */
    deliveryFails?: (Window & { instance: string })[];
    /** Probability that a scheduled run does not happen (a missed cron trigger). */
    missRate?: number;
    /** Windows in which no run happens. */
    outages?: Window[];
    /** Each run starts up to this many milliseconds after its scheduled time. */
    jitterMs?: number;
    /**
     * Probability that IAM is slow to make a new key usable: from one to ten minutes instead of
     * the usual few seconds, longer than the key check's default `validateTimeout` (PT30S).
     */
    slowKeyRate?: number;
    /**
     * Probability that a second run is triggered at the same instant right after a run (two
     * cron triggers, or a person and cron). Runs that changed something always get one.
     */
    twinRate?: number;
    /** KMS refuses Decrypt to `principal` (every principal when absent) in the window: jobs of encrypting targets fail. */
    kmsDenied?: (Window & { principal?: string })[];
    /** KMS throttles Encrypt in the window (ThrottlingException): a run that makes a ciphertext fails. */
    kmsThrottled?: Window[];
}

/** Turns {@link FaultOptions} into decisions, run by run and operation by operation. */
export class FaultInjector {
    private readonly failAt: { at: number; op: number; used: boolean }[];
    private readonly crashAt: { at: number; after: number; inFlight?: boolean; used: boolean }[];
    private run?: { failOp?: number; crashAfter?: number; inFlight?: boolean; killing?: boolean; injected: string[] };
    private readonly iamRandom: Random;

    constructor(
        readonly options: FaultOptions,
        private readonly random: Random,
    ) {
        this.failAt = (options.failAt ?? []).map((f) => ({ ...f, used: false }));
        this.crashAt = (options.crashAt ?? []).map((c) => ({ ...c, used: false }));
        // A stream of its own, so how many keys a run mints does not shift the other faults.
        this.iamRandom = new Random(Math.floor(random.next() * 2 ** 32));
    }

    /** Does the run scheduled at `at` happen? */
    runs(at: number): boolean {
        if ((this.options.outages ?? []).some((w) => at >= w.from && at < w.until)) return false;
        return !this.random.chance(this.options.missRate ?? 0);
    }

    /** Delay of a run after its scheduled time. */
    jitter(): number {
        return this.options.jitterMs ? Math.floor(this.random.next() * this.options.jitterMs) : 0;
    }

    /** How long IAM takes to make a key created now usable, ms. */
    propagationMs(): number {
        if (this.iamRandom.chance(this.options.slowKeyRate ?? 0)) {
            const ms = 60_000 + Math.floor(this.iamRandom.next() * 540_000);
            this.run?.injected.push(`IAM slow: a new key became usable after ${Math.round(ms / 1000)} s`);
            return ms;
        }
        return Math.floor(this.iamRandom.next() * defaultPropagationMs);
    }

    /** Set the principals KMS refuses from instant `at` on (until the next call), per `kmsDeny`. */
    denyKms(kms: FakeKms, at: number): void {
        for (const w of this.options.kmsDeny ?? []) {
            if (at >= w.from && at < w.until) kms.denied.add(w.principal);
            else kms.denied.delete(w.principal);
        }
    }

    /** Should a twin run follow this one? */
    twin(changed: boolean): boolean {
        return changed || this.random.chance(this.options.twinRate ?? 0);
    }

    /** Conditions of the world that last beyond the run that caused them (a runner left with an old file), listed on every run while they hold. */
    readonly standing: ((at: number) => string[])[] = [];

    /** Prepare the faults of a run starting at `at`; `twin` runs get no scheduled faults. */
    startRun(at: number, twin: boolean): void {
        const run: NonNullable<typeof this.run> = { injected: [] };
        for (const conditions of this.standing) run.injected.push(...conditions(at));
        // A standing fault of the world, not of the run: every run in the window lists it, so jobs it breaks are explained.
        for (const w of this.options.kmsDeny ?? []) if (at >= w.from && at < w.until) run.injected.push(`KMS denies ${w.principal} kms:Decrypt`);
        if (!twin) {
            const fail = this.failAt.find((f) => !f.used && at >= f.at);
            if (fail) {
                fail.used = true;
                run.failOp = fail.op;
            }
            const crash = this.crashAt.find((c) => !c.used && at >= c.at);
            if (crash) {
                crash.used = true;
                run.crashAfter = crash.after;
                run.inFlight = crash.inFlight === true;
            } else if (this.random.chance(this.options.crashRate ?? 0)) {
                run.crashAfter = Math.floor(this.random.next() * 12);
                run.inFlight = this.random.chance(0.5);
            }
        }
        this.run = run;
    }

    /**
     * Whether a fault is planned for the current run at `at` (an API error or a crash at an
     * operation, or a target rejecting writes): such a run is never answered from an earlier one.
     */
    planned(at: number): boolean {
        const run = this.run;
        return run?.failOp !== undefined || run?.crashAfter !== undefined || (this.options.rejectWrites ?? []).some((w) => at >= w.from && at < w.until);
    }

    /** Faults injected into the current run, in words. */
    injected(): string[] {
        return this.run?.injected ?? [];
    }

    /** Engine hook: the kill of a run whose crash was set for an operation in flight. */
    afterEffect(op: PendingOperation, ctx: RunContext): void {
        const run = this.run!;
        if (!run.killing) return;
        run.killing = false;
        const n = ctx.operations.length;
        run.injected.push(`crash after ${n} operation(s), with ${op.action} ${op.name} in flight`);
        throw new CrashSignal(n, true);
    }

    /** Engine hook: maybe fail or crash before an operation. */
    beforeOperation(op: PendingOperation, ctx: RunContext): void {
        const run = this.run!;
        const n = ctx.operations.length;
        if (run.crashAfter !== undefined && n >= run.crashAfter) {
            run.crashAfter = undefined;
            if (run.inFlight) {
                // The kill lands once this operation's provider call has taken effect (afterEffect).
                run.killing = true;
                return;
            }
            run.injected.push(`crash after ${n} operation(s)`);
            throw new CrashSignal(n);
        }
        if (run.failOp === n + 1) {
            run.injected.push(`API error at operation ${n + 1} (${op.action} ${op.name})`);
            throw new ApiError("ServiceUnavailable", `injected failure at operation ${n + 1}`);
        }
        if (op.type === "aws:kms/ciphertext:Ciphertext" && (this.options.kmsThrottled ?? []).some((w) => ctx.at >= w.from && ctx.at < w.until)) {
            run.injected.push(`KMS throttled Encrypt for ${op.name}`);
            throw new ApiError("ThrottlingException", "Rate exceeded");
        }
        const rejecting = (this.options.rejectWrites ?? []).find(
            (w) => ctx.at >= w.from && ctx.at < w.until && op.addresses?.some((a) => !w.match || a.toLowerCase().includes(w.match.toLowerCase())),
        );
        if (rejecting) {
            run.injected.push(`target rejected ${op.action} ${op.name}`);
            throw new ApiError("HTTP 503", `the target rejected the write to ${op.name}`);
        }
        const s3 = (this.options.s3Faults ?? []).find((w) => ctx.at >= w.from && ctx.at < w.until && op.action !== "delete" && op.addresses?.some((a) => a.startsWith("s3:")));
        if (s3) {
            run.injected.push(`S3 ${s3.code} on ${op.action} ${op.name}`);
            // The provider's texts (internal/service/s3/object.go `resourceObjectUpload`), key and bucket left out.
            throw s3.code === "SlowDown"
                ? new ApiError("SlowDown", "uploading S3 Object: operation error S3: PutObject, https response error StatusCode: 503, api error SlowDown: Please reduce your request rate.")
                : new ApiError("AccessDenied", "uploading S3 Object: operation error S3: PutObject, https response error StatusCode: 403, api error AccessDenied: not authorized to perform: kms:GenerateDataKey");
        }
        const throttled = (this.options.throttle ?? []).find((w) => ctx.at >= w.from && ctx.at < w.until && w.type === op.type && (op.action === "create" || op.action === "update"));
        if (throttled) {
            run.injected.push(`throttled ${op.action} ${op.name}`);
            throw new ApiError("ThrottlingException", "Rate exceeded");
        }
        if (this.random.chance(this.options.failRate ?? 0)) {
            run.injected.push(`random API error at operation ${n + 1} (${op.action} ${op.name})`);
            throw new ApiError("Throttling", `injected failure at operation ${n + 1}`);
        }
    }
}
