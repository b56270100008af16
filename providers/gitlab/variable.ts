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
            if (isSuccess(created.status)) {
                checkAnswer(conn, inputs, created, "create");
                return { id: variableId(inputs), outs: await confirmCreated(conn, tuning, inputs, created.body) };
            }
            if (!isTaken(created)) throw failure(inputs, conn, "create", created);
            // The key already exists in this scope: it was created outside Pulumi, or by a run that
            // failed after GitLab answered. The target names it, so it is ours: adopt it in place.
            const existing = await request(conn, tuning, inputs, "GET", itemPath(inputs), filter(inputs));
            if (!isSuccess(existing.status)) throw failure(inputs, conn, "read the existing", existing);
            checkAnswer(conn, inputs, existing, "read");
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
            if (!isSuccess(updated.status)) throw failure(inputs, conn, "adopt the existing", updated);
            checkAnswer(conn, inputs, updated, "write");
            return { id: variableId(inputs), outs: outputsFrom(inputs, updated.body) };
        },

        async read(id, props) {
            const inputs = props ?? parseVariableId(id);
            const conn = connectionFor(this.stackConfig, inputs);
            const got = await request(conn, tuning, inputs, "GET", itemPath(inputs), filter(inputs));
            if (got.status === 404 && notFoundKind(got.body) === "variable") return { id: "", props: {} as GitlabVariableOutputs };
            if (!isSuccess(got.status)) throw failure(inputs, conn, "read", got);
            checkAnswer(conn, inputs, got, "read");
            return { id, props: outputsFrom(inputs, got.body) };
        },

        async update(_id, _olds, news) {
            const conn = connectionFor(this.stackConfig, news);
            const updated = await request(conn, tuning, news, "PUT", itemPath(news), filter(news), updateBody(news));
            if (isSuccess(updated.status)) {
                checkAnswer(conn, news, updated, "write");
                return { outs: outputsFrom(news, updated.body) };
            }
            if (updated.status === 404 && notFoundKind(updated.body) === "variable") {
                // Deleted outside Pulumi: put it back rather than fail every run until a refresh.
                const created = await request(conn, tuning, news, "POST", collectionPath(news), undefined, createBody(news));
                if (isSuccess(created.status)) {
                    checkAnswer(conn, news, created, "create");
                    return { outs: await confirmCreated(conn, tuning, news, created.body) };
                }
                throw failure(news, conn, "re-create", created);
            }
            throw failure(news, conn, "update", updated);
        },

        async delete(_id, props) {
            const conn = connectionFor(this.stackConfig, props);
            const deleted = await request(conn, tuning, props, "DELETE", itemPath(props), filter(props));
            // GitLab answers 204 with no body; a page in its place (a sign-in proxy) deleted nothing.
            if (deleted.status === 204 || (isSuccess(deleted.status) && (deleted.json || deleted.body === undefined))) return;
            if (isSuccess(deleted.status)) throw notGitlabsAnswer(conn, props, deleted, "the delete is not confirmed", "not JSON");
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
    /** The standard reason phrase of `status` (never the server's: it may echo anything). */
    statusText: string;
    /** The media type GitLab (or whatever answered) declared, without parameters; "" when none. */
    contentType: string;
    /** Whether the body parsed as JSON (`body` is then the parsed value, else the text). */
    json: boolean;
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
    // None of these messages repeats the URL: it may hold a password or a token.
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
        throw new Error(`${where(v)}: \`gitlab:baseUrl\` (or GITLAB_BASE_URL) must be an http(s) URL such as https://gitlab.example.com/api/v4/`);
    }
    if (url.username !== "" || url.password !== "") {
        throw new Error(
            `${where(v)}: \`gitlab:baseUrl\` (or GITLAB_BASE_URL) must not contain a user name or password: give the token in \`gitlab:token\` (or GITLAB_TOKEN) ` +
                "and the address alone in `gitlab:baseUrl`, such as https://gitlab.example.com/api/v4/. Change that password: it is in your stack config or environment.",
        );
    }
    if (url.protocol === "http:" && !isLoopback(url.hostname)) {
        throw new Error(
            `${where(v)}: \`gitlab:baseUrl\` (or GITLAB_BASE_URL) must be an https:// URL: over http:// the token and the value would cross the network in clear text ` +
                `(http:// is only accepted for localhost). Use https://${url.host}${url.pathname === "/" ? "/" : url.pathname}.`,
        );
    }
    // Like the official provider's client: the API root may be given with or without `/api/v4`.
    let path = url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`;
    if (!path.endsWith("/api/v4/")) path += "api/v4/";
    url.pathname = path;
    url.search = "";
    url.hash = "";
    return { baseUrl: url.toString(), token };
}

/** `localhost`, `127.0.0.0/8` and `::1`: addresses that never leave the machine. */
function isLoopback(hostname: string): boolean {
    return hostname === "localhost" || hostname.endsWith(".localhost") || /^127(\.\d{1,3}){3}$/.test(hostname) || hostname === "[::1]";
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

function isSuccess(status: number): boolean {
    return status >= 200 && status < 300;
}

/**
 * A 2xx counts only when it is GitLab's answer for this variable: a JSON object with its key and
 * environment scope and, after a write, the value sent. GitLab answers create, update and get with
 * the variable it stored (`key`, `value`, `environment_scope`, ...: "Create a variable" and "Update
 * a variable" in https://docs.gitlab.com/api/project_level_variables/ and group_level_variables/).
 * A sign-in page of a proxy, a cut-off body, or another variable's JSON is not a write.
 *
 * The environment scope of a create is left to `confirmCreated`, which explains why GitLab may
 * store another one (group scopes need Premium).
 */
function checkAnswer(conn: Connection, v: GitlabVariableInputs, a: Answer, kind: "create" | "write" | "read"): void {
    const body = a.body as Record<string, unknown> | undefined;
    const consequence = kind === "read" ? "the variable's state in GitLab is unknown" : "the write is not confirmed";
    let why: string | undefined;
    if (!a.json) why = "not JSON";
    else if (typeof body !== "object" || body === null || Array.isArray(body)) why = "not a variable";
    else if (body.key !== v.key) why = "another variable's key";
    else if (kind !== "create" && body.environment_scope !== v.environmentScope) why = "another environment scope";
    // GitLab never returns a hidden variable's value (API::Entities::Ci::Variable in
    // gitlab-org/gitlab lib/api/entities/ci/variable.rb passes it through Ci::VariableValue), so
    // only a visible one can show that the value took.
    else if (kind !== "read" && !(body.hidden === true || v.hidden) && body.value !== v.value) why = "not the value sent";
    if (why !== undefined) throw notGitlabsAnswer(conn, v, a, consequence, why);
}

function notGitlabsAnswer(conn: Connection, v: GitlabVariableInputs, a: Answer, consequence: string, why: string): Error {
    return new Error(
        `${where(v)}: GitLab at ${conn.baseUrl} answered ${a.status} (${a.contentType || "no content type"}) with something that is not GitLab's answer for this variable (${why}): ` +
            `${consequence}. Check that \`gitlab:baseUrl\` (or GITLAB_BASE_URL) is the address of GitLab's API itself, not a sign-in proxy or another service in front of it, and run again.`,
    );
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

/**
 * Remove the value and the token from text that came from GitLab before it reaches a message.
 * The text is decoded first (percent-encoding, HTML entities, JSON escapes, up to three layers),
 * so an echo in any of those forms is found; then every run of 8 or more characters that also
 * occurs in a secret, in any case, is cut, so part of a token is as hidden as all of it.
 */
function redact(text: string, secrets: string[]): string {
    let out = text;
    for (let layer = 0; layer < 3; layer++) {
        const decoded = decodeEchoes(out);
        if (decoded === out) break;
        out = decoded;
    }
    const cut = new Array<boolean>(out.length).fill(false);
    // Case-insensitively (character by character, so positions stay those of `out`): an echo in
    // other case still gives the token away.
    const folded = Array.from({ length: out.length }, (_, i) => out[i].toLowerCase());
    for (const original of secrets) {
        if (!original) continue;
        const secret = Array.from({ length: original.length }, (_, j) => original[j].toLowerCase());
        const min = Math.min(8, secret.length);
        // run[j] = length of the common run of out[i..] and secret[j..], computed from the end.
        let next = new Array<number>(secret.length + 1).fill(0);
        for (let i = out.length - 1; i >= 0; i--) {
            const run = new Array<number>(secret.length + 1).fill(0);
            for (let j = secret.length - 1; j >= 0; j--) {
                if (folded[i] !== secret[j]) continue;
                run[j] = 1 + next[j + 1];
                if (run[j] >= min) for (let k = i; k < i + run[j]; k++) cut[k] = true;
            }
            next = run;
        }
    }
    let redacted = "";
    for (let i = 0; i < out.length; i++) {
        if (!cut[i]) redacted += out[i];
        else if (i === 0 || !cut[i - 1]) redacted += "[redacted]";
    }
    return redacted;
}

/** One layer of `%2F`, `&#x2F;`, `&#47;`, `&amp;`-style entities and `\/`, `\u002F` escapes. */
function decodeEchoes(text: string): string {
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", sol: "/", plus: "+", equals: "=", percnt: "%", num: "#", colon: ":" };
    return text
        .replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
        .replace(/&#[xX]([0-9A-Fa-f]{1,6});?/g, (m, hex: string) => codePoint(parseInt(hex, 16), m))
        .replace(/&#([0-9]{1,7});?/g, (m, dec: string) => codePoint(parseInt(dec, 10), m))
        .replace(/&([A-Za-z]+);/g, (m, name: string) => named[name.toLowerCase()] ?? m)
        .replace(/\\u([0-9A-Fa-f]{4})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
        .replace(/\\([\/"\\])/g, "$1");
}

function codePoint(n: number, fallback: string): string {
    return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : fallback;
}

/**
 * What GitLab said, for a message: its JSON `message`/`error`, or for any other body only its
 * content type (an HTML page from a proxy may carry anything, the value and the token included).
 */
function gitlabMessage(a: Answer): string {
    const body = a.body;
    if (body === undefined || body === null || body === "") return "";
    if (!a.json) return a.contentType.startsWith("an ") ? "a page of an unusual content type, not shown" : `a ${a.contentType || "non-JSON"} page, not shown`;
    if (typeof body === "string") return body.slice(0, 500);
    const b = body as { message?: unknown; error?: unknown; error_description?: unknown };
    const m = b.message ?? b.error_description ?? b.error ?? body;
    if (typeof m === "string") return m.slice(0, 500);
    if (typeof m === "object" && m !== null) {
        return Object.entries(m as Record<string, unknown>)
            .map(([field, v]) => `${field} ${Array.isArray(v) ? v.join(", ") : String(v)}`)
            .join("; ")
            .slice(0, 500);
    }
    return JSON.stringify(m).slice(0, 500);
}

/** Standard reason phrases: the server's own phrase is never shown (it may echo the token). */
function reasonPhrase(status: number): string {
    const phrases: Record<number, string> = {
        200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect",
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
        413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
    };
    return phrases[status] ?? "";
}

/**
 * `text/html` from `text/html; charset=utf-8`. Only common types are named: the header is the
 * server's text, and an unusual one may carry anything (a token echoed in lower case included).
 */
function mediaType(header: string | null): string {
    if (header === null || header.trim() === "") return "";
    const type = header.split(";")[0].trim().toLowerCase();
    const common = ["application/json", "application/problem+json", "text/html", "text/plain", "application/xml", "text/xml", "application/octet-stream", "application/javascript", "text/javascript"];
    return common.includes(type) ? type : "an unusual content type";
}

/** An error that says which target, what GitLab said, and what to do; never the value or the token. */
function failure(v: GitlabVariableInputs, conn: Connection, action: string, a: Answer): Error {
    const owner = `${v.scope} \`${v.owner}\``;
    const said = redact(gitlabMessage(a), [v.value, conn.token]);
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
                // Never follow a redirect: fetch would send PRIVATE-TOKEN and the body (the value)
                // to wherever it points. With "manual", Node's fetch (undici) returns the 3xx itself.
                redirect: "manual",
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
            if (response.status >= 300 && response.status < 400) throw redirected(conn, v, url, response.status, response.headers.get("location"));
            let parsed: unknown = text;
            let json = false;
            try {
                parsed = text === "" ? undefined : JSON.parse(text);
                json = text !== "";
            } catch {
                // Proxies in front of self-managed GitLab answer HTML; only its content type is ever shown.
            }
            const statusText = reasonPhrase(response.status);
            if (response.status !== 429 && response.status < 500) {
                return { status: response.status, statusText, contentType: mediaType(response.headers.get("content-type")), json, body: parsed };
            }
            last = `${response.status}${statusText ? ` ${statusText}` : ""}`;
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

/** A redirect is never followed: say where it pointed (the host only: the rest may hold a token). */
function redirected(conn: Connection, v: GitlabVariableInputs, from: URL, status: number, location: string | null): Error {
    const target = location !== null && URL.canParse(location, from.href) ? new URL(location, from) : undefined;
    const to = target ? `${target.protocol === from.protocol ? "" : target.protocol + "//"}${target.host}` : "an address it did not give";
    return new Error(
        `${where(v)}: GitLab at ${conn.baseUrl} answered ${status} with a redirect to ${to}, which was not followed: the token is never sent after a redirect: ` +
            "set `gitlab:baseUrl` (or GITLAB_BASE_URL) to the address GitLab's API answers at (https, with its /api/v4/ path), and run again.",
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
