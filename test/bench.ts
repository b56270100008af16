/**
 * Benchmark: what a user experiences, each figure beside its floor. Run with `npm run bench`
 * (it builds first). Every measurement runs the compiled program (dist/) in a fresh process under
 * the runner Pulumi uses (`source-map-support/register` loaded, as @pulumi/pulumi cmd/run does),
 * through test/support/bench-child.cjs; figures are medians of `--repeat` runs (default 3).
 * Prints a table (figure, unit, value, floor, ratio, target) and writes it as JSON (`--json FILE`,
 * default .scratch/bench.json) for comparison between revisions.
 *
 * The performance targets live here, never in timed tests. A missed target sets exit status 1.
 * Figures:
 *   - load: the compiled program required, from node's start; floor: node with the three Pulumi
 *     SDKs it uses (@pulumi/pulumi, @pulumi/aws, @pulumi/github) required.
 *   - evaluation of a run with nothing due at S sets x 10 GitHub repository targets, under mocks;
 *     floor: the same StackReference read, the same invokes and the same registrations declared
 *     bare (the same resource classes with plain inputs, no components' logic, no Outputs between
 *     them) in the same runner; at 100 x 10 also against bare CustomResources of the same types
 *     (which declare no outputs, so the SDK makes fewer promises) and without the runner.
 *   - peak RSS of that evaluation; floor: the bare program's.
 *   - reads a nothing-due run makes: real AWS calls (IAM ListAccessKeys through the
 *     `getAccessKeys` invoke, GetAccessKeyLastUsed through the SDK), GitHub calls, and the mock
 *     monitor's reads in all (invokes plus the self-StackReference read).
 *   - a year of hourly runs of the example stack rehearsed (`npm run simulate`), its runs per
 *     second, and its peak RSS against a 30-day rehearsal's (memory flat in the number of runs).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";

const root = path.resolve(__dirname, "..");
const child = path.join(__dirname, "support", "bench-child.cjs");
const specDir = mkdtempSync(path.join(tmpdir(), "bench-"));

interface Row {
    figure: string;
    unit: string;
    value: number;
    /** What the figure is compared with: its floor, or the target when there is no floor. */
    floor?: number;
    ratio?: number;
    /** The target, as text, and whether it is met. */
    target?: string;
    met?: boolean;
}

type Runner = "pulumi" | "node";

/** One measurement in a fresh process; returns what the child printed. */
function measure(spec: Record<string, unknown>, runner: Runner = "pulumi"): any {
    // The spec goes through a file: a list of a thousand registrations is too long for the environment.
    const file = path.join(specDir, "spec.json");
    writeFileSync(file, JSON.stringify({ root, ...spec }));
    const result = spawnSync(process.execPath, [child], {
        cwd: root,
        env: { ...process.env, BENCH_SPEC: file, BENCH_RUNNER: runner },
        encoding: "utf8",
        maxBuffer: 512 * 1024 * 1024,
    });
    if (result.status !== 0) throw new Error(`bench child failed (${result.status ?? result.signal ?? result.error}): ${result.stderr}`);
    return JSON.parse(result.stdout.trim().split("\n").pop()!);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function repeat<T>(n: number, f: () => T): T[] {
    return Array.from({ length: n }, f);
}

function credentials(sets: number, targetsPerSet: number) {
    return Array.from({ length: sets }, (_, i) => ({
        name: `set-${i}`,
        targets: Array.from({ length: targetsPerSet }, (_, j) => ({ type: "github-repository", repository: `acme/repo-${i}-${j}` })),
    }));
}

/** The state after a first run, so the measured run has nothing due. */
function nothingDue(sets: number, per: number) {
    const config = { "ci-key-rotation:credentials": JSON.stringify(credentials(sets, per)) };
    const first = measure({ mode: "program", config, now: "2026-11-01T00:00:00Z", wantOutputs: true, wantRegistrations: false });
    const rotation = first.outputs.rotation;
    const accessKeys = Object.fromEntries(
        Object.entries(rotation.sets as Record<string, any>).map(([name, s]) => [`ci-${name}`, s.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }))]),
    );
    const keyIds = Object.fromEntries(Object.entries(rotation.sets as Record<string, any>).flatMap(([name, s]) => s.keys.map((k: any) => [`${name}-key-${k.generation}`, k.accessKeyId])));
    return { config, now: "2026-11-01T01:00:00Z", stackOutputs: { rotation }, accessKeys, keyIds };
}

function evaluation(sets: number, per: number, n: number, rows: Row[], targets: { ratio?: number; rssMb?: number }) {
    const spec = nothingDue(sets, per);
    const registrations = measure({ mode: "program", ...spec, wantRegistrations: true }).registrations;
    // Interleaved, so that a change in the machine's load hits the program and its floor alike.
    const program: any[] = [];
    const floor: any[] = [];
    const generic: any[] = [];
    for (let i = 0; i < n; i++) {
        program.push(measure({ mode: "program", ...spec }));
        floor.push(measure({ mode: "floor", ...spec, registrations }));
        if (targets.ratio) generic.push(measure({ mode: "floor", floor: "generic", ...spec, registrations }));
    }
    if (program.some((p) => p.steps !== 0)) throw new Error("a run with nothing due took a step");
    const label = `${sets} sets x ${per} targets`;
    const ms = median(program.map((p) => p.evalMs));
    const floorMs = median(floor.map((p) => p.evalMs));
    const ratio = ms / floorMs;
    rows.push({ figure: `evaluation, nothing due, ${label}`, unit: "ms", value: ms, floor: floorMs, ratio, ...(targets.ratio ? { target: `ratio <= ${targets.ratio}`, met: ratio <= targets.ratio } : {}) });
    if (targets.ratio) {
        const genericMs = median(generic.map((p) => p.evalMs));
        rows.push({ figure: `  same, floor of bare CustomResources (no declared outputs)`, unit: "ms", value: ms, floor: genericMs, ratio: ms / genericMs });
        const plain = repeat(n, () => [measure({ mode: "program", ...spec }, "node").evalMs, measure({ mode: "floor", ...spec, registrations }, "node").evalMs]);
        const plainProgram = median(plain.map(([p]) => p));
        const plainFloor = median(plain.map(([, f]) => f));
        rows.push({ figure: `  same, plain node (no source-map-support)`, unit: "ms", value: plainProgram, floor: plainFloor, ratio: plainProgram / plainFloor });
    }
    const rss = median(program.map((p) => p.maxRssMb));
    const floorRss = median(floor.map((p) => p.maxRssMb));
    rows.push({ figure: `  peak RSS, ${label}`, unit: "MB", value: rss, floor: floorRss, ratio: rss / floorRss, ...(targets.rssMb ? { target: `< ${targets.rssMb} MB`, met: rss < targets.rssMb } : {}) });
    const p = program[0];
    const aws = p.invocations.filter((t: string) => t.startsWith("aws:")).length + p.lastUseCalls;
    const github = p.invocations.filter((t: string) => t.startsWith("github:")).length;
    rows.push({ figure: `  real AWS calls, ${label}`, unit: "calls", value: aws, floor: sets, ratio: aws / sets, target: "one ListAccessKeys per set", met: aws === sets });
    rows.push({ figure: `  real GitHub calls, ${label}`, unit: "calls", value: github, floor: 0, target: "none", met: github === 0 });
    rows.push({ figure: `  mock reads (invokes + StackReference), ${label}`, unit: "reads", value: p.invocations.length + p.stackReads, floor: sets + 1, ratio: (p.invocations.length + p.stackReads) / (sets + 1) });
    return { ms, targets: sets * per };
}

/** `npm run simulate` of the example stack, compiled: the summary line's figures. */
function rehearsal(days: number): { seconds: number; runs: number; skipped: number } {
    const out = execFileSync(process.execPath, ["dist/rotation/rehearsal/main.js", "--days", String(days), "--quiet"], { cwd: root, encoding: "utf8" });
    const line = /(\d+) runs .* in ([\d.]+) s/.exec(out);
    const skipped = /answered from an earlier run:\s+(\d+)/.exec(out);
    if (!line) throw new Error(`unexpected simulate output:\n${out}`);
    return { seconds: Number(line[2]), runs: Number(line[1]), skipped: Number(skipped?.[1] ?? 0) };
}

/** Peak RSS of a whole rehearsal process (the `simulate` command, compiled), MB. */
function rehearsalRss(days: number): number {
    const script = `require("./dist/rotation/rehearsal/cli.js").simulateCommand(["--days","${days}","--quiet"],{stdout:{write(){}},stderr:{write(){}}}).then(()=>{process.stdout.write(String(process.resourceUsage().maxRSS/1024));process.exit(0)})`;
    return Number(execFileSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" }));
}

function main() {
    const { values } = parseArgs({ options: { json: { type: "string" }, repeat: { type: "string" }, quick: { type: "boolean", default: false } } });
    const n = Number(values.repeat ?? 3);
    const rows: Row[] = [];

    const load = median(repeat(n, () => measure({ mode: "load" }).loadMs));
    const sdkScript = `const t=process.hrtime.bigint();require("source-map-support/register");require("@pulumi/pulumi");require("@pulumi/aws");require("@pulumi/github");process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
    const sdk = median(repeat(n, () => Number(execFileSync(process.execPath, ["-e", sdkScript], { cwd: root, encoding: "utf8" }))));
    rows.push({ figure: "load: compiled program required", unit: "ms", value: load, floor: sdk, ratio: load / sdk });

    const small = evaluation(10, 10, n, rows, {});
    const large = evaluation(100, 10, n, rows, { ratio: 2, rssMb: 500 });
    const growth = large.ms / large.targets / (small.ms / small.targets);
    rows.push({ figure: "per-target evaluation time, 1,000 vs 100 targets", unit: "x", value: growth, floor: 1, ratio: growth, target: "linear: <= 1.3", met: growth <= 1.3 });

    if (!values.quick) {
        const years = repeat(n, () => rehearsal(365));
        const seconds = median(years.map((y) => y.seconds));
        const runs = years[0].runs;
        rows.push({ figure: "rehearsal: a year of hourly runs, example stack", unit: "s", value: seconds, floor: 10, ratio: seconds / 10, target: "< 10 s", met: seconds < 10 });
        rows.push({ figure: "  runs per second", unit: "runs/s", value: runs / seconds });
        rows.push({ figure: "  runs answered from an earlier run", unit: "runs", value: years[0].skipped, floor: runs, ratio: years[0].skipped / runs });
        const rssYear = median(repeat(n, () => rehearsalRss(365)));
        const rssMonth = median(repeat(n, () => rehearsalRss(30)));
        rows.push({ figure: "  peak RSS, 365 days vs 30 days", unit: "MB", value: rssYear, floor: rssMonth, ratio: rssYear / rssMonth, target: "flat: ratio <= 1.5", met: rssYear / rssMonth <= 1.5 });
    }

    const fmt = (x: number | undefined, digits = 1) => (x === undefined || Number.isNaN(x) ? "-" : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
    const table = [["figure", "unit", "value", "floor", "ratio", "target"]].concat(
        rows.map((r) => [r.figure, r.unit, fmt(r.value), fmt(r.floor), r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}x`, r.target ? `${r.target} ${r.met ? "(met)" : "(MISSED)"}` : ""]),
    );
    const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
    for (const [i, r] of table.entries()) {
        console.log(r.map((c, j) => (j >= 2 && j <= 4 ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join("  ").trimEnd());
        if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
    }
    const file = values.json ?? path.join(root, ".scratch", "bench.json");
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ version: 1, node: process.version, repeat: n, rows }, null, 2) + "\n");
    console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
    if (rows.some((r) => r.met === false)) process.exitCode = 1;
}

main();
