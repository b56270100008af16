/**
 * GitHub targets as config describes them: schemas, labels, destinations and checks. Pure: the
 * configuration layer imports this, so nothing here loads the Pulumi SDK (resources: `./store`).
 */
import { z } from "zod";
import { decryptPermissions, encryptedKeyNames, encryptPermissions, encryptSchema } from "../kms/spec";
import { defaultKeyNames, type KeyNames, type TargetSpec } from "../types";

// GitHub's rules for secret and variable names: letters, digits and underscores, not starting
// with a digit, and the GITHUB_ prefix is reserved.
const secretName = z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be letters, digits and underscores, not starting with a digit")
    .refine((n) => !/^GITHUB_/i.test(n), "must not start with GITHUB_ (reserved by GitHub)");

const names = z
    .strictObject({ accessKeyId: secretName.optional(), secretAccessKey: secretName.optional() })
    .optional();

const variables = z
    .record(secretName, z.string(), { error: "must be a map of variable names to plain values" })
    .optional();

const ownerRepo = z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : 'must be "owner/name"') })
    .regex(/^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/, 'must be "owner/name"');

const owner = z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be an organization login") })
    .regex(/^[A-Za-z0-9-]{1,39}$/, "must be an organization login (letters, digits and dashes)");

export const githubRepository = z.strictObject({
    type: z.literal("github-repository"),
    /** `owner/name` of the repository. */
    repository: ownerRepo,
    /** Secret names; defaults `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. */
    names,
    /** Plain Actions variables to set beside the secrets, e.g. `AWS_REGION`. */
    variables,
    /**
     * Write the KMS ciphertext of the secret access key (base64), made with `encrypt.context`,
     * instead of the secret; a runner role decrypts it at job time (docs/stores/kms.md).
     */
    encrypt: encryptSchema.optional(),
});

export const githubEnvironment = z.strictObject({
    type: z.literal("github-environment"),
    repository: ownerRepo,
    /** Deployment environment name; its protection rules guard the secret. */
    environment: z.string({ error: "is required" }).min(1, "must not be empty").max(255),
    names,
    variables,
    /**
     * Write the KMS ciphertext of the secret access key (base64), made with `encrypt.context`,
     * instead of the secret; a runner role decrypts it at job time (docs/stores/kms.md).
     */
    encrypt: encryptSchema.optional(),
});

export const githubOrganization = z.strictObject({
    type: z.literal("github-organization"),
    organization: owner,
    /** Which repositories see the secret. Default `private` (private and internal repositories). */
    visibility: z.enum(["all", "private", "selected"], { error: 'must be "all", "private" or "selected"' }).default("private"),
    /** With `visibility: selected`: repository names in the organization. */
    repositories: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "must be a repository name (without the owner)")).optional(),
    names,
    variables,
    /**
     * Write the KMS ciphertext of the secret access key (base64), made with `encrypt.context`,
     * instead of the secret; a runner role decrypts it at job time (docs/stores/kms.md).
     */
    encrypt: encryptSchema.optional(),
});

export const githubDependabot = z.strictObject({
    type: z.literal("github-dependabot"),
    repository: ownerRepo,
    names,
    /**
     * Write the KMS ciphertext of the secret access key (base64), made with `encrypt.context`,
     * instead of the secret; a runner role decrypts it at job time (docs/stores/kms.md).
     */
    encrypt: encryptSchema.optional(),
});

export type GithubTarget =
    | z.infer<typeof githubRepository>
    | z.infer<typeof githubEnvironment>
    | z.infer<typeof githubOrganization>
    | z.infer<typeof githubDependabot>;

/** The names the target writes: `names`, else the defaults (other ones when it encrypts, see `encryptedKeyNames`). */
export function keyNames(t: GithubTarget): KeyNames {
    const defaults = t.encrypt ? encryptedKeyNames : defaultKeyNames;
    return {
        accessKeyId: t.names?.accessKeyId ?? defaults.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaults.secretAccessKey,
    };
}

export function ownerOf(t: GithubTarget): string {
    return t.type === "github-organization" ? t.organization : t.repository.split("/")[0];
}

export function place(t: GithubTarget): string {
    switch (t.type) {
        case "github-repository":
            return `repository ${t.repository}`;
        case "github-environment":
            return `environment ${t.repository}:${t.environment}`;
        case "github-organization":
            return `organization ${t.organization}`;
        case "github-dependabot":
            return `dependabot ${t.repository}`;
    }
}

/** GitHub resolves names case-insensitively; destinations compare in lower case. */
export function destination(t: GithubTarget, kind: "secret" | "variable", name: string): string {
    return `github ${place(t)} ${kind} ${name}`.toLowerCase();
}

/** GitHub Actions (repository, environment, organization) and Dependabot secrets: what config may say. */
export const githubSpec: TargetSpec<GithubTarget> = {
    schemas: [githubRepository, githubEnvironment, githubOrganization, githubDependabot],

    label(t) {
        return `github ${place(t)}`;
    },

    destinations(t) {
        const n = keyNames(t);
        const out = [destination(t, "secret", n.accessKeyId), destination(t, "secret", n.secretAccessKey)];
        if (t.type !== "github-dependabot") for (const v of Object.keys(t.variables ?? {})) out.push(destination(t, "variable", v));
        return out;
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
        if (n.accessKeyId.toLowerCase() === n.secretAccessKey.toLowerCase()) {
            problems.push({ path: ["names", "secretAccessKey"], message: "must differ from names.accessKeyId" });
        }
        if (t.type === "github-organization") {
            if (t.visibility === "selected" && !t.repositories?.length) {
                problems.push({ path: ["repositories"], message: 'must list at least one repository when visibility is "selected"' });
            }
            if (t.visibility !== "selected" && t.repositories !== undefined) {
                problems.push({ path: ["repositories"], message: 'is only used with visibility "selected"' });
            }
        }
        return problems;
    },
};
