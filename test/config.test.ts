import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { resourceSlug } from "../rotation/core/config-checks";
import { decodeRawConfig, validateConfig } from "../rotation/core/config";
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
    // Resource-name collisions: names keep only letters, digits and _, so these pass every other
    // check and then fail in the engine with duplicate URNs.
    {
        what: "two repositories whose names differ only in punctuation",
        raw: stack({}, [set({ targets: [{ type: "github-repository", repository: "acme/my.app" }, { type: "github-repository", repository: "acme/my-app" }] })]),
        problems: [
            "credentials[0].targets[1] (github repository acme/my-app) would have the same Pulumi resource name as credentials[0].targets[0] (github repository acme/my.app): github-repository-acme-my-app-aws_access_key_id (resource names keep only letters, digits and _). Resource names do not include the set (a target keeps its resources when it moves between sets), so the two cannot share a stack: rotate one of them from another stack.",
        ],
    },
    {
        what: "two environments whose names differ only in punctuation",
        raw: stack({}, [
            set({
                targets: [
                    { type: "github-environment", repository: "acme/api", environment: "prod stage" },
                    { type: "github-environment", repository: "acme/api", environment: "prod-stage" },
                ],
            }),
        ]),
        problems: [
            "credentials[0].targets[1] (github environment acme/api:prod-stage) would have the same Pulumi resource name as credentials[0].targets[0] (github environment acme/api:prod stage): github-environment-acme-api-prod-stage-aws_access_key_id (resource names keep only letters, digits and _). Resource names do not include the set (a target keeps its resources when it moves between sets), so the two cannot share a stack: rotate one of them from another stack.",
        ],
    },
    {
        what: "two GitLab projects whose paths differ only in punctuation",
        raw: stack({}, [set({ targets: [{ type: "gitlab-project", project: "acme/my.api" }, { type: "gitlab-project", project: "acme/my-api" }] })]),
        problems: [
            "credentials[0].targets[1] (gitlab project acme/my-api) would have the same Pulumi resource name as credentials[0].targets[0] (gitlab project acme/my.api): gitlab-project-acme-my-api-AWS_ACCESS_KEY_ID (resource names keep only letters, digits and _). Resource names do not include the set (a target keeps its resources when it moves between sets), so the two cannot share a stack: rotate one of them from another stack.",
        ],
    },
    {
        what: "a managed policy listed twice",
        raw: stack({}, [set({ user: { managedPolicyArns: ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"] } })]),
        problems: ["credentials[0].user.managedPolicyArns[1] repeats managedPolicyArns[0] (arn:aws:iam::aws:policy/ReadOnlyAccess): list each policy once"],
    },
    {
        what: "two managed policies whose names differ only in punctuation",
        raw: stack({}, [set({ user: { managedPolicyArns: ["arn:aws:iam::123456789012:policy/ci/deploy", "arn:aws:iam::123456789012:policy/ci-deploy"] } })]),
        problems: [
            "credentials[0].user.managedPolicyArns[1] (arn:aws:iam::123456789012:policy/ci-deploy) would have the same Pulumi resource name as managedPolicyArns[0] (arn:aws:iam::123456789012:policy/ci/deploy): deploy-policy-123456789012-ci-deploy (resource names keep only letters, digits and _). Attach one of them to an IAM group of the user instead, or merge them.",
        ],
    },
    // A job reads the id and the secret by name; a repository or environment secret wins over the
    // organization's, so shadowing one name of a pair hands jobs halves of two keys.
    {
        what: "a repository secret of one set shadowing half of another set's organization pair",
        raw: stack({}, [
            set({ name: "org", targets: [{ type: "github-organization", organization: "acme" }] }),
            set({ name: "api", targets: [{ type: "github-repository", repository: "acme/api", names: { secretAccessKey: "API_AWS_SECRET_ACCESS_KEY" } }] }),
        ]),
        problems: [
            "credentials[1].targets[0] (github repository acme/api) writes AWS_ACCESS_KEY_ID, which takes precedence in that repository over the secret of the same name from credentials[0].targets[0] (github organization acme), but not AWS_SECRET_ACCESS_KEY: jobs there would read the access key id of one key and the secret of another. Give the target both names of the pair (names.accessKeyId and names.secretAccessKey) or neither.",
        ],
    },
    {
        what: "an environment secret shadowing half of a repository pair, names swapped",
        raw: stack({}, [
            set({ name: "repo", targets: [{ type: "github-repository", repository: "acme/api" }] }),
            set({
                name: "prod",
                targets: [{ type: "github-environment", repository: "ACME/api", environment: "prod", names: { accessKeyId: "AWS_SECRET_ACCESS_KEY", secretAccessKey: "AWS_ACCESS_KEY_ID" } }],
            }),
        ]),
        problems: [
            "credentials[1].targets[0] (github environment ACME/api:prod) writes AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which take precedence in that environment over the secrets of the same names from credentials[0].targets[0] (github repository acme/api), but each for the other half of the key: jobs there would read the access key id of one key and the secret of another. Use each name for the same half as the other target does, or other names.",
        ],
    },
    // Durations: luxon adds anything, and past its range the date arithmetic breaks.
    { what: "a duration of 300,000 years", raw: stack({ every: "P300000Y" }), problems: ['every must be at most P10Y (got "P300000Y")'] },
    {
        what: "a per-set duration beyond ten years",
        raw: stack({}, [set({ rotation: { retireAfter: "PT99999999999999S" } })]),
        problems: ['credentials[0].rotation.retireAfter must be at most P10Y (got "PT99999999999999S")'],
    },
    { what: "a cadence beyond ten years", raw: stack({ cadence: "P11Y" }), problems: ['cadence must be at most P10Y (got "P11Y")'] },
    {
        what: "a token pasted into a duration (never repeated in the message)",
        raw: stack({ settle: "glpat-Zq8vRk3T1mXw9Lp2Hs7D" }),
        problems: ['settle must be an ISO-8601 duration such as "P7D" or "PT12H" (got a 26-character value, not shown)'],
    },
    // Keys JavaScript objects inherit or treat specially.
    {
        what: "constructor, toString and __proto__ at the top level",
        raw: JSON.parse('{"credentials":[{"name":"deploy","targets":[{"type":"github-repository","repository":"acme/api"}]}],"constructor":"x","toString":"y","__proto__":{"every":"P1D"}}'),
        problems: [/^constructor is not a known setting \(known: credentials, /, /^toString is not a known setting \(known: credentials, /, /^__proto__ is not a known setting \(known: credentials, /],
    },
    {
        what: "__proto__ as a tag key",
        raw: JSON.parse('{"credentials":[{"name":"deploy","user":{"tags":{"__proto__":"x","constructor":"y"}},"targets":[{"type":"github-repository","repository":"acme/api"}]}]}'),
        problems: ["credentials[0].user.tags.__proto__ cannot be used as a tag key (JavaScript reserves the name): choose another key"],
    },
    {
        what: "__proto__ as a variable name",
        raw: JSON.parse('{"credentials":[{"name":"deploy","targets":[{"type":"github-repository","repository":"acme/api","variables":{"__proto__":"v","REGION":"eu"}}]}]}'),
        problems: ["credentials[0].targets[0].variables.__proto__ cannot be used as a variable name (JavaScript reserves the name): choose another name"],
    },
    // Values GitHub or AWS refuse only when the run writes them.
    {
        what: "repository names GitHub cannot have",
        raw: stack({}, [
            set({
                targets: [
                    { type: "github-repository", repository: "acme/.." },
                    { type: "github-dependabot", repository: "acme/." },
                    { type: "github-environment", repository: "acme/-api", environment: "prod" },
                    { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web", ".."] },
                ],
            }),
        ]),
        problems: [
            'credentials[0].targets[0].repository names a repository GitHub cannot have ("acme/.."): a repository name is not "." or ".." and does not start with "-"',
            'credentials[0].targets[1].repository names a repository GitHub cannot have ("acme/."): a repository name is not "." or ".." and does not start with "-"',
            'credentials[0].targets[2].repository names a repository GitHub cannot have ("acme/-api"): a repository name is not "." or ".." and does not start with "-"',
            'credentials[0].targets[3].repositories[1] names a repository GitHub cannot have (".."): a repository name is not "." or ".." and does not start with "-"',
        ],
    },
    {
        what: "environment names with control characters or bidirectional overrides",
        raw: stack({}, [
            set({
                targets: [
                    { type: "github-environment", repository: "acme/api", environment: "prod\u202Egats" },
                    { type: "github-environment", repository: "acme/api", environment: "prod\nstage" },
                ],
            }),
        ]),
        problems: [
            "credentials[0].targets[0].environment must not contain control characters or bidirectional-text controls (found U+202E)",
            "credentials[0].targets[1].environment must not contain control characters or bidirectional-text controls (found U+000A)",
        ],
    },
    {
        what: "a tag key with AWS's reserved prefix",
        raw: stack({}, [set({ user: { tags: { "AWS:team": "ci", team: "ci" } } })]),
        problems: ['credentials[0].user.tags.AWS:team must not start with "aws:" (AWS reserves the prefix)'],
    },
    {
        what: "an inline policy with Statement: null",
        raw: stack({}, [set({ user: { inlinePolicy: { Version: "2012-10-17", Statement: null } } })]),
        problems: ["credentials[0].user.inlinePolicy must be an IAM policy document with Version and Statement (a statement or a non-empty list of statements)"],
    },
    {
        what: "an inline policy over IAM's 2,048-character limit",
        raw: stack({}, [
            set({
                user: {
                    inlinePolicy: {
                        Version: "2012-10-17",
                        Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: Array.from({ length: 80 }, (_, i) => `arn:aws:s3:::bucket-${String(i).padStart(3, "0")}/*`) }],
                    },
                },
            }),
        ]),
        problems: [
            "credentials[0].user.inlinePolicy has 2,334 characters without whitespace, and IAM allows 2,048 for a user's inline policies: move statements to a managed policy (user.managedPolicyArns)",
        ],
    },
    {
        what: "GitLab ids that are not exact whole numbers",
        raw: stack({}, [
            set({
                targets: [
                    { type: "gitlab-project", project: 2 ** 53 + 2 },
                    { type: "gitlab-group", group: 1.5 },
                ],
            }),
        ]),
        problems: [
            'credentials[0].targets[0].project is a number too large to be read exactly (9007199254740994): write the id in quotes (project: "<id>")',
            'credentials[0].targets[1].group is a number with a fraction (1.5): write a numeric id, or a path in quotes (group: "1.5")',
        ],
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

    test("accepts targets of two sets whose names run together: resource names carry no set name", () => {
        const result = validateConfig(
            stack({}, [
                set({ name: "a", targets: [{ type: "github-repository", repository: "acme/b-github-repository-acme-c" }] }),
                set({ name: "a-github-repository-acme-b", targets: [{ type: "github-repository", repository: "acme/c" }] }),
            ]),
        );
        assert.equal(result.ok, true, result.ok ? "" : result.problems.join("\n"));
    });

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

describe("validateConfig accepts what the new refusals must not catch", () => {
    const accepted: { what: string; raw: unknown }[] = [
        {
            what: "an organization pair fully overridden by another set's repository secrets",
            raw: stack({}, [
                set({ name: "org", targets: [{ type: "github-organization", organization: "acme" }] }),
                set({ name: "api", targets: [{ type: "github-repository", repository: "acme/api" }] }),
            ]),
        },
        {
            what: "one name of a pair shadowed by the same set (the same key)",
            raw: stack({}, [
                set({
                    targets: [
                        { type: "github-organization", organization: "acme" },
                        { type: "github-repository", repository: "acme/api", names: { secretAccessKey: "API_SECRET" } },
                    ],
                }),
            ]),
        },
        {
            what: "a repository the organization secret does not reach",
            raw: stack({}, [
                set({ name: "org", targets: [{ type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web"] }] }),
                set({ name: "api", targets: [{ type: "github-repository", repository: "acme/api", names: { secretAccessKey: "API_SECRET" } }] }),
            ]),
        },
        {
            what: "repositories whose names differ only in punctuation, writing different names",
            raw: stack({}, [
                set({
                    targets: [
                        { type: "github-repository", repository: "acme/my.app" },
                        { type: "github-repository", repository: "acme/my-app", names: { accessKeyId: "APP_KEY_ID", secretAccessKey: "APP_SECRET" } },
                    ],
                }),
            ]),
        },
        {
            what: "GitLab projects whose paths differ only in punctuation, in different environment scopes",
            raw: stack({}, [set({ targets: [{ type: "gitlab-project", project: "acme/my.api" }, { type: "gitlab-project", project: "acme/my-api", environmentScope: "production" }] })]),
        },
        { what: "durations of exactly ten years", raw: stack({ every: "P10Y", cadence: "P1D" }) },
        { what: "a tag key that only contains aws", raw: stack({}, [set({ user: { tags: { "team-aws:x": "a", awsome: "b" } } })]) },
        { what: "a GitLab id given as a quoted string beyond 2^53", raw: stack({}, [set({ targets: [{ type: "gitlab-project", project: "9007199254740993" }] })]) },
        { what: "an environment name with spaces and dots", raw: stack({}, [set({ targets: [{ type: "github-environment", repository: "acme/.github", environment: "prod eu-1.b" }] })]) },
    ];
    for (const c of accepted) {
        test(`accepts ${c.what}`, () => {
            const result = validateConfig(c.raw);
            assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        });
    }

    test("keeps a GitLab id beyond 2^53 exactly when it is quoted", () => {
        const result = validateConfig(stack({}, [set({ targets: [{ type: "gitlab-project", project: "9007199254740993" }] })]));
        assert.ok(result.ok);
        assert.equal((result.config.sets[0].targets[0].target as { project: string }).project, "9007199254740993");
    });

    test("the collision check names resources exactly as the program does", async () => {
        const { slug } = await import("../rotation/pulumi/credential-set");
        fc.assert(fc.property(fc.string({ maxLength: 30 }), (text) => assert.equal(resourceSlug(text), slug(text))));
    });
});

describe("decodeRawConfig", () => {
    test("keeps a key named __proto__ so validation reports it", () => {
        // Pulumi's config map arrives as an object with an own `__proto__` key, like this one.
        const { raw } = decodeRawConfig(Object.fromEntries([["__proto__", "x"], ["every", "P7D"]]));
        assert.deepEqual(Object.keys(raw), ["__proto__", "every"]);
        const result = validateConfig({ ...raw, credentials: [set()] });
        assert.equal(result.ok, false);
        if (!result.ok) assert.match(result.problems[0], /^__proto__ is not a known setting/);
    });

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
