import { Duration } from "luxon";

/**
 * How and when a credential set rotates. Every field can be set stack-wide
 * (`ci-key-rotation:<field>`) and overridden per set (`credentials[].rotation.<field>`).
 */
export interface RotationPolicy {
    /**
     * Mint a new key when the current one is this old. Default `P7D`: weekly keys are far inside
     * the 90-day limit of the CIS AWS benchmark, and a whole rotation (overlap + gate + retire)
     * fits in the week with room for missed runs.
     */
    every: Duration;
    /**
     * Keep the previous key Active this long after the new one was pushed. It must outlast the
     * longest CI job that may have read the old key before the push. Default `PT24H`: four times
     * GitHub-hosted runners' 6-hour job limit, plus time for queued and retried jobs.
     */
    overlap: Duration;
    /**
     * Keep a deactivated key (Inactive, so it can be switched back on if something was missed)
     * this long before deleting it. Default `P3D`: covers a weekend.
     */
    retireAfter: Duration;
    /**
     * Last-used gate: jobs that started before the push may use the old key for this long after
     * it; use after `pushed + settle` means something still reads the old key. Default `PT6H`, the
     * GitHub-hosted job limit. Must not exceed `overlap`.
     */
    settle: Duration;
    /** Check IAM's last-used time of the old key before deactivating it. Default `true`. */
    lastUsedGate: boolean;
    /**
     * How long past the due deactivation the gate may hold a rotation. Default `P1D`, so that a
     * stuck consumer is reported for a day of runs before the gate gives up.
     */
    gateTimeout: Duration;
    /**
     * What to do when the gate times out: `fail` the run (both keys stay Active, nothing breaks,
     * a person must find the consumer) or `proceed` with the deactivation. Default `fail`:
     * deactivating a key something still uses breaks that something.
     */
    onGateTimeout: "proceed" | "fail";
    /** Freeze the set: take no step at all. Default `false`. */
    paused: boolean;
    /**
     * Step 2's check: how long a run keeps retrying STS GetCallerIdentity with a newly minted key
     * before it fails. IAM is eventually consistent and documents no bound; a new key usually
     * authenticates within seconds. Default `PT30S`: long enough for the usual delay, short enough
     * that a key that never works fails the run quickly (the key stays, nothing is deactivated, and
     * the next run checks it again). At most `PT10M`, since the engine waits inline.
     */
    validateTimeout: Duration;
}

/** The defaults documented on each field of {@link RotationPolicy}. */
export const defaultPolicy: Readonly<RotationPolicy> = Object.freeze({
    every: Duration.fromISO("P7D"),
    overlap: Duration.fromISO("PT24H"),
    retireAfter: Duration.fromISO("P3D"),
    settle: Duration.fromISO("PT6H"),
    lastUsedGate: true,
    gateTimeout: Duration.fromISO("P1D"),
    onGateTimeout: "fail" as const,
    paused: false,
    validateTimeout: Duration.fromISO("PT30S"),
});


/** What an operator asked for through `ci-key-rotation:request` and its flags. */
export interface RotationRequest {
    /** Opaque id; a new id starts a request. */
    id: string;
    /** Zero `overlap` and `retireAfter`, skip the last-used gate. */
    emergency: boolean;
    /** Emergency, and deactivate the old key in the same run that mints the new one. */
    revoke: boolean;
}

/** The policy actually applied to a step: emergency and revoke requests zero the waits. */
export function effectivePolicy(policy: RotationPolicy, request: RotationRequest | undefined): RotationPolicy {
    if (!request || !(request.emergency || request.revoke)) return policy;
    const zero = Duration.fromMillis(0);
    return { ...policy, overlap: zero, retireAfter: zero, settle: zero, lastUsedGate: false };
}
