import type { SimulationOptions, SimulationResult } from "./simulation";

/**
 * A picture of a rehearsal for a reviewer: per credential set, each key as a bar on a time axis
 * (green while Active, grey while Inactive), consecutive generations on alternating lanes so the
 * overlap of two keys shows; failed runs, broken CI jobs and violations as ticks. No secrets.
 */
export function renderSvg(result: SimulationResult, options: SimulationOptions): string {
    const start = options.start;
    const end = options.start + options.durationMs;
    const width = 1200;
    const left = 110;
    const right = 45;
    const x = (t: number) => left + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * (width - left - right);
    const sets = [...new Set(result.keys.map((k) => k.set ?? k.user))];
    const laneHeight = 14;
    const setHeight = laneHeight * 2 + 34;
    const top = 40;
    const height = top + sets.length * setHeight + 70;
    const out: string[] = [];
    out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
    out.push(`<rect width="100%" height="100%" fill="white"/>`);
    out.push(
        `<text x="${left}" y="18" font-size="13" font-weight="bold">${esc(`ci-key-rotation rehearsal: stack ${options.stack}, ${result.summary.runs} runs, ${result.summary.keysMinted} keys, ${result.summary.violationCount} violations`)}</text>`,
    );

    sets.forEach((set, i) => {
        const y0 = top + i * setHeight;
        out.push(`<text x="8" y="${y0 + laneHeight + 4}" font-weight="bold">${esc(set)}</text>`);
        const keys = result.keys.filter((k) => (k.set ?? k.user) === set);
        keys.forEach((k, n) => {
            const y = y0 + (n % 2) * laneHeight + 4;
            const created = Date.parse(k.createdAt);
            const deactivated = k.deactivatedAt ? Date.parse(k.deactivatedAt) : undefined;
            const deleted = k.deletedAt ? Date.parse(k.deletedAt) : end;
            const activeEnd = deactivated ?? deleted;
            const title = `<title>${esc(`${k.accessKeyId}: created ${k.createdAt}${k.deactivatedAt ? `, deactivated ${k.deactivatedAt}` : ""}${k.deletedAt ? `, deleted ${k.deletedAt}` : ""}`)}</title>`;
            out.push(`<rect x="${x(created).toFixed(1)}" y="${y}" width="${Math.max(1, x(activeEnd) - x(created)).toFixed(1)}" height="${laneHeight - 3}" fill="#3a9d5d">${title}</rect>`);
            if (deactivated !== undefined) {
                out.push(`<rect x="${x(deactivated).toFixed(1)}" y="${y}" width="${Math.max(1, x(deleted) - x(deactivated)).toFixed(1)}" height="${laneHeight - 3}" fill="#b0b0b0">${title}</rect>`);
            }
        });
        const marks = y0 + laneHeight * 2 + 8;
        // A failure is drawn on the rows of the sets it belongs to (all rows for a stack-wide one).
        for (const run of result.runs) {
            if (!run.ok && (run.failedSets === undefined || run.failedSets.includes(set))) out.push(`<rect x="${x(Date.parse(run.at)).toFixed(1)}" y="${marks}" width="1.5" height="7" fill="#333"><title>${esc(`run ${run.index} failed: ${run.error ?? ""}`.slice(0, 300))}</title></rect>`);
        }
        for (const job of result.jobs.broken) {
            if (job.set !== undefined && job.set !== set) continue;
            out.push(`<rect x="${x(Date.parse(job.at)).toFixed(1)}" y="${marks + 8}" width="1.5" height="7" fill="#e07b00"><title>${esc(`broken job in ${job.consumer}: ${job.reason}`)}</title></rect>`);
        }
    });

    // Violations span every set: a red line across the chart.
    for (const v of result.violations) {
        const vx = x(Date.parse(v.at)).toFixed(1);
        out.push(`<line x1="${vx}" x2="${vx}" y1="${top}" y2="${top + sets.length * setHeight}" stroke="#d62728" stroke-width="1.5"><title>${esc(`${v.invariant}: ${v.message}`)}</title></line>`);
    }

    const axisY = top + sets.length * setHeight + 6;
    out.push(`<line x1="${left}" x2="${width - right}" y1="${axisY}" y2="${axisY}" stroke="#444"/>`);
    const spanDays = options.durationMs / 86_400_000;
    const stepDays = spanDays > 120 ? 30 : spanDays > 30 ? 7 : 1;
    for (let d = 0; d <= spanDays; d += stepDays) {
        const t = start + d * 86_400_000;
        out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#444"/>`);
        out.push(`<text x="${x(t).toFixed(1)}" y="${axisY + 15}" text-anchor="middle" fill="#444">${new Date(t).toISOString().slice(0, 10)}</text>`);
    }
    const legendY = axisY + 36;
    const legend: [string, string][] = [
        ["#3a9d5d", "key Active"],
        ["#b0b0b0", "key Inactive"],
        ["#333", "failed run"],
        ["#e07b00", "broken CI job"],
        ["#d62728", "invariant violation"],
    ];
    legend.forEach(([color, label], i) => {
        out.push(`<rect x="${left + i * 150}" y="${legendY - 9}" width="12" height="10" fill="${color}"/><text x="${left + i * 150 + 16}" y="${legendY}">${label}</text>`);
    });
    out.push("</svg>");
    return out.join("\n") + "\n";
}

function esc(text: string): string {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
