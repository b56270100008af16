import sodium from "libsodium-wrappers";
import { GithubApiError, sleep, type GithubRest } from "./rest";

/**
 * The resources of the test-only GitHub plugin: the same REST calls, in the same order, with the
 * same schema rules (required, ForceNew, CustomizeDiff) as terraform-provider-github v6.13.0 (the
 * `upstream` of pulumi/pulumi-github v6.15.0), file by file under `github/`:
 * `resource_github_actions_secret.go`, `resource_github_actions_environment_secret.go`,
 * `resource_github_actions_organization_secret.go`,
 * `resource_github_actions_organization_secret_repositories.go`, `resource_github_dependabot_secret.go`,
 * `resource_github_actions_variable.go`, `resource_github_actions_environment_variable.go`,
 * `resource_github_actions_organization_variable.go`,
 * `resource_github_actions_organization_variable_repositories.go`, `util_diff.go` (`diffRepository`,
 * `diffSecret`, `diffSecretVariableVisibility`), `util_retry.go`, `util.go` (`buildID`,
 * `validateSecretNameFunc`, `checkOrganization`), and `data_source_github_repository.go`.
 * pulumi-github's own overrides (`provider/resources.go` at v6.15.0): `ActionsEnvironmentSecret`
 * is delete-before-replace; `ActionsOrganizationSecret.selectedRepositoryIds` forces replacement.
 * Property names are the bridge's camelCase of the Terraform names.
 */

/** The provider's view of its owner, as `configureProviderMeta` (`github/provider.go`) leaves it. */
export interface Owner {
    rest: GithubRest;
    name: string;
    isOrganization: boolean;
    timeScale: number;
}

export type Props = Record<string, any>;

/** A failure after the resource exists: the bridge reports it as a partial failure with this state. */
export class InitError extends Error {
    constructor(
        readonly id: string,
        readonly properties: Props,
        readonly reasons: string[],
    ) {
        super(reasons.join("\n"));
    }
}

export interface ResourceKind {
    /** Input properties (Terraform Required/Optional). */
    inputs: string[];
    required: string[];
    /** Inputs whose change replaces the resource. */
    forceNew: string[];
    deleteBeforeReplace?: boolean;
    /** CheckFailures beyond required-ness. */
    check?(news: Props): { property: string; reason: string }[];
    /** CustomizeDiff: extra replaces or changes for an existing resource. */
    customizeDiff?(owner: Owner, olds: Props, news: Props): Promise<{ replaces?: string[]; changes?: string[] }>;
    create(owner: Owner, news: Props): Promise<{ id: string; outs: Props }>;
    /** undefined when the resource is gone. */
    read(owner: Owner, id: string, state: Props): Promise<Props | undefined>;
    update(owner: Owner, id: string, olds: Props, news: Props): Promise<Props>;
    delete(owner: Owner, id: string, state: Props): Promise<void>;
}

/** go-github's `Timestamp.String()`, i.e. Go's `time.Time.String()` of a UTC time. */
export function goTime(iso: string | undefined): string | undefined {
    if (!iso) return undefined;
    const d = new Date(iso);
    const p = (n: number) => String(n).padStart(2, "0");
    return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

const enc = encodeURIComponent;
const is404 = (e: unknown) => e instanceof GithubApiError && e.status === 404;
/** `buildID` joins with `:`; `escapeIDPart` turns `:` into `??`. */
const escapeIDPart = (s: string) => s.replaceAll(":", "??");

/** `retryUntilResourceFound` with its defaults: first look after 1 s, retry 404s up to 1 min. */
async function untilFound<T>(owner: Owner, get: () => Promise<T>): Promise<T | undefined> {
    const deadline = Date.now() + 60_000 * owner.timeScale;
    await sleep(1000 * owner.timeScale);
    for (;;) {
        try {
            return await get();
        } catch (e) {
            if (!is404(e) || Date.now() > deadline) return undefined;
        }
        await sleep(1000 * owner.timeScale);
    }
}

async function seal(value: string, publicKeyB64: string): Promise<string> {
    await sodium.ready;
    const pk = sodium.from_base64(publicKeyB64, sodium.base64_variants.ORIGINAL);
    return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), pk), sodium.base64_variants.ORIGINAL);
}

function checkOrganization(owner: Owner) {
    if (!owner.isOrganization) throw new Error(`this resource can only be used in the context of an organization, "${owner.name}" is a user`);
}

const secretNameFailures = (prop: string) => (news: Props) => {
    const name = news[prop];
    if (typeof name !== "string") return [];
    const out: { property: string; reason: string }[] = [];
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) {
        out.push({ property: prop, reason: "secret names can only contain alphanumeric characters or underscores and must not start with a number" });
    }
    if (name.toUpperCase().startsWith("GITHUB_")) out.push({ property: prop, reason: "secret names must not start with the GITHUB_ prefix" });
    return out;
};

// The secret's value is `value` (sealed here with the owner's public key) or `valueEncrypted`
// (already sealed), exactly one of them, as in the provider's schema. The schema's deprecated
// aliases of those two are not modelled: the program must not use them, and this check refuses
// them, so the engine suite catches a program that sends them.
const valueKeys = ["value", "valueEncrypted"];
const deprecatedValueKeys = ["plaintextValue", "encryptedValue"];
const exactlyOneValue = (news: Props) => {
    const deprecated = deprecatedValueKeys.filter((k) => news[k] !== undefined && news[k] !== null);
    if (deprecated.length > 0) return deprecated.map((k) => ({ property: k, reason: `\`${k}\` is deprecated in @pulumi/github 6: use \`value\` or \`valueEncrypted\`` }));
    const set = valueKeys.filter((k) => news[k] !== undefined && news[k] !== null);
    return set.length === 1 ? [] : [{ property: "value", reason: `exactly one of ${valueKeys.map((k) => `\`${k}\``).join(", ")} must be specified` }];
};

/** `diffRepository`: a changed `repository` replaces unless it is the same repository (a rename). */
async function diffRepository(owner: Owner, olds: Props, news: Props): Promise<{ replaces?: string[] }> {
    if (olds.repository === news.repository) return {};
    if (typeof olds.repositoryId !== "number" || typeof news.repository !== "string") return { replaces: ["repository"] };
    try {
        const repo = await owner.rest.call("GET", `repos/${enc(owner.name)}/${enc(news.repository)}`);
        return repo.id === olds.repositoryId ? {} : { replaces: ["repository"] };
    } catch (e) {
        if (is404(e)) return { replaces: ["repository"] };
        throw e;
    }
}

/** `diffSecret`: a secret changed at GitHub since the provider wrote it is written again. */
function diffSecret(olds: Props): { changes?: string[] } {
    if (olds.remoteUpdatedAt && olds.updatedAt !== olds.remoteUpdatedAt) return { changes: ["updatedAt"] };
    return {};
}

/** Where a repository-like secret lives, for the three secret kinds addressed by repository. */
interface SecretPlace {
    /** REST path of the scope's secrets, without a trailing slash. */
    base: string;
    repositoryId?: number;
}

function repoSecretKind(kind: "actions" | "dependabot"): ResourceKind {
    const place = (owner: Owner, repo: string): SecretPlace => ({ base: `repos/${enc(owner.name)}/${enc(repo)}/${kind}/secrets` });
    return secretKind({
        inputs: ["repository", "secretName", "keyId", ...valueKeys, ...(kind === "actions" ? ["destroyOnDrift"] : [])],
        required: ["repository", "secretName"],
        forceNew: ["secretName"],
        id: (n) => `${n.repository}:${n.secretName}`,
        async locate(owner, n, creating) {
            const p = place(owner, n.repository);
            if (creating) {
                const repo = await owner.rest.call("GET", `repos/${enc(owner.name)}/${enc(n.repository)}`);
                p.repositoryId = repo.id;
            }
            return p;
        },
        customizeDiff: async (owner, o, n) => ({ ...(await diffRepository(owner, o, n)), ...diffSecret(o) }),
    });
}

function environmentSecretKind(): ResourceKind {
    return secretKind({
        inputs: ["repository", "environment", "secretName", "keyId", ...valueKeys],
        required: ["repository", "environment", "secretName"],
        forceNew: ["environment", "secretName"],
        deleteBeforeReplace: true,
        id: (n) => `${n.repository}:${escapeIDPart(n.environment)}:${n.secretName}`,
        async locate(owner, n, creating) {
            // Create looks the repository id up; update and delete use the one in state.
            let id = n.repositoryId as number | undefined;
            if (creating || id === undefined) id = (await owner.rest.call("GET", `repos/${enc(owner.name)}/${enc(n.repository)}`)).id as number;
            return { base: `repositories/${id}/environments/${enc(n.environment)}/secrets`, repositoryId: id };
        },
        customizeDiff: async (owner, o, n) => ({ ...(await diffRepository(owner, o, n)), ...diffSecret(o) }),
    });
}

function organizationSecretKind(): ResourceKind {
    return secretKind({
        inputs: ["secretName", "keyId", ...valueKeys, "visibility", "selectedRepositoryIds", "destroyOnDrift"],
        required: ["secretName", "visibility"],
        forceNew: ["secretName", "selectedRepositoryIds"],
        org: true,
        id: (n) => n.secretName,
        locate: async (owner) => ({ base: `orgs/${enc(owner.name)}/actions/secrets` }),
        async customizeDiff(_owner, o, n) {
            if (n.visibility !== "selected" && Array.isArray(n.selectedRepositoryIds) && n.selectedRepositoryIds.length > 0) {
                throw new Error("cannot use selected_repository_ids without visibility being set to selected");
            }
            return diffSecret(o);
        },
    });
}

interface SecretSpec {
    inputs: string[];
    required: string[];
    forceNew: string[];
    deleteBeforeReplace?: boolean;
    org?: boolean;
    id(news: Props): string;
    locate(owner: Owner, props: Props, creating: boolean): Promise<SecretPlace>;
    customizeDiff(owner: Owner, olds: Props, news: Props): Promise<{ replaces?: string[]; changes?: string[] }>;
}

/** The create/update/read/delete shared by every secret resource. */
function secretKind(spec: SecretSpec): ResourceKind {
    async function write(owner: Owner, place: SecretPlace, props: Props, keyIdFromState: string | undefined) {
        let keyId = (props.keyId ?? keyIdFromState) as string | undefined;
        let encrypted = props.valueEncrypted as string | undefined;
        let publicKey: string | undefined;
        if (!keyId || !encrypted) {
            const pk = await owner.rest.call("GET", `${place.base}/public-key`);
            keyId = pk.key_id as string;
            publicKey = pk.key as string;
        }
        if (!encrypted) encrypted = await seal(String(props.value ?? ""), publicKey!);
        const body: Props = { key_id: keyId, encrypted_value: encrypted };
        if (spec.org) {
            body.visibility = props.visibility;
            // go-github's EncryptedSecret has `selected_repository_ids,omitempty`: an empty list is not sent.
            const ids = Array.isArray(props.selectedRepositoryIds) ? props.selectedRepositoryIds : [];
            if (ids.length) body.selected_repository_ids = ids;
        }
        await owner.rest.call("PUT", `${place.base}/${enc(props.secretName)}`, body);
        return keyId;
    }
    const pick = (p: Props) => Object.fromEntries(spec.inputs.filter((k) => p[k] !== undefined && p[k] !== null).map((k) => [k, p[k]]));
    return {
        inputs: spec.inputs,
        required: spec.required,
        forceNew: spec.forceNew,
        deleteBeforeReplace: spec.deleteBeforeReplace,
        check: (news) => [...secretNameFailures("secretName")(news), ...exactlyOneValue(news)],
        customizeDiff: spec.customizeDiff,
        async create(owner, news) {
            const place = await spec.locate(owner, news, true);
            const keyId = await write(owner, place, news, undefined);
            const id = spec.id(news);
            const outs: Props = { ...pick(news), id, keyId };
            if (place.repositoryId !== undefined) outs.repositoryId = place.repositoryId;
            const s = await untilFound(owner, () => owner.rest.call("GET", `${place.base}/${enc(news.secretName)}`));
            if (s) Object.assign(outs, { createdAt: goTime(s.created_at), updatedAt: goTime(s.updated_at), remoteUpdatedAt: goTime(s.updated_at) });
            return { id, outs };
        },
        async read(owner, id, state) {
            const place = await spec.locate(owner, state, false);
            let s: Props;
            try {
                s = await owner.rest.call("GET", `${place.base}/${enc(state.secretName)}`);
            } catch (e) {
                if (is404(e)) return undefined;
                throw e;
            }
            const outs: Props = { ...state, id, remoteUpdatedAt: goTime(s.updated_at) };
            outs.createdAt = state.createdAt || goTime(s.created_at);
            outs.updatedAt = state.updatedAt || goTime(s.updated_at);
            if (spec.org) {
                outs.createdAt = goTime(s.created_at);
                outs.visibility = s.visibility;
                if (s.visibility === "selected" && Array.isArray(state.selectedRepositoryIds) && state.selectedRepositoryIds.length) {
                    const list = await owner.rest.call("GET", `${place.base}/${enc(state.secretName)}/repositories?per_page=100`);
                    outs.selectedRepositoryIds = (list.repositories as { id: number }[]).map((r) => r.id);
                }
            }
            return outs;
        },
        async update(owner, id, olds, news) {
            const merged = { ...olds, ...pick(news) };
            const place = await spec.locate(owner, merged, false);
            let keyId: string;
            try {
                keyId = await write(owner, place, merged, olds.keyId);
            } catch (e) {
                // SDKv2's ResourceData.State() after a failed Update holds the planned values
                // (helper/schema/resource_data.go), and the bridge returns them as a partial
                // failure (pulumi-terraform-bridge pkg/tfbridge/provider.go Update, initializationError).
                throw new InitError(id, merged, [`updating: ${(e as Error).message}`]);
            }
            const outs: Props = { ...merged, id, keyId };
            await sleep(1000 * owner.timeScale);
            try {
                const s = await owner.rest.call("GET", `${place.base}/${enc(merged.secretName)}`);
                Object.assign(outs, { createdAt: goTime(s.created_at), updatedAt: goTime(s.updated_at), remoteUpdatedAt: goTime(s.updated_at) });
            } catch {
                delete outs.updatedAt;
                delete outs.remoteUpdatedAt;
            }
            return outs;
        },
        async delete(owner, _id, state) {
            const place = await spec.locate(owner, state, false);
            await owner.rest.call("DELETE", `${place.base}/${enc(state.secretName)}`);
        },
    };
}

interface VariablePlace {
    base: string;
}

function variableKind(spec: {
    inputs: string[];
    required: string[];
    forceNew: string[];
    org?: boolean;
    id(news: Props): string;
    base(owner: Owner, props: Props): string;
    /** Repository and environment variables look the repository id up after creating. */
    repositoryIdAfterCreate?: boolean;
    customizeDiff?: ResourceKind["customizeDiff"];
}): ResourceKind {
    const pick = (p: Props) => Object.fromEntries(spec.inputs.filter((k) => p[k] !== undefined && p[k] !== null).map((k) => [k, p[k]]));
    const body = (p: Props) => {
        const b: Props = { name: p.variableName, value: p.value };
        if (spec.org) {
            // go-github's ActionsVariable sends `selected_repository_ids` through a pointer: the
            // provider always sends the list, empty when the field is unset.
            b.visibility = p.visibility;
            b.selected_repository_ids = Array.isArray(p.selectedRepositoryIds) ? p.selectedRepositoryIds : [];
        }
        return b;
    };
    return {
        inputs: spec.inputs,
        required: spec.required,
        forceNew: spec.forceNew,
        customizeDiff: spec.customizeDiff,
        async create(owner, news) {
            const place: VariablePlace = { base: spec.base(owner, news) };
            await owner.rest.call("POST", place.base, body(news));
            const id = spec.id(news);
            const outs: Props = { ...pick(news), id };
            if (spec.repositoryIdAfterCreate) {
                try {
                    outs.repositoryId = (await owner.rest.call("GET", `repos/${enc(owner.name)}/${enc(news.repository)}`)).id;
                } catch (e) {
                    throw new InitError(id, outs, [`creating: ${(e as Error).message}`]);
                }
            }
            const v = await untilFound(owner, () => owner.rest.call("GET", `${place.base}/${enc(news.variableName)}`));
            if (v) Object.assign(outs, { createdAt: goTime(v.created_at), updatedAt: goTime(v.updated_at) });
            return { id, outs };
        },
        async read(owner, id, state) {
            const base = spec.base(owner, state);
            let v: Props;
            try {
                v = await owner.rest.call("GET", `${base}/${enc(state.variableName)}`);
            } catch (e) {
                if (is404(e)) return undefined;
                throw e;
            }
            const outs: Props = { ...state, id, value: v.value, createdAt: goTime(v.created_at), updatedAt: goTime(v.updated_at) };
            if (spec.org) {
                outs.visibility = v.visibility;
                if (v.visibility === "selected" && Array.isArray(state.selectedRepositoryIds) && state.selectedRepositoryIds.length) {
                    const list = await owner.rest.call("GET", `${base}/${enc(state.variableName)}/repositories?per_page=100`);
                    outs.selectedRepositoryIds = (list.repositories as { id: number }[]).map((r) => r.id);
                }
            }
            return outs;
        },
        async update(owner, id, olds, news) {
            const merged = { ...olds, ...pick(news) };
            const base = spec.base(owner, merged);
            try {
                await owner.rest.call("PATCH", `${base}/${enc(merged.variableName)}`, body(merged));
            } catch (e) {
                throw new InitError(id, merged, [`updating: ${(e as Error).message}`]);
            }
            const outs: Props = { ...merged, id };
            await sleep(1000 * owner.timeScale);
            try {
                const v = await owner.rest.call("GET", `${base}/${enc(merged.variableName)}`);
                Object.assign(outs, { createdAt: goTime(v.created_at), updatedAt: goTime(v.updated_at) });
            } catch {
                delete outs.updatedAt;
            }
            return outs;
        },
        async delete(owner, _id, state) {
            await owner.rest.call("DELETE", `${spec.base(owner, state)}/${enc(state.variableName)}`);
        },
    };
}

/** `...SecretRepositories` / `...VariableRepositories`: the selection as a resource of its own. */
function selectionKind(nameProp: "secretName" | "variableName", what: "secrets" | "variables"): ResourceKind {
    const path = (owner: Owner, name: string) => `orgs/${enc(owner.name)}/actions/${what}/${enc(name)}/repositories`;
    const set = async (owner: Owner, props: Props) => {
        checkOrganization(owner);
        await owner.rest.call("PUT", path(owner, props[nameProp]), { selected_repository_ids: props.selectedRepositoryIds ?? [] });
    };
    return {
        inputs: [nameProp, "selectedRepositoryIds"],
        required: [nameProp, "selectedRepositoryIds"],
        forceNew: [nameProp],
        async create(owner, news) {
            await set(owner, news);
            return { id: news[nameProp], outs: { id: news[nameProp], [nameProp]: news[nameProp], selectedRepositoryIds: news.selectedRepositoryIds } };
        },
        async read(owner, id, state) {
            checkOrganization(owner);
            const list = await owner.rest.call("GET", `${path(owner, state[nameProp])}?per_page=100`);
            return { ...state, id, selectedRepositoryIds: (list.repositories as { id: number }[]).map((r) => r.id) };
        },
        async update(owner, id, olds, news) {
            const merged = { ...olds, [nameProp]: news[nameProp], selectedRepositoryIds: news.selectedRepositoryIds };
            try {
                await set(owner, merged);
            } catch (e) {
                throw new InitError(id, merged, [`updating: ${(e as Error).message}`]);
            }
            return { ...merged, id };
        },
        async delete(owner, id) {
            checkOrganization(owner);
            await owner.rest.call("PUT", path(owner, id), { selected_repository_ids: [] });
        },
    };
}

/** Resource kinds by Pulumi type token. */
export const resourceKinds: Record<string, ResourceKind> = {
    "github:index/actionsSecret:ActionsSecret": repoSecretKind("actions"),
    "github:index/dependabotSecret:DependabotSecret": repoSecretKind("dependabot"),
    "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": environmentSecretKind(),
    "github:index/actionsOrganizationSecret:ActionsOrganizationSecret": organizationSecretKind(),
    "github:index/actionsOrganizationSecretRepositories:ActionsOrganizationSecretRepositories": selectionKind("secretName", "secrets"),
    "github:index/actionsVariable:ActionsVariable": variableKind({
        inputs: ["repository", "variableName", "value"],
        required: ["repository", "variableName", "value"],
        forceNew: ["variableName"],
        id: (n) => `${n.repository}:${n.variableName}`,
        base: (owner, p) => `repos/${enc(owner.name)}/${enc(p.repository)}/actions/variables`,
        repositoryIdAfterCreate: true,
        customizeDiff: (owner, o, n) => diffRepository(owner, o, n),
    }),
    "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable": variableKind({
        inputs: ["repository", "environment", "variableName", "value"],
        required: ["repository", "environment", "variableName", "value"],
        forceNew: ["environment", "variableName"],
        id: (n) => `${n.repository}:${escapeIDPart(n.environment)}:${n.variableName}`,
        base: (owner, p) => `repos/${enc(owner.name)}/${enc(p.repository)}/environments/${enc(p.environment)}/variables`,
        repositoryIdAfterCreate: true,
        customizeDiff: (owner, o, n) => diffRepository(owner, o, n),
    }),
    "github:index/actionsOrganizationVariable:ActionsOrganizationVariable": variableKind({
        inputs: ["variableName", "value", "visibility", "selectedRepositoryIds"],
        required: ["variableName", "value", "visibility"],
        forceNew: ["variableName"],
        org: true,
        id: (n) => n.variableName,
        base: (owner) => `orgs/${enc(owner.name)}/actions/variables`,
        async customizeDiff(_owner, _o, n) {
            if (n.visibility !== "selected" && Array.isArray(n.selectedRepositoryIds) && n.selectedRepositoryIds.length > 0) {
                throw new Error("cannot use selected_repository_ids without visibility being set to selected");
            }
            return {};
        },
    }),
    "github:index/actionsOrganizationVariableRepositories:ActionsOrganizationVariableRepositories": selectionKind("variableName", "variables"),
};

/** `github:index/getRepository:getRepository` (`data_source_github_repository.go`). */
export async function getRepository(owner: Owner, args: Props): Promise<Props> {
    let repoOwner = owner.name;
    let name = args.name as string | undefined;
    if (typeof args.fullName === "string") {
        const parts = args.fullName.split("/");
        if (parts.length !== 2) throw new Error(`unexpected full name format ("${args.fullName}"), expected owner/repo_name`);
        [repoOwner, name] = parts;
        if (typeof args.name === "string") name = args.name;
    }
    if (!name) throw new Error('one of "full_name" or "name" has to be provided');
    let repo: Props;
    try {
        repo = await owner.rest.call("GET", `repos/${enc(repoOwner)}/${enc(name)}`);
    } catch (e) {
        // The data source clears its id on 404 and reports no error.
        if (is404(e)) return { ...args, id: "" };
        throw e;
    }
    return {
        ...args,
        id: repo.name,
        name: repo.name,
        fullName: repo.full_name,
        repoId: repo.id,
        nodeId: repo.node_id,
        private: repo.private,
        visibility: repo.visibility,
        defaultBranch: repo.default_branch,
        htmlUrl: repo.html_url,
        archived: repo.archived ?? false,
        fork: repo.fork ?? false,
        topics: repo.topics ?? [],
    };
}
