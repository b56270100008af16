import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { defaultKeyNames, type DeclareContext, type KeyNames, type TargetStore, type WriteEvidence } from "../types";

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
});

export const githubEnvironment = z.strictObject({
    type: z.literal("github-environment"),
    repository: ownerRepo,
    /** Deployment environment name; its protection rules guard the secret. */
    environment: z.string({ error: "is required" }).min(1, "must not be empty").max(255),
    names,
    variables,
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
});

export const githubDependabot = z.strictObject({
    type: z.literal("github-dependabot"),
    repository: ownerRepo,
    names,
});

export type GithubTarget =
    | z.infer<typeof githubRepository>
    | z.infer<typeof githubEnvironment>
    | z.infer<typeof githubOrganization>
    | z.infer<typeof githubDependabot>;

function keyNames(t: GithubTarget): KeyNames {
    return {
        accessKeyId: t.names?.accessKeyId ?? defaultKeyNames.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaultKeyNames.secretAccessKey,
    };
}

function ownerOf(t: GithubTarget): string {
    return t.type === "github-organization" ? t.organization : t.repository.split("/")[0];
}

function place(t: GithubTarget): string {
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
function destination(t: GithubTarget, kind: "secret" | "variable", name: string): string {
    return `github ${place(t)} ${kind} ${name}`.toLowerCase();
}

/** One explicit provider per owner, shared by the set's targets. */
function providerFor(t: GithubTarget, ctx: DeclareContext): github.Provider {
    const login = ownerOf(t);
    return ctx.once(`github-provider:${login.toLowerCase()}`, () => {
        const config = new pulumi.Config("github");
        // The provider falls back to GITHUB_TOKEN when no token is set. GitHub App credentials in
        // GITHUB_APP_ID / GITHUB_APP_INSTALLATION_ID / GITHUB_APP_PEM_FILE are read only inside an
        // `app_auth` block: its fields default to those variables (terraform-provider-github
        // github/provider.go; integrations/terraform-provider-github#1717), so an explicit
        // provider needs the block, empty. Only their presence is looked at here, never a value.
        return new github.Provider(
            `${ctx.setName}-github-${login.toLowerCase()}`,
            { owner: login, token: config.getSecret("token"), baseUrl: config.get("baseUrl"), appAuth: appAuthFromEnvironment(config) },
            { parent: ctx.parent },
        );
    });
}

/**
 * `appAuth` for an explicit provider: `github:appAuth` from config when set (a secret: it holds
 * the private key), else an empty block when the GitHub App variables are in the environment
 * and no token is configured, else none.
 */
export function appAuthFromEnvironment(config: pulumi.Config, env: NodeJS.ProcessEnv = process.env): pulumi.Input<github.types.input.ProviderAppAuth> | undefined {
    const configured = config.getSecretObject<github.types.input.ProviderAppAuth>("appAuth");
    if (configured) return configured;
    if (config.get("token")) return undefined;
    // The block's fields default to these variables inside the provider.
    if (env.GITHUB_APP_ID && env.GITHUB_APP_INSTALLATION_ID && env.GITHUB_APP_PEM_FILE) return {} as github.types.input.ProviderAppAuth;
    return undefined;
}

type SecretResource = github.ActionsSecret | github.ActionsEnvironmentSecret | github.ActionsOrganizationSecret | github.DependabotSecret;

/** The secret name of each secret resource `declare` made, for `confirmWrites`' messages. */
const secretNames = new WeakMap<pulumi.Resource, string>();

function secret<R extends SecretResource>(resource: R, name: string): R {
    secretNames.set(resource, name);
    return resource;
}

/** GitHub Actions (repository, environment, organization) and Dependabot secrets. */
export const githubStore: TargetStore<GithubTarget> = {
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

    declare(t, ctx) {
        const provider = providerFor(t, ctx);
        const n = keyNames(t);
        const values: [string, pulumi.Output<string>][] = [
            [n.accessKeyId, ctx.key.accessKeyId],
            [n.secretAccessKey, ctx.key.secretAccessKey],
        ];
        const out: pulumi.Resource[] = [];
        // GitHub names are case-insensitive: a resource is named by the lower-cased secret name, so
        // a change of case in `names` is a replacement of the same resource (below), never a new
        // resource whose old twin the engine deletes after the run, taking the secret with it.
        // The alias carries resources named before (set prefix, name as written) over without a step.
        const rn = (suffix: string) => `${ctx.resourceName}-${suffix.toLowerCase()}`;
        // Every GitHub secret and variable is replaced delete-first. The default replacement is
        // create-then-delete (pulumi/pulumi pkg/resource/deploy/step_generator.go), and the provider
        // asks for delete-first only for environment secrets (pulumi-github provider/resources.go).
        // A replacement that keeps the remote name (a `names` case change, a provider change on
        // older engines) would otherwise write the new value and then delete that very secret.
        const opts = (suffix: string): pulumi.CustomResourceOptions => ({
            parent: ctx.parent,
            provider,
            deleteBeforeReplace: true,
            aliases: ctx.previousResourceNames.map((previous) => ({ name: `${previous}-${suffix}` })),
        });
        switch (t.type) {
            case "github-repository": {
                const repository = t.repository.split("/")[1];
                for (const [secretName, value] of values) {
                    out.push(secret(new github.ActionsSecret(rn(secretName), { repository, secretName, value }, opts(secretName)), secretName));
                }
                for (const [variableName, value] of Object.entries(t.variables ?? {})) {
                    out.push(new github.ActionsVariable(rn(`var-${variableName}`), { repository, variableName, value }, opts(`var-${variableName}`)));
                }
                break;
            }
            case "github-environment": {
                const repository = t.repository.split("/")[1];
                const environment = t.environment;
                for (const [secretName, value] of values) {
                    out.push(secret(new github.ActionsEnvironmentSecret(rn(secretName), { repository, environment, secretName, value }, opts(secretName)), secretName));
                }
                for (const [variableName, value] of Object.entries(t.variables ?? {})) {
                    out.push(
                        new github.ActionsEnvironmentVariable(rn(`var-${variableName}`), { repository, environment, variableName, value }, opts(`var-${variableName}`)),
                    );
                }
                break;
            }
            case "github-organization": {
                const visibility = t.visibility;
                const repoIds =
                    visibility === "selected"
                        ? pulumi.all(
                              (t.repositories ?? []).map(
                                  (name) => github.getRepositoryOutput({ fullName: `${t.organization}/${name}` }, { parent: ctx.parent, provider }).repoId,
                              ),
                          )
                        : undefined;
                // The ids go on the secret (and variable) itself. An update of the secret's value
                // sends `selected_repository_ids` only from the secret's own field, and GitHub
                // treats an omitted list as empty (terraform-provider-github
                // resource_github_actions_organization_secret.go
                // `resourceGithubActionsOrganizationSecretCreateOrUpdate` PUTs the secret with the
                // ids of its own `selected_repository_ids` only), while `...SecretRepositories` sees no diff and
                // does not restore them. The `...Repositories` resources stay declared with the
                // same ids: removing one would make the engine delete it, and its delete sets the
                // selection to [] (`resourceGithubActionsOrganizationSecretRepositoriesDelete`).
                // pulumi-github marks the secret's `selected_repository_ids` ForceNew
                // (provider/resources.go), so a change of `repositories` (and the first run that
                // adds the ids to an existing secret) replaces it: delete-first, per `opts`.
                const selectedRepositoryIds = repoIds;
                for (const [secretName, value] of values) {
                    const orgSecret = secret(
                        new github.ActionsOrganizationSecret(rn(secretName), { secretName, visibility, value, ...(selectedRepositoryIds ? { selectedRepositoryIds } : {}) }, opts(secretName)),
                        secretName,
                    );
                    out.push(orgSecret);
                    if (repoIds) {
                        out.push(
                            new github.ActionsOrganizationSecretRepositories(
                                rn(`${secretName}-repos`),
                                { secretName: orgSecret.secretName, selectedRepositoryIds: repoIds },
                                opts(`${secretName}-repos`),
                            ),
                        );
                    }
                }
                for (const [variableName, value] of Object.entries(t.variables ?? {})) {
                    const variable = new github.ActionsOrganizationVariable(
                        rn(`var-${variableName}`),
                        { variableName, visibility, value, ...(selectedRepositoryIds ? { selectedRepositoryIds } : {}) },
                        opts(`var-${variableName}`),
                    );
                    out.push(variable);
                    if (repoIds) {
                        out.push(
                            new github.ActionsOrganizationVariableRepositories(
                                rn(`var-${variableName}-repos`),
                                { variableName: variable.variableName, selectedRepositoryIds: repoIds },
                                opts(`var-${variableName}-repos`),
                            ),
                        );
                    }
                }
                break;
            }
            case "github-dependabot": {
                const repository = t.repository.split("/")[1];
                for (const [secretName, value] of values) {
                    out.push(secret(new github.DependabotSecret(rn(secretName), { repository, secretName, value }, opts(secretName)), secretName));
                }
                break;
            }
        }
        return out;
    },

    confirmWrites(_t, declared) {
        // The provider reads the secret back after each write and records GitHub's `updated_at`
        // as `updatedAt` (it changes only when the provider writes; `remoteUpdatedAt` also moves
        // on writes made by others). Variables and repository selections carry no key.
        const evidence: WriteEvidence[] = [];
        for (const r of declared) {
            const name = secretNames.get(r);
            if (name !== undefined) evidence.push({ what: `secret ${name}`, writtenAt: (r as SecretResource).updatedAt });
        }
        return evidence;
    },
};
