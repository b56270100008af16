import { DateTime, Duration } from "luxon";
import { effectivePolicy, type RotationPolicy, type RotationRequest } from "./policy";
import type { KeyRecord, SetState } from "./state";

/** An access key as IAM lists it (`aws.iam.getAccessKeys`). */
export interface ObservedKey {
    accessKeyId: string;
    status: "Active" | "Inactive" | "Expired" | string;
    /** ISO-8601 creation time, when AWS reports it. */
    createDate?: string;
}

/** IAM GetAccessKeyLastUsed for one key. `at` is absent when the key was never used. */
export interface LastUse {
    at?: string;
    service?: string;
    region?: string;
}

/** The step a run takes for a set. `revoke` is a mint that deactivates the old key at once. */
export type StepName = "none" | "mint" | "deactivate" | "delete" | "revoke";

/** A key resource to declare this run, in registration order. */
export interface DesiredKey {
    generation: number;
    status: "Active" | "Inactive";
    /** Known for existing keys; absent for the key this run mints. */
    accessKeyId?: string;
    /**
     * Set only in the run that takes the key over by id (`adoptKeys`, or the key of an interrupted
     * mint the state does not know): the access key id to import, so the engine takes the existing
     * key over (and can later delete it) instead of creating one. A no-op where the engine already
     * holds that id under this name (see `takeOverOrphan`).
     */
    import?: string;
}

/** The next step after this run, for outputs and `status`. */
export interface NextStep {
    step: "mint" | "deactivate" | "delete" | "none";
    /** Earliest instant the step is due; absent when it waits on nothing but the next run or when paused. */
    dueAt?: string;
    /** Why, in a sentence. */
    why: string;
}

/** What a run does for one set. */
export interface Decision {
    step: StepName;
    /** Why this step (or none), in a sentence. */
    reason: string;
    /** Key resources to declare, oldest first: an old key is updated before a new one is created. */
    keys: DesiredKey[];
    /**
     * Generation the targets must hold after this run: the newest Active key whose secret is known.
     * 0 when the set has no such key yet (paused before its first mint, or only a key taken over
     * from an interrupted first run): no key check and no target is declared then.
     */
    current: number;
    /** Generation minted by this run; its access key id in `state` is filled in by the caller. */
    minted?: number;
    /** The set's state after this run. */
    state: SetState;
    next: NextStep;
    /** Warnings to show this run (the last-used gate holding a rotation, adopted leftovers). */
    warnings: string[];
    paused: boolean;
    /**
     * The set's state before this run, as it was saved: what the set's entry in `rotation` stays
     * when any step of the set fails this run (see `CredentialSet`). Absent on a first run.
     */
    previous?: SetState;
    /**
     * The keys of `unconfirmed` that IAM still lists: a failed run of this set keeps them listed,
     * so a key stays retired-not-finished until a run of the set completes (see `takeOverOrphan`).
     */
    unconfirmed?: string[];
    /**
     * The keys of `recorded` that IAM still lists: a failed run of this set keeps them listed, so
     * an interrupted mint the engine holds is still finished by the run after (see `recorded`).
     */
    recorded?: string[];
    /** The keys of `statusFailed` that IAM still lists (see `PlanInput.statusFailed`). */
    statusFailed?: string[];
}

/** Everything {@link plan} needs: the clock is an input, never read here. */
export interface PlanInput {
    /** Set name, for messages. */
    set: string;
    /** IAM user name, for messages and the commands they suggest. */
    user: string;
    /** The set's state from the previous successful run; undefined on its first run. */
    state: SetState | undefined;
    /** Keys IAM lists for the user now. */
    observed: ObservedKey[];
    policy: RotationPolicy;
    /** The operator's request, when it applies to this set. */
    request?: RotationRequest;
    now: DateTime;
    /** Last use of the key the gate is about; asked for with `needs-last-use`. */
    lastUse?: LastUse;
    /** Key ids the operator confirms were deleted outside the program (`forgetKeys`). */
    forget?: readonly string[];
    /** Key ids of the user the operator asks the set to take over (`credentials[].adoptKeys`). */
    adopt?: readonly string[];
    /**
     * Access key ids an earlier run's saved outputs show the engine created and recorded, even if
     * that run failed (a failed update still saves the stack outputs the program registered, CLI ≥
     * 3.112, pulumi/pulumi#15754; an output that resolves from a key's id alone resolves only after
     * the engine recorded the key). An interrupted mint's key listed here is finished with, without
     * asking IAM; one not listed is judged by its last use (see `takeOverOrphan`).
     */
    recorded?: readonly string[];
    /**
     * Access key ids an earlier failed run minted and created, but whose targets did not all take
     * them: a target write failed at a store whose provider saves the planned value on a failed
     * update (the bridged GitHub provider: the engine's state of that secret then claims the new
     * key, so declaring it again writes nothing). An interrupted mint's key listed here is never
     * finished with: it is taken over by id and retired, and targets are declared with the key
     * they held, a real difference the engine writes (see `takeOverOrphan`). Outranks `recorded`.
     */
    unconfirmed?: readonly string[];
    /**
     * Access key ids whose status change (UpdateAccessKey) failed in an earlier run of the set. The
     * bridged AWS provider hands the engine the planned status with the error, so the engine's
     * state says the change took effect while IAM says it did not; declaring the same status again
     * writes nothing. A key listed here whose IAM status differs from what the run would declare
     * is first declared with the status IAM shows (a real write that sets the engine's state back),
     * and the step is taken by the next run (see {@link plan}).
     */
    statusFailed?: readonly string[];
    /** The set's place in config, e.g. `credentials[0]`, for messages that name a setting. */
    configPath?: string;
}

/**
 * The outcome of planning: a decision; or a request for the old key's last use (the caller
 * reads IAM only when the gate actually has to decide, then plans again with `lastUse`); or a
 * block that must fail the run before anything changes.
 */
export type PlanResult =
    | { kind: "decision"; decision: Decision }
    | { kind: "needs-last-use"; accessKeyId: string }
    | { kind: "blocked"; message: string };

const iso = (t: DateTime): string => t.toUTC().toISO()!;
const at = (s: string): DateTime => DateTime.fromISO(s, { setZone: true });
const isActive = (status: string): boolean => status === "Active";
/** A key minted this run has no id until the engine creates it; name it by generation then. */
const keyName = (k: KeyRecord): string => (k.accessKeyId ? `key ${k.accessKeyId}` : `the generation-${k.generation} key`);

/**
 * Decide the one step a run takes for a set (DESIGN.md §2). Pure: same input, same result.
 */
export function plan(input: PlanInput): PlanResult {
    const result = planStep(input);
    if (result.kind !== "decision") return result;
    const listed = (ids: readonly string[] | undefined): string[] => ids?.filter((id) => input.observed.some((k) => k.accessKeyId === id)) ?? [];
    const unconfirmed = listed(input.unconfirmed);
    const recorded = listed(input.recorded).filter((id) => !unconfirmed.includes(id));
    const statusFailed = listed(input.statusFailed);
    const decision = resync(input, result.decision, statusFailed) ?? result.decision;
    return {
        kind: "decision",
        decision: {
            ...decision,
            ...(statusFailed.length > 0 ? { statusFailed } : {}),
            ...(input.state ? { previous: input.state } : {}),
            ...(unconfirmed.length > 0 ? { unconfirmed } : {}),
            ...(recorded.length > 0 ? { recorded } : {}),
        },
    };
}

/**
 * After a failed status change: when this run would declare a key in `statusFailed` with a status
 * IAM does not show, the engine already holds that status (the bridged provider saved the planned
 * value of the failed update: terraform-provider-aws internal/service/iam/access_key.go
 * `resourceAccessKeyUpdate` returns UpdateAccessKey's error without `d.Partial`, and
 * pulumi-terraform-bridge pkg/tfbridge/provider.go `Update` hands the planned state to the engine),
 * so declaring it again would write nothing and the next run would find the key "switched back on
 * by hand". Instead this run takes no step and declares the set's keys with the status IAM shows:
 * a real difference for the engine, which calls UpdateAccessKey with IAM's own status and so sets
 * its state back. The next run takes the step for real, a revoke's mint included (it waits, as it
 * waited for the deactivation that failed). A decision that takes over a key the state does not
 * hold yet is left alone.
 */
function resync(input: PlanInput, decision: Decision, statusFailed: readonly string[]): Decision | undefined {
    const state = input.state;
    if (!state || statusFailed.length === 0) return undefined;
    const iam = new Map(input.observed.map((k) => [k.accessKeyId, isActive(k.status) ? ("Active" as const) : ("Inactive" as const)]));
    const stale = decision.keys.filter((k) => k.accessKeyId !== undefined && statusFailed.includes(k.accessKeyId) && iam.get(k.accessKeyId) !== k.status);
    if (stale.length === 0) return undefined;
    // A key to mint is simply not minted this run (a revoke's mint waits for its deactivation); a
    // key to take over by id that the state does not hold yet cannot wait, so that decision stands.
    if (decision.keys.some((k) => k.accessKeyId !== undefined && k.import !== undefined && !state.keys.some((s) => s.accessKeyId === k.accessKeyId))) return undefined;
    const ids = stale.map((k) => k.accessKeyId).join(", ");
    const warnings = [...decision.warnings, `set "${input.set}": key ${ids} did not change status in an earlier run (UpdateAccessKey failed); the step is retried by the next run`];
    // A change, so no second run at this instant takes the step (like the engine's pending delete in `planStep`).
    const reason = `the status change of key ${ids} failed in an earlier run and the engine recorded it as done; this run sets the engine's record back to IAM's status, and the next run takes the step`;
    const held = decide(input, { step: "none", reason, state: { ...state, changedAt: iso(input.now) } }, warnings);
    if (held.kind !== "decision") return undefined;
    return {
        ...held.decision,
        keys: held.decision.keys.map((k) => (k.accessKeyId !== undefined && iam.has(k.accessKeyId) ? { ...k, status: iam.get(k.accessKeyId)! } : k)),
        next: { step: decision.step === "revoke" ? "mint" : decision.step, why: "the step this run set aside, retried by the next run" },
    };
}

function planStep(input: PlanInput): PlanResult {
    const { now } = input;
    // A set paused on its first run saved a state without keys: it is still to take its first run.
    if (input.state && input.state.generation === 0 && input.state.keys.length === 0) input = { ...input, state: undefined };
    const adoption = adopt(input);
    if ("blocked" in adoption) return { kind: "blocked", message: adoption.blocked };
    if (adoption.adopted.length > 0) input = { ...input, state: adoption.state };
    // The key an interrupted adoption run minted is taken over below.
    const reconciled = reconcile({ ...input, observed: input.observed.filter((k) => !adoption.leftover?.includes(k.accessKeyId)) }, adoption.warnings);
    if ("blocked" in reconciled) return { kind: "blocked", message: reconciled.blocked };
    const { done, warnings } = reconciled;
    let state = reconciled.state;
    if (adoption.adopted.length > 0 && state) {
        const ids = adoption.adopted.join(", ");
        const leftover = input.observed.find((k) => adoption.leftover?.includes(k.accessKeyId));
        if (leftover) {
            // The key an interrupted adoption run minted beside it: taken over by id like any
            // interrupted mint's key (see `takeOverOrphan`), never declared again without `import`.
            if (!input.lastUse && !input.recorded?.includes(leftover.accessKeyId)) return { kind: "needs-last-use", accessKeyId: leftover.accessKeyId };
            const step = takeOverOrphan(input, state, leftover, "mint", warnings);
            return decide(input, { ...step, adopted: [...adoption.adopted, ...(step.adopted ?? [])] }, warnings);
        }
        if (!input.state!.keys.some((k) => !k.adoptedAt)) {
            // No key the targets could hold yet: mint one in this same run, beside the adopted key.
            return decide(input, { ...mintBeside(state, now, `adopted key ${ids} (adoptKeys) and minted its replacement`), adopted: adoption.adopted }, warnings);
        }
        return decide(input, { step: "none", reason: `adopted key ${ids} (adoptKeys); it is retired like any old key`, state, adopted: adoption.adopted }, warnings);
    }
    if (reconciled.empty && state) {
        const reason = state.keys.length > 0 ? `key ${state.keys[0].accessKeyId}, the only key left, was adopted and its secret is unknown` : "every key of this set was forgotten (forgetKeys)";
        return decide(input, mintBeside(state, now, reason), warnings);
    }
    if (reconciled.pair && reconciled.orphan) {
        const [older, newer] = [reconciled.orphan, reconciled.pair];
        // A key an earlier failed run of this set created is this program's, used or not: the
        // engine recorded its create (see `recorded` and `unconfirmed`).
        const ours = (id: string) => input.recorded?.includes(id) === true || input.unconfirmed?.includes(id) === true;
        // The newer key is this program's: the run that minted it without state had already decided
        // to retire the older one (see `takeOverOrphan`), so that decision is carried out. When the
        // newer one's writes were refused and the older one's secret is also held by the engine,
        // targets get the older one instead (the engine's record of a refused target claims the
        // newer, so that is a real write).
        const olderKnown = ours(older.accessKeyId) && isActive(older.status);
        if (input.unconfirmed?.includes(newer.accessKeyId) && olderKnown) return decide(input, keepOlder(input, older, newer, warnings), warnings);
        if (ours(newer.accessKeyId)) return decide(input, finishPair(input, older, newer, warnings), warnings);
        if (olderKnown) return decide(input, keepOlder(input, older, newer, warnings), warnings);
        if (!ours(older.accessKeyId)) {
            if (!input.lastUse) return { kind: "needs-last-use", accessKeyId: older.accessKeyId };
            if (input.lastUse.at !== undefined) return { kind: "blocked", message: twoKeysWithoutState(input) };
        }
        return decide(input, takeOverPair(input, older, newer, warnings), warnings);
    }
    if (reconciled.orphan) {
        const orphan = reconciled.orphan;
        // Whether the key's secret ever reached the program decides what can be done with it; IAM's
        // last use is the evidence (see `takeOverOrphan`). Asked even with the gate off: only an
        // interrupted mint asks, and guessing wrong would push a key whose secret is unknown.
        const known = input.recorded?.includes(orphan.accessKeyId) || input.unconfirmed?.includes(orphan.accessKeyId);
        if (!input.lastUse && !known) return { kind: "needs-last-use", accessKeyId: orphan.accessKeyId };
        return decide(input, takeOverOrphan(input, state, orphan, reconciled.finish, warnings), warnings);
    }
    if (reconciled.finish && state) {
        // The only key is off (by hand or an interrupted revoke): a revoke keeps it Inactive beside the
        // replacement, whatever the request says.
        return decide(input, mint(startRequest(state, input.request, now), now, true, `key ${state.keys[0].accessKeyId} is no longer Active in IAM`), warnings);
    }

    // A new request id snapshots the keys it must see deleted.
    const request = input.request;
    if (state) state = startRequest(state, request, now);
    const activeRequest = state?.request && request?.id === state.request.id ? request : undefined;
    const policy = effectivePolicy(input.policy, activeRequest);

    if (!state) {
        if (input.policy.paused) {
            // `paused` freezes a set, its first mint included: nothing exists yet for targets to hold.
            return decide(input, { step: "none", reason: "paused before its first key was minted", state: { generation: 0, phase: "steady", keys: [], changedAt: iso(now) } }, warnings);
        }
        return decide(input, firstMint(input), warnings);
    }
    if (done) return decide(input, { step: done, reason: `finished the ${done} that an interrupted run started`, state }, warnings);
    if (input.policy.paused) return decide(input, { step: "none", reason: "paused", state }, warnings);
    if (now.toMillis() <= at(state.changedAt).toMillis()) {
        return decide(input, { step: "none", reason: `this set already took a step at ${state.changedAt}`, state }, warnings);
    }
    if (state.retired?.length) {
        // Removed from the program by the previous run; the engine finishes deleting it in this
        // one. That completes the previous step now, so nothing else happens at this instant.
        return decide(input, { step: "none", reason: `the engine is still deleting key ${state.retired.join(", ")}`, state: { ...state, changedAt: iso(now) } }, warnings);
    }

    if (state.phase === "steady" && state.keys.length === 1 && state.keys[0].adoptedAt) {
        // The only key was taken over by id (its secret is unknown): mint the first pushable key.
        return decide(input, mintBeside(state, now, `key ${state.keys[0].accessKeyId}, the only key, was taken over and its secret is unknown`), warnings);
    }
    if (state.phase === "steady" && state.keys.length === 1 && !isActive(state.keys[0].status)) {
        // The only key is off (left so by an interrupted revoke whose new key was retired): targets
        // hold a key that no longer works, so its replacement is due at once.
        return decide(input, mintBeside(state, now, `key ${state.keys[0].accessKeyId}, the only key, is Inactive`), warnings);
    }

    const due = dueStep(state, policy, activeRequest);
    if (due.dueAt && now < due.dueAt) return decide(input, { step: "none", reason: due.waiting, state }, warnings);

    switch (state.phase) {
        case "steady":
            return decide(input, mint(state, now, activeRequest?.revoke === true, due.reason), warnings);
        case "pushed": {
            const [old, current] = state.keys;
            if (policy.lastUsedGate) {
                if (!input.lastUse) return { kind: "needs-last-use", accessKeyId: old.accessKeyId };
                const gate = lastUsedGate(input, old, current, policy, due.dueAt!);
                if (gate.kind === "blocked") return gate;
                if (gate.kind === "wait") return decide(input, { step: "none", reason: gate.reason, state }, [...warnings, gate.warning]);
                if (gate.warning) warnings.push(gate.warning);
            }
            return decide(input, deactivate(state, now, due.reason), warnings);
        }
        case "retiring":
            return decide(input, remove(state, now, due.reason), warnings);
    }
}

/**
 * A new request id snapshots the keys it must see deleted: every key that exists when it is first
 * seen, `inFlight` included (a key an interrupted run created that the state does not know yet).
 */
function startRequest(state: SetState, request: RotationRequest | undefined, now: DateTime, inFlight: string[] = []): SetState {
    if (!request || request.id === state.lastRequest || request.id === state.request?.id) return state;
    return { ...state, request: { id: request.id, seenAt: iso(now), keys: [...state.keys.map((k) => k.accessKeyId), ...inFlight] } };
}

interface Step {
    step: StepName;
    reason: string;
    /** Key ids this run takes over by id (adopted, or an interrupted mint's): declared with `import`. */
    adopted?: string[];
    state: SetState;
    minted?: number;
}

/** When the next step of a state is due (under the effective policy), and why. */
function dueStep(state: SetState, policy: RotationPolicy, request: RotationRequest | undefined): { dueAt?: DateTime; reason: string; waiting: string } {
    const [old, current] = state.keys;
    switch (state.phase) {
        case "steady": {
            if (request) return { reason: `request ${request.id}`, waiting: "" };
            const dueAt = at(old.createdAt).plus(policy.every);
            return { dueAt, reason: `${keyName(old)} is older than ${policy.every.toISO()}`, waiting: `${keyName(old)} is due for rotation at ${iso(dueAt)}` };
        }
        case "pushed": {
            const dueAt = at(handedOverAt(old, current)).plus(policy.overlap);
            return {
                dueAt,
                reason: `${keyName(current)} has been in every target for ${policy.overlap.toISO()}`,
                waiting: `${keyName(old)} stays active until ${iso(dueAt)} for jobs that read it before the push`,
            };
        }
        case "retiring": {
            const dueAt = at(old.deactivatedAt ?? old.createdAt).plus(policy.retireAfter);
            return {
                dueAt,
                reason: `${keyName(old)} has been inactive for ${policy.retireAfter.toISO()}`,
                waiting: `${keyName(old)} stays inactive (and recoverable) until ${iso(dueAt)}`,
            };
        }
    }
}

type GateOutcome = { kind: "pass"; warning?: string } | { kind: "wait"; reason: string; warning: string } | { kind: "blocked"; message: string };

/**
 * Step 4 of the recipe: the old key must not be in use after the new one settled in.
 *
 * On time (at `handedOver + overlap`) the gate watches `[handedOver + settle, now]`: a use in that
 * window is something that still runs with the old key. IAM keeps only the *last* use, which never
 * moves back, so the gate must not compare it with `handedOver + settle` alone, or a consumer that
 * was switched over would hold the gate until `gateTimeout`. It asks for the same length of silence
 * as it watches on time, `overlap − settle`: the key passes once its last use is that long ago.
 */
function lastUsedGate(input: PlanInput, old: KeyRecord, current: KeyRecord, policy: RotationPolicy, dueAt: DateTime): GateOutcome {
    const use = input.lastUse!;
    const settledAt = at(handedOverAt(old, current)).plus(policy.settle);
    const quiet = policy.overlap.minus(policy.settle);
    if (!use.at || at(use.at) <= settledAt || at(use.at).plus(quiet) <= input.now) return { kind: "pass" };
    const where = [use.service, use.region].filter(Boolean).join(" in ");
    const timeoutAt = dueAt.plus(policy.gateTimeout);
    const quietAt = at(use.at).plus(quiet);
    const seen = `key ${old.accessKeyId} (generation ${old.generation}) of set "${input.set}" was last used at ${use.at}${where ? ` (${where})` : ""}, ${old.adoptedAt ? `after it was adopted at ${old.adoptedAt}` : `after the new key was pushed at ${current.pushedAt ?? current.createdAt}`}: something still uses the old key`;
    if (input.now < timeoutAt) {
        const letGo = quietAt < timeoutAt ? `; if nothing uses it again, the gate lets go at ${iso(quietAt)}, after ${quiet.toISO()} unused` : "";
        return { kind: "wait", reason: `the last-used gate holds: ${seen}`, warning: `${seen}. Deactivation waits until that stops, or until ${iso(timeoutAt)} (gateTimeout)${letGo}.` };
    }
    if (policy.onGateTimeout === "proceed") {
        return { kind: "pass", warning: `${seen}. The gate timed out at ${iso(timeoutAt)}; deactivating it anyway (onGateTimeout: proceed).` };
    }
    return {
        kind: "blocked",
        message: `${seen}. The gate timed out at ${iso(timeoutAt)} and onGateTimeout is "fail". Find the consumer (CloudTrail shows calls by ${old.accessKeyId}) and switch it to the new key, or set \`lastUsedGate: false\` or \`onGateTimeout: proceed\` for this set.`,
    };
}

/**
 * Since when consumers of the old key have had the new one: its push, or, for a key adopted
 * later than that, the adoption (whatever uses an adopted key learns of the rotation only then).
 */
function handedOverAt(old: KeyRecord, current: KeyRecord): string {
    const pushed = current.pushedAt ?? current.createdAt;
    return old.adoptedAt && at(old.adoptedAt) > at(pushed) ? old.adoptedAt : pushed;
}

/** A mint beside a key that stays: an Inactive old key goes straight to `retiring`. */
function mintBeside(state: SetState, now: DateTime, reason: string): Step {
    const [old] = state.keys;
    if (!old || isActive(old.status)) return mint(state, now, false, reason);
    const minted = mint(state, now, true, reason);
    return { ...minted, step: "mint", state: { ...minted.state, keys: [{ ...old, deactivatedAt: old.deactivatedAt ?? iso(now) }, minted.state.keys[1]] } };
}

/**
 * Take over keys listed in `adoptKeys` that the state does not know (I9's second way out). An
 * adopted key's secret is unknown, so it can only ever be the *old* key of a rotation:
 * - with rotation state (steady on one key), it joins as the old key beside the current one and
 *   is deactivated (gated) and deleted like any old key; no mint is needed;
 * - without rotation state, the run mints the set's first pushable key beside it.
 * Its generation is the next unused one, so its resource name never clashes with a key the
 * engine knows; an interrupted mint's key adopted by mistake lands on its own name.
 */
function adopt(input: PlanInput): { state: SetState | undefined; adopted: string[]; warnings: string[]; leftover?: string[] } | { blocked: string } {
    const { state, observed, set, user, now } = input;
    const warnings: string[] = [];
    const wanted = input.adopt ?? [];
    if (wanted.length === 0) return { state, adopted: [], warnings };
    const seen = new Map(observed.map((k) => [k.accessKeyId, k]));
    const known = new Set([...(state?.keys.map((k) => k.accessKeyId) ?? []), ...(state?.retired ?? [])]);
    const setting = `${input.configPath ?? `set "${set}"`}.adoptKeys`;
    for (const id of wanted) {
        if (!seen.has(id) && !known.has(id)) warnings.push(`set "${set}": \`${setting}\` lists key ${id}, which IAM does not list for user ${user}; remove it from \`${setting}\``);
    }
    const candidates = observed.filter((k) => wanted.includes(k.accessKeyId) && !known.has(k.accessKeyId));
    if (candidates.length === 0) return { state, adopted: [], warnings };
    const t = iso(now);
    const bad = candidates.find((k) => k.status !== "Active" && k.status !== "Inactive");
    if (bad) {
        return {
            blocked: `set "${set}": key ${bad.accessKeyId} listed in \`${setting}\` is ${bad.status} in IAM and cannot be adopted: delete it (aws iam delete-access-key --user-name ${user} --access-key-id ${bad.accessKeyId}) and remove it from \`${setting}\`.`,
        };
    }
    const record = (k: ObservedKey, generation: number): KeyRecord => ({
        generation,
        accessKeyId: k.accessKeyId,
        status: k.status as "Active" | "Inactive",
        createdAt: k.createDate ? iso(at(k.createDate)) : t,
        adoptedAt: t,
        ...(k.status === "Inactive" ? { deactivatedAt: t } : {}),
    });
    if (!state) {
        if (candidates.length > 1) {
            return {
                blocked: `set "${set}": \`${setting}\` lists two keys of IAM user ${user}, but a set without rotation state must mint a key the targets can hold, and AWS allows two per user. Delete one of ${candidates.map((k) => k.accessKeyId).join(", ")} (aws iam delete-access-key --user-name ${user} --access-key-id <id>), keep the other in \`${setting}\`, and run again.`,
            };
        }
        const others = observed.filter((k) => k !== candidates[0]);
        if (others.length > 0) warnings.push(`set "${set}": key ${others[0].accessKeyId} exists without state beside adopted key ${candidates[0].accessKeyId}; treating it as the key an interrupted run minted`);
        const state: SetState = { generation: 1, phase: "steady", keys: [record(candidates[0], 1)], changedAt: t };
        if (input.request) state.lastRequest = input.request.id; // the key this run mints already answers it
        return { state, adopted: [candidates[0].accessKeyId], warnings, leftover: others.map((k) => k.accessKeyId) };
    }
    if (state.phase !== "steady" || state.keys.length !== 1 || candidates.length > 1) {
        return {
            blocked: `set "${set}": key ${candidates.map((k) => k.accessKeyId).join(", ")} listed in \`${setting}\` can only be adopted while the set holds a single key (it is ${state.phase} with ${state.keys.length}). Run again once the current rotation has finished.`,
        };
    }
    const [current] = state.keys;
    const k = candidates[0];
    const generation = state.generation + 1;
    return {
        state: { ...state, generation, phase: k.status === "Active" ? "pushed" : "retiring", keys: [record(k, generation), current], changedAt: t },
        adopted: [k.accessKeyId],
        warnings,
    };
}

/**
 * A key IAM lists that the state does not know, left by an interrupted mint of this set (`orphan`).
 *
 * The engine records a create as a pending operation before it calls the provider and the new
 * resource only when the provider returns (pulumi/pulumi pkg/backend/snapshot.go,
 * `SnapshotManager.doCreate` marks `OperationTypeCreating`). A run killed in between leaves a key
 * in IAM that is not in the engine's state: the next update keeps the pending create aside (it is
 * cleared only by `pulumi refresh`, interactively or with `--clear-pending-creates` /
 * `--import-pending-creates`; `snapshot.go` "we don't want to clear pending CREATE operations")
 * and builds its old resources from the checkpointed ones alone (pkg/resource/deploy/deployment.go,
 * `buildResourceMaps`), so declaring `<set>-key-<n>` again creates another key: a third one, which
 * IAM refuses (LimitExceeded). Access keys have no name the engine could find them by.
 *
 * So the key is always declared with `import` under its generation's name. Where the engine did
 * record it (the run failed later), the import is a no-op: an import happens only when no resource
 * of that name exists or its id differs (pkg/resource/deploy/step_generator.go, `isImport`), and
 * the engine keeps the secret it recorded. Where it did not, the import takes the key over, but
 * IAM never returns a secret again, so it must not be pushed.
 *
 * Which of the two: the engine returns a new resource's outputs to the program only after it
 * recorded the resource (pkg/resource/deploy/step_executor.go, `executeStep`: `stepComplete`, which
 * for a create is `reg.Done` in step.go `CreateStep.Apply`, runs after `OnResourceStepPost` "saved
 * the results of the step in the snapshot"), so a key IAM shows was ever used had its secret handed
 * out, and the engine holds it: the mint is finished with it (targets get it). A key never used may be either;
 * it is treated as one whose secret is unknown and retired like an adopted key (targets keep the
 * current key; the orphan stays Active for `overlap` in case a target got it, then is deactivated
 * and deleted), and the rotation mints again once it is gone. Without state (an interrupted first
 * run) a used key is no proof (the user may have had it before): the key is retired beside a first
 * key minted at once (a paused set mints nothing). A key in `recorded` is known to be held by the
 * engine, with or without state, and is finished with.
 *
 * A key in `unconfirmed` (with state) is retired whatever its use: a target write of its mint
 * failed at the bridged GitHub provider, which hands the engine the planned value with the error
 * (pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go `Update` returns the SDKv2 partial state
 * through `initializationError`; the engine saves it, pulumi/pulumi
 * sdk/go/common/resource/plugin/provider_plugin.go `Update`), so the engine's state of that secret
 * already holds the new key and the next update finds no difference to write
 * (pkg/resource/deploy/step_generator.go `hasInitErrors` reaches a bridge that answers an empty
 * Terraform diff). Declaring the targets with the key they held is a real difference: a real write.
 */
function takeOverOrphan(input: PlanInput, state: SetState | undefined, orphan: ObservedKey, finish: "mint" | "revoke" | undefined, warnings: string[]): Step {
    const { now, set, request } = input;
    const t = iso(now);
    const id = orphan.accessKeyId;
    const createdAt = orphan.createDate ? iso(at(orphan.createDate)) : t;
    const status: "Active" | "Inactive" = isActive(orphan.status) ? "Active" : "Inactive";
    const record = (generation: number): KeyRecord => ({ generation, accessKeyId: id, status, createdAt, adoptedAt: t, ...(status === "Inactive" ? { deactivatedAt: t } : {}) });
    const usedAt = input.lastUse?.at;
    const recorded = input.recorded?.includes(id) === true;
    const used = usedAt !== undefined || recorded;
    const evidence = recorded
        ? "the previous run's outputs show the engine recorded it"
        : usedAt !== undefined
          ? `IAM shows it was used (${usedAt})`
          : "the previous run's outputs show the engine created it (a target write failed, and the old key is already off after a revoke)";
    if (!state) {
        if (recorded) {
            // The engine created and holds it (an interrupted first run of this very set): finish.
            warnings.push(`set "${set}": key ${id} is from an interrupted first run and ${evidence}; this run finishes the first mint with it`);
            const { lastRequest: _, ...first } = firstMint(input).state;
            const key: KeyRecord = { ...first.keys[0], accessKeyId: id, createdAt };
            return { step: "mint", reason: "finishing an interrupted first run", adopted: [id], state: startRequest({ ...first, keys: [key] }, request, now) };
        }
        const base = startRequest({ generation: 1, phase: "steady", keys: [record(1)], changedAt: t }, request, now);
        if (input.policy.paused) {
            // A paused set mints nothing: it takes the key over alone; the next unpaused run mints.
            warnings.push(`set "${set}": key ${id} exists without state; it is taken over by id, and the next unpaused run mints the set's first key beside it`);
            return { step: "none", reason: `took over key ${id} of an interrupted first run by id`, adopted: [id], state: base };
        }
        // Targets get a new first key in this same run; the key is retired like an old key.
        warnings.push(`set "${set}": key ${id} exists without state (${used ? `used ${usedAt}` : "never used"}: left by an interrupted first run); it is taken over by id and retired like an old key, and a new key is minted beside it for the targets`);
        return { ...mintBeside(base, now, `took over key ${id} of an interrupted first run and minted its replacement`), adopted: [id] };
    }
    const [old] = state.keys;
    // An unconfirmed key is retired by rolling targets back to the old key; after a revoke the old
    // key is already off, so there is nothing to roll back to: the mint is finished instead, which
    // writes every target again with the new key (a write refused at a create saved no planned value).
    const unconfirmed = input.unconfirmed?.includes(id) === true && finish !== "revoke";
    if ((used || input.unconfirmed?.includes(id)) && !unconfirmed) {
        warnings.push(`set "${set}": key ${id} is from an interrupted mint and ${evidence}, so the engine holds it with its secret; this run finishes the mint with it`);
        const revoke = finish === "revoke" || (request?.revoke === true && request.id !== state.lastRequest);
        const reason = finish === "revoke" ? `key ${old.accessKeyId} is no longer Active in IAM` : "finishing an interrupted mint";
        const minted = mint(startRequest(state, request, now, [id]), now, revoke, reason, orphan.createDate);
        const keys = minted.state.keys.map((k) => (k.generation === minted.minted ? { ...k, accessKeyId: id } : k));
        // After a revoke there is no other value to write (the old key is off), yet the engine's
        // record of a target whose write of this key was refused already claims it: declaring it
        // again would write nothing, on every run. The in-place target resources are replaced
        // instead (a new `rewriteTrigger`: delete-first, then create), a real write. Only here:
        // a replacement whose create is refused leaves the store empty until the next run, which
        // a revoke's targets can afford (they hold a key that is off) and other targets cannot.
        const rewrite = finish === "revoke" && input.unconfirmed?.includes(id) === true ? { rewriteTrigger: id } : {};
        return { ...minted, minted: undefined, adopted: [id], state: { ...minted.state, keys, ...rewrite } };
    }
    warnings.push(
        unconfirmed
            ? `set "${set}": key ${id} is from a mint whose target write failed, and a target that did not take it may be recorded as holding it (the provider saved the planned value), so it cannot be finished: it is taken over by id and retired like an old key, targets are written with key ${old.accessKeyId} again, and the rotation mints again once it is gone`
            : `set "${set}": key ${id} is from an interrupted mint that the engine may never have recorded, and IAM shows it was never used, so its secret may be unknown: it is taken over by id and retired like an old key, and the rotation mints again once it is gone`,
    );
    const generation = state.generation + 1;
    // An interrupted revoke already switched the old key off: it stays off; targets keep it until
    // the replacement is minted (revoke mode may break I2 until a successful push). A set that
    // holds only a taken-over key keeps it: the orphan is retired first, then the mint is retried.
    const current: KeyRecord = finish === "revoke" && !old.adoptedAt ? { ...old, status: "Inactive", deactivatedAt: old.deactivatedAt ?? t } : old;
    const base = startRequest(state, request, now, [id]);
    return {
        step: "none",
        reason: `took over key ${id} of an interrupted mint by id; it is retired before the next mint`,
        adopted: [id],
        state: { ...base, generation, phase: status === "Active" ? "pushed" : "retiring", keys: [record(generation), current], changedAt: t },
    };
}

/** Keys without state that the set cannot take over on its own. */
function twoKeysWithoutState(input: PlanInput): string {
    const { set, user, observed } = input;
    const ids = observed.map((k) => k.accessKeyId).join(", ");
    const deleteCmd = `aws iam delete-access-key --user-name ${user} --access-key-id <id>`;
    const adoptCmd = `pulumi config set --path 'ci-key-rotation:${input.configPath ?? "credentials[<i>]"}.adoptKeys[0]' <id>`;
    return `set "${set}": IAM user ${user} already has keys ${ids} but this stack has no rotation state for it. ci-key-rotation manages only keys it minted or adopted: delete them (${deleteCmd}), or delete one and adopt the other (${adoptCmd}), or point the set at a new user.`;
}

/**
 * Two keys and no state, the older never used: what an interrupted first run and a second run,
 * killed while it created the key it minted beside the first one, leave (see `takeOverOrphan`).
 * Neither key can be pushed (the older was never used, so its secret may be lost; the newer's
 * create was lost) and no target was written (targets follow the key check, which uses the key).
 * Whoever made them, nothing uses the older one, so both are taken over by id under the names the
 * interrupted runs gave them, the newer is retired first, and the first pushable key is minted
 * beside the older once it is gone. A used older key may be a key made by hand that something
 * needs: that still blocks, naming both ways out.
 */
function takeOverPair(input: PlanInput, older: ObservedKey, newer: ObservedKey, warnings: string[]): Step {
    const t = iso(input.now);
    const record = (k: ObservedKey, generation: number): KeyRecord => ({
        generation,
        accessKeyId: k.accessKeyId,
        status: isActive(k.status) ? "Active" : "Inactive",
        createdAt: iso(at(k.createDate!)),
        adoptedAt: t,
        ...(isActive(k.status) ? {} : { deactivatedAt: t }),
    });
    warnings.push(
        `set "${input.set}": keys ${older.accessKeyId} and ${newer.accessKeyId} exist without state and ${older.accessKeyId} was never used (left by interrupted first runs); both are taken over by id, ${newer.accessKeyId} is retired first, and the set's first key is minted once it is gone`,
    );
    const state = startRequest({ generation: 2, phase: isActive(newer.status) ? "pushed" : "retiring", keys: [record(newer, 2), record(older, 1)], changedAt: t }, input.request, input.now);
    return { step: "none", reason: `took over keys ${older.accessKeyId} and ${newer.accessKeyId} of interrupted first runs by id`, adopted: [newer.accessKeyId, older.accessKeyId], state };
}

/**
 * Two keys and no state, both from failed first runs of this set: the older one's run failed after
 * a target write (so it was taken over and retired), and the newer one is the key the next run
 * minted beside it, which the engine recorded with its secret before that run failed too. That
 * run's step is finished: the older key is the retired old key (generation 1), the newer one is
 * pushed (generation 2), under the names that run gave them.
 */
function finishPair(input: PlanInput, older: ObservedKey, newer: ObservedKey, warnings: string[]): Step {
    const t = iso(input.now);
    const old: KeyRecord = { generation: 1, accessKeyId: older.accessKeyId, status: isActive(older.status) ? "Active" : "Inactive", createdAt: iso(at(older.createDate!)), adoptedAt: t };
    warnings.push(`set "${input.set}": keys ${older.accessKeyId} and ${newer.accessKeyId} are from failed first runs of this set, and the previous run's outputs show the engine created ${newer.accessKeyId}; this run finishes that run's mint with it, and ${older.accessKeyId} is retired like an old key`);
    const base = startRequest({ generation: 1, phase: "steady", keys: [old], changedAt: t }, input.request, input.now, [newer.accessKeyId]);
    const minted = mint(base, input.now, false, "finishing an interrupted first run", newer.createDate);
    const keys = minted.state.keys.map((k) => (k.generation === minted.minted ? { ...k, accessKeyId: newer.accessKeyId } : k));
    return { ...minted, minted: undefined, adopted: [older.accessKeyId, newer.accessKeyId], state: { ...minted.state, keys } };
}

/**
 * Two keys and no state, the older created by a failed first run of this set (the engine recorded
 * it with its secret under the name `<set>-key-1`, and targets may hold it), the newer minted
 * beside it by a run whose outcome is unknown (killed, or its writes refused). The older key is
 * pushed again: the engine still holds its secret, since the run that minted the newer one took
 * the older over by id under the same name, a no-op import (see `takeOverOrphan`); targets that a
 * later run moved to the newer key are written back (a real difference). The newer key is taken
 * over by id and retired like an old key.
 */
function keepOlder(input: PlanInput, older: ObservedKey, newer: ObservedKey, warnings: string[]): Step {
    const t = iso(input.now);
    const kept: KeyRecord = { generation: 1, accessKeyId: older.accessKeyId, status: "Active", createdAt: iso(at(older.createDate!)), pushedAt: t };
    const retired: KeyRecord = { generation: 2, accessKeyId: newer.accessKeyId, status: isActive(newer.status) ? "Active" : "Inactive", createdAt: iso(at(newer.createDate!)), adoptedAt: t, ...(isActive(newer.status) ? {} : { deactivatedAt: t }) };
    warnings.push(`set "${input.set}": keys ${older.accessKeyId} and ${newer.accessKeyId} are from failed first runs of this set; the engine recorded ${older.accessKeyId} with its secret, so targets get it again, and ${newer.accessKeyId}, whose run did not complete, is taken over by id and retired like an old key`);
    const state = startRequest({ generation: 2, phase: isActive(newer.status) ? "pushed" : "retiring", keys: [retired, kept], changedAt: t }, input.request, input.now);
    return { step: "mint", reason: "finishing an interrupted first run with its first key", adopted: [older.accessKeyId, newer.accessKeyId], state };
}

function firstMint(input: PlanInput): Step {
    const now = iso(input.now);
    const key: KeyRecord = { generation: 1, accessKeyId: "", status: "Active", createdAt: now, pushedAt: now };
    const state: SetState = { generation: 1, phase: "steady", keys: [key], changedAt: now };
    if (input.request) state.lastRequest = input.request.id; // a brand-new key already answers it
    return { step: "mint", reason: "first run of this set", state, minted: 1 };
}

function mint(state: SetState, now: DateTime, revoke: boolean, reason: string, createdAt?: string): Step {
    const t = iso(now);
    const generation = state.generation + 1;
    const fresh: KeyRecord = { generation, accessKeyId: "", status: "Active", createdAt: createdAt ? iso(at(createdAt)) : t, pushedAt: t };
    const [old] = state.keys;
    if (!old) return { step: "mint", reason, minted: generation, state: { ...state, generation, phase: "steady", keys: [fresh], changedAt: t } };
    if (revoke) {
        const revoked: KeyRecord = { ...old, status: "Inactive", deactivatedAt: t };
        return { step: "revoke", reason, minted: generation, state: { ...state, generation, phase: "retiring", keys: [revoked, fresh], changedAt: t } };
    }
    return { step: "mint", reason, minted: generation, state: { ...state, generation, phase: "pushed", keys: [old, fresh], changedAt: t } };
}

function deactivate(state: SetState, now: DateTime, reason: string): Step {
    const t = iso(now);
    const [old, current] = state.keys;
    return { step: "deactivate", reason, state: { ...state, phase: "retiring", keys: [{ ...old, status: "Inactive", deactivatedAt: t }, current], changedAt: t } };
}

function remove(state: SetState, now: DateTime, reason: string): Step {
    const [old, current] = state.keys;
    return { step: "delete", reason, state: { ...state, phase: "steady", keys: [current], changedAt: iso(now), retired: [old.accessKeyId] } };
}

/** Close a request whose keys are all gone, and describe what comes next. */
function decide(input: PlanInput, step: Step, warnings: string[]): PlanResult {
    let state = step.state;
    if (state.request && !state.keys.some((k) => state.request!.keys.includes(k.accessKeyId))) {
        const { request: finished, ...rest } = state;
        state = { ...rest, lastRequest: finished!.id };
    }
    // `retired` stays until IAM no longer lists the key (reconcile prunes it): a delete that failed
    // again must still be recognised as ours by the next run.
    // Targets hold the newest Active key whose secret is known; an adopted key never qualifies. A set
    // whose only known key is off (an interrupted revoke) keeps it in targets until the next mint.
    // A set whose keys were all taken over has none for targets yet (`current` 0: none declared).
    const newest: KeyRecord | undefined = [...state.keys].reverse().find((k) => isActive(k.status) && !k.adoptedAt) ?? [...state.keys].reverse().find((k) => !k.adoptedAt);
    if (newest?.adoptedAt && !newest.pushedAt) {
        // Never reached by the steps above; a guard, because pushing an adopted key would write an
        // unknown (empty) secret to every target.
        return { kind: "blocked", message: `set "${input.set}": key ${newest.accessKeyId} was adopted and its secret is unknown, so it cannot be the key targets hold. Remove it from \`adoptKeys\` and delete it, then run again.` };
    }
    const keys: DesiredKey[] = state.keys.map((k) => ({
        generation: k.generation,
        status: k.status,
        ...(k.generation === step.minted ? {} : { accessKeyId: k.accessKeyId }),
        ...(step.adopted?.includes(k.accessKeyId) ? { import: k.accessKeyId } : {}),
    }));
    const activeRequest = state.request && input.request?.id === state.request.id ? input.request : undefined;
    return {
        kind: "decision",
        decision: {
            step: step.step,
            reason: step.reason,
            keys,
            current: newest?.generation ?? 0,
            minted: step.minted,
            state,
            next: nextStep(state, effectivePolicy(input.policy, activeRequest), activeRequest, input.policy.paused),
            warnings,
            paused: input.policy.paused,
        },
    };
}

function nextStep(state: SetState, policy: RotationPolicy, request: RotationRequest | undefined, paused: boolean): NextStep {
    if (paused) return { step: "none", why: "paused: no step is taken until `paused` is false" };
    const due = dueStep(state, policy, request);
    const step = state.phase === "steady" ? "mint" : state.phase === "pushed" ? "deactivate" : "delete";
    // A step is never taken twice at one instant, so "due now" means the next run.
    const changed = at(state.changedAt);
    const dueAt = due.dueAt && due.dueAt > changed ? due.dueAt : undefined;
    return { step, ...(dueAt ? { dueAt: iso(dueAt) } : {}), why: dueAt ? due.waiting : request ? `request ${request.id}: at the next run` : "at the next run" };
}

/**
 * Cross-check the state with the keys IAM lists (I9). Differences an interrupted run of this
 * program explains are adopted (the engine finishes what it started when the same names are
 * declared again); anything else blocks the set with a message naming the keys.
 */
function reconcile(
    input: PlanInput,
    warnings: string[] = [],
): { state: SetState | undefined; done?: StepName; warnings: string[]; empty?: boolean; finish?: "mint" | "revoke"; orphan?: ObservedKey; pair?: ObservedKey } | { blocked: string } {
    const { state, observed, user, set, now } = input;
    const ids = (keys: { accessKeyId: string }[]) => keys.map((k) => k.accessKeyId).join(", ");
    const deleteCmd = (id: string) => `aws iam delete-access-key --user-name ${user} --access-key-id ${id}`;
    const adoptCmd = (id: string) => `pulumi config set --path 'ci-key-rotation:${input.configPath ?? "credentials[<i>]"}.adoptKeys[0]' ${id}`;

    if (!state) {
        if (observed.length === 0) return { state: undefined, warnings };
        if (observed.length === 1) return { state: undefined, warnings, orphan: observed[0] };
        const [older, newer] = [...observed].sort((a, b) => at(a.createDate ?? "").toMillis() - at(b.createDate ?? "").toMillis() || a.accessKeyId.localeCompare(b.accessKeyId));
        if (observed.length === 2 && older.createDate && newer.createDate) {
            // Perhaps an interrupted first run's key and the key a second interrupted run minted
            // beside it (a kill lost that create): see `takeOverPair`.
            return { state: undefined, warnings, orphan: older, pair: newer };
        }
        return { blocked: twoKeysWithoutState(input) };
    }

    const seen = new Map(observed.map((k) => [k.accessKeyId, k]));
    const forgotten = state.keys.filter((k) => input.forget?.includes(k.accessKeyId) && !seen.has(k.accessKeyId));
    if (forgotten.length > 0) {
        // The operator confirmed these keys are gone. What is left is either the newer key
        // (steady on it) or nothing (the next step mints a fresh key at once).
        const keys = state.keys.filter((k) => !forgotten.includes(k));
        warnings.push(`set "${set}": forgetting key ${ids(forgotten)} (forgetKeys); remove it from forgetKeys after this run`);
        if (keys.length === 0) return { state: { ...state, keys: [], phase: "steady", changedAt: iso(now) }, done: "none", warnings, empty: true };
        const last = keys[keys.length - 1];
        if (last.adoptedAt && !last.pushedAt) {
            // An adopted key cannot be pushed: mint beside it at once, as for a set without keys.
            return { state: { ...state, keys: [last], phase: "steady", changedAt: iso(now) }, done: "none", warnings, empty: true };
        }
        return reconcile({ ...input, forget: [], state: { ...state, keys: [keys[keys.length - 1]], phase: "steady" } }, warnings);
    }
    const known = new Map(state.keys.map((k) => [k.accessKeyId, k]));
    const retired = new Set(state.retired ?? []);
    const unknown = observed.filter((k) => !known.has(k.accessKeyId) && !retired.has(k.accessKeyId));
    const missing = state.keys.filter((k) => !seen.has(k.accessKeyId));
    const flipped = state.keys.filter((k) => seen.has(k.accessKeyId) && isActive(seen.get(k.accessKeyId)!.status) !== isActive(k.status));
    const pendingRetired = state.retired?.filter((id) => seen.has(id)) ?? [];

    const request = input.request;
    const activeRequest =
        request && (request.id === state.request?.id || (request.id !== state.lastRequest && request.id !== state.request?.id)) ? request : undefined;
    const policy = effectivePolicy(input.policy, activeRequest);
    const due = dueStep(state, policy, activeRequest);
    const stepDue = !input.policy.paused && (!due.dueAt || now >= due.dueAt) && now.toMillis() > at(state.changedAt).toMillis();
    const [old] = state.keys;

    // An interrupted mint: its key exists, the state does not know it yet. The mint is re-run
    // under the same resource name, so the engine adopts the key instead of creating another.
    // IAM's creation date tells it from a key made by hand before this set's last step; without
    // one, only a mint that is due now explains it.
    const createdSinceLastStep = unknown.length === 1 && unknown[0].createDate !== undefined && at(unknown[0].createDate) >= at(state.changedAt);
    const inFlightMint =
        state.phase === "steady" &&
        unknown.length === 1 &&
        missing.length === 0 &&
        (unknown[0].createDate !== undefined ? createdSinceLastStep : stepDue) &&
        flipped.every((k) => k === old && !isActive(seen.get(k.accessKeyId)!.status));
    // The old key of a rotation already switched off (an interrupted deactivation or emergency):
    // every target holds the newer key, so record it rather than switch it back on.
    const inFlightDeactivate = state.phase === "pushed" && flipped.length === 1 && flipped[0] === old && unknown.length === 0 && missing.length === 0;
    // The inactive key of a rotation already gone (an interrupted delete).
    const inFlightDelete = state.phase === "retiring" && missing.length === 1 && missing[0] === old && unknown.length === 0 && flipped.length === 0;
    // The set's only key is switched off (an interrupted revoke, or a person responding to a
    // leak): targets hold a key that no longer works, so replace it at once.
    const deadOnlyKey = state.phase === "steady" && flipped.length === 1 && flipped[0] === old && unknown.length === 0 && missing.length === 0;

    if (inFlightMint) {
        // Finished or retired by `takeOverOrphan` even if no mint is due any more: a job may
        // already have read the key from a target the interrupted run wrote.
        return { state, warnings, finish: flipped.length > 0 ? "revoke" : "mint", orphan: unknown[0] };
    }
    if (inFlightDeactivate) {
        return { state: deactivate(state, now, "").state, done: "deactivate", warnings };
    }
    if (inFlightDelete) {
        return { state: { ...state, phase: "steady", keys: [state.keys[1]], changedAt: iso(now) }, done: "delete", warnings };
    }
    if (deadOnlyKey) {
        warnings.push(`set "${set}": key ${old.accessKeyId}, the only key, is ${seen.get(old.accessKeyId)!.status} in IAM; minting a replacement now`);
        return { state, warnings, finish: "revoke" };
    }

    const problems: string[] = [];
    for (const k of unknown) {
        problems.push(
            `IAM shows key ${k.accessKeyId} (${k.status}${k.createDate ? `, created ${k.createDate}` : ""}) that ci-key-rotation does not manage. No key is minted while it exists. Either delete it if nothing uses it (${deleteCmd(k.accessKeyId)}), or adopt it so it is retired like an old key, deactivated only when the last-used gate shows nothing uses it (${adoptCmd(k.accessKeyId)}).`,
        );
    }
    for (const k of missing) {
        problems.push(
            `key ${k.accessKeyId} (generation ${k.generation}, ${k.status}) is in the rotation state but IAM no longer lists it. If it was deleted on purpose, tell ci-key-rotation to forget it (pulumi config set --path 'ci-key-rotation:forgetKeys[0]' ${k.accessKeyId}) and run again: a set left without keys gets a new one at once.`,
        );
    }
    for (const k of flipped) {
        const nowStatus = seen.get(k.accessKeyId)!.status;
        problems.push(
            isActive(k.status)
                ? `key ${k.accessKeyId} (generation ${k.generation}) was set ${nowStatus} outside ci-key-rotation while targets may still hold it. Reactivate it (aws iam update-access-key --user-name ${user} --access-key-id ${k.accessKeyId} --status Active), or start an emergency rotation to replace it.`
                : `key ${k.accessKeyId} (generation ${k.generation}) was reactivated outside ci-key-rotation after it was retired. If something still needs it, set \`paused: true\` for set "${set}" until that consumer uses the new key; otherwise deactivate it again (aws iam update-access-key --user-name ${user} --access-key-id ${k.accessKeyId} --status Inactive).`,
        );
    }
    if (problems.length > 0) return { blocked: `set "${set}" (IAM user ${user}) does not match its rotation state; no step was taken:\n    - ${problems.join("\n    - ")}` };
    // Keys the previous run removed matter only while IAM still lists them.
    if (!state.retired) return { state, warnings };
    const { retired: _, ...rest } = state;
    return { state: pendingRetired.length > 0 ? { ...rest, retired: pendingRetired } : rest, warnings };
}

/** Durations in outputs: whole hours and minutes read best. */
export function age(from: string, now: DateTime): string {
    return now.diff(at(from), ["days", "hours", "minutes"]).mapUnits((x) => Math.floor(x)).toISO() ?? Duration.fromMillis(0).toISO()!;
}
