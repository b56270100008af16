import type { Target } from "../../providers";
import { defaultKeyNames } from "../../providers/types";
import type { Credentials, SecretStores, World } from "./world";

/**
 * How the simulator understands the program's target resources and targets, per store:
 * - a {@link ResourceModel} turns a registered resource into writes to {@link SecretStores};
 * - a {@link TargetView} reads what a configured target holds, and what a CI job there reads.
 * Adding a store (GitLab variables arrive as dynamic resources with `kind: "gitlab-variable"`)
 * means one resource model keyed by its type or kind and one target view keyed by target type.
 */

/** Inputs of a registered resource with secret values unwrapped (the engine sees plain values). */
export type PlainInputs = Record<string, unknown>;

/** What a resource writes: one address and its value, or several (a secret and its repository list). */
export interface StoreWrite {
    address: string;
    value: string;
    secret: boolean;
    meta?: Record<string, unknown>;
}

/** The simulator's understanding of one resource type that writes to a secret store. */
export interface ResourceModel {
    /** Inputs whose change replaces the resource (the provider's ForceNew fields). */
    replaceOn: readonly string[];
    /** The writes that creating or updating the resource makes. */
    writes(inputs: PlainInputs, owner: string | undefined): StoreWrite[];
}

const lower = (s: unknown): string => String(s ?? "").toLowerCase();

function githubModel(scope: (i: PlainInputs, owner: string) => string, kind: "secret" | "variable", replaceOn: string[]): ResourceModel {
    const nameField = kind === "secret" ? "secretName" : "variableName";
    return {
        replaceOn,
        writes(inputs, owner) {
            if (!owner) throw new Error(`the simulator could not tell the GitHub owner of ${String(inputs[nameField])}: is the resource given a github provider?`);
            const meta = inputs.visibility === undefined ? undefined : { visibility: inputs.visibility };
            return [{ address: `github:${scope(inputs, lower(owner))}:${kind}:${lower(inputs[nameField])}`, value: String(inputs.value ?? ""), secret: kind === "secret", meta }];
        },
    };
}

function githubRepositories(kind: "secret" | "variable"): ResourceModel {
    const nameField = kind === "secret" ? "secretName" : "variableName";
    return {
        replaceOn: [nameField],
        writes(inputs, owner) {
            const ids = (inputs.selectedRepositoryIds as unknown[] | undefined) ?? [];
            return [{ address: `github:${lower(owner)}:org:${kind}:${lower(inputs[nameField])}:repositories`, value: JSON.stringify(ids.map(Number).sort()), secret: false }];
        },
    };
}

const repoScope = (i: PlainInputs, owner: string) => `${owner}/${lower(i.repository)}:actions`;
const envScope = (i: PlainInputs, owner: string) => `${owner}/${lower(i.repository)}:env:${lower(i.environment)}`;
const orgScope = (_: PlainInputs, owner: string) => `${owner}:org`;
const dependabotScope = (i: PlainInputs, owner: string) => `${owner}/${lower(i.repository)}:dependabot`;

/** Resource models by Pulumi type token. */
export const resourceModels: Record<string, ResourceModel> = {
    "github:index/actionsSecret:ActionsSecret": githubModel(repoScope, "secret", ["repository", "secretName"]),
    "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": githubModel(envScope, "secret", ["repository", "environment", "secretName"]),
    "github:index/actionsOrganizationSecret:ActionsOrganizationSecret": githubModel(orgScope, "secret", ["secretName"]),
    "github:index/actionsOrganizationSecretRepositories:ActionsOrganizationSecretRepositories": githubRepositories("secret"),
    "github:index/dependabotSecret:DependabotSecret": githubModel(dependabotScope, "secret", ["repository", "secretName"]),
    "github:index/actionsVariable:ActionsVariable": githubModel(repoScope, "variable", ["repository", "variableName"]),
    "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable": githubModel(envScope, "variable", ["repository", "environment", "variableName"]),
    "github:index/actionsOrganizationVariable:ActionsOrganizationVariable": githubModel(orgScope, "variable", ["variableName"]),
    "github:index/actionsOrganizationVariableRepositories:ActionsOrganizationVariableRepositories": githubRepositories("variable"),
};

/**
 * Models of dynamic-provider resources (`pulumi-nodejs:dynamic:Resource`), by the `kind` input
 * the store module puts on them. Empty until a dynamic store (GitLab variables) exists; a
 * dynamic resource of an unknown kind stops the rehearsal with a message naming the kind.
 */
export const dynamicModels: Record<string, ResourceModel> = {};

/** The model of a registered resource, or undefined for resources that write no secret store. */
export function modelFor(type: string, inputs: PlainInputs): ResourceModel | undefined {
    if (type === "pulumi-nodejs:dynamic:Resource") {
        const kind = String(inputs.kind ?? "");
        const model = dynamicModels[kind];
        if (!model) throw new Error(`the rehearsal has no model of dynamic resources of kind "${kind}"; add one to dynamicModels in rotation/rehearsal/targets.ts`);
        return model;
    }
    return resourceModels[type];
}

/** One place a CI job runs and reads the key (a repository, an environment, ...). */
export interface Consumer {
    /** e.g. `github job in acme/api (environment production)`. */
    label: string;
    read(stores: SecretStores, world: World): Credentials;
}

/** A configured target as the simulator sees it. */
export interface TargetView {
    label: string;
    /** The key the target itself holds (its own scope, not what a job resolves). */
    holds(stores: SecretStores): Credentials;
    /** Where CI jobs read it. */
    consumers: Consumer[];
}

type Names = { accessKeyId: string; secretAccessKey: string };

function namesOf(t: { names?: Partial<Names> }): Names {
    return { accessKeyId: t.names?.accessKeyId ?? defaultKeyNames.accessKeyId, secretAccessKey: t.names?.secretAccessKey ?? defaultKeyNames.secretAccessKey };
}

function readScope(stores: SecretStores, scope: string, names: Names): Credentials {
    return {
        accessKeyId: stores.read(`github:${scope}:secret:${lower(names.accessKeyId)}`)?.value,
        secret: stores.read(`github:${scope}:secret:${lower(names.secretAccessKey)}`)?.value,
    };
}

/** Is an organisation secret visible to a repository? */
function orgVisible(stores: SecretStores, world: World, owner: string, name: string, repo: string): boolean {
    const secret = stores.read(`github:${owner}:org:secret:${lower(name)}`);
    if (!secret) return false;
    if (secret.meta?.visibility !== "selected") return true;
    const ids = JSON.parse(stores.read(`github:${owner}:org:secret:${lower(name)}:repositories`)?.value ?? "[]") as number[];
    return ids.includes(world.github.repoId(`${owner}/${repo}`));
}

/**
 * A job in `owner/repo` (optionally in an environment) resolves each secret name on its own:
 * environment, then repository, then organisation (GitHub's documented precedence).
 */
function githubJob(owner: string, repo: string, environment: string | undefined, names: Names): Consumer {
    const read1 = (stores: SecretStores, world: World, name: string): string | undefined => {
        const n = lower(name);
        if (environment !== undefined) {
            const v = stores.read(`github:${owner}/${repo}:env:${lower(environment)}:secret:${n}`);
            if (v) return v.value;
        }
        const r = stores.read(`github:${owner}/${repo}:actions:secret:${n}`);
        if (r) return r.value;
        if (orgVisible(stores, world, owner, name, repo)) return stores.read(`github:${owner}:org:secret:${n}`)?.value;
        return undefined;
    };
    return {
        label: `github job in ${owner}/${repo}${environment ? ` (environment ${environment})` : ""}`,
        read: (stores, world) => ({ accessKeyId: read1(stores, world, names.accessKeyId), secret: read1(stores, world, names.secretAccessKey) }),
    };
}

/** The simulator's view of a configured target; throws for a target type it has no model of. */
export function viewOf(target: Target, label: string): TargetView {
    const names = namesOf(target);
    switch (target.type) {
        case "github-repository": {
            const [owner, repo] = lower(target.repository).split("/");
            return { label, holds: (s) => readScope(s, `${owner}/${repo}:actions`, names), consumers: [githubJob(owner, repo, undefined, names)] };
        }
        case "github-environment": {
            const [owner, repo] = lower(target.repository).split("/");
            return {
                label,
                holds: (s) => readScope(s, `${owner}/${repo}:env:${lower(target.environment)}`, names),
                consumers: [githubJob(owner, repo, target.environment, names)],
            };
        }
        case "github-organization": {
            const owner = lower(target.organization);
            // With "all" or "private" visibility any (private) repository sees it; one stands for all.
            const repos = target.visibility === "selected" ? (target.repositories ?? []).map(lower) : ["any-private-repository"];
            return { label, holds: (s) => readScope(s, `${owner}:org`, names), consumers: repos.map((r) => githubJob(owner, r, undefined, names)) };
        }
        case "github-dependabot": {
            const [owner, repo] = lower(target.repository).split("/");
            const scope = `${owner}/${repo}:dependabot`;
            return {
                label,
                holds: (s) => readScope(s, scope, names),
                consumers: [{ label: `dependabot job in ${owner}/${repo}`, read: (s) => readScope(s, scope, names) }],
            };
        }
        default:
            throw new Error(`the rehearsal has no model of targets of type \`${(target as { type: string }).type}\` yet; add a view in rotation/rehearsal/targets.ts`);
    }
}
