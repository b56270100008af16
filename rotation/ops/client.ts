/**
 * The rotation client: `rotate` and `status` bound to one set of dependencies, with single-flight
 * per stack (a request already running or queued that does as much answers a second call).
 */
import { resolve } from "node:path";
import { defaultLockRetry, OperationError, rotationModes, type AutomationDeps, type InFlightRotation, type RotateOptions, type RotationClient, type RotationReport, type StatusOptions, type StatusReport } from "./automation-types";
import { sleep } from "./locks";
import { thisHost } from "./stale-lock";
import { noop, runRotation } from "./rotate";
import { openLocalStack, stackNamePattern } from "./stack";
import { readStatus } from "./status";

const setNamePattern = /^[a-z][a-z0-9-]{0,39}$/;

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
        host: overrides.host ?? thisHost,
        removeLockFile: overrides.removeLockFile,
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
