/**
 * `status`: what the stack's outputs say about each set, read without running `pulumi up`.
 */
import { resolve } from "node:path";
import { DateTime, Duration } from "luxon";
import { OperationError, type AutomationDeps, type SetStatus, type StackOutputs, type StatusOptions, type StatusReport } from "./automation-types";
import { toOperationError } from "./errors";
import { open, readOutputs, stackNamePattern } from "./stack";

export async function readStatus(deps: AutomationDeps, options: StatusOptions): Promise<StatusReport> {
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

function ageIso(from: string, now: DateTime): string {
    return now.diff(DateTime.fromISO(from, { setZone: true }), ["days", "hours", "minutes"]).mapUnits((x) => Math.floor(x)).toISO() ?? "PT0M";
}

function ageText(from: DateTime, now: DateTime): string {
    return now.diff(from, ["days", "hours", "minutes"]).mapUnits((x) => Math.floor(x)).toHuman({ unitDisplay: "short" });
}
