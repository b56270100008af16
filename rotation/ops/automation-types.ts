/**
 * The public types of the automation library (`rotate`, `status`): options, reports, progress
 * events, the stack interface tests fake, and the errors callers map to exit codes.
 */
import type { HostView } from "./stale-lock";
import type { Duration } from "luxon";
import type { NextStep, StepName } from "../core/plan";
import type { Phase } from "../core/state";

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
    /** `pulumi cancel`: removes every lock of the stack (stale-lock recovery, non-file backends). */
    cancel?(): Promise<void>;
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
    /**
     * This host, to tell a stale lock (its `pulumi` process is gone) from a live one. Default
     * `thisHost` of `./stale-lock`.
     */
    host: HostView;
    /** Removes a lock file (stale-lock recovery on file backends). Default: `unlink`. */
    removeLockFile?: (path: string) => Promise<void>;
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
    /** A lock left by an update whose process is gone (same host) was removed; the `up` is retried at once. */
    | { kind: "stale-lock"; message: string }
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

/** `rotate` and `status` bound to one set of dependencies, with single-flight per stack. */
export interface RotationClient {
    rotate(options: RotateOptions): Promise<RotationReport>;
    status(options: StatusOptions): Promise<StatusReport>;
    /** The rotation this process runs (or queued) for a stack, if any. */
    inFlight(stack: string, workDir?: string): InFlightRotation | undefined;
}
