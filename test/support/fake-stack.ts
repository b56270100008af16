/**
 * A fake Pulumi stack for the Automation API callers. Each `up` runs the real, pure phase
 * machine (`plan`) over the config the caller set, against a consistent in-memory IAM, and
 * returns outputs shaped like the program's. It records every call, and can be told to fail or
 * to hold an `up` until released.
 */
import { writeFileSync } from "node:fs";
import { DateTime, Duration } from "luxon";
import type { RotationStack, StackOpener, StackOutputs } from "../../rotation/ops/automation";
import { validateConfig } from "../../rotation/core/config";
import { plan } from "../../rotation/core/plan";
import type { RotationState } from "../../rotation/core/state";

export type FakeCall =
    | { op: "setConfig"; key: string; value: string; path: boolean }
    | { op: "removeConfig"; key: string }
    | { op: "up"; request: Record<string, unknown> }
    | { op: "outputs" };

/** A clock shared by the fake and the client under test. */
export class FakeClock {
    constructor(public ms = Date.parse("2026-11-23T12:00:00Z")) {}
    now = (): Date => new Date(this.ms);
    advance(iso: string): void {
        this.ms = DateTime.fromMillis(this.ms).plus(Duration.fromISO(iso)).toMillis();
    }
}

export interface FakeStackOptions {
    /** Credential set names. */
    sets?: string[];
    /** Extra top-level settings (`every`, `overlap`, `paused`...). */
    settings?: Record<string, unknown>;
    clock: FakeClock;
}

export class FakeStack implements RotationStack {
    readonly calls: FakeCall[] = [];
    /** Stack config as `pulumi config` would hold it (request keys only; the rest is `settings`). */
    readonly config = new Map<string, string>();
    private current: StackOutputs = {};
    /** Errors the next `up`s throw, in order, before doing anything. */
    readonly upFailures: Error[] = [];
    /** The workspace's CLI version, as the real `Stack.workspace.pulumiVersion` reports it. */
    workspace = { pulumiVersion: "3.270.0" };
    /** Thrown by `removeConfig` when set. */
    removeConfigFailure?: Error;
    private holds: Promise<void>[] = [];
    /** SIGINTs the SDK would have sent to the `pulumi` process (aborts of `up`'s signal). */
    signals = 0;
    /** When set, the request keys of the config are written there as JSON after every change. */
    configFile?: string;
    private readonly sets: string[];

    constructor(private readonly options: FakeStackOptions) {
        this.sets = options.sets ?? ["deploy"];
    }

    /** `up`s wait until the returned function is called. */
    hold(): () => void {
        let release!: () => void;
        this.holds.push(new Promise<void>((r) => (release = r)));
        return release;
    }

    /** Resolves once `count` `up`s have started (a held `up` counts as started). */
    async upsStarted(count = 1): Promise<void> {
        while (this.ups.length < count) await new Promise((r) => setImmediate(r));
    }

    get ups(): Extract<FakeCall, { op: "up" }>[] {
        return this.calls.filter((c): c is Extract<FakeCall, { op: "up" }> => c.op === "up");
    }

    /** Calls that change the stack (anything but reading outputs). */
    get changes(): FakeCall[] {
        return this.calls.filter((c) => c.op !== "outputs");
    }

    get state(): RotationState | undefined {
        return this.current.rotation?.value as RotationState | undefined;
    }

    async setConfig(key: string, value: { value: string }, path = false): Promise<void> {
        this.calls.push({ op: "setConfig", key, value: value.value, path });
        this.config.set(key, value.value);
        this.mirror();
    }

    async removeConfig(key: string): Promise<void> {
        this.calls.push({ op: "removeConfig", key });
        if (this.removeConfigFailure) throw this.removeConfigFailure;
        for (const k of [...this.config.keys()]) if (k === key || k.startsWith(`${key}[`)) this.config.delete(k);
        this.mirror();
    }

    async outputs(): Promise<StackOutputs> {
        this.calls.push({ op: "outputs" });
        return structuredClone(this.current);
    }

    /**
     * Like the real one: an abort of `signal` is a SIGINT to the `pulumi` process, which cancels
     * the update (the SDK then rejects with the command's failure). Cancelling here changes no
     * output; `signals` counts the SIGINTs sent.
     */
    async up(options: { signal?: AbortSignal } = {}): Promise<{ outputs: StackOutputs }> {
        const request = this.requestConfig();
        this.calls.push({ op: "up", request });
        const { signal } = options;
        if (signal?.aborted) this.signals++;
        await new Promise<void>((resolve, reject) => {
            const cancelled = () => {
                this.signals++;
                const err = new Error("code: 255\n stdout: ^C received; cancelling. If you would like to terminate immediately, press ^C again.\n stderr: error: update canceled\n");
                err.name = "CommandError";
                reject(err);
            };
            if (signal?.aborted) return cancelled();
            signal?.addEventListener("abort", cancelled, { once: true });
            Promise.all(this.holds).then(() => {
                signal?.removeEventListener("abort", cancelled);
                resolve();
            });
        });
        const failure = this.upFailures.shift();
        if (failure) throw failure;
        this.current = this.run(request);
        // Runs take time; the next one acts at a later instant.
        this.options.clock.advance("PT1M");
        return { outputs: structuredClone(this.current) };
    }

    /** A plain `pulumi up` by cron, outside the client under test. */
    async cron(): Promise<void> {
        await this.up();
        this.calls.length = 0;
    }

    private mirror(): void {
        if (this.configFile) writeFileSync(this.configFile, JSON.stringify(Object.fromEntries(this.config)));
    }

    private requestConfig(): Record<string, unknown> {
        const out: Record<string, unknown> = {};
        const requestSets: string[] = [];
        for (const [key, value] of this.config) {
            const name = key.replace(/^ci-key-rotation:/, "");
            const m = /^requestSets\[(\d+)\]$/.exec(name);
            if (m) requestSets[Number(m[1])] = value;
            else out[name] = value;
        }
        if (requestSets.length > 0) out.requestSets = requestSets;
        return out;
    }

    private run(request: Record<string, unknown>): StackOutputs {
        const raw = {
            credentials: this.sets.map((name) => ({ name, targets: [{ type: "github-repository", repository: `acme/${name}` }] })),
            ...this.options.settings,
            ...request,
        };
        const result = validateConfig(raw);
        if (!result.ok) throw new Error(`Invalid ci-key-rotation configuration:\n${result.problems.join("\n")}`);
        const config = result.config;
        const now = DateTime.fromJSDate(this.options.clock.now()).toUTC();
        const previous = this.state;
        const states: RotationState["sets"] = {};
        const summaries: Record<string, unknown> = {};
        const blocked: string[] = [];
        const blockedNames: string[] = [];
        for (const set of config.sets) {
            const state = previous?.sets[set.name];
            const req = config.request && (!config.request.sets || config.request.sets.includes(set.name)) ? config.request : undefined;
            const input = {
                set: set.name,
                user: set.user.name,
                state,
                observed: (state?.keys ?? []).map((k) => ({ accessKeyId: k.accessKeyId, status: k.status })),
                policy: set.policy,
                request: req,
                now,
            };
            let planned = plan(input);
            if (planned.kind === "needs-last-use") planned = plan({ ...input, lastUse: {} });
            if (planned.kind === "blocked") {
                // Like the program: a blocked set registers nothing and keeps its state.
                blocked.push(planned.message);
                blockedNames.push(set.name);
                if (state) states[set.name] = state;
                const summary = (this.current.sets?.value as Record<string, unknown> | undefined)?.[set.name];
                if (summary) summaries[set.name] = summary;
                continue;
            }
            if (planned.kind !== "decision") throw new Error("fake: plan asked twice for last use");
            const d = planned.decision;
            const keys = d.state.keys.map((k) => (k.generation === d.minted ? { ...k, accessKeyId: keyId(set.name, k.generation) } : k));
            // A removed key is gone from `keys`: the engine deletes it after the program, so the
            // next run's IAM list (built from `keys`) no longer shows it.
            states[set.name] = { ...d.state, keys };
            // No current key while a set has none yet (paused before its first mint), as the program reports it.
            const current = keys.find((k) => k.generation === d.current);
            summaries[set.name] = {
                user: set.user.name,
                userArn: `arn:aws:iam::123456789012:user${set.user.path}${set.user.name}`,
                accessKeyId: current?.accessKeyId ?? "",
                generation: d.current,
                phase: d.state.phase,
                paused: d.paused,
                step: d.step,
                reason: d.reason,
                next: d.next,
                keys: keys.map((k) => ({ generation: k.generation, accessKeyId: k.accessKeyId, status: k.status, createdAt: k.createdAt, age: "PT0M" })),
                targets: [`github repository acme/${set.name}`],
                warnings: d.warnings,
            };
        }
        const outputs: StackOutputs = {
            rotation: { value: { version: 1, asOf: now.toISO()!, sets: states }, secret: false },
            sets: { value: summaries, secret: false },
        };
        // A failed update still saves the outputs the program registered (pulumi/pulumi PR #15754,
        // CLI >= 3.112): the other sets' steps are kept.
        if (blocked.length > 0) this.current = outputs;
        if (blocked.length > 0) throw new Error(`error: Running program failed:\nRotationBlockedError: No step was taken for ${blockedNames.length === 1 ? "set" : "sets"} ${blockedNames.map((n) => `"${n}"`).join(", ")} (any other set took its step), because:\n  - ${blocked.join("\n  - ")}`);
        return outputs;
    }
}

/** `AKIA` + set + generation, 20 characters like a real access key id. */
export function keyId(set: string, generation: number): string {
    return `AKIA${set.toUpperCase().replace(/[^A-Z0-9]/g, "")}${String(generation).padStart(4, "0")}`.padEnd(20, "X").slice(0, 20);
}

/** An opener that hands out fakes by stack name and records what was opened. */
export function fakeOpener(stacks: Record<string, FakeStack>): StackOpener & { opened: string[] } {
    const opened: string[] = [];
    const open = async ({ stack }: { stack: string }) => {
        opened.push(stack);
        const fake = stacks[stack];
        if (!fake) {
            const err = new Error(`code: 255\n stderr: error: no stack named '${stack}' found\n`);
            err.name = "StackNotFoundError";
            throw err;
        }
        return fake;
    };
    return Object.assign(open, { opened });
}
