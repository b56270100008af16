/**
 * S3 env-file targets (`aws-s3-env-file`) as config describes them: schema, label, destinations,
 * checks, the dotenv text, the bucket policy statements and the permissions. Pure: the
 * configuration layer imports this, so nothing here loads the Pulumi SDK (resources: `./store`).
 */
import { z } from "zod";
import { defaultKeyNames, type KeyNames, type OperatorStatement, type TargetSpec } from "../types";

/**
 * S3's rules for general purpose bucket names (docs.aws.amazon.com/AmazonS3/latest/userguide/
 * bucketnamingrules.html). Directory buckets (`--x-s3`) and access point aliases are refused: the
 * object must live in an ordinary bucket whose policy this page documents.
 */
export function bucketNameProblems(name: string): string[] {
    const problems: string[] = [];
    if (name.length < 3 || name.length > 63) problems.push("must be 3-63 characters long");
    if (!/^[a-z0-9.-]*$/.test(name)) problems.push("must be lower-case letters, digits, dots and hyphens only");
    if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) problems.push("must begin and end with a letter or digit");
    if (name.includes("..")) problems.push("must not contain two adjacent dots");
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) problems.push("must not look like an IP address");
    for (const prefix of ["xn--", "sthree-", "amzn-s3-demo-"]) if (name.startsWith(prefix)) problems.push(`must not start with "${prefix}" (reserved by S3)`);
    for (const suffix of ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]) if (name.endsWith(suffix)) problems.push(`must not end with "${suffix}" (reserved by S3)`);
    return problems;
}

const bucket = z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be an S3 bucket name") })
    .superRefine((name, ctx) => {
        for (const message of bucketNameProblems(name)) ctx.addIssue({ code: "custom", message });
    });

/**
 * Object key characters: S3's "safe characters" (letters, digits, `! - _ . * ' ( )`) and `/` as
 * separator. Keys the provider would rewrite are refused: terraform-provider-aws
 * internal/service/s3/object.go `sdkv1CompatibleCleanKey` strips a leading `./` and leading `/`
 * and folds `//` into `/` before every call. Two spellings of one object would then be two
 * resources, and deleting the old one (at the end of the run that renamed it) would delete every
 * version of the object just written (`resourceObjectDelete` → `deleteAllObjectVersions`).
 */
export function objectKeyProblems(key: string): string[] {
    const problems: string[] = [];
    if (key.length === 0) return ["must not be empty"];
    if (Buffer.byteLength(key, "utf8") > 1024) problems.push("must be at most 1024 bytes (S3's limit)");
    if (!/^[A-Za-z0-9!_.*'()/-]+$/.test(key)) problems.push("must be letters, digits, / and ! - _ . ' ( ) only (S3's safe characters but *)");
    // `*` is one of S3's safe characters, but the key also goes into the ARNs of the policies
    // (readers' GetObject, the operator's DeleteObject, the bucket policy's Denys), where IAM reads
    // it as a wildcard matching other objects.
    if (key.includes("*")) problems.push("must not contain * (in the policies' ARNs it would be a wildcard matching other objects)");
    if (key.startsWith("/")) problems.push("must not start with / (the provider strips it)");
    if (key.endsWith("/")) problems.push("must not end with / (that names a folder, not a file)");
    if (key.includes("//")) problems.push("must not contain // (the provider folds it into one /)");
    if (key.split("/").some((s) => s === "." || s === "..")) problems.push("must not contain . or .. segments");
    return problems;
}

function keyPart(what: string) {
    return z.string({ error: `must be ${what}` }).superRefine((key, ctx) => {
        for (const message of objectKeyProblems(key)) ctx.addIssue({ code: "custom", message });
    });
}

/**
 * Names an env file may hold: a POSIX shell variable name, since the entrypoint sources the file
 * (`set -a; . file`) and `docker --env-file` takes the same names.
 */
const variableName = z
    .string({ error: "must be a variable name" })
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be letters, digits and underscores, not starting with a digit (a shell variable name)");

/** Characters a value may carry unquoted: the same text for `sh`, `docker --env-file` and dotenv parsers. */
const plainValue = /^[A-Za-z0-9_./:@%+,=-]*$/;

/**
 * Why a value cannot go into the env file, or undefined. Values with only "plain" characters are
 * written as they are; others are single-quoted (`KEY='a b $c'`), which `sh` and dotenv parsers
 * read literally. A single quote or a line break cannot be single-quoted, and a NUL byte cannot be
 * in an environment variable at all.
 */
export function valueProblem(value: string): string | undefined {
    if (value.includes("'")) return "must not contain a single quote (the env file single-quotes values, and sh cannot escape one inside them)";
    if (/[\r\n\0]/.test(value)) return "must be one line (no line breaks or NUL: an environment variable holds one line)";
    return undefined;
}

/** One `NAME=value` line, single-quoted when the value has characters a shell would interpret. */
export function dotenvLine(name: string, value: string): string {
    if (plainValue.test(value)) return `${name}=${value}`;
    if (valueProblem(value)) throw new Error(`the value of ${name} cannot be written to an env file: ${valueProblem(value)}`);
    return `${name}='${value}'`;
}

const variables = z
    .record(
        variableName,
        z.string({ error: "must be a string" }).superRefine((value, ctx) => {
            const problem = valueProblem(value);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
        }),
        {
        error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "is not a valid name") : "must be a map of variable names to plain values"),
    })
    .optional();

const names = z.strictObject({ accessKeyId: variableName.optional(), secretAccessKey: variableName.optional() }).optional();

/**
 * A KMS key ARN (`arn:aws:kms:<region>:<account>:key/<id>`). Not an alias: the provider validates
 * `kms_key_id` as an ARN (internal/service/s3/object.go schema, `verify.ValidARN`), and its Read
 * stores the key ARN S3 reports for the object (`SSEKMSKeyId`), so an alias ARN would differ from
 * state on every run and re-upload the file each time.
 */
const kmsKeyArn = z
    .string({ error: "must be a KMS key ARN" })
    .regex(
        /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/,
        "must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); an alias or bare key id is not accepted: S3 records the key ARN, so anything else would differ on every run",
    );

/** An IAM role or user ARN that may read the file (a task role, an instance role). */
const principalArn = z
    .string({ error: "must be an IAM role or user ARN" })
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/, "must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)");

// S3 object tags: at most 10, key 1-128 and value 0-256 characters, `aws:` reserved, and only
// letters, digits, spaces and `+ - = . _ : / @` (S3 User Guide, "Categorizing your storage using
// tags"): S3 refuses others at PutObject, after validation passed.
const tagText = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const tagChars = "may hold letters, digits, spaces and + - = . _ : / @ only (S3's rule for tags)";
const tags = z
    .record(
        z.string().min(1, "must not be empty").max(128, "must be at most 128 characters").regex(tagText, tagChars).refine((k) => !/^aws:/i.test(k), 'must not start with "aws:" (reserved by AWS)'),
        z.string({ error: "must be a string" }).max(256, "must be at most 256 characters").regex(tagText, tagChars),
        { error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "is not a valid tag key") : "must be a map of tag keys to values") },
    )
    .refine((t) => Object.keys(t).length <= 10, "must have at most 10 tags (S3's limit per object)")
    .optional();

/** An env file in S3, encrypted with SSE-KMS. */
export const s3EnvFile = z.strictObject({
    type: z.literal("aws-s3-env-file"),
    /** The bucket (a general purpose bucket that already exists; the program does not create it). */
    bucket,
    /** The object key, e.g. `ci/deploy/production.env`. Give `key`, or `env` (with `prefix`). */
    key: keyPart("an S3 object key").optional(),
    /** Folder of the file, e.g. `ci/deploy`: the key is `<prefix>/<env>`. */
    prefix: keyPart("an S3 key prefix").optional(),
    /** Environment (the file's name), e.g. `production`: the key is `<prefix>/<env>`, or `<env>` without a prefix. */
    env: keyPart("an environment name").optional(),
    /**
     * The KMS key the object is encrypted with (SSE-KMS), as a key ARN: a per-team or
     * per-environment key. Default: the set's key (`credentials[].kms`). One of the two is
     * required: the file holds a secret, and readers are controlled through this key.
     */
    kmsKey: kmsKeyArn.optional(),
    /**
     * Use an S3 Bucket Key (fewer KMS requests, so lower cost and less throttling). Default
     * `true`. `false` only stops asking for one: the bucket's default encryption may still use
     * one (the provider omits a false value, internal/service/s3/object.go `resourceObjectUpload`),
     * and a file written with `true` keeps it (the attribute is Computed: with no value in config
     * the upload sends the one in state).
     */
    bucketKey: z.boolean({ error: "must be true or false" }).default(true),
    /** Content type of the object. Default `text/plain; charset=utf-8`. */
    contentType: z
        .string({ error: "must be a string" })
        .min(1, "must not be empty")
        .max(255, "must be at most 255 characters")
        // Sent as PutObject's Content-Type header: printable ASCII only.
        .regex(/^[\x20-\x7e]+$/, "must be printable ASCII on one line (it is sent as an HTTP header)")
        .default("text/plain; charset=utf-8"),
    /** Variable names of the key; defaults `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. */
    names,
    /** Fixed variables written after the key, e.g. `AWS_REGION: eu-west-1`. Plain text. */
    variables,
    /** Object tags. */
    tags,
    /**
     * Principals (IAM role or user ARNs) that read the file, e.g. the containers' task role. Used
     * for their permissions (`ci-key-rotation policy`) and, when given, for a bucket policy
     * statement that denies everyone else GetObject on the file.
     */
    readers: z.array(principalArn, { error: "must be a list of IAM role or user ARNs" }).optional(),
    /**
     * `document` (default): the program never touches the bucket policy; merge the statements
     * in docs/stores/aws-s3-env-file.md into it yourself. `manage`: the program owns the
     * bucket's whole policy (a bucket has one policy: this replaces what is there, and removing
     * the target deletes it): only for a bucket dedicated to this one env file.
     */
    bucketPolicy: z.enum(["document", "manage"], { error: 'must be "document" or "manage"' }).default("document"),
});

export type S3EnvFileTarget = z.infer<typeof s3EnvFile>;

/** The object key: `key`, or `<prefix>/<env>`. Only meaningful after `check` found no problem. */
export function objectKey(t: S3EnvFileTarget): string {
    if (t.key !== undefined) return t.key;
    return t.prefix ? `${t.prefix}/${t.env ?? ""}` : (t.env ?? "");
}

export function keyNames(t: S3EnvFileTarget): KeyNames {
    return {
        accessKeyId: t.names?.accessKeyId ?? defaultKeyNames.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaultKeyNames.secretAccessKey,
    };
}

/** `arn:aws:s3:::bucket/key`. */
export function objectArn(t: S3EnvFileTarget): string {
    return `arn:aws:s3:::${t.bucket}/${objectKey(t)}`;
}

/** The S3 user metadata key carrying the access key id (S3 returns metadata keys lower-cased). */
export const accessKeyIdMetadata = "access-key-id";

/**
 * The env file's text. The key's values (AWS keys: letters, digits, `+` and `/`) are never
 * quoted; fixed variables are quoted when they need it ({@link dotenvLine}).
 */
export function envFileText(t: S3EnvFileTarget, setName: string, accessKeyId: string, secretAccessKey: string): string {
    const n = keyNames(t);
    const lines = [
        `# AWS access key of credential set "${setName.replace(/[\r\n]/g, " ")}", rotated by ci-key-rotation: edits here are overwritten.`,
        dotenvLine(n.accessKeyId, accessKeyId),
        dotenvLine(n.secretAccessKey, secretAccessKey),
        ...Object.entries(t.variables ?? {}).map(([name, value]) => dotenvLine(name, value)),
    ];
    return `${lines.join("\n")}\n`;
}

/** A bucket policy statement (Deny with a principal), as the bucket's policy document holds it. */
export interface BucketPolicyStatement {
    Sid: string;
    Effect: "Deny";
    Principal: "*";
    Action: string | string[];
    Resource: string | string[];
    Condition: Record<string, Record<string, string | string[] | boolean>>;
}

/** Letters and digits of a text, for `Sid`s that stay apart between targets. */
function sidSuffix(t: S3EnvFileTarget): string {
    let h = 0x811c9dc5;
    for (const c of `${t.bucket}/${objectKey(t)}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return h.toString(16).padStart(8, "0");
}

/**
 * The bucket policy statements that protect the file (what `bucketPolicy: manage` writes, and
 * what `document` asks you to merge). What S3 can enforce, and what it cannot:
 * - puts without SSE-KMS, or with another key, are denied (`s3:x-amz-server-side-encryption`,
 *   `s3:x-amz-server-side-encryption-aws-kms-key-id` are PutObject condition keys);
 * - plain HTTP is denied (`aws:SecureTransport`);
 * - with `readers`, GetObject by any other principal is denied.
 * A read "without that key" cannot be a bucket policy condition: GetObject has no condition key
 * for the object's encryption. S3 decrypts with the reader's own permissions, so the KMS key's
 * policy and the reader's `kms:Decrypt` decide: a principal without it gets AccessDenied.
 */
export function bucketPolicyStatements(t: S3EnvFileTarget, kmsKeyArn: string): BucketPolicyStatement[] {
    const object = objectArn(t);
    const sid = sidSuffix(t);
    const statements: BucketPolicyStatement[] = [
        {
            Sid: `DenyUnencryptedPut${sid}`,
            Effect: "Deny",
            Principal: "*",
            Action: "s3:PutObject",
            Resource: object,
            Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } },
        },
        {
            Sid: `DenyPutWithOtherKey${sid}`,
            Effect: "Deny",
            Principal: "*",
            Action: "s3:PutObject",
            Resource: object,
            Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kmsKeyArn } },
        },
        {
            Sid: `DenyInsecureTransport${sid}`,
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: object,
            Condition: { Bool: { "aws:SecureTransport": false } },
        },
    ];
    if (t.readers && t.readers.length > 0) {
        statements.push({
            Sid: `DenyOtherReaders${sid}`,
            Effect: "Deny",
            Principal: "*",
            Action: ["s3:GetObject", "s3:GetObjectVersion"],
            Resource: object,
            // The operator keeps reading it (the provider's HeadObject needs s3:GetObject): list
            // its role among `readers`, or this statement locks the program out of its own file.
            Condition: { ArnNotEquals: { "aws:PrincipalArn": [...t.readers] } },
        });
    }
    return statements;
}

/** S3 env files encrypted with SSE-KMS: what config may say. */
export const s3Spec: TargetSpec<S3EnvFileTarget> = {
    schemas: [s3EnvFile],

    label(t) {
        return `s3 env file s3://${t.bucket}/${objectKey(t)}`;
    },

    destinations(t) {
        // Bucket names are global and lower-case; keys are case-sensitive in S3, but resource
        // names are lower-cased slugs of the label (rotation/pulumi/credential-set.ts `slug`): two
        // keys differing only in case would get one URN and fail the update, so they count as one place.
        const out = [`s3 object s3://${t.bucket}/${objectKey(t).toLowerCase()}`];
        // A bucket has one policy: two targets managing it would overwrite each other.
        if (t.bucketPolicy === "manage") out.push(`s3 bucket policy of ${t.bucket}`);
        return out;
    },

    check(t) {
        const problems: { path: (string | number)[]; message: string }[] = [];
        if (t.key !== undefined && (t.prefix !== undefined || t.env !== undefined)) {
            problems.push({ path: [t.prefix !== undefined ? "prefix" : "env"], message: "cannot be given with key: give key, or env (with an optional prefix)" });
        } else if (t.key === undefined && t.env === undefined) {
            problems.push({ path: t.prefix !== undefined ? ["env"] : ["key"], message: t.prefix !== undefined ? "is required with prefix (the key is <prefix>/<env>)" : "is required: give key, or env (with an optional prefix)" });
        } else if (t.key === undefined) {
            if (t.env?.includes("/")) problems.push({ path: ["env"], message: "must not contain / (put folders in prefix)" });
            const key = objectKey(t);
            if (Buffer.byteLength(key, "utf8") > 1024) problems.push({ path: ["env"], message: "makes the key longer than 1024 bytes (S3's limit)" });
        }
        const n = keyNames(t);
        if (n.accessKeyId === n.secretAccessKey) problems.push({ path: ["names", "secretAccessKey"], message: "must differ from names.accessKeyId" });
        for (const name of Object.keys(t.variables ?? {})) {
            if (name === n.accessKeyId || name === n.secretAccessKey) {
                problems.push({ path: ["variables", name], message: "is already the name of an access key variable: choose another name" });
            }
        }
        return problems;
    },

    checkInSet(t, set) {
        // SSE-KMS is the point of this store: S3's own key (`aws/s3`) lets any principal of the
        // account with s3:GetObject read the file, so there must be a key to grant readers on.
        if (t.kmsKey === undefined && !set.hasKmsKey) {
            return [{ path: ["kmsKey"], message: "is required when the set has no KMS key (credentials[].kms): give the ARN of the key readers may decrypt with" }];
        }
        return [];
    },

    awsPermissions(t) {
        const object = objectArn(t);
        const statements: OperatorStatement[] = [
            {
                Sid: "S3EnvFileWrite",
                Effect: "Allow",
                // PutObject(+Tagging) writes it; HeadObject (s3:GetObject) and GetObjectTagging
                // read it back; in a versioned bucket Delete lists and deletes every version
                // (terraform-provider-aws internal/service/s3/delete.go `deleteAllObjectVersions`).
                Action: ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                Resource: object,
            },
            { Sid: "S3EnvFileListVersions", Effect: "Allow", Action: ["s3:ListBucketVersions", "s3:ListBucket"], Resource: `arn:aws:s3:::${t.bucket}` },
            {
                Sid: "S3EnvFileEncrypt",
                Effect: "Allow",
                // PutObject with SSE-KMS makes a data key with the caller's permissions.
                Action: ["kms:GenerateDataKey", "kms:Decrypt"],
                Resource: t.kmsKey ?? "*",
                Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" } },
            },
        ];
        if (t.bucketPolicy === "manage") {
            statements.push({ Sid: "S3EnvFileBucketPolicy", Effect: "Allow", Action: ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"], Resource: `arn:aws:s3:::${t.bucket}` });
        }
        return statements;
    },

    readerPermissions(t) {
        // With a bucket key the encryption context is the bucket's ARN, else the object's; with
        // `bucketKey: false` the bucket's default encryption may still use one, so both.
        const context = t.bucketKey ? `arn:aws:s3:::${t.bucket}` : [`arn:aws:s3:::${t.bucket}`, objectArn(t)];
        return [
            { Sid: "S3EnvFileRead", Effect: "Allow", Action: ["s3:GetObject"], Resource: objectArn(t) },
            {
                Sid: "S3EnvFileDecrypt",
                Effect: "Allow",
                Action: ["kms:Decrypt"],
                Resource: t.kmsKey ?? "*",
                Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" }, StringEquals: { "kms:EncryptionContext:aws:s3:arn": context } },
            },
        ];
    },
};
