import type { Consumer } from "./targets";
import type { Random } from "./random";
import type { Credentials, World } from "./world";

/** A CI job that could not authenticate: observed by calling the fake STS, not inferred. */
export interface BrokenJob {
    consumer: string;
    /** The credential set whose target the job read. */
    set?: string;
    /** When the failing call happened (ISO). */
    at: string;
    /** `start` (the job's first AWS call) or `end` (its last, hours later). */
    when: "start" | "end";
    startedAt: string;
    /** The key id the job read, if any (never the secret). */
    accessKeyId?: string;
    reason: string;
}

/** How CI jobs behave. */
export interface JobOptions {
    /** Average jobs per day per place a job runs. Default 24. */
    perDay?: number;
    /** The longest job, milliseconds; durations are uniform up to it. Default 6 hours (GitHub-hosted runners' limit). */
    longestMs?: number;
    /**
     * A consumer that reads the key once at `from` and keeps using that key every hour until
     * `until` (a forgotten laptop, a server outside CI): what the last-used gate is for.
     */
    rogue?: { from: number; until: number };
}

interface Pending {
    at: number;
    consumer: Consumer;
    startedAt: number;
    credentials: Credentials;
}

/**
 * Simulated CI jobs: each place a job runs starts jobs at random (a Poisson process); a job reads
 * the key when it starts and uses it then and again when it ends. The world's STS says whether
 * each call authenticates.
 */
export class CiJobs {
    readonly broken: BrokenJob[] = [];
    started = 0;
    rogueFailures = 0;
    rogueUses = 0;
    /** Oldest key age (ms) a job read. */
    oldestKeyAgeMs = 0;
    /**
     * Next start per place a job runs, by {@link placeId}: consumers that share a label (two
     * sets' targets in one repository) are separate places, each running its own jobs.
     */
    private readonly next = new Map<string, number>();
    private ends: Pending[] = [];
    private rogueCredentials?: Credentials;
    private rogueNext?: number;
    /** Consumers that have found credentials at least once; before that, nothing was pushed yet. */
    private readonly provisioned = new Set<string>();

    constructor(
        private readonly world: World,
        private readonly random: Random,
        private readonly options: JobOptions,
        private consumers: Consumer[],
        start: number,
    ) {
        this.ids = placeIds(consumers);
        for (const c of consumers) this.next.set(this.ids.get(c)!, start + this.gap());
        this.rogueNext = options.rogue?.from;
    }

    private ids: Map<Consumer, string>;

    /** Replace the consumers (the configuration changed). */
    setConsumers(consumers: Consumer[], now: number): void {
        this.consumers = consumers;
        this.ids = placeIds(consumers);
        for (const c of consumers) if (!this.next.has(this.ids.get(c)!)) this.next.set(this.ids.get(c)!, now + this.gap());
    }

    /** Play every job event before `until`, in time order. */
    advance(until: number): void {
        for (;;) {
            let best: { at: number; kind: "start" | "end" | "rogue"; consumer?: Consumer; pending?: Pending } | undefined;
            for (const c of this.consumers) {
                const at = this.next.get(this.ids.get(c)!)!;
                if (at < until && (!best || at < best.at)) best = { at, kind: "start", consumer: c };
            }
            const end = this.ends[0];
            if (end && end.at < until && (!best || end.at < best.at)) best = { at: end.at, kind: "end", pending: end };
            if (this.rogueNext !== undefined && this.rogueNext < until && (!best || this.rogueNext < best.at)) best = { at: this.rogueNext, kind: "rogue" };
            if (!best) return;
            if (best.kind === "start") this.start(best.consumer!, best.at);
            else if (best.kind === "end") this.finish(this.ends.shift()!);
            else this.rogue(best.at);
        }
    }

    private gap(): number {
        return Math.max(1, Math.round(this.random.exponential(86_400_000 / (this.options.perDay ?? 24))));
    }

    private start(consumer: Consumer, at: number): void {
        const id = this.ids.get(consumer)!;
        this.next.set(id, at + this.gap());
        const credentials = consumer.read(this.world.stores.asOf(at), this.world, at);
        if (credentials.accessKeyId === undefined && credentials.secret === undefined && !this.provisioned.has(id)) return;
        this.provisioned.add(id);
        this.started++;
        const key = this.world.iam.history.get(credentials.accessKeyId ?? "");
        if (key) this.oldestKeyAgeMs = Math.max(this.oldestKeyAgeMs, at - key.createdAt);
        if (!this.use(consumer, credentials, at, at, "start")) return;
        const longest = this.options.longestMs ?? 6 * 3_600_000;
        const pending = { at: at + Math.max(1, Math.floor(this.random.next() * longest)), consumer, startedAt: at, credentials };
        const i = this.ends.findIndex((e) => e.at > pending.at);
        if (i < 0) this.ends.push(pending);
        else this.ends.splice(i, 0, pending);
    }

    private finish(p: Pending): void {
        this.use(p.consumer, p.credentials, p.at, p.startedAt, "end");
    }

    private use(consumer: Consumer, credentials: Credentials, at: number, startedAt: number, when: "start" | "end"): boolean {
        const result = this.world.iam.authenticate(credentials, at);
        if (result.ok) return true;
        this.broken.push({ consumer: consumer.label, ...(consumer.set !== undefined ? { set: consumer.set } : {}), at: new Date(at).toISOString(), when, startedAt: new Date(startedAt).toISOString(), accessKeyId: credentials.accessKeyId, reason: result.reason });
        return false;
    }

    private rogue(at: number): void {
        const rogue = this.options.rogue!;
        if (at >= rogue.until || this.consumers.length === 0) {
            this.rogueNext = undefined;
            return;
        }
        // It keeps the first key it finds (before the first run's writes there is none yet).
        if (!this.rogueCredentials?.accessKeyId) this.rogueCredentials = this.consumers[0].read(this.world.stores.asOf(at), this.world, at);
        this.rogueUses++;
        if (!this.world.iam.authenticate(this.rogueCredentials, at).ok) this.rogueFailures++;
        this.rogueNext = at + 3_600_000;
    }
}

/** An id per place a job runs: the set and label, numbered when several consumers share both. */
function placeIds(consumers: Consumer[]): Map<Consumer, string> {
    const seen = new Map<string, number>();
    const ids = new Map<Consumer, string>();
    for (const c of consumers) {
        const base = `${c.set ?? ""}\u0000${c.label}`;
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        ids.set(c, `${base}\u0000${n}`);
    }
    return ids;
}
