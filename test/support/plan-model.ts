/**
 * A small model of IAM, the engine and one target, to drive the phase machine. It applies a
 * decision the way the engine does and saves state only when the whole run succeeded.
 * Invariants are asserted after every operation and every run.
 *
 * What it models of the engine (each checked in pulumi/pulumi):
 * - the engine holds a key resource per generation (`<set>-key-<n>`); a declared key it holds is
 *   updated in place, one it does not hold is created, one declared with `import` is taken over
 *   (a no-op when the engine already holds that id: pkg/resource/deploy/step_generator.go,
 *   `isImport`); an imported key's secret is unknown (IAM never returns it again);
 * - a crash stops the run after some operations; a kill during a key's create loses the pending
 *   create (the key exists in IAM, not in the engine: pkg/backend/snapshot.go keeps a pending
 *   CREATE aside, and deployment.go `buildResourceMaps` builds old resources from checkpointed
 *   ones only), so declaring that name again without `import` creates another key;
 * - keys no longer declared are deleted after the program, when the run gets that far.
 * And of IAM: two keys per user (a third create is LimitExceeded), and the last use of each key,
 * set by the key check (STS with the new key) and by a straggling consumer of the previous key.
 */
import assert from "node:assert/strict";
import { DateTime, Duration } from "luxon";
import { plan, type Decision, type LastUse, type ObservedKey, type PlanInput, type PlanResult } from "../../rotation/core/plan";
import type { RotationPolicy, RotationRequest } from "../../rotation/core/policy";
import type { SetState } from "../../rotation/core/state";

export const T0 = DateTime.fromISO("2026-01-01T00:00:00Z", { setZone: true });

interface ModelKey {
    id: string;
    status: "Active" | "Inactive";
    created: DateTime;
    deactivated?: DateTime;
    lastUsed?: DateTime;
}

export interface RunSpec {
    /** Minutes since the previous run (0: a second run at the same instant). */
    gapMinutes: number;
    request?: { id: number; mode: "plain" | "emergency" | "revoke" };
    /**
     * A consumer that was not switched over uses the key the target held before its current one,
     * this many minutes before the run (while that key is Active). Absent: no such use this time.
     */
    straggleMinutesAgo?: number;
    /** Crash after this many operations (undefined: the run completes). */
    crashAfter?: number;
    /** With `crashAfter`: if the next operation is a key's create, the kill lands during it. */
    loseCreate?: boolean;
    /**
     * With `crashAfter` (and not a kill during a create): the run failed with an error rather
     * than being killed, so the engine saved the outputs the program had registered: the ids of
     * keys it created (CLI >= 3.112, pulumi/pulumi#15754), read back as the plan's `recorded`.
     */
    failed?: boolean;
}

/** Run a scenario; returns nothing, asserting invariants as it goes. */
export function simulateModel(policy: RotationPolicy, runs: RunSpec[]) {
    const iam = new Map<string, ModelKey>();
    const engine = new Map<number, string>(); // key resources the engine holds: generation -> key id
    const secretKnown = new Set<string>(); // keys whose secret the engine holds (it created them)
    let target: string | undefined; // the key id the target holds
    let previousTarget: string | undefined; // the key it held before
    let revokedHeld = false; // the target holds a key a revoke switched off (I2's one exception)
    let state: SetState | undefined;
    let now = T0;
    let nextId = 1;
    let lastRun: DateTime | undefined;
    let longestGap = Duration.fromMillis(0);
    let pushedAt: DateTime | undefined; // when the target got its current key
    let faultSincePush = false;
    const firstSeen = new Map<string, Set<string>>(); // request id -> keys IAM listed when it was first seen
    let recorded: string[] = []; // key ids a failed run's saved outputs show the engine created

    const observe = (): ObservedKey[] => [...iam.values()].map((k) => ({ accessKeyId: k.id, status: k.status, createDate: k.created.toISO()! }));
    /** Plan, answering a last-use question from the model's IAM, as the program does. */
    const planRun = (input: PlanInput): { result: PlanResult; asked?: string } => {
        const first = plan(input);
        if (first.kind !== "needs-last-use") return { result: first };
        const k = iam.get(first.accessKeyId);
        assert.ok(k, `the plan asked for the last use of ${first.accessKeyId}, which IAM does not list`);
        const lastUse: LastUse = k.lastUsed ? { at: k.lastUsed.toISO()!, service: "sts" } : {};
        const second = plan({ ...input, lastUse });
        assert.notEqual(second.kind, "needs-last-use", "the plan asked twice for a last use");
        return { result: second, asked: first.accessKeyId };
    };

    for (const spec of runs) {
        now = now.plus({ minutes: spec.gapMinutes });
        if (lastRun) longestGap = Duration.fromMillis(Math.max(longestGap.toMillis(), now.diff(lastRun).toMillis()));
        lastRun = now;
        if (spec.straggleMinutesAgo !== undefined && previousTarget) {
            const k = iam.get(previousTarget);
            const usedAt = DateTime.max(now.minus({ minutes: Math.min(spec.straggleMinutesAgo, spec.gapMinutes) }), k?.created ?? now);
            // IAM records a use only of an Active key, and the last use never moves back.
            if (k && k.status === "Active" && (!k.lastUsed || usedAt > k.lastUsed)) k.lastUsed = usedAt;
        }
        const request: RotationRequest | undefined = spec.request
            ? { id: `r${spec.request.id}-${spec.request.mode}`, emergency: spec.request.mode !== "plain", revoke: spec.request.mode === "revoke" }
            : undefined;
        if (request && !firstSeen.has(request.id) && state?.lastRequest !== request.id) firstSeen.set(request.id, new Set(iam.keys()));
        const input: PlanInput = { set: "s", user: "u", state, observed: observe(), policy, request, now, recorded };
        const { result } = planRun(input);
        if (process.env.DEBUG_MODEL) console.log(now.toISO(), request?.id, state?.phase, JSON.stringify(state?.request), state?.lastRequest, "->", result.kind, result.kind === "decision" ? `${result.decision.step} (${result.decision.reason})` : "");
        if (result.kind === "blocked") {
            // The only legitimate block in this model (no one else touches IAM) is the gate's, and
            // only while the old key's last use is recent: once a consumer stopped, it lets go.
            assert.match(result.message, /onGateTimeout is "fail"/, `unexpected block: ${result.message}`);
            const old = iam.get(state!.keys[0].accessKeyId)!;
            const quiet = policy.overlap.minus(policy.settle);
            assert.ok(old.lastUsed && old.lastUsed.plus(quiet) > now, `the gate failed the run although key ${old.id} was last used at ${old.lastUsed?.toISO()}, more than ${quiet.toISO()} ago`);
            continue;
        }
        assert.equal(result.kind, "decision");
        const decision: Decision = result.decision;

        const ops = operations(decision, engine);
        const crashAt = spec.crashAfter !== undefined && spec.crashAfter < ops.length ? spec.crashAfter : undefined;
        let mintedId: string | undefined;
        let applied = 0;
        for (const op of ops) {
            if (crashAt !== undefined && applied === crashAt) {
                if (spec.loseCreate && op.kind === "create") {
                    // Killed while the provider created the key: IAM has it, the engine never recorded it.
                    assert.ok(iam.size < 2, `minted a third key (IAM has ${iam.size})`);
                    const id = `AKIA${String(nextId++).padStart(16, "0")}`;
                    iam.set(id, { id, status: "Active", created: now });
                }
                break;
            }
            applied++;
            switch (op.kind) {
                case "update":
                case "import": {
                    const k = iam.get(op.id);
                    assert.ok(k, `declared key ${op.id} is not in IAM`);
                    const held = engine.get(op.generation);
                    if (op.kind === "update") {
                        // Without `import`, a name the engine does not hold is created anew.
                        assert.equal(held, op.id, `key ${op.id} is declared as generation ${op.generation} without import, but the engine holds ${held ?? "nothing"} there: it would create another key`);
                    } else if (held !== op.id) {
                        assert.equal(held, undefined, `imported ${op.id} as generation ${op.generation}, which the engine holds as ${held}`);
                        // An import must match the key as it is, or the engine refuses it.
                        assert.equal(op.status, k.status, `imported key ${op.id} declared ${op.status}, but it is ${k.status}`);
                        engine.set(op.generation, op.id);
                    }
                    if (k.status === "Active" && op.status === "Inactive") {
                        // I4: deactivate only after the target holds a newer key (revoke excepted).
                        if (decision.step !== "revoke") assert.notEqual(target, op.id, "deactivated the key the target still holds");
                        // I9: never the last Active key (revoke mode excepted: the target already holds a revoked key).
                        const active = [...iam.values()].filter((x) => x.status === "Active");
                        if (decision.step !== "revoke" && !revokedHeld) assert.ok(active.length >= 2, "deactivated the last Active key");
                        if (op.id === target) revokedHeld = true;
                        k.deactivated = now;
                    }
                    k.status = op.status;
                    break;
                }
                case "create": {
                    assert.ok(!policy.paused, "minted a key while the set is paused");
                    const held = engine.get(op.generation);
                    if (held && iam.has(held)) {
                        // The engine holds this name already (a run that failed after creating it).
                        mintedId = held;
                        break;
                    }
                    // I1: AWS refuses a third key; the plan must never ask for one.
                    assert.ok(iam.size < 2, `minted a third key (IAM has ${iam.size})`);
                    mintedId = `AKIA${String(nextId++).padStart(16, "0")}`;
                    iam.set(mintedId, { id: mintedId, status: "Active", created: now });
                    engine.set(op.generation, mintedId);
                    secretKnown.add(mintedId);
                    break;
                }
                case "push": {
                    const id = decision.keys.find((k) => k.generation === decision.current)!.accessKeyId ?? mintedId!;
                    assert.ok(secretKnown.has(id), `pushed key ${id}, whose secret the program does not have`);
                    // The key check authenticates with it before any target is written.
                    const k = iam.get(id)!;
                    if (k.status === "Active") k.lastUsed = now;
                    if (id !== target) {
                        pushedAt = now;
                        previousTarget = target;
                        revokedHeld = false;
                        faultSincePush = false;
                    }
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
            if (target && !revokedHeld) assert.equal(iam.get(target)?.status, "Active", "the target holds a key that is not Active");
        }
        if (crashAt !== undefined) {
            faultSincePush = true;
            // A killed run saves no outputs; one that failed saves those it registered.
            if (spec.failed && !spec.loseCreate && mintedId && engine.has(decision.minted ?? -1)) recorded = [mintedId];
            continue; // the rotation state is not saved: the next run must recover
        }
        recorded = [];

        const keys = decision.state.keys.map((k) => (k.generation === decision.minted ? { ...k, accessKeyId: mintedId! } : k));
        state = { ...decision.state, keys };
        const keyless = !decision.keys.some((k) => k.generation === decision.current);
        // I3: after a successful run, the target holds the newest Active key the program can push: a
        // key taken over by id (an interrupted mint's never-used key) counts as one whose secret is unknown.
        const takenOver = new Set(state.keys.filter((k) => k.adoptedAt).map((k) => k.accessKeyId));
        const newestActive = [...iam.values()]
            .filter((k) => k.status === "Active" && secretKnown.has(k.id) && !takenOver.has(k.id))
            .sort((a, b) => b.created.toMillis() - a.created.toMillis())[0];
        if (!revokedHeld && !keyless) assert.equal(target, newestActive?.id, "the target does not hold the newest Active key");
        assert.ok(state.keys.length <= 2);
        // The state knows every key IAM lists, and nothing else.
        assert.deepEqual(new Set(state.keys.map((k) => k.accessKeyId).concat(state.retired ?? [])), new Set([...iam.keys(), ...(state.retired ?? [])]), "the state and IAM disagree after a successful run");

        // A request is done only when every key IAM listed when it was first seen is gone.
        for (const [id, keysThen] of firstSeen) {
            if (state.lastRequest === id) for (const k of keysThen) assert.ok(!iam.has(k), `request ${id} completed while key ${k}, which existed when it was first seen, still exists`);
        }

        // I6: planning again at the same instant from the outcome changes nothing.
        const again = planRun({ set: "s", user: "u", state, observed: observe(), policy, request, now }).result;
        assert.equal(again.kind, "decision");
        if (again.kind === "decision") assert.equal(again.decision.step, "none", `a second run at the same instant took a step: ${again.decision.step} (${again.decision.reason})`);

        // I5 freshness, as one step per run delivers it (docs/timing.md): the key in
        // the target is replaced within max(every, overlap + retireAfter + 2 × G) + G of its push,
        // G the longest gap between runs; with runs every `cadence` and `checkTiming`'s rule that is
        // `every + cadence`. Checked with the gate off (a held gate is its own bound) and for keys
        // no crash touched (I8 governs those).
        if (!policy.lastUsedGate && pushedAt && !faultSincePush) {
            const steps = policy.overlap.plus(policy.retireAfter).plus(longestGap).plus(longestGap);
            const bound = Duration.fromMillis(Math.max(policy.every.toMillis(), steps.toMillis())).plus(longestGap);
            assert.ok(now.diff(pushedAt).toMillis() <= bound.toMillis(), `key ${target} stayed in the target ${now.diff(pushedAt).shiftTo("hours").toHuman()}, beyond ${bound.shiftTo("hours").toHuman()}`);
        }
    }
}

type Op =
    | { kind: "update"; generation: number; id: string; status: "Active" | "Inactive" }
    | { kind: "import"; generation: number; id: string; status: "Active" | "Inactive" }
    | { kind: "create"; generation: number }
    | { kind: "push" }
    | { kind: "delete"; id: string; generation: number };

/**
 * The operations of a run, in an order the program's dependencies force: declared keys (update,
 * import or create) oldest first, the push (the key check, then the targets), then deletes of
 * keys no longer declared (after the program).
 */
function operations(decision: Decision, engine: Map<number, string>): Op[] {
    const ops: Op[] = [];
    for (const k of decision.keys) {
        if (k.import) ops.push({ kind: "import", generation: k.generation, id: k.import, status: k.status });
        else if (k.accessKeyId) ops.push({ kind: "update", generation: k.generation, id: k.accessKeyId, status: k.status });
        else ops.push({ kind: "create", generation: k.generation });
    }
    // No key for targets yet (paused before the first mint, or only a taken-over key): no push.
    if (decision.keys.some((k) => k.generation === decision.current)) ops.push({ kind: "push" });
    const declared = new Set(decision.keys.map((k) => k.generation));
    for (const [generation, id] of engine) if (!declared.has(generation)) ops.push({ kind: "delete", id, generation });
    return ops;
}
