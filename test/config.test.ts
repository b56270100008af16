import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeRawConfig, validateConfig } from "../rotation/config";
import { installMocks, settle, setConfig } from "./support/mocks";

const repo = { type: "github-repository", repository: "acme/api" };
const set = (extra: Record<string, unknown> = {}) => ({ name: "deploy", targets: [repo], ...extra });
const stack = (extra: Record<string, unknown> = {}, sets: unknown[] = [set()]) => ({ credentials: sets, ...extra });

/** Each malformed configuration and the exact problems it must produce. */
const malformed: { what: string; raw: unknown; problems: (string | RegExp)[] }[] = [
    { what: "no credentials", raw: {}, problems: ["credentials is required: list at least one credential set"] },
    { what: "credentials not a list", raw: { credentials: { name: "x" } }, problems: ["credentials must be a list of credential sets"] },
    { what: "empty credentials", raw: { credentials: [] }, problems: ["credentials must list at least one credential set"] },
    { what: "set without name", raw: stack({}, [{ targets: [repo] }]), problems: ["credentials[0].name is required"] },
    {
        what: "set name with capitals",
        raw: stack({}, [set({ name: "Deploy" })]),
        problems: ["credentials[0].name must be 1-40 lower-case letters, digits or dashes, starting with a letter"],
    },
    { what: "set without targets", raw: stack({}, [{ name: "deploy" }]), problems: ["credentials[0].targets is required"] },
    { what: "empty targets", raw: stack({}, [set({ targets: [] })]), problems: ["credentials[0].targets must list at least one target"] },
    {
        what: "unknown target type",
        raw: stack({}, [set({ targets: [repo, { type: "bitbucket", repository: "a/b" }] })]),
        problems: [/^credentials\[0\]\.targets\[1\]\.type must be one of "github-repository", "github-environment", "github-organization", "github-dependabot"/],
    },
    {
        what: "repository without owner",
        raw: stack({}, [{ name: "deploy", targets: [repo, { type: "github-repository", repository: "api" }] }]),
        problems: ['credentials[0].targets[1].repository must be "owner/name"'],
    },
    {
        what: "environment target without environment",
        raw: stack({}, [set({ targets: [{ type: "github-environment", repository: "acme/api" }] })]),
        problems: ["credentials[0].targets[0].environment is required"],
    },
    {
        what: "organization visibility misspelt",
        raw: stack({}, [set({ targets: [{ type: "github-organization", organization: "acme", visibility: "public" }] })]),
        problems: ['credentials[0].targets[0].visibility must be "all", "private" or "selected"'],
    },
    {
        what: "selected visibility without repositories",
        raw: stack({}, [set({ targets: [{ type: "github-organization", organization: "acme", visibility: "selected" }] })]),
        problems: ['credentials[0].targets[0].repositories must list at least one repository when visibility is "selected"'],
    },
    {
        what: "repositories without selected visibility",
        raw: stack({}, [set({ targets: [{ type: "github-organization", organization: "acme", repositories: ["web"] }] })]),
        problems: ['credentials[0].targets[0].repositories is only used with visibility "selected"'],
    },
    {
        what: "secret name with a dash",
        raw: stack({}, [set({ targets: [{ ...repo, names: { accessKeyId: "AWS-KEY" } }] })]),
        problems: ["credentials[0].targets[0].names.accessKeyId must be letters, digits and underscores, not starting with a digit"],
    },
    {
        what: "secret name with the reserved GITHUB_ prefix",
        raw: stack({}, [set({ targets: [{ ...repo, names: { secretAccessKey: "GITHUB_AWS_SECRET" } }] })]),
        problems: ["credentials[0].targets[0].names.secretAccessKey must not start with GITHUB_ (reserved by GitHub)"],
    },
    {
        what: "both names the same",
        raw: stack({}, [set({ targets: [{ ...repo, names: { accessKeyId: "AWS_KEY", secretAccessKey: "aws_key" } }] })]),
        problems: ["credentials[0].targets[0].names.secretAccessKey must differ from names.accessKeyId"],
    },
    {
        what: "unknown field on a target",
        raw: stack({}, [set({ targets: [{ ...repo, secret: "AWS_SECRET" }] })]),
        problems: ["credentials[0].targets[0].secret is not a known setting"],
    },
    {
        what: "variables not a map",
        raw: stack({}, [set({ targets: [{ ...repo, variables: ["AWS_REGION"] }] })]),
        problems: ["credentials[0].targets[0].variables must be a map of variable names to plain values"],
    },
    {
        what: "two targets write the same secret",
        raw: stack({}, [set({ targets: [repo, { type: "github-repository", repository: "ACME/API" }] })]),
        problems: [
            "credentials[0].targets[1] writes github repository acme/api secret aws_access_key_id and github repository acme/api secret aws_secret_access_key, which credentials[0].targets[0] already writes",
        ],
    },
    {
        what: "two sets with one name",
        raw: stack({}, [set(), set({ targets: [{ type: "github-dependabot", repository: "acme/api" }] })]),
        problems: ['credentials[1].name "deploy" is already used by credentials[0]', 'credentials[1].user.name "ci-deploy" is already the user of credentials[0]: each set needs its own IAM user'],
    },
    {
        what: "IAM user path without slashes",
        raw: stack({}, [set({ user: { path: "ci" } })]),
        problems: ['credentials[0].user.path must begin and end with "/" (e.g. "/ci/")'],
    },
    {
        what: "IAM user name with a space",
        raw: stack({}, [set({ user: { name: "ci deploy" } })]),
        problems: ["credentials[0].user.name must be 1-64 characters of letters, digits and + = , . @ _ -"],
    },
    {
        what: "managed policy that is not an ARN",
        raw: stack({}, [set({ user: { managedPolicyArns: ["ReadOnlyAccess"] } })]),
        problems: ["credentials[0].user.managedPolicyArns[0] must be an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)"],
    },
    {
        what: "inline policy without Statement",
        raw: stack({}, [set({ user: { inlinePolicy: { Version: "2012-10-17" } } })]),
        problems: ["credentials[0].user.inlinePolicy must be an IAM policy document with Version and Statement"],
    },
    {
        what: "inline policy that is not JSON",
        raw: stack({}, [set({ user: { inlinePolicy: "{Version:" } })]),
        problems: ["credentials[0].user.inlinePolicy must be valid JSON"],
    },
    {
        what: "duration that is not ISO-8601",
        raw: stack({ every: "7 days" }),
        problems: ['every must be an ISO-8601 duration such as "P7D" or "PT12H" (got "7 days")'],
    },
    {
        what: "per-set duration that is not ISO-8601",
        raw: stack({}, [set({ rotation: { overlap: "24h" } })]),
        problems: ['credentials[0].rotation.overlap must be an ISO-8601 duration such as "P7D" or "PT12H" (got "24h")'],
    },
    {
        what: "rotation finishing after the next is due",
        raw: stack({ every: "P2D" }),
        problems: [/^credentials\[0\]: every \(P2D\) must be longer than overlap \+ gateTimeout \+ retireAfter/],
    },
    {
        what: "a rotation that only fits if every run is on time",
        raw: stack({ every: "P5DT1H", cadence: "PT1H" }),
        problems: [/^credentials\[0\]: every \(P5DT1H\) must be longer than overlap \+ gateTimeout \+ retireAfter \+ 2 × cadence \(5 days, 2 hours/],
    },
    { what: "cadence that is not a duration", raw: stack({ cadence: "hourly" }), problems: ['cadence must be an ISO-8601 duration such as "P7D" or "PT12H" (got "hourly")'] },
    {
        what: "settle longer than overlap",
        raw: stack({}, [set({ rotation: { overlap: "PT2H", settle: "PT3H" } })]),
        problems: ["credentials[0].rotation: settle (PT3H) must not exceed overlap (PT2H)"],
    },
    { what: "onGateTimeout misspelt", raw: stack({ onGateTimeout: "continue" }), problems: ['onGateTimeout must be "proceed" or "fail"'] },
    { what: "paused not a boolean", raw: stack({ paused: "yes" }), problems: ["paused must be true or false"] },
    {
        what: "emergency without a request",
        raw: stack({ emergency: "true" }),
        problems: ["emergency needs request: set ci-key-rotation:request to a new id (e.g. incident-2026-11-22)"],
    },
    {
        what: "request id with spaces",
        raw: stack({ request: "incident 42" }),
        problems: ["request must be 1-128 letters, digits or . _ : @ - (e.g. incident-2026-11-22)"],
    },
    {
        what: "requestSets naming an unknown set",
        raw: stack({ request: "incident-1", requestSets: ["deploy", "web"] }),
        problems: ['requestSets[1] "web" is not the name of a credential set'],
    },
    {
        what: "misspelt stack key",
        raw: stack({ evry: "P7D" }),
        problems: [/^evry is not a known setting \(known: credentials, every, /],
    },
    {
        what: "forgetKeys with something that is not a key id",
        raw: stack({ forgetKeys: ["secret-key"] }),
        problems: ["forgetKeys[0] must be an access key id (e.g. AKIA...)"],
    },
];

function assertProblems(actual: string[], expected: (string | RegExp)[]) {
    assert.equal(actual.length, expected.length, `expected ${expected.length} problem(s), got:\n${actual.join("\n")}`);
    expected.forEach((e, i) => (typeof e === "string" ? assert.equal(actual[i], e) : assert.match(actual[i], e)));
}

describe("validateConfig", () => {
    for (const c of malformed) {
        test(`rejects ${c.what}, naming the path`, () => {
            const result = validateConfig(c.raw);
            assert.equal(result.ok, false);
            if (!result.ok) assertProblems(result.problems, c.problems);
        });
    }

    test("reports every problem of a config at once", () => {
        const result = validateConfig({
            credentials: [
                { name: "Bad", targets: [{ type: "github-repository", repository: "nope" }] },
                { name: "ok", targets: [{ type: "github-organization", organization: "acme", visibility: "selected" }] },
            ],
            every: "weekly",
            revoke: "true",
        });
        assert.equal(result.ok, false);
        if (!result.ok) {
            assert.deepEqual(result.problems, [
                'every must be an ISO-8601 duration such as "P7D" or "PT12H" (got "weekly")',
                'credentials[0].name must be 1-40 lower-case letters, digits or dashes, starting with a letter',
                'credentials[0].targets[0].repository must be "owner/name"',
                'credentials[1].targets[0].repositories must list at least one repository when visibility is "selected"',
                "revoke needs request: set ci-key-rotation:request to a new id (e.g. leak-2026-11-22)",
            ]);
        }
    });

    test("fills documented defaults and merges per-set overrides", () => {
        const result = validateConfig(stack({ overlap: "PT12H" }, [set({ rotation: { every: "P14D", paused: true } })]));
        assert.ok(result.ok);
        const [s] = result.config.sets;
        assert.equal(s.user.name, "ci-deploy");
        assert.equal(s.user.path, "/ci/");
        assert.equal(s.policy.every.toISO(), "P14D");
        assert.equal(s.policy.overlap.toISO(), "PT12H");
        assert.equal(s.policy.retireAfter.toISO(), "P3D");
        assert.equal(s.policy.settle.toISO(), "PT6H");
        assert.equal(s.policy.gateTimeout.toISO(), "P1D");
        assert.equal(s.policy.onGateTimeout, "fail");
        assert.equal(s.policy.lastUsedGate, true);
        assert.equal(s.policy.paused, true);
        assert.equal(result.config.request, undefined);
    });

    test("revoke implies emergency and keeps the sets it names", () => {
        const result = validateConfig(stack({ request: "leak-1", revoke: "true", requestSets: ["deploy"] }));
        assert.ok(result.ok);
        assert.deepEqual(result.config.request, { id: "leak-1", emergency: true, revoke: true, sets: ["deploy"] });
    });

    test("accepts an inline policy as JSON text and stores it normalised", () => {
        const doc = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }] };
        const result = validateConfig(stack({}, [set({ user: { inlinePolicy: JSON.stringify(doc, null, 2) } })]));
        assert.ok(result.ok);
        assert.equal(result.config.sets[0].user.inlinePolicy, JSON.stringify(doc));
    });
});

describe("decodeRawConfig", () => {
    test("treats Pulumi.yaml's empty defaults as unset and parses structured keys", () => {
        const { raw, problems } = decodeRawConfig({ credentials: "[]", request: "", requestSets: "[]", every: "P7D", forgetKeys: '["AKIAAAAAAAAAAAAAAAAA"]' });
        assert.deepEqual(problems, []);
        assert.deepEqual(raw, { credentials: [], every: "P7D", forgetKeys: ["AKIAAAAAAAAAAAAAAAAA"] });
    });

    test("reports credentials given as plain text", () => {
        const { problems } = decodeRawConfig({ credentials: "deploy" });
        assert.deepEqual(problems, ['credentials must be structured YAML in the stack file (a list), not the text "deploy"']);
    });
});

describe("the program with invalid config", () => {
    test("registers nothing and lists every problem, for each malformed config", async () => {
        const program = (await import("../index")).default;
        for (const c of malformed) {
            const { registrations, invocations } = installMocks();
            const raw = c.raw as Record<string, unknown>;
            setConfig(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v])));
            await assert.rejects(
                program({ env: { CI_KEY_ROTATION_NOW: "2026-11-23T12:00:00Z" }, observer: { listKeys: async () => [], lastUse: async () => ({}) } }),
                (err: Error) => {
                    assert.equal(err.name, "ConfigError", c.what);
                    assert.match(err.message, /^Invalid ci-key-rotation configuration \(\d+ problems?\):/);
                    for (const p of c.problems) {
                        if (typeof p === "string") assert.ok(err.message.includes(`  - ${p}`), `${c.what}: ${err.message}`);
                    }
                    return true;
                },
            );
            await settle();
            assert.deepEqual(registrations, [], c.what);
            assert.deepEqual(invocations, [], c.what);
        }
    });
});
