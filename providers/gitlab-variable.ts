import * as pulumi from "@pulumi/pulumi";

/**
 * Inputs of one GitLab CI/CD variable, as registered with the engine (type
 * `pulumi-nodejs:dynamic:Resource`). The shape is self-describing so tools that only see
 * registrations (the rehearsal simulator, policy packs) can recognise and model it:
 *
 * ```
 * { kind: "gitlab-variable", scope: "project" | "group", owner: "42" | "acme/api",
 *   key: "AWS_SECRET_ACCESS_KEY", value: <secret>, environmentScope: "*",
 *   protected, masked, hidden, raw: boolean, description: string, target: string }
 * ```
 *
 * Neither the GitLab token nor its base URL is an input: the provider reads them when it runs
 * (`gitlab:token` / `GITLAB_TOKEN`, `gitlab:baseUrl` / `GITLAB_BASE_URL`), so no token ever
 * lands in the state, and a token rotation does not touch any variable.
 */
export interface GitlabVariableInputs {
    /** Always `gitlab-variable`: marks the registration for tools that read inputs. */
    kind: "gitlab-variable";
    /** Where the variable lives: a project's or a group's CI/CD settings. */
    scope: "project" | "group";
    /** Numeric id (as a string) or full path (`acme/platform/api`) of the project or group. */
    owner: string;
    /** Variable key, `[A-Za-z0-9_]{1,255}`. */
    key: string;
    /** The value. A Pulumi secret when it is the secret access key. */
    value: string;
    /** GitLab environment scope (`*`, `production`, `review/*`). */
    environmentScope: string;
    /** Only pipelines on protected branches and tags receive the variable. */
    protected: boolean;
    /** GitLab masks the value in job logs. */
    masked: boolean;
    /** Masked and hidden from the UI and API; GitLab only accepts this when creating. */
    hidden: boolean;
    /** GitLab does not expand `$` references in the value. */
    raw: boolean;
    /** Shown in GitLab's variable list. */
    description: string;
    /** The config target that declared the variable (for error messages only; never diffed). */
    target: string;
}

/** What the provider keeps in state: the inputs as GitLab reports them. */
export type GitlabVariableOutputs = GitlabVariableInputs;

/** Tuning of the provider's HTTP calls; the defaults are for real runs. */
export interface GitlabProviderOptions {
    /**
     * Attempts per request when GitLab answers 429 or 5xx or the connection fails. Default 5:
     * enough to ride out a deploy or a rate-limit window, bounded so a broken GitLab fails the
     * run in minutes rather than hanging it.
     */
    attempts?: number;
    /** First back-off in ms, doubled per attempt when GitLab sends no Retry-After. Default 1000. */
    backoffMs?: number;
    /**
     * Longest single wait in ms. A Retry-After longer than this fails the request at once
     * (with a message saying when to run again) instead of holding the run. Default 60000.
     */
    maxWaitMs?: number;
    /** Per-request timeout in ms. Default 30000. */
    timeoutMs?: number;
    /** Replaces `setTimeout` for the waits between attempts (tests record the waits instead). */
    sleep?: (ms: number) => Promise<void>;
}

/** The stack config a dynamic provider receives through `configure`. */
interface StackConfig {
    get(key: string): string | undefined;
}

/** The provider object: `stackConfig` is only ever set inside the provider host process. */
export interface GitlabVariableProvider extends pulumi.dynamic.ResourceProvider<GitlabVariableInputs, GitlabVariableOutputs> {
    stackConfig?: StackConfig;
}

/** Default API root of GitLab.com; self-managed instances set `gitlab:baseUrl`. */
export const defaultGitlabBaseUrl = "https://gitlab.com/api/v4/";

/**
 * The dynamic provider for GitLab CI/CD variables (REST API v4, plain `fetch`).
 *
 * Closure serialization copies this object and every function it reaches into the state
 * (`__provider`). So: no module imports are used inside (Node 20's `fetch` and `URL` are
 * globals), nothing secret is captured, and the token and base URL are looked up on every call
 * from the stack config handed to `configure`, then from the environment.
 */
export function gitlabVariableProvider(options: GitlabProviderOptions = {}): GitlabVariableProvider {
    const tuning = {
        attempts: options.attempts ?? 5,
        backoffMs: options.backoffMs ?? 1000,
        maxWaitMs: options.maxWaitMs ?? 60_000,
        timeoutMs: options.timeoutMs ?? 30_000,
        sleep: options.sleep,
    };
    const provider: GitlabVariableProvider = {
        async configure(req) {
            // Runs in the provider host only. Keeping the config object (not the token) means
            // nothing secret exists on this object before the program has been serialized.
            this.stackConfig = req.config;
        },

        async check(_olds, news) {
            const failures = inputProblems(news);
            if (failures.length === 0) connectionFor(this.stackConfig, news);
            return { inputs: news, failures };
        },

        async diff(_id, olds, news) {
            return variableDiff(olds, news);
        },

        async create(inputs) {
            const conn = connectionFor(this.stackConfig, inputs);
            const created = await request(conn, tuning, inputs, "POST", collectionPath(inputs), undefined, createBody(inputs));
            if (created.status === 201) return { id: variableId(inputs), outs: await confirmCreated(conn, tuning, inputs, created.body) };
            if (!isTaken(created)) throw failure(inputs, conn, "create", created);
            // The key already exists in this scope: it was created outside Pulumi, or by a run that
            // failed after GitLab answered. The target names it, so it is ours: adopt it in place.
            const existing = await request(conn, tuning, inputs, "GET", itemPath(inputs), filter(inputs));
            if (existing.status !== 200) throw failure(inputs, conn, "read the existing", existing);
            const hidden = (existing.body as { hidden?: boolean }).hidden === true;
            if (hidden !== inputs.hidden) {
                throw new Error(
                    `${where(inputs)}: the variable already exists in GitLab ${hidden ? "as a hidden variable" : "without hidden"}, and GitLab only sets hidden when a variable is created. ` +
                        (hidden
                            ? "Set `hidden: true` on the target, or delete the variable in GitLab and run again."
                            : "Delete the variable in GitLab (Settings > CI/CD > Variables) and run again, or set `hidden: false` on the target."),
                );
            }
            const updated = await request(conn, tuning, inputs, "PUT", itemPath(inputs), filter(inputs), updateBody(inputs));
            if (updated.status !== 200) throw failure(inputs, conn, "adopt the existing", updated);
            return { id: variableId(inputs), outs: outputsFrom(inputs, updated.body) };
        },

        async read(id, props) {
            const inputs = props ?? parseVariableId(id);
            const conn = connectionFor(this.stackConfig, inputs);
            const got = await request(conn, tuning, inputs, "GET", itemPath(inputs), filter(inputs));
            if (got.status === 404 && notFoundKind(got.body) === "variable") return { id: "", props: {} as GitlabVariableOutputs };
            if (got.status !== 200) throw failure(inputs, conn, "read", got);
            return { id, props: outputsFrom(inputs, got.body) };
        },

        async update(_id, _olds, news) {
            const conn = connectionFor(this.stackConfig, news);
            const updated = await request(conn, tuning, news, "PUT", itemPath(news), filter(news), updateBody(news));
            if (updated.status === 200) return { outs: outputsFrom(news, updated.body) };
            if (updated.status === 404 && notFoundKind(updated.body) === "variable") {
                // Deleted outside Pulumi: put it back rather than fail every run until a refresh.
                const created = await request(conn, tuning, news, "POST", collectionPath(news), undefined, createBody(news));
                if (created.status === 201) return { outs: await confirmCreated(conn, tuning, news, created.body) };
                throw failure(news, conn, "re-create", created);
            }
            throw failure(news, conn, "update", updated);
        },

        async delete(_id, props) {
            const conn = connectionFor(this.stackConfig, props);
            const deleted = await request(conn, tuning, props, "DELETE", itemPath(props), filter(props));
            if (deleted.status === 204 || deleted.status === 200) return;
            if (deleted.status === 404 && notFoundKind(deleted.body) === "variable") return;
            throw failure(props, conn, "delete", deleted);
        },
    };
    return provider;
}

/**
 * The provider's diff, as a pure function (the rehearsal simulator applies the same rule): a
 * change of where the variable lives, or of `hidden`, replaces it; the value and flags update it
 * in place; `target` (messages only) is never compared.
 */
export function variableDiff(
    olds: Partial<GitlabVariableOutputs>,
    news: Partial<GitlabVariableInputs>,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
    const replaces = (["scope", "owner", "key", "environmentScope", "hidden"] as const).filter((k) => olds[k] !== news[k]);
    const updates = (["value", "protected", "masked", "raw", "description"] as const).filter((k) => olds[k] !== news[k]);
    return {
        changes: replaces.length + updates.length > 0,
        replaces,
        // The replacement has the same key (and often the same scope) in GitLab: creating it
        // first would adopt the old variable, and deleting the old one would then remove it.
        deleteBeforeReplace: replaces.length > 0,
    };
}

interface Connection {
    baseUrl: string;
    token: string;
}

interface Tuning {
    attempts: number;
    backoffMs: number;
    maxWaitMs: number;
    timeoutMs: number;
    sleep?: (ms: number) => Promise<void>;
}

interface Answer {
    status: number;
    statusText: string;
    body: unknown;
}

/** Stack config first, then the environment: the same order as the official GitLab provider. */
function connectionFor(config: StackConfig | undefined, v: Pick<GitlabVariableInputs, "scope" | "owner" | "key" | "environmentScope" | "target">): Connection {
    const token = config?.get("gitlab:token") || process.env.GITLAB_TOKEN;
    if (!token) {
        throw new Error(
            `${where(v)}: no GitLab token. Set one with \`pulumi config set --secret gitlab:token <token>\` or the GITLAB_TOKEN environment variable: ` +
                `a personal, group or project access token with the \`api\` scope and the Maintainer role on the project (Owner on a group).`,
        );
    }
    const raw = config?.get("gitlab:baseUrl") || process.env.GITLAB_BASE_URL || defaultGitlabBaseUrl;
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
        throw new Error(`${where(v)}: \`gitlab:baseUrl\` (or GITLAB_BASE_URL) must be an http(s) URL such as https://gitlab.example.com/api/v4/`);
    }
    // Like the official provider's client: the API root may be given with or without `/api/v4`.
    let path = url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`;
    if (!path.endsWith("/api/v4/")) path += "api/v4/";
    url.pathname = path;
    url.search = "";
    url.hash = "";
    return { baseUrl: url.toString(), token };
}

function collectionPath(v: GitlabVariableInputs): string {
    return `${v.scope === "project" ? "projects" : "groups"}/${encodeURIComponent(v.owner)}/variables`;
}

function itemPath(v: GitlabVariableInputs): string {
    return `${collectionPath(v)}/${encodeURIComponent(v.key)}`;
}

/** Every call on one variable names its scope, so two scopes of one key never touch each other. */
function filter(v: GitlabVariableInputs): Record<string, string> {
    return { "filter[environment_scope]": v.environmentScope };
}

function createBody(v: GitlabVariableInputs): Record<string, unknown> {
    // Only sent when wanted: GitLab before 17.4 does not know the field.
    return { key: v.key, ...updateBody(v), ...(v.hidden ? { masked_and_hidden: true } : {}) };
}

function updateBody(v: GitlabVariableInputs): Record<string, unknown> {
    // No `masked_and_hidden`: GitLab ignores it on update (hidden is set at creation only).
    return {
        value: v.value,
        variable_type: "env_var",
        protected: v.protected,
        masked: v.masked,
        raw: v.raw,
        environment_scope: v.environmentScope,
        description: v.description,
    };
}

/** `project:acme/api:AWS_ACCESS_KEY_ID:production`; never contains the value. */
export function variableId(v: Pick<GitlabVariableInputs, "scope" | "owner" | "key" | "environmentScope">): string {
    return `${v.scope}:${v.owner}:${v.key}:${v.environmentScope}`;
}

function parseVariableId(id: string): GitlabVariableInputs {
    const m = /^(project|group):(.+):([A-Za-z0-9_]+):([^:]+)$/.exec(id);
    if (!m) throw new Error(`\`${id}\` is not a GitLab variable id: expected project|group:<id or path>:<key>:<environment scope>`);
    return {
        kind: "gitlab-variable",
        scope: m[1] as "project" | "group",
        owner: m[2],
        key: m[3],
        environmentScope: m[4],
        value: "",
        protected: false,
        masked: false,
        hidden: false,
        raw: false,
        description: "",
        target: id,
    };
}

/** Outputs: the inputs, with the flags GitLab reports. The value stays the input's (hidden values are not returned). */
function outputsFrom(inputs: GitlabVariableInputs, body: unknown): GitlabVariableOutputs {
    const b = (body ?? {}) as Record<string, unknown>;
    const flag = (name: string, fallback: boolean) => (typeof b[name] === "boolean" ? (b[name] as boolean) : fallback);
    return {
        kind: "gitlab-variable",
        scope: inputs.scope,
        owner: inputs.owner,
        key: inputs.key,
        value: typeof b.value === "string" ? b.value : inputs.value,
        environmentScope: typeof b.environment_scope === "string" ? b.environment_scope : inputs.environmentScope,
        protected: flag("protected", inputs.protected),
        masked: flag("masked", inputs.masked),
        hidden: flag("hidden", inputs.hidden),
        raw: flag("raw", inputs.raw),
        description: typeof b.description === "string" ? b.description : b.description === null ? "" : inputs.description,
        target: inputs.target,
    };
}

/**
 * GitLab silently drops what a version or tier does not support: `masked_and_hidden` before 17.4,
 * and the environment scope of group variables without Premium. Such a variable is not what
 * the target asked for (and a scope mismatch would replace it on every run), so remove it again
 * (create must leave nothing behind when it fails) and say what to do.
 */
async function confirmCreated(conn: Connection, tuning: Tuning, inputs: GitlabVariableInputs, body: unknown): Promise<GitlabVariableOutputs> {
    const outs = outputsFrom(inputs, body);
    let problem: string | undefined;
    if (outs.environmentScope !== inputs.environmentScope) {
        problem =
            `GitLab at ${conn.baseUrl} stored the variable with environment scope \`${outs.environmentScope}\` instead (environment scopes of group variables need GitLab Premium). ` +
            'Set `environmentScope: "*"` on the target, or use project targets.';
    } else if (inputs.hidden && (body as { hidden?: unknown })?.hidden !== true) {
        problem = `GitLab at ${conn.baseUrl} did not hide the variable (hidden variables need GitLab 17.4 or later). Set \`hidden: false\` on the target.`;
    }
    if (problem === undefined) return outs;
    await request(conn, tuning, inputs, "DELETE", itemPath(inputs), { "filter[environment_scope]": outs.environmentScope });
    throw new Error(`${where(inputs)}: ${problem}`);
}

/** GitLab answers a duplicate key+scope with 400 "has already been taken" (some versions: 409). */
function isTaken(a: Answer): boolean {
    return (a.status === 400 || a.status === 409) && /has already been taken/i.test(JSON.stringify(a.body ?? ""));
}

/** GitLab says which thing is missing: `404 Project Not Found`, `404 Group Not Found`, `404 Variable Not Found`. */
function notFoundKind(body: unknown): "project" | "group" | "variable" | "other" {
    const message = String((body as { message?: unknown })?.message ?? "");
    const m = /404 (Project|Group|Variable) Not Found/i.exec(message);
    return m ? (m[1].toLowerCase() as "project" | "group" | "variable") : "other";
}

/** `` `credentials[0].targets[1]` (gitlab project acme/api), variable `KEY` (environment scope `*`) ``. */
function where(v: Pick<GitlabVariableInputs, "key" | "environmentScope" | "target">): string {
    return `${v.target}, variable \`${v.key}\` (environment scope \`${v.environmentScope}\`)`;
}

/** Remove the value and the token from text that came from GitLab before it reaches a message. */
function redact(text: string, secrets: string[]): string {
    let out = text;
    for (const s of secrets) if (s) out = out.split(s).join("[redacted]");
    return out;
}

function gitlabMessage(body: unknown): string {
    if (body === undefined || body === null || body === "") return "";
    if (typeof body === "string") return body.slice(0, 500);
    const b = body as { message?: unknown; error?: unknown; error_description?: unknown };
    const m = b.message ?? b.error_description ?? b.error ?? body;
    if (typeof m === "string") return m;
    if (typeof m === "object" && m !== null) {
        return Object.entries(m as Record<string, unknown>)
            .map(([field, v]) => `${field} ${Array.isArray(v) ? v.join(", ") : String(v)}`)
            .join("; ");
    }
    return JSON.stringify(m);
}

/** An error that says which target, what GitLab said, and what to do; never the value or the token. */
function failure(v: GitlabVariableInputs, conn: Connection, action: string, a: Answer): Error {
    const owner = `${v.scope} \`${v.owner}\``;
    const said = redact(gitlabMessage(a.body), [v.value, conn.token]);
    const status = `${a.status}${a.statusText ? ` ${a.statusText}` : ""}`;
    let what: string;
    switch (a.status) {
        case 401:
            what =
                `GitLab rejected the token (${status}). Set \`gitlab:token\` (pulumi config set --secret gitlab:token <token>) or GITLAB_TOKEN ` +
                `to an access token with the \`api\` scope that has not expired or been revoked.`;
            break;
        case 403:
            what =
                `the token may not manage CI/CD variables of ${owner} (${status}${said ? `: ${said}` : ""}). ` +
                `It needs the \`api\` scope and the ${v.scope === "group" ? "Owner role on the group" : "Maintainer role on the project"}.`;
            break;
        case 404: {
            const kind = notFoundKind(a.body);
            what =
                kind === "variable"
                    ? `the variable does not exist in GitLab (${status}); run \`pulumi refresh\` and then \`pulumi up\` to create it again.`
                    : `${owner} was not found (${status}${said ? `: ${said}` : ""}). Check the \`${v.scope}\` of the target (numeric id or full path), and that the token's user can see it: GitLab answers 404 for a ${v.scope} the token may not read. If it was deleted, remove this resource with \`pulumi state delete\`.`;
            break;
        }
        case 400:
            what = `GitLab refused the variable (${status}${said ? `: ${said}` : ""}).`;
            if (v.masked && /value/i.test(said)) {
                what += " Masked values must be one line of at least 8 characters without spaces (older GitLab versions: only letters, digits and + / = @ : . ~). Set `masked: false` on the target if the value cannot be masked.";
            }
            break;
        case 409:
            what = `GitLab reports a conflict (${status}${said ? `: ${said}` : ""}): another variable with this key and environment scope may exist; check the ${v.scope}'s CI/CD variables.`;
            break;
        default:
            what = `GitLab answered ${status}${said ? `: ${said}` : ""}.`;
    }
    return new Error(`${where(v)}: could not ${action} the CI/CD variable in ${owner}: ${what}`);
}

/**
 * One REST call, retried on 429, 5xx and connection failures with exponential back-off that
 * honours Retry-After, at most `tuning.attempts` times. Returns any other answer to the caller.
 */
async function request(
    conn: Connection,
    tuning: Tuning,
    v: GitlabVariableInputs,
    method: string,
    path: string,
    query?: Record<string, string>,
    body?: Record<string, unknown>,
): Promise<Answer> {
    const url = new URL(path, conn.baseUrl);
    for (const [k, val] of Object.entries(query ?? {})) url.searchParams.set(k, val);
    const sleep = tuning.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let last = "";
    for (let attempt = 1; attempt <= tuning.attempts; attempt++) {
        let wait = tuning.backoffMs * 2 ** (attempt - 1);
        let response: Response | undefined;
        let text = "";
        try {
            response = await fetch(url, {
                method,
                headers: {
                    "PRIVATE-TOKEN": conn.token,
                    Accept: "application/json",
                    "User-Agent": "ci-key-rotation",
                    ...(body ? { "Content-Type": "application/json" } : {}),
                },
                body: body ? JSON.stringify(body) : undefined,
                signal: AbortSignal.timeout(tuning.timeoutMs),
            });
            text = await response.text();
        } catch (e) {
            const reason = e instanceof Error ? (e.name === "TimeoutError" ? `no answer within ${tuning.timeoutMs} ms` : ((e as { cause?: { code?: string } }).cause?.code ?? e.message)) : String(e);
            last = `a connection failure (${redact(reason, [conn.token, v.value])})`;
            response = undefined;
        }
        if (response) {
            let parsed: unknown = text;
            try {
                parsed = text === "" ? undefined : JSON.parse(text);
            } catch {
                // Proxies in front of self-managed GitLab answer HTML; keep the text for the message.
            }
            if (response.status !== 429 && response.status < 500) return { status: response.status, statusText: response.statusText, body: parsed };
            last = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
            const retryAfter = retryAfterMs(response.headers.get("retry-after"));
            if (retryAfter !== undefined && retryAfter > tuning.maxWaitMs) {
                throw new Error(`${where(v)}: GitLab answered ${last} and asked to wait ${Math.ceil(retryAfter / 1000)} s before trying again; run again after that.`);
            }
            if (retryAfter !== undefined) wait = retryAfter;
        }
        if (attempt < tuning.attempts) await sleep(Math.min(wait, tuning.maxWaitMs));
    }
    throw new Error(
        `${where(v)}: GitLab at ${conn.baseUrl} kept failing with ${last} after ${tuning.attempts} attempts; run again later` +
            (last.startsWith("a connection") ? ", and check `gitlab:baseUrl` (or GITLAB_BASE_URL)." : "."),
    );
}

/** Retry-After is either seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
    if (header === null || header.trim() === "") return undefined;
    if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
    const at = Date.parse(header);
    return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Checks the engine runs before preview and update: a wrong input never reaches GitLab. */
function inputProblems(v: Partial<GitlabVariableInputs>): { property: string; reason: string }[] {
    const problems: { property: string; reason: string }[] = [];
    if (v.kind !== "gitlab-variable") problems.push({ property: "kind", reason: 'must be "gitlab-variable"' });
    if (v.scope !== "project" && v.scope !== "group") problems.push({ property: "scope", reason: 'must be "project" or "group"' });
    if (typeof v.owner !== "string" || v.owner === "") problems.push({ property: "owner", reason: "must be a numeric id or a full path" });
    if (typeof v.key !== "string" || !/^[A-Za-z0-9_]{1,255}$/.test(v.key)) problems.push({ property: "key", reason: "must be 1-255 letters, digits and underscores" });
    if (typeof v.environmentScope !== "string" || v.environmentScope === "") problems.push({ property: "environmentScope", reason: 'must be "*" or an environment name' });
    if (v.hidden && !v.masked) problems.push({ property: "masked", reason: "must be true when hidden is true (GitLab hides only masked variables)" });
    // An unknown value (preview) cannot be checked yet; a known one never appears in the reason.
    if (v.masked && typeof v.value === "string" && !isUnknown(v.value) && !isMaskable(v.value)) {
        problems.push({ property: "value", reason: "cannot be masked by GitLab: masked values must be one line of at least 8 characters without spaces" });
    }
    return problems;
}

/** The engine's placeholder for a value not known during preview. */
function isUnknown(value: string): boolean {
    return value === "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
}

/** GitLab's masking rule (17.x): one line, no spaces, at least 8 characters. */
export function isMaskable(value: string): boolean {
    return /^\S{8,}$/.test(value);
}

/** Arguments of {@link GitlabVariable}; `value` may be (and for the secret key is) a secret Output. */
export type GitlabVariableArgs = { [K in keyof GitlabVariableInputs]: pulumi.Input<GitlabVariableInputs[K]> };

// One provider object for every variable: the same serialized text, so the provider host
// deserializes and configures it once per run.
const sharedProvider = gitlabVariableProvider();

/** One GitLab CI/CD variable (project or group), managed over the REST API. */
export class GitlabVariable extends pulumi.dynamic.Resource {
    declare readonly key: pulumi.Output<string>;
    declare readonly environmentScope: pulumi.Output<string>;
    /** Secret whenever the input was (the engine re-marks it; `additionalSecretOutputs` makes sure). */
    declare readonly value: pulumi.Output<string>;

    constructor(name: string, args: GitlabVariableArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(sharedProvider, name, args, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["value"] }));
    }
}
