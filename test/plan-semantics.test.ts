/**
 * Rotation logic under the real engine's semantics: an interrupted mint whose key the engine
 * never checkpointed, the last-used gate letting go, requests that meet an interrupted mint,
 * `paused` on a set's first run, and what one step per run can deliver after missed runs.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { plan } from "../rotation/core/plan";
import { T0, carriedOut, d, decided, input, iso, observed, planWithGate, policy, pushed, retiring, steady } from "./support/plan-fixtures";

const hour = d("PT1H");

describe("plan: an interrupted mint's key is taken over by id", () => {
    const s = steady(1, T0);
    const now = T0.plus(d("P7DT1H"));
    const orphan = { accessKeyId: "AKIAORPHAN0000000002", status: "Active", createDate: iso(T0.plus(d("P7D"))) };

    test("the plan asks IAM whether the key was ever used before deciding what to do with it", () => {
        assert.deepEqual(plan(input(s, now, { observed: [...observed(s.keys), orphan] })), { kind: "needs-last-use", accessKeyId: orphan.accessKeyId });
    });

    test("a key never used (its secret may never have reached the program) is imported and retired, never created again", () => {
        const dec = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan] }), {}));
        // Imported under the interrupted mint's own name (generation 2): a lost pending create is
        // not in the engine's state, so declaring that name without `import` creates a third key.
        assert.deepEqual(dec.keys, [
            { generation: 2, status: "Active", accessKeyId: orphan.accessKeyId, import: orphan.accessKeyId },
            { generation: 1, status: "Active", accessKeyId: s.keys[0].accessKeyId },
        ]);
        assert.equal(dec.minted, undefined);
        assert.equal(dec.current, 1, "targets keep the key whose secret is known");
        assert.equal(dec.state.phase, "pushed");
        assert.equal(dec.state.keys[0].adoptedAt, iso(now));
        assert.match(dec.warnings.join("\n"), /AKIAORPHAN0000000002 .*interrupted mint.*retired/);
    });

    test("the retired orphan is deactivated after `overlap`, deleted after `retireAfter`, and the next mint gets a fresh name", () => {
        const first = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan] }), {}));
        const deact = decided(planWithGate(input(first.state, now.plus(d("PT24H"))), {}));
        assert.equal(deact.step, "deactivate");
        assert.deepEqual(deact.keys.map((k) => [k.generation, k.status]), [[2, "Inactive"], [1, "Active"]]);
        const del = decided(plan(input(deact.state, now.plus(d("P4D")))));
        assert.equal(del.step, "delete");
        const mint = decided(plan(input({ ...del.state, retired: undefined }, now.plus(d("P4DT1H")))));
        assert.equal(mint.step, "mint");
        assert.deepEqual(mint.keys.map((k) => k.generation), [1, 3]);
    });

    test("a key IAM shows was used reached the program, so the engine holds it: the mint is finished with it", () => {
        const dec = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan] }), { at: iso(T0.plus(d("P7DT1M"))), service: "sts" }));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Active", accessKeyId: s.keys[0].accessKeyId },
            { generation: 2, status: "Active", accessKeyId: orphan.accessKeyId, import: orphan.accessKeyId },
        ]);
        assert.equal(dec.current, 2);
        assert.equal(dec.state.keys[1].accessKeyId, orphan.accessKeyId);
        assert.equal(dec.state.phase, "pushed");
    });

    test("an interrupted first run's key is imported as generation 1 and a first pushable key is minted beside it at once", () => {
        const obs = [{ accessKeyId: "AKIAFIRST", status: "Active", createDate: iso(T0) }];
        for (const lastUse of [{}, { at: iso(T0) }]) {
            const dec = decided(plan(input(undefined, T0.plus(hour), { observed: obs, lastUse })));
            assert.equal(dec.step, "mint");
            assert.deepEqual(dec.keys, [
                { generation: 1, status: "Active", accessKeyId: "AKIAFIRST", import: "AKIAFIRST" },
                { generation: 2, status: "Active" },
            ]);
            assert.equal(dec.current, 2, "targets get the new key in this run");
        }
    });

    test("a second kill that lost the create beside it leaves two keys without state: both are taken over, the newer retired first", () => {
        const older = { accessKeyId: "AKIAFIRST", status: "Active", createDate: iso(T0) };
        const newer = { accessKeyId: "AKIASECOND", status: "Active", createDate: iso(T0.plus(hour)) };
        const i = input(undefined, T0.plus(d("PT2H")), { observed: [newer, older] });
        assert.deepEqual(plan(i), { kind: "needs-last-use", accessKeyId: "AKIAFIRST" });
        const dec = decided(plan({ ...i, lastUse: {} }));
        assert.deepEqual(dec.keys, [
            { generation: 2, status: "Active", accessKeyId: "AKIASECOND", import: "AKIASECOND" },
            { generation: 1, status: "Active", accessKeyId: "AKIAFIRST", import: "AKIAFIRST" },
        ]);
        assert.equal(dec.current, 0, "no key for targets yet (none was ever written): none is declared");
        // Retire the newer, then mint beside the older.
        const deact = decided(planWithGate(input(dec.state, T0.plus(d("PT26H")), { observed: [newer, older] }), {}));
        assert.equal(deact.step, "deactivate");
        const del = decided(plan(input(deact.state, T0.plus(d("P4DT2H")), { observed: [{ ...newer, status: "Inactive" }, older] })));
        assert.equal(del.step, "delete");
        const mint = decided(plan(input({ ...del.state, retired: undefined }, T0.plus(d("P4DT3H")), { observed: [older] })));
        assert.equal(mint.step, "mint");
        assert.deepEqual(mint.keys.map((k) => k.generation), [1, 3]);
        assert.equal(mint.current, 3);
    });

    test("two keys without state, the older one used, still block: it may be a key made by hand that something needs", () => {
        const older = { accessKeyId: "AKIAFIRST", status: "Active", createDate: iso(T0) };
        const newer = { accessKeyId: "AKIASECOND", status: "Active", createDate: iso(T0.plus(hour)) };
        const result = plan(input(undefined, T0.plus(d("PT2H")), { observed: [older, newer], lastUse: { at: iso(T0) } }));
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") assert.match(result.message, /already has keys AKIAFIRST, AKIASECOND but this stack has no rotation state/);
    });

    test("an interrupted revoke whose new key never reached the program retires that key, then mints", () => {
        const revoke = { id: "leak-1", emergency: true, revoke: true };
        const obs = [{ ...observed(s.keys)[0], status: "Inactive" }, orphan];
        let state = s;
        let t = now;
        const steps: string[] = [];
        let iam = obs;
        for (let i = 0; i < 8 && state.lastRequest !== "leak-1"; i++) {
            const dec = decided(planWithGate(input(state, t, { observed: iam, request: revoke }), {}));
            steps.push(dec.step);
            assert.ok(dec.keys.length <= 2);
            const ids = dec.keys.map((k) => k.accessKeyId ?? `AKIANEW${k.generation}`);
            iam = dec.keys.map((k, j) => ({ accessKeyId: ids[j], status: k.status, createDate: iso(t) }));
            state = { ...dec.state, retired: undefined, keys: dec.state.keys.map((k) => (k.accessKeyId ? k : { ...k, accessKeyId: `AKIANEW${k.generation}` })) };
            t = t.plus(d("PT1M"));
        }
        assert.equal(state.lastRequest, "leak-1");
        assert.deepEqual(state.keys.map((k) => [k.accessKeyId, k.status]), [["AKIANEW3", "Active"]]);
        // Take the orphan over, switch it off, delete it, mint (old key off beside the new), delete the old key.
        assert.deepEqual(steps, ["none", "deactivate", "delete", "mint", "delete"]);
    });
});

describe("plan: the last-used gate lets go once the consumer stops", () => {
    const s = pushed(2, T0, T0.plus(d("P7D")));
    const due = T0.plus(d("P8D"));
    const use = { at: iso(T0.plus(d("P7DT20H"))), service: "s3", region: "eu-west-1" };

    test("a use after push + settle holds the deactivation while it is recent", () => {
        assert.equal(decided(planWithGate(input(s, due), use)).step, "none");
    });

    test("once the old key has gone unused for overlap − settle, the deactivation goes ahead", () => {
        // Last used at push + 20 h; quiet for 18 h (PT24H − PT6H) at push + 38 h, inside gateTimeout.
        const dec = decided(planWithGate(input(s, T0.plus(d("P7DT38H"))), use));
        assert.equal(dec.step, "deactivate");
        assert.equal(decided(planWithGate(input(s, T0.plus(d("P7DT37H59M"))), use)).step, "none");
    });

    test("the waiting warning says when the gate will let go if nothing uses the key again", () => {
        const dec = decided(planWithGate(input(s, due), use));
        assert.match(dec.warnings[0], new RegExp(`if nothing uses it again, the gate lets go at ${iso(T0.plus(d("P7DT38H")))}, after PT18H unused\\.$`));
    });

    test("with onGateTimeout fail, a consumer that stopped before the timeout does not fail the run", () => {
        const result = planWithGate(input(s, due.plus(d("P1D"))), use);
        assert.equal(decided(result).step, "deactivate");
    });
});

describe("plan: a request that meets an interrupted mint", () => {
    test("snapshots the in-flight key too, and is done only when that key is deleted as well", () => {
        const s = steady(1, T0);
        const now = T0.plus(d("P7DT1H"));
        const orphan = { accessKeyId: "AKIAINFLIGHT00000002", status: "Active", createDate: iso(T0.plus(d("P7D"))) };
        const emergency = { id: "incident-9", emergency: true, revoke: false };
        const dec = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan], request: emergency }), { at: iso(T0.plus(d("P7DT1M"))) }));
        assert.deepEqual(dec.state.request, { id: "incident-9", seenAt: iso(now), keys: [s.keys[0].accessKeyId, orphan.accessKeyId] });
        // Walk the emergency to its end: the in-flight key must be gone when it completes.
        let state = dec.state;
        let t = now;
        for (let i = 0; i < 10 && state.lastRequest !== "incident-9"; i++) {
            t = t.plus(d("PT1M"));
            const next = decided(planWithGate(input({ ...state, retired: undefined }, t, { request: emergency }), {}));
            state = { ...next.state, keys: next.state.keys.map((k) => (k.accessKeyId ? k : { ...k, accessKeyId: `AKIANEW${k.generation}` })) };
        }
        assert.equal(state.lastRequest, "incident-9");
        assert.ok(!state.keys.some((k) => k.accessKeyId === orphan.accessKeyId || k.accessKeyId === s.keys[0].accessKeyId));
    });
});

describe("plan: paused", () => {
    test("a paused set's first run mints nothing", () => {
        const dec = decided(plan(input(undefined, T0, { policy: policy({ paused: true }) })));
        assert.equal(dec.step, "none");
        assert.deepEqual(dec.keys, []);
        assert.equal(dec.minted, undefined);
        assert.equal(dec.paused, true);
    });

    test("unpaused, the set's next run mints its first key", () => {
        const first = decided(plan(input(undefined, T0, { policy: policy({ paused: true }) })));
        const dec = decided(plan(input(first.state, T0.plus(hour))));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [{ generation: 1, status: "Active" }]);
    });
});

describe("plan: one step per run after missed runs", () => {
    test("a late delete that meets a due mint takes the run; the mint follows at the next run", () => {
        // Defaults (every P7D, overlap PT24H, retireAfter P3D); runs stopped after the deactivation
        // and resume past the due mint.
        const s = retiring(2, T0, T0.plus(d("P7D")), T0.plus(d("P8D")));
        const back = T0.plus(d("P14DT5H"));
        const del = decided(plan(input(s, back)));
        assert.equal(del.step, "delete");
        const mint = decided(plan(input({ ...del.state, retired: undefined }, back.plus(hour))));
        assert.equal(mint.step, "mint");
    });

    test("with runs G apart, a key stays in targets up to max(every, overlap + retireAfter + 2G) + G, beyond every + G", () => {
        // Defaults without the gate; the cron runs only every 60 hours. Each remaining step can
        // start a gap late, and the mint can only follow the delete one run later.
        const p = policy({ lastUsedGate: false });
        const gap = d("PT60H");
        let state = undefined as ReturnType<typeof steady> | undefined;
        let iam: { accessKeyId: string; status: string }[] = [];
        let now = T0;
        let held: { id: string; since: typeof T0 } | undefined;
        let longest = 0;
        for (let i = 0; i < 40; i++) {
            const dec = decided(plan(input(state, now, { observed: iam, policy: p })));
            const world = carriedOut(dec);
            ({ iam, state } = world);
            const current = world.current;
            if (held?.id !== current) {
                if (held) longest = Math.max(longest, now.diff(held.since).toMillis());
                held = { id: current, since: now };
            }
            now = now.plus(gap);
        }
        const every = p.every.toMillis();
        const delivered = Math.max(every, p.overlap.plus(p.retireAfter).plus(gap).plus(gap).toMillis()) + gap.toMillis();
        assert.ok(longest > every + gap.toMillis(), `a key stayed ${longest / 3600e3} h; the old claim was every + G`);
        assert.ok(longest <= delivered, `a key stayed ${longest / 3600e3} h, beyond the delivered bound ${delivered / 3600e3} h`);
    });
});

describe("plan: an interrupted adoption run's new key", () => {
    const adopted = { accessKeyId: "AKIAHANDMADE", status: "Active", createDate: iso(T0) };
    const minted = { accessKeyId: "AKIAMINTED", status: "Active", createDate: iso(T0.plus(hour)) };

    test("is imported, never created again, and retired first when it was never used", () => {
        const i = input(undefined, T0.plus(d("PT2H")), { observed: [adopted, minted], adopt: ["AKIAHANDMADE"] });
        assert.deepEqual(plan(i), { kind: "needs-last-use", accessKeyId: "AKIAMINTED" });
        const dec = decided(plan({ ...i, lastUse: {} }));
        assert.deepEqual(dec.keys, [
            { generation: 2, status: "Active", accessKeyId: "AKIAMINTED", import: "AKIAMINTED" },
            { generation: 1, status: "Active", accessKeyId: "AKIAHANDMADE", import: "AKIAHANDMADE" },
        ]);
        assert.equal(dec.current, 0);
    });

    test("is pushed when IAM shows it was used", () => {
        const i = input(undefined, T0.plus(d("PT2H")), { observed: [adopted, minted], adopt: ["AKIAHANDMADE"], lastUse: { at: iso(T0.plus(hour)) } });
        const dec = decided(plan(i));
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Active", accessKeyId: "AKIAHANDMADE", import: "AKIAHANDMADE" },
            { generation: 2, status: "Active", accessKeyId: "AKIAMINTED", import: "AKIAMINTED" },
        ]);
        assert.equal(dec.current, 2);
    });
});

describe("plan: keys the previous run's saved outputs show the engine recorded", () => {
    const s = steady(1, T0);
    const now = T0.plus(d("P7DT1H"));
    const orphan = { accessKeyId: "AKIARECORDED00000002", status: "Active", createDate: iso(T0.plus(d("P7D"))) };

    test("an interrupted mint's key listed in `recorded` is finished with, without asking IAM (a key check that timed out)", () => {
        const dec = decided(plan(input(s, now, { observed: [...observed(s.keys), orphan], recorded: [orphan.accessKeyId] })));
        assert.equal(dec.step, "mint");
        assert.equal(dec.current, 2);
        assert.deepEqual(dec.keys[1], { generation: 2, status: "Active", accessKeyId: orphan.accessKeyId, import: orphan.accessKeyId });
    });

    test("an interrupted first run's recorded key becomes generation 1, and a request seen now must see it deleted", () => {
        const request = { id: "incident-3", emergency: true, revoke: false };
        const dec = decided(plan(input(undefined, T0.plus(hour), { observed: [{ ...orphan, createDate: iso(T0) }], recorded: [orphan.accessKeyId], request })));
        assert.deepEqual(dec.keys, [{ generation: 1, status: "Active", accessKeyId: orphan.accessKeyId, import: orphan.accessKeyId }]);
        assert.equal(dec.current, 1);
        assert.deepEqual(dec.state.request?.keys, [orphan.accessKeyId]);
    });
});

describe("plan: paused with an interrupted first run's key", () => {
    test("takes the key over but mints nothing, even when the key was used", () => {
        const dec = decided(plan(input(undefined, T0.plus(hour), { observed: [{ accessKeyId: "AKIAFIRST", status: "Active" }], lastUse: { at: iso(T0) }, policy: policy({ paused: true }) })));
        assert.equal(dec.step, "none");
        assert.deepEqual(dec.keys, [{ generation: 1, status: "Active", accessKeyId: "AKIAFIRST", import: "AKIAFIRST" }]);
        assert.equal(dec.minted, undefined);
    });
});

describe("plan: a deactivation whose run failed", () => {
    // The bridged AWS provider saves the planned status of a failed UpdateAccessKey, so the
    // engine's record says Inactive while IAM lists the key Active; the failed run saves its
    // previous state with the key in `statusFailed` (rotation/pulumi/credential-set.ts).
    const s = pushed(2, T0, T0.plus(d("P1D")));
    const failedAt = T0.plus(d("P2D"));
    const now = failedAt.plus(hour);
    const [oldKey] = s.keys;

    test("the next run declares the key with IAM's status, so the engine's record is set back, and takes no step", () => {
        const dec = decided(plan(input(s, now, { statusFailed: [oldKey.accessKeyId], lastUse: {} })));
        assert.equal(dec.step, "none");
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.status]), [[1, "Active"], [2, "Active"]]);
        assert.deepEqual(dec.state.keys, s.keys, "the keys' records stay as they were");
        assert.equal(dec.state.changedAt, iso(now), "a second run at this instant takes no step");
        assert.equal(dec.next.step, "deactivate");
        assert.match(dec.warnings.join("\n"), /did not change status in an earlier run/);
    });

    test("the run after it deactivates the key, counting retireAfter from then", () => {
        const first = decided(plan(input(s, now, { statusFailed: [oldKey.accessKeyId], lastUse: {} })));
        const later = now.plus(hour);
        const dec = decided(plan(input(first.state, later, { lastUse: {} })));
        assert.equal(dec.step, "deactivate");
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.status]), [[1, "Inactive"], [2, "Active"]]);
        assert.equal(dec.state.keys[0].deactivatedAt, iso(later));
    });

    test("a revoke whose deactivation failed mints nothing while the record is set back, and targets keep their key", () => {
        const one = steady(1, T0);
        const request = { id: "leak-1", revoke: true, emergency: false } as const;
        const dec = decided(plan(input(one, now, { statusFailed: [one.keys[0].accessKeyId], request })));
        assert.equal(dec.step, "none");
        assert.equal(dec.minted, undefined);
        assert.equal(dec.current, 1, "targets are still declared with the key they hold");
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.status]), [[1, "Active"]]);
        assert.equal(dec.next.step, "mint");
    });

    test("a key IAM already shows with the decided status needs no set-back", () => {
        const dec = decided(plan(input(s, now, { statusFailed: [oldKey.accessKeyId], lastUse: {}, observed: observed(s.keys).map((k, i) => (i === 0 ? { ...k, status: "Inactive" } : k)) })));
        assert.notEqual(dec.reason, undefined);
        assert.doesNotMatch(dec.reason, /sets the engine's record back/);
    });
});

describe("plan: two keys and no state after two failed first runs", () => {
    const older = { accessKeyId: "AKIAOLDER00000000001", status: "Active", createDate: iso(T0) };
    const newer = { accessKeyId: "AKIANEWER00000000002", status: "Active", createDate: iso(T0.plus(d("PT90M"))) };
    const now = T0.plus(d("PT3H"));
    const base = { observed: [older, newer], lastUse: { at: iso(T0.plus(d("PT1M"))) } };

    test("without a record of either key, a used older key still blocks (it may be a key made by hand)", () => {
        const result = plan(input(undefined, now, base));
        assert.equal(result.kind, "blocked");
    });

    test("when the first run's key is this program's and the second run's outcome is unknown, targets get the first key again and the second is retired", () => {
        const dec = decided(plan(input(undefined, now, { ...base, unconfirmed: [older.accessKeyId] })));
        assert.equal(dec.step, "mint");
        assert.equal(dec.current, 1, "targets hold generation 1, the older key");
        assert.deepEqual(dec.keys, [
            { generation: 2, status: "Active", accessKeyId: newer.accessKeyId, import: newer.accessKeyId },
            { generation: 1, status: "Active", accessKeyId: older.accessKeyId, import: older.accessKeyId },
        ]);
        assert.ok(dec.state.keys[0].adoptedAt, "the newer key is retired like an old key");
        assert.equal(dec.state.phase, "pushed");
    });

    test("when the second run's key is this program's but its writes were refused, and the first key is unknown, that run's decision is carried out", () => {
        const dec = decided(plan(input(undefined, now, { ...base, unconfirmed: [newer.accessKeyId] })));
        assert.equal(dec.step, "mint");
        assert.equal(dec.current, 2, "targets get the key the engine holds");
        assert.ok(dec.state.keys[0].adoptedAt && dec.state.keys[0].accessKeyId === older.accessKeyId, "the first key is retired");
    });

    test("when the engine recorded the second run's key, that run's mint is finished with it and the first key is retired", () => {
        const dec = decided(plan(input(undefined, now, { ...base, unconfirmed: [older.accessKeyId], recorded: [newer.accessKeyId] })));
        assert.equal(dec.step, "mint");
        assert.equal(dec.current, 2);
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.accessKeyId, k.import]), [
            [1, older.accessKeyId, older.accessKeyId],
            [2, newer.accessKeyId, newer.accessKeyId],
        ]);
        assert.ok(dec.state.keys[0].adoptedAt);
        assert.equal(dec.state.keys[1].pushedAt, iso(now));
    });
});

describe("plan: an unconfirmed key of a revoke", () => {
    // A revoke switched the old key off and minted; a target write of that run (or of the run
    // finishing it) failed, so the key is listed unconfirmed. Rolling targets back would hand them
    // a key that is off: the mint is finished instead, writing every target with the new key.
    const s = steady(1, T0);
    const now = T0.plus(d("PT2H"));
    const fresh = { accessKeyId: "AKIAREVOKED000000002", status: "Active", createDate: iso(T0.plus(hour)) };

    test("is finished, not rolled back to the switched-off key", () => {
        const iam = [...observed(s.keys).map((k) => ({ ...k, status: "Inactive" })), fresh];
        const dec = decided(plan(input(s, now, { observed: iam, unconfirmed: [fresh.accessKeyId] })));
        assert.equal(dec.current, 2, "targets get the new key");
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.status]), [[1, "Inactive"], [2, "Active"]]);
    });

    test("while an unconfirmed key beside an Active old key is still rolled back", () => {
        const iam = [...observed(s.keys), fresh];
        const dec = decided(plan(input(s, now, { observed: iam, unconfirmed: [fresh.accessKeyId] })));
        assert.equal(dec.current, 1, "targets get the old key again");
        assert.equal(dec.state.rewriteTrigger, undefined, "a rollback writes a value the records do not claim: nothing is replaced");
    });

    test("the finishing run replaces the in-place target resources, and later runs keep the trigger", () => {
        // The refused target's record already claims the new key, and there is no other value to
        // write: a new replacement trigger makes the engine write it (delete-first, then create).
        const iam = [...observed(s.keys).map((k) => ({ ...k, status: "Inactive" })), fresh];
        const dec = decided(plan(input(s, now, { observed: iam, unconfirmed: [fresh.accessKeyId] })));
        assert.equal(dec.state.rewriteTrigger, fresh.accessKeyId);
        const later = decided(plan(input(dec.state, now.plus(hour), { observed: iam })));
        assert.equal(later.state.rewriteTrigger, fresh.accessKeyId, "the same trigger: nothing is replaced again");
    });

    test("a revoke finished with a key that is only recorded (its key check failed) replaces nothing", () => {
        const iam = [...observed(s.keys).map((k) => ({ ...k, status: "Inactive" })), fresh];
        const dec = decided(plan(input(s, now, { observed: iam, recorded: [fresh.accessKeyId] })));
        assert.equal(dec.current, 2);
        assert.equal(dec.state.rewriteTrigger, undefined);
    });
});
