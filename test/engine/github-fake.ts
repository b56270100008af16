import * as http from "node:http";
import type { AddressInfo } from "node:net";
import sodium from "libsodium-wrappers";

/**
 * A loopback fake of the GitHub REST API, as far as the GitHub provider of `@pulumi/github` 6.15
 * (terraform-provider-github v6.13.0, the `upstream` submodule of pulumi/pulumi-github v6.15.0,
 * commit 20728bb) touches it for Actions and Dependabot secrets and Actions variables.
 *
 * It serves the API the way GitHub Enterprise Server does, under `/api/v3/`: the provider's
 * `getBaseURL` (terraform-provider-github `github/config.go`) treats any host that is not
 * github.com or *.ghe.com as GHES and appends `api/v3/` to `base_url` (after trimming one already
 * there), so `github:baseUrl` is `url` below (with or without the `/api/v3/` suffix).
 *
 * Endpoints (paths as go-github v88 builds them, `github/actions_secrets.go`,
 * `actions_variables.go`, `dependabot_secrets.go`, `repos.go`, `orgs.go`, `users.go`):
 * - `GET /user`, `GET /orgs/{org}` (the provider's `configureProviderMeta` looks the owner up
 *   and accepts a 404 as "a user"), `GET /repos/{owner}/{repo}` (every repository-scoped create
 *   and the `getRepository` data source read the repository id here);
 * - repository secrets `/repos/{o}/{r}/actions/secrets/public-key`, `.../secrets/{name}`;
 * - environment secrets `/repositories/{repo_id}/environments/{env}/secrets/public-key` and
 *   `.../secrets/{name}` (go-github v88 addresses them by repository id), plus the same under
 *   `/repos/{o}/{r}/environments/{env}/secrets/...` (the form newer go-github uses);
 * - organization secrets `/orgs/{org}/actions/secrets/public-key`, `.../secrets/{name}`,
 *   `.../secrets/{name}/repositories` (GET list, PUT set) and `.../repositories/{repo_id}`;
 * - Dependabot secrets `/repos/{o}/{r}/dependabot/secrets/public-key`, `.../secrets/{name}`;
 * - variables `/repos/{o}/{r}/actions/variables[/{name}]`,
 *   `/repos/{o}/{r}/environments/{env}/variables[/{name}]`,
 *   `/orgs/{org}/actions/variables[/{name}[/repositories]]` (POST create, PATCH update).
 *
 * GitHub semantics kept: names are case-insensitive and reported in upper case; each scope has its
 * own libsodium key pair and the fake opens the sealed box it receives (a value sealed to another
 * key, or under a stale `key_id`, is refused with 422); secret writes answer 201 on create and 204
 * on update; `updated_at` has one-second resolution; an organization secret PUT without
 * `selected_repository_ids` leaves it with no selected repository (go-github's `EncryptedSecret`
 * omits an empty list, `omitempty`); unknown repositories, environments, secrets and variables
 * answer 404 with GitHub's error body; a wrong token answers 401 "Bad credentials".
 */

/** Where a secret or variable lives. `env:` and `repo:` take `owner/name`; `env:` adds `:environment`. */
export type Scope = `repo:${string}` | `env:${string}:${string}` | `org:${string}` | `dependabot:${string}`;

/** A secret as the fake holds it, with its decrypted value (what a job would read). */
export interface StoredSecret {
    name: string;
    value: string;
    createdAt: string;
    updatedAt: string;
    /** Organization secrets only. */
    visibility?: "all" | "private" | "selected";
    /** Organization secrets with visibility `selected`: repository ids. */
    selectedRepositoryIds?: number[];
    /** How many times the value was written (PUT), creation included. */
    writes: number;
}

/** An Actions variable as the fake holds it. */
export interface StoredVariable {
    name: string;
    value: string;
    createdAt: string;
    updatedAt: string;
    visibility?: "all" | "private" | "selected";
    selectedRepositoryIds?: number[];
}

/** A request the fake answered (never its body or token). */
export interface RecordedRequest {
    method: string;
    /** Path below the API root, e.g. `/repos/acme/api/actions/secrets/AWS_ACCESS_KEY_ID`. */
    path: string;
    status: number;
    /** Set when a failure rule answered it. */
    injected?: boolean;
}

/**
 * A failure to inject. The first rule whose `method` and `path` match a request answers it,
 * `times` times (default 1; `Infinity` for all). With `delayMs` alone the request is answered
 * normally after the delay (a slow GitHub); with `status` the fake answers that status and GitHub's
 * error body instead of doing the work; with `reset` it destroys the connection.
 *
 * The provider retries 500, 502, 503 and 504 three times, one second apart (terraform-provider-
 * github `github/provider.go` `max_retries` default 3 and `getDefaultRetryableErrors`, applied by
 * `github/transport.go` `RetryTransport`): a write fails for good only after 4 such answers.
 */
export interface FailureRule {
    method?: string;
    /** Exact path below the API root, or a pattern tested against it. Names match case-insensitively. */
    path: string | RegExp;
    status?: number;
    /** Error message in the body; default GitHub's for the status. */
    message?: string;
    delayMs?: number;
    reset?: boolean;
    times?: number;
}

/** A repository the fake knows. */
export interface RepositorySpec {
    /** `owner/name`. */
    fullName: string;
    /** Default: assigned from 1000 upwards. */
    id?: number;
    private?: boolean;
    /** Deployment environments. Default `[]`. */
    environments?: string[];
}

export interface GithubFakeOptions {
    /** The token the provider must present. Default `"ghp_fake"`; `null` accepts any request. */
    token?: string | null;
    /** The login `GET /user` reports. Default `"ci-bot"`. */
    user?: string;
    /** Organization logins (`GET /orgs/{org}` answers 200). Default: every repository's owner. */
    organizations?: string[];
    repositories?: (string | RepositorySpec)[];
    /** Clock for `created_at`/`updated_at`. Default the real one. */
    now?: () => Date;
}

export interface GithubFake {
    /** Base for `github:baseUrl`, e.g. `http://127.0.0.1:41234/`. */
    url: string;
    /** REST root, `${url}api/v3/`. */
    apiUrl: string;
    token: string | null;
    stop(): Promise<void>;
    /** The decrypted value of a secret, or undefined if it does not exist. */
    secretValue(scope: Scope, name: string): string | undefined;
    secret(scope: Scope, name: string): StoredSecret | undefined;
    variableValue(scope: Scope, name: string): string | undefined;
    variable(scope: Scope, name: string): StoredVariable | undefined;
    /** Full names of the repositories selected for an organization secret or variable. */
    selectedRepositories(kind: "secret" | "variable", org: string, name: string): string[] | undefined;
    /** Every secret and variable, as `"<scope> secret|variable NAME"` keys (sorted). */
    inventory(): string[];
    repositoryId(fullName: string): number | undefined;
    addRepository(spec: string | RepositorySpec): number;
    /** Put a secret in place as if written in GitHub's UI. */
    seedSecret(scope: Scope, name: string, value: string, org?: { visibility: "all" | "private" | "selected"; selectedRepositoryIds?: number[] }): void;
    /** Every request answered so far. */
    requests: RecordedRequest[];
    /** Add a failure rule; returns a function that removes it. */
    fail(rule: FailureRule): () => void;
    /** Remove every failure rule. */
    clearFailures(): void;
}

interface KeyPair {
    keyId: string;
    publicKey: Uint8Array;
    privateKey: Uint8Array;
}

interface Repo {
    id: number;
    owner: string;
    name: string;
    private: boolean;
    environments: Set<string>;
}

const lc = (s: string) => s.toLowerCase();
const uc = (s: string) => s.toUpperCase();

/** GitHub's timestamps: ISO 8601 in UTC, whole seconds. */
const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

const reasons: Record<number, string> = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Resource not accessible by personal access token",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
};

class HttpError extends Error {
    constructor(
        readonly status: number,
        message?: string,
    ) {
        super(message ?? reasons[status] ?? `HTTP ${status}`);
    }
}

/** Starts the fake on 127.0.0.1 with a free port. */
export async function startGithubFake(opts: GithubFakeOptions = {}): Promise<GithubFake> {
    await sodium.ready;
    const token = opts.token === undefined ? "ghp_fake" : opts.token;
    const login = opts.user ?? "ci-bot";
    const now = opts.now ?? (() => new Date());
    const userId = 500;

    const repos = new Map<string, Repo>(); // key: lc(owner/name)
    const orgs = new Map<string, { login: string; id: number }>(); // key: lc(login)
    const keys = new Map<string, KeyPair>(); // key: lc(scope)
    const secrets = new Map<string, Map<string, StoredSecret>>(); // lc(scope) -> uc(name) -> secret
    const variables = new Map<string, Map<string, StoredVariable>>();
    const requests: RecordedRequest[] = [];
    const rules: (FailureRule & { left: number })[] = [];
    let nextRepoId = 1000;
    let nextOrgId = 9000;
    let nextKeyId = 3380204578043523000n;

    function addOrg(name: string) {
        if (!orgs.has(lc(name))) orgs.set(lc(name), { login: name, id: nextOrgId++ });
    }
    function addRepository(spec: string | RepositorySpec): number {
        const s = typeof spec === "string" ? { fullName: spec } : spec;
        const [owner, name] = s.fullName.split("/");
        if (!owner || !name) throw new Error(`repository "${s.fullName}" must be "owner/name"`);
        const id = s.id ?? nextRepoId++;
        repos.set(lc(s.fullName), { id, owner, name, private: s.private ?? true, environments: new Set((s.environments ?? []).map(lc)) });
        if (opts.organizations === undefined) addOrg(owner);
        return id;
    }
    for (const o of opts.organizations ?? []) addOrg(o);
    for (const r of opts.repositories ?? []) addRepository(r);

    function keyFor(scope: string): KeyPair {
        let k = keys.get(lc(scope));
        if (!k) {
            const pair = sodium.crypto_box_keypair();
            k = { keyId: String(nextKeyId++), publicKey: pair.publicKey, privateKey: pair.privateKey };
            keys.set(lc(scope), k);
        }
        return k;
    }
    const bucket = <T>(m: Map<string, Map<string, T>>, scope: string) => {
        let b = m.get(lc(scope));
        if (!b) m.set(lc(scope), (b = new Map()));
        return b;
    };
    const repoById = (id: number) => [...repos.values()].find((r) => r.id === id);
    const fullName = (r: Repo) => `${r.owner}/${r.name}`;

    function repoJson(r: Repo) {
        const base = `${url}api/v3`;
        return {
            id: r.id,
            node_id: `R_${Buffer.from(String(r.id)).toString("base64")}`,
            name: r.name,
            full_name: fullName(r),
            owner: { login: r.owner, id: orgs.get(lc(r.owner))?.id ?? userId, type: orgs.has(lc(r.owner)) ? "Organization" : "User" },
            private: r.private,
            visibility: r.private ? "private" : "public",
            html_url: `${url}${fullName(r)}`,
            url: `${base}/repos/${fullName(r)}`,
            default_branch: "main",
            fork: false,
            archived: false,
            has_pages: false,
            license: null,
            topics: [],
        };
    }

    function needRepo(owner: string, name: string): Repo {
        const r = repos.get(lc(`${owner}/${name}`));
        if (!r) throw new HttpError(404);
        return r;
    }
    function needOrg(org: string) {
        const o = orgs.get(lc(org));
        if (!o) throw new HttpError(404);
        return o;
    }
    function needEnv(r: Repo, env: string) {
        if (!r.environments.has(lc(env))) throw new HttpError(404);
    }

    function open(scope: string, body: Record<string, unknown>): string {
        const k = keyFor(scope);
        if (typeof body.encrypted_value !== "string" || typeof body.key_id !== "string") {
            throw new HttpError(422, "Invalid request.\n\n\"encrypted_value\" and \"key_id\" are required.");
        }
        if (body.key_id !== k.keyId) throw new HttpError(422, "Bad request - key_id is not valid");
        try {
            const sealed = Buffer.from(body.encrypted_value, "base64");
            return sodium.to_string(sodium.crypto_box_seal_open(sealed, k.publicKey, k.privateKey));
        } catch {
            throw new HttpError(422, "Bad request - encrypted_value is not valid");
        }
    }

    function putSecret(scope: string, name: string, body: Record<string, unknown>, org?: boolean): number {
        const value = open(scope, body);
        const b = bucket(secrets, scope);
        const existing = b.get(uc(name));
        const t = stamp(now());
        const s: StoredSecret = existing ?? { name: uc(name), value, createdAt: t, updatedAt: t, writes: 0 };
        s.value = value;
        s.updatedAt = t;
        s.writes++;
        if (org) {
            const visibility = body.visibility;
            if (visibility !== "all" && visibility !== "private" && visibility !== "selected") {
                throw new HttpError(422, "Invalid request.\n\n\"visibility\" is not a member of [all, private, selected].");
            }
            s.visibility = visibility;
            // go-github's EncryptedSecret omits an empty selected_repository_ids (omitempty);
            // GitHub then leaves the secret with no selected repository.
            s.selectedRepositoryIds = visibility === "selected" ? idsFrom(body.selected_repository_ids) : undefined;
        }
        b.set(uc(name), s);
        return existing ? 204 : 201;
    }

    function idsFrom(v: unknown): number[] {
        if (v === undefined || v === null) return [];
        if (!Array.isArray(v)) throw new HttpError(422, "Invalid request.\n\n\"selected_repository_ids\" is not an array.");
        return v.map((x) => {
            const id = Number(x);
            if (!Number.isInteger(id) || !repoById(id)) throw new HttpError(422, `Invalid request.\n\nRepository ${String(x)} not found.`);
            return id;
        });
    }

    function secretJson(s: StoredSecret, scope: string) {
        const out: Record<string, unknown> = { name: s.name, created_at: s.createdAt, updated_at: s.updatedAt };
        if (s.visibility) {
            out.visibility = s.visibility;
            if (s.visibility === "selected") out.selected_repositories_url = `${url}api/v3/orgs/${scope.slice(4)}/actions/secrets/${s.name}/repositories`;
        }
        return out;
    }
    function variableJson(v: StoredVariable, scope: string) {
        const out: Record<string, unknown> = { name: v.name, value: v.value, created_at: v.createdAt, updated_at: v.updatedAt };
        if (v.visibility) {
            out.visibility = v.visibility;
            if (v.visibility === "selected") out.selected_repositories_url = `${url}api/v3/orgs/${scope.slice(4)}/actions/variables/${v.name}/repositories`;
        }
        return out;
    }

    type Reply = { status: number; body?: unknown };

    function secretEndpoints(scope: string, rest: string[], method: string, body: Record<string, unknown>, org: boolean): Reply {
        if (rest.length === 1 && rest[0] === "public-key" && method === "GET") {
            const k = keyFor(scope);
            return { status: 200, body: { key_id: k.keyId, key: sodium.to_base64(k.publicKey, sodium.base64_variants.ORIGINAL) } };
        }
        if (rest.length === 0 && method === "GET") {
            const list = [...bucket(secrets, scope).values()].map((s) => secretJson(s, scope));
            return { status: 200, body: { total_count: list.length, secrets: list } };
        }
        const name = rest[0];
        if (rest.length === 1) {
            if (method === "PUT") return { status: putSecret(scope, name, body, org) };
            const s = bucket(secrets, scope).get(uc(name));
            if (method === "GET") {
                if (!s) throw new HttpError(404);
                return { status: 200, body: secretJson(s, scope) };
            }
            if (method === "DELETE") {
                if (!s) throw new HttpError(404);
                bucket(secrets, scope).delete(uc(name));
                return { status: 204 };
            }
        }
        if (org && rest[1] === "repositories") {
            const s = bucket(secrets, scope).get(uc(name));
            if (!s) throw new HttpError(404);
            return selection(s, rest.slice(2), method, body);
        }
        throw new HttpError(404);
    }

    /** `GET/PUT .../repositories` and `PUT/DELETE .../repositories/{id}` of an organization secret or variable. */
    function selection(s: { visibility?: string; selectedRepositoryIds?: number[] }, rest: string[], method: string, body: Record<string, unknown>): Reply {
        if (rest.length === 0 && method === "GET") {
            const list = (s.selectedRepositoryIds ?? []).map((id) => repoJson(repoById(id)!));
            return { status: 200, body: { total_count: list.length, repositories: list } };
        }
        // GitHub documents 409 "when visibility type is not set to selected" for adding and removing
        // one repository; the fake answers the same for replacing the list (not documented).
        if (s.visibility !== "selected") throw new HttpError(409, "Visibility must be set to `selected`");
        if (rest.length === 0 && method === "PUT") {
            if (body.selected_repository_ids === undefined) throw new HttpError(422, "Invalid request.\n\n\"selected_repository_ids\" wasn't supplied.");
            s.selectedRepositoryIds = idsFrom(body.selected_repository_ids);
            return { status: 204 };
        }
        if (rest.length === 1 && (method === "PUT" || method === "DELETE")) {
            const id = Number(rest[0]);
            if (!repoById(id)) throw new HttpError(404);
            const ids = new Set(s.selectedRepositoryIds ?? []);
            if (method === "PUT") ids.add(id);
            else ids.delete(id);
            s.selectedRepositoryIds = [...ids];
            return { status: 204 };
        }
        throw new HttpError(404);
    }

    function variableEndpoints(scope: string, rest: string[], method: string, body: Record<string, unknown>, org: boolean): Reply {
        const b = bucket(variables, scope);
        if (rest.length === 0) {
            if (method === "GET") {
                const list = [...b.values()].map((v) => variableJson(v, scope));
                return { status: 200, body: { total_count: list.length, variables: list } };
            }
            if (method === "POST") {
                if (typeof body.name !== "string" || typeof body.value !== "string") {
                    throw new HttpError(422, "Invalid request.\n\n\"name\" and \"value\" are required.");
                }
                if (b.has(uc(body.name))) throw new HttpError(409, "Already exists - Variable already exists.");
                const t = stamp(now());
                const v: StoredVariable = { name: uc(body.name), value: body.value, createdAt: t, updatedAt: t };
                if (org) setOrgVisibility(v, body, true);
                b.set(v.name, v);
                return { status: 201, body: {} };
            }
        }
        const name = rest[0];
        const v = b.get(uc(name ?? ""));
        if (!v) throw new HttpError(404);
        if (rest.length === 1) {
            if (method === "GET") return { status: 200, body: variableJson(v, scope) };
            if (method === "PATCH") {
                if (typeof body.value === "string") v.value = body.value;
                if (typeof body.name === "string" && uc(body.name) !== v.name) {
                    b.delete(v.name);
                    v.name = uc(body.name);
                    b.set(v.name, v);
                }
                if (org) setOrgVisibility(v, body, false);
                v.updatedAt = stamp(now());
                return { status: 204 };
            }
            if (method === "DELETE") {
                b.delete(v.name);
                return { status: 204 };
            }
        }
        if (org && rest[1] === "repositories") return selection(v, rest.slice(2), method, body);
        throw new HttpError(404);
    }

    function setOrgVisibility(v: StoredVariable, body: Record<string, unknown>, create: boolean) {
        const visibility = body.visibility;
        if (visibility === undefined && !create) {
            // PATCH without visibility keeps it and, unless ids are sent, the selection.
            if (body.selected_repository_ids !== undefined && v.visibility === "selected") v.selectedRepositoryIds = idsFrom(body.selected_repository_ids);
            return;
        }
        if (visibility !== "all" && visibility !== "private" && visibility !== "selected") {
            throw new HttpError(422, "Invalid request.\n\n\"visibility\" is not a member of [all, private, selected].");
        }
        const keep = !create && v.visibility === "selected" && visibility === "selected" && body.selected_repository_ids === undefined;
        v.visibility = visibility;
        v.selectedRepositoryIds = visibility === "selected" ? (keep ? v.selectedRepositoryIds : idsFrom(body.selected_repository_ids)) : undefined;
    }

    function route(method: string, segs: string[], body: Record<string, unknown>): Reply {
        const [a, b, c, d, ...rest] = segs;
        if (a === "user" && segs.length === 1 && method === "GET") {
            return { status: 200, body: { login, id: userId, node_id: "U_fake", type: "User", site_admin: false } };
        }
        if (a === "orgs" && b) {
            const o = needOrg(b);
            if (segs.length === 2 && method === "GET") {
                return { status: 200, body: { login: o.login, id: o.id, node_id: `O_${o.id}`, type: "Organization", url: `${url}api/v3/orgs/${o.login}` } };
            }
            if (c === "actions" && d === "secrets") return secretEndpoints(`org:${o.login}`, rest, method, body, true);
            if (c === "actions" && d === "variables") return variableEndpoints(`org:${o.login}`, rest, method, body, true);
            throw new HttpError(404);
        }
        if (a === "repos" && b && c) {
            const r = needRepo(b, c);
            const scope = fullName(r);
            if (segs.length === 3 && method === "GET") return { status: 200, body: repoJson(r) };
            const [e, ...more] = rest;
            if (d === "actions" && e === "secrets") return secretEndpoints(`repo:${scope}`, more, method, body, false);
            if (d === "actions" && e === "variables") return variableEndpoints(`repo:${scope}`, more, method, body, false);
            if (d === "dependabot" && e === "secrets") return secretEndpoints(`dependabot:${scope}`, more, method, body, false);
            if (d === "environments" && e) {
                needEnv(r, e);
                const [kind, ...tail] = more;
                if (kind === "secrets") return secretEndpoints(`env:${scope}:${lc(e)}`, tail, method, body, false);
                if (kind === "variables") return variableEndpoints(`env:${scope}:${lc(e)}`, tail, method, body, false);
            }
            throw new HttpError(404);
        }
        if (a === "repositories" && b) {
            const r = repoById(Number(b));
            if (!r || !/^\d+$/.test(b)) throw new HttpError(404);
            if (segs.length === 2 && method === "GET") return { status: 200, body: repoJson(r) };
            if (c === "environments" && d) {
                needEnv(r, d);
                const [kind, ...tail] = rest;
                if (kind === "secrets") return secretEndpoints(`env:${fullName(r)}:${lc(d)}`, tail, method, body, false);
                if (kind === "variables") return variableEndpoints(`env:${fullName(r)}:${lc(d)}`, tail, method, body, false);
            }
        }
        throw new HttpError(404);
    }

    function matchRule(method: string, path: string) {
        const i = rules.findIndex(
            (r) =>
                r.left > 0 &&
                (r.method === undefined || uc(r.method) === method) &&
                (typeof r.path === "string" ? lc(r.path) === lc(path) : r.path.test(path)),
        );
        if (i < 0) return undefined;
        const rule = rules[i];
        rule.left--;
        if (rule.left <= 0) rules.splice(i, 1);
        return rule;
    }

    function send(res: http.ServerResponse, status: number, body: unknown) {
        if (status === 204 || body === undefined) {
            res.writeHead(status).end();
            return;
        }
        const text = JSON.stringify(body);
        res.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-github-media-type": "github.v3; format=json" }).end(text);
    }
    const errorBody = (status: number, message: string) => ({
        message,
        documentation_url: "https://docs.github.com/enterprise-server@3.17/rest",
        status: String(status),
    });

    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            void (async () => {
                const method = (req.method ?? "GET").toUpperCase();
                const raw = (req.url ?? "/").split("?")[0];
                const record = (status: number, injected?: boolean) => requests.push({ method, path: apiPath, status, ...(injected ? { injected } : {}) });
                let apiPath = raw;
                if (!raw.startsWith("/api/v3/") && raw !== "/api/v3") {
                    apiPath = raw;
                    record(404);
                    send(res, 404, errorBody(404, "Not Found"));
                    return;
                }
                apiPath = raw.slice("/api/v3".length) || "/";
                const rule = matchRule(method, apiPath);
                if (rule?.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
                if (rule?.reset) {
                    record(0, true);
                    req.socket.destroy();
                    return;
                }
                if (rule?.status) {
                    record(rule.status, true);
                    send(res, rule.status, errorBody(rule.status, rule.message ?? reasons[rule.status] ?? `HTTP ${rule.status}`));
                    return;
                }
                const auth = req.headers.authorization ?? "";
                if (token !== null && auth !== `Bearer ${token}` && auth !== `token ${token}`) {
                    record(401);
                    send(res, 401, errorBody(401, "Bad credentials"));
                    return;
                }
                let body: Record<string, unknown> = {};
                if (chunks.length) {
                    try {
                        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
                    } catch {
                        record(400);
                        send(res, 400, errorBody(400, "Problems parsing JSON"));
                        return;
                    }
                }
                const segs = apiPath.split("/").filter(Boolean).map(decodeURIComponent);
                try {
                    const reply = route(method, segs, body);
                    record(reply.status);
                    send(res, reply.status, reply.body);
                } catch (e) {
                    const status = e instanceof HttpError ? e.status : 500;
                    record(status);
                    send(res, status, errorBody(status, e instanceof Error ? e.message : String(e)));
                }
            })();
        });
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/`;

    /** `repo:o/r` and `dependabot:o/r` and `env:o/r:e` and `org:o`, normalised to the stored key. */
    function canonical(scope: Scope): string {
        const [kind, ...rest] = scope.split(":");
        if (kind === "env") return `env:${rest[0]}:${lc(rest.slice(1).join(":"))}`;
        return `${kind}:${rest.join(":")}`;
    }
    const findSecret = (scope: Scope, name: string) => secrets.get(lc(canonical(scope)))?.get(uc(name));
    const findVariable = (scope: Scope, name: string) => variables.get(lc(canonical(scope)))?.get(uc(name));

    return {
        url,
        apiUrl: `${url}api/v3/`,
        token,
        requests,
        stop: () =>
            new Promise<void>((resolve, reject) => {
                server.closeAllConnections();
                server.close((e) => (e ? reject(e) : resolve()));
            }),
        secretValue: (scope, name) => findSecret(scope, name)?.value,
        secret: (scope, name) => {
            const s = findSecret(scope, name);
            return s && { ...s, ...(s.selectedRepositoryIds ? { selectedRepositoryIds: [...s.selectedRepositoryIds] } : {}) };
        },
        variableValue: (scope, name) => findVariable(scope, name)?.value,
        variable: (scope, name) => {
            const v = findVariable(scope, name);
            return v && { ...v, ...(v.selectedRepositoryIds ? { selectedRepositoryIds: [...v.selectedRepositoryIds] } : {}) };
        },
        selectedRepositories(kind, org, name) {
            const s = kind === "secret" ? findSecret(`org:${org}`, name) : findVariable(`org:${org}`, name);
            if (!s) return undefined;
            return (s.selectedRepositoryIds ?? []).map((id) => fullName(repoById(id)!)).sort();
        },
        inventory() {
            const out: string[] = [];
            for (const [scope, b] of secrets) for (const n of b.keys()) out.push(`${scope} secret ${n}`);
            for (const [scope, b] of variables) for (const n of b.keys()) out.push(`${scope} variable ${n}`);
            return out.sort();
        },
        repositoryId: (name) => repos.get(lc(name))?.id,
        addRepository,
        seedSecret(scope, name, value, org) {
            const t = stamp(now());
            const s: StoredSecret = { name: uc(name), value, createdAt: t, updatedAt: t, writes: 0 };
            if (org) {
                s.visibility = org.visibility;
                if (org.visibility === "selected") s.selectedRepositoryIds = [...(org.selectedRepositoryIds ?? [])];
            }
            bucket(secrets, canonical(scope)).set(s.name, s);
        },
        fail(rule) {
            const r = { ...rule, left: rule.times ?? 1 };
            rules.push(r);
            return () => {
                const i = rules.indexOf(r);
                if (i >= 0) rules.splice(i, 1);
            };
        },
        clearFailures() {
            rules.length = 0;
        },
    };
}
