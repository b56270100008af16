/**
 * The rotation state: the stack output `rotation`, read back on the next run through a
 * StackReference to the stack itself. It never holds secret material.
 */

/** Where a set is in AWS's five-step recipe (DESIGN.md §2). */
export type Phase = "steady" | "pushed" | "retiring";

/** One access key the program manages. Times are ISO-8601 instants. */
export interface KeyRecord {
    generation: number;
    accessKeyId: string;
    status: "Active" | "Inactive";
    /** When the run that minted the key ran. */
    createdAt: string;
    /** When the key was written to every target (the mint run, for keys after the first). */
    pushedAt?: string;
    /** When the key was deactivated. */
    deactivatedAt?: string;
    /**
     * When ci-key-rotation took this key over by id (`credentials[].adoptKeys`, or an interrupted
     * mint's key whose secret may be lost). Its secret is unknown, so it is never the key targets
     * hold: it is always the old key of a rotation.
     */
    adoptedAt?: string;
}

/** A rotation request being worked on: done when every key it names is deleted. */
export interface ActiveRequest {
    id: string;
    /** When the request was first seen. */
    seenAt: string;
    /** Access key ids that existed when the request was first seen. */
    keys: string[];
}

/** State of one credential set. */
export interface SetState {
    /** Newest generation minted (or taken over) so far; 0 for a set paused before its first mint. */
    generation: number;
    phase: Phase;
    /**
     * Live keys, oldest first (one or two; none for a set paused before its first mint). A key
     * taken over by id (`adoptedAt`) is listed first: it is the old key of a rotation.
     */
    keys: KeyRecord[];
    /** When this set last took a step; no step is taken at or before this instant again. */
    changedAt: string;
    /** The request being handled, if any. */
    request?: ActiveRequest;
    /** Id of the last request that completed. */
    lastRequest?: string;
    /** Keys this run removed; the engine deletes them after the program ends. */
    retired?: string[];
    /**
     * The replacement trigger of the set's target resources that a bridged provider updates in
     * place (`replacementTrigger`, providers/in-place.ts); absent means `"none"`. It changes only
     * when a run must write a value the engine's record may already claim and has no other value
     * to write: after a revoke, the mint of a key whose target write was refused is finished by
     * replacing those resources (a real write). It is then that key's id, and it stays so, so
     * later runs declare the same trigger and replace nothing.
     */
    rewriteTrigger?: string;
}

/** The `rotation` stack output. */
export interface RotationState {
    version: 1;
    /** When the run that wrote this state ran. */
    asOf: string;
    sets: Record<string, SetState>;
    /**
     * Per set, the access key ids a failed run of the set created and the engine recorded with
     * their secret (the run failed after the create: a key check, a target write, another key's
     * status). The set's entry in `sets` stays its previous state, or is absent after a failed
     * first run, so without this the next run could not tell the key from one made by hand (see
     * `PlanInput.recorded`). Absent when no set failed that way.
     */
    recorded?: Record<string, string[]>;
    /**
     * Per set without state (its first runs failed), the access key ids a failed run created whose
     * target write failed at a store that saves the planned value (see `PlanInput.unconfirmed`):
     * this program's keys, never to be pushed. A set with state lists them in its own entry.
     */
    unconfirmed?: Record<string, string[]>;
}

/**
 * Thrown when the stored state cannot be read; the message says what to do. A Pulumi `RunError`
 * by its `__pulumiRunError` marker, like `ConfigError` (see there), so the library and CLI read
 * state without loading the SDK.
 */
export class StateError extends Error {
    /** Pulumi's `RunError` marker: the program prints the message without a stack trace. */
    readonly __pulumiRunError = true;
    constructor(message: string) {
        super(message);
        this.name = "StateError";
    }
}

/**
 * Read the `rotation` output of the previous run. `undefined` (no previous output) is the first
 * run. Anything else must be a version-1 state; a newer version means an older program is
 * running against a newer stack, which must not guess.
 */
export function parseState(value: unknown): RotationState | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) {
        throw new StateError("The stack output `rotation` is not a ci-key-rotation state object. Do not edit it by hand; restore it from a backup of the stack (`pulumi stack export`).");
    }
    const v = value as Partial<RotationState> & { version?: unknown };
    if (v.version !== 1) {
        throw new StateError(
            `The stack output \`rotation\` has version ${JSON.stringify(v.version)}, and this program reads version 1. Run the ci-key-rotation release that wrote it, or a newer one.`,
        );
    }
    if (typeof v.asOf !== "string" || typeof v.sets !== "object" || v.sets === null) {
        throw new StateError("The stack output `rotation` is missing `asOf` or `sets`. Restore it from a backup of the stack (`pulumi stack export`).");
    }
    for (const [name, set] of Object.entries(v.sets)) {
        const ok =
            set &&
            typeof set.generation === "number" &&
            ["steady", "pushed", "retiring"].includes(set.phase) &&
            Array.isArray(set.keys) &&
            set.keys.every((k) => typeof k?.accessKeyId === "string" && typeof k.generation === "number" && typeof k.createdAt === "string") &&
            (set.rewriteTrigger === undefined || typeof set.rewriteTrigger === "string");
        if (!ok) throw new StateError(`The stack output \`rotation\` has a malformed entry for set "${name}". Restore it from a backup of the stack (\`pulumi stack export\`).`);
    }
    for (const field of ["recorded", "unconfirmed"] as const) {
        const map = v[field];
        if (map === undefined) continue;
        const ok = typeof map === "object" && map !== null && !Array.isArray(map) && Object.values(map).every((ids) => Array.isArray(ids) && ids.every((id) => typeof id === "string"));
        if (!ok) throw new StateError(`The stack output \`rotation\` has a malformed \`${field}\` entry. Restore it from a backup of the stack (\`pulumi stack export\`).`);
    }
    return v as RotationState;
}
