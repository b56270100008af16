import { DateTime, Duration } from "luxon";
import { plan, type Decision, type LastUse, type ObservedKey, type PlanInput, type PlanResult } from "../../rotation/core/plan";
import { defaultPolicy, type RotationPolicy, type RotationRequest } from "../../rotation/core/policy";
import type { KeyRecord, SetState } from "../../rotation/core/state";

export const T0 = DateTime.fromISO("2026-11-01T00:00:00Z", { setZone: true });
export const iso = (t: DateTime) => t.toUTC().toISO()!;
export const d = (s: string) => Duration.fromISO(s);

export function policy(overrides: Partial<Record<keyof RotationPolicy, unknown>> = {}): RotationPolicy {
    const p: Record<string, unknown> = { ...defaultPolicy };
    for (const [k, v] of Object.entries(overrides)) p[k] = typeof v === "string" && k !== "onGateTimeout" ? d(v) : v;
    return p as unknown as RotationPolicy;
}

export function key(generation: number, status: "Active" | "Inactive", createdAt: DateTime, extra: Partial<KeyRecord> = {}): KeyRecord {
    return { generation, accessKeyId: `AKIAGEN${String(generation).padStart(13, "0")}`, status, createdAt: iso(createdAt), pushedAt: iso(createdAt), ...extra };
}

export function observed(keys: KeyRecord[]): ObservedKey[] {
    return keys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt }));
}

/** Steady on generation `g`, created at `created`. */
export function steady(g: number, created: DateTime): SetState {
    return { generation: g, phase: "steady", keys: [key(g, "Active", created)], changedAt: iso(created) };
}

/** Pushed: generation g-1 still Active, g pushed at `pushed`. */
export function pushed(g: number, oldCreated: DateTime, pushedAt: DateTime): SetState {
    return { generation: g, phase: "pushed", keys: [key(g - 1, "Active", oldCreated), key(g, "Active", pushedAt)], changedAt: iso(pushedAt) };
}

/** Retiring: generation g-1 Inactive since `deactivated`, g Active. */
export function retiring(g: number, oldCreated: DateTime, pushedAt: DateTime, deactivated: DateTime): SetState {
    return {
        generation: g,
        phase: "retiring",
        keys: [key(g - 1, "Inactive", oldCreated, { deactivatedAt: iso(deactivated) }), key(g, "Active", pushedAt)],
        changedAt: iso(deactivated),
    };
}

export function input(state: SetState | undefined, now: DateTime, extra: Partial<PlanInput> = {}): PlanInput {
    return { set: "deploy", user: "ci-deploy", state, observed: state ? observed(state.keys) : [], policy: policy(), now, ...extra };
}

export function decided(result: PlanResult): Decision {
    if (result.kind !== "decision") throw new Error(`expected a decision, got ${JSON.stringify(result)}`);
    return result.decision;
}

/** Plan, answering a last-use question with `lastUse` (default: never used). */
export function planWithGate(i: PlanInput, lastUse: LastUse = {}): PlanResult {
    const first = plan(i);
    return first.kind === "needs-last-use" ? plan({ ...i, lastUse }) : first;
}

/**
 * The world after `dec` is carried out, for loops that run the plan again and again: IAM's keys
 * (a minted key gets the id `AKIAGEN<generation>`), the stored state with those ids filled in and
 * no `retired` entry (the engine deleted it), and the id of the key the targets hold.
 */
export function carriedOut(dec: Decision): { iam: { accessKeyId: string; status: string }[]; state: SetState; current: string } {
    const ids = dec.keys.map((k) => k.accessKeyId ?? `AKIAGEN${String(k.generation).padStart(13, "0")}`);
    return {
        iam: dec.keys.map((k, j) => ({ accessKeyId: ids[j], status: k.status })),
        state: { ...dec.state, retired: undefined, keys: dec.state.keys.map((k) => ({ ...k, accessKeyId: k.accessKeyId || ids[dec.keys.findIndex((x) => x.generation === k.generation)] })) },
        current: ids[dec.keys.findIndex((k) => k.generation === dec.current)],
    };
}

export type { RotationRequest };
