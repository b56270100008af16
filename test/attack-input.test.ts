import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type * as pulumi from "@pulumi/pulumi";
import { gitlabVariableProvider, type GitlabVariableInputs, type GitlabVariableProvider } from "../providers/gitlab/variable";
import { validateConfig } from "../rotation/core/config";
import { startFakeGitlab, type FakeGitlab, type Fault } from "./support/gitlab-server";
import { installMocks, setConfig, settle } from "./support/mocks";
import { runProgram } from "./support/run";

/** `npm run test:slow` evaluates every accepted sample; `npm test` a share of them. */
const slowTier = process.env.TEST_TIER === "slow";

// A cheap attack run, kept so it can be repeated: hostile configurations and hostile GitLab
// answers, generated. Each must end in a clean error (no throw of another kind, every problem
// naming its path, nothing secret in any message) and nothing created. The figures are printed
// at the end: tried, handled cleanly, failures.

const TOKEN = "glpat-Zq8vRk3T1mXw9Lp2Hs7D";
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

const figures = { configs: { tried: 0, clean: 0 }, programs: { tried: 0, clean: 0 }, accepted: { tried: 0, clean: 0 }, gitlab: { tried: 0, clean: 0 } };
after(() => {
    for (const [what, f] of Object.entries(figures)) {
        console.log(`attack-input ${what}: tried ${f.tried}, handled cleanly ${f.clean}, failures ${f.tried - f.clean}`);
    }
});

const htmlEscaped = (s: string) => s.replace(/[^A-Za-z0-9]/g, (c) => `&#x${c.charCodeAt(0).toString(16)};`);

/** Nothing secret in a message: the value or the token as they are, encoded, escaped, or 10 characters of them. */
function leaks(message: string): string | undefined {
    for (const [what, secret] of [["token", TOKEN], ["secret", SECRET]] as const) {
        for (const form of [secret, encodeURIComponent(secret), htmlEscaped(secret)]) if (message.includes(form)) return `the ${what}`;
        // Case-insensitively: an echo in lower case is still the token.
        for (let i = 0; i + 10 <= secret.length; i++) if (message.toLowerCase().includes(secret.slice(i, i + 10).toLowerCase())) return `part of the ${what}`;
    }
    return undefined;
}

// ---- hostile configurations ----------------------------------------------------------------

const hostileValues: unknown[] = [
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 53 + 2,
    Number.MAX_VALUE,
    "",
    " ",
    "P300000Y",
    "PT99999999999999S",
    "-P1D",
    "P1M",
    "acme/..",
    "acme/-x",
    "..",
    "prod\u202Egats",
    "a\u0000b",
    "aws:tag",
    "x".repeat(3000),
    [],
    [[]],
    {},
    { Version: "2012-10-17", Statement: null },
    JSON.parse('{"__proto__":{"polluted":true}}'),
    { constructor: { prototype: { polluted: true } } },
    "toString",
    "__proto__",
    "arn:aws:iam::aws:policy/ReadOnlyAccess",
    SECRET,
    TOKEN,
];

const setFields = ["name", "user", "rotation", "targets", "adoptKeys", "__proto__", "constructor"];
const userFields = ["name", "path", "tags", "managedPolicyArns", "inlinePolicy", "permissionsBoundary", "toString"];
const targetFields = ["type", "repository", "environment", "organization", "visibility", "repositories", "project", "group", "names", "variables", "environmentScope", "hidden", "__proto__"];
const topFields = ["credentials", "every", "overlap", "retireAfter", "settle", "gateTimeout", "cadence", "request", "requestSets", "emergency", "revoke", "forgetKeys", "paused", "constructor", "__proto__", "valueOf"];

const baseTargets = [
    { type: "github-repository", repository: "acme/my.app" },
    { type: "github-environment", repository: "acme/api", environment: "prod stage" },
    { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["api"] },
    { type: "gitlab-project", project: "acme/my.api" },
    { type: "gitlab-group", group: 7, environmentScope: "review/*" },
];

/** Own-property assignment: `__proto__` stays a key, as JSON.parse and YAML make it. */
function put(o: Record<string, unknown>, key: string, value: unknown) {
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

const mutation = fc.oneof(
    fc.record({ at: fc.constant("top" as const), field: fc.constantFrom(...topFields), value: fc.constantFrom(...hostileValues) }),
    fc.record({ at: fc.constant("set" as const), set: fc.nat(2), field: fc.constantFrom(...setFields), value: fc.constantFrom(...hostileValues) }),
    fc.record({ at: fc.constant("user" as const), set: fc.nat(2), field: fc.constantFrom(...userFields), value: fc.constantFrom(...hostileValues) }),
    fc.record({ at: fc.constant("target" as const), set: fc.nat(2), target: fc.nat(4), field: fc.constantFrom(...targetFields), value: fc.constantFrom(...hostileValues) }),
    fc.record({ at: fc.constant("copy" as const), set: fc.nat(2), target: fc.nat(4), punctuation: fc.constantFrom(".", "-", "_", " ") }),
);

const hostileConfig = fc
    .record({ sets: fc.integer({ min: 1, max: 3 }), targets: fc.array(fc.nat(baseTargets.length - 1), { minLength: 1, maxLength: 4 }), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) })
    .map(({ sets, targets, mutations }) => {
        const raw: Record<string, unknown> = {
            credentials: Array.from({ length: sets }, (_, i) => ({ name: `set-${i}`, targets: targets.map((t) => structuredClone(baseTargets[t])) })),
        };
        const credentials = raw.credentials as Record<string, unknown>[];
        for (const m of mutations) {
            const set = "set" in m ? credentials[m.set % credentials.length] : undefined;
            switch (m.at) {
                case "top":
                    put(raw, m.field, structuredClone(m.value));
                    break;
                case "set":
                    if (set) put(set, m.field, structuredClone(m.value));
                    break;
                case "user":
                    if (set) {
                        const user = (typeof set.user === "object" && set.user !== null ? set.user : {}) as Record<string, unknown>;
                        put(user, m.field, structuredClone(m.value));
                        put(set, "user", user);
                    }
                    break;
                case "target":
                case "copy": {
                    const list = set && Array.isArray(set.targets) ? (set.targets as unknown[]) : undefined;
                    const target = list?.[m.target % Math.max(1, list.length)];
                    if (!target || typeof target !== "object") break;
                    if (m.at === "target") put(target as Record<string, unknown>, m.field, structuredClone(m.value));
                    else {
                        // The same target again with punctuation swapped: a near-duplicate resource name.
                        const copy = JSON.parse(JSON.stringify(target).replace(/[.\- _](?=[a-z])/g, m.punctuation));
                        list!.push(copy);
                    }
                    break;
                }
            }
        }
        return raw;
    });

/** The first word of a problem must be the path of what is wrong: a key of the input, or `configuration`. */
function namesAPath(problem: string, raw: Record<string, unknown>): boolean {
    const head = /^([A-Za-z_$][\w$]*)/.exec(problem)?.[1] ?? "";
    return head === "configuration" || Object.hasOwn(raw, head) || head === "credentials";
}

describe("hostile configurations", () => {
    it("every one is refused cleanly or accepted whole: no throw, each problem names its path", () => {
        const failures: string[] = [];
        for (const raw of fc.sample(hostileConfig, { numRuns: 600, seed: 20261123 })) {
            figures.configs.tried++;
            try {
                const result = validateConfig(raw);
                if (!result.ok) {
                    assert.ok(result.problems.length > 0);
                    for (const p of result.problems) {
                        assert.equal(typeof p, "string");
                        assert.ok(namesAPath(p, raw), `a problem must start with its path: ${p}`);
                        assert.ok(!p.includes("[object Object]"), p);
                        assert.ok(p.length < 1200, `a problem must stay readable (${p.length} characters)`);
                        assert.equal(leaks(p), undefined, `a problem repeats ${leaks(p)}: ${p}`);
                    }
                } else {
                    assert.ok(result.config.sets.length > 0);
                    assert.equal(Object.getPrototypeOf({}).polluted, undefined, "Object.prototype was polluted");
                }
                figures.configs.clean++;
            } catch (e) {
                failures.push(`${(e as Error).message.split("\n")[0]} for ${JSON.stringify(raw).slice(0, 300)}`);
            }
        }
        assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${figures.configs.tried} hostile configs were not handled cleanly`);
    });

    it("the program registers nothing for any of them that is refused", async () => {
        const program = (await import("../index")).default;
        const samples = fc.sample(hostileConfig, { numRuns: 60, seed: 7 }).filter((raw) => !validateConfig(raw).ok);
        for (const raw of samples.slice(0, 20)) {
            figures.programs.tried++;
            const { registrations, invocations } = installMocks();
            setConfig({ ...Object.fromEntries(Object.entries(raw)), "gitlab:token": TOKEN }, ["gitlab:token"]);
            await assert.rejects(
                program({ env: { CI_KEY_ROTATION_NOW: "2026-11-23T12:00:00Z", GITLAB_TOKEN: TOKEN }, observer: { listKeys: async () => [], lastUse: async () => ({}) } }),
                (err: Error) => err.name === "ConfigError" && leaks(err.message) === undefined,
            );
            await settle();
            assert.deepEqual(registrations, []);
            assert.deepEqual(invocations, []);
            figures.programs.clean++;
        }
        assert.ok(figures.programs.tried >= 10, `too few refused samples (${figures.programs.tried})`);
    });
});

/**
 * Near-duplicates that are valid: the same targets with punctuation swapped, in one set or two
 * whose names run together. Whatever validation accepts must declare no two resources with one
 * URN (same type under the same parent type, same name), which the engine would refuse.
 */
const nearDuplicates = fc
    .record({
        setNames: fc.constantFrom(["deploy"], ["a", "a-github-repository-acme"], ["a", "a-gitlab-project-acme"], ["x", "x-b"]),
        picks: fc.array(
            fc.record({
                set: fc.nat(1),
                kind: fc.constantFrom("github-repository", "github-environment", "gitlab-project", "gitlab-group", "github-dependabot"),
                stem: fc.constantFrom("my.app", "my-app", "my_app", "my app", "b-github-repository-acme-my-app", "b-gitlab-project-acme-my-app", "My.App"),
                custom: fc.boolean(),
                scope: fc.constantFrom("*", "*", "review/*", "review", "review-"),
            }),
            { minLength: 2, maxLength: 5 },
        ),
        arns: fc.array(fc.constantFrom("arn:aws:iam::123456789012:policy/ci/deploy", "arn:aws:iam::123456789012:policy/ci-deploy", "arn:aws:iam::aws:policy/ReadOnlyAccess"), { maxLength: 3 }),
    })
    .map(({ setNames, picks, arns }) => ({
        credentials: setNames.map((name, i) => ({
            name,
            user: { managedPolicyArns: arns },
            targets: picks
                .filter((p) => p.set % setNames.length === i)
                .map((p, j) => {
                    const names = p.custom ? { names: { accessKeyId: `K${j}_ID`, secretAccessKey: `K${j}_SECRET` } } : {};
                    const path = `acme/${p.stem.replace(/ /g, p.kind.startsWith("gitlab") ? "-" : " ").replace(/ /g, "-")}`;
                    switch (p.kind) {
                        case "github-environment":
                            return { type: p.kind, repository: "acme/api", environment: p.stem, ...names };
                        case "gitlab-project":
                            return { type: p.kind, project: path, environmentScope: p.scope, ...names };
                        case "gitlab-group":
                            return { type: p.kind, group: path, environmentScope: p.scope, ...names };
                        default:
                            return { type: p.kind, repository: path.replace(/ /g, "-"), ...names };
                    }
                }),
        })).filter((set) => set.targets.length > 0),
    }));

describe("configurations validation accepts", () => {
    it("declare no two resources with one URN", async () => {
        const failures: string[] = [];
        const accepted = fc.sample(nearDuplicates, { numRuns: 400, seed: 11 }).filter((raw) => validateConfig(raw).ok);
        // The fast tier evaluates 12 of them under mocks; the slow tier all 40.
        for (const raw of accepted.slice(0, slowTier ? 40 : 12)) {
            figures.accepted.tried++;
            const run = await runProgram({ config: raw, now: "2026-11-23T12:00:00Z" });
            const seen = new Set<string>();
            const duplicates = run.registrations.map((r) => `${r.type}::${r.name}`).filter((urn) => (seen.has(urn) ? true : (seen.add(urn), false)));
            if (run.error === undefined && duplicates.length === 0) figures.accepted.clean++;
            else failures.push(`${run.error?.message.split("\n")[0] ?? `duplicate ${duplicates[0]}`} for ${JSON.stringify(raw)}`);
        }
        assert.ok(figures.accepted.tried >= (slowTier ? 20 : 12), `too few accepted samples (${figures.accepted.tried})`);
        assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${figures.accepted.tried} accepted configs declare colliding resources`);
    });
});

// ---- hostile GitLab answers ----------------------------------------------------------------

let gitlab: FakeGitlab;
let elsewhere: FakeGitlab;
let provider: GitlabVariableProvider;

before(async () => {
    delete process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_BASE_URL;
    gitlab = await startFakeGitlab({ tokens: { [TOKEN]: "maintainer" }, projects: { 42: "acme/api" } });
    elsewhere = await startFakeGitlab({ host: "127.0.0.2", tokens: { [TOKEN]: "maintainer" }, projects: { 42: "acme/api" } });
    provider = gitlabVariableProvider({ attempts: 1, sleep: async () => {} });
    const values: Record<string, string> = { "gitlab:token": TOKEN, "gitlab:baseUrl": gitlab.baseUrl };
    await provider.configure!({ config: { get: (k: string) => values[k], require: (k: string) => values[k] } as pulumi.dynamic.Config });
});
after(async () => {
    await gitlab.close();
    await elsewhere.close();
});

function variable(): GitlabVariableInputs {
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
    };
}

const genuine = { key: "AWS_SECRET_ACCESS_KEY", value: SECRET, variable_type: "env_var", protected: true, masked: true, hidden: false, raw: true, environment_scope: "*", description: "rotated by ci-key-rotation" };

const echoes = [SECRET, TOKEN, encodeURIComponent(SECRET), htmlEscaped(SECRET), TOKEN.slice(4, 18), SECRET.slice(5, 25), SECRET.replace(/\//g, "\\/"), encodeURIComponent(encodeURIComponent(SECRET))];

const bodyKind = fc.constantFrom("genuine", "other-key", "other-scope", "other-value", "truncated", "html", "list", "empty", "message-echo", "text-echo");

const hostileAnswer = fc.record({
    call: fc.constantFrom("create", "update", "read", "delete"),
    status: fc.constantFrom(200, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503),
    body: bodyKind,
    echo: fc.constantFrom(...echoes),
    contentType: fc.constantFrom("application/json", "text/html; charset=utf-8", "text/plain", "", `application/${"x".repeat(5)}; token=${TOKEN}`, `application/${TOKEN.toLowerCase()}`),
    reason: fc.option(fc.constantFrom(`Forbidden ${TOKEN}`, `OK ${SECRET}`, "Weird Phrase"), { nil: undefined }),
    location: fc.constantFrom(`${"http://127.0.0.2"}/steal?t=${TOKEN}`, "/relative/path", "https://user:pw@evil.example/x", ""),
});

type HostileAnswer = typeof hostileAnswer extends fc.Arbitrary<infer A> ? A : never;

function faultFor(a: HostileAnswer): Fault {
    const headers: Record<string, string> = {};
    if (a.contentType) headers["Content-Type"] = a.contentType;
    if (a.status >= 300 && a.status < 400 && a.location) headers.Location = a.location.replace("http://127.0.0.2", elsewhere.baseUrl.replace(/\/api\/v4\/$/, ""));
    const bodies: Record<string, string | undefined> = {
        genuine: JSON.stringify(genuine),
        "other-key": JSON.stringify({ ...genuine, key: "AWS_ACCESS_KEY_ID" }),
        "other-scope": JSON.stringify({ ...genuine, environment_scope: "production" }),
        "other-value": JSON.stringify({ ...genuine, value: "previous-value-123" }),
        truncated: JSON.stringify(genuine).slice(0, 37),
        html: `<html><body>Sign in ${a.echo}</body></html>`,
        list: "[]",
        empty: undefined,
        "message-echo": JSON.stringify({ message: { value: [`${a.echo} is invalid`] } }),
        "text-echo": `error: ${a.echo}`,
    };
    return { status: a.status, headers, text: bodies[a.body] ?? "", ...(a.reason ? { statusText: a.reason } : {}) };
}

describe("hostile GitLab answers", () => {
    it("never follow a redirect, never count a non-answer as written, never leak the value or the token", async () => {
        const failures: string[] = [];
        for (const a of fc.sample(hostileAnswer, { numRuns: 400, seed: 20261123 })) {
            figures.gitlab.tried++;
            try {
                gitlab.clearFaults();
                gitlab.requests.length = 0;
                elsewhere.requests.length = 0;
                gitlab.variables.clear();
                gitlab.seed("project:42", { key: "AWS_SECRET_ACCESS_KEY", value: "previous-value-123", masked: true, protected: true, raw: true });
                gitlab.inject(faultFor(a));
                const v = variable();
                let outcome: { ok: true } | { ok: false; error: unknown };
                try {
                    if (a.call === "create") await provider.create(v);
                    else if (a.call === "update") await provider.update!("id", v, v);
                    else if (a.call === "read") await provider.read!("project:acme/api:AWS_SECRET_ACCESS_KEY:*", v);
                    else await provider.delete!("id", v);
                    outcome = { ok: true };
                } catch (error) {
                    outcome = { ok: false, error };
                }
                assert.deepEqual(elsewhere.requests, [], "a request reached another host");
                if (!outcome.ok) {
                    assert.ok(outcome.error instanceof Error, "a failure must be an Error");
                    const message = (outcome.error as Error).message;
                    assert.ok(message.startsWith(v.target), `the message must name the target: ${message}`);
                    assert.equal(leaks(message), undefined, `the message repeats ${leaks(message)}: ${message}`);
                    assert.ok(!/Sign in|<html/i.test(message), `the message shows the page: ${message}`);
                } else if (a.call === "create" || a.call === "update") {
                    // Success needs GitLab's own answer for this variable, or a later genuine one
                    // (a create that found the key taken and adopted it, an update that re-created it).
                    const written = gitlab.variables.get("project:42")?.find((x) => x.key === v.key && x.environment_scope === "*");
                    const firstWasGenuine = a.status >= 200 && a.status < 300 && a.body === "genuine";
                    assert.ok(firstWasGenuine || written?.value === SECRET, `counted as written: ${JSON.stringify(a)}`);
                } else if (a.call === "delete") {
                    // 204 carries no body; any other 2xx must be JSON or empty, never a page.
                    const page = a.body === "html" || a.body === "text-echo" || a.body === "truncated";
                    assert.ok(a.status === 204 || (a.status >= 200 && a.status < 300 && !page), `counted as deleted: ${JSON.stringify(a)}`);
                }
                figures.gitlab.clean++;
            } catch (e) {
                failures.push(`${(e as Error).message.split("\n")[0]} for ${JSON.stringify(a)}`);
            }
        }
        assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${figures.gitlab.tried} hostile GitLab answers were not handled cleanly`);
    });
});
