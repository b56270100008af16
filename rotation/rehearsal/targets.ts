import type { RetryClock } from "../core/aws-calls";
import type { Target } from "../../providers/specs";
import type { GitlabTarget } from "../../providers/gitlab/store";
import { variableDiff } from "../../providers/gitlab/variable";
import { encryptedKeyNames } from "../../providers/kms/spec";
import { defaultKeyNames } from "../../providers/types";
import type { SetKms } from "../core/config";
import { decryptingView, kmsResourceModels, runnerPrincipal } from "./stores/kms";
import { keyCheckModel, targetCheckModel } from "./gates";
import { s3BucketPolicyModel, s3ObjectModel, s3View } from "./stores/s3";
import { secretsManagerModels, secretsManagerView } from "./stores/aws-secrets-manager";
import { ssmParameterModels, ssmParameterView } from "./stores/aws-ssm-parameter";
import type { Credentials, SecretStores, World } from "./world";

/**
 * How the simulator understands the program's resources and targets:
 * - a {@link ResourceModel} says what creating or updating a registered resource does in the
 *   fake world (writes to {@link SecretStores}, a call to STS) and what the provider returns;
 * - a {@link TargetView} reads what a configured target holds, and what a CI job there reads.
 * Every resource the program registers needs a model: the engine fails the run, and the
 * rehearsal stops, on a resource it has no model of, rather than pretend it did its work.
 * Adding a store means one resource model keyed by its type (or dynamic `kind`) and one target
 * view keyed by target type.
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

/** What the engine does with a registered resource that already exists. */
export type Change = "none" | "update" | "replace";

/** What a model's create or update can reach. */
export interface ModelContext {
    world: World;
    /** The run's simulated clock: `sleep` advances it (a provider retrying inside a create). */
    clock: RetryClock;
    /** GitHub owner of the provider the resource was given, if any. */
    owner?: string;
    /** Record a fault the world caused (IAM being slow), for the run's list of faults. */
    noteFault(text: string): void;
}

/** The simulator's understanding of one resource type. */
export interface ResourceModel {
    /** Inputs whose change replaces the resource (the provider's ForceNew fields); for the default diff. */
    replaceOn?: readonly string[];
    /**
     * A dynamic provider's own diff, given the old outputs and the new inputs. Without it, any
     * input change updates the resource and a change of a `replaceOn` input replaces it.
     */
    diff?(olds: Record<string, unknown>, news: PlainInputs): Change;
    /** Replacement deletes the old resource before creating the new one (`deleteBeforeReplace`). */
    deleteBeforeReplace?: boolean;
    /** The writes that creating or updating the resource makes. */
    writes?(inputs: PlainInputs, owner: string | undefined): StoreWrite[];
    /**
     * What a create or update returns, after its writes (it may call the world, and throw to fail
     * the operation). For a dynamic provider these are its `outs`, the resource's whole state.
     */
    outputs?(inputs: PlainInputs, ctx: ModelContext): Record<string, unknown> | Promise<Record<string, unknown>>;
    /** The id a create gives the resource. Default `<name>-id`. */
    id?(inputs: PlainInputs, outputs: Record<string, unknown>): string;
    /** A dynamic provider: the state is its outputs alone, not the inputs merged with them. */
    dynamic?: boolean;
}

const lower = (s: unknown): string => String(s ?? "").toLowerCase();

function githubModel(scope: (i: PlainInputs, owner: string) => string, kind: "secret" | "variable", replaceOn: string[], extra: Partial<ResourceModel> = {}): ResourceModel {
    const nameField = kind === "secret" ? "secretName" : "variableName";
    return {
        replaceOn,
        writes(inputs, owner) {
            if (!owner) throw new Error(`the simulator could not tell the GitHub owner of ${String(inputs[nameField])}: is the resource given a github provider?`);
            const meta = inputs.visibility === undefined ? undefined : { visibility: inputs.visibility };
            const address = `github:${scope(inputs, lower(owner))}:${kind}:${lower(inputs[nameField])}`;
            const writes: StoreWrite[] = [{ address, value: String(inputs.value ?? ""), secret: kind === "secret", meta }];
            if (inputs.visibility === "selected") {
                // An organisation secret's or variable's create and update send the selected
                // repositories from its own `selectedRepositoryIds` alone
                // (terraform-provider-github resource_github_actions_organization_secret.go
                // `resourceGithubActionsOrganizationSecretCreateOrUpdate`: `SelectedRepositoryIDs:
                // repoIDs` from `d.GetOk("selected_repository_ids")`), and GitHub takes a missing
                // list as an empty selection. The separate `...Repositories` resource sees no diff
                // and does not write it back.
                const ids = ((inputs.selectedRepositoryIds as unknown[] | undefined) ?? []).map(Number).sort();
                writes.push({ address: `${address}:repositories`, value: JSON.stringify(ids), secret: false });
            }
            return writes;
        },
        // The provider reads the secret back after each write and records GitHub's `updated_at`:
        // the target check's evidence. It moves only when the provider writes.
        outputs: (_, ctx) => ({ updatedAt: new Date(ctx.clock.now()).toISOString() }),
        ...extra,
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

/** The store address of one GitLab variable: owner paths are case-insensitive, keys and scopes are not. */
export function gitlabAddress(scope: string, owner: string, key: string, environmentScope: string): string {
    return `gitlab:${scope}:${lower(owner)}:var:${key}:${environmentScope}`;
}

/**
 * GitLab CI/CD variables (`providers/gitlab/variable.ts`): the provider's own diff (moving a
 * variable or changing `hidden` replaces it, deleting first), one write per variable, and the
 * outputs the provider returns (the inputs as GitLab reports them).
 */
const gitlabVariableModel: ResourceModel = {
    dynamic: true,
    diff(olds, news) {
        const d = variableDiff(olds, news);
        return d.replaces.length > 0 ? "replace" : d.changes ? "update" : "none";
    },
    deleteBeforeReplace: true,
    writes: (i) => [
        {
            address: gitlabAddress(String(i.scope), String(i.owner), String(i.key), String(i.environmentScope)),
            value: String(i.value ?? ""),
            secret: i.masked === true,
            meta: { protected: i.protected, masked: i.masked, hidden: i.hidden, raw: i.raw },
        },
    ],
    outputs: (i) => ({
        kind: "gitlab-variable",
        scope: i.scope,
        owner: i.owner,
        key: i.key,
        value: i.value,
        environmentScope: i.environmentScope,
        protected: i.protected,
        masked: i.masked,
        hidden: i.hidden,
        raw: i.raw,
        description: i.description,
        target: i.target,
    }),
    id: (i) => `${String(i.scope)}:${String(i.owner)}:${String(i.key)}:${String(i.environmentScope)}`,
};

/** Resources that change nothing the rehearsal observes (policies), kept so nothing goes unmodelled. */
const inert: ResourceModel = {};

/** Resource models by Pulumi type token. The IAM user and access keys are the engine's own. */
export const resourceModels: Record<string, ResourceModel> = {
    "aws:iam/user:User": inert,
    "aws:iam/accessKey:AccessKey": { replaceOn: ["user", "pgpKey"] },
    "aws:iam/userPolicy:UserPolicy": inert,
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": inert,
    "github:index/actionsSecret:ActionsSecret": githubModel(repoScope, "secret", ["repository", "secretName"]),
    // pulumi-github provider/resources.go: `"github_actions_environment_secret": {DeleteBeforeReplace: true}`,
    // the only GitHub resource the provider replaces delete-first.
    "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": githubModel(envScope, "secret", ["repository", "environment", "secretName"], { deleteBeforeReplace: true }),
    "github:index/actionsOrganizationSecret:ActionsOrganizationSecret": githubModel(orgScope, "secret", ["secretName"]),
    "github:index/actionsOrganizationSecretRepositories:ActionsOrganizationSecretRepositories": githubRepositories("secret"),
    "github:index/dependabotSecret:DependabotSecret": githubModel(dependabotScope, "secret", ["repository", "secretName"]),
    "github:index/actionsVariable:ActionsVariable": githubModel(repoScope, "variable", ["repository", "variableName"]),
    "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable": githubModel(envScope, "variable", ["repository", "environment", "variableName"]),
    "github:index/actionsOrganizationVariable:ActionsOrganizationVariable": githubModel(orgScope, "variable", ["variableName"]),
    "github:index/actionsOrganizationVariableRepositories:ActionsOrganizationVariableRepositories": githubRepositories("variable"),
    "aws:s3/bucketObjectv2:BucketObjectv2": s3ObjectModel,
    "aws:s3/bucketPolicy:BucketPolicy": s3BucketPolicyModel,
    ...secretsManagerModels,
    ...kmsResourceModels,
    ...ssmParameterModels,
};

/**
 * Models of dynamic-provider resources (`pulumi-nodejs:dynamic:Resource`), by the `kind` input
 * every dynamic resource of the program carries.
 */
export const dynamicModels: Record<string, ResourceModel> = {
    "key-check": keyCheckModel,
    "target-check": targetCheckModel,
    "gitlab-variable": gitlabVariableModel,
};

/** Thrown for a registered resource the rehearsal has no model of: the rehearsal cannot vouch for a run that contains one. */
export class UnmodelledResourceError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "UnmodelledResourceError";
    }
}

/** The model of a registered custom resource; throws {@link UnmodelledResourceError} when there is none. */
export function modelFor(type: string, name: string, inputs: PlainInputs): ResourceModel {
    if (type === "pulumi-nodejs:dynamic:Resource") {
        const kind = inputs.kind;
        const model = typeof kind === "string" ? dynamicModels[kind] : undefined;
        if (!model) {
            throw new UnmodelledResourceError(
                `the rehearsal has no model of ${name}, a dynamic resource ${typeof kind === "string" ? `of kind "${kind}"` : "without a `kind` input"}: ` +
                    "without one it cannot tell what the resource would do. Add a model to `dynamicModels` in rotation/rehearsal/targets.ts.",
            );
        }
        return model;
    }
    const model = resourceModels[type];
    if (!model) {
        throw new UnmodelledResourceError(`the rehearsal has no model of ${name} (${type}): without one it cannot tell what the resource would do. Add a model to \`resourceModels\` in rotation/rehearsal/targets.ts.`);
    }
    return model;
}

/** One place a CI job runs and reads the key (a repository, an environment, ...). */
export interface Consumer {
    /** e.g. `github job in acme/api (environment production)`. */
    label: string;
    /** The credential set whose target this job reads (several sets may share a place). */
    set?: string;
    /** What the job reads at `at` (epoch ms; absent for bookkeeping reads outside a job). */
    read(stores: SecretStores, world: World, at?: number): Credentials;
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

function namesOf(t: { names?: Partial<Names>; encrypt?: unknown }): Names {
    const defaults = t.encrypt ? encryptedKeyNames : defaultKeyNames;
    return { accessKeyId: t.names?.accessKeyId ?? defaults.accessKeyId, secretAccessKey: t.names?.secretAccessKey ?? defaults.secretAccessKey };
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

/** Does a GitLab environment scope apply to a job in `environment` (none for jobs without one)? `*` matches any characters. */
export function scopeMatches(scope: string, environment: string | undefined): boolean {
    if (scope === "*") return true;
    if (environment === undefined) return false;
    return new RegExp(`^${scope.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*")}$`).test(environment);
}

/** Of several scopes of one key that match, GitLab uses the most specific: a name, then the longest wildcard pattern, then `*`. */
function specificity(scope: string): number {
    if (scope === "*") return 0;
    return scope.includes("*") ? 1 + scope.replace(/\*/g, "").length : Number.MAX_SAFE_INTEGER;
}

/** The value a job sees for `key` at one level (a project or a group), or undefined. */
function gitlabLevel(stores: SecretStores, scope: "project" | "group", owner: string, key: string, environment: string | undefined): string | undefined {
    const prefix = gitlabAddress(scope, owner, key, "");
    let best: { specificity: number; value: string } | undefined;
    for (const [address, stored] of stores.entries) {
        if (!address.startsWith(prefix)) continue;
        const envScope = address.slice(prefix.length);
        if (!scopeMatches(envScope, environment)) continue;
        const rank = specificity(envScope);
        if (!best || rank > best.specificity) best = { specificity: rank, value: stored.value };
    }
    return best?.value;
}

/**
 * A pipeline job in GitLab project `project` (a full path), in `environment` if any, on a protected
 * branch (deploy pipelines run there, so protected variables reach it). GitLab resolves each key
 * on its own: a project variable overrides a group variable, a subgroup's overrides its parent's,
 * and within one project or group the most specific matching environment scope wins.
 */
function gitlabJob(project: string, environment: string | undefined, names: Names): Consumer {
    const path = lower(project);
    const groups = path.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, parts.length - i).join("/"));
    const read1 = (stores: SecretStores, key: string): string | undefined => {
        const own = gitlabLevel(stores, "project", path, key, environment);
        if (own !== undefined) return own;
        for (const group of groups) {
            const inherited = gitlabLevel(stores, "group", group, key, environment);
            if (inherited !== undefined) return inherited;
        }
        return undefined;
    };
    return {
        label: `gitlab job in ${path}${environment ? ` (environment ${environment})` : ""}`,
        read: (stores) => ({ accessKeyId: read1(stores, names.accessKeyId), secret: read1(stores, names.secretAccessKey) }),
    };
}

/** An environment a job in `scope` runs in: none for `*`, the name itself, or a name the wildcard matches. */
function environmentIn(scope: string): string | undefined {
    return scope === "*" ? undefined : scope.replace(/\*/g, "rehearsal");
}

function gitlabView(target: GitlabTarget, label: string, names: Names): TargetView {
    const scope = target.type === "gitlab-project" ? "project" : "group";
    const owner = lower(target.type === "gitlab-project" ? target.project : target.group);
    const at = (key: string) => gitlabAddress(scope, owner, key, target.environmentScope);
    // A group's variables reach every project below it: one project stands for all.
    const project = scope === "project" ? owner : `${owner}/any-project`;
    return {
        label,
        holds: (s) => ({ accessKeyId: s.read(at(names.accessKeyId))?.value, secret: s.read(at(names.secretAccessKey))?.value }),
        consumers: [gitlabJob(project, environmentIn(target.environmentScope), names)],
    };
}

/**
 * The simulator's view of a configured target; throws for a target type it has no model of.
 * `kms` is the set's key: a job of an encrypting target decrypts as its runner role.
 */
export function viewOf(target: Target, label: string, kms?: SetKms): TargetView {
    const view = plainViewOf(target, label);
    return "encrypt" in target && target.encrypt ? decryptingView(view, target.encrypt, runnerPrincipal(kms)) : view;
}

function plainViewOf(target: Target, label: string): TargetView {
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
        case "gitlab-project":
        case "gitlab-group":
            return gitlabView(target, label, names);
        case "aws-s3-env-file":
            return s3View(target, label);
        case "aws-secrets-manager":
            return secretsManagerView(target, label);
        case "aws-ssm-parameter":
            return ssmParameterView(target, label);
        default:
            throw new Error(`the rehearsal has no model of targets of type \`${(target as { type: string }).type}\` yet; add a view in rotation/rehearsal/targets.ts`);
    }
}
