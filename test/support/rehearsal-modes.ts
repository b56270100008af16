import type { SimulationResult } from "../../rotation/rehearsal/simulation";

/**
 * What a rehearsal's outcome is, for comparing the two modes (every run evaluated, or repeats
 * answered from the last evaluated run): every run's time, result, faults, operations and sets,
 * every violation, the summary, the keys and the CI jobs. Left out: what only says how the
 * outcome was reached (which runs were skipped, speed, and how many checks of secrets in
 * registration inputs ran, which skipped runs do not make).
 */
export function outcome(result: SimulationResult): unknown {
    const { runsPerSecond: _speed, runsSkipped: _skipped, ...summary } = result.summary;
    return {
        runs: result.runs.map(({ skipped: _s, checks: _c, ...run }) => run),
        violations: result.violations,
        summary,
        keys: result.keys,
        jobs: result.jobs,
        scheduled: result.scheduled,
        missed: result.missed,
    };
}
