/**
 * The Automation API face of ci-key-rotation: `rotate` and `status`, used by the CLI, the chatops
 * server and any Node program. `pulumi up` still does the work, one step per set per run; this
 * module sets the request flags in stack config, repeats `up` until the request is done or
 * waiting, clears the flags, and reports what happened.
 */
import { resolve } from "node:path";
import { DateTime, Duration } from "luxon";
import type { NextStep, StepName } from "../core/plan";
import { parseState, type Phase, type RotationState, type SetState } from "../core/state";

/** How a rotation is run. */
export type RotationMode =
    /** One `pulumi up`, exactly what the hourly cron does. */
    | "scheduled"
    /** Rotate now, keeping the usual waits (`overlap`, `retireAfter`, last-used gate). */
    | "request"
    /** Rotate to the end now: zero waits, no last-used gate. Jobs holding an old key fail. */
    | "emergency"
    /** The key leaked: emergency, and the old key is deactivated in the run that mints the new one. */
    | "revoke";

/** The modes, weakest first: a stronger run does everything a weaker one asks for. */
export const rotationModes: readonly RotationMode[] = ["scheduled", "request", "emergency", "revoke"];

/** Stack outputs as the Automation API returns them. */
export type StackOutputs = Record<string, { value: unknown; secret?: boolean }>;

/**
 * What this module needs from a Pulumi stack: a subset of `@pulumi/pulumi/automation`'s `Stack`,
 * so tests inject a fake and the real one fits as is.
 */
export interface RotationStack {
    /** The real `Stack` has it; read for the CLI's version (`pulumi version`, run by the SDK). */
    readonly workspace?: { readonly pulumiVersion: string };
    setConfig(key: string, value: { value: string; secret?: boolean }, path?: boolean): Promise<void>;
    removeConfig(key: string, path?: boolean): Promise<void>;
    up(options: { onOutput?: (out: string) => void; signal?: AbortSignal; continueOnError?: boolean }): Promise<{ outputs: StackOutputs }>;
    outputs(): Promise<StackOutputs>;
}

/** Opens an existing stack in a Pulumi project directory. */
export type StackOpener = (args: { stack: string; workDir: string }) => Promise<RotationStack>;

/** Tuning of the retry when another update holds the stack's lock. */
export interface LockRetry {
    /**
     * Attempts of one `up` in all. Default 6: with the default delays that waits about two and a
     * quarter minutes, longer than a typical hourly run of this program holds the lock.
     */
    attempts: number;
    /** First wait in milliseconds, doubled after each attempt. Default 5000. */
    initialDelayMs: number;
    /** Longest single wait in milliseconds. Default 60000. */
    maxDelayMs: number;
}

/** What the library reads from the world; tests replace all of it. */
export interface AutomationDeps {
    /** Default: `LocalWorkspace.selectStack` (never creates a stack: a typo must not make one). */
    openStack: StackOpener;
    /** Default: the real clock. */
    now: () => Date;
    /** Default: `setTimeout`. */
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
    /** Default {@link defaultLockRetry}. */
    lockRetry: LockRetry;
}

/** The defaults documented on {@link LockRetry}. */
export const defaultLockRetry: Readonly<LockRetry> = Object.freeze({ attempts: 6, initialDelayMs: 5_000, maxDelayMs: 60_000 });

/** Progress of a rotation, for a live view. */
export type ProgressEvent =
    | { kind: "config"; message: string }
    | { kind: "up"; run: number; maxRuns: number }
    /** A chunk of Pulumi's own streamed output (secrets are masked by Pulumi). */
    | { kind: "output"; text: string }
    | { kind: "locked"; attempt: number; attempts: number; retryInMs: number }
    /** What one `up` did for one set. */
    | { kind: "step"; run: number; set: string; step: StepName; reason: string; phase: Phase }
    | { kind: "joined"; mode: RotationMode; requestedBy: string };

/** Options of {@link RotationClient.rotate}. */
export interface RotateOptions {
    /** Stack name, as `pulumi stack ls` shows it. */
    stack: string;
    /** Directory holding `Pulumi.yaml`. Default: the current directory. */
    workDir?: string;
    /** Sets the request applies to (request modes only). Default: every set of the stack. */
    sets?: string[];
    mode: RotationMode;
    /** Why, in words: goes into the request id (as a slug) and the report. */
    reason: string;
    /** Who asked (a login, `slack:U123`): goes into the report, for the audit trail. */
    requestedBy: string;
    onProgress?: (event: ProgressEvent) => void;
    /**
     * Cancels the rotation: the running `up` is cancelled the way Ctrl-C cancels `pulumi up`
     * (Pulumi finishes the resource operations in flight, saves them, and stops), no further
     * `up` starts, the request is removed from stack config, and `rotate` rejects with an
     * `interrupted` error saying what state the stack was left in. Abort it with an
     * {@link Interrupt} whose `reachedPulumi` is true when the `pulumi` process got the signal
     * itself (Ctrl-C in a terminal reaches the whole process group): a second SIGINT would make
     * Pulumi terminate at once instead of finishing what is in flight.
     */
    signal?: AbortSignal;
    /**
     * Most `up`s a request may take. Default 8: an emergency that arrives mid-rotation needs six
     * (finish the old rotation, a run while the engine deletes, then mint, deactivate, delete).
     */
    maxRuns?: number;
}

/** One step an `up` took for a set. */
export interface StepTaken {
    step: Exclude<StepName, "none">;
    reason: string;
    /** The instant the run acted at (`rotation.asOf`). */
    at: string;
}

/** What a rotation did for one set. */
export interface SetReport {
    name: string;
    /** Whether the request applies to this set (every set in `scheduled` mode). */
    requested: boolean;
    /** Absent before the set's first run. */
    phaseBefore?: Phase;
    phaseAfter?: Phase;
    steps: StepTaken[];
    /** Access key id the targets held before, and after. */
    keyBefore?: string;
    keyAfter?: string;
    /** Every live key id before, and after (oldest first). */
    keysBefore: string[];
    keysAfter: string[];
    /** Labels of the targets written with the current key. */
    targets: string[];
    warnings: string[];
    /** The set's next step after the last run. */
    next?: NextStep;
    /** A paused set takes no step, requests included. */
    paused: boolean;
    /** Request modes: every key that existed at request time is deleted. */
    requestComplete?: boolean;
}

/**
 * How a rotation ended:
 * - `done`: scheduled run finished, or the request is complete for every requested set;
 * - `waiting`: a plain request did what is due now; later runs (cron) finish it, see `next`;
 * - `incomplete`: an emergency or revoke could not finish (a set is paused, or `maxRuns` ran out).
 */
export type RotationOutcome = "done" | "waiting" | "incomplete";

/** The report of {@link RotationClient.rotate}. */
export interface RotationReport {
    stack: string;
    mode: RotationMode;
    /** The request id written to `ci-key-rotation:request` (request modes). */
    requestId?: string;
    reason: string;
    requestedBy: string;
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    /** `pulumi up` runs that completed. */
    runs: number;
    outcome: RotationOutcome;
    /** One sentence for people. */
    summary: string;
    sets: SetReport[];
    /** Problems around the rotation itself, e.g. flags left in stack config. */
    warnings: string[];
    /** Present when this call joined a rotation already running in this process. */
    joined?: { mode: RotationMode; requestedBy: string };
}

/** Options of {@link RotationClient.status}. */
export interface StatusOptions {
    stack: string;
    /** Directory holding `Pulumi.yaml`. Default: the current directory. */
    workDir?: string;
    /**
     * A last run older than this gets a warning (is the cron running?). Default `PT3H`: three
     * missed runs at the recommended hourly cadence.
     */
    staleAfter?: Duration;
}

/** One key in a status report. */
export interface KeyStatus {
    generation: number;
    accessKeyId: string;
    status: "Active" | "Inactive";
    createdAt: string;
    /** Age now (not at the last run), ISO-8601. */
    age: string;
}

/** One set in a status report. */
export interface SetStatus {
    name: string;
    user?: string;
    phase: Phase;
    generation: number;
    /** The key the targets hold. */
    accessKeyId?: string;
    keys: KeyStatus[];
    paused: boolean;
    targets: string[];
    /** What the next scheduled run does, and from when. */
    next?: NextStep & { dueNow: boolean };
    /** A request being worked on. */
    request?: { id: string; seenAt: string };
    lastRequest?: string;
    /** Warnings of the last run. */
    warnings: string[];
}

/** The report of {@link RotationClient.status}. */
export interface StatusReport {
    stack: string;
    /** When the last successful run acted; absent when the stack never ran. */
    asOf?: string;
    /** When this report was made. */
    readAt: string;
    sets: SetStatus[];
    warnings: string[];
}

/** What {@link RotationClient.inFlight} says about a stack. */
export interface InFlightRotation {
    mode: RotationMode;
    requestedBy: string;
    sets?: string[];
}

/** The reason to abort {@link RotateOptions.signal} with, when a signal interrupts a rotation. */
export class Interrupt extends Error {
    constructor(
        readonly signalName: "SIGINT" | "SIGTERM",
        /** Whether the `pulumi` process already received the signal (see {@link RotateOptions.signal}). */
        readonly reachedPulumi: boolean,
    ) {
        super(`interrupted by ${signalName}`);
        this.name = "Interrupt";
    }
}

/** Base of every error this module raises: `kind` lets callers map it to an exit code. */
export class OperationError extends Error {
    constructor(
        readonly kind: "cli-missing" | "cli-too-old" | "stack-missing" | "stack-locked" | "blocked" | "config" | "run-failed" | "bad-input" | "interrupted",
        message: string,
        /** What the rotation did before it failed, when it got that far. */
        readonly partial?: RotationReport,
    ) {
        super(message);
        this.name = "OperationError";
    }
}

/** The install hint, kept in one place because every entry point prints it. */
export const installHint = "The `pulumi` CLI was not found on PATH: install it (https://www.pulumi.com/docs/install/) and run again.";

/**
 * The oldest `pulumi` CLI this library runs. Since pulumi/pulumi PR #15754 (CLI 3.112) a failed
 * update saves the outputs the program registered; before it, a failed update dropped every
 * stack output (pulumi/pulumi#12929), and the rotation state lives in those outputs, so a failed
 * run would forget every key. The program itself refuses engines older than 3.133 (it cannot ask
 * the engine its version before 3.217, so it probes the `parameterization` feature, PR #17153: see
 * `rotation/pulumi/program.ts`); the library asks for the same version so both refuse the same CLIs.
 * The SDK's own check only asks for 3.2 (automation/minimumVersion.ts).
 */
export const minimumPulumiVersion = "3.133.0";

/** The message for a CLI older than {@link minimumPulumiVersion}. */
function cliTooOld(version: string): string {
    return `The pulumi CLI is version ${version}; ci-key-rotation needs ${minimumPulumiVersion} or newer: older CLIs drop every stack output when an update fails (pulumi/pulumi#12929), and the rotation state lives in those outputs. Upgrade it (https://www.pulumi.com/docs/install/) and run again.`;
}

/** Whether `version` (`3.111.0`, `v3.130.1-alpha.x`) is older than {@link minimumPulumiVersion}. */
export function olderThanMinimum(version: string): boolean {
    const m = /^v?(\d+)\.(\d+)\./.exec(version.trim());
    if (!m) return false; // unparsable (a dev build, or the SDK's check skipped): do not guess
    const [, major, minor] = m.map(Number);
    const [minMajor, minMinor] = minimumPulumiVersion.split(".").map(Number);
    return major < minMajor || (major === minMajor && minor < minMinor);
}

const configPrefix = "ci-key-rotation:";
const requestKeys = ["request", "requestSets", "emergency", "revoke"] as const;
const setNamePattern = /^[a-z][a-z0-9-]{0,39}$/;
const stackNamePattern = /^[A-Za-z0-9_.\/-]{1,200}$/;

/**
 * A request id: mode, instant and a slug of the reason, e.g.
 * `emergency-20261122T130501Z-key-pasted-in-build-log`. The instant keeps ids new (a reused id is
 * an already handled request); the slug makes the id readable in state and audit logs.
 */
export function requestIdFor(mode: RotationMode, reason: string, now: Date): string {
    const stamp = DateTime.fromJSDate(now).toUTC().toFormat("yyyyMMdd'T'HHmmss'Z'");
    const slug = reason
        .toLowerCase()
        .normalize("NFKD")
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 60)
        .replace(/-+$/, "");
    return slug ? `${mode}-${stamp}-${slug}` : `${mode}-${stamp}`;
}

/** `rotate` and `status` bound to one set of dependencies, with single-flight per stack. */
export interface RotationClient {
    rotate(options: RotateOptions): Promise<RotationReport>;
    status(options: StatusOptions): Promise<StatusReport>;
    /** The rotation this process runs (or queued) for a stack, if any. */
    inFlight(stack: string, workDir?: string): InFlightRotation | undefined;
}

interface Pending extends InFlightRotation {
    promise: Promise<RotationReport>;
}

/** Make a client; the real one by default, fakes in tests. */
export function createRotationClient(overrides: Partial<AutomationDeps> = {}): RotationClient {
    const deps: AutomationDeps = {
        openStack: overrides.openStack ?? openLocalStack,
        now: overrides.now ?? (() => new Date()),
        sleep: overrides.sleep ?? sleep,
        lockRetry: overrides.lockRetry ?? defaultLockRetry,
    };
    // Per stack: the rotations running or queued in this process, oldest first.
    const pending = new Map<string, Pending[]>();
    const keyOf = (stack: string, workDir: string | undefined) => `${resolve(workDir ?? process.cwd())}\u0000${stack}`;

    return {
        rotate(options) {
            const bad = checkRotateOptions(options);
            if (bad) return Promise.reject(new OperationError("bad-input", bad));
            const key = keyOf(options.stack, options.workDir);
            const queue = pending.get(key) ?? [];
            // A rotation already running or queued that does at least as much answers this call:
            // the same request is never started twice.
            const covering = queue.find((p) => covers(p, options));
            if (covering) {
                options.onProgress?.({ kind: "joined", mode: covering.mode, requestedBy: covering.requestedBy });
                return covering.promise.then((report) => ({ ...report, joined: { mode: covering.mode, requestedBy: covering.requestedBy } }));
            }
            const previous = queue.at(-1)?.promise;
            // Serialised behind the previous one; its failure is its caller's, not this call's.
            const promise = (previous ? previous.then(noop, noop) : Promise.resolve()).then(() => runRotation(deps, options));
            const entry: Pending = { mode: options.mode, requestedBy: options.requestedBy, sets: options.sets, promise };
            queue.push(entry);
            pending.set(key, queue);
            const forget = () => {
                const rest = (pending.get(key) ?? []).filter((p) => p !== entry);
                if (rest.length > 0) pending.set(key, rest);
                else pending.delete(key);
            };
            promise.then(forget, forget);
            return promise;
        },
        status(options) {
            return readStatus(deps, options);
        },
        inFlight(stack, workDir) {
            const first = pending.get(keyOf(stack, workDir))?.[0];
            return first && { mode: first.mode, requestedBy: first.requestedBy, sets: first.sets };
        },
    };
}

let defaultClient: RotationClient | undefined;

/** {@link RotationClient.rotate} with the real Pulumi workspace. */
export function rotate(options: RotateOptions): Promise<RotationReport> {
    defaultClient ??= createRotationClient();
    return defaultClient.rotate(options);
}

/** {@link RotationClient.status} with the real Pulumi workspace. Reads outputs only. */
export function status(options: StatusOptions): Promise<StatusReport> {
    defaultClient ??= createRotationClient();
    return defaultClient.status(options);
}

function noop(): void {}

function covers(running: InFlightRotation, wanted: RotateOptions): boolean {
    if (rotationModes.indexOf(running.mode) < rotationModes.indexOf(wanted.mode)) return false;
    if (!running.sets) return true;
    return wanted.sets !== undefined && wanted.mode !== "scheduled" && wanted.sets.every((s) => running.sets!.includes(s));
}

function checkRotateOptions(o: RotateOptions): string | undefined {
    if (!stackNamePattern.test(o.stack ?? "")) return `\`stack\` must be a stack name such as "prod" or "org/prod" (got ${JSON.stringify(o.stack)})`;
    if (!rotationModes.includes(o.mode)) return `\`mode\` must be one of ${rotationModes.join(", ")} (got ${JSON.stringify(o.mode)})`;
    if (o.sets !== undefined) {
        if (o.mode === "scheduled") return "`sets` applies to requests only: a scheduled run advances every set";
        if (o.sets.length === 0) return "`sets` must name at least one set, or be left out for every set";
        const wrong = o.sets.filter((s) => !setNamePattern.test(s));
        if (wrong.length > 0) return `\`sets\` must be set names (lower-case letters, digits, dashes): ${wrong.map((s) => JSON.stringify(s)).join(", ")}`;
    }
    if (o.maxRuns !== undefined && !(Number.isInteger(o.maxRuns) && o.maxRuns >= 1)) return "`maxRuns` must be a whole number of at least 1";
    return undefined;
}

async function runRotation(deps: AutomationDeps, options: RotateOptions): Promise<RotationReport> {
    const workDir = resolve(options.workDir ?? process.cwd());
    const started = deps.now();
    const progress = options.onProgress ?? noop;
    const stack = await open(deps, options.stack, workDir);

    const isRequest = options.mode !== "scheduled";
    const requestId = isRequest ? requestIdFor(options.mode, options.reason, started) : undefined;
    const maxRuns = isRequest ? (options.maxRuns ?? 8) : 1;
    const warnings: string[] = [];
    const runs: ParsedOutputs[] = [];
    let before: ParsedOutputs = { summaries: {} };
    let outcome: RotationOutcome = "incomplete";
    let failure: unknown;
    const report = (): RotationReport => buildReport({ options, requestId, started, finished: deps.now(), before, runs, outcome, warnings: [...warnings] });

    try {
        before = readOutputs(await stack.outputs());
        if (isRequest) {
            try {
                // Leftovers of an interrupted run would mix into this request.
                await clearRequestConfig(stack);
                await stack.setConfig(`${configPrefix}request`, { value: requestId! });
                for (const [i, name] of (options.sets ?? []).entries()) {
                    await stack.setConfig(`${configPrefix}requestSets[${i}]`, { value: name }, true);
                }
                if (options.mode === "emergency" || options.mode === "revoke") await stack.setConfig(`${configPrefix}emergency`, { value: "true" });
                if (options.mode === "revoke") await stack.setConfig(`${configPrefix}revoke`, { value: "true" });
            } catch (err) {
                if (isCliMissing(err)) throw err;
                throw new OperationError("run-failed", `Could not write the request to the config of stack \`${options.stack}\` in ${workDir} (${firstLine(err)}); nothing was rotated.`);
            }
            progress({ kind: "config", message: `set ci-key-rotation:request to ${requestId}${options.sets ? ` for ${options.sets.join(", ")}` : ""}` });
        }
        for (let run = 1; run <= maxRuns; run++) {
            options.signal?.throwIfAborted();
            progress({ kind: "up", run, maxRuns });
            const result = await upWithLockRetry(deps, stack, options, progress);
            const parsed = readOutputs(result.outputs);
            runs.push(parsed);
            for (const [name, summary] of Object.entries(parsed.summaries)) {
                progress({ kind: "step", run, set: name, step: summary.step, reason: summary.reason, phase: summary.phase });
            }
            if (!isRequest) {
                outcome = "done";
                break;
            }
            const state = classify(parsed, options, requestId!, deps.now());
            if (state === "done") outcome = "done";
            else if (state === "waiting") outcome = options.mode === "request" ? "waiting" : "incomplete";
            // "due": more is due now; loop, or stay incomplete when maxRuns ran out.
            if (state !== "due") break;
        }
    } catch (err) {
        failure = err;
    }

    // Also after a failure or an interrupt: flags left in config would make every later cron run
    // act on them (an aborted emergency would go on at the next scheduled run).
    let cleared = true;
    if (isRequest) {
        try {
            await clearRequestConfig(stack);
            progress({ kind: "config", message: "cleared ci-key-rotation:request and its flags" });
        } catch (err) {
            cleared = false;
            warnings.push(
                `could not clear the request from stack config (${firstLine(err)}); run \`pulumi config rm ci-key-rotation:request\` (and requestSets, emergency, revoke) in ${workDir} so later scheduled runs do not act on it`,
            );
        }
    }
    if (failure !== undefined && options.signal?.aborted) {
        throw new OperationError("interrupted", await interruptedMessage(stack, options, runs.length, isRequest, cleared, workDir), report());
    }
    if (failure !== undefined) throw toOperationError(failure, options.stack, workDir, report());
    return report();
}

/** What an interrupted rotation left behind, read back from the stack. */
async function interruptedMessage(stack: RotationStack, options: RotateOptions, completed: number, isRequest: boolean, cleared: boolean, workDir: string): Promise<string> {
    const lines = [
        `Interrupted: the rotation of \`${options.stack}\` stopped after ${completed} completed \`pulumi up\` run${completed === 1 ? "" : "s"}; a running update was cancelled the way Ctrl-C cancels \`pulumi up\` (operations in flight finished and were saved).`,
    ];
    if (isRequest) {
        lines.push(
            cleared
                ? "The request was removed from stack config: scheduled runs will not continue it."
                : `The request could NOT be removed from stack config: run \`pulumi config rm ci-key-rotation:request\` (and requestSets, emergency, revoke) in ${workDir} before the next scheduled run.`,
        );
    }
    try {
        const state = readOutputs(await stack.outputs()).state;
        for (const [name, set] of Object.entries(state?.sets ?? {})) {
            lines.push(`  ${name}: ${set.phase}, keys ${set.keys.map((k) => `${k.accessKeyId} (${k.status})`).join(", ") || "none"}${set.request ? `, request ${set.request.id} still open` : ""}`);
        }
    } catch (err) {
        lines.push(`  (the stack's outputs could not be read: ${firstLine(err)})`);
    }
    lines.push("Run `ci-key-rotation status` for details; the next scheduled run continues from this state.");
    return lines.join("\n");
}

async function clearRequestConfig(stack: RotationStack): Promise<void> {
    for (const key of requestKeys) await stack.removeConfig(`${configPrefix}${key}`);
}

/** Whether a request is complete, still due now, or waiting for a later instant. */
function classify(parsed: ParsedOutputs, options: RotateOptions, requestId: string, now: Date): "done" | "due" | "waiting" {
    const names = options.sets ?? Object.keys(parsed.state?.sets ?? {});
    let due = false;
    for (const name of names) {
        const set = parsed.state?.sets[name];
        if (!set) {
            // The program wrote no state for a set the request names: nothing more to do here.
            continue;
        }
        if (isComplete(set, requestId)) continue;
        const summary = parsed.summaries[name];
        if (summary?.paused) continue; // a paused set never moves; say so in the report
        const dueAt = summary?.next.dueAt ? Date.parse(summary.next.dueAt) : undefined;
        if (dueAt === undefined || dueAt <= now.getTime()) due = true;
    }
    if (names.every((n) => !parsed.state?.sets[n] || isComplete(parsed.state.sets[n], requestId))) return "done";
    return due ? "due" : "waiting";
}

function isComplete(set: SetState, requestId: string): boolean {
    return set.lastRequest === requestId && !set.request;
}

async function upWithLockRetry(
    deps: AutomationDeps,
    stack: RotationStack,
    options: RotateOptions,
    progress: (e: ProgressEvent) => void,
): Promise<{ outputs: StackOutputs }> {
    const { attempts, initialDelayMs, maxDelayMs } = deps.lockRetry;
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
        // The SDK sends SIGINT to the `pulumi` process when `up`'s signal aborts
        // (sdk/nodejs/automation/cmd.ts `exec`), and the CLI cancels gracefully on the first
        // SIGINT or SIGTERM but terminates at once on the second (pkg/backend/cancellation_scope.go,
        // `cancellationScopeSource.NewScope`). So the abort is forwarded only when the process did
        // not get the signal already. `stack.cancel()` (`pulumi cancel`) is not used: it does not
        // stop our process, and on DIY backends it only deletes the lock files
        // (pkg/backend/diy/backend.go `CancelCurrentUpdate`) while the update still runs.
        const forward = new AbortController();
        const onAbort = () => {
            const reason: unknown = options.signal!.reason;
            if (!(reason instanceof Interrupt && reason.reachedPulumi)) forward.abort(reason);
        };
        options.signal?.addEventListener("abort", onAbort, { once: true });
        try {
            // `--continue-on-error` (CLI ≥ 3.114, below `minimumPulumiVersion`): one set's failed write
            // must not cancel the other sets' steps (pulumi/pulumi pkg/resource/deploy/step_executor.go
            // `cancelDueToError`); the failed set keeps its state (rotation/pulumi/credential-set.ts).
            return await stack.up({ onOutput: (text) => progress({ kind: "output", text }), signal: forward.signal, continueOnError: true });
        } catch (err) {
            if (!isConcurrentUpdate(err)) throw err;
            if (attempt >= attempts) {
                throw new OperationError(
                    "stack-locked",
                    `Stack \`${options.stack}\` is locked by another update (tried ${attempts} times over ${Math.round(waited / 1000)}s). Wait for that update to finish and run again; if no update is running (a crashed run left the lock), clear it with \`pulumi cancel --stack ${options.stack}\`.`,
                );
            }
            const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
            progress({ kind: "locked", attempt, attempts, retryInMs: delay });
            await deps.sleep(delay, options.signal);
            waited += delay;
        } finally {
            options.signal?.removeEventListener("abort", onAbort);
        }
    }
}

async function readStatus(deps: AutomationDeps, options: StatusOptions): Promise<StatusReport> {
    if (!stackNamePattern.test(options.stack ?? "")) {
        throw new OperationError("bad-input", `\`stack\` must be a stack name such as "prod" or "org/prod" (got ${JSON.stringify(options.stack)})`);
    }
    const workDir = resolve(options.workDir ?? process.cwd());
    const stack = await open(deps, options.stack, workDir);
    let outputs: StackOutputs;
    try {
        outputs = await stack.outputs();
    } catch (err) {
        throw toOperationError(err, options.stack, workDir, undefined);
    }
    const parsed = readOutputs(outputs);
    const now = DateTime.fromJSDate(deps.now()).toUTC();
    const warnings: string[] = [];
    if (!parsed.state) {
        warnings.push(`stack \`${options.stack}\` has no rotation state yet: its first \`pulumi up\` mints the first keys`);
        return { stack: options.stack, readAt: now.toISO()!, sets: [], warnings };
    }
    const staleAfter = options.staleAfter ?? Duration.fromISO("PT3H");
    const asOf = DateTime.fromISO(parsed.state.asOf, { setZone: true });
    if (asOf.plus(staleAfter) < now) {
        warnings.push(`the last successful run was at ${parsed.state.asOf} (${ageText(asOf, now)} ago): check that the scheduled job runs and succeeds`);
    }
    const sets = Object.entries(parsed.state.sets).map(([name, state]): SetStatus => {
        const summary = parsed.summaries[name];
        const current = [...state.keys].reverse().find((k) => k.status === "Active");
        return {
            name,
            user: summary?.user,
            phase: state.phase,
            generation: state.generation,
            accessKeyId: summary?.accessKeyId ?? current?.accessKeyId,
            keys: state.keys.map((k) => ({ generation: k.generation, accessKeyId: k.accessKeyId, status: k.status, createdAt: k.createdAt, age: ageIso(k.createdAt, now) })),
            paused: summary?.paused ?? false,
            targets: summary?.targets ?? [],
            next: summary?.next && { ...summary.next, dueNow: !summary.next.dueAt || DateTime.fromISO(summary.next.dueAt) <= now },
            request: state.request && { id: state.request.id, seenAt: state.request.seenAt },
            lastRequest: state.lastRequest,
            warnings: summary?.warnings ?? [],
        };
    });
    return { stack: options.stack, asOf: parsed.state.asOf, readAt: now.toISO()!, sets, warnings };
}

/** The per-set output (`sets`) as far as this module reads it. */
interface SetSummaryOutput {
    user: string;
    accessKeyId: string;
    phase: Phase;
    paused: boolean;
    step: StepName;
    reason: string;
    next: NextStep;
    targets: string[];
    warnings: string[];
}

interface ParsedOutputs {
    state?: RotationState;
    summaries: Record<string, SetSummaryOutput>;
}

function readOutputs(outputs: StackOutputs): ParsedOutputs {
    const state = parseState(outputs.rotation?.value);
    const raw = outputs.sets?.value;
    const summaries = raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, SetSummaryOutput>) : {};
    return { state, summaries };
}

function buildReport(args: {
    options: RotateOptions;
    requestId?: string;
    started: Date;
    finished: Date;
    before: ParsedOutputs;
    runs: ParsedOutputs[];
    outcome: RotationOutcome;
    warnings: string[];
}): RotationReport {
    const { options, requestId, started, finished, before, runs, outcome } = args;
    const last = runs.at(-1);
    const names = [...new Set([...Object.keys(before.state?.sets ?? {}), ...Object.keys(last?.state?.sets ?? {})])];
    const sets = names.map((name): SetReport => {
        const was = before.state?.sets[name];
        const is = last?.state?.sets[name];
        const steps: StepTaken[] = [];
        const warnings = new Set<string>();
        for (const run of runs) {
            const summary = run.summaries[name];
            if (!summary) continue;
            if (summary.step !== "none") steps.push({ step: summary.step, reason: summary.reason, at: run.state?.asOf ?? "" });
            for (const w of summary.warnings) warnings.add(w);
        }
        const requested = options.mode === "scheduled" || !options.sets || options.sets.includes(name);
        return {
            name,
            requested,
            phaseBefore: was?.phase,
            phaseAfter: is?.phase ?? was?.phase,
            steps,
            keyBefore: before.summaries[name]?.accessKeyId ?? currentKey(was),
            keyAfter: last?.summaries[name]?.accessKeyId ?? currentKey(is ?? was),
            keysBefore: was?.keys.map((k) => k.accessKeyId) ?? [],
            keysAfter: (is ?? was)?.keys.map((k) => k.accessKeyId) ?? [],
            targets: last?.summaries[name]?.targets ?? before.summaries[name]?.targets ?? [],
            warnings: [...warnings],
            next: last?.summaries[name]?.next ?? before.summaries[name]?.next,
            paused: last?.summaries[name]?.paused ?? before.summaries[name]?.paused ?? false,
            ...(requestId && requested ? { requestComplete: is ? isComplete(is, requestId) : false } : {}),
        };
    });
    return {
        stack: options.stack,
        mode: options.mode,
        ...(requestId ? { requestId } : {}),
        reason: options.reason,
        requestedBy: options.requestedBy,
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        durationMs: finished.getTime() - started.getTime(),
        runs: runs.length,
        outcome,
        summary: summarize(options, outcome, sets, runs.length),
        sets,
        warnings: args.warnings,
    };
}

function currentKey(state: SetState | undefined): string | undefined {
    return state && [...state.keys].reverse().find((k) => k.status === "Active")?.accessKeyId;
}

function summarize(options: RotateOptions, outcome: RotationOutcome, sets: SetReport[], runs: number): string {
    const stepCount = sets.reduce((n, s) => n + s.steps.length, 0);
    const did = `${stepCount} step${stepCount === 1 ? "" : "s"} in ${runs} run${runs === 1 ? "" : "s"}`;
    if (options.mode === "scheduled") return `Scheduled run of \`${options.stack}\`: ${did}.`;
    const label = `${options.mode === "request" ? "Rotation request" : options.mode === "emergency" ? "Emergency rotation" : "Revocation"} of \`${options.stack}\``;
    if (outcome === "done") return `${label} complete: every old key is deleted (${did}).`;
    const pending = sets.filter((s) => s.requested && s.requestComplete === false);
    const waits = pending.map((s) => `${s.name}: ${s.paused ? "paused" : s.next?.dueAt ? `${s.next.step} due at ${s.next.dueAt}` : `${s.next?.step ?? "next step"} at the next run`}`);
    if (outcome === "waiting") return `${label}: did what is due now (${did}); scheduled runs finish it (${waits.join("; ")}).`;
    return `${label} did not finish (${did}); still pending: ${waits.join("; ")}.`;
}

async function open(deps: AutomationDeps, stack: string, workDir: string): Promise<RotationStack> {
    let opened: RotationStack;
    try {
        opened = await deps.openStack({ stack, workDir });
    } catch (err) {
        throw toOperationError(err, stack, workDir, undefined);
    }
    let version: string | undefined;
    try {
        // LocalWorkspace ran `pulumi version` when it was created; the getter throws when the
        // version could not be read (PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK): then do not guess.
        version = opened.workspace?.pulumiVersion;
    } catch {
        version = undefined;
    }
    if (version !== undefined && olderThanMinimum(version)) throw new OperationError("cli-too-old", cliTooOld(version));
    return opened;
}

/** Map Automation API failures to errors that say what to do. Never echoes config values. */
export function toOperationError(err: unknown, stack: string, workDir: string, partial: RotationReport | undefined): OperationError {
    if (err instanceof OperationError) return err.partial || !partial ? err : new OperationError(err.kind, err.message, partial);
    const text = errorText(err);
    if (isCliMissing(err)) return new OperationError("cli-missing", installHint, partial);
    // The SDK's own check (older than 3.2): pulumi/pulumi sdk/nodejs/automation/cmd.ts parseAndValidatePulumiVersion.
    const sdkCheck = /Minimum version requirement failed\. .*your current CLI version is (\S+?)\.? Please/.exec(text);
    if (sdkCheck) return new OperationError("cli-too-old", cliTooOld(sdkCheck[1]), partial);
    if (nameOf(err) === "StackNotFoundError" || /no stack named .* found/i.test(text)) {
        return new OperationError(
            "stack-missing",
            `Stack \`${stack}\` does not exist for the project in ${workDir}. Create it there with \`pulumi stack init ${stack}\` and set its ci-key-rotation:credentials, or check --stack and \`pulumi login\` (the backend holding the stack).`,
            partial,
        );
    }
    if (isConcurrentUpdate(err)) {
        return new OperationError("stack-locked", `Stack \`${stack}\` is locked by another update. Wait for it to finish and run again.`, partial);
    }
    if (nameOf(err) === "StateError") return new OperationError("run-failed", text, partial);
    const details = diagnostics(text);
    // The program's RotationBlockedError (rotation/pulumi/program.ts): a blocked set registers nothing and
    // keeps its state while every other set takes its step, so "nothing changed" is said of the
    // blocked sets only.
    const blocked = /No step was taken for (sets? (.+?)|a set) \(any other set took its step\), because/.exec(text);
    if (blocked) {
        const which = blocked[2] ? `${blocked[1].startsWith("sets") ? "sets" : "set"} ${blocked[2]}` : "a set";
        return new OperationError("blocked", `The rotation of \`${stack}\` refused to act for ${which}: ${which} took no step; every other set took its step:\n${details}`, partial);
    }
    if (/Invalid ci-key-rotation configuration/.test(text)) {
        return new OperationError("config", `The configuration of stack \`${stack}\` is invalid, and nothing changed:\n${details}`, partial);
    }
    return new OperationError("run-failed", `\`pulumi up\` of stack \`${stack}\` failed:\n${details}`, partial);
}

function nameOf(err: unknown): string | undefined {
    return (err as { name?: unknown })?.name as string | undefined;
}

function errorText(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

function firstLine(err: unknown): string {
    return errorText(err).split("\n").find((l) => l.trim() !== "")?.trim() ?? "unknown error";
}

function isCliMissing(err: unknown): boolean {
    const text = errorText(err);
    return /spawn pulumi ENOENT/.test(text) || ((err as { code?: unknown })?.code === "ENOENT" && /pulumi/.test(text));
}

/** `ConcurrentUpdateError`, matched by name so a second copy of the SDK still matches. */
export function isConcurrentUpdate(err: unknown): boolean {
    return nameOf(err) === "ConcurrentUpdateError" || /\[409\] Conflict: Another update is currently in progress|the stack is currently locked by/.test(errorText(err));
}

/**
 * The useful part of a failed command's output: its `error:` diagnostics and the program's own
 * messages, at most 40 lines. Pulumi masks secret values in everything it prints.
 */
function diagnostics(text: string): string {
    // CommandError messages are `code: N\n stdout: ...\n stderr: ...\n err?: ...`: drop the labels.
    const lines = text
        .split("\n")
        .filter((l) => !/^\s*code: -?\d+\s*$/.test(l))
        .map((l) => l.replace(/^\s*(stdout|stderr|err\?):\s?/, "").replace(/\s+$/, ""));
    const start = lines.findIndex((l) => /\berror:|Error:|No step was taken|Invalid ci-key-rotation configuration/.test(l));
    const picked = (start >= 0 ? lines.slice(start) : lines).filter((l) => l.trim() !== "");
    const shown = picked.slice(0, 40).map((l) => `  ${l.trim()}`);
    if (picked.length > 40) shown.push(`  ... (${picked.length - 40} more lines)`);
    return shown.join("\n");
}

function ageIso(from: string, now: DateTime): string {
    return now.diff(DateTime.fromISO(from, { setZone: true }), ["days", "hours", "minutes"]).mapUnits((x) => Math.floor(x)).toISO() ?? "PT0M";
}

function ageText(from: DateTime, now: DateTime): string {
    return now.diff(from, ["days", "hours", "minutes"]).mapUnits((x) => Math.floor(x)).toHuman({ unitDisplay: "short" });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolvePromise, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const timer = setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolvePromise();
        }, ms);
        const onAbort = () => {
            clearTimeout(timer);
            reject(signal!.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
    });
}

/** The real opener: selects an existing stack of the project in `workDir`. */
async function openLocalStack({ stack, workDir }: { stack: string; workDir: string }): Promise<RotationStack> {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    return LocalWorkspace.selectStack({ stackName: stack, workDir });
}
