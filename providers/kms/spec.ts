/**
 * KMS as config describes it: the set's own key (`credentials[].kms`) and `encrypt` on GitHub and
 * GitLab targets (the store writes the KMS ciphertext of the secret access key, made with an
 * encryption context, instead of the secret). Pure: zod and ../types only (resources: `./store`).
 */
import { z } from "zod";
import type { KeyNames, OperatorStatement } from "../types";

const keyId = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const keyArn = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
// KMS alias names: `alias/` then 1-250 of letters, digits, `/`, `_`, `-` (KMS CreateAlias `AliasName`).
const aliasName = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const aliasArn = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:alias\/[A-Za-z0-9/_-]{1,250}$/;

/** `alias/aws/...` names AWS-managed keys: KMS refuses to create them, and their policies cannot name decrypters. */
function reservedAlias(ref: string): boolean {
    return /(^|:)alias\/aws\//.test(ref);
}

/** A KMS key as config may name it: key id, key ARN, alias name or alias ARN. */
export const kmsKeyRef = z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a KMS key id, key ARN or alias (alias/name)") })
    .refine((ref) => keyId.test(ref) || keyArn.test(ref) || aliasName.test(ref) || aliasArn.test(ref), {
        message: 'must be a KMS key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN (arn:aws:kms:<region>:<account>:key/<id>) or an alias ("alias/name" or its ARN)',
    })
    .refine((ref) => !reservedAlias(ref), {
        message: "must not be an AWS managed key (alias/aws/...): its key policy cannot be changed to let only named roles decrypt; use a customer managed key",
    });

/** An IAM principal a key policy may name: an account root, a role or a user. */
export const principalArn = z.string({ error: "must be an IAM role or user ARN" }).superRefine((arn, ctx) => {
    if (/^arn:aws[a-z-]*:sts::\d{12}:assumed-role\//.test(arn)) {
        ctx.addIssue({ code: "custom", message: "must be the role's ARN (arn:aws:iam::<account>:role/<name>), not an assumed-role session ARN" });
    } else if (!/^arn:aws[a-z-]*:iam::\d{12}:(root|role\/[\w+=,.@/-]{1,512}|user\/[\w+=,.@/-]{1,512})$/.test(arn)) {
        ctx.addIssue({ code: "custom", message: "must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)" });
    }
});

/** The set's own KMS key (`credentials[].kms`): one it manages, or an existing one. */
export const setKmsSchema = z
    .strictObject({
        /** `true`: the set manages a key (created, rotated yearly by KMS, scheduled for deletion when removed). */
        create: z.literal(true, { error: "must be true (or use `key` for an existing key)" }).optional(),
        /** With `create`: the roles (or users) that may decrypt, and only with a target's encryption context. */
        decrypters: z.array(principalArn, { error: "must be a list of IAM role ARNs" }).min(1, "must list at least one role that decrypts").max(100).optional(),
        /** With `create`: the key's alias. Default `alias/ci-key-rotation/<set>`. */
        alias: z
            .string({ error: "must be an alias name" })
            .regex(aliasName, 'must be "alias/" then 1-250 letters, digits, "/", "_" or "-"')
            .refine((a) => !reservedAlias(a), 'must not start with "alias/aws/" (reserved by AWS)')
            .optional(),
        /**
         * With `create`: days KMS waits before it deletes the key once it is removed (7-30).
         * Default 30, the longest: a key removed by mistake can be recovered (`aws kms
         * cancel-key-deletion`) for a month, and every ciphertext made with it decrypts again.
         */
        deletionWindowInDays: z
            .number({ error: "must be a whole number of days from 7 to 30" })
            .int("must be a whole number of days from 7 to 30")
            .min(7, "must be at least 7 (KMS's shortest waiting period)")
            .max(30, "must be at most 30 (KMS's longest waiting period)")
            .optional(),
        /** An existing key (id, ARN or alias): its key policy is yours to keep. */
        key: kmsKeyRef.optional(),
    })
    .superRefine((k, ctx) => {
        if (k.key !== undefined) {
            for (const field of ["create", "decrypters", "alias", "deletionWindowInDays"] as const) {
                if (k[field] !== undefined) ctx.addIssue({ code: "custom", path: [field], message: "cannot be used with `key` (an existing key): remove one of them" });
            }
            return;
        }
        if (k.create !== true) ctx.addIssue({ code: "custom", path: ["create"], message: "is required: set `create: true` for a key the set manages, or `key` for an existing key" });
        else if (k.decrypters === undefined) ctx.addIssue({ code: "custom", path: ["decrypters"], message: "is required with `create`: list the role ARNs that decrypt at job time" });
    });

/** The set's KMS key, as validated config. */
export type SetKmsConfig = z.infer<typeof setKmsSchema>;

// Context keys and values go into key policy conditions (`kms:EncryptionContext:<key>`) and on the
// `aws kms decrypt --encryption-context k=v` command line: keep them to characters both take as
// they are. Keys starting with `aws` are reserved for AWS's own use (KMS developer guide,
// "Encryption context").
const contextKey = z
    .string()
    .regex(/^[A-Za-z0-9_.\-/]{1,128}$/, "must be 1-128 letters, digits or _ . - /")
    .refine((k) => !/^aws/i.test(k), 'must not start with "aws" (reserved by AWS)');
const contextValue = z
    .string({ error: "must be a string" })
    .regex(/^[A-Za-z0-9_.\-/:@+]{1,256}$/, "must be 1-256 letters, digits or _ . - / : @ +");

/** `encrypt` on a GitHub or GitLab target: write the KMS ciphertext of the secret instead of the secret. */
export const encryptSchema = z.strictObject({
    /** The key to encrypt with. Default: the set's key (`credentials[].kms`). */
    key: kmsKeyRef.optional(),
    /**
     * The encryption context, e.g. `{ repository: "acme/api" }`: Decrypt succeeds only with the
     * same pairs, and the set's key policy lets the decrypters use only these. At least one pair.
     */
    context: z
        .record(contextKey, contextValue, {
            error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "has an invalid key") : iss.input === undefined ? "is required" : "must be a map of context keys to values"),
        })
        .refine((c) => Object.keys(c).length >= 1, "must have at least one pair: it is what keeps a copied ciphertext from decrypting elsewhere")
        .refine((c) => Object.keys(c).length <= 10, "must have at most 10 pairs"),
});

/** `encrypt`, as validated config. */
export type EncryptConfig = z.infer<typeof encryptSchema>;

/**
 * The names an encrypting target writes by default. Not the names the AWS CLI and SDKs read:
 * a job's environment then holds an access key id without its secret (botocore raises
 * `PartialCredentialsError` for `AWS_ACCESS_KEY_ID` without `AWS_SECRET_ACCESS_KEY`, so even the
 * `aws kms decrypt` call with the runner's role would fail) or a ciphertext as the secret.
 */
export const encryptedKeyNames: KeyNames = {
    accessKeyId: "CI_AWS_ACCESS_KEY_ID",
    secretAccessKey: "AWS_SECRET_ACCESS_KEY_CIPHERTEXT",
};

/** The IAM policy `Resource` for a key reference (aliases are not resources of key actions). */
function keyResource(ref: string | undefined): { Resource: string; Condition?: OperatorStatement["Condition"] } {
    if (ref !== undefined && keyArn.test(ref)) return { Resource: ref };
    if (ref !== undefined && keyId.test(ref)) return { Resource: `arn:aws:kms:*:*:key/${ref}` };
    const alias = ref === undefined ? undefined : ref.startsWith("arn:") ? `alias/${ref.split(":alias/")[1]}` : ref;
    // Key actions authorise on the key's ARN; an alias narrows them through `kms:ResourceAliases`.
    // Without a key named here it is the set's key, which the set's statements name: this
    // statement then holds only through the context condition.
    return alias ? { Resource: "arn:aws:kms:*:*:key/*", Condition: { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } } } : { Resource: "arn:aws:kms:*:*:key/*" };
}

/** `kms:EncryptionContext:<key>` conditions for a context. */
export function contextConditions(context: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(context).map(([k, v]) => [`kms:EncryptionContext:${k}`, v]));
}

/**
 * A Sid suffix from what a statement is about: two targets with different keys or contexts give
 * two statements, and IAM rejects a policy with two equal Sids. (Equal statements are merged.)
 */
function sidSuffix(...parts: string[]): string {
    let h = 0x811c9dc5;
    for (const c of parts.join("\u0000")) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return h.toString(16).toUpperCase().padStart(8, "0");
}

/** The operator's permission to encrypt with a target's own key (the set's key is in the set's statements). */
export function encryptPermissions(encrypt: EncryptConfig | undefined): OperatorStatement[] {
    if (!encrypt?.key) return [];
    const { Resource, Condition } = keyResource(encrypt.key);
    return [{ Sid: `KmsEncrypt${sidSuffix(encrypt.key)}`, Effect: "Allow", Action: ["kms:DescribeKey", "kms:Encrypt"], Resource, ...(Condition ? { Condition } : {}) }];
}

/** A reader's permission: Decrypt on the key, only with the target's encryption context. */
export function decryptPermissions(encrypt: EncryptConfig | undefined): OperatorStatement[] {
    if (!encrypt) return [];
    const { Resource, Condition } = keyResource(encrypt.key);
    return [
        {
            Sid: `KmsDecrypt${sidSuffix(encrypt.key ?? "", JSON.stringify(Object.entries(encrypt.context).sort()))}`,
            Effect: "Allow",
            Action: ["kms:Decrypt"],
            Resource,
            Condition: { ...(Condition ?? {}), StringEquals: contextConditions(encrypt.context) },
        },
    ];
}

/** The key a set's managed key gets as alias unless config names one. */
export function defaultAlias(setName: string): string {
    return `alias/ci-key-rotation/${setName}`;
}

/** Which key a reference is: for messages and for deciding whether it must be looked up. */
export function isKeyArn(ref: string): boolean {
    return keyArn.test(ref);
}

/** A key policy document, as `aws.kms.Key.policy` takes it (JSON text). */
export interface KeyPolicy {
    Version: "2012-10-17";
    Statement: {
        Sid: string;
        Effect: "Allow";
        Principal: { AWS: string | string[] };
        Action?: string | string[];
        NotAction?: string[];
        Resource: "*";
        Condition?: Record<string, Record<string, string | string[]>>;
    }[];
}

/** The services that encrypt with the set's key for the AWS stores (`kms:ViaService` values). */
const viaAwsStores = ["secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com", "s3.*.amazonaws.com"];

/**
 * The policy of a key a set manages.
 *
 * - The account (its root principal) keeps every action but decrypting. This is AWS's default key
 *   policy statement ("Allows access to the AWS account and enables IAM policies", KMS developer
 *   guide "Default key policy") less `kms:Decrypt` and `kms:ReEncryptFrom`: IAM policies in the
 *   account still administer the key (PutKeyPolicy, ScheduleKeyDeletion, ...) and encrypt with it,
 *   so the key never becomes unmanageable, and CreateKey/PutKeyPolicy pass KMS's lockout safety
 *   check (the caller must be able to call PutKeyPolicy later; the program leaves
 *   `bypassPolicyLockoutSafetyCheck` false, terraform-provider-aws internal/service/kms/key.go
 *   `bypass_policy_lockout_safety_check` default false), but no IAM policy can let anyone decrypt.
 * - The decrypters may decrypt, each grant bound to one target's encryption context
 *   (`kms:EncryptionContext:<key>`): a ciphertext copied elsewhere needs that exact context
 *   (KMS binds it to the ciphertext as additional authenticated data), and a decrypter cannot
 *   use the key with any other context.
 * - The decrypters may also decrypt through Secrets Manager, SSM and S3 (`kms:ViaService`): those
 *   stores encrypt with the set's key and bind their own contexts (secret ARN, parameter ARN,
 *   object ARN).
 * - The account's IAM policies may grant Decrypt too, but only through those services
 *   (`AccountDecryptsThroughAwsStores`: the account root as principal delegates to IAM, "Allows
 *   access to the AWS account and enables IAM policies", AWS KMS developer guide, default key
 *   policy; `kms:ViaService` limits it to requests the named service makes on the caller's
 *   behalf, AWS KMS developer guide, condition keys, kms:ViaService). The operator needs it: the
 *   provider reads back what it wrote (terraform-provider-aws internal/service/secretsmanager
 *   secret_version.go read: GetSecretValue; internal/service/ssm parameter.go read: GetParameter
 *   WithDecryption), and both decrypt with the caller's identity through the service. Nobody
 *   decrypts a raw ciphertext (an `encrypt` target's) without a `DecryptWithContext` grant.
 */
export function keyPolicy(args: { partition: string; account: string; decrypters: readonly string[]; contexts: readonly Record<string, string>[] }): KeyPolicy {
    const root = `arn:${args.partition}:iam::${args.account}:root`;
    const decrypters = [...args.decrypters];
    const seen = new Set<string>();
    const contexts = args.contexts.filter((c) => {
        const k = JSON.stringify(Object.entries(c).sort());
        return seen.has(k) ? false : (seen.add(k), true);
    });
    return {
        Version: "2012-10-17",
        Statement: [
            { Sid: "AccountAdministersNotDecrypts", Effect: "Allow", Principal: { AWS: root }, NotAction: ["kms:Decrypt", "kms:ReEncryptFrom"], Resource: "*" },
            {
                Sid: "AccountDecryptsThroughAwsStores",
                Effect: "Allow",
                Principal: { AWS: root },
                Action: "kms:Decrypt",
                Resource: "*",
                Condition: { StringLike: { "kms:ViaService": viaAwsStores } },
            },
            ...contexts.map((context, i) => ({
                Sid: `DecryptWithContext${i + 1}`,
                Effect: "Allow" as const,
                Principal: { AWS: decrypters },
                Action: "kms:Decrypt",
                Resource: "*" as const,
                Condition: { StringEquals: contextConditions(context) },
            })),
            {
                Sid: "DecryptThroughAwsStores",
                Effect: "Allow",
                Principal: { AWS: decrypters },
                Action: "kms:Decrypt",
                Resource: "*",
                Condition: { StringLike: { "kms:ViaService": viaAwsStores } },
            },
        ],
    };
}
