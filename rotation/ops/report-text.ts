/**
 * Reports as text for people: the CLI prints these, the chatops server posts them. Backticks
 * render as code in Slack and read fine in a terminal.
 */
import type { RotationReport, StatusReport } from "./automation";

/** A rotation report: one summary line, then one block per set that took a step or was asked. */
export function formatRotationReport(report: RotationReport): string {
    const lines = [report.summary];
    if (report.requestId) lines.push(`request \`${report.requestId}\` by ${report.requestedBy}: ${report.reason}`);
    if (report.joined) lines.push(`(joined the ${report.joined.mode} rotation already running for ${report.joined.requestedBy})`);
    for (const set of report.sets) {
        if (!set.requested && set.steps.length === 0) continue;
        const phases = set.phaseBefore && set.phaseBefore !== set.phaseAfter ? `${set.phaseBefore} → ${set.phaseAfter}` : (set.phaseAfter ?? "new");
        lines.push(`• ${set.name}: ${phases}${set.paused ? " (paused)" : ""}`);
        for (const step of set.steps) lines.push(`    ${step.step}: ${step.reason}`);
        if (set.keyBefore !== set.keyAfter) lines.push(`    targets now hold \`${set.keyAfter ?? "-"}\` (was \`${set.keyBefore ?? "-"}\`)`);
        else if (set.keyAfter) lines.push(`    targets hold \`${set.keyAfter}\``);
        const gone = set.keysBefore.filter((k) => !set.keysAfter.includes(k));
        if (gone.length > 0) lines.push(`    deleted: ${gone.map((k) => `\`${k}\``).join(", ")}`);
        if (set.steps.some((s) => s.step === "mint" || s.step === "revoke") && set.targets.length > 0) lines.push(`    written to: ${set.targets.join("; ")}`);
        if (set.next && set.next.step !== "none") lines.push(`    next: ${set.next.step}${set.next.dueAt ? ` at ${set.next.dueAt}` : " at the next run"} (${set.next.why})`);
        for (const w of set.warnings) lines.push(`    warning: ${w}`);
    }
    for (const w of report.warnings) lines.push(`warning: ${w}`);
    lines.push(`took ${Math.round(report.durationMs / 1000)}s`);
    return lines.join("\n");
}

/** A status report: per set, phase, keys with ages, and what the next scheduled run does. */
export function formatStatusReport(report: StatusReport): string {
    const lines = [`Stack \`${report.stack}\`${report.asOf ? `, last run ${report.asOf}` : ""}`];
    for (const set of report.sets) {
        lines.push(`• ${set.name}${set.user ? ` (IAM user ${set.user})` : ""}: ${set.phase}, generation ${set.generation}${set.paused ? ", paused" : ""}`);
        for (const k of set.keys) {
            lines.push(`    \`${k.accessKeyId}\` ${k.status}, age ${k.age}${k.accessKeyId === set.accessKeyId ? " (in targets)" : ""}`);
        }
        if (set.next) {
            const when = set.next.step === "none" ? "" : set.next.dueNow ? " due at the next run" : ` at ${set.next.dueAt}`;
            lines.push(`    next: ${set.next.step}${when} (${set.next.why})`);
        }
        if (set.request) lines.push(`    request \`${set.request.id}\` in progress since ${set.request.seenAt}`);
        for (const w of set.warnings) lines.push(`    warning: ${w}`);
    }
    for (const w of report.warnings) lines.push(`warning: ${w}`);
    return lines.join("\n");
}
