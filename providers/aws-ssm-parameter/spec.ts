/**
 * SSM Parameter Store targets as config describes them: schema, label, destinations, checks and
 * the IAM permissions of the operator and of the readers. Pure: the configuration layer and
 * `ci-key-rotation policy` import this, so nothing here loads the Pulumi SDK (resources: `./store`).
 */
import { z } from "zod";
import { defaultKeyNames, type KeyNames, type OperatorStatement, type TargetSpec } from "../types";
import { awsTagKey, kmsKeyReference } from "../aws-spec";

/** The target `type`. */
export const ssmParameterType = "aws-ssm-parameter";

/**
 * SSM's limit on a parameter name counts the whole parameter ARN
 * (`arn:<partition>:ssm:<region>:<account>:parameter<name>`): 1011 characters. The longest
 * prefix (`arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter`) is 55 characters, so a name
 * of at most 956 fits in every region.
 */
export const maxNameLength = 1011 - "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter".length;

/** SSM allows at most 15 levels in a parameter hierarchy. */
export const maxDepth = 15;

/**
 * Problems of a full parameter name (`/ci/deploy/AWS_ACCESS_KEY_ID`), by SSM's rules
 * (PutParameter, "Parameter name requirements" in the Systems Manager user guide): letters,
 * digits and `_.-/` only; a name with `/` is fully qualified (starts with `/`, no empty
 * level, no trailing `/`); at most 15 levels; no level may start with `aws` or `ssm`
 * (any case: reserved by AWS) at the root; at most {@link maxNameLength} characters.
 */
export function parameterNameProblems(name: string): string[] {
    const problems: string[] = [];
    if (!/^[A-Za-z0-9_.\-/]+$/.test(name)) problems.push("may hold letters, digits and _.-/ only (SSM's rule for parameter names)");
    if (!name.startsWith("/")) problems.push('must start with "/" (a fully qualified hierarchy such as "/ci/deploy")');
    else if (name.length > 1 && (name.endsWith("/") || name.includes("//"))) problems.push('must not end with "/" or hold an empty level ("//")');
    const levels = name.split("/").filter((s) => s !== "");
    if (levels.length > maxDepth) problems.push(`must have at most ${maxDepth} levels (SSM's hierarchy limit); it has ${levels.length}`);
    if (levels.length > 0 && /^(aws|ssm)/i.test(levels[0])) problems.push('must not start with "aws" or "ssm" (AWS reserves them, in any case)');
    if (name.length > maxNameLength) problems.push(`must be at most ${maxNameLength} characters (SSM counts the whole parameter ARN, 1011 characters)`);
    return problems;
}

/** One level of a parameter name (a leaf such as `AWS_ACCESS_KEY_ID`). */
const leaf = z
    .string({ error: "must be a parameter name" })
    .regex(/^[A-Za-z0-9_.-]{1,256}$/, "must be 1-256 letters, digits and _.- (one level of a parameter name, without /)");

const tags = z
    .record(awsTagKey, z.string({ error: "must be a string" }).max(256, "must be at most 256 characters"), {
        // zod reports a bad key as "Invalid key in record"; say what is wrong with it instead.
        error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "is not a valid tag key") : "must be a map of tag keys to values"),
    })
    .refine((t) => Object.keys(t).length <= 50, "must have at most 50 tags (AWS's limit per resource)")
    .optional();

/** A Linux user or group name, as the document passes it to `chown`. */
const posixName = z.string({ error: "must be a user or group name" }).regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Linux user or group name (lower-case letters, digits, _ and -, at most 32)");

/** Where and how the Run Command document writes the credentials file on the instances. */
export const distribution = z.strictObject({
    /** The EC2 tag that selects the instances (e.g. `{ key: "ci-runner", value: "deploy" }`). Required. */
    instanceTag: z.strictObject({
        key: z.string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a tag key") }).regex(/^[A-Za-z0-9 _.:/=+\-@]{1,128}$/, "must be 1-128 letters, digits, spaces and _.:/=+-@"),
        value: z.string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a tag value") }).regex(/^[A-Za-z0-9 _.:/=+\-@]{1,256}$/, "must be 1-256 letters, digits, spaces and _.:/=+-@"),
    }),
    /** Absolute path of the credentials file on the instance. Default `/home/runner/.aws/credentials` (a GitHub self-hosted runner's home). */
    path: z
        .string({ error: "must be an absolute file path" })
        .regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'must be an absolute file path of letters, digits and _.- ("/home/runner/.aws/credentials")')
        .refine((p) => !p.split("/").includes(".."), 'must not contain ".."')
        .default("/home/runner/.aws/credentials"),
    /** Owner of the file (mode 0400: only the owner reads it). Default `runner`. */
    owner: posixName.default("runner"),
    /** Group of the file. Default: the owner's name. */
    group: posixName.optional(),
    /** Profile in the credentials file. Default `default`. */
    profile: z.string({ error: "must be a profile name" }).regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits and _.-").default("default"),
    /**
     * A State Manager schedule (`rate(30 minutes)`, `cron(...)`) that also runs the document on
     * every tagged instance: on instances that were offline when the key changed (they keep the
     * old file otherwise), on new instances, and at each interval. Default: none (only the
     * change event delivers; the last-used gate then holds the old key while an instance still
     * uses it).
     */
    schedule: z
        .string({ error: "must be a schedule expression" })
        .regex(/^(rate\([0-9]+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$/, 'must be a State Manager schedule such as "rate(30 minutes)" or "cron(0 */1 * * ? *)"')
        .optional(),
});

export const awsSsmParameter = z.strictObject({
    type: z.literal(ssmParameterType),
    /**
     * The hierarchy the parameters live under. Default `/ci/<set>`. Changing it writes new
     * parameters and deletes the old ones at the end of the run.
     */
    path: z
        .string({ error: "must be a parameter path" })
        .superRefine((path, ctx) => {
            for (const message of parameterNameProblems(path)) ctx.addIssue({ code: "custom", message });
        })
        .optional(),
    /**
     * `parameters` (default): two SecureString parameters, `<path>/AWS_ACCESS_KEY_ID` and
     * `<path>/AWS_SECRET_ACCESS_KEY`. `credentials-file`: one SecureString parameter,
     * `<path>/<fileName>`, holding an AWS shared credentials file (one write: a reader never
     * sees the new key id with the old secret).
     */
    format: z.enum(["parameters", "credentials-file"], { error: 'must be "parameters" or "credentials-file"' }).default("parameters"),
    /** Leaf names of the two parameters (format `parameters`). Defaults `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. */
    names: z.strictObject({ accessKeyId: leaf.optional(), secretAccessKey: leaf.optional() }).optional(),
    /** Leaf name of the credentials-file parameter (format `credentials-file`). Default `credentials`. */
    fileName: leaf.default("credentials"),
    /** Profile of the credentials file (format `credentials-file`). Default `default`. */
    profile: z.string({ error: "must be a profile name" }).regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits and _.-").default("default"),
    /**
     * KMS key of the SecureStrings: key id, key ARN, alias or alias ARN. Default: the set's KMS
     * key when it has one, else `alias/aws/ssm` (the AWS-managed key: readers must be in the
     * same account).
     */
    kmsKey: kmsKeyReference.optional(),
    /**
     * `Standard` (default, free, 4 KB), `Advanced` (8 KB, charged, parameter policies) or
     * `Intelligent-Tiering`. Going from Advanced back to Standard replaces the parameters (SSM
     * cannot downgrade), which deletes them first: a reader in between finds none.
     */
    tier: z.enum(["Standard", "Advanced", "Intelligent-Tiering"], { error: 'must be "Standard", "Advanced" or "Intelligent-Tiering"' }).default("Standard"),
    /** Description of the parameters (at most 1024 characters). Default: says they are rotated by ci-key-rotation. */
    description: z.string({ error: "must be a string" }).max(1024, "must be at most 1024 characters").optional(),
    /** Tags on the parameters. */
    tags,
    /** Deliver the key to EC2 instances as a credentials file when it changes (see docs/stores/aws-ssm-parameter.md). */
    distribute: distribution.optional(),
});

export type SsmParameterTarget = z.infer<typeof awsSsmParameter>;
export type Distribution = z.infer<typeof distribution>;

/** The hierarchy of a target: its `path`, or `/ci/<set>` once {@link ssmParameterSpec.withSet} ran. */
export function pathOf(t: SsmParameterTarget): string {
    return t.path ?? "/ci/unnamed";
}

export function keyNames(t: SsmParameterTarget): KeyNames {
    return {
        accessKeyId: t.names?.accessKeyId ?? defaultKeyNames.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaultKeyNames.secretAccessKey,
    };
}

/** The full names of the parameters the target writes, in write order (the last one triggers delivery). */
export function parameterNames(t: SsmParameterTarget): string[] {
    const path = pathOf(t);
    if (t.format === "credentials-file") return [`${path}/${t.fileName}`];
    const n = keyNames(t);
    return [`${path}/${n.accessKeyId}`, `${path}/${n.secretAccessKey}`];
}

/** IAM resource ARNs of the target's parameters (any region and account unless given). */
export function parameterArns(t: SsmParameterTarget, partition = "aws"): string[] {
    return parameterNames(t).map((name) => `arn:${partition}:ssm:*:*:parameter${name}`);
}

/** The `kmsKey` given as a key ARN, else undefined (an alias or bare id names no ARN). */
function keyArn(t: SsmParameterTarget): string | undefined {
    return t.kmsKey?.startsWith("arn:") && t.kmsKey.includes(":key/") ? t.kmsKey : undefined;
}

/**
 * The KMS statement a principal needs to decrypt (or encrypt) the target's SecureStrings.
 * Parameter Store calls KMS with the encryption context `PARAMETER_ARN` = the parameter's ARN
 * (Systems Manager user guide, "How AWS Systems Manager Parameter Store uses AWS KMS"), so the
 * statement is scoped to these parameters even where the key is not known by ARN.
 */
function kmsStatement(t: SsmParameterTarget, sid: string, actions: string[]): OperatorStatement {
    return {
        Sid: sid,
        Effect: "Allow",
        Action: actions,
        Resource: keyArn(t) ?? "*",
        Condition: {
            StringLike: { "kms:ViaService": "ssm.*.amazonaws.com", "kms:EncryptionContext:PARAMETER_ARN": parameterArns(t) },
        },
    };
}

/**
 * A statement id for one target: IAM allows letters and digits only, so the path's other
 * characters are dropped, and a short hash of the exact path (and format) keeps `/ci/a-b` and
 * `/ci/ab` apart (IAM rejects a policy with two equal Sids).
 */
function sidOf(t: SsmParameterTarget, prefix: string): string {
    let h = 0x811c9dc5;
    for (const c of `${pathOf(t)}|${t.format}|${t.fileName}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return `${prefix}${pathOf(t).replace(/[^A-Za-z0-9]/g, "").slice(0, 60)}${h.toString(16).padStart(8, "0")}`;
}

/** SSM Parameter Store SecureStrings, optionally delivered to EC2 instances: what config may say. */
export const ssmParameterSpec: TargetSpec<SsmParameterTarget> = {
    schemas: [awsSsmParameter],

    withSet(t, set) {
        return t.path === undefined ? { ...t, path: `/ci/${set.name}` } : t;
    },

    label(t) {
        return `aws-ssm-parameter ${pathOf(t)}${t.format === "credentials-file" ? `/${t.fileName}` : ""}`;
    },

    destinations(t) {
        const out = parameterNames(t).map((name) => `aws ssm parameter ${name}`);
        // Two targets delivering to the same file on instances with the same tag would overwrite each other.
        if (t.distribute) out.push(`instances tagged ${t.distribute.instanceTag.key}=${t.distribute.instanceTag.value} file ${t.distribute.path}`);
        return out;
    },

    check(t) {
        const problems: { path: (string | number)[]; message: string }[] = [];
        // The path itself is checked by the schema; the full names add the leaf to length and depth.
        if (parameterNameProblems(pathOf(t)).length === 0) {
            for (const name of parameterNames(t)) {
                for (const m of parameterNameProblems(name)) {
                    const field = t.format === "credentials-file" ? ["fileName"] : ["names"];
                    problems.push({ path: field, message: `gives the parameter name "${name}", which ${m}` });
                }
            }
        }
        const n = keyNames(t);
        if (t.format === "parameters" && n.accessKeyId === n.secretAccessKey) {
            problems.push({ path: ["names", "secretAccessKey"], message: "must differ from names.accessKeyId" });
        }
        if (t.format === "credentials-file" && t.names) {
            problems.push({ path: ["names"], message: 'applies only to format "parameters": remove it, or use fileName' });
        }
        return problems;
    },

    awsPermissions(t) {
        const statements: OperatorStatement[] = [
            {
                Sid: sidOf(t, "SsmParameters"),
                Effect: "Allow",
                // The provider writes with PutParameter, reads back with GetParameter (decrypted) and
                // DescribeParameters, tags with AddTagsToResource, and deletes with DeleteParameter.
                Action: ["ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DescribeParameters", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"],
                Resource: parameterArns(t),
            },
            kmsStatement(t, sidOf(t, "SsmParametersKms"), ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]),
        ];
        if (t.distribute) {
            statements.push({
                Sid: sidOf(t, "SsmDistribute"),
                Effect: "Allow",
                Action: [
                    "ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:DescribeDocument", "ssm:DescribeDocumentPermission", "ssm:GetDocument", "ssm:DeleteDocument",
                    "ssm:CreateAssociation", "ssm:UpdateAssociation", "ssm:DescribeAssociation", "ssm:DeleteAssociation",
                    "events:PutRule", "events:DescribeRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets", "events:ListTargetsByRule", "events:ListTagsForResource", "events:TagResource",
                    "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
                ],
                Resource: "*",
            });
            statements.push({
                Sid: sidOf(t, "SsmDistributePassRole"),
                Effect: "Allow",
                Action: ["iam:PassRole"],
                Resource: "*",
                Condition: { StringEquals: { "iam:PassedToService": "events.amazonaws.com" } },
            });
        }
        return statements;
    },

    readerPermissions(t) {
        const path = pathOf(t);
        return [
            {
                Sid: sidOf(t, "ReadSsmParameters"),
                Effect: "Allow",
                Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                // GetParametersByPath is authorised on the path itself.
                Resource: [`arn:aws:ssm:*:*:parameter${path}`, ...parameterArns(t)],
            },
            kmsStatement(t, sidOf(t, "ReadSsmParametersKms"), ["kms:Decrypt"]),
        ];
    },
};
