import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";

/**
 * The key a set's targets must hold after this run, as Outputs.
 * `secretAccessKey` is always a Pulumi secret (invariant I7).
 */
export interface KeyMaterial {
    /** Generation of the key (1, 2, ...). */
    readonly generation: number;
    /** The AWS access key id (not secret, but only meaningful with the secret). */
    readonly accessKeyId: pulumi.Output<string>;
    /** The AWS secret access key. Always a Pulumi secret. */
    readonly secretAccessKey: pulumi.Output<string>;
}

/** What a store module gets when it declares the resources for one target. */
export interface DeclareContext {
    /** Name of the credential set (config `credentials[].name`). */
    readonly setName: string;
    /**
     * Prefix for child resource names: unique per target within the stack, and independent of the
     * set (destinations are unique across sets), so renaming a set or moving a target to another
     * set keeps every resource's URN and the engine never deletes a secret it just wrote.
     */
    readonly resourceName: string;
    /**
     * Prefixes the same resources had in earlier releases (the set's name in front): declare them
     * as `aliases` so existing stacks carry their resources over without a step.
     */
    readonly previousResourceNames: readonly string[];
    /** The `CredentialSet` component: parent of every resource a store declares. */
    readonly parent: pulumi.Resource;
    /** The key the target must hold after this run. */
    readonly key: KeyMaterial;
    /**
     * The ARN of the set's KMS key (config `credentials[].kms`: one the set manages, or an
     * existing key), for stores that encrypt with it by default. Absent when the set has none.
     */
    readonly kmsKeyArn?: pulumi.Input<string>;
    /** Path of the target in config, e.g. `credentials[0].targets[2]`, for messages. */
    readonly configPath: string;
    /**
     * The `replacementTrigger` of the resources that hold the key and are replaced delete-first
     * (the set's `rewriteTrigger`, `"none"` until a run must rewrite a value the engine's record
     * may claim; rotation/core/state.ts). Never null: a trigger that goes from null to a value
     * replaces nothing (pulumi/pulumi pkg/resource/deploy/step_generator.go `shouldTriggerReplace`).
     */
    readonly rewriteTrigger?: string;
    /** The provider every dynamic resource of the program uses (`provider` option), if any. */
    readonly dynamicProvider?: pulumi.ProviderResource;
    /**
     * Create a resource shared by the set's targets (e.g. one provider per GitHub owner) once:
     * the first call with a key makes it, later calls return the same object.
     */
    once<R>(key: string, make: () => R): R;
}

/** The two names every store writes the key under; each store sets its own defaults. */
export interface KeyNames {
    /** Name of the variable holding the access key id. Default `AWS_ACCESS_KEY_ID`. */
    accessKeyId: string;
    /** Name of the variable holding the secret access key. Default `AWS_SECRET_ACCESS_KEY`. */
    secretAccessKey: string;
}

/** Default names, the ones the AWS CLI and SDKs read from the environment. */
export const defaultKeyNames: KeyNames = {
    accessKeyId: "AWS_ACCESS_KEY_ID",
    secretAccessKey: "AWS_SECRET_ACCESS_KEY",
};

/**
 * Evidence that a target took the key, read from the outputs of the resources the store declared
 * (never from API calls of its own: the target check runs inside the engine's update, and
 * preview sees unknown values). Give whatever the store can tell; what it cannot tell is absent.
 */
export interface WriteEvidence {
    /** What was written, for messages, e.g. `secret AWS_SECRET_ACCESS_KEY`. */
    readonly what: string;
    /** When the store says the value was last written (ISO-8601), e.g. GitHub's `updatedAt`. */
    readonly writtenAt?: pulumi.Input<string | undefined>;
    /** The access key id the store says it holds, when it can be read back (never the secret). */
    readonly accessKeyId?: pulumi.Input<string | undefined>;
}

/**
 * What config may say about a store's targets, and what follows from it: pure, so the
 * configuration layer and `ci-key-rotation policy` use it without loading the Pulumi SDK. Each
 * store has a `spec.ts` implementing this and a `store.ts` that adds the resources.
 * A target in config is an object whose `type` picks the store; `schemas` validate it.
 */
export interface TargetSpec<T extends { type: string } = { type: string }> {
    /** One zod object schema per target `type` this store handles, each with a literal `type`. */
    readonly schemas: readonly z.ZodObject<{ type: z.ZodLiteral<string> } & z.ZodRawShape>[];
    /** A short human label naming the target, e.g. `github repository acme/api`. */
    label(target: T): string;
    /**
     * Every place the target writes to, as opaque strings. Two targets (in any sets) that share a
     * destination would overwrite each other, so config validation rejects that.
     */
    destinations(target: T): string[];
    /**
     * Cross-field checks zod cannot express per object; return messages keyed by the field
     * (relative to the target) they concern. Optional.
     */
    check?(target: T): { path: (string | number)[]; message: string }[];
    /**
     * Checks that need the target's set (e.g. a store that requires a KMS key when the set has
     * none); messages keyed like `check`'s. Optional.
     */
    checkInSet?(target: T, set: { hasKmsKey: boolean }): { path: (string | number)[]; message: string }[];
    /**
     * Fill in defaults that depend on the target's credential set (e.g. a name derived from the
     * set's name). Config validation calls it right after the schema, before `check`,
     * `destinations` and `label`, so those see the final target. Optional.
     */
    withSet?(target: T, set: { name: string }): T;
    /**
     * AWS permissions the operator's credentials need to write this target (e.g. Secrets
     * Manager, SSM, KMS), for `ci-key-rotation policy`. Optional: stores outside AWS need none.
     * `scope` narrows ARNs to a partition and account when the operator gives them.
     */
    awsPermissions?(target: T, scope?: ArnScope): OperatorStatement[];
    /**
     * AWS permissions a consumer needs to read this target at job time (e.g. a runner's instance
     * role: `secretsmanager:GetSecretValue`, `kms:Decrypt` with the encryption context), for
     * `ci-key-rotation policy`. Optional: stores read by the CI service itself need none.
     */
    readerPermissions?(target: T, scope?: ArnScope): OperatorStatement[];
    /**
     * Stack config keys (full, e.g. `gitlab:token`) the store's dynamic provider reads in
     * `configure`. They, and only they, are handed to the program's explicit dynamic provider,
     * so other config changes are no change of that provider. Optional.
     */
    readonly dynamicProviderConfig?: readonly string[];
}

/** A store: its spec, and `declare`, which turns a target into resources that hold the key. */
export interface TargetStore<T extends { type: string } = { type: string }> extends TargetSpec<T> {
    /** Declare the resources that hold `ctx.key`. Called once per target per run. */
    declare(target: T, ctx: DeclareContext): pulumi.Resource[];
    /**
     * Optional: evidence, per written value, that the target took the key, from the resources
     * `declare` returned for it. The run fails (naming the target) when the evidence shows a write
     * older than the key or another key id. Stores that cannot tell leave this out.
     */
    confirmWrites?(target: T, declared: readonly pulumi.Resource[]): WriteEvidence[];
}

/** Partition and account to put in ARNs of policies; `aws` and `*` when absent. */
export interface ArnScope {
    /** ARN partition: `aws`, `aws-cn` or `aws-us-gov`. */
    partition?: string;
    /** 12-digit AWS account id. */
    account?: string;
}

/** One statement of an IAM policy document, as `ci-key-rotation policy` prints it. */
export interface OperatorStatement {
    /** Letters and digits only (IAM's rule for `Sid`). */
    Sid: string;
    Effect: "Allow";
    Action: string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, string | string[]>>;
}
