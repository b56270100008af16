import type { StackConfig } from "../core/config";
import { effectivePolicy } from "../core/policy";
import type { RotationState } from "../core/state";
import type { EngineRun, Operation, PendingOperation, RunContext } from "./engine";
import { viewOf, type TargetView } from "./targets";
import type { FakeKey, World } from "./world";

/** The invariants of DESIGN.md §3. */
export const invariantIds = ["I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8", "I9"] as const;
/** One invariant's id. */
export type InvariantId = (typeof invariantIds)[number];

/** One invariant that did not hold. */
export interface Violation {
    invariant: InvariantId;
    /** Instant of the run (ISO). */
    at: string;
    /** Index of the run in `runs`. */
    run: number;
    message: string;
}

/** Checks made and failed per invariant (in one run, or in a whole rehearsal). */
export type CheckCounts = Record<InvariantId, { checked: number; failed: number }>;

/** A set as the checker needs it. */
interface SetModel {
    name: string;
    user: string;
    targets: TargetView[];
    retireAfterMs: number;
    /** The set's `overlap` for this run (zero in an emergency), ms. */
    overlapMs: number;
    everyMs: number;
    /** The set's own `settle` and (with the gate on) `gateTimeout`, ms. */
    settleMs: number;
    gateTimeoutMs: number;
    /** `overlap + gateTimeout (gate on) + retireAfter` of the set's own policy: a rotation's length before its gaps. */
    cycleMs: number;
    paused: boolean;
    /** The configured request applies to the set and is emergency / revoke. */
    emergency: boolean;
    revoke: boolean;
    requestId?: string;
}

const ms = (d: { toMillis(): number }) => d.toMillis();

/** The sets of a validated configuration, as the checker sees them. */
export function setModels(config: StackConfig): SetModel[] {
    return config.sets.map((set) => {
        const request = config.request && (!config.request.sets || config.request.sets.includes(set.name)) ? config.request : undefined;
        const effective = effectivePolicy(set.policy, request);
        return {
            name: set.name,
            user: set.user.name,
            targets: set.targets.map((t) => viewOf(t.target, t.spec.label(t.target), set.kms)),
            retireAfterMs: ms(effective.retireAfter),
            overlapMs: ms(effective.overlap),
            everyMs: ms(set.policy.every),
            settleMs: ms(set.policy.settle),
            gateTimeoutMs: set.policy.lastUsedGate ? ms(set.policy.gateTimeout) : 0,
            cycleMs: ms(set.policy.overlap) + (set.policy.lastUsedGate ? ms(set.policy.gateTimeout) : 0) + ms(set.policy.retireAfter),
            paused: set.policy.paused,
            emergency: request?.emergency === true,
            revoke: request?.revoke === true,
            requestId: request?.id,
        };
    });
}

function emptyCounts(): CheckCounts {
    return Object.fromEntries(invariantIds.map((id) => [id, { checked: 0, failed: 0 }])) as CheckCounts;
}

const iso = (t: number) => new Date(t).toISOString();

/**
 * Checks I1–I9 after every operation and every run. It reads the fake world and the engine's
 * saved state directly, so a violation is what a person would see in AWS and GitHub.
 */
export class InvariantChecker {
    readonly violations: Violation[] = [];
    /** Violations beyond this many are counted but not listed. */
    maxListed = 500;
    readonly totals = emptyCounts();
    run = emptyCounts();
    private runIndex = 0;
    private runAt = 0;
    private sets: SetModel[] = [];
    private previous?: RotationState;
    /** Sets where a revoke deactivated the key the targets hold; closed by the next successful run. */
    private readonly revokeWindow = new Set<string>();
    /** Targets that have received a key at least once (set and label: two sets may share a label). */
    private readonly pushed = new Set<string>();
    /**
     * Keys created by a run that failed or was killed: the engine may not have recorded the create,
     * and the run's outputs may not know the key, so the program cannot tell whether it ever had
     * the secret (an orphan). Until a target holds one, it is no consumer's key: I3 does not ask
     * targets to hold it and I4 lets it be deactivated or deleted at once; but it must not stay
     * Active, unheld, for longer than `every` (I8: recovery without a manual step).
     */
    private readonly orphans = new Set<string>();
    /**
     * Keys a saved state lists as `unconfirmed`: a mint whose target write failed (the run went on
     * under `--continue-on-error`). The program retires such a key rather than finish its mint
     * (a bridged provider saves the planned value of a failed update, so finishing would write
     * nothing: docs/failures.md), rolling every target back to the previous key. I3 then asks
     * targets for the newest Active key that is not being retired, and I4 lets the retired key be
     * deactivated once no target has held it for a full `overlap` (jobs that read it before the
     * rollback have finished), with the value: when the rollback was first seen complete.
     */
    private readonly retiring = new Map<string, { rolledBackAt?: number }>();
    /** Orphans already reported as left Active. */
    private readonly orphanReported = new Set<string>();
    /** Access keys the program takes over by id (`import`) in the current run: it manages them from this run on. */
    private importedThisRun = new Set<string>();
    /** Access keys created in the current run. */
    private createdThisRun: string[] = [];
    /** Keys some target has held. */
    private readonly heldEver = new Set<string>();
    /** The last run that counts for I5's gap: a successful one, or one that failed with no injected fault. */
    private lastSuccess?: number;
    private longestGapMs = 0;
    /** The last run with an injected fault: a key current since before it is under I8, not I5. */
    private lastFaultAt?: number;
    /** Targets holding an id whose secret does not match it, after a run ended. */
    tornTargets: { at: string; target: string; accessKeyId?: string }[] = [];
    /** Oldest key age (ms) any target held at a check. */
    oldestTargetKeyAgeMs = 0;
    private secretPattern?: RegExp;
    private secretCount = 0;

    constructor(private readonly world: World) {}

    /** Start checking a run. `previous` is the state the run reads (the saved `rotation` output). */
    startRun(index: number, at: number, sets: SetModel[], previous: RotationState | undefined): void {
        this.runIndex = index;
        this.runAt = at;
        this.sets = sets;
        this.previous = previous;
        for (const set of sets) {
            for (const id of (previous?.sets[set.name] as { unconfirmed?: string[] } | undefined)?.unconfirmed ?? []) {
                if (!this.retiring.has(id)) this.retiring.set(id, {});
            }
        }
        this.run = emptyCounts();
        this.createdThisRun = [];
        this.importedThisRun = new Set();
        // The first scheduled run counts as the start of the first gap: faults that delay the
        // first successful run delay the first key's push just as they delay later ones.
        this.lastSuccess ??= at;
        // Freshness peaks just before a run: the key has aged for the whole gap.
        this.checkFreshness(at);
    }

    /** Count a check of `id`; record a violation when `ok` is false. */
    check(id: InvariantId, ok: boolean, message: () => string): boolean {
        this.totals[id].checked++;
        this.run[id].checked++;
        if (ok) return true;
        this.totals[id].failed++;
        this.run[id].failed++;
        if (this.violations.length < this.maxListed) {
            const text = message();
            if (!this.violations.some((v) => v.run === this.runIndex && v.invariant === id && v.message === text)) {
                this.violations.push({ invariant: id, at: iso(this.runAt), run: this.runIndex, message: text });
            }
        }
        return false;
    }

    /** A violation found after the fact (a broken CI job), attributed to run `run` at `at` (ISO). */
    record(id: InvariantId, run: number, at: string, message: string): void {
        this.totals[id].checked++;
        this.totals[id].failed++;
        if (this.violations.length < this.maxListed) this.violations.push({ invariant: id, at, run, message });
    }

    private isOrphan(accessKeyId: string): boolean {
        return this.orphans.has(accessKeyId) && !this.heldEver.has(accessKeyId);
    }

    private setOfUser(user: string | undefined): SetModel | undefined {
        return this.sets.find((s) => s.user === user);
    }

    private held(view: TargetView): { accessKeyId?: string; secret?: string; key?: FakeKey } {
        const c = view.holds(this.world.stores);
        return { ...c, key: this.world.iam.history.get(c.accessKeyId ?? "") };
    }

    /** Engine hook, before the world changes: the preconditions of I1, I4 and I9. */
    beforeOperation(op: PendingOperation): void {
        if (op.type !== "aws:iam/accessKey:AccessKey") return;
        const set = this.setOfUser(op.user);
        const iam = this.world.iam;
        // DESIGN §2: `paused: true` freezes a set, its first run included.
        if (set?.paused && op.action !== "import") this.check("I9", false, () => `the program took a step for set "${set.name}" while it is paused: ${op.action} ${op.name}`);
        if (op.action === "create") {
            const keys = iam.users.get(op.user!)?.keys ?? [];
            this.check("I1", keys.length < 2, () => `the program created a third access key for ${op.user} (${op.name}) while ${keys.map((k) => `${k.accessKeyId} (${k.status})`).join(" and ")} exist`);
            const known = new Set([...(set ? (this.previous?.sets[set.name]?.keys ?? []).map((k) => k.accessKeyId) : []), ...this.importedThisRun]);
            const unknown = keys.filter((k) => !known.has(k.accessKeyId));
            this.check("I9", unknown.length === 0, () => `the program minted ${op.name} while IAM shows ${unknown.map((k) => k.accessKeyId).join(", ")}, which the rotation state does not manage`);
            return;
        }
        const key = iam.key(op.accessKeyId);
        if (!key || !set) return;
        const orphan = this.isOrphan(key.accessKeyId);
        if (op.action === "update" && op.status === "Inactive" && key.status === "Active") {
            if (set.revoke) this.revokeWindow.add(set.name);
            const retiring = this.retiring.get(key.accessKeyId);
            if (!set.revoke && !orphan && retiring) {
                const since = retiring.rolledBackAt;
                for (const view of set.targets) {
                    const held = this.held(view);
                    this.check(
                        "I4",
                        held.accessKeyId !== key.accessKeyId && held.key?.status === "Active",
                        () => `retired key ${key.accessKeyId} was deactivated while ${view.label} holds ${held.accessKeyId ?? "no key"}, not another Active key`,
                    );
                }
                this.check(
                    "I4",
                    since !== undefined && this.runAt - since >= set.overlapMs,
                    () => `retired key ${key.accessKeyId} was deactivated ${since === undefined ? "before every target was rolled back from it" : `${Math.round((this.runAt - since) / 60000)} minutes after the rollback, before overlap (${Math.round(set.overlapMs / 60000)} minutes)`}`,
                );
            } else if (!set.revoke && !orphan) {
                for (const view of set.targets) {
                    const held = this.held(view);
                    this.check(
                        "I4",
                        held.accessKeyId !== key.accessKeyId && held.key !== undefined && held.key.createdAt > key.createdAt,
                        () => `key ${key.accessKeyId} was deactivated while ${view.label} holds ${held.accessKeyId ?? "no key"}, not a newer key`,
                    );
                }
                const others = iam.listKeys(set.user).filter((k) => k !== key && k.status === "Active");
                this.check("I9", others.length > 0, () => `key ${key.accessKeyId} was deactivated although it is the last Active key of ${set.user}`);
            }
        }
        if (op.action === "delete" && !orphan) {
            const inactiveFor = key.deactivatedAt === undefined ? -1 : this.runAt - key.deactivatedAt;
            this.check(
                "I4",
                key.status === "Inactive" && inactiveFor >= set.retireAfterMs,
                () =>
                    key.status !== "Inactive"
                        ? `key ${key.accessKeyId} was deleted while Active`
                        : `key ${key.accessKeyId} was deleted after ${Math.round(inactiveFor / 60000)} minutes inactive, before retireAfter (${Math.round(set.retireAfterMs / 60000)} minutes)`,
            );
        }
    }

    /** Engine hook, after an operation: I1 and I2 must hold at every instant. */
    afterOperation(op: Operation, __: RunContext): void {
        if (op.action === "create" && op.accessKeyId) this.createdThisRun.push(op.accessKeyId);
        this.checkKeysAndTargets();
    }

    private checkKeysAndTargets(): void {
        for (const set of this.sets) {
            const keys = this.world.iam.users.get(set.user)?.keys ?? [];
            this.check("I1", keys.length <= 2, () => `${set.user} has ${keys.length} access keys`);
            // A target's key counts as held also in a revoke's window (I2 is waived there, not the
            // record of what targets held: a failed mint's key finished by a revoke is then no orphan).
            for (const view of set.targets) {
                const id = this.held(view).accessKeyId;
                if (id !== undefined) this.heldEver.add(id);
            }
            if (this.revokeWindow.has(set.name)) continue;
            for (const view of set.targets) {
                const held = this.held(view);
                if (held.accessKeyId === undefined && !this.pushed.has(`${set.name}\u0000${view.label}`)) continue;
                this.check("I2", held.key !== undefined && held.key.deletedAt === undefined && held.key.status === "Active", () =>
                    held.accessKeyId === undefined
                        ? `${view.label} holds no key`
                        : `${view.label} holds key ${held.accessKeyId}, which is ${held.key?.deletedAt !== undefined ? "deleted" : held.key ? held.key.status : "unknown to IAM"}`,
                );
            }
        }
    }

    /**
     * I5: no target holds a key longer than one step per run can deliver (docs/timing.md "How fresh keys
     * stay"): `max(every, overlap + gateTimeout + retireAfter + 2 × G) + G`, G the longest gap
     * between successful runs; with runs on time that is `every + G`. Checked for every key that
     * saw no injected fault while it was current.
     */
    private checkFreshness(at: number): void {
        const gap = Math.max(this.longestGapMs, this.lastSuccess === undefined ? 0 : at - this.lastSuccess);
        for (const set of this.sets) {
            // An orphan must be pushed or retired within one delivered rotation once faults stop.
            const bound = Math.max(set.everyMs, set.cycleMs + 2 * gap) + gap;
            for (const key of this.world.iam.users.get(set.user)?.keys ?? []) {
                if (key.status !== "Active" || !this.isOrphan(key.accessKeyId) || this.orphanReported.has(key.accessKeyId)) continue;
                const since = Math.max(key.createdAt, this.lastFaultAt ?? -Infinity);
                if (at - since <= bound) continue;
                this.orphanReported.add(key.accessKeyId);
                this.check(
                    "I8",
                    false,
                    () => `key ${key.accessKeyId}, created by a run that failed, has been Active for ${hours(at - key.createdAt)} (${hours(at - since)} since the last fault) and no target ever held it: it is neither pushed nor retired`,
                );
            }
            for (const view of set.targets) {
                const held = this.held(view);
                if (!held.key) continue;
                const age = at - held.key.createdAt;
                this.oldestTargetKeyAgeMs = Math.max(this.oldestTargetKeyAgeMs, age);
                if (set.paused) continue;
                // Freshness is a promise about normal operation. A fault while the key was current
                // can delay its rotation by more than one gap (a failed delete, then a run that
                // waits for the engine to finish it); I8 governs then, and the next key is checked.
                if (this.lastFaultAt !== undefined && this.lastFaultAt >= held.key.createdAt) continue;
                const bound = Math.max(set.everyMs, set.cycleMs + 2 * gap) + gap;
                this.check(
                    "I5",
                    age <= bound,
                    () =>
                        `${view.label} holds key ${held.accessKeyId}, ${hours(age)} old: more than ${hours(bound)}, max(every (${hours(set.everyMs)}), overlap + gateTimeout + retireAfter + 2 × G) + G, where G = ${hours(gap)} is the longest gap between runs`,
                );
            }
        }
    }

    /**
     * After a run: I3 (a successful run leaves every target on the newest Active key), I5, I7
     * (no secret in outputs, logs or errors) and I8 (a run fails only because of an injected fault).
     */
    endRun(result: EngineRun, injected: string[]): void {
        if (!result.ok) for (const id of this.createdThisRun) this.orphans.add(id);
        this.checkKeysAndTargets();
        for (const set of this.sets) {
            for (const view of set.targets) {
                const held = this.held(view);
                if (held.accessKeyId !== undefined && held.key && held.key.secret !== held.secret) {
                    this.tornTargets.push({ at: iso(this.runAt), target: view.label, accessKeyId: held.accessKeyId });
                }
            }
        }
        // I5 allows `every` plus the longest gap between runs. A run that failed because of an
        // injected fault (like a missed one) widens the gap; a run that failed on its own (the
        // last-used gate giving up) is a run that happened, so it cannot excuse a stale key.
        if (injected.length > 0) this.lastFaultAt = this.runAt;
        if (result.ok || injected.length === 0) {
            if (this.lastSuccess !== undefined) this.longestGapMs = Math.max(this.longestGapMs, this.runAt - this.lastSuccess);
            this.lastSuccess = this.runAt;
        }
        // A key the run took over by id after some target had held it (a failed first run's
        // key pushed, then a later run's key replaced by it: `keepOlder` in the plan) is retired
        // like an `unconfirmed` one: targets were rolled back from it, so the same rule holds.
        const saved = (result.outputs as { rotation?: RotationState } | undefined)?.rotation;
        for (const set of this.sets) {
            for (const k of saved?.sets?.[set.name]?.keys ?? []) {
                if (k.adoptedAt && this.heldEver.has(k.accessKeyId) && !this.retiring.has(k.accessKeyId)) this.retiring.set(k.accessKeyId, {});
            }
        }
        // A retired key (see `retiring`) that no target holds any more is on its way out: from the
        // end of the run whose writes rolled the targets back, whether or not that run failed
        // elsewhere (consumers read what the targets hold, whatever the run's outcome).
        for (const set of this.sets) {
            const heldNow = new Set(set.targets.map((view) => this.held(view).accessKeyId));
            for (const [id, r] of this.retiring) {
                if (r.rolledBackAt === undefined && !heldNow.has(id) && (this.world.iam.users.get(set.user)?.keys ?? []).some((k) => k.accessKeyId === id)) r.rolledBackAt = this.runAt;
            }
        }
        if (result.ok) {
            this.revokeWindow.clear();
            for (const set of this.sets) {
                const heldNow = new Set(set.targets.map((view) => this.held(view).accessKeyId));
                const active = (this.world.iam.users.get(set.user)?.keys ?? []).filter(
                    (k) => k.status === "Active" && !this.isOrphan(k.accessKeyId) && !(this.retiring.get(k.accessKeyId)?.rolledBackAt !== undefined && !heldNow.has(k.accessKeyId)),
                );
                const newest = active.reduce<FakeKey | undefined>((a, k) => (!a || k.createdAt > a.createdAt ? k : a), undefined);
                for (const view of set.targets) {
                    const held = this.held(view);
                    // A set with no key yet (paused before its first mint), or only orphans, has nothing for targets to hold.
                    if (newest === undefined && held.accessKeyId === undefined) continue;
                    this.pushed.add(`${set.name}\u0000${view.label}`);
                    this.check(
                        "I3",
                        newest !== undefined && held.accessKeyId === newest.accessKeyId && held.secret === newest.secret,
                        () => `after a successful run ${view.label} holds ${held.accessKeyId ?? "no key"}${held.key && held.secret !== held.key.secret ? " with a secret that does not match it" : ""}, not the newest Active key ${newest?.accessKeyId ?? "(none)"}`,
                    );
                }
            }
            this.checkFreshness(this.runAt);
        }
        this.checkNoSecrets("stack outputs", result.outputs ? [JSON.stringify(result.outputs)] : []);
        this.checkNoSecrets("a log line", result.logs);
        this.checkNoSecrets("an error message", result.errors);
        if (!result.ok) {
            const gate = /gate timed out/.test(result.failure ?? "");
            this.check("I8", injected.length > 0 || gate, () => `the run failed with no injected fault, so it needs a manual step: ${firstLine(result.failure ?? "")}`);
        }
    }

    /** I6: a second run at the same instant changed nothing. */
    checkTwin(twin: EngineRun): void {
        this.check("I6", twin.operations.length === 0, () => `a second run at the same instant made ${twin.operations.length} change(s): ${twin.operations.map((o) => `${o.action} ${o.name}`).join(", ")}`);
    }

    /** Engine hook: a key the program takes over by id in this run is one it manages (I9). */
    declaresImport(type: string, _name: string, id: string): void {
        if (type === "aws:iam/accessKey:AccessKey") this.importedThisRun.add(id);
    }

    /** Engine hook: I7 for resource inputs (a secret must arrive wrapped as a secret). */
    inspectInputs(type: string, name: string, inputs: Record<string, unknown>): void {
        const plainStrings: string[] = [];
        collectPlainStrings(inputs, plainStrings);
        this.checkNoSecrets(`the non-secret inputs of ${name} (${type})`, plainStrings);
    }

    /** Engine hook: I7 for the state a dynamic provider keeps (its outputs the engine does not encrypt). */
    inspectState(type: string, name: string, plaintextOutputs: Record<string, unknown>): void {
        const plainStrings: string[] = [];
        collectPlainStrings(plaintextOutputs, plainStrings);
        this.checkNoSecrets(`the state of ${name} (${type})`, plainStrings);
    }

    private checkNoSecrets(where: string, texts: string[]): void {
        const pattern = this.pattern();
        for (const text of texts) {
            const found = pattern !== undefined && pattern.test(text);
            // Name the key whose secret leaked, never the secret.
            if (!this.check("I7", !found, () => `the secret access key of ${this.leakedKey(text)} appears in plaintext in ${where}`)) return;
        }
        if (texts.length === 0) this.check("I7", true, () => "");
    }

    /** `text` with every known secret replaced: reports must not carry a leak further. */
    redact(text: string): string {
        const pattern = this.pattern();
        return pattern ? text.replace(new RegExp(pattern.source, "g"), "[secret redacted]") : text;
    }

    private leakedKey(text: string): string {
        return [...this.world.iam.history.values()].find((k) => text.includes(k.secret))?.accessKeyId ?? "a key";
    }

    private pattern(): RegExp | undefined {
        const secrets = this.world.secrets();
        if (secrets.length === 0) return undefined;
        if (secrets.length !== this.secretCount) {
            this.secretCount = secrets.length;
            this.secretPattern = new RegExp(secrets.map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|"));
        }
        return this.secretPattern;
    }
}

const secretSig = "4dabf18193072939515e22adb298388d";

/** Strings of an input tree that are not inside a secret (including serialized closures). */
function collectPlainStrings(value: unknown, out: string[]): void {
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) value.forEach((v) => collectPlainStrings(v, out));
    else if (value && typeof value === "object") {
        if (secretSig in (value as object)) return;
        for (const v of Object.values(value)) collectPlainStrings(v, out);
    }
}

function hours(msValue: number): string {
    const h = msValue / 3_600_000;
    return h >= 48 ? `${(h / 24).toFixed(1)} days` : `${h.toFixed(1)} hours`;
}

function firstLine(text: string): string {
    return text.split("\n").slice(0, 3).join(" ").slice(0, 400);
}
