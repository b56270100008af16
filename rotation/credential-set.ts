import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DateTime } from "luxon";
import type { KeyMaterial } from "../providers/types";
import type { CredentialSetConfig } from "./config";
import { age, type Decision, type NextStep, type StepName } from "./plan";
import type { KeyRecord, Phase, SetState } from "./state";

/** Arguments of {@link CredentialSet}: the validated set and the decision for this run. */
export interface CredentialSetArgs {
    config: CredentialSetConfig;
    decision: Decision;
    /** The instant this run acts at (for key ages). */
    now: DateTime;
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
 * `rotation/plan.ts`); this component only turns it into resources.
 */
export class CredentialSet extends pulumi.ComponentResource {
    readonly user: aws.iam.User;
    /** The key resources by generation. */
    readonly keys: Map<number, aws.iam.AccessKey>;
    /** The key the targets hold. `secretAccessKey` is a Pulumi secret. */
    readonly current: KeyMaterial;
    /** The set's rotation state after this run (goes into the `rotation` output). */
    readonly state: pulumi.Output<SetState>;
    /** The set's summary output. */
    readonly summary: pulumi.Output<SetSummary>;

    constructor(name: string, args: CredentialSetArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("ci-key-rotation:index:CredentialSet", name, {}, opts);
        const { config, decision, now } = args;
        const child = { parent: this };

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

        // Keys are declared oldest first: the engine updates and creates in registration order, so
        // an old key is switched off (revoke) before the new one exists, never waiting on a push.
        this.keys = new Map();
        for (const key of decision.keys) {
            this.keys.set(
                key.generation,
                new aws.iam.AccessKey(
                    keyResourceName(name, key.generation),
                    { user: this.user.name, status: key.status },
                    { ...child, additionalSecretOutputs: ["secret"] },
                ),
            );
        }
        const currentKey = this.keys.get(decision.current)!;
        this.current = {
            generation: decision.current,
            accessKeyId: currentKey.id,
            // The engine marks `secret` secret in a real run; wrap it anyway so no path can leak it.
            secretAccessKey: pulumi.secret(currentKey.secret),
        };

        const shared = new Map<string, unknown>();
        const labels: string[] = [];
        for (const { target, store, path } of config.targets) {
            const label = store.label(target);
            labels.push(label);
            store.declare(target, {
                setName: config.name,
                resourceName: `${name}-${slug(label)}`,
                parent: this,
                key: this.current,
                configPath: path,
                once: <R>(key: string, make: () => R): R => {
                    if (!shared.has(key)) shared.set(key, make());
                    return shared.get(key) as R;
                },
            });
        }

        const mintedId = decision.minted === undefined ? pulumi.output("") : this.keys.get(decision.minted)!.id;
        this.state = mintedId.apply((id) => ({
            ...decision.state,
            keys: decision.state.keys.map((k): KeyRecord => (k.generation === decision.minted ? { ...k, accessKeyId: id } : k)),
        }));
        this.summary = pulumi.all([this.user.name, this.user.arn, currentKey.id, this.state]).apply(([user, userArn, accessKeyId, state]) => ({
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
        this.registerOutputs({ state: this.state, summary: this.summary });
    }
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
