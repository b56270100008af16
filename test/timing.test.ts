/**
 * The timing check (`checkTiming` in rotation/core/config.ts) against what one step per run delivers:
 * a policy it accepts keeps every key in targets at most `every + cadence` while runs keep to the
 * cadence, and its message says so.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration } from "luxon";
import { plan } from "../rotation/core/plan";
import { validateConfig } from "../rotation/core/config";
import { T0, carriedOut, decided, input } from "./support/plan-fixtures";

const stack = (extra: Record<string, unknown>) => ({ credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }] }], ...extra });

describe("checkTiming and the freshness bound", () => {
    test("a rejected policy is told the bound the check protects and what to change", () => {
        const result = validateConfig(stack({ every: "P2D" }));
        assert.equal(result.ok, false);
        if (!result.ok) {
            assert.match(result.problems[0], /no key stays in targets longer than every \+ cadence \(2 days, 1 hour/);
            assert.match(result.problems[0], /Raise `every`, or shorten overlap, gateTimeout, retireAfter or `cadence`/);
        }
    });

    test("the tightest accepted policy, run on time, replaces every key within every + cadence", () => {
        // overlap + gateTimeout + retireAfter + 2 × cadence = P5DT2H; P5DT2H1M is the shortest accepted `every`.
        const result = validateConfig(stack({ every: "P5DT2H1M", cadence: "PT1H" }));
        assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
        if (!result.ok) return;
        const { policy } = result.config.sets[0];
        const cadence = Duration.fromObject({ hours: 1 });
        // Hourly runs; the gate holds every deactivation until its timeout (a use right after the
        // push + settle that only stops then), and each step starts at the next run after it is due.
        let state = undefined as Parameters<typeof input>[0];
        let iam: { accessKeyId: string; status: string }[] = [];
        let now = T0;
        let held: { id: string; since: typeof T0 } | undefined;
        let longest = 0;
        for (let i = 0; i < 24 * 30; i++) {
            let r = plan(input(state, now, { observed: iam, policy }));
            if (r.kind === "needs-last-use") {
                const pushedAt = state!.keys[1].pushedAt!;
                const dueAt = Date.parse(pushedAt) + policy.overlap.toMillis();
                // In use until one gap before the timeout: the gate lets go only at the timeout.
                const at = new Date(Math.min(now.toMillis(), dueAt + policy.gateTimeout.toMillis() - 1)).toISOString();
                r = plan({ ...input(state, now, { observed: iam, policy: { ...policy, onGateTimeout: "proceed" } }), lastUse: { at } });
            }
            const dec = decided(r);
            const world = carriedOut(dec);
            ({ iam, state } = world);
            const current = world.current;
            if (held?.id !== current) {
                if (held) longest = Math.max(longest, now.diff(held.since).toMillis());
                held = { id: current, since: now };
            }
            now = now.plus(cadence);
        }
        assert.ok(longest > 0, "no rotation happened");
        assert.ok(longest <= policy.every.plus(cadence).toMillis(), `a key stayed ${longest / 3600e3} h in targets`);
    });
});
