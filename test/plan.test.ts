import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { plan } from "../rotation/core/plan";
import { T0, d, decided, input, iso, observed, planWithGate, policy, pushed, retiring, steady } from "./support/plan-fixtures";

const day = d("P1D");
const hour = d("PT1H");

describe("plan: the five steps on schedule", () => {
    test("the first run mints generation 1 and lands in steady", () => {
        const dec = decided(plan(input(undefined, T0)));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [{ generation: 1, status: "Active" }]);
        assert.equal(dec.current, 1);
        assert.equal(dec.minted, 1);
        assert.equal(dec.state.phase, "steady");
        assert.deepEqual(dec.next, { step: "mint", dueAt: iso(T0.plus(d("P7D"))), why: `the generation-1 key is due for rotation at ${iso(T0.plus(d("P7D")))}` });
    });

    test("steady before `every` takes no step and says when the mint is due", () => {
        const s = steady(1, T0);
        const dec = decided(plan(input(s, T0.plus(d("P6DT23H")))));
        assert.equal(dec.step, "none");
        assert.deepEqual(dec.keys, [{ generation: 1, status: "Active", accessKeyId: s.keys[0].accessKeyId }]);
        assert.equal(dec.state, s);
        assert.equal(dec.next.dueAt, iso(T0.plus(d("P7D"))));
    });

    test("steady at `every` mints the next generation beside the old key", () => {
        const s = steady(3, T0);
        const now = T0.plus(d("P7D"));
        const dec = decided(plan(input(s, now)));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [
            { generation: 3, status: "Active", accessKeyId: s.keys[0].accessKeyId },
            { generation: 4, status: "Active" },
        ]);
        assert.equal(dec.current, 4);
        assert.equal(dec.state.phase, "pushed");
        assert.equal(dec.state.keys[1].pushedAt, iso(now));
        assert.deepEqual(dec.next, { step: "deactivate", dueAt: iso(now.plus(d("PT24H"))), why: `key ${s.keys[0].accessKeyId} stays active until ${iso(now.plus(d("PT24H")))} for jobs that read it before the push` });
    });

    test("pushed keeps the old key active until `overlap` has passed", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const dec = decided(plan(input(s, T0.plus(d("P7DT23H59M")))));
        assert.equal(dec.step, "none");
        assert.equal(dec.current, 2);
        assert.deepEqual(dec.keys.map((k) => k.status), ["Active", "Active"]);
    });

    test("after `overlap` the gate asks for the old key's last use, and only then", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const result = plan(input(s, T0.plus(d("P8D"))));
        assert.deepEqual(result, { kind: "needs-last-use", accessKeyId: s.keys[0].accessKeyId });
        assert.equal(plan(input(s, T0.plus(d("P7DT1H")))).kind, "decision");
    });

    test("an old key last used before push + settle is deactivated", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const dec = decided(planWithGate(input(s, T0.plus(d("P8D"))), { at: iso(T0.plus(d("P7DT5H"))), service: "s3", region: "eu-west-1" }));
        assert.equal(dec.step, "deactivate");
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Inactive", accessKeyId: s.keys[0].accessKeyId },
            { generation: 2, status: "Active", accessKeyId: s.keys[1].accessKeyId },
        ]);
        assert.equal(dec.state.phase, "retiring");
        assert.equal(dec.state.keys[0].deactivatedAt, iso(T0.plus(d("P8D"))));
        assert.equal(dec.next.dueAt, iso(T0.plus(d("P11D"))));
    });

    test("retiring deletes the inactive key after `retireAfter`, not before", () => {
        const s = retiring(2, T0, T0.plus(d("P7D")), T0.plus(d("P8D")));
        assert.equal(decided(plan(input(s, T0.plus(d("P10DT23H"))))).step, "none");
        const dec = decided(plan(input(s, T0.plus(d("P11D")))));
        assert.equal(dec.step, "delete");
        assert.deepEqual(dec.keys, [{ generation: 2, status: "Active", accessKeyId: s.keys[1].accessKeyId }]);
        assert.equal(dec.state.phase, "steady");
        assert.deepEqual(dec.state.retired, [s.keys[0].accessKeyId]);
        assert.equal(dec.next.step, "mint");
        assert.equal(dec.next.dueAt, iso(T0.plus(d("P14D"))));
    });

    test("a second run at the same instant takes no step", () => {
        const s = steady(1, T0);
        const now = T0.plus(d("P7D"));
        const first = decided(plan(input(s, now)));
        const state = { ...first.state, keys: first.state.keys.map((k) => (k.accessKeyId ? k : { ...k, accessKeyId: "AKIANEWNEWNEWNEWNEW2" })) };
        const again = decided(plan(input(state, now)));
        assert.equal(again.step, "none");
        assert.equal(again.state, state);
    });

    test("a clock that went backwards takes no step", () => {
        const s = { ...steady(1, T0), changedAt: iso(T0.plus(d("P8D"))) };
        assert.equal(decided(plan(input(s, T0.plus(d("P7DT12H"))))).step, "none");
    });

    test("paused takes no step even when one is due, and says so", () => {
        const dec = decided(plan(input(steady(1, T0), T0.plus(d("P30D")), { policy: policy({ paused: true }) })));
        assert.equal(dec.step, "none");
        assert.equal(dec.paused, true);
        assert.deepEqual(dec.next, { step: "none", why: "paused: no step is taken until `paused` is false" });
    });
});

describe("plan: the last-used gate", () => {
    const s = pushed(2, T0, T0.plus(d("P7D")));
    const due = T0.plus(d("P8D"));
    const recentUse = { at: iso(T0.plus(d("P7DT20H"))), service: "sts", region: "us-east-1" };

    test("use after push + settle holds the deactivation and warns with key, time, service and region", () => {
        const dec = decided(planWithGate(input(s, due), recentUse));
        assert.equal(dec.step, "none");
        assert.equal(dec.keys[0].status, "Active");
        assert.equal(dec.warnings.length, 1);
        assert.match(dec.warnings[0], new RegExp(`key ${s.keys[0].accessKeyId} \\(generation 1\\) of set "deploy" was last used at ${recentUse.at} \\(sts in us-east-1\\)`));
        assert.match(dec.warnings[0], new RegExp(`until .*${iso(due.plus(day))} \\(gateTimeout\\)`));
    });

    // Still in use an hour before the timeout: the gate has not seen `overlap − settle` of silence.
    const stillInUse = { ...recentUse, at: iso(due.plus(d("PT23H"))) };

    test("at the gate timeout with onGateTimeout fail, the run is blocked with what to do", () => {
        const result = planWithGate(input(s, due.plus(day)), stillInUse);
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") {
            assert.match(result.message, /onGateTimeout is "fail"/);
            assert.match(result.message, /CloudTrail/);
        }
    });

    test("at the gate timeout with onGateTimeout proceed, the key is deactivated with a warning", () => {
        const dec = decided(planWithGate(input(s, due.plus(day), { policy: policy({ onGateTimeout: "proceed" }) }), stillInUse));
        assert.equal(dec.step, "deactivate");
        assert.match(dec.warnings[0], /deactivating it anyway \(onGateTimeout: proceed\)/);
    });

    test("with the gate switched off, IAM is never asked", () => {
        const result = plan(input(s, due, { policy: policy({ lastUsedGate: false }) }));
        assert.equal(decided(result).step, "deactivate");
    });

    test("a never-used old key passes", () => {
        assert.equal(decided(planWithGate(input(s, due), {})).step, "deactivate");
    });
});

describe("plan: requests, emergencies and revocation", () => {
    const request = { id: "incident-1", emergency: false, revoke: false };
    const emergency = { id: "incident-2", emergency: true, revoke: false };
    const revoke = { id: "leak-1", emergency: true, revoke: true };

    test("a new request mints at once, ignoring `every`, and remembers the keys it must see deleted", () => {
        const s = steady(1, T0);
        const dec = decided(plan(input(s, T0.plus(hour), { request })));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.state.request, { id: "incident-1", seenAt: iso(T0.plus(hour)), keys: [s.keys[0].accessKeyId] });
    });

    test("a plain request still waits for `overlap` and the gate", () => {
        const s = { ...pushed(2, T0, T0.plus(hour)), request: { id: "incident-1", seenAt: iso(T0.plus(hour)), keys: ["AKIAGEN0000000000001"] } };
        assert.equal(decided(plan(input(s, T0.plus(d("PT2H")), { request }))).step, "none");
        assert.equal(plan(input(s, T0.plus(d("PT25H")), { request })).kind, "needs-last-use");
    });

    test("the request completes when its last key is deleted, and the same id does not rotate again", () => {
        const s = { ...retiring(2, T0, T0.plus(hour), T0.plus(d("PT25H"))), request: { id: "incident-1", seenAt: iso(T0.plus(hour)), keys: ["AKIAGEN0000000000001"] } };
        const dec = decided(plan(input(s, T0.plus(d("P5D")), { request })));
        assert.equal(dec.step, "delete");
        assert.equal(dec.state.request, undefined);
        assert.equal(dec.state.lastRequest, "incident-1");
        const after = { ...dec.state, retired: undefined };
        const later = decided(plan(input(after, T0.plus(d("P6D")), { request })));
        assert.equal(later.step, "none");
    });

    test("an emergency deactivates at the next run, without the gate, and deletes at the one after", () => {
        const s = { ...pushed(2, T0, T0.plus(hour)), request: { id: "incident-2", seenAt: iso(T0.plus(hour)), keys: ["AKIAGEN0000000000001"] } };
        const dec = decided(plan(input(s, T0.plus(d("PT1H1M")), { request: emergency })));
        assert.equal(dec.step, "deactivate");
        const next = decided(plan(input(dec.state, T0.plus(d("PT1H2M")), { request: emergency })));
        assert.equal(next.step, "delete");
    });

    test("an emergency mid-rotation fast-forwards: finish the old key first, never a third key", () => {
        let s = pushed(2, T0, T0.plus(hour));
        const steps: string[] = [];
        let now = T0.plus(d("PT2H"));
        for (let i = 0; i < 6; i++) {
            const dec = decided(plan(input(s, now, { request: emergency })));
            steps.push(dec.step);
            assert.ok(dec.keys.length <= 2);
            s = { ...dec.state, keys: dec.state.keys.map((k) => (k.accessKeyId ? k : { ...k, accessKeyId: `AKIANEW${String(k.generation).padStart(13, "0")}` })) };
            if (dec.step === "delete") s = { ...s, retired: undefined };
            now = now.plus(d("PT1M"));
        }
        assert.deepEqual(steps, ["deactivate", "delete", "mint", "deactivate", "delete", "none"]);
        assert.equal(s.lastRequest, "incident-2");
    });

    test("revoke deactivates the old key in the mint run, registered before the new key", () => {
        const s = steady(1, T0);
        const dec = decided(plan(input(s, T0.plus(hour), { request: revoke })));
        assert.equal(dec.step, "revoke");
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Inactive", accessKeyId: s.keys[0].accessKeyId },
            { generation: 2, status: "Active" },
        ]);
        assert.equal(dec.state.phase, "retiring");
        assert.equal(dec.current, 2);
    });

    test("a request for the first run of a set is answered by the first key", () => {
        const dec = decided(plan(input(undefined, T0, { request })));
        assert.equal(dec.state.lastRequest, "incident-1");
        assert.equal(dec.state.request, undefined);
    });
});

describe("plan: cross-check with IAM", () => {
    test("an unknown key blocks the mint, naming it and the command to delete it", () => {
        const s = steady(1, T0);
        const stranger = { accessKeyId: "AKIASTRANGER00000001", status: "Active", createDate: iso(T0.minus(day)) };
        const result = plan(input(s, T0.plus(d("P7D")), { observed: [...observed(s.keys), stranger] }));
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") {
            assert.match(result.message, /IAM shows key AKIASTRANGER00000001 \(Active, created .*\) that ci-key-rotation does not manage/);
            assert.match(result.message, /aws iam delete-access-key --user-name ci-deploy --access-key-id AKIASTRANGER00000001/);
        }
    });

    test("an unknown key blocks even when nothing is due", () => {
        const s = steady(1, T0);
        const stranger = { accessKeyId: "AKIASTRANGER00000001", status: "Active" };
        assert.equal(plan(input(s, T0.plus(day), { observed: [...observed(s.keys), stranger] })).kind, "blocked");
    });

    test("a key missing from IAM blocks, naming forgetKeys as the way out", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const result = plan(input(s, T0.plus(d("P7DT1H")), { observed: observed([s.keys[1]]) }));
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") assert.match(result.message, new RegExp(`key ${s.keys[0].accessKeyId} \\(generation 1, Active\\) is in the rotation state but IAM no longer lists it.*forgetKeys`));
    });

    test("forgetting every key of a set mints a fresh one at once", () => {
        const s = steady(4, T0);
        const dec = decided(plan(input(s, T0.plus(hour), { observed: [], forget: [s.keys[0].accessKeyId] })));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [{ generation: 5, status: "Active" }]);
        assert.match(dec.warnings[0], /forgetting key/);
    });

    test("a retired key switched back on outside the program blocks with both ways out", () => {
        const s = retiring(2, T0, T0.plus(d("P7D")), T0.plus(d("P8D")));
        const result = plan(input(s, T0.plus(d("P9D")), { observed: observed([{ ...s.keys[0], status: "Active" }, s.keys[1]]) }));
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") assert.match(result.message, /was reactivated outside ci-key-rotation.*paused: true.*--status Inactive/s);
    });

    test("the only key switched off (by hand or an interrupted revoke) is replaced at once", () => {
        const s = steady(1, T0);
        const dec = decided(plan(input(s, T0.plus(day), { observed: observed([{ ...s.keys[0], status: "Inactive" }]) })));
        assert.equal(dec.step, "revoke");
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Inactive", accessKeyId: s.keys[0].accessKeyId },
            { generation: 2, status: "Active" },
        ]);
        assert.match(dec.warnings[0], /the only key, is Inactive in IAM; minting a replacement now/);
    });

    test("the newer key of a rotation switched off outside the program blocks", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const result = plan(input(s, T0.plus(d("P7DT2H")), { observed: observed([s.keys[0], { ...s.keys[1], status: "Inactive" }]) }));
        assert.equal(result.kind, "blocked");
        if (result.kind === "blocked") assert.match(result.message, /was set Inactive outside ci-key-rotation while targets may still hold it/);
    });

    test("IAM's Expired status counts as inactive", () => {
        const s = retiring(2, T0, T0.plus(d("P7D")), T0.plus(d("P8D")));
        const obs = observed(s.keys).map((k, i) => (i === 0 ? { ...k, status: "Expired" } : k));
        assert.equal(decided(plan(input(s, T0.plus(d("P9D")), { observed: obs }))).step, "none");
    });

    test("keys without state are refused when there are two of them", () => {
        const result = plan(input(undefined, T0, { observed: [{ accessKeyId: "AKIAA", status: "Active" }, { accessKeyId: "AKIAB", status: "Active" }] }));
        assert.equal(result.kind, "blocked");
    });
});

describe("plan: finishing what an interrupted run started", () => {
    // IAM shows the interrupted mint's key was used: its secret reached the program (see plan-semantics.test.ts).
    const used = { at: iso(T0.plus(d("P7DT1M"))), service: "sts" };

    test("the key of an interrupted mint is taken over by id under the mint's own name", () => {
        const s = steady(1, T0);
        const now = T0.plus(d("P7DT1H"));
        const leftover = { accessKeyId: "AKIALEFTOVER00000002", status: "Active", createDate: iso(T0.plus(d("P7D"))) };
        const dec = decided(planWithGate(input(s, now, { observed: [...observed(s.keys), leftover] }), used));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys.map((k) => [k.generation, k.import]), [[1, undefined], [2, "AKIALEFTOVER00000002"]]);
        assert.match(dec.warnings[0], /AKIALEFTOVER00000002 is from an interrupted mint/);
    });

    test("an interrupted first run's key is taken over as generation 1 beside a new first key", () => {
        const dec = decided(planWithGate(input(undefined, T0.plus(hour), { observed: [{ accessKeyId: "AKIAFIRST", status: "Active" }] }), used));
        assert.equal(dec.step, "mint");
        assert.deepEqual(dec.keys, [
            { generation: 1, status: "Active", accessKeyId: "AKIAFIRST", import: "AKIAFIRST" },
            { generation: 2, status: "Active" },
        ]);
    });

    test("an interrupted deactivation is recorded without asking the gate again", () => {
        const s = pushed(2, T0, T0.plus(d("P7D")));
        const obs = observed([{ ...s.keys[0], status: "Inactive" }, s.keys[1]]);
        const dec = decided(plan(input(s, T0.plus(d("P8D")), { observed: obs })));
        assert.equal(dec.step, "deactivate");
        assert.equal(dec.state.phase, "retiring");
    });

    test("an interrupted delete is recorded as done", () => {
        const s = retiring(2, T0, T0.plus(d("P7D")), T0.plus(d("P8D")));
        const dec = decided(plan(input(s, T0.plus(d("P11D")), { observed: observed([s.keys[1]]) })));
        assert.equal(dec.step, "delete");
        assert.deepEqual(dec.keys, [{ generation: 2, status: "Active", accessKeyId: s.keys[1].accessKeyId }]);
    });

    test("a key the previous run removed but IAM still lists makes the run wait, not mint a third", () => {
        const s = { ...steady(2, T0), retired: ["AKIAGEN0000000000001"] };
        const obs = [...observed(s.keys), { accessKeyId: "AKIAGEN0000000000001", status: "Inactive" }];
        const dec = decided(plan(input(s, T0.plus(d("P30D")), { observed: obs })));
        assert.equal(dec.step, "none");
        assert.match(dec.reason, /still deleting/);
        assert.equal(dec.keys.length, 1);
    });

    test("waiting for the engine to delete a retired key counts as this instant's step", () => {
        const s = { ...steady(2, T0), retired: ["AKIAGEN0000000000001"] };
        const now = T0.plus(d("P30D"));
        const first = decided(plan(input(s, now, { observed: [...observed(s.keys), { accessKeyId: "AKIAGEN0000000000001", status: "Inactive" }] })));
        assert.equal(first.step, "none");
        assert.equal(first.state.changedAt, iso(now));
        // The engine deleted it; a second run at the same instant still takes no step.
        const again = decided(plan(input(first.state, now)));
        assert.equal(again.step, "none");
        assert.equal(decided(plan(input(first.state, now.plus(d("PT1M"))))).step, "mint");
    });

    test("a finished interrupted mint keeps IAM's creation date, so the next rotation is not late", () => {
        const s = steady(1, T0);
        const created = T0.plus(d("P7D"));
        const leftover = { accessKeyId: "AKIALEFTOVER00000002", status: "Active", createDate: iso(created) };
        const dec = decided(planWithGate(input(s, T0.plus(d("P7DT5H")), { observed: [...observed(s.keys), leftover] }), used));
        assert.equal(dec.state.keys[1].createdAt, iso(created));
        assert.equal(dec.state.keys[1].pushedAt, iso(T0.plus(d("P7DT5H"))));
    });

    test("an interrupted first run's key keeps IAM's creation date", () => {
        const dec = decided(planWithGate(input(undefined, T0.plus(hour), { observed: [{ accessKeyId: "AKIAFIRST", status: "Active", createDate: iso(T0) }] }), used));
        assert.equal(dec.state.keys[0].createdAt, iso(T0));
    });

    test("a key created before the set's last step is never taken for an interrupted mint", () => {
        const s = { ...steady(1, T0), changedAt: iso(T0.plus(d("P2D"))) };
        const stray = { accessKeyId: "AKIASTRAY", status: "Active", createDate: iso(T0.plus(day)) };
        assert.equal(plan(input(s, T0.plus(d("P8D")), { observed: [...observed(s.keys), stray] })).kind, "blocked");
    });

    test("without a creation date, only a due mint explains an unknown key", () => {
        const s = steady(1, T0);
        const stray = { accessKeyId: "AKIASTRAY", status: "Active" };
        assert.equal(plan(input(s, T0.plus(d("P2D")), { observed: [...observed(s.keys), stray] })).kind, "blocked");
        assert.equal(decided(planWithGate(input(s, T0.plus(d("P7D")), { observed: [...observed(s.keys), stray] }), used)).step, "mint");
    });

    test("an interrupted mint is finished even when its request was withdrawn meanwhile", () => {
        const s = steady(1, T0);
        const leftover = { accessKeyId: "AKIALEFTOVER00000002", status: "Active", createDate: iso(T0.plus(d("P1DT1M"))) };
        const dec = decided(planWithGate(input(s, T0.plus(d("P1DT2H")), { observed: [...observed(s.keys), leftover] }), used));
        assert.equal(dec.step, "mint");
    });
});
