import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DateTime } from "luxon";
import { storeFor } from "../../providers";
import { isKeyArn, keyPolicy } from "../../providers/kms/spec";
import type { KeyMaterial } from "../../providers/types";
import { inPlaceAfter } from "../../providers/in-place";
import type { CredentialSetConfig } from "../core/config";
import { age, type Decision, type NextStep, type StepName } from "../core/plan";
import type { KeyRecord, Phase, SetState } from "../core/state";
import { providerSdkConfig } from "./aws";
import type { SavedSetState } from "./program";
import { KeyCheck, TargetCheck, type TargetCheckArgs } from "./verify";

/** Arguments of {@link CredentialSet}: the validated set and the decision for this run. */
export interface CredentialSetArgs {
    config: CredentialSetConfig;
    decision: Decision;
    /** The instant this run acts at (for key ages). */
    now: DateTime;
    /** Provider of the set's dynamic resources (checks, GitLab variables); see `DynamicProvider`. */
    dynamicProvider?: pulumi.ProviderResource;
    /** Region for the key check's STS call. Default: the AWS provider's (`aws:region`, then the environment). */
    region?: string;
}

/** A key as the outputs show it: no secret material. */
export interface KeySummary {
    generation: number;
    accessKeyId: string;
    status: "Active" | "Inactive";
    createdAt: string;
    /** Time since creation, ISO-8601 (e.g. `P6DT3H`). */
    age: string;
}

/** Per-set stack output. */
export interface SetSummary {
    user: string;
    userArn: string;
    /** The access key id every target holds. */
    accessKeyId: string;
    generation: number;
    phase: Phase;
    paused: boolean;
    /** What this run did and why. */
    step: StepName;
    reason: string;
    next: NextStep;
    keys: KeySummary[];
    /** Labels of the targets, never their values. */
    targets: string[];
    warnings: string[];
}

/**
 * One credential set: a dedicated IAM user, one access key per live generation, and the
 * targets that hold the current key. The rotation decision is made before construction (see
 * `rotation/core/plan.ts`); this component only turns it into resources.
 */
export class CredentialSet extends pulumi.ComponentResource {
    readonly user: aws.iam.User;
    /** The key resources by generation. */
    readonly keys: Map<number, aws.iam.AccessKey>;
    /**
     * The key the targets hold. `secretAccessKey` is a Pulumi secret. Absent, like the key check
     * and the targets, while the set has no key (paused before its first mint).
     */
    readonly current?: KeyMaterial;
    /** Step 2's check of the current key (STS). */
    readonly keyCheck?: KeyCheck;
    /** The check that targets took the current key; absent when no store can tell. */
    readonly targetCheck?: TargetCheck;
    /**
     * The set's rotation state after this run (goes into the `rotation` output): the decided state
     * once every step of the set succeeded, else the previous one (none on a failed first run).
     */
    readonly state: pulumi.Output<SavedSetState | undefined>;
    /** Whether every step of the set succeeded this run. */
    readonly completed: pulumi.Output<boolean>;
    /**
     * Keys this run created that the next run must finish because the set's run failed after the
     * create (empty when the set completed): its entry in the `rotation` output's `recorded`.
     */
    readonly recorded: pulumi.Output<string[]>;
    /**
     * After a failed first run (no previous state to hold them): keys this run created whose target
     * write failed at a store that saves the planned value. Its entry in the `rotation` output's
     * top-level `unconfirmed`; a set with state lists them in its own entry.
     */
    readonly unconfirmedFirst: pulumi.Output<string[]>;
    /** The set's summary output. */
    readonly summary: pulumi.Output<SetSummary>;
    /** The KMS key the set manages (`kms.create`), and its alias. */
    readonly kmsKey?: aws.kms.Key;
    readonly kmsAlias?: aws.kms.Alias;
    /** The ARN of the set's KMS key (managed or existing): the default key of its targets. */
    readonly kmsKeyArn?: pulumi.Output<string>;

    constructor(name: string, args: CredentialSetArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("ci-key-rotation:index:CredentialSet", name, {}, opts);
        const { config, decision, now } = args;
        const child = { parent: this };
        const dynamic = { ...child, ...(args.dynamicProvider ? { provider: args.dynamicProvider } : {}) };

        this.user = new aws.iam.User(
            `${name}-user`,
            {
                name: config.user.name,
                path: config.user.path,
                permissionsBoundary: config.user.permissionsBoundary,
                tags: { ...config.user.tags, ManagedBy: "ci-key-rotation", CredentialSet: config.name },
            },
            child,
        );
        for (const arn of config.user.managedPolicyArns) {
            // Named by the policy, not its position: reordering the list must not detach anything.
            new aws.iam.UserPolicyAttachment(`${name}-policy-${policySlug(arn)}`, { user: this.user.name, policyArn: arn }, child);
        }
        if (config.user.inlinePolicy) {
            new aws.iam.UserPolicy(`${name}-inline-policy`, { user: this.user.name, name: `${config.name}-ci`, policy: config.user.inlinePolicy }, child);
        }

        // Keys are declared oldest first, and each key depends on the keys before it: the engine runs
        // independent steps in parallel, not in registration order (pulumi/pulumi
        // pkg/resource/deploy/step_executor.go runs steps as their dependencies allow; the Node SDK
        // sends a registration only once its `dependsOn` URNs resolved, sdk/nodejs/runtime/resource.ts
        // `prepareResource`). So an old key is switched off (revoke) before the new one exists, and
        // never waits on a push. AWS's limit of two keys per user holds mid-run for the same reason.
        this.keys = new Map();
        const earlier: aws.iam.AccessKey[] = [];
        for (const key of decision.keys) {
            const resource = new aws.iam.AccessKey(
                keyResourceName(name, key.generation),
                { user: this.user.name, status: key.status },
                // An adopted key is imported in the run that adopts it (import needs the declared
                // inputs to match the key: its user and its current status). Its `secret` stays
                // unknown, which is why the plan never makes it the key targets hold.
                { ...child, dependsOn: [...earlier], additionalSecretOutputs: ["secret"], ...(key.import ? { import: key.import } : {}) },
            );
            this.keys.set(key.generation, resource);
            earlier.push(resource);
        }
        if (config.kms?.create) {
            const kms = config.kms;
            // The contexts of the targets that encrypt with the set's key: one Decrypt grant each.
            const contexts = config.targets.flatMap(({ target }) => ("encrypt" in target && target.encrypt && target.encrypt.key === undefined ? [target.encrypt.context] : []));
            // Account and partition from the user's ARN (arn:<partition>:iam::<account>:user/...):
            // the key lives in the same account as the set's user; no extra lookup.
            const policy = this.user.arn.apply((arn) => {
                const [, partition, , , account] = arn.split(":");
                return JSON.stringify(keyPolicy({ partition, account, decrypters: kms.decrypters, contexts }));
            });
            // Neither `protect` nor `retainOnDelete`. Nothing the program sets replaces the key:
            // terraform-provider-aws internal/service/kms/key.go marks only `custom_key_store_id`,
            // `customer_master_key_spec`, `key_usage`, `multi_region` and `xks_key_id` ForceNew, and
            // the program sets none of them (their defaults are fixed); policy, description,
            // rotation and the deletion window update in place. Even a replacement would not strand
            // a consumer: the ciphertexts name the key by this ARN, so they are made again with the
            // new key in the same run. Deleting (the set or its `kms` removed) is
            // `ScheduleKeyDeletion` with `deletionWindowInDays` (`resourceKeyDelete`): the key can be
            // recovered with `aws kms cancel-key-deletion` for that long (default 30 days).
            // `retainOnDelete` would leave a key with a policy naming decrypters nobody manages;
            // `protect` would block removing a set until someone edits state by hand.
            this.kmsKey = new aws.kms.Key(
                `${name}-kms-key`,
                {
                    description: `ci-key-rotation: encrypts the CI access key of credential set "${config.name}" for its targets`,
                    enableKeyRotation: true,
                    deletionWindowInDays: kms.deletionWindowInDays,
                    policy,
                    tags: { ManagedBy: "ci-key-rotation", CredentialSet: config.name },
                },
                child,
            );
            // terraform-provider-aws internal/service/kms/alias.go: `name` is ForceNew, a new target
            // key is `UpdateAlias` in place; Delete is `DeleteAlias` (the key stays).
            this.kmsAlias = new aws.kms.Alias(`${name}-kms-alias`, { name: kms.alias, targetKeyId: this.kmsKey.keyId }, child);
            this.kmsKeyArn = this.kmsKey.arn;
        } else if (config.kms) {
            // An existing key, as its ARN: the other stores' resources want it, and DescribeKey
            // (aws.kms.getKey) fails the run early when the key is missing or not allowed.
            const ref = config.kms.key;
            this.kmsKeyArn = isKeyArn(ref) ? pulumi.output(ref) : aws.kms.getKeyOutput({ keyId: ref }, { parent: this }).arn;
        }

        const currentKey = this.keys.get(decision.current);
        if (!currentKey) {
            // No key yet (paused before the first mint): nothing to check or to write to targets.
            this.state = pulumi.output(decision.state);
            this.completed = pulumi.output(true);
            this.recorded = pulumi.output([]);
            this.unconfirmedFirst = pulumi.output([]);
            this.summary = pulumi.all([this.user.name, this.user.arn]).apply(([user, userArn]) => ({
                user,
                userArn,
                accessKeyId: "",
                generation: 0,
                phase: decision.state.phase,
                paused: decision.paused,
                step: decision.step,
                reason: decision.reason,
                next: decision.next,
                keys: [],
                targets: config.targets.map(({ target, spec }) => spec.label(target)),
                warnings: decision.warnings,
            }));
            this.registerOutputs({ state: this.state, summary: this.summary });
            return;
        }
        // Step 2's check, declared every run for the current key: unchanged inputs mean no diff and
        // no STS call; a new key makes the engine run it before anything that reads its outputs.
        this.keyCheck = new KeyCheck(
            `${name}-key-check`,
            {
                set: config.name,
                accessKeyId: currentKey.id,
                // The engine marks `secret` secret in a real run; wrap it anyway so no path can leak it.
                secretAccessKey: pulumi.secret(currentKey.secret),
                userArn: this.user.arn,
                region: args.region ?? providerSdkConfig().region,
                timeoutMs: config.policy.validateTimeout.toMillis(),
            },
            dynamic,
        );
        // Targets read the key through the check's outputs, so they are written only once the key
        // is known to authenticate: a key that never works never reaches a target.
        const checkedId = this.keyCheck.accessKeyId;
        this.current = {
            generation: decision.current,
            accessKeyId: checkedId,
            secretAccessKey: pulumi.secret(pulumi.all([checkedId, currentKey.secret]).apply(([, secret]) => secret)),
        };

        const shared = new Map<string, unknown>();
        const labels: string[] = [];
        const writes: TargetCheckArgs["writes"] = [];
        /** Every resource the targets declared: the target check runs after all of them. */
        const targetResources: pulumi.Resource[] = [];
        for (const { target, path } of config.targets) {
            const store = storeFor(target.type);
            const label = store.label(target);
            labels.push(label);
            const declared = store.declare(target, {
                setName: config.name,
                resourceName: slug(label),
                previousResourceNames: [`${name}-${slug(label)}`],
                parent: this,
                key: this.current,
                ...(this.kmsKeyArn ? { kmsKeyArn: this.kmsKeyArn } : {}),
                configPath: path,
                rewriteTrigger: decision.state.rewriteTrigger,
                dynamicProvider: args.dynamicProvider,
                once: <R>(key: string, make: () => R): R => {
                    if (!shared.has(key)) shared.set(key, make());
                    return shared.get(key) as R;
                },
            });
            targetResources.push(...declared);
            for (const w of store.confirmWrites?.(target, declared) ?? []) {
                writes.push({ target: label, path, what: w.what, writtenAt: w.writtenAt, accessKeyId: w.accessKeyId });
            }
        }
        if (writes.length > 0) {
            // "Targets hold it": it fails the run naming any target the evidence shows was not
            // written. Its evidence inputs cover only the stores that report some; `dependsOn` makes
            // the engine run it after every target resource, whatever the store.
            this.targetCheck = new TargetCheck(
                `${name}-target-check`,
                { set: config.name, accessKeyId: currentKey.id, keyCreatedAt: currentKey.createDate, writes },
                { ...dynamic, dependsOn: [this.keyCheck, ...targetResources] },
            );
        }

        // The state this run reports must only advance when everything the set did this run
        // succeeded; when any step of the set fails, the set's entry is its previous state, and the
        // other sets' entries still advance.
        // - A failed update still saves the stack outputs the program registered (pulumi/pulumi
        //   PR #15754, CLI 3.112: pkg/resource/deploy/step_executor.go `executeRegisterResourceOutputs`
        //   defers the stack's outputs and, on error, keeps old outputs only where no new one was
        //   registered). The Node SDK registers the stack's outputs once every one of them resolved,
        //   and none if one rejects (sdk/nodejs/runtime/stack.ts `Stack.initialize`/`massage`).
        // - With `pulumi up --continue-on-error` (CLI 3.114, PR #15740) a failed step no longer
        //   cancels the others (step_executor.go `cancelDueToError`: `step.Fail()` instead of
        //   `se.cancel()`); the engine answers the failed registration with `Result.FAIL`, and skips
        //   (`Result.SKIP`) every step that depends on it (deployment_executor.go `handleSingleEvent`,
        //   `doesStepDependOn`). The Node SDK (≥ 3.256, PR #23844) then rejects that resource's
        //   outputs (sdk/nodejs/runtime/resource.ts `registerResource`: `resultFailed`), so every
        //   Output built from them rejects, and `pulumi.recover` (PR #23642) turns the rejection
        //   into the fallback (sdk/nodejs/output.ts `recover`).
        // So the state waits on the key check, every key's status, every target resource and the
        // target check, and recovers to the previous state if any of them failed or was skipped.
        // Without `--continue-on-error` the engine cancels the rest of the update and no set's
        // state advances in that run (the previous behaviour; docs/failures.md).
        const mintedKey = decision.minted === undefined ? undefined : this.keys.get(decision.minted)!;
        const mintedId = mintedKey ? mintedKey.id : pulumi.output("");
        const settled = pulumi.all([
            this.keyCheck.id,
            this.targetCheck?.id ?? "",
            this.kmsAlias?.id ?? "",
            ...[...this.keys.values()].map((k) => k.status),
            ...targetResources.map((r) => r.urn),
        ]);
        const advanced = pulumi.all([mintedId, settled]).apply(([id]): SetState => ({
            ...decision.state,
            keys: decision.state.keys.map((k): KeyRecord => (k.generation === decision.minted ? { ...k, accessKeyId: id } : k)),
        }));
        const failed = (o: pulumi.Output<unknown>): pulumi.Output<boolean> => pulumi.recover(o.apply(() => false), () => true);
        // Whether a target whose provider saves the planned value on a failed update may now be
        // recorded as holding the new key GitHub refused: the key check passed (so targets were
        // written with the new key) and a target resource the bridged provider updates in place
        // failed (not skipped: see below). The bridged GitHub provider returns the planned state with the error (pulumi-terraform-bridge
        // pkg/tfbridge/provider.go `Update`, `initializationError`), which the engine saves
        // (pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go `Update`); dynamic
        // providers return no state with an error, so a GitLab write is simply retried.
        // The same holds when every write succeeded but the target check found a target without
        // the key: the engine's record of that target already claims the key (a refused write of an
        // earlier run, whose outcome that run could not save: a kill), so declaring it again
        // writes nothing and the check would fail on every later run.
        // Only a resource the bridged provider updates in place saves the planned value, and only
        // when the provider was asked: a resource that failed because one it waits on failed (a
        // GitHub secret after its KMS ciphertext) was skipped, and its record is unchanged
        // (providers/in-place.ts). Taking a skip for a refused write would turn the next run's
        // writes the other way, toward the value the record already claims: no write at all.
        const inPlace = targetResources.flatMap((r) => {
            const after = inPlaceAfter(r);
            return after ? [{ resource: r, after: after.map((a) => targetResources.indexOf(a)) }] : [];
        });
        const staleTarget = pulumi
            .all([failed(this.keyCheck.id), this.targetCheck ? failed(this.targetCheck.id) : false, ...targetResources.map((r) => failed(r.urn))])
            .apply(([checkFailed, targetCheckFailed, ...targetsFailed]) => {
                const refused = inPlace.some(({ resource, after }) => targetsFailed[targetResources.indexOf(resource)] && !after.some((i) => i >= 0 && targetsFailed[i]));
                return !checkFailed && (refused || (targetCheckFailed && !targetsFailed.some(Boolean)));
            });
        // The key targets are written with in this run: the key it mints, or the key of an earlier
        // failed mint it finishes (a key other than the one targets held after the previous run).
        const held = [...(decision.previous?.keys ?? [])].reverse().find((k) => k.status === "Active" && !k.adoptedAt)?.accessKeyId;
        const finishing = decision.keys.find((k) => k.generation === decision.current)?.accessKeyId;
        const minted = mintedKey
            ? pulumi.recover<string | undefined>(mintedKey.id, () => undefined)
            : pulumi.output<string | undefined>(finishing !== undefined && finishing !== held ? finishing : undefined);
        // Keys whose status change failed (or was skipped) this run: the bridged AWS provider saves
        // the planned status of a failed UpdateAccessKey (terraform-provider-aws
        // internal/service/iam/access_key.go `resourceAccessKeyUpdate` returns the error without
        // `d.Partial`; pulumi-terraform-bridge pkg/tfbridge/provider.go `Update`), so the next run
        // must first set the engine's record back (`PlanInput.statusFailed`). A key listed before
        // stays listed until its declared status is applied.
        const before = new Map((decision.previous?.keys ?? []).map((k) => [k.accessKeyId, k.status]));
        const changing = decision.keys.filter((k) => k.accessKeyId !== undefined && before.has(k.accessKeyId) && (before.get(k.accessKeyId) !== k.status || decision.statusFailed?.includes(k.accessKeyId)));
        const statusFailed = pulumi
            .all(changing.map((k) => failed(this.keys.get(k.generation)!.status)))
            .apply((outcomes) => changing.filter((_, i) => outcomes[i]).map((k) => k.accessKeyId!));
        // A run that rolled targets back from an unconfirmed key declared the old key everywhere; if
        // one of its bridged writes failed too, the engine's record of that target now claims the
        // old key (the planned value again) while the store may hold the new one, so rolling back
        // once more would write nothing there. The next run writes the other way instead: it
        // finishes the mint with the unconfirmed key, whose secret the engine holds (`recorded`),
        // a real difference for every target the rollback run declared. If that run fails the
        // same way, the key is unconfirmed again: each retry writes the value the engine's record
        // does not claim.
        const rolledBack = (decision.unconfirmed ?? []).filter((id) => decision.keys.some((k) => k.accessKeyId === id));
        const stillUnconfirmed = (stale: boolean) => (decision.unconfirmed ?? []).filter((id) => !(stale && rolledBack.includes(id)));
        // Saved in the set's entry, or, after a failed first run (no entry), at the top of `rotation`.
        const unconfirmedIds = pulumi.all([staleTarget, minted]).apply(([stale, id]) => [...new Set([...stillUnconfirmed(stale), ...(stale && id ? [id] : [])])]);
        const fallback = pulumi.all([unconfirmedIds, statusFailed]).apply(([unconfirmed, statusIds]): SavedSetState | undefined => {
            if (!decision.previous) return undefined;
            return { ...decision.previous, ...(unconfirmed.length > 0 ? { unconfirmed } : {}), ...(statusIds.length > 0 ? { statusFailed: statusIds } : {}) };
        });
        this.state = pulumi.recover<SavedSetState | undefined>(advanced, () => fallback);
        // The new key resolves only once the engine recorded it with its secret: a create's
        // outputs reach the program after the engine saved the step to the snapshot
        // (pulumi/pulumi pkg/resource/deploy/step_executor.go `executeStep`: `stepComplete` runs
        // after `OnResourceStepPost`). Under `--continue-on-error` a step failing elsewhere does
        // not touch the key's own outputs (only the failed resource's and its dependants' reject,
        // sdk/nodejs/runtime/resource.ts `registerResource`). So when the set fails after the
        // create, the next run finishes the mint with this key (`PlanInput.recorded`) instead of
        // taking it for one whose secret is unknown, also after a failed first run, which has no
        // previous state to fall back to. A key whose targets may hold the refused value is
        // `unconfirmed` instead. Kept while IAM lists the key and the set keeps failing.
        const recordedNow = pulumi
            .all([staleTarget, minted])
            .apply(([stale, id]) => [...new Set([...(decision.recorded ?? []).filter((r) => !(stale && r === id)), ...(id && !stale ? [id] : []), ...(stale ? rolledBack : [])])]);
        this.recorded = pulumi.recover(advanced.apply((): string[] => []), () => recordedNow);
        this.unconfirmedFirst = pulumi.recover(advanced.apply((): string[] => []), () => unconfirmedIds.apply((ids) => (decision.previous ? [] : ids)));
        this.completed = pulumi.recover(advanced.apply(() => true), () => false);
        const done = pulumi.all([this.user.name, this.user.arn, currentKey.id, advanced]).apply(([user, userArn, accessKeyId, state]): SetSummary => ({
            user,
            userArn,
            accessKeyId,
            generation: decision.current,
            phase: state.phase,
            paused: decision.paused,
            step: decision.step,
            reason: decision.reason,
            next: decision.next,
            keys: state.keys.map((k) => ({ generation: k.generation, accessKeyId: k.accessKeyId, status: k.status, createdAt: k.createdAt, age: age(k.createdAt, now) })),
            targets: labels,
            warnings: decision.warnings,
        }));
        this.summary = pulumi.recover(done, () =>
            blockedSummary(config, decision.previous, `its ${decision.step === "none" ? "run" : decision.step} did not complete (see the errors above); it keeps its previous state and the next run picks it up`, now, "failed"),
        );
        this.registerOutputs({ state: this.state, summary: this.summary });
    }
}

/**
 * The summary of a set that took no step because it was blocked: what its previous state says,
 * and why it is blocked. The user's ARN is not known without registering the user, so it is empty.
 */
export function blockedSummary(config: CredentialSetConfig, state: SetState | undefined, message: string, now: DateTime, kind: "blocked" | "failed" = "blocked"): SetSummary {
    const keys = state?.keys ?? [];
    const current = [...keys].reverse().find((k) => k.status === "Active" && !k.adoptedAt);
    return {
        user: config.user.name,
        userArn: "",
        accessKeyId: current?.accessKeyId ?? "",
        generation: current?.generation ?? state?.generation ?? 0,
        phase: state?.phase ?? "steady",
        paused: config.policy.paused,
        step: "none",
        reason: `${kind}: ${message}`,
        next: kind === "blocked" ? { step: "none", why: "blocked until the problem above is fixed" } : { step: "none", why: "retried by the next run" },
        keys: keys.map((k) => ({ generation: k.generation, accessKeyId: k.accessKeyId, status: k.status, createdAt: k.createdAt, age: age(k.createdAt, now) })),
        targets: config.targets.map(({ target, spec }) => spec.label(target)),
        warnings: [message],
    };
}

/** Deterministic from (set, generation): a repeated run re-declares, and so adopts, the same key. */
export function keyResourceName(setResourceName: string, generation: number): string {
    return `${setResourceName}-key-${generation}`;
}

/** `arn:aws:iam::aws:policy/ReadOnlyAccess` → `aws-readonlyaccess`. */
function policySlug(arn: string): string {
    const [, , , , account, resource] = arn.split(":");
    return slug(`${account}-${resource.replace(/^policy\//, "")}`);
}

/** Lower-case letters, digits and dashes, for resource names. */
export function slug(text: string): string {
    return text
        .toLowerCase()
        .replace(/[^a-z0-9_]+/g, "-")
        .replace(/^-+|-+$/g, "");
}
