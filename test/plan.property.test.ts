/**
 * Properties of the phase machine over random run times, requests, consumers of old keys, crashes
 * part-way through a run and kills that lose a key's pending create, against the model in
 * `support/plan-model.ts`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Duration } from "luxon";
import { plan, type Decision } from "../rotation/core/plan";
import { defaultPolicy, type RotationPolicy, type RotationRequest } from "../rotation/core/policy";
import type { SetState } from "../rotation/core/state";
import { simulateModel as simulate, T0, type RunSpec } from "./support/plan-model";

const runSpec: fc.Arbitrary<RunSpec> = fc.record(
    {
        gapMinutes: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 8, arbitrary: fc.integer({ min: 1, max: 6 * 60 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * 24 * 60 }) }),
        request: fc.option(fc.record({ id: fc.integer({ min: 1, max: 4 }), mode: fc.constantFrom("plain" as const, "emergency" as const, "revoke" as const) }), { freq: 8, nil: undefined }),
        straggleMinutesAgo: fc.option(fc.integer({ min: 0, max: 6 * 60 }), { freq: 3, nil: undefined }),
        crashAfter: fc.option(fc.integer({ min: 0, max: 4 }), { freq: 6, nil: undefined }),
        loseCreate: fc.boolean(),
        failed: fc.boolean(),
    },
    { requiredKeys: ["gapMinutes"] },
);

const policyArb: fc.Arbitrary<RotationPolicy> = fc
    .record({
        everyHours: fc.integer({ min: 24, max: 24 * 14 }),
        overlapHours: fc.integer({ min: 0, max: 24 }),
        retireHours: fc.integer({ min: 0, max: 48 }),
        gate: fc.boolean(),
        onGateTimeout: fc.constantFrom("proceed" as const, "fail" as const),
    })
    .filter((p) => p.overlapHours + p.retireHours + 6 < p.everyHours)
    .map((p) => ({
        ...defaultPolicy,
        every: Duration.fromObject({ hours: p.everyHours }),
        overlap: Duration.fromObject({ hours: p.overlapHours }),
        retireAfter: Duration.fromObject({ hours: p.retireHours }),
        settle: Duration.fromObject({ hours: Math.min(1, p.overlapHours) }),
        gateTimeout: Duration.fromObject({ hours: 6 }),
        lastUsedGate: p.gate,
        onGateTimeout: p.onGateTimeout,
    }));


/**
 * The full sample runs in the slow tier (`npm run test:slow`); the fast tier (`npm test`) keeps an
 * eighth of it (at least 10), so every property is still exercised after each change.
 */
const runs = (full: number): number => (process.env.TEST_TIER === "slow" ? full : Math.max(10, Math.ceil(full / 8)));

test("invariants hold over random schedules, requests, straggling consumers, crashes and lost creates", () => {
    fc.assert(
        fc.property(policyArb, fc.array(runSpec, { minLength: 20, maxLength: 120 }), (policy, runs) => simulate(policy, runs)),
        { numRuns: runs(400), includeErrorInReport: true },
    );
});

test("after crashes stop, regular runs always bring the set back to steady rotation", () => {
    fc.assert(
        fc.property(policyArb, fc.array(runSpec, { minLength: 5, maxLength: 40 }), (policy, chaos) => {
            const calm: RunSpec[] = Array.from({ length: 24 * 30 }, () => ({ gapMinutes: 60 }));
            // Any schedule of faults, then a month of hourly runs without faults or gate trouble.
            simulate({ ...policy, lastUsedGate: false }, [...chaos, ...calm]);
        }),
        { numRuns: runs(60), includeErrorInReport: true },
    );
});

test("a request is complete once every key that existed when it arrived is deleted", () => {
    fc.assert(
        fc.property(fc.integer({ min: 0, max: 3 }), fc.constantFrom("plain", "emergency", "revoke"), (startPhaseSteps, mode) => {
            const policy = { ...defaultPolicy, lastUsedGate: false };
            let state: SetState | undefined;
            const iam = new Map<string, string>(); // id -> status
            let now = T0;
            let n = 0;
            const step = (request?: RotationRequest) => {
                const result = plan({ set: "s", user: "u", state, observed: [...iam].map(([accessKeyId, status]) => ({ accessKeyId, status })), policy, request, now });
                assert.equal(result.kind, "decision");
                const dec = (result as { decision: Decision }).decision;
                let minted: string | undefined;
                for (const k of dec.keys) {
                    if (k.accessKeyId) iam.set(k.accessKeyId, k.status);
                    else iam.set((minted = `AKIA${String(++n).padStart(16, "0")}`), "Active");
                }
                for (const id of dec.state.retired ?? []) iam.delete(id);
                state = { ...dec.state, keys: dec.state.keys.map((k) => (k.generation === dec.minted ? { ...k, accessKeyId: minted! } : k)) };
                now = now.plus({ hours: 1 });
            };
            step();
            now = now.plus(policy.every);
            for (let i = 0; i < startPhaseSteps; i++) {
                step();
                now = now.plus({ days: 2 });
            }
            const before = new Set(iam.keys());
            const request = { id: "req", emergency: mode !== "plain", revoke: mode === "revoke" };
            for (let i = 0; i < 24 * 10 && state!.lastRequest !== "req"; i++) step(request);
            assert.equal(state!.lastRequest, "req");
            for (const id of before) assert.ok(!iam.has(id), `key ${id} from before the request still exists`);
        }),
        { numRuns: runs(50), includeErrorInReport: true },
    );
});

test("once a straggling consumer of the old key stops, the last-used gate lets go instead of failing the run", () => {
    fc.assert(
        fc.property(
            policyArb.map((p) => ({ ...p, lastUsedGate: true, onGateTimeout: "fail" as const })),
            fc.integer({ min: 0, max: 36 }),
            fc.integer({ min: 0, max: 59 }),
            (policy, stopHoursAfterMint, minutesAgo) => {
                // Hourly runs; a consumer that was not switched over keeps using the previous key
                // until some hours after the second mint, then stops. The model fails any gate block
                // while that key's last use is not recent.
                const stopAt = policy.every.as("hours") + stopHoursAfterMint;
                const runs: RunSpec[] = Array.from({ length: 24 * 30 }, (_, i) => ({ gapMinutes: 60, ...(i < stopAt ? { straggleMinutesAgo: minutesAgo } : {}) }));
                simulate(policy, runs);
            },
        ),
        { numRuns: runs(60), includeErrorInReport: true },
    );
});

test("a paused set never mints, from its first run on, whatever the schedule, requests or crashes", () => {
    fc.assert(
        fc.property(policyArb, fc.array(runSpec, { minLength: 5, maxLength: 40 }), (policy, runs) => simulate({ ...policy, paused: true }, runs)),
        { numRuns: runs(100), includeErrorInReport: true },
    );
});
