import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An in-memory GitLab (REST API v4, CI/CD variables only) on 127.0.0.1, for contract tests of
 * the dynamic provider. It implements the documented project and group variable endpoints, their
 * fields, `filter[environment_scope]`, masking and hidden-on-create rules, and GitLab's error
 * answers. Every request is recorded.
 */

/** A variable as GitLab stores it. */
export interface StoredVariable {
    key: string;
    value: string;
    variable_type: "env_var" | "file";
    protected: boolean;
    masked: boolean;
    hidden: boolean;
    raw: boolean;
    environment_scope: string;
    description: string | null;
}

/** What a token may do: GitLab roles as far as variables care, or a token lacking the `api` scope. */
export type TokenGrant = "owner" | "maintainer" | "reporter" | "read_api";

export interface FakeGitlabOptions {
    /** Token → grant on every project and group. */
    tokens: Record<string, TokenGrant>;
    /** Projects by numeric id → full path. */
    projects?: Record<number, string>;
    /** Groups by numeric id → full path. */
    groups?: Record<number, string>;
    /** GitLab 17.4+ hides variables created with `masked_and_hidden`. Default true. */
    hiddenSupported?: boolean;
    /** Group variables may have an environment scope (Premium). Default true; false stores `*`. */
    groupScopes?: boolean;
    /** Masking as GitLab before 16: only the Base64 alphabet plus `@ : . ~`. Default false. */
    legacyMasking?: boolean;
    /** Address to listen on. Default `127.0.0.1`; another loopback address stands for another host. */
    host?: string;
}

export interface RecordedRequest {
    method: string;
    /** Raw path, still URL-encoded (`/api/v4/projects/acme%2Fapi/variables`). */
    path: string;
    query: Record<string, string>;
    headers: { "private-token"?: string; "content-type"?: string };
    body?: Record<string, unknown>;
}

/**
 * A canned answer for the next request that matches: what a proxy, a load balancer or a
 * misconfigured GitLab in front of the API may send (redirects, HTML login pages, cut-off JSON).
 */
export interface Fault {
    method?: string;
    status: number;
    headers?: Record<string, string>;
    /** Sent as JSON. */
    body?: unknown;
    /** Sent as it is instead of `body` (HTML, truncated JSON); give its `Content-Type` in `headers`. */
    text?: string;
    /** The HTTP reason phrase, instead of the standard one. */
    statusText?: string;
}

export interface FakeGitlab {
    /** API root, e.g. `http://127.0.0.1:41234/api/v4/`. */
    baseUrl: string;
    requests: RecordedRequest[];
    /** Variables by owner, keyed `project:<id>` or `group:<id>`. */
    variables: Map<string, StoredVariable[]>;
    /** Answer the next matching requests with these faults, in order, before any other handling. */
    inject(...faults: Fault[]): void;
    /** Drop faults no request has used (a failed test must not leave them to the next). */
    clearFaults(): void;
    /** Put a variable in place as if made in GitLab's UI. */
    seed(owner: `project:${number}` | `group:${number}`, variable: Partial<StoredVariable> & { key: string; value: string }): void;
    close(): Promise<void>;
}

const maskable = (value: string, legacy: boolean) => (legacy ? /^[A-Za-z0-9+/=@:.~]{8,}$/ : /^\S{8,}$/).test(value);

export async function startFakeGitlab(options: FakeGitlabOptions): Promise<FakeGitlab> {
    const requests: RecordedRequest[] = [];
    const variables = new Map<string, StoredVariable[]>();
    const faults: Fault[] = [];
    const projects = options.projects ?? {};
    const groups = options.groups ?? {};

    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", "http://127.0.0.1");
            const text = Buffer.concat(chunks).toString("utf8");
            const body = text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>);
            const recorded: RecordedRequest = {
                method: req.method ?? "",
                path: url.pathname,
                query: Object.fromEntries(url.searchParams),
                headers: {},
                body,
            };
            if (req.headers["private-token"] !== undefined) recorded.headers["private-token"] = String(req.headers["private-token"]);
            if (req.headers["content-type"] !== undefined) recorded.headers["content-type"] = String(req.headers["content-type"]);
            requests.push(recorded);
            const answer = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
                res.writeHead(status, { ...(payload === undefined ? {} : { "Content-Type": "application/json" }), ...headers });
                res.end(payload === undefined ? undefined : JSON.stringify(payload));
            };

            const faultAt = faults.findIndex((f) => f.method === undefined || f.method === recorded.method);
            if (faultAt >= 0) {
                const [fault] = faults.splice(faultAt, 1);
                if (fault.text === undefined && fault.statusText === undefined) return answer(fault.status, fault.body, fault.headers);
                const payload = fault.text ?? (fault.body === undefined ? undefined : JSON.stringify(fault.body));
                const type: Record<string, string> = fault.text === undefined && fault.body !== undefined ? { "Content-Type": "application/json" } : {};
                if (fault.statusText === undefined) res.writeHead(fault.status, { ...type, ...fault.headers });
                else res.writeHead(fault.status, fault.statusText, { ...type, ...fault.headers });
                return res.end(payload);
            }
            handle(recorded, answer);
        });
    });

    function handle(r: RecordedRequest, answer: (status: number, payload?: unknown) => void) {
        const parts = r.path.split("/").slice(1).map(decodeURIComponent);
        // ["api", "v4", "projects" | "groups", id, "variables", key?]
        if (parts[0] !== "api" || parts[1] !== "v4" || (parts[2] !== "projects" && parts[2] !== "groups") || parts[4] !== "variables" || parts.length > 6) {
            return answer(404, { error: "404 Not Found" });
        }
        const grant = options.tokens[r.headers["private-token"] ?? ""];
        if (!grant) return answer(401, { message: "401 Unauthorized" });
        if (grant === "read_api") {
            return answer(403, { error: "insufficient_scope", error_description: "The request requires higher privileges than provided by the access token.", scope: "api" });
        }
        const kind = parts[2] === "projects" ? "project" : "group";
        const table = kind === "project" ? projects : groups;
        const ref = parts[3];
        const id = /^\d+$/.test(ref) ? Number(ref) : Number(Object.entries(table).find(([, path]) => path.toLowerCase() === ref.toLowerCase())?.[0]);
        if (!table[id]) return answer(404, { message: `404 ${kind === "project" ? "Project" : "Group"} Not Found` });
        // Projects: Maintainer or Owner; groups: Owner.
        if (grant === "reporter" || (kind === "group" && grant !== "owner")) return answer(403, { message: "403 Forbidden" });

        const ownerKey = `${kind}:${id}`;
        const list = variables.get(ownerKey) ?? [];
        variables.set(ownerKey, list);
        const show = (v: StoredVariable) => ({ ...v, value: v.hidden ? null : v.value });
        const b = r.body ?? {};

        if (parts.length === 5) {
            if (r.method === "GET") return answer(200, list.map(show));
            if (r.method !== "POST") return answer(405, { message: "405 Method Not Allowed" });
            const key = String(b.key ?? "");
            if (!/^[A-Za-z0-9_]{1,255}$/.test(key)) return answer(400, { message: { key: ["can contain only letters, digits and '_'."] } });
            if (typeof b.value !== "string") return answer(400, { error: "value is missing" });
            const scope = typeof b.environment_scope === "string" && (kind === "project" || options.groupScopes !== false) ? b.environment_scope : "*";
            if (list.some((v) => v.key === key && v.environment_scope === scope)) return answer(400, { message: { key: [`(${key}) has already been taken`] } });
            const hidden = options.hiddenSupported !== false && b.masked_and_hidden === true;
            const masked = hidden || b.masked === true;
            if (masked && !maskable(b.value, options.legacyMasking === true)) return answer(400, { message: { value: ["is invalid"] } });
            const created: StoredVariable = {
                key,
                value: b.value,
                variable_type: b.variable_type === "file" ? "file" : "env_var",
                protected: b.protected === true,
                masked,
                hidden,
                raw: b.raw === true,
                environment_scope: scope,
                description: typeof b.description === "string" ? b.description : null,
            };
            list.push(created);
            const { hidden: _h, ...older } = created;
            return answer(201, options.hiddenSupported === false ? older : show(created));
        }

        const key = parts[5];
        const scope = r.query["filter[environment_scope]"];
        const matches = list.filter((v) => v.key === key && (scope === undefined || v.environment_scope === scope));
        if (matches.length > 1) return answer(409, { message: "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'" });
        const found = matches[0];
        if (!found) return answer(404, { message: "404 Variable Not Found" });
        if (r.method === "GET") return answer(200, show(found));
        if (r.method === "DELETE") {
            list.splice(list.indexOf(found), 1);
            return answer(204);
        }
        if (r.method !== "PUT") return answer(405, { message: "405 Method Not Allowed" });
        const next = { ...found };
        if (typeof b.value === "string") next.value = b.value;
        if (typeof b.protected === "boolean") next.protected = b.protected;
        if (typeof b.masked === "boolean") next.masked = b.masked;
        if (typeof b.raw === "boolean") next.raw = b.raw;
        if (typeof b.description === "string") next.description = b.description;
        if (typeof b.environment_scope === "string") next.environment_scope = b.environment_scope;
        if (found.hidden && !next.masked) return answer(400, { message: { masked: ["cannot be disabled for hidden variables"] } });
        if (next.masked && !maskable(next.value, options.legacyMasking === true)) return answer(400, { message: { value: ["is invalid"] } });
        Object.assign(found, next);
        return answer(200, show(found));
    }

    const host = options.host ?? "127.0.0.1";
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const { port } = server.address() as AddressInfo;
    return {
        baseUrl: `http://${host}:${port}/api/v4/`,
        requests,
        variables,
        inject: (...f) => faults.push(...f),
        clearFaults: () => void faults.splice(0),
        seed(owner, v) {
            const list = variables.get(owner) ?? [];
            list.push({ variable_type: "env_var", protected: false, masked: false, hidden: false, raw: false, environment_scope: "*", description: null, ...v });
            variables.set(owner, list);
        },
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}
