import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DateTime, Duration } from "luxon";
import { ConfigError } from "../core/config";
import type { Window } from "./faults";
import { changeTable, jsonReport, summaryText } from "./report";
import { simulate, type ScheduledRequest, type SimulationOptions } from "./simulation";
import { readStackConfig } from "./stack";
import { renderSvg } from "./svg";

/** Where the command writes; a stream or anything with `write`. */
export interface CommandIo {
    stdout: { write(text: string): unknown };
    stderr: { write(text: string): unknown };
}

/** Usage text of `simulate`. */
export const simulateUsage = `Usage: ci-key-rotation simulate [options]

Rehearse the stack's rotation offline: run the real program at every cron tick over a span of
simulated time, against in-memory AWS and CI stores, with simulated CI jobs and injected faults,
and check the invariants of DESIGN.md after every operation and run.

  --stack NAME               stack whose Pulumi.<stack>.yaml to rehearse (default dev)
  --dir DIR                  project directory (default: the current directory)
  --days N                   simulated span (default 365)
  --cadence DURATION         time between runs, ISO-8601 (default: the stack's \`cadence\`, else PT1H)
  --start ISO                first run (default 2026-01-01T00:00:00Z)
  --request-at ISO[:emergency|:revoke]
                             a new rotation request from that instant (repeatable)
  --request-sets A,B         the sets the requests name (requestSets; default the stack's own, else all)
  --fail-rate P              each write fails with probability P (default 0)
  --fail-at ISO[#N]          API error at write N (default 1) of the first run at or after ISO (repeatable)
  --crash-at ISO#N           crash after N writes of the first run at or after ISO (repeatable)
  --kill-at ISO#N            kill the run while write N+1 of the first run at or after ISO is in flight:
                             the write takes effect but the engine never records it (repeatable)
  --crash-rate P             each run crashes with probability P after a random number of writes
                             (half of them with the next write in flight)
  --reject FROM/UNTIL[=TEXT] targets whose address contains TEXT, in any case (all when absent),
                             reject writes (repeatable)
  --slow-key-rate P          IAM takes 1-10 minutes instead of seconds to make a new key usable,
                             with probability P per key (the key check gives up after validateTimeout)
  --miss-rate P              each scheduled run is missed with probability P
  --outage FROM/UNTIL        no runs in the window (repeatable)
  --jitter DURATION          runs start up to this late (at most the cadence)
  --twin-rate P              a second run at the same instant follows a run with probability P
                             (always after a run that changed something)
  --jobs-per-day N           CI jobs per day per place a job runs (default 24)
  --longest-job DURATION     longest CI job (default PT6H)
  --rogue FROM/UNTIL         a consumer that keeps using the key it read at FROM until UNTIL
  --no-skip                  evaluate the program at every run; by default a run whose inputs
                             (config, previous state, IAM's key list) repeat those of the last
                             evaluated run, with no step due and no fault, is answered from it
  --audit-every DURATION     evaluate at least this often even when inputs repeat (default P7D)
  --legacy-outputs           rehearse a Pulumi CLI older than 3.112, which drops the stack outputs a
                             failed update had not registered (pulumi/pulumi #12929)
  --seed N                   random seed (default 1; it also draws the order of independent steps)
  --json FILE                write every run and every invariant check as JSON
  --svg FILE                 draw key lifetimes on a time axis
  --quiet                    no table, no progress; the summary only

Reference: docs/rehearsal.md (the model, the JSON report, the picture).

Exit codes:
  0  every invariant held
  1  an invariant was violated (the summary lists each violation); a CI job that broke, or runs
     that kept failing longer than gateTimeout + one cadence, with no injected fault to explain
     it count as violations
  2  bad options or invalid stack configuration
`;

class UsageError extends Error {}

function instant(text: string, what: string): number {
    const t = DateTime.fromISO(text, { setZone: true });
    if (!t.isValid || !/(Z|[+-]\d{2}:?\d{2})$/.test(text)) throw new UsageError(`\`${what}\` must be an ISO-8601 instant with a zone, e.g. 2026-03-01T12:00:00Z (got ${JSON.stringify(text)})`);
    return t.toMillis();
}

function duration(text: string, what: string): number {
    const d = Duration.fromISO(text);
    if (!d.isValid || d.toMillis() <= 0) throw new UsageError(`\`${what}\` must be a positive ISO-8601 duration such as PT1H (got ${JSON.stringify(text)})`);
    return d.toMillis();
}

function probability(text: string | undefined, what: string): number | undefined {
    if (text === undefined) return undefined;
    const p = Number(text);
    if (!Number.isFinite(p) || p < 0 || p > 1) throw new UsageError(`\`${what}\` must be a probability between 0 and 1 (got ${JSON.stringify(text)})`);
    return p;
}

function positive(text: string | undefined, what: string, fallback: number): number {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`\`${what}\` must be a positive number (got ${JSON.stringify(text)})`);
    return n;
}

function window(text: string, what: string): Window {
    const [from, until] = text.split("/");
    if (!from || !until) throw new UsageError(`\`${what}\` must be FROM/UNTIL, two ISO-8601 instants (got ${JSON.stringify(text)})`);
    return { from: instant(from, what), until: instant(until, what) };
}

/** Split `ISO#N` or `ISO:mode` where the instant itself contains colons. */
function suffix(text: string, separator: string): [string, string | undefined] {
    const i = text.lastIndexOf(separator);
    if (i < 0) return [text, undefined];
    const tail = text.slice(i + 1);
    if (separator === ":" && !/^[a-z]+$/.test(tail)) return [text, undefined];
    return [text.slice(0, i), tail];
}

/** Turn the command line into simulation options. Throws a usage error naming the option. */
export function parseSimulateArgs(argv: string[]): { options: SimulationOptions; dir: string; json?: string; svg?: string; quiet: boolean; help: boolean; cadenceGiven: boolean } {
    const { values } = parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
            stack: { type: "string", default: "dev" },
            dir: { type: "string" },
            days: { type: "string" },
            cadence: { type: "string" },
            start: { type: "string" },
            "request-at": { type: "string", multiple: true },
            "request-sets": { type: "string" },
            "kill-at": { type: "string", multiple: true },
            "legacy-outputs": { type: "boolean", default: false },
            "fail-rate": { type: "string" },
            "fail-at": { type: "string", multiple: true },
            "crash-at": { type: "string", multiple: true },
            "crash-rate": { type: "string" },
            reject: { type: "string", multiple: true },
            "miss-rate": { type: "string" },
            "slow-key-rate": { type: "string" },
            outage: { type: "string", multiple: true },
            jitter: { type: "string" },
            "twin-rate": { type: "string" },
            "jobs-per-day": { type: "string" },
            "longest-job": { type: "string" },
            rogue: { type: "string" },
            seed: { type: "string" },
            "no-skip": { type: "boolean", default: false },
            "audit-every": { type: "string" },
            json: { type: "string" },
            svg: { type: "string" },
            quiet: { type: "boolean", default: false },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    const requests: ScheduledRequest[] = (values["request-at"] ?? []).map((text) => {
        const [at, mode] = suffix(text, ":");
        if (mode !== undefined && mode !== "emergency" && mode !== "revoke") throw new UsageError(`\`--request-at\` mode must be emergency or revoke (got ${JSON.stringify(mode)})`);
        return { at: instant(at, "--request-at"), mode: (mode ?? "normal") as ScheduledRequest["mode"] };
    });
    requests.sort((a, b) => a.at - b.at);
    const failAt = (values["fail-at"] ?? []).map((text) => {
        const [at, n] = suffix(text, "#");
        return { at: instant(at, "--fail-at"), op: positive(n, "--fail-at", 1) };
    });
    const crashAt = (values["crash-at"] ?? []).map((text) => {
        const [at, n] = suffix(text, "#");
        if (n === undefined || !/^\d+$/.test(n)) throw new UsageError("`--crash-at` must be ISO#N: the number of writes to apply before the crash");
        return { at: instant(at, "--crash-at"), after: Number(n) };
    });
    for (const text of values["kill-at"] ?? []) {
        const [at, n] = suffix(text, "#");
        if (n === undefined || !/^\d+$/.test(n)) throw new UsageError("`--kill-at` must be ISO#N: the number of writes to apply before the one in flight at the kill");
        crashAt.push({ at: instant(at, "--kill-at"), after: Number(n), inFlight: true } as (typeof crashAt)[number]);
    }
    const reject = (values.reject ?? []).map((text) => {
        // TEXT is matched in any case and kept as given: GitLab keys and scopes keep their case.
        const i = text.indexOf("=");
        const span = i < 0 ? text : text.slice(0, i);
        const match = i < 0 ? "" : text.slice(i + 1);
        return { ...window(span, "--reject"), ...(match ? { match } : {}) };
    });
    const requestSets = values["request-sets"]?.split(",").map((name) => name.trim());
    if (requestSets && requestSets.some((name) => name === "")) throw new UsageError(`\`--request-sets\` must be set names separated by commas (got ${JSON.stringify(values["request-sets"])})`);
    const seed = values.seed === undefined ? 1 : Number(values.seed);
    if (!Number.isInteger(seed)) throw new UsageError(`\`--seed\` must be an integer (got ${JSON.stringify(values.seed)})`);
    const faults = {
        failRate: probability(values["fail-rate"], "--fail-rate"),
        failAt,
        crashAt,
        crashRate: probability(values["crash-rate"], "--crash-rate"),
        rejectWrites: reject,
        missRate: probability(values["miss-rate"], "--miss-rate"),
        slowKeyRate: probability(values["slow-key-rate"], "--slow-key-rate"),
        outages: (values.outage ?? []).map((w) => window(w, "--outage")),
        jitterMs: values.jitter === undefined ? undefined : duration(values.jitter, "--jitter"),
        twinRate: probability(values["twin-rate"], "--twin-rate"),
    };
    return {
        dir: values.dir ?? process.cwd(),
        json: values.json,
        svg: values.svg,
        quiet: values.quiet ?? false,
        help: values.help ?? false,
        cadenceGiven: values.cadence !== undefined,
        options: {
            config: {},
            stack: values.stack ?? "dev",
            start: values.start === undefined ? Date.parse("2026-01-01T00:00:00Z") : instant(values.start, "--start"),
            durationMs: positive(values.days, "--days", 365) * 86_400_000,
            cadenceMs: values.cadence === undefined ? 3_600_000 : duration(values.cadence, "--cadence"),
            requests,
            ...(requestSets ? { requestSets } : {}),
            ...(values["legacy-outputs"] ? { legacyOutputs: true } : {}),
            faults: Object.fromEntries(Object.entries(faults).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))),
            jobs: {
                perDay: positive(values["jobs-per-day"], "--jobs-per-day", 24),
                longestMs: values["longest-job"] === undefined ? undefined : duration(values["longest-job"], "--longest-job"),
                rogue: values.rogue === undefined ? undefined : window(values.rogue, "--rogue"),
            },
            seed,
            skipRepeats: !values["no-skip"],
            ...(values["audit-every"] === undefined ? {} : { auditEveryMs: duration(values["audit-every"], "--audit-every") }),
        },
    };
}

/**
 * `ci-key-rotation simulate`: rehearse a stack's configuration and report. Returns the exit
 * status: 0 when every invariant held, 1 when any was violated, 2 for bad options or config.
 */
export async function simulateCommand(argv: string[], io: CommandIo): Promise<number> {
    let parsed: ReturnType<typeof parseSimulateArgs>;
    try {
        parsed = parseSimulateArgs(argv);
        if (parsed.help) {
            io.stdout.write(simulateUsage);
            return 0;
        }
        const stack = readStackConfig(parsed.dir, parsed.options.stack);
        parsed.options.config = stack.config;
        parsed.options.project = stack.project;
        // Rehearse the cadence the stack says its cron runs at (the program validates `every` against it).
        const stackCadence = stack.config["ci-key-rotation:cadence"];
        if (!parsed.cadenceGiven && stackCadence !== undefined) parsed.options.cadenceMs = duration(stackCadence, "ci-key-rotation:cadence");
        const jitter = parsed.options.faults?.jitterMs;
        if (jitter !== undefined && jitter > parsed.options.cadenceMs) {
            throw new UsageError(
                `\`--jitter\` (${Duration.fromMillis(jitter).rescale().toISO()}) must not be longer than the cadence (${Duration.fromMillis(parsed.options.cadenceMs).rescale().toISO()}): a run would start after the next one, and time would run backwards`,
            );
        }
    } catch (err) {
        io.stderr.write(`simulate: ${(err as Error).message}\n${err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? "Run `simulate --help` for the options.\n" : ""}`);
        return 2;
    }
    const { options } = parsed;
    let lastProgress = Date.now();
    if (!parsed.quiet) {
        options.onProgress = (done, total, at) => {
            if (Date.now() - lastProgress < 2000) return;
            lastProgress = Date.now();
            io.stderr.write(`simulate: ${done}/${total} runs, simulated time ${new Date(at).toISOString().slice(0, 16)}Z\n`);
        };
    }
    // Without --json only the notable runs are needed (the table, the picture): memory stays flat
    // in the number of runs. The JSON report lists every run.
    if (!parsed.json) options.keepRuns = "notable";
    let result;
    try {
        result = await simulate(options);
    } catch (err) {
        const message = err instanceof ConfigError ? err.message : `the rehearsal stopped: ${(err as Error).message}`;
        io.stderr.write(`simulate: ${message}\n`);
        return 2;
    }
    if (!parsed.quiet) io.stdout.write(changeTable(result) + "\n");
    io.stdout.write(summaryText(result, options));
    if (parsed.json) {
        writeFileSync(parsed.json, JSON.stringify(jsonReport(result, options), null, 2) + "\n");
        io.stdout.write(`JSON report: ${parsed.json}\n`);
    }
    if (parsed.svg) {
        writeFileSync(parsed.svg, renderSvg(result, options));
        io.stdout.write(`SVG: ${parsed.svg}\n`);
    }
    return result.summary.violationCount > 0 ? 1 : 0;
}
