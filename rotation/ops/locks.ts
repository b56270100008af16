/**
 * One `pulumi up`, retried while another update holds the stack's lock, with an abort forwarded to
 * the `pulumi` process only when it did not get the signal itself.
 */
import { Interrupt, OperationError, type AutomationDeps, type ProgressEvent, type RotateOptions, type RotationStack, type StackOutputs } from "./automation-types";
import { firstLine, isConcurrentUpdate } from "./errors";
import { removeStaleLocks, staleLocks } from "./stale-lock";

export async function upWithLockRetry(
    deps: AutomationDeps,
    stack: RotationStack,
    options: RotateOptions,
    progress: (e: ProgressEvent) => void,
): Promise<{ outputs: StackOutputs }> {
    const { attempts, initialDelayMs, maxDelayMs } = deps.lockRetry;
    let waited = 0;
    let staleCleared = 0;
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
            // A lock whose update died (kill -9, a vanished runner) would fail every run until
            // `pulumi cancel`: when every lock was taken on this host by a process that is gone,
            // remove it and try again at once (twice at most per `up`). See ./stale-lock.
            if (staleCleared < 2 && !options.signal?.aborted) {
                const decision = staleLocks(err instanceof Error ? err.message : String(err), deps.host);
                if (decision.stale) {
                    const cancel = () => (stack.cancel ? stack.cancel() : Promise.reject(new Error("this stack cannot run `pulumi cancel`")));
                    const how = await removeStaleLocks(decision.holders, cancel, deps.removeLockFile).catch((e: unknown) => new Error(firstLine(e)));
                    if (!(how instanceof Error)) {
                        staleCleared++;
                        const who = decision.holders.map((h) => `pid ${h.pid} on ${h.host} since ${h.since}`).join(", ");
                        progress({ kind: "stale-lock", message: `removed the lock of an update that is no longer running (${who}: the process is gone) with ${how}; running \`pulumi up\` again` });
                        attempt--;
                        continue;
                    }
                    progress({ kind: "stale-lock", message: `could not remove the stale lock of stack \`${options.stack}\` (${how.message}); run \`pulumi cancel --stack ${options.stack}\`` });
                }
            }
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

/** The default {@link AutomationDeps.sleep}: `setTimeout`, rejected when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
