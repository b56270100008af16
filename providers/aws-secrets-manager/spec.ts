/**
 * AWS Secrets Manager targets as config describes them: schema, label, destinations, checks and
 * the IAM permissions of the operator and of the readers. Pure: the configuration layer and
 * `ci-key-rotation policy` import this, so nothing here loads the Pulumi SDK (resources: `./store`).
 */
import { z } from "zod";
import type { ArnScope, OperatorStatement, TargetSpec } from "../types";
import { awsTagKey, kmsKeyReference } from "../aws-spec";

/** The target `type`. */
export const secretsManagerType = "aws-secrets-manager";

/**
 * Secrets Manager's rules for a secret name (CreateSecret `Name`; terraform-provider-aws
 * internal/service/secretsmanager validate.go `validSecretName`): 1-512 of letters, digits and
 * `/_+=.@-`. AWS also advises against a name ending in a hyphen and six characters: ARNs end in
 * `-` plus six random characters, and a partial ARN would then match the wrong secret.
 */
export const secretNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

const secretName = z
    .string({ error: "must be a secret name" })
    .regex(secretNamePattern, "must be 1-512 letters, digits and /_+=.@- (Secrets Manager's rule for secret names)")
    .refine((n) => !/-[A-Za-z0-9]{6}$/.test(n), "must not end with a hyphen followed by six characters (Secrets Manager adds -XXXXXX to ARNs, so such a name makes partial ARNs ambiguous): drop or change the suffix");

/** A JSON key inside the secret's value. */
const jsonKey = z.string({ error: "must be a JSON key name" }).min(1, "must not be empty").max(128, "must be at most 128 characters");

/**
 * An IAM principal a resource policy may name: an account root, a role or a user, in any
 * partition (`arn:aws:iam::123456789012:role/ci-runner`).
 */
export const principalArnPattern = /^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(root|role\/[\w+=,.@/-]{1,512}|user\/[\w+=,.@/-]{1,512})$/;

export const awsSecretsManager = z.strictObject({
    type: z.literal(secretsManagerType),
    /**
     * The secret's name. Default `ci/<set>/aws-credentials`. Changing it creates a new secret and
     * deletes the old one (the name cannot change in place).
     */
    name: secretName.optional(),
    /** JSON keys of the secret's value. Defaults `AccessKeyId` and `SecretAccessKey`, the names of the AWS SDKs' credential objects. */
    names: z.strictObject({ accessKeyId: jsonKey.optional(), secretAccessKey: jsonKey.optional() }).optional(),
    /**
     * KMS key that encrypts the secret: key id, key ARN, alias or alias ARN. Default: the set's KMS
     * key when it has one, else `aws/secretsmanager` (the AWS-managed key, which only principals
     * of the same account can use: readers in other accounts need a customer-managed key).
     */
    kmsKey: kmsKeyReference.optional(),
    /**
     * IAM principals (role, user or account root ARNs) allowed to read the secret by its resource
     * policy. Default: none, and no resource policy (same-account principals read it through their
     * own IAM policies, see `ci-key-rotation policy --readers`).
     */
    readers: z.array(z.string({ error: "must be an IAM principal ARN" }).regex(principalArnPattern, 'must be an IAM role, user or account root ARN ("arn:aws:iam::123456789012:role/ci-runner")')).optional(),
    /** Tags on the secret. */
    tags: z.record(awsTagKey, z.string().max(256, "must be at most 256 characters").regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, "may hold letters, digits, spaces and _.:/=+-@ only"), {
            // zod reports a bad key as "Invalid key in record"; say what is wrong with it instead.
            error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "is not a valid tag key") : "must be a map of tag keys to values"),
        }).optional(),
    /**
     * Days Secrets Manager keeps the secret after it is removed from config or the stack is
     * destroyed, during which it can be restored. 7-30, or 0 to delete at once. Default 30 (AWS's
     * default).
     */
    recoveryWindowInDays: z
        .number({ error: "must be a number of days" })
        .int("must be a whole number of days")
        .refine((d) => d === 0 || (d >= 7 && d <= 30), "must be 0 (delete at once) or between 7 and 30 days (Secrets Manager's rule)")
        .default(30),
});

/** A Secrets Manager target, as validated config. */
export type SecretsManagerTarget = z.infer<typeof awsSecretsManager>;

/** The secret's name: the configured one, or derived from the set. */
export function secretNameOf(t: SecretsManagerTarget): string {
    return t.name ?? "ci/aws-credentials";
}

/** The JSON keys of the secret's value. */
export function jsonKeys(t: SecretsManagerTarget): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId: t.names?.accessKeyId ?? "AccessKeyId", secretAccessKey: t.names?.secretAccessKey ?? "SecretAccessKey" };
}

/**
 * ARN pattern of the secret for IAM policies. Secrets Manager appends `-` and six random
 * characters to a secret's ARN, hence `-??????`.
 */
export function secretArnPattern(t: SecretsManagerTarget, scope: ArnScope = {}): string {
    return `arn:${scope.partition ?? "aws"}:secretsmanager:*:${scope.account ?? "*"}:secret:${secretNameOf(t)}-??????`;
}

/** The KMS key ARN when config names one by ARN (policies can be scoped to it), else `*`. */
function kmsResource(t: SecretsManagerTarget): string {
    return t.kmsKey?.startsWith("arn:") && t.kmsKey.includes(":key/") ? t.kmsKey : "*";
}

/**
 * KMS conditions for the key that encrypts the secret: only through Secrets Manager, and only
 * for this secret: Secrets Manager puts the secret's ARN (`SecretARN`) and the version id
 * (`SecretVersionId`) in the encryption context of every KMS call (AWS Secrets Manager User
 * Guide, "Secret encryption and decryption", section "Secrets Manager encryption context").
 */
function kmsConditions(t: SecretsManagerTarget, scope: ArnScope): OperatorStatement["Condition"] {
    return {
        StringLike: {
            "kms:ViaService": "secretsmanager.*.amazonaws.com",
            "kms:EncryptionContext:SecretARN": secretArnPattern(t, scope),
        },
    };
}

/** AWS Secrets Manager secrets holding the key as JSON: what config may say. */
export const secretsManagerSpec: TargetSpec<SecretsManagerTarget> = {
    schemas: [awsSecretsManager],

    withSet(t, set) {
        return t.name === undefined ? { ...t, name: `ci/${set.name}/aws-credentials` } : t;
    },

    label(t) {
        return `aws-secrets-manager ${secretNameOf(t)}`;
    },

    destinations(t) {
        // Secrets Manager names are case-sensitive, but resource names are lower-cased slugs of the
        // label: two names differing only in case would get one URN, so they count as one place.
        // The region comes from the provider, the same for every target of a stack.
        return [`aws secrets manager secret ${secretNameOf(t).toLowerCase()}`];
    },

    check(t) {
        const problems: { path: (string | number)[]; message: string }[] = [];
        const k = jsonKeys(t);
        if (k.accessKeyId === k.secretAccessKey) problems.push({ path: ["names", "secretAccessKey"], message: "must differ from names.accessKeyId" });
        const seen = new Map<string, number>();
        (t.readers ?? []).forEach((r, i) => {
            if (seen.has(r)) problems.push({ path: ["readers", i], message: `repeats readers[${seen.get(r)}]` });
            else seen.set(r, i);
        });
        return problems;
    },

    checkInSet(t, set) {
        // The AWS-managed key serves principals of the secret's own account only (CreateSecret /
        // UpdateSecret `KmsKeyId` API reference). Which account that is, config cannot tell; but
        // readers of two accounts mean at least one is refused KMS at every read.
        const awsManaged = t.kmsKey === undefined ? !set.hasKmsKey : /(^|:)alias\/aws\/secretsmanager$/.test(t.kmsKey);
        const accounts = new Set((t.readers ?? []).map((r) => r.split(":")[4]));
        if (awsManaged && accounts.size > 1) {
            return [{ path: ["kmsKey"], message: "is required when readers are in more than one account: the AWS-managed key aws/secretsmanager only serves the secret's own account; give a customer-managed key whose policy lets the readers decrypt" }];
        }
        return [];
    },

    awsPermissions(t, scope = {}) {
        const secret = secretArnPattern(t, scope);
        // The calls terraform-provider-aws makes (internal/service/secretsmanager): secret.go
        // Create (CreateSecret, DescribeSecret, GetResourcePolicy), Update (UpdateSecret for
        // description and KMS key; TagResource/UntagResource), Delete (DeleteSecret, then
        // DescribeSecret until gone); secret_version.go Create (PutSecretValue, then GetSecretValue
        // of that version), Update (ListSecretVersionIds, UpdateSecretVersionStage), Delete
        // (UpdateSecretVersionStage); secret_policy.go (PutResourcePolicy, GetResourcePolicy,
        // DeleteResourcePolicy).
        const actions = [
            "secretsmanager:CreateSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:UpdateSecret",
            "secretsmanager:DeleteSecret",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:PutSecretValue",
            "secretsmanager:GetSecretValue",
            "secretsmanager:ListSecretVersionIds",
            "secretsmanager:UpdateSecretVersionStage",
        ];
        if (t.readers?.length) actions.push("secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy");
        return [
            { Sid: "SecretsManagerWrite", Effect: "Allow", Action: actions.sort(), Resource: secret },
            // PutSecretValue encrypts (GenerateDataKey); the provider reads the version back
            // (GetSecretValue: Decrypt); a change of `kmsKey` re-encrypts AWSCURRENT and AWSPREVIOUS
            // only with kms:Encrypt on the new key (UpdateSecret `KmsKeyId` API reference). Not
            // needed with the AWS-managed key, harmless then.
            { Sid: "SecretsManagerKms", Effect: "Allow", Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], Resource: kmsResource(t), Condition: kmsConditions(t, scope) },
        ];
    },

    readerPermissions(t, scope = {}) {
        return [
            { Sid: "ReadSecret", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: secretArnPattern(t, scope) },
            { Sid: "DecryptSecret", Effect: "Allow", Action: ["kms:Decrypt"], Resource: kmsResource(t), Condition: kmsConditions(t, scope) },
        ];
    },
};
