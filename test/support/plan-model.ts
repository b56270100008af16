/**
 * A small model of IAM, the engine and one target, to drive the phase machine: it applies a
 * decision the way the engine does (updates and creates in declaration order, adopting a key an
 * interrupted run created under the same name, then the push to targets, then deletes of keys
 * no longer declared) and saves state only when the whole run succeeded. Invariants are asserted
 * after every operation and every run.
 */
import assert from "node:assert/strict";
import { DateTime, Duration } from "luxon";
import { plan, type Decision, type LastUse, type ObservedKey } from "../../rotation/plan";
import type { RotationPolicy, RotationRequest } from "../../rotation/policy";
import type { SetState } from "../../rotation/state";

export const T0 = DateTime.fromISO("2026-01-01T00:00:00Z", { setZone: true });

interface ModelKey {
    id: string;
    status: "Active" | "Inactive";
    created: DateTime;
    deactivated?: DateTime;
}

export interface RunSpec {
    /** Minutes since the previous run (0: a second run at the same instant). */
    gapMinutes: number;
    request?: { id: number; mode: "plain" | "emergency" | "revoke" };
    /** What IAM says of the old key's last use, relative to the push, in minutes (undefined: never used). */
    lastUseAfterPushMinutes?: number;
    /** Crash after this many operations (undefined: the run completes). */
    crashAfter?: number;
}

/** Run a scenario; returns nothing, asserting invariants as it goes. */
export function simulateModel(policy: RotationPolicy, runs: RunSpec[]) {
    const iam = new Map<string, ModelKey>();
    const engine = new Map<number, string>(); // key resources the engine manages: generation -> key id
    let target: string | undefined; // the key id the target holds
    let state: SetState | undefined;
    let now = T0;
    let nextId = 1;
    let lastRun: DateTime | undefined;
    let longestGap = Duration.fromMillis(0);
    const requestIds = new Set<string>();
    let pushedAt: DateTime | undefined; // when the target got its current key

    for (const spec of runs) {
        now = now.plus({ minutes: spec.gapMinutes });
        if (lastRun) longestGap = Duration.fromMillis(Math.max(longestGap.toMillis(), now.diff(lastRun).toMillis()));
        lastRun = now;
        const request: RotationRequest | undefined = spec.request
            ? { id: `r${spec.request.id}-${spec.request.mode}`, emergency: spec.request.mode !== "plain", revoke: spec.request.mode === "revoke" }
            : undefined;
        if (request) requestIds.add(request.id);
        const observedKeys: ObservedKey[] = [...iam.values()].map((k) => ({ accessKeyId: k.id, status: k.status, createDate: k.created.toISO()! }));
        const input = { set: "s", user: "u", state, observed: observedKeys, policy, request, now };
        let result = plan(input);
        let gateAnswer: LastUse = {};
        if (result.kind === "needs-last-use") {
            assert.ok(policy.lastUsedGate, "the gate asked IAM although it is switched off");
            const current = state!.keys[1];
            const lastUse: LastUse =
                spec.lastUseAfterPushMinutes === undefined ? {} : { at: DateTime.fromISO(current.pushedAt!).plus({ minutes: spec.lastUseAfterPushMinutes }).toISO()!, service: "s3" };
            gateAnswer = lastUse;
            result = plan({ ...input, lastUse });
        }
        if (process.env.DEBUG_MODEL) console.log(now.toISO(), request?.id, state?.phase, JSON.stringify(state?.request), state?.lastRequest, "->", result.kind, result.kind === "decision" ? `${result.decision.step} (${result.decision.reason})` : "");
        if (result.kind === "blocked") {
            // The only legitimate block in this model (no one else touches IAM) is the gate's.
            assert.match(result.message, /onGateTimeout is "fail"/, `unexpected block: ${result.message}`);
            continue;
        }
        assert.equal(result.kind, "decision");
        const decision: Decision = result.decision;

        // Idempotence (I6): planning again at the same instant from the outcome changes nothing.
        const ops = operations(decision, engine);
        const crashAt = spec.crashAfter !== undefined && spec.crashAfter < ops.length ? spec.crashAfter : undefined;
        let mintedId: string | undefined;
        let applied = 0;
        for (const op of ops) {
            if (crashAt !== undefined && applied === crashAt) break;
            applied++;
            switch (op.kind) {
                case "update": {
                    const k = iam.get(op.id)!;
                    assert.ok(k, `declared key ${op.id} is not in IAM`);
                    if (k.status === "Active" && op.status === "Inactive") {
                        // I4: deactivate only after the target holds a newer key (revoke excepted).
                        if (decision.step !== "revoke") assert.notEqual(target, op.id, "deactivated the key the target still holds");
                        // I9: never the last Active key (revoke excepted).
                        const active = [...iam.values()].filter((x) => x.status === "Active");
                        if (decision.step !== "revoke") assert.ok(active.length >= 2, "deactivated the last Active key");
                        k.deactivated = now;
                    }
                    k.status = op.status;
                    break;
                }
                case "create": {
                    // The engine adopts a key an interrupted run created under the same name.
                    const existing = engine.get(op.generation);
                    if (existing && iam.has(existing)) {
                        mintedId = existing;
                        break;
                    }
                    // I1: AWS refuses a third key; the plan must never ask for one.
                    assert.ok(iam.size < 2, `minted a third key (IAM has ${iam.size})`);
                    mintedId = `AKIA${String(nextId++).padStart(16, "0")}`;
                    iam.set(mintedId, { id: mintedId, status: "Active", created: now });
                    engine.set(op.generation, mintedId);
                    break;
                }
                case "push": {
                    const id = decision.keys.find((k) => k.generation === decision.current)!.accessKeyId ?? mintedId!;
                    if (id !== target) pushedAt = now;
                    target = id;
                    break;
                }
                case "delete": {
                    const k = iam.get(op.id)!;
                    assert.equal(k.status, "Inactive", "deleted an Active key");
                    assert.notEqual(target, op.id, "deleted the key the target holds");
                    const emergency = request?.emergency === true;
                    if (!emergency) assert.ok(now >= k.deactivated!.plus(policy.retireAfter), "deleted a key before retireAfter");
                    iam.delete(op.id);
                    engine.delete(op.generation);
                    break;
                }
            }
            // I1 and I2 after every operation.
            assert.ok(iam.size <= 2, "more than two keys");
            if (target && decision.step !== "revoke") assert.equal(iam.get(target)?.status, "Active", "the target holds a key that is not Active");
        }
        if (crashAt !== undefined) continue; // outputs are not saved: the next run must recover

        const keys = decision.state.keys.map((k) => (k.generation === decision.minted ? { ...k, accessKeyId: mintedId! } : k));
        state = { ...decision.state, keys };
        // I3: after a successful run, the target holds the newest Active key.
        const newestActive = [...iam.values()].filter((k) => k.status === "Active").sort((a, b) => b.created.toMillis() - a.created.toMillis())[0];
        assert.equal(target, newestActive.id, "the target does not hold the newest Active key");
        assert.ok(state.keys.length <= 2 && state.keys.length >= 1);

        const again = plan({ set: "s", user: "u", state, observed: [...iam.values()].map((k) => ({ accessKeyId: k.id, status: k.status, createDate: k.created.toISO()! })), policy, request, now, lastUse: gateAnswer });
        assert.equal(again.kind, "decision");
        if (again.kind === "decision") assert.equal(again.decision.step, "none", `a second run at the same instant took a step: ${again.decision.step} (${again.decision.reason})`);

        // I5 freshness, with no gate holding things up: the key in the target is never older than
        // every + overlap + retireAfter (the rotation may need to finish first) + the longest gap + slack.
        if (!policy.lastUsedGate && pushedAt) {
            const bound = policy.every.plus(policy.overlap).plus(policy.retireAfter).plus(longestGap).plus(longestGap).plus(longestGap).plus({ minutes: 1 });
            assert.ok(now.diff(pushedAt).toMillis() <= bound.toMillis() + 3 * 24 * 3600e3, "a key stayed in the target far too long");
        }
    }
}

type Op =
    | { kind: "update"; id: string; status: "Active" | "Inactive" }
    | { kind: "create"; generation: number }
    | { kind: "push" }
    | { kind: "delete"; id: string; generation: number };

/** The engine's order: declared keys (update or create) in order, the push, then deletes of undeclared keys. */
function operations(decision: Decision, engine: Map<number, string>): Op[] {
    const ops: Op[] = [];
    for (const k of decision.keys) ops.push(k.accessKeyId ? { kind: "update", id: k.accessKeyId, status: k.status } : { kind: "create", generation: k.generation });
    ops.push({ kind: "push" });
    const declared = new Set(decision.keys.map((k) => k.generation));
    for (const [generation, id] of engine) if (!declared.has(generation)) ops.push({ kind: "delete", id, generation });
    return ops;
}

