/**
 * One rotation: write the request flags to stack config, repeat `pulumi up` until the request is
 * done or waiting, clear the flags (also after a failure or an interrupt), and report.
 */
import { resolve } from "node:path";
import { DateTime } from "luxon";
import { OperationError, type AutomationDeps, type ProgressEvent, type RotateOptions, type RotationMode, type RotationOutcome, type RotationReport, type RotationStack } from "./automation-types";
import { firstLine, isCliMissing, toOperationError } from "./errors";
import { upWithLockRetry } from "./locks";
import { buildReport, isComplete } from "./report";
import { clearRequestConfig, configPrefix, open, readOutputs, type ParsedOutputs } from "./stack";

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

export function noop(): void {}

export async function runRotation(deps: AutomationDeps, options: RotateOptions): Promise<RotationReport> {
    const workDir = resolve(options.workDir ?? process.cwd());
    const started = deps.now();
    const warnings: string[] = [];
    const onProgress = options.onProgress ?? noop;
    const progress = (e: ProgressEvent) => {
        // A cleared stale lock goes into the report too (chatops posts it; the CLI prints it).
        if (e.kind === "stale-lock") warnings.push(e.message);
        onProgress(e);
    };
    const stack = await open(deps, options.stack, workDir);

    const isRequest = options.mode !== "scheduled";
    const requestId = isRequest ? requestIdFor(options.mode, options.reason, started) : undefined;
    const maxRuns = isRequest ? (options.maxRuns ?? 8) : 1;
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
