import { DateTime } from "luxon";
import { clockVariable, readClock } from "../pulumi/clock";
import type { StackConfig } from "../core/config";
import type { KeySummary, SetSummary } from "../pulumi/credential-set";
import { age, type Decision, type ObservedKey } from "../core/plan";
import { decideAll } from "../pulumi/program";
import type { KeyRecord, RotationState } from "../core/state";
import type { EngineRun } from "./engine";
import type { World } from "./world";

/**
 * Repeated runs: most scheduled runs of a rehearsal see exactly what the previous run saw and
 * register exactly what it registered. Such a run may be answered from the last run the real
 * program evaluated, without evaluating it again:
 * - its inputs are identical to that run's: the stack config (requests included), the previous
 *   state apart from `asOf`, and the invoke answers (IAM's key list per set; GitHub repository
 *   ids never change in the fake world);
 * - that run succeeded and changed nothing, so the engine's resources are what they were when it
 *   started (only evaluated runs change them), and no fault was injected into it;
 * - the plan (pure, `rotation/core/plan.ts`), which decides every tick, takes no step for any set and
 *   decides the same keys, generation and state as it did for that run; a plan that needs a
 *   key's last use, blocks a set, or leaves a set without a key (paused before its first mint)
 *   is evaluated;
 * - the caller evaluates twins, runs with a fault planned, and periodic audit runs.
 * The answer is the output the program would write: the plan's state with this run's `asOf`,
 * and the set summaries of that run with this tick's step, reason, next step and key ages
 * (as `rotation/pulumi/credential-set.ts` builds them).
 */

/** What the plan and the invoke answers say at one tick. */
export interface TickInputs {
    /** Config, previous state apart from `asOf`, and invoke answers, as one string. */
    fingerprint: string;
    /** The plan's decisions, when every set's plan decided without asking IAM for a key's last use. */
    decisions?: Map<string, Decision>;
    /** The parts of the decisions that shape registrations, as one string. */
    shape?: string;
    now: string;
}

/** Thrown by the observer the plan runs with when it asks for a last use: such a tick is evaluated. */
class NeedsEvaluation extends Error {}

interface Evaluated {
    at: number;
    inputs: TickInputs;
    idle: boolean;
    outputs?: Record<string, unknown>;
    secretOutputs: string[];
}

/** Decides, tick by tick, whether a run repeats the last evaluated one, and answers it. */
export class RepeatedRuns {
    private last?: Evaluated;
    /** Runs answered from an earlier run. */
    skipped = 0;

    /** `auditEveryMs`: a run this long after the last evaluated one is evaluated (a periodic audit). */
    constructor(
        private readonly world: World,
        private readonly auditEveryMs: number,
    ) {}

    /** The inputs of the run at `at` (before it runs: the world as the program would read it). */
    async inputs(config: StackConfig, configText: string, previous: RotationState | undefined, at: number): Promise<TickInputs> {
        const { now } = readClock({ [clockVariable]: new Date(at).toISOString() });
        // What `aws.iam.getAccessKeys` answers under the engine's mocks (engine.ts `call`); a user
        // that does not exist yet has no keys (rotation/pulumi/aws.ts `providerObserver`).
        const answers: Record<string, ObservedKey[]> = {};
        for (const set of config.sets) {
            answers[set.user.name] = (this.world.iam.users.get(set.user.name)?.keys ?? []).map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: new Date(k.createdAt).toISOString() }));
        }
        const fingerprint = JSON.stringify([configText, previous ? { ...previous, asOf: undefined } : null, answers]);
        let decisions: Map<string, Decision> | undefined;
        try {
            const decided = await decideAll(config, previous, now, {
                listKeys: async (user) => answers[user] ?? [],
                lastUse: async () => {
                    throw new NeedsEvaluation();
                },
            });
            // A blocked set fails the run (rotation/pulumi/program.ts `endBlockedRun`): evaluated.
            decisions = decided.blocked.size === 0 ? decided.decisions : undefined;
        } catch {
            decisions = undefined;
        }
        const shape = decisions && JSON.stringify([...decisions].map(([name, d]) => [name, d.step, d.keys, d.current, d.minted, d.state, d.paused]));
        return { fingerprint, decisions, shape, now: now.toISO()! };
    }

    /** Record a run the real program evaluated, with the inputs it had. */
    evaluated(at: number, inputs: TickInputs, result: EngineRun, injected: string[]): void {
        const idle = result.ok && result.operations.length === 0 && injected.length === 0 && result.errors.length === 0;
        this.last = { at, inputs, idle, outputs: result.outputs, secretOutputs: result.secretOutputs };
    }

    /** The run's answer from the last evaluated run, or undefined when it must be evaluated. */
    answer(config: StackConfig, inputs: TickInputs, at: number): EngineRun | undefined {
        const last = this.last;
        if (!last?.idle || !last.outputs || at - last.at >= this.auditEveryMs || !inputs.decisions || inputs.fingerprint !== last.inputs.fingerprint || inputs.shape !== last.inputs.shape) return undefined;
        if ([...inputs.decisions.values()].some((d) => d.step !== "none")) return undefined;
        const summaries = last.outputs.sets as Record<string, SetSummary> | undefined;
        if (!summaries) return undefined;
        const sets: Record<string, SetSummary> = {};
        const now = DateTime.fromISO(inputs.now, { zone: "utc" });
        for (const set of config.sets) {
            const d = inputs.decisions.get(set.name);
            const before = summaries[set.name];
            // A set with no key yet (paused before its first mint) has a summary of its own: evaluated.
            if (!d || !before || !d.keys.some((k) => k.generation === d.current)) return undefined;
            sets[set.name] = {
                ...before,
                generation: d.current,
                phase: d.state.phase,
                paused: d.paused,
                step: d.step,
                reason: d.reason,
                next: d.next,
                keys: d.state.keys.map((k) => keySummary(k, now)),
                warnings: d.warnings,
            };
        }
        const rotation: RotationState = { version: 1, asOf: inputs.now, sets: Object.fromEntries(config.sets.map((set) => [set.name, inputs.decisions!.get(set.name)!.state])) };
        this.skipped++;
        return {
            at,
            operations: [],
            logs: [],
            errors: [],
            crashed: false,
            elapsedMs: 0,
            worldFaults: [],
            ok: true,
            outputs: { ...last.outputs, rotation, sets },
            secretOutputs: last.secretOutputs,
        };
    }
}

/**
 * A key of a set summary as `rotation/pulumi/credential-set.ts` builds it. Its `age` is worked out when
 * read: nothing in a rehearsal reads the summaries' ages, and luxon's date arithmetic was the
 * largest cost of an answered run.
 */
function keySummary(k: KeyRecord, now: DateTime): KeySummary {
    const summary = { generation: k.generation, accessKeyId: k.accessKeyId, status: k.status, createdAt: k.createdAt } as KeySummary;
    let value: string | undefined;
    Object.defineProperty(summary, "age", { enumerable: true, get: () => (value ??= age(k.createdAt, now)) });
    return summary;
}
