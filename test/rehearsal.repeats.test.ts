import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import type { SimulationOptions, SimulationResult } from "../rotation/rehearsal/simulation";
import { readStackConfig } from "../rotation/rehearsal/stack";
import { rehearseInChild, slowTier, stopRehearsalChildren } from "./support/rehearsal-child";
import { outcome } from "./support/rehearsal-modes";
import { scenarioArb, scenarioOptions } from "./support/rehearsal-scenarios";

after(stopRehearsalChildren);

/**
 * A run whose inputs repeat the last evaluated run's may be answered from it (`skipRepeats`,
 * rotation/rehearsal/repeats.ts). Both modes must reach the same outcome on the same seeds: the
 * same operations in the same runs, the same sets after every run, the same faults, violations,
 * keys and CI jobs.
 */

const day = 86_400_000;
const dev = readStackConfig(join(__dirname, ".."), "dev");

async function bothModes(options: SimulationOptions): Promise<{ skipping: SimulationResult; full: SimulationResult }> {
    const [skipping, full] = await Promise.all([rehearseInChild({ ...options, skipRepeats: true }), rehearseInChild({ ...options, skipRepeats: false })]);
    return { skipping, full };
}

function firstDifference(a: SimulationResult, b: SimulationResult): string {
    const [x, y] = [outcome(a) as { runs: unknown[] }, outcome(b) as { runs: unknown[] }];
    const i = x.runs.findIndex((run, n) => JSON.stringify(run) !== JSON.stringify(y.runs[n]));
    return i < 0 ? "the runs agree; the summary, violations, keys or jobs differ" : `run ${i}:\n  skipping: ${JSON.stringify(x.runs[i])}\n  full:     ${JSON.stringify(y.runs[i])}`;
}

test("skipping repeated runs changes nothing in 10 days (60 in the slow tier) of the example stack with a request, a crash and random API errors", async () => {
    const { skipping, full } = await bothModes({
        config: dev.config,
        project: dev.project,
        stack: "dev",
        start: Date.parse("2026-01-01T00:00:00Z"),
        durationMs: (slowTier ? 60 : 10) * day,
        cadenceMs: 3_600_000,
        seed: 11,
        requests: [{ at: Date.parse("2026-01-10T10:30:00Z"), mode: "normal" }],
        faults: { crashAt: [{ at: Date.parse("2026-01-08T00:00:00Z"), after: 1 }], failRate: 0.05, twinRate: 0.05 },
    });
    assert.equal(full.summary.runsSkipped, 0);
    // Most runs repeat their predecessor: the mode has something to skip (and audits still run).
    assert.ok(skipping.summary.runsSkipped > skipping.summary.runs / 2, `${skipping.summary.runsSkipped} of ${skipping.summary.runs} runs skipped`);
    assert.ok(skipping.summary.runsSkipped < skipping.summary.runs - 20);
    assert.deepStrictEqual(outcome(skipping), outcome(full), firstDifference(skipping, full));
});

test("skipping repeated runs changes nothing in random scenarios (faults, requests, gates, cadences)", { timeout: 600_000 }, async () => {
    const scenarios = fc.sample(scenarioArb, { numRuns: slowTier ? 24 : 1, seed: 20261124 });
    for (const scenario of scenarios) {
        const { skipping, full } = await bothModes(scenarioOptions(scenario));
        assert.deepStrictEqual(outcome(skipping), outcome(full), `scenario ${JSON.stringify(scenario)}\n${firstDifference(skipping, full)}`);
    }
});
