/**
 * A mint whose write was refused by a store that saves the planned value on a failed update (the
 * bridged GitHub provider): the next run must not finish the mint with that key (the engine's
 * state of the target already claims it, so nothing would be written), but retire it and declare
 * the targets with the key they held, which is a real difference and so a real write.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { plan } from "../rotation/core/plan";
import { T0, d, decided, input, iso, observed, planWithGate, steady } from "./support/plan-fixtures";

describe("plan: an unconfirmed mint (a target write failed) is retired, not finished", () => {
    const s = steady(1, T0);
    const now = T0.plus(d("P8DT1H"));
    const orphan = { accessKeyId: "AKIAUNCONFIRMED00002", status: "Active", createDate: iso(T0.plus(d("P8D"))) };
    const used = { at: iso(T0.plus(d("P8DT1M"))), service: "sts" };

    test("a used key listed in `unconfirmed` is taken over by id and retired; targets keep key 1", () => {
        const dec = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan], unconfirmed: [orphan.accessKeyId] }), used));
        assert.equal(dec.step, "none");
        assert.equal(dec.minted, undefined);
        assert.equal(dec.current, 1, "targets must be declared with the key GitHub still holds");
        assert.deepEqual(dec.keys, [
            { generation: 2, status: "Active", accessKeyId: orphan.accessKeyId, import: orphan.accessKeyId },
            { generation: 1, status: "Active", accessKeyId: s.keys[0].accessKeyId },
        ]);
        assert.equal(dec.state.phase, "pushed");
        assert.ok(dec.state.keys[0].adoptedAt, "the unconfirmed key is retired like an adopted key");
        assert.match(dec.warnings.join("\n"), /AKIAUNCONFIRMED00002.*did not take it.*retired/);
    });

    test("IAM is not asked about a key listed in `unconfirmed`", () => {
        const r = plan(input(s, now, { observed: [...observed(s.keys), orphan], unconfirmed: [orphan.accessKeyId] }));
        assert.equal(r.kind, "decision");
    });

    test("the retired key goes (deactivate after overlap, delete), then the next mint writes a new key", () => {
        const first = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), orphan], unconfirmed: [orphan.accessKeyId] }), used));
        const deact = decided(planWithGate(input(first.state, now.plus(d("P2D"))), {}));
        assert.equal(deact.step, "deactivate");
        assert.deepEqual(deact.keys.map((k) => [k.generation, k.status]), [[2, "Inactive"], [1, "Active"]]);
        assert.equal(deact.current, 1);
        const del = decided(plan(input(deact.state, now.plus(d("P6D")))));
        assert.equal(del.step, "delete");
        const mint = decided(plan(input({ ...del.state, retired: undefined }, now.plus(d("P6DT1H")))));
        assert.equal(mint.step, "mint");
        assert.deepEqual(mint.keys.map((k) => k.generation), [1, 3]);
    });
});
