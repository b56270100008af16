import fc from "fast-check";
import { simulate, type ScheduledRequest, type SimulationOptions, type SimulationResult } from "../../rotation/rehearsal/simulation";

/**
 * Random configurations, cadences, gaps, requests and faults; every invariant of DESIGN.md is
 * checked by the simulator after every operation and every run. Durations are drawn in hours so
 * that 60–90 runs see several complete rotations. The seed also draws the order in which the
 * engine model runs independent steps, so each scenario is one of the orders the real engine may
 * take; kills (between writes and with a write in flight) and failed writes are drawn too.
 */

const hour = 3_600_000;
const start = Date.parse("2026-03-01T00:00:00Z");

const targetArb = fc.constantFrom(
    { type: "github-repository", repository: "acme/api" },
    { type: "github-environment", repository: "acme/api", environment: "production" },
    { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web"] },
    { type: "github-organization", organization: "acme", visibility: "all" },
    { type: "github-dependabot", repository: "acme/bot" },
    { type: "gitlab-project", project: "acme/api" },
    { type: "gitlab-group", group: "acme", environmentScope: "production" },
    { type: "gitlab-project", project: "acme/platform/web", environmentScope: "review/*", hidden: true },
);

export const scenarioArb = fc
    .record({
        sets: fc.integer({ min: 1, max: 2 }),
        targets: fc.uniqueArray(targetArb, { minLength: 1, maxLength: 2, selector: (t) => (t.type === "github-organization" ? t.type : JSON.stringify(t)) }),
        overlapH: fc.integer({ min: 1, max: 4 }),
        settleH: fc.integer({ min: 1, max: 4 }),
        retireH: fc.integer({ min: 0, max: 3 }),
        gate: fc.boolean(),
        gateTimeoutH: fc.integer({ min: 1, max: 3 }),
        slackH: fc.integer({ min: 1, max: 12 }),
        cadenceMin: fc.constantFrom(30, 60, 90),
        // 60 scheduled runs or a few more: enough for several rotations at these durations, and
        // the suite's time budget (300 scenarios in two minutes) is spent on scenarios, not length.
        runCount: fc.integer({ min: 60, max: 66 }),
        requests: fc.array(fc.record({ run: fc.integer({ min: 1, max: 80 }), mode: fc.constantFrom("normal", "emergency", "revoke") }), { maxLength: 2 }),
        failRate: fc.constantFrom(0, 0, 0.03, 0.1),
        // IAM's eventual consistency: a short validateTimeout gives up on keys that need seconds;
        // slow keys need minutes, longer than the default PT30S.
        validateTimeout: fc.constantFrom(undefined, undefined, undefined, "PT0S", "PT5S"),
        slowKeyRate: fc.constantFrom(0, 0, 0, 0.2),
        crashRate: fc.constantFrom(0, 0, 0.05),
        // A kill with a write in flight (the create reaches the cloud, not the state) at a chosen run.
        kill: fc.option(fc.record({ run: fc.integer({ min: 1, max: 60 }), after: fc.integer({ min: 0, max: 8 }) }), { nil: undefined }),
        missRate: fc.constantFrom(0, 0.1),
        jitterMin: fc.constantFrom(0, 10),
        reject: fc.option(fc.record({ run: fc.integer({ min: 1, max: 60 }), lengthH: fc.integer({ min: 1, max: 6 }) }), { nil: undefined }),
        seed: fc.integer({ min: 1, max: 1_000_000 }),
    })
    .map((s) => ({ ...s, settleH: Math.min(s.settleH, s.overlapH) }));

export type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

export function stackConfig(s: Scenario): Record<string, string> {
    // `every` must exceed overlap + gateTimeout + retireAfter + 2 × cadence (the program validates
    // it against the `cadence` it is told); the slack decides how close to that bound it runs.
    const cadenceMin = s.cadenceMin;
    const boundMin = (s.overlapH + s.retireH + (s.gate ? s.gateTimeoutH : 0)) * 60 + 2 * cadenceMin;
    const credentials = Array.from({ length: s.sets }, (_, i) => ({
        name: `set${i}`,
        targets: s.targets.map((t) => ({ ...t, names: { accessKeyId: `S${i}_AWS_ACCESS_KEY_ID`, secretAccessKey: `S${i}_AWS_SECRET_ACCESS_KEY` } })),
    }));
    return {
        "ci-key-rotation:credentials": JSON.stringify(credentials),
        "ci-key-rotation:every": `PT${boundMin + s.slackH * 60}M`,
        "ci-key-rotation:cadence": `PT${cadenceMin}M`,
        "ci-key-rotation:overlap": `PT${s.overlapH}H`,
        "ci-key-rotation:settle": `PT${s.settleH}H`,
        "ci-key-rotation:retireAfter": `PT${s.retireH}H`,
        "ci-key-rotation:lastUsedGate": String(s.gate),
        "ci-key-rotation:gateTimeout": `PT${s.gateTimeoutH}H`,
        ...(s.validateTimeout ? { "ci-key-rotation:validateTimeout": s.validateTimeout } : {}),
    };
}


/** Rehearse one generated scenario. */
export function runScenario(s: Scenario): Promise<SimulationResult> {
    return simulate(scenarioOptions(s));
}

/** The rehearsal of one generated scenario. */
export function scenarioOptions(s: Scenario): SimulationOptions {
    const cadenceMs = s.cadenceMin * 60_000;
    const requests: ScheduledRequest[] = s.requests.map((r) => ({ at: start + r.run * cadenceMs + 60_000, mode: r.mode as ScheduledRequest["mode"] }));
    requests.sort((a, b) => a.at - b.at);
    return {
        config: stackConfig(s),
        stack: "property",
        start,
        durationMs: (s.runCount - 1) * cadenceMs,
        cadenceMs,
        requests,
        seed: s.seed,
        faults: {
            failRate: s.failRate,
            crashRate: s.crashRate,
            ...(s.kill ? { crashAt: [{ at: start + s.kill.run * cadenceMs, after: s.kill.after, inFlight: true }] } : {}),
            missRate: s.missRate,
            slowKeyRate: s.slowKeyRate,
            jitterMs: s.jitterMin * 60_000,
            // Runs that changed something always get a twin (I6); a twin of an idle run repeats an idle run.
            twinRate: 0,
            ...(s.reject ? { rejectWrites: [{ from: start + s.reject.run * cadenceMs, until: start + s.reject.run * cadenceMs + s.reject.lengthH * hour }] } : {}),
        },
        // Jobs never outlast `settle`: the documented contract of the last-used gate.
        jobs: { perDay: 24, longestMs: s.settleH * hour },
    };
}

/** Violations of a result, one per line, for assertion messages. */
export function describeViolations(result: SimulationResult): string {
    return result.violations
        .slice(0, 8)
        .map((v) => `${v.invariant} at ${v.at} (run ${v.run}): ${v.message}`)
        .join("\n");
}
