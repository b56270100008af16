import { ConfigError, decodeRawConfig, validateConfig, type StackConfig } from "../core/config";
import { parseState, type RotationState } from "../core/state";
import type { SetSummary } from "../pulumi/credential-set";
import { Engine, type EngineRun, type Operation } from "./engine";
import { FaultInjector, type FaultOptions } from "./faults";
import { invariantIds, InvariantChecker, setModels, type CheckCounts, type Violation } from "./invariants";
import { CiJobs, type BrokenJob, type JobOptions } from "./jobs";
import { Random } from "./random";
import { RepeatedRuns } from "./repeats";
import { viewOf } from "./targets";
import { World } from "./world";
import { failDeliveries, staleInstances } from "./stores/aws-ssm-parameter";

/** A rotation request an operator makes during the rehearsal (`--request-at`). */
export interface ScheduledRequest {
    /** Epoch milliseconds. */
    at: number;
    mode: "normal" | "emergency" | "revoke";
}

/** Everything a rehearsal needs. */
export interface SimulationOptions {
    /** Stack config as Pulumi holds it: full keys (`ci-key-rotation:every`), string values. */
    config: Record<string, string>;
    project?: string;
    stack: string;
    /** First scheduled run, epoch milliseconds. */
    start: number;
    /** Simulated span, milliseconds. */
    durationMs: number;
    /** Time between scheduled runs, milliseconds (the cron cadence). */
    cadenceMs: number;
    requests?: ScheduledRequest[];
    /**
     * Sets the scheduled requests name (`requestSets`); default the stack's own `requestSets`,
     * else every set.
     */
    requestSets?: string[];
    /** Edits of the stack config from an instant on (a person renaming a set, a secret, ...). */
    configChanges?: { at: number; config: Record<string, string> }[];
    /**
     * Rehearse a Pulumi CLI older than 3.112, where a failed update drops the stack outputs it
     * had not registered (pulumi/pulumi #12929). Default: the current engine (PR #15754).
     */
    legacyOutputs?: boolean;
    faults?: FaultOptions;
    jobs?: JobOptions;
    seed: number;
    /**
     * Answer a run whose inputs repeat those of the last run the real program evaluated from
     * that run (rotation/rehearsal/repeats.ts). Default true; false evaluates every run.
     */
    skipRepeats?: boolean;
    /** With `skipRepeats`, evaluate a run at least this often anyway (an audit). Default 7 days. */
    auditEveryMs?: number;
    /**
     * Which runs `runs` keeps: every run (default), or only the notable ones (failed, changed
     * something, a twin, with a fault or a violation), so that memory does not grow with the
     * number of quiet runs. The summary counts every run either way.
     */
    keepRuns?: "all" | "notable";
    /** Called now and then with progress, for a progress line. */
    onProgress?(done: number, total: number, at: number): void;
}

/** What one set looked like after a run. */
export interface SetAfterRun {
    step: string;
    phase?: string;
    generation?: number;
    keys: { generation: number; accessKeyId: string; status: string }[];
    /** The key id the set's targets hold (the first target's view). */
    targetKey?: string;
    warnings?: string[];
}

/** One run of the program in a rehearsal (JSON `runs[]`). */
export interface RunRecord {
    index: number;
    at: string;
    /** A second run at the same instant, right after run `twinOf`. */
    twinOf?: number;
    ok: boolean;
    error?: string;
    /** Faults injected into this run. */
    faults: string[];
    /** Answered from the last evaluated run: its inputs repeated them (`skipRepeats`). */
    skipped?: true;
    /** Sets a failed run's error belongs to (its failing resource, or the sets it names); absent: the whole stack. */
    failedSets?: string[];
    operations: Operation[];
    sets: Record<string, SetAfterRun>;
    checks: CheckCounts;
    violations: number;
}

/** The result of a rehearsal. */
export interface SimulationResult {
    runs: RunRecord[];
    violations: Violation[];
    checks: CheckCounts;
    jobs: { started: number; broken: BrokenJob[]; rogueUses: number; rogueFailures: number };
    summary: Summary;
    /** Key lifetimes for pictures: one entry per key ever minted (no secrets). */
    keys: { accessKeyId: string; user: string; set?: string; createdAt: string; deactivatedAt?: string; deletedAt?: string }[];
    scheduled: number;
    missed: number;
    elapsedMs: number;
}

/** The summary a person reads (and JSON `summary`). */
export interface Summary {
    runs: number;
    runsFailed: number;
    runsWithoutChange: number;
    /** Runs answered from an earlier run instead of evaluating the program (`skipRepeats`); the rest were evaluated. */
    runsSkipped: number;
    keysMinted: number;
    /** Oldest key age seen in a target, hours. */
    oldestTargetKeyAgeHours: number;
    /** Longest stretch with two Active keys for one user, hours. */
    longestTwoActiveHours: number;
    brokenJobs: number;
    tornTargets: number;
    violations: Violation[];
    violationCount: number;
    runsPerSecond: number;
}

/** Read the stack config into the program's validated form, or throw its ConfigError. */
export function validatedConfig(config: Record<string, string>): StackConfig {
    const values: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) if (key.startsWith("ci-key-rotation:")) values[key.slice("ci-key-rotation:".length)] = value;
    const { raw, problems } = decodeRawConfig(values);
    const result = validateConfig(raw);
    if (!result.ok || problems.length > 0) throw new ConfigError([...problems, ...(result.ok ? [] : result.problems)]);
    return result.config;
}

function configAt(options: SimulationOptions, at: number): Record<string, string> {
    const changed = (options.configChanges ?? []).filter((c) => c.at <= at).sort((a, b) => a.at - b.at);
    const base = changed.length > 0 ? changed[changed.length - 1].config : options.config;
    const applied = (options.requests ?? []).filter((r) => r.at <= at);
    const requestSets = "ci-key-rotation:requestSets";
    if (applied.length === 0) {
        // `requestSets` without a request is refused by the program: a stack file that keeps it
        // for the next request is rehearsed without it until a scheduled request comes.
        if (base[requestSets] === undefined || base["ci-key-rotation:request"]) return base;
        const { [requestSets]: _unused, ...rest } = base;
        return rest;
    }
    const last = applied[applied.length - 1];
    const sets = options.requestSets !== undefined ? JSON.stringify(options.requestSets) : base[requestSets];
    const { [requestSets]: _own, ...rest } = base;
    return {
        ...rest,
        "ci-key-rotation:request": `rehearsal-request-${applied.length}`,
        "ci-key-rotation:emergency": String(last.mode === "emergency"),
        "ci-key-rotation:revoke": String(last.mode === "revoke"),
        ...(sets !== undefined ? { [requestSets]: sets } : {}),
    };
}

/**
 * Run the real program at every scheduled instant over the span, with CI jobs between runs and
 * the configured faults, checking every invariant after every operation and every run.
 */
export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
    const started = Date.now();
    const random = new Random(options.seed);
    const world = new World(new Random(options.seed ^ 0x5eed));
    const faults = new FaultInjector(options.faults ?? {}, new Random(options.seed ^ 0xfa17));
    failDeliveries(world, options.faults?.deliveryFails ?? []);
    faults.standing.push((at) => staleInstances(world, at));
    world.iam.propagationMs = () => faults.propagationMs();
    world.kms.deniedDuring = options.faults?.kmsDenied ?? [];
    const checker = new InvariantChecker(world);
    const engine = new Engine(
        world,
        { project: options.project ?? "ci-key-rotation", stack: options.stack },
        {
        beforeOperation(op, run) {
            faults.beforeOperation(op, run);
            checker.beforeOperation(op);
        },
        afterEffect: (op, run) => faults.afterEffect(op, run),
        afterOperation: (op, run) => checker.afterOperation(op, run),
        inspectInputs: (type, name, inputs) => checker.inspectInputs(type, name, inputs),
        inspectState: (type, name, outputs) => checker.inspectState(type, name, outputs),
        declaresImport: (type, name, id) => checker.declaresImport(type, name, id),
        },
        // Its own stream: how many steps a run has does not shift the faults or the jobs.
        { orderSeed: (options.seed ^ 0x0d3e) >>> 0, legacyOutputs: options.legacyOutputs },
    );

    let configText = "";
    let config: StackConfig | undefined;
    let sets: ReturnType<typeof setModels> = [];
    const refreshConfig = (raw: Record<string, string>) => {
        const text = JSON.stringify(raw);
        if (text === configText) return;
        configText = text;
        config = validatedConfig(raw);
        sets = setModels(config);
    };
    refreshConfig(configAt(options, options.start));
    const repeats = options.skipRepeats === false ? undefined : new RepeatedRuns(world, options.auditEveryMs ?? 7 * 86_400_000);
    const consumersOf = (models: typeof sets) => models.flatMap((s) => s.targets.flatMap((t) => t.consumers.map((c) => ({ ...c, set: s.name }))));
    const jobs = new CiJobs(world, random, options.jobs ?? {}, consumersOf(sets), options.start);
    const stuck = new FailureStreaks(options);

    // Unawaited outputs of a failed registration reject with nobody listening; they are part of the run.
    let current: EngineRun | { errors: string[] } | undefined;
    const onRejection = (reason: unknown) => current?.errors.push(reason instanceof Error ? reason.message : String(reason));
    process.on("unhandledRejection", onRejection);

    const runs: RunRecord[] = [];
    // Every run's outcome, for the broken-job check: `runs` may keep only notable runs, and the
    // check needs the quiet clean ones too.
    const timeline: RunMark[] = [];
    const keepAll = options.keepRuns !== "notable";
    const counts = { runs: 0, failed: 0, withoutChange: 0 };
    const twoActiveSince = new Map<string, number>();
    let longestTwoActive = 0;
    const trackTwoActive = (at: number) => {
        for (const set of sets) {
            const active = (world.iam.users.get(set.user)?.keys ?? []).filter((k) => k.status === "Active").length;
            const since = twoActiveSince.get(set.user);
            if (active >= 2 && since === undefined) twoActiveSince.set(set.user, at);
            if (active < 2 && since !== undefined) {
                longestTwoActive = Math.max(longestTwoActive, at - since);
                twoActiveSince.delete(set.user);
            }
        }
    };

    const runOnce = async (at: number, twinOf?: number): Promise<RunRecord> => {
        const raw = configAt(options, at);
        refreshConfig(raw);
        jobs.setConsumers(consumersOf(sets), at);
        const index = counts.runs;
        let previous: RotationState | undefined;
        try {
            previous = parseState(engine.outputs?.rotation);
        } catch {
            previous = undefined;
        }
        checker.startRun(index, at, sets, previous);
        faults.startRun(at, twinOf !== undefined);
        // Twins, runs with a fault planned and audits always run the program (repeats.ts).
        const inputs = repeats && (await repeats.inputs(config!, configText, previous, at));
        const answer = inputs && twinOf === undefined && !faults.planned(at) ? repeats.answer(config!, inputs, at) : undefined;
        if (answer) engine.outputs = answer.outputs;
        const context = { errors: [] as string[] };
        current = context;
        const result = answer ?? (await engine.run(at, raw));
        // Give rejections that surface a turn late a chance to be counted in this run.
        if (!answer) await new Promise((r) => setImmediate(r));
        result.errors.push(...context.errors);
        current = undefined;
        if (result.unmodelled) throw new Error(result.unmodelled);
        const injected = [...faults.injected(), ...result.worldFaults];
        if (inputs && !answer) repeats.evaluated(at, inputs, result, injected);
        checker.endRun(result, injected);
        stuck.afterRun(checker, at, result, injected, sets);
        if (twinOf !== undefined) checker.checkTwin(result);
        trackTwoActive(at);
        const record: RunRecord = {
            index,
            at: new Date(at).toISOString(),
            ...(twinOf !== undefined ? { twinOf } : {}),
            ok: result.ok,
            ...(result.failure ? { error: checker.redact(result.failure) } : {}),
            faults: injected,
            ...(answer ? { skipped: true as const } : {}),
            ...(result.ok ? {} : failedSetsOf(config!, result)),
            operations: result.operations,
            sets: describeSets(config!, result, engine.outputs, world),
            checks: checker.run,
            violations: invariantIds.reduce((n, id) => n + checker.run[id].failed, 0),
        };
        counts.runs++;
        if (!record.ok) counts.failed++;
        else if (record.operations.length === 0) counts.withoutChange++;
        if (keepAll || !record.ok || record.operations.length > 0 || twinOf !== undefined || record.faults.length > 0 || record.violations > 0) runs.push(record);
        timeline.push({ index: record.index, at: record.at, ok: record.ok, faults: record.faults.length, operations: record.operations.length });
        return record;
    };

    const total = Math.floor(options.durationMs / options.cadenceMs) + 1;
    let missed = 0;
    try {
        for (let i = 0; i < total; i++) {
            const scheduled = options.start + i * options.cadenceMs;
            if (!faults.runs(scheduled)) {
                missed++;
                continue;
            }
            const at = scheduled + faults.jitter();
            jobs.advance(at);
            faults.denyKms(world.kms, at);
            const record = await runOnce(at);
            // I6 is about a run that succeeded: a second trigger at the same instant must find
            // nothing to do. (A run after a failed one at the same instant is a retry.)
            if (record.ok && faults.twin(record.operations.length > 0)) await runOnce(at, record.index);
            if (options.onProgress && i % 200 === 199) options.onProgress(i + 1, total, at);
        }
        const end = options.start + options.durationMs;
        jobs.advance(end);
        trackTwoActive(end);
        for (const since of twoActiveSince.values()) longestTwoActive = Math.max(longestTwoActive, end - since);
    } finally {
        process.off("unhandledRejection", onRejection);
    }

    unexplainedBrokenJobs(checker, timeline, jobs.broken, options);
    const elapsedMs = Date.now() - started;
    const violationCount = invariantIds.reduce((n, id) => n + checker.totals[id].failed, 0);
    const userToSet = new Map(sets.map((s) => [s.user, s.name]));
    return {
        runs,
        violations: checker.violations,
        checks: checker.totals,
        jobs: { started: jobs.started, broken: jobs.broken, rogueUses: jobs.rogueUses, rogueFailures: jobs.rogueFailures },
        keys: [...world.iam.history.values()].map((k) => ({
            accessKeyId: k.accessKeyId,
            user: k.user,
            set: userToSet.get(k.user),
            createdAt: new Date(k.createdAt).toISOString(),
            ...(k.deactivatedAt !== undefined ? { deactivatedAt: new Date(k.deactivatedAt).toISOString() } : {}),
            ...(k.deletedAt !== undefined ? { deletedAt: new Date(k.deletedAt).toISOString() } : {}),
        })),
        scheduled: total,
        missed,
        elapsedMs,
        summary: {
            runs: counts.runs,
            runsFailed: counts.failed,
            runsWithoutChange: counts.withoutChange,
            runsSkipped: repeats?.skipped ?? 0,
            keysMinted: world.iam.history.size,
            oldestTargetKeyAgeHours: round1(Math.max(checker.oldestTargetKeyAgeMs, jobs.oldestKeyAgeMs) / 3_600_000),
            longestTwoActiveHours: round1(longestTwoActive / 3_600_000),
            brokenJobs: jobs.broken.length,
            tornTargets: checker.tornTargets.length,
            violations: checker.violations,
            violationCount,
            runsPerSecond: round1(counts.runs / (elapsedMs / 1000)),
        },
    };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function describeSets(config: StackConfig, result: EngineRun, saved: Record<string, unknown> | undefined, world: World): Record<string, SetAfterRun> {
    const summaries = (result.ok ? result.outputs?.sets : undefined) as Record<string, SetSummary> | undefined;
    const state = (saved?.rotation ?? undefined) as RotationState | undefined;
    const out: Record<string, SetAfterRun> = {};
    for (const set of config.sets) {
        const summary = summaries?.[set.name];
        const keys = (world.iam.users.get(set.user.name)?.keys ?? []).map((k) => {
            const gen = state?.sets[set.name]?.keys.find((r) => r.accessKeyId === k.accessKeyId)?.generation ?? 0;
            return { generation: gen, accessKeyId: k.accessKeyId, status: k.status };
        });
        const firstTarget = set.targets[0];
        const viewKey = firstTarget ? targetKeyOf(world, firstTarget.target) : undefined;
        out[set.name] = {
            step: summary?.step ?? (result.ok ? "none" : "failed"),
            ...(summary ? { phase: summary.phase, generation: summary.generation } : {}),
            keys,
            ...(viewKey ? { targetKey: viewKey } : {}),
            ...(summary?.warnings.length ? { warnings: summary.warnings } : {}),
        };
    }
    return out;
}

function targetKeyOf(world: World, target: StackConfig["sets"][number]["targets"][number]["target"]): string | undefined {
    return viewOf(target, "").holds(world.stores).accessKeyId;
}

/**
 * The sets a failed run's error belongs to: the set whose resource failed, or the sets a
 * program error names (`set "deploy"`). Nothing for an error of the whole stack.
 */
function failedSetsOf(config: StackConfig, result: EngineRun): { failedSets?: string[] } {
    const names = config.sets.map((s) => s.name);
    const byResource = result.failedResource ? names.filter((n) => result.failedResource!.startsWith(`${n}-`)).sort((a, b) => b.length - a.length).slice(0, 1) : [];
    const named = names.filter((n) => (result.failure ?? "").includes(`set "${n}"`));
    const sets = byResource.length > 0 ? byResource : named;
    return sets.length > 0 && sets.length < names.length ? { failedSets: sets } : {};
}

/**
 * Runs that keep failing with nothing injected to explain it: a stuck rotation. A streak of
 * failed runs without an injected fault (or the rogue consumer the gate is waiting out) that
 * lasts longer than `gateTimeout` + one cadence is an I8 violation (DESIGN §3: recovery needs no
 * manual step), reported once per streak.
 */
class FailureStreaks {
    private since?: number;
    private reported = false;

    constructor(private readonly options: SimulationOptions) {}

    afterRun(checker: InvariantChecker, at: number, result: EngineRun, injected: string[], sets: ReturnType<typeof setModels>): void {
        const rogue = this.options.jobs?.rogue;
        const settle = Math.max(0, ...sets.map((s) => s.settleMs));
        const rogueCause = rogue !== undefined && at >= rogue.from && at < rogue.until + settle;
        if (result.ok || injected.length > 0 || rogueCause) {
            this.since = undefined;
            this.reported = false;
            return;
        }
        this.since ??= at;
        const limit = Math.max(0, ...sets.map((s) => s.gateTimeoutMs)) + this.options.cadenceMs;
        if (this.reported || at - this.since <= limit) return;
        this.reported = true;
        const since = this.since;
        checker.check(
            "I8",
            false,
            () => `runs have failed since ${new Date(since).toISOString()} (${Math.round((at - since) / 3_600_000)} h) with no injected fault, longer than gateTimeout + one cadence: ${(result.failure ?? "").split("\n")[0].slice(0, 300)}`,
        );
    }
}

/**
 * A CI job that broke with nothing to explain it is an I2 violation: what a job reads is what a
 * target holds. Explained: an injected fault, or an emergency or revoke run that took a step, at
 * or before the failing call with no clean successful run between it and the job's start (a clean
 * run leaves every target on the newest Active key, I3).
 */
/** What the broken-job check needs of every run. */
interface RunMark {
    index: number;
    at: string;
    ok: boolean;
    faults: number;
    operations: number;
}

function unexplainedBrokenJobs(checker: InvariantChecker, runs: RunMark[], broken: BrokenJob[], options: SimulationOptions): void {
    const requestAt = (at: number) => [...(options.requests ?? [])].reverse().find((r) => r.at <= at);
    const causal = (run: RunMark) => {
        const at = Date.parse(run.at);
        const request = requestAt(at);
        return run.faults > 0 || (request !== undefined && request.mode !== "normal" && run.operations > 0);
    };
    for (const job of broken) {
        const at = Date.parse(job.at);
        const startedAt = Date.parse(job.startedAt);
        // KMS refusing Decrypt (an injected `kmsDenied` window) explains a job that could not decrypt.
        if ((options.faults?.kmsDenied ?? []).some((w) => at >= w.from && at < w.until) && /could not decrypt/.test(job.reason)) continue;
        let explained = false;
        let cleanSince = false;
        // Walk back from the failing call: a cause counts unless a clean run came between it and the job's start.
        for (let i = runs.length - 1; i >= 0; i--) {
            const run = runs[i];
            const runAt = Date.parse(run.at);
            if (runAt > at) continue;
            if (causal(run)) {
                explained = !cleanSince;
                break;
            }
            // A twin (a run at the same instant as the one before it) starts only when that run
            // has ended, so a job that started during that run did not start after the twin.
            const twin = i > 0 && runs[i - 1].at === run.at;
            if (run.ok && runAt < startedAt && !twin) cleanSince = true;
            if (cleanSince) break;
        }
        if (explained) continue;
        const last = [...runs].reverse().find((r) => Date.parse(r.at) <= at);
        checker.record("I2", last?.index ?? 0, job.at, `a CI job in ${job.consumer} broke at ${job.at} (${job.when}, started ${job.startedAt}) with no injected fault or request to explain it: ${job.reason}`);
    }
}
