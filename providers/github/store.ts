import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { updatedInPlace } from "../in-place";
import { ciphertextFor } from "../kms/store";
import type { DeclareContext, TargetStore, WriteEvidence } from "../types";
import { githubSpec, keyNames, ownerOf, type GithubTarget } from "./spec";

export type { GithubTarget } from "./spec";

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
    ...githubSpec,

    declare(t, ctx) {
        const provider = providerFor(t, ctx);
        const n = keyNames(t);
        const out: pulumi.Resource[] = [];
        // With `encrypt`, the secret holds the KMS ciphertext of the secret access key; the access
        // key id stays plain (it is no secret, and a job needs it beside the decrypted secret).
        let secretValue = ctx.key.secretAccessKey;
        let idValue = ctx.key.accessKeyId;
        /** What both secrets wait on: with `encrypt`, the ciphertext. */
        const after: pulumi.Resource[] = [];
        if (t.encrypt) {
            const sealed = ciphertextFor(t.encrypt, ctx.key.secretAccessKey, ctx, n.secretAccessKey.toLowerCase());
            out.push(sealed.resource);
            after.push(sealed.resource);
            secretValue = sealed.value;
            // The id is written only once the ciphertext exists: a failed Encrypt (throttling, a
            // key policy) must not leave the new id beside the old key's ciphertext, which no job
            // could use. The id becomes known with the ciphertext, so both change in the same run.
            idValue = pulumi.all([ctx.key.accessKeyId, sealed.value]).apply(([id]) => id);
        }
        const values: [string, pulumi.Output<string>][] = [
            [n.accessKeyId, idValue],
            [n.secretAccessKey, secretValue],
        ];
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
        // The secrets also carry the set's rewrite trigger: a run that must write a value the
        // engine's record of a refused write may already claim replaces them (delete-first), a
        // real write (`DeclareContext.rewriteTrigger`). A different trigger replaces the resource
        // whatever the provider's diff says (pulumi/pulumi pkg/resource/deploy/step_generator.go
        // `generateStepsFromDiff`, `shouldTriggerReplace`; engine >= 3.208, Node SDK >= 3.211).
        // An older engine ignores the option, and that recovery then waits for the next rotation.
        const secretOpts = (suffix: string): pulumi.CustomResourceOptions => ({ ...opts(suffix), replacementTrigger: ctx.rewriteTrigger ?? "none" });
        switch (t.type) {
            case "github-repository": {
                const repository = t.repository.split("/")[1];
                for (const [secretName, value] of values) {
                    out.push(secret(new github.ActionsSecret(rn(secretName), { repository, secretName, value }, secretOpts(secretName)), secretName));
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
                    out.push(secret(new github.ActionsEnvironmentSecret(rn(secretName), { repository, environment, secretName, value }, secretOpts(secretName)), secretName));
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
                        new github.ActionsOrganizationSecret(rn(secretName), { secretName, visibility, value, ...(selectedRepositoryIds ? { selectedRepositoryIds } : {}) }, secretOpts(secretName)),
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
                    out.push(secret(new github.DependabotSecret(rn(secretName), { repository, secretName, value }, secretOpts(secretName)), secretName));
                }
                break;
            }
        }
        // Every secret is updated in place by the bridged provider (a new value is an update), so a
        // refused write of one leaves the engine's record claiming the value (see `updatedInPlace`).
        for (const r of out) if (secretNames.has(r)) updatedInPlace(r, after);
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
