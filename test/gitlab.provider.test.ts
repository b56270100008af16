import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { gitlabVariableProvider, type GitlabVariableInputs, type GitlabVariableProvider } from "../providers/gitlab/variable";
import { startFakeGitlab, type FakeGitlab } from "./support/gitlab-server";

// Contract tests of the GitLab variable provider against a local GitLab (test/support/gitlab-server.ts).

const TOKEN = "glpat-maintainer-0123456789";
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

let gitlab: FakeGitlab;
let waits: number[];
let provider: GitlabVariableProvider;
const savedEnv = { token: process.env.GITLAB_TOKEN, baseUrl: process.env.GITLAB_BASE_URL };

function stackConfig(values: Record<string, string>): pulumi.dynamic.Config {
    return {
        get: (key) => values[key],
        require: (key) => {
            if (values[key] === undefined) throw new Error(`Missing required configuration key: ${key}`);
            return values[key];
        },
    };
}

async function configuredProvider(values: Record<string, string> = { "gitlab:token": TOKEN, "gitlab:baseUrl": gitlab.baseUrl }): Promise<GitlabVariableProvider> {
    const p = gitlabVariableProvider({ sleep: async (ms) => void waits.push(ms) });
    await p.configure!({ config: stackConfig(values) });
    return p;
}

function variable(overrides: Partial<GitlabVariableInputs> = {}): GitlabVariableInputs {
    return {
        kind: "gitlab-variable",
        scope: "project",
        owner: "acme/api",
        key: "AWS_SECRET_ACCESS_KEY",
        value: SECRET,
        environmentScope: "*",
        protected: true,
        masked: true,
        hidden: false,
        raw: true,
        description: "rotated by ci-key-rotation",
        target: "`credentials[0].targets[0]` (gitlab project acme/api)",
        ...overrides,
    };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
    try {
        await promise;
    } catch (e) {
        return e as Error;
    }
    assert.fail("expected the call to fail");
}

const htmlEscaped = (s: string) => s.replace(/[^A-Za-z0-9]/g, (c) => `&#x${c.charCodeAt(0).toString(16)};`);

/**
 * The error a user sees must never carry the token or the value: not as they are, not
 * URL-encoded or HTML-escaped, and no run of 10 characters of either.
 */
function assertClean(e: Error) {
    for (const [what, secret] of [["token", TOKEN], ["value", SECRET]]) {
        for (const form of [secret, encodeURIComponent(secret), htmlEscaped(secret)]) {
            assert.ok(!e.message.includes(form), `the ${what} must not appear in the error: ${e.message}`);
        }
        for (let i = 0; i + 10 <= secret.length; i++) {
            assert.ok(!e.message.includes(secret.slice(i, i + 10)), `no part of the ${what} may appear in the error: ${e.message}`);
        }
    }
}

before(async () => {
    delete process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_BASE_URL;
    gitlab = await startFakeGitlab({
        tokens: { [TOKEN]: "maintainer", "glpat-owner": "owner", "glpat-reporter": "reporter", "glpat-read-api": "read_api" },
        projects: { 42: "acme/api" },
        groups: { 7: "acme/platform" },
    });
});

after(async () => {
    await gitlab.close();
    if (savedEnv.token === undefined) delete process.env.GITLAB_TOKEN;
    else process.env.GITLAB_TOKEN = savedEnv.token;
    if (savedEnv.baseUrl === undefined) delete process.env.GITLAB_BASE_URL;
    else process.env.GITLAB_BASE_URL = savedEnv.baseUrl;
});

beforeEach(async () => {
    gitlab.clearFaults();
    gitlab.requests.length = 0;
    gitlab.variables.clear();
    waits = [];
    provider = await configuredProvider();
});

afterEach(() => {
    delete process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_BASE_URL;
});

describe("create, update, delete", () => {
    it("creates a project variable with the documented fields and the token in PRIVATE-TOKEN", async () => {
        const result = await provider.create(variable());

        assert.deepEqual(gitlab.requests, [
            {
                method: "POST",
                path: "/api/v4/projects/acme%2Fapi/variables",
                query: {},
                headers: { "private-token": TOKEN, "content-type": "application/json" },
                body: {
                    key: "AWS_SECRET_ACCESS_KEY",
                    value: SECRET,
                    variable_type: "env_var",
                    protected: true,
                    masked: true,
                    raw: true,
                    environment_scope: "*",
                    description: "rotated by ci-key-rotation",
                },
            },
        ]);
        assert.equal(result.id, "project:acme/api:AWS_SECRET_ACCESS_KEY:*");
        assert.deepEqual(result.outs, variable());
        assert.deepEqual(gitlab.variables.get("project:42"), [
            {
                key: "AWS_SECRET_ACCESS_KEY",
                value: SECRET,
                variable_type: "env_var",
                protected: true,
                masked: true,
                hidden: false,
                raw: true,
                environment_scope: "*",
                description: "rotated by ci-key-rotation",
            },
        ]);
        assert.ok(!JSON.stringify(result).includes(TOKEN), "the token must not be in the outputs");
    });

    it("addresses numeric project ids and group paths as GitLab documents", async () => {
        const owner = await configuredProvider({ "gitlab:token": "glpat-owner", "gitlab:baseUrl": gitlab.baseUrl });
        await owner.create(variable({ owner: "42", key: "AWS_ACCESS_KEY_ID", value: "AKIAIOSFODNN7EXAMPLE" }));
        await owner.create(variable({ scope: "group", owner: "acme/platform" }));
        await owner.create(variable({ scope: "group", owner: "7", key: "AWS_ACCESS_KEY_ID", value: "AKIAIOSFODNN7EXAMPLE" }));

        assert.deepEqual(
            gitlab.requests.map((r) => `${r.method} ${r.path}`),
            ["POST /api/v4/projects/42/variables", "POST /api/v4/groups/acme%2Fplatform/variables", "POST /api/v4/groups/7/variables"],
        );
        assert.deepEqual(gitlab.variables.get("group:7")?.map((v) => v.key), ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"]);
    });

    it("updates the value in place, naming the environment scope, without create-only fields", async () => {
        const created = await provider.create(variable());
        gitlab.requests.length = 0;
        const rotated = "NEWxSECRETxKEYxxxxxxxxxxxxxxxxxxxxxxxxxx";

        const result = await provider.update!(created.id, created.outs!, variable({ value: rotated }));

        assert.deepEqual(gitlab.requests, [
            {
                method: "PUT",
                path: "/api/v4/projects/acme%2Fapi/variables/AWS_SECRET_ACCESS_KEY",
                query: { "filter[environment_scope]": "*" },
                headers: { "private-token": TOKEN, "content-type": "application/json" },
                body: {
                    value: rotated,
                    variable_type: "env_var",
                    protected: true,
                    masked: true,
                    raw: true,
                    environment_scope: "*",
                    description: "rotated by ci-key-rotation",
                },
            },
        ]);
        assert.equal(result.outs?.value, rotated);
        assert.equal(gitlab.variables.get("project:42")?.[0].value, rotated);
    });

    it("keeps two environment scopes of one key apart on every call", async () => {
        const all = await provider.create(variable({ value: "ALLxSCOPESxxxxxxxxxx" }));
        const prod = await provider.create(variable({ environmentScope: "production", value: "PRODUCTIONxxxxxxxxxx" }));
        assert.equal(prod.id, "project:acme/api:AWS_SECRET_ACCESS_KEY:production");
        gitlab.requests.length = 0;

        await provider.update!(prod.id, prod.outs!, variable({ environmentScope: "production", value: "PRODUCTIONxROTATEDxx" }));
        await provider.read!(all.id, all.outs);
        await provider.delete!(prod.id, prod.outs!);

        assert.deepEqual(
            gitlab.requests.map((r) => [r.method, r.path, r.query]),
            [
                ["PUT", "/api/v4/projects/acme%2Fapi/variables/AWS_SECRET_ACCESS_KEY", { "filter[environment_scope]": "production" }],
                ["GET", "/api/v4/projects/acme%2Fapi/variables/AWS_SECRET_ACCESS_KEY", { "filter[environment_scope]": "*" }],
                ["DELETE", "/api/v4/projects/acme%2Fapi/variables/AWS_SECRET_ACCESS_KEY", { "filter[environment_scope]": "production" }],
            ],
        );
        assert.deepEqual(
            gitlab.variables.get("project:42")?.map((v) => [v.environment_scope, v.value]),
            [["*", "ALLxSCOPESxxxxxxxxxx"]],
        );
    });

    it("re-creates on update a variable that was deleted outside Pulumi", async () => {
        const created = await provider.create(variable());
        gitlab.variables.set("project:42", []);
        gitlab.requests.length = 0;

        await provider.update!(created.id, created.outs!, variable({ value: "NEWxSECRETxKEYxxxxxxxx" }));

        assert.deepEqual(gitlab.requests.map((r) => r.method), ["PUT", "POST"]);
        assert.equal(gitlab.variables.get("project:42")?.[0].value, "NEWxSECRETxKEYxxxxxxxx");
    });

    it("deletes the variable, and treats one already gone as deleted", async () => {
        const created = await provider.create(variable());
        await provider.delete!(created.id, created.outs!);
        assert.deepEqual(gitlab.variables.get("project:42"), []);

        await provider.delete!(created.id, created.outs!);
        assert.deepEqual(gitlab.requests.slice(-1).map((r) => [r.method, r.query]), [["DELETE", { "filter[environment_scope]": "*" }]]);
    });

    it("reads the live variable for refresh, and an empty id when it is gone", async () => {
        const created = await provider.create(variable());
        gitlab.variables.get("project:42")![0].protected = false;

        const live = await provider.read!(created.id, created.outs);
        assert.deepEqual(live, { id: created.id, props: variable({ protected: false }) });

        gitlab.variables.set("project:42", []);
        assert.equal((await provider.read!(created.id, created.outs)).id, "");
    });

    it("adopts an existing variable of the same key and scope on create", async () => {
        gitlab.seed("project:42", { key: "AWS_SECRET_ACCESS_KEY", value: "OLDxSECRETxxxxxxxxxx", description: "set by hand" });

        const result = await provider.create(variable());

        assert.deepEqual(
            gitlab.requests.map((r) => [r.method, r.query]),
            [
                ["POST", {}],
                ["GET", { "filter[environment_scope]": "*" }],
                ["PUT", { "filter[environment_scope]": "*" }],
            ],
        );
        assert.equal(result.id, "project:acme/api:AWS_SECRET_ACCESS_KEY:*");
        assert.deepEqual(gitlab.variables.get("project:42")?.map((v) => [v.value, v.protected, v.masked, v.raw, v.description]), [
            [SECRET, true, true, true, "rotated by ci-key-rotation"],
        ]);
    });

    it("does not adopt a variable whose hidden setting differs, and says what to do", async () => {
        gitlab.seed("project:42", { key: "AWS_SECRET_ACCESS_KEY", value: "OLDxSECRETxxxxxxxxxx", masked: true, hidden: true });

        const e = await rejection(provider.create(variable()));

        assert.match(e.message, /`credentials\[0\]\.targets\[0\]` \(gitlab project acme\/api\), variable `AWS_SECRET_ACCESS_KEY`/);
        assert.match(e.message, /already exists in GitLab as a hidden variable.*only sets hidden when a variable is created.*Set `hidden: true`/);
        assertClean(e);
        assert.equal(gitlab.variables.get("project:42")?.[0].value, "OLDxSECRETxxxxxxxxxx");
    });
});

describe("hidden variables", () => {
    it("are created with masked_and_hidden, which is never sent again; GitLab no longer shows the value", async () => {
        const created = await provider.create(variable({ hidden: true }));
        assert.equal(gitlab.requests[0].body?.masked_and_hidden, true);
        assert.equal(created.outs?.hidden, true);
        assert.equal(created.outs?.value, SECRET);

        const live = await provider.read!(created.id, created.outs);
        assert.equal(live.props?.value, SECRET, "a hidden value is kept from state, since GitLab returns null");

        await provider.update!(created.id, created.outs!, variable({ hidden: true, value: "NEWxSECRETxKEYxxxxxxxx" }));
        const put = gitlab.requests.at(-1)!;
        assert.equal(put.method, "PUT");
        assert.equal("masked_and_hidden" in (put.body ?? {}), false);
        assert.equal(gitlab.variables.get("project:42")?.[0].value, "NEWxSECRETxKEYxxxxxxxx");
    });

    it("on a GitLab without hidden variables, the created variable is removed and the error says to set hidden: false", async () => {
        const old = await startFakeGitlab({ tokens: { [TOKEN]: "maintainer" }, projects: { 42: "acme/api" }, hiddenSupported: false });
        try {
            const p = await configuredProvider({ "gitlab:token": TOKEN, "gitlab:baseUrl": old.baseUrl });
            const e = await rejection(p.create(variable({ hidden: true })));
            assert.match(e.message, /did not hide the variable \(hidden variables need GitLab 17\.4 or later\)\. Set `hidden: false`/);
            assert.deepEqual(old.variables.get("project:42"), []);
            assertClean(e);
        } finally {
            await old.close();
        }
    });
});

describe("environment scopes GitLab does not support", () => {
    it("a group scope dropped by GitLab Free: the created variable is removed and the error says what to do", async () => {
        const free = await startFakeGitlab({ tokens: { "glpat-owner": "owner" }, groups: { 7: "acme/platform" }, groupScopes: false });
        try {
            const p = await configuredProvider({ "gitlab:token": "glpat-owner", "gitlab:baseUrl": free.baseUrl });
            const e = await rejection(p.create(variable({ scope: "group", owner: "7", environmentScope: "production" })));
            assert.match(e.message, /stored the variable with environment scope `\*` instead \(environment scopes of group variables need GitLab Premium\)\. Set `environmentScope: "\*"` on the target/);
            assert.deepEqual(free.variables.get("group:7"), []);
            assert.deepEqual(free.requests.at(-1)?.query, { "filter[environment_scope]": "*" });
        } finally {
            await free.close();
        }
    });
});

describe("diff", () => {
    const olds = variable();
    const cases: [string, Partial<GitlabVariableInputs>, { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }][] = [
        ["nothing changed", {}, { changes: false, replaces: [], deleteBeforeReplace: false }],
        ["a moved target (message only)", { target: "`credentials[1].targets[3]` (gitlab project acme/api)" }, { changes: false, replaces: [], deleteBeforeReplace: false }],
        ["a new value", { value: "NEWxSECRETxKEYxxxxxxxx" }, { changes: true, replaces: [], deleteBeforeReplace: false }],
        ["flags GitLab updates in place", { protected: false, masked: false, raw: false, description: "x" }, { changes: true, replaces: [], deleteBeforeReplace: false }],
        ["hidden, which GitLab sets only on create", { hidden: true }, { changes: true, replaces: ["hidden"], deleteBeforeReplace: true }],
        ["another environment scope", { environmentScope: "production" }, { changes: true, replaces: ["environmentScope"], deleteBeforeReplace: true }],
        ["another key and owner", { key: "AWS_SECRET", owner: "42" }, { changes: true, replaces: ["owner", "key"], deleteBeforeReplace: true }],
        ["a group instead of a project", { scope: "group" }, { changes: true, replaces: ["scope"], deleteBeforeReplace: true }],
    ];
    for (const [what, change, expected] of cases) {
        it(`${what}`, async () => {
            assert.deepEqual(await provider.diff!("id", olds, variable(change)), expected);
        });
    }
});

describe("check", () => {
    it("accepts a valid variable, and a value still unknown during preview", async () => {
        assert.deepEqual((await provider.check!(variable(), variable())).failures, []);
        assert.deepEqual((await provider.check!(variable(), variable({ value: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" }))).failures, []);
        assert.equal(gitlab.requests.length, 0, "check calls no API");
    });

    it("rejects bad keys, hidden without masked, and values GitLab cannot mask, without repeating the value", async () => {
        const unmaskable = "two words";
        const { failures } = await provider.check!(variable(), variable({ key: "AWS-KEY", hidden: true, masked: false }));
        assert.deepEqual(failures, [
            { property: "key", reason: "must be 1-255 letters, digits and underscores" },
            { property: "masked", reason: "must be true when hidden is true (GitLab hides only masked variables)" },
        ]);
        const masked = await provider.check!(variable(), variable({ value: unmaskable }));
        assert.deepEqual(masked.failures, [
            { property: "value", reason: "cannot be masked by GitLab: masked values must be one line of at least 8 characters without spaces" },
        ]);
        assert.ok(!JSON.stringify(masked.failures).includes(unmaskable));
    });

    it("fails with what to set when there is no token", async () => {
        const p = gitlabVariableProvider();
        await p.configure!({ config: stackConfig({}) });
        const e = await rejection(p.check!(variable(), variable()));
        assert.equal(
            e.message,
            "`credentials[0].targets[0]` (gitlab project acme/api), variable `AWS_SECRET_ACCESS_KEY` (environment scope `*`): no GitLab token. " +
                "Set one with `pulumi config set --secret gitlab:token <token>` or the GITLAB_TOKEN environment variable: " +
                "a personal, group or project access token with the `api` scope and the Maintainer role on the project (Owner on a group).",
        );
    });
});

describe("token and base URL", () => {
    it("prefers gitlab:token from stack config to GITLAB_TOKEN", async () => {
        process.env.GITLAB_TOKEN = "glpat-from-environment";
        await provider.create(variable());
        assert.equal(gitlab.requests[0].headers["private-token"], TOKEN);
    });

    it("falls back to GITLAB_TOKEN and GITLAB_BASE_URL, and adds /api/v4 to a bare instance URL", async () => {
        process.env.GITLAB_TOKEN = TOKEN;
        process.env.GITLAB_BASE_URL = gitlab.baseUrl.replace(/api\/v4\/$/, "");
        const p = await configuredProvider({});
        await p.create(variable());
        assert.deepEqual(gitlab.requests.map((r) => [r.path, r.headers["private-token"]]), [["/api/v4/projects/acme%2Fapi/variables", TOKEN]]);
    });

    it("rejects a base URL that is not http(s)", async () => {
        const p = await configuredProvider({ "gitlab:token": TOKEN, "gitlab:baseUrl": "gitlab.example.com" });
        const e = await rejection(p.create(variable()));
        assert.match(e.message, /`gitlab:baseUrl` \(or GITLAB_BASE_URL\) must be an http\(s\) URL such as https:\/\/gitlab\.example\.com\/api\/v4\//);
    });
});

describe("GitLab errors name the target and say what to do", () => {
    it("401: the token is wrong, expired or revoked", async () => {
        const p = await configuredProvider({ "gitlab:token": "glpat-revoked", "gitlab:baseUrl": gitlab.baseUrl });
        const e = await rejection(p.create(variable()));
        assert.equal(
            e.message,
            "`credentials[0].targets[0]` (gitlab project acme/api), variable `AWS_SECRET_ACCESS_KEY` (environment scope `*`): could not create the CI/CD variable in project `acme/api`: " +
                "GitLab rejected the token (401 Unauthorized). Set `gitlab:token` (pulumi config set --secret gitlab:token <token>) or GITLAB_TOKEN to an access token with the `api` scope that has not expired or been revoked.",
        );
        assert.ok(!e.message.includes("glpat-revoked"));
        assertClean(e);
    });

    it("403: a role too low on the project, or a token without the api scope", async () => {
        const reporter = await configuredProvider({ "gitlab:token": "glpat-reporter", "gitlab:baseUrl": gitlab.baseUrl });
        const e1 = await rejection(reporter.create(variable()));
        assert.match(e1.message, /could not create the CI\/CD variable in project `acme\/api`: the token may not manage CI\/CD variables of project `acme\/api` \(403 Forbidden: 403 Forbidden\)\. It needs the `api` scope and the Maintainer role on the project\.$/);

        const readApi = await configuredProvider({ "gitlab:token": "glpat-read-api", "gitlab:baseUrl": gitlab.baseUrl });
        const e2 = await rejection(readApi.update!("id", variable(), variable()));
        assert.match(e2.message, /could not update .*\(403 Forbidden: The request requires higher privileges than provided by the access token\.\)\. It needs the `api` scope/);
        assertClean(e1);
        assertClean(e2);
    });

    it("403 on a group: group variables need the Owner role", async () => {
        const e = await rejection(provider.create(variable({ scope: "group", owner: "acme/platform" })));
        assert.match(e.message, /group `acme\/platform` \(403 Forbidden: 403 Forbidden\)\. It needs the `api` scope and the Owner role on the group\.$/);
    });

    it("404: the project or group does not exist or is not visible to the token", async () => {
        const e1 = await rejection(provider.create(variable({ owner: "acme/missing" })));
        assert.match(e1.message, /project `acme\/missing` was not found \(404 Not Found: 404 Project Not Found\)\. Check the `project` of the target \(numeric id or full path\), and that the token's user can see it/);
        const e2 = await rejection(provider.delete!("id", variable({ scope: "group", owner: "99" })));
        assert.match(e2.message, /could not delete the CI\/CD variable in group `99`: group `99` was not found \(404 Not Found: 404 Group Not Found\)\. Check the `group` of the target/);
        assertClean(e1);
        assertClean(e2);
    });

    it("400: GitLab's message, and how to fix a value it refuses to mask", async () => {
        const legacy = await startFakeGitlab({ tokens: { [TOKEN]: "maintainer" }, projects: { 42: "acme/api" }, legacyMasking: true });
        try {
            const p = await configuredProvider({ "gitlab:token": TOKEN, "gitlab:baseUrl": legacy.baseUrl });
            const value = "abc!def#ghij";
            const e = await rejection(p.create(variable({ value })));
            assert.match(
                e.message,
                /could not create the CI\/CD variable in project `acme\/api`: GitLab refused the variable \(400 Bad Request: value is invalid\)\. Masked values must be one line of at least 8 characters without spaces \(older GitLab versions: only letters, digits and \+ \/ = @ : \. ~\)\. Set `masked: false`/,
            );
            assert.ok(!e.message.includes(value));
        } finally {
            await legacy.close();
        }
    });

    it("never repeats the value or the token even when GitLab's message does", async () => {
        gitlab.inject({ status: 400, body: { message: { value: [`${SECRET} is invalid for token ${TOKEN}`] } } });
        const e = await rejection(provider.create(variable()));
        assert.match(e.message, /GitLab refused the variable \(400 Bad Request: value \[redacted\] is invalid for token \[redacted\]\)/);
        assertClean(e);
    });
});

describe("redirects: the token and the value never leave for another address", () => {
    for (const status of [301, 302, 303, 307, 308]) {
        it(`${status}: fails naming the host it points to, and sends nothing there`, async () => {
            const other = await startFakeGitlab({ host: "127.0.0.2", tokens: { [TOKEN]: "maintainer" }, projects: { 42: "acme/api" } });
            try {
                gitlab.inject({ status, headers: { Location: `${other.baseUrl}projects/acme%2Fapi/variables?private_token=${TOKEN}` } });
                const e = await rejection(provider.create(variable()));
                assert.deepEqual(other.requests, [], "nothing may reach the other host");
                assert.equal(gitlab.requests.length, 1);
                assert.match(e.message, new RegExp(`GitLab at http://127\\.0\\.0\\.1:\\d+/api/v4/ answered ${status} with a redirect to ${other.baseUrl.replace(/^http:\/\/|\/api\/v4\/$/g, "").replace(/\./g, "\\.")}`));
                assert.match(e.message, /the token is never sent after a redirect: set `gitlab:baseUrl` \(or GITLAB_BASE_URL\) to the address GitLab's API answers at/);
                assertClean(e);
            } finally {
                await other.close();
            }
        });
    }

    it("refuses an http:// base URL that is not loopback, before sending anything", async () => {
        const p = await configuredProvider({ "gitlab:token": TOKEN, "gitlab:baseUrl": "http://gitlab.example.com/api/v4/" });
        const e = await rejection(p.create(variable()));
        assert.match(e.message, /`gitlab:baseUrl` \(or GITLAB_BASE_URL\) must be an https:\/\/ URL: over http:\/\/ the token and the value would cross the network in clear text \(http:\/\/ is only accepted for localhost\)/);
        assert.deepEqual(gitlab.requests, []);
    });

    it("refuses a user name or password in the base URL, without printing it", async () => {
        const url = gitlab.baseUrl.replace("http://", "http://admin:hunter2-password@");
        const p = await configuredProvider({ "gitlab:token": TOKEN, "gitlab:baseUrl": url });
        gitlab.inject(...Array.from({ length: 5 }, () => ({ status: 500 })));
        const e = await rejection(p.create(variable()));
        assert.ok(!e.message.includes("hunter2"), e.message);
        assert.match(e.message, /`gitlab:baseUrl` \(or GITLAB_BASE_URL\) must not contain a user name or password: give the token in `gitlab:token`/);
        assert.deepEqual(gitlab.requests, []);
    });
});

describe("a 2xx that is not GitLab's answer is not a write", () => {
    const loginPage = `<html><body><form action="/sso">Sign in to continue</form><input value="${SECRET}"></body></html>`;
    const cases: { what: string; call: () => Promise<unknown>; method: string; status: number; text: string; type: string }[] = [
        { what: "an SSO login page answering the create with 200", call: () => provider.create(variable()), method: "POST", status: 200, text: loginPage, type: "text/html; charset=utf-8" },
        { what: "an SSO login page answering the create with 201", call: () => provider.create(variable()), method: "POST", status: 201, text: loginPage, type: "text/html" },
        { what: "an SSO login page answering the update", call: () => provider.update!("id", variable(), variable()), method: "PUT", status: 200, text: loginPage, type: "text/html" },
        {
            what: "truncated JSON",
            call: () => provider.create(variable()),
            method: "POST",
            status: 201,
            text: JSON.stringify({ key: "AWS_SECRET_ACCESS_KEY", value: SECRET, environment_scope: "*" }).slice(0, 50),
            type: "application/json",
        },
        {
            what: "JSON for another key",
            call: () => provider.create(variable()),
            method: "POST",
            status: 201,
            text: JSON.stringify({ key: "AWS_ACCESS_KEY_ID", value: SECRET, environment_scope: "*", protected: true, masked: true, raw: true }),
            type: "application/json",
        },
        {
            what: "JSON for another environment scope",
            call: () => provider.update!("id", variable({ environmentScope: "production" }), variable({ environmentScope: "production" })),
            method: "PUT",
            status: 200,
            text: JSON.stringify({ key: "AWS_SECRET_ACCESS_KEY", value: SECRET, environment_scope: "staging" }),
            type: "application/json",
        },
        {
            what: "JSON for another environment scope, answering an update with 201",
            call: () => provider.update!("id", variable({ environmentScope: "production" }), variable({ environmentScope: "production" })),
            method: "PUT",
            status: 201,
            text: JSON.stringify({ key: "AWS_SECRET_ACCESS_KEY", value: SECRET, environment_scope: "staging" }),
            type: "application/json",
        },
        {
            what: "JSON where the value did not take",
            call: () => provider.update!("id", variable(), variable()),
            method: "PUT",
            status: 200,
            text: JSON.stringify({ key: "AWS_SECRET_ACCESS_KEY", value: "the-previous-secret-value", environment_scope: "*" }),
            type: "application/json",
        },
        {
            what: "a JSON list instead of the variable",
            call: () => provider.create(variable()),
            method: "POST",
            status: 201,
            text: "[]",
            type: "application/json",
        },
    ];
    for (const c of cases) {
        it(`${c.what}: fails with the status and content type, never the body`, async () => {
            gitlab.inject({ method: c.method, status: c.status, text: c.text, headers: { "Content-Type": c.type } });
            const e = await rejection(c.call());
            assert.match(e.message, new RegExp(`GitLab at http://127\\.0\\.0\\.1:\\d+/api/v4/ answered ${c.status} \\(${c.type.split(";")[0].replace("/", "\\/")}\\) with something that is not GitLab's answer for this variable`));
            assert.match(e.message, /the write is not confirmed/);
            assert.ok(!e.message.includes("Sign in"), e.message);
            assertClean(e);
        });
    }

    it("reads of a login page fail too, instead of recording flags GitLab never reported", async () => {
        gitlab.inject({ method: "GET", status: 200, text: "<html>Sign in</html>", headers: { "Content-Type": "text/html" } });
        const e = await rejection(provider.read!("project:acme/api:AWS_SECRET_ACCESS_KEY:*", variable()));
        assert.match(e.message, /answered 200 \(text\/html\) with something that is not GitLab's answer for this variable/);
    });
});

describe("redaction of what GitLab sends back", () => {
    const echoes: [string, unknown][] = [
        ["the value URL-encoded", { message: { value: [`${encodeURIComponent(SECRET)} is invalid`] } }],
        ["the value HTML-escaped", { message: { value: [`${htmlEscaped(SECRET)} is invalid`] } }],
        ["the value JSON-escaped", { message: `value ${SECRET.replace(/\//g, "\\/")} is invalid` }],
        ["part of the token", { message: `token ${TOKEN.slice(3, 17)}... is not allowed here` }],
        ["part of the value", { message: `value ${SECRET.slice(10, 30)} is invalid` }],
        ["the token in other case", { message: `token ${TOKEN.toUpperCase()} is not allowed here` }],
    ];
    for (const [what, body] of echoes) {
        it(`never repeats ${what}`, async () => {
            gitlab.inject({ status: 400, body });
            const e = await rejection(provider.create(variable()));
            assert.match(e.message, /GitLab refused the variable \(400 Bad Request: .*\[redacted\]/);
            assertClean(e);
            for (let i = 0; i + 10 <= TOKEN.length; i++) assert.ok(!e.message.toLowerCase().includes(TOKEN.slice(i, i + 10).toLowerCase()), e.message);
        });
    }

    it("never repeats the token from an HTTP reason phrase", async () => {
        gitlab.inject({ status: 403, statusText: `Forbidden for ${TOKEN}`, body: { message: "403 Forbidden" } });
        const e1 = await rejection(provider.create(variable()));
        assert.match(e1.message, /\(403 Forbidden: 403 Forbidden\)/);
        assertClean(e1);

        gitlab.inject(...Array.from({ length: 5 }, () => ({ status: 502, statusText: `Bad gateway ${TOKEN}` })));
        const e2 = await rejection(provider.create(variable()));
        assert.match(e2.message, /kept failing with 502 Bad Gateway after 5 attempts/);
        assertClean(e2);
    });

    it("never repeats a content type that echoes the token", async () => {
        gitlab.inject({ method: "POST", status: 201, text: "<html></html>", headers: { "Content-Type": `application/${TOKEN.toLowerCase()}` } });
        const e = await rejection(provider.create(variable()));
        assert.match(e.message, /answered 201 \(an unusual content type\) with something that is not GitLab's answer/);
        assert.ok(!e.message.toLowerCase().includes(TOKEN.toLowerCase().slice(6)), e.message);
    });

    it("shows no HTML error page, only its status and content type", async () => {
        gitlab.inject({ status: 403, text: `<html><p>Denied: ${TOKEN}</p></html>`, headers: { "Content-Type": "text/html" } });
        const e = await rejection(provider.create(variable()));
        assert.match(e.message, /\(403 Forbidden: a text\/html page, not shown\)/);
        assert.ok(!e.message.includes("Denied"), e.message);
        assertClean(e);
    });
});

describe("retries", () => {
    it("429: waits as long as Retry-After says, then succeeds", async () => {
        gitlab.inject({ status: 429, headers: { "Retry-After": "7" }, body: { message: "429 Too Many Requests" } });
        const result = await provider.create(variable());
        assert.deepEqual(waits, [7000]);
        assert.equal(gitlab.requests.length, 2);
        assert.equal(result.id, "project:acme/api:AWS_SECRET_ACCESS_KEY:*");
    });

    it("5xx: backs off exponentially, then succeeds", async () => {
        gitlab.inject({ status: 502 }, { status: 503 });
        await provider.update!("id", variable(), variable());
        assert.deepEqual(waits, [1000, 2000]);
        assert.deepEqual(gitlab.requests.map((r) => r.method), ["PUT", "PUT", "PUT", "POST"]);
    });

    it("gives up after 5 attempts with a message to run again later", async () => {
        gitlab.inject(...Array.from({ length: 5 }, () => ({ status: 500 })));
        const e = await rejection(provider.create(variable()));
        assert.equal(gitlab.requests.length, 5);
        assert.deepEqual(waits, [1000, 2000, 4000, 8000]);
        assert.match(e.message, /GitLab at http:\/\/127\.0\.0\.1:\d+\/api\/v4\/ kept failing with 500 Internal Server Error after 5 attempts; run again later\.$/);
        assertClean(e);
    });

    it("does not hold the run when Retry-After is longer than a minute", async () => {
        gitlab.inject({ status: 429, headers: { "Retry-After": "3600" } });
        const e = await rejection(provider.create(variable()));
        assert.equal(gitlab.requests.length, 1);
        assert.deepEqual(waits, []);
        assert.match(e.message, /GitLab answered 429 Too Many Requests and asked to wait 3600 s before trying again; run again after that\.$/);
    });

    it("connection failures are retried, then reported with the base URL to check", async () => {
        const closed = await startFakeGitlab({ tokens: {} });
        const url = closed.baseUrl;
        await closed.close();
        const p = gitlabVariableProvider({ attempts: 2, sleep: async (ms) => void waits.push(ms) });
        await p.configure!({ config: stackConfig({ "gitlab:token": TOKEN, "gitlab:baseUrl": url }) });
        const e = await rejection(p.create(variable()));
        assert.deepEqual(waits, [1000]);
        assert.match(e.message, /kept failing with a connection failure \(ECONNREFUSED\) after 2 attempts; run again later, and check `gitlab:baseUrl` \(or GITLAB_BASE_URL\)\.$/);
        assertClean(e);
    });
});

describe("serialized provider", () => {
    it("captures no token, and works when loaded the way the provider host loads it", async () => {
        const canary = "glpat-CANARY-must-not-be-serialized";
        process.env.GITLAB_TOKEN = canary;
        pulumi.runtime.setAllConfig({ "gitlab:token": canary }, ["gitlab:token"]);
        const instance = gitlabVariableProvider();
        // The same call `pulumi.dynamic.Resource` makes to fill `__provider`.
        const serialized = await pulumi.runtime.serializeFunction(() => instance, { allowSecrets: true });
        assert.ok(!serialized.text.includes(canary), "the token must not be in the serialized provider");
        assert.ok(!serialized.text.includes("require("), "the provider must not depend on modules (closure serialization)");

        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "gitlab-provider-")), "provider.js");
        fs.writeFileSync(file, serialized.text);
        try {
            const loaded = (require(file) as { handler: () => GitlabVariableProvider }).handler();
            await loaded.configure!({ config: stackConfig({ "gitlab:token": TOKEN, "gitlab:baseUrl": gitlab.baseUrl }) });
            const result = await loaded.create(variable());
            assert.equal(result.id, "project:acme/api:AWS_SECRET_ACCESS_KEY:*");
            assert.equal(gitlab.requests[0].headers["private-token"], TOKEN);
            assert.ok(!JSON.stringify(result).includes(TOKEN));
        } finally {
            fs.rmSync(path.dirname(file), { recursive: true, force: true });
        }
    });
});
