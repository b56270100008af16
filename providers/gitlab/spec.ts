/**
 * GitLab targets as config describes them: schemas, labels, destinations and checks. Pure: the
 * configuration layer imports this, so nothing here loads the Pulumi SDK (resources: `./store`).
 */
import { z } from "zod";
import { decryptPermissions, encryptedKeyNames, encryptPermissions, encryptSchema } from "../kms/spec";
import { defaultKeyNames, type KeyNames, type TargetSpec } from "../types";

// GitLab's rule for CI/CD variable keys.
const variableKey = z
    .string({ error: "must be a variable key" })
    .regex(/^[A-Za-z0-9_]{1,255}$/, "must be 1-255 letters, digits and underscores (GitLab's rule for variable keys)");

const names = z
    .strictObject({ accessKeyId: variableKey.optional(), secretAccessKey: variableKey.optional() })
    .optional();

const variables = z
    .record(variableKey, z.string(), {
        // zod reports a bad key as "Invalid key in record"; say what is wrong with it instead.
        error: (iss) => (iss.code === "invalid_key" ? (iss.issues?.[0]?.message ?? "is not a valid key") : "must be a map of variable keys to plain values"),
    })
    .optional();

// A path segment as GitLab allows it: letters, digits, `_`, `-`, `.`, not starting with `-` or `.`.
const segment = "[A-Za-z0-9_][A-Za-z0-9_.-]*";

/** A numeric id (YAML number or digits) or a full path, normalised to a string. */
function ownerRef(kind: "project" | "group") {
    const path = kind === "project" ? new RegExp(`^${segment}(/${segment})+$`) : new RegExp(`^${segment}(/${segment})*$`);
    const shape = kind === "project" ? 'a numeric project id or a full path such as "acme/api"' : 'a numeric group id or a full path such as "acme" or "acme/platform"';
    return z
        .union([z.number(), z.string()], { error: (iss) => (iss.input === undefined ? "is required" : `must be ${shape}`) })
        .transform((ref, ctx) => {
            const text = String(ref);
            // All digits is an id to GitLab, never a path.
            if (/^[0-9]+$/.test(text) ? /^[1-9][0-9]*$/.test(text) : path.test(text) && !/\.(git|atom)$/.test(text) && text.length <= 255) return text;
            ctx.addIssue({ code: "custom", message: `must be ${shape}` });
            return z.NEVER;
        });
}

const flag = () => z.boolean({ error: "must be true or false" });

// GitLab environment names allow letters, digits, spaces and - _ / $ { } .; a scope adds `*`.
const environmentScope = z
    .string({ error: 'must be "*" or an environment name' })
    .min(1, 'must be "*" or an environment name')
    .max(255, "must be at most 255 characters")
    .regex(/^[A-Za-z0-9_\-/${}.* ]+$/, 'must be "*" or an environment name, optionally with * wildcards (letters, digits, spaces and - _ / $ { } . *)')
    .refine((s) => !/^[/ ]|[/ ]$/.test(s), "must not begin or end with a slash or a space")
    .default("*");

const common = {
    /** Variable keys; defaults `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, the names the AWS CLI and SDKs read. */
    names,
    /**
     * Only pipelines on protected branches and tags receive the variables. Default `true`: deploy
     * credentials should not reach a pipeline any developer can start from a branch. Set `false`
     * when jobs on unprotected branches need the key.
     */
    protected: flag().default(true),
    /**
     * GitLab masks the values in job logs. Default `true`. Applies to both key variables; AWS
     * keys always satisfy GitLab's masking rules.
     */
    masked: flag().default(true),
    /**
     * Masked and also hidden in GitLab's UI and API (GitLab 17.4 or later). Default `false`.
     * GitLab only sets this when a variable is created, so changing it replaces the variables
     * (deleted, then created: a job starting in between finds no key). Needs `masked`.
     */
    hidden: flag().default(false),
    /**
     * GitLab does not expand `$` references in the values. Default `true`: the values are
     * literal credentials, and expansion could only corrupt them.
     */
    raw: flag().default(true),
    /** Which environments' jobs receive the variables (`*`, `production`, `review/*`). Default `*`: all. */
    environmentScope,
    /** Description shown in GitLab (at most 255 characters). Default: says the variable is rotated by ci-key-rotation. */
    description: z.string({ error: "must be a string" }).max(255, "must be at most 255 characters").optional(),
    /** Plain variables to set beside the key (not masked, same flags and scope), e.g. `AWS_REGION`. */
    variables,
    /**
     * Write the KMS ciphertext of the secret access key (base64), made with `encrypt.context`,
     * instead of the secret; a runner role decrypts it at job time (docs/stores/kms.md).
     */
    encrypt: encryptSchema.optional(),
};

/** CI/CD variables of one project. */
export const gitlabProject = z.strictObject({
    type: z.literal("gitlab-project"),
    /** Numeric project id or full path (`acme/platform/api`). */
    project: ownerRef("project"),
    ...common,
});

/** CI/CD variables of a group: every project in the group and its subgroups receives them. */
export const gitlabGroup = z.strictObject({
    type: z.literal("gitlab-group"),
    /** Numeric group id or full path (`acme` or `acme/platform`). */
    group: ownerRef("group"),
    ...common,
});

export type GitlabTarget = z.infer<typeof gitlabProject> | z.infer<typeof gitlabGroup>;

/** The names the target writes: `names`, else the defaults (other ones when it encrypts, see `encryptedKeyNames`). */
export function keyNames(t: GitlabTarget): KeyNames {
    const defaults = t.encrypt ? encryptedKeyNames : defaultKeyNames;
    return {
        accessKeyId: t.names?.accessKeyId ?? defaults.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaults.secretAccessKey,
    };
}

export function ownerOf(t: GitlabTarget): { scope: "project" | "group"; owner: string } {
    return t.type === "gitlab-project" ? { scope: "project", owner: t.project } : { scope: "group", owner: t.group };
}

/** GitLab resolves paths case-insensitively; keys and scopes are case-sensitive. */
export function destination(t: GitlabTarget, key: string): string {
    const { scope, owner } = ownerOf(t);
    return `gitlab ${scope} ${owner.toLowerCase()} variable ${key} environment scope ${t.environmentScope}`;
}

/**
 * Resource names come from the label's slug, which drops characters such as `*`: scopes like
 * `review` and `review/*` would share a slug. A short hash of the exact scope keeps them apart.
 */
export function scopeSuffix(scope: string): string {
    if (scope === "*") return "";
    let h = 0x811c9dc5;
    for (const c of scope) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return `-${h.toString(16).padStart(8, "0")}`;
}

/** GitLab CI/CD variables of projects and groups: what config may say. */
export const gitlabSpec: TargetSpec<GitlabTarget> = {
    schemas: [gitlabProject, gitlabGroup],

    // `GitlabVariable` reads these in `configure` (then falls back to GITLAB_TOKEN / GITLAB_BASE_URL).
    dynamicProviderConfig: ["gitlab:token", "gitlab:baseUrl"],

    label(t) {
        const { scope, owner } = ownerOf(t);
        return `gitlab ${scope} ${owner}${t.environmentScope === "*" ? "" : ` environment scope ${t.environmentScope}`}`;
    },

    destinations(t) {
        const n = keyNames(t);
        // A key listed twice in one target is reported by `check`, not as a clash with itself.
        const keys = new Set([n.accessKeyId, n.secretAccessKey, ...Object.keys(t.variables ?? {})]);
        return [...keys].map((key) => destination(t, key));
    },

    // Only encrypting targets touch AWS: the operator encrypts, the runner's role decrypts.
    awsPermissions(t) {
        return encryptPermissions(t.encrypt);
    },

    readerPermissions(t) {
        return decryptPermissions(t.encrypt);
    },

    check(t) {
        const problems: { path: (string | number)[]; message: string }[] = [];
        const n = keyNames(t);
        if (n.accessKeyId === n.secretAccessKey) {
            problems.push({ path: ["names", "secretAccessKey"], message: "must differ from names.accessKeyId" });
        }
        for (const key of Object.keys(t.variables ?? {})) {
            if (key === n.accessKeyId || key === n.secretAccessKey) {
                problems.push({ path: ["variables", key], message: "is already the key of an access key variable: choose another key" });
            }
        }
        if (t.hidden && !t.masked) {
            problems.push({ path: ["masked"], message: "must be true when hidden is true (GitLab hides only masked variables)" });
        }
        return problems;
    },
};
