import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { GitlabTarget } from "../providers/gitlab/store";
import { validateConfig } from "../rotation/core/config";

// Config validation of GitLab targets: defaults, and every problem reported with its path.

function withTargets(targets: unknown[]) {
    return { credentials: [{ name: "deploy", targets }] };
}

function problemsOf(targets: unknown[]): string[] {
    const result = validateConfig(withTargets(targets));
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

function targetsOf(targets: unknown[]): GitlabTarget[] {
    const result = validateConfig(withTargets(targets));
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    return result.config.sets[0].targets.map((t) => t.target as GitlabTarget);
}

describe("GitLab target config", () => {
    it("fills in documented defaults and normalises numeric ids to strings", () => {
        assert.deepEqual(targetsOf([{ type: "gitlab-project", project: 42 }, { type: "gitlab-group", group: "acme/platform" }]), [
            { type: "gitlab-project", project: "42", protected: true, masked: true, hidden: false, raw: true, environmentScope: "*" },
            { type: "gitlab-group", group: "acme/platform", protected: true, masked: true, hidden: false, raw: true, environmentScope: "*" },
        ]);
    });

    it("reports every problem of every GitLab target at once, each with its path", () => {
        assert.deepEqual(
            problemsOf([
                { type: "gitlab-project", project: "api" },
                { type: "gitlab-group" },
                { type: "gitlab-project", project: "acme/api.git", names: { secretAccessKey: "AWS-SECRET" } },
                { type: "gitlab-project", project: "acme/web", environmentScope: "/production" },
                { type: "gitlab-project", project: "acme/web", environmentScope: "prod!" },
                { type: "gitlab-group", group: "acme", hidden: true, masked: false },
                { type: "gitlab-group", group: "acme/ops", variables: { AWS_ACCESS_KEY_ID: "x", "AWS-REGION": "eu-west-1" } },
                { type: "gitlab-project", project: "acme/docs", protected: "yes", maskd: true },
                { type: "gitlab-project", project: "acme/docs", description: "x".repeat(256) },
                { type: "gitlab-group", group: 0 },
            ]),
            [
                'credentials[0].targets[0].project must be a numeric project id or a full path such as "acme/api"',
                "credentials[0].targets[1].group is required",
                'credentials[0].targets[2].project must be a numeric project id or a full path such as "acme/api"',
                "credentials[0].targets[2].names.secretAccessKey must be 1-255 letters, digits and underscores (GitLab's rule for variable keys)",
                "credentials[0].targets[3].environmentScope must not begin or end with a slash or a space",
                'credentials[0].targets[4].environmentScope must be "*" or an environment name, optionally with * wildcards (letters, digits, spaces and - _ / $ { } . *)',
                "credentials[0].targets[5].masked must be true when hidden is true (GitLab hides only masked variables)",
                "credentials[0].targets[6].variables.AWS-REGION must be 1-255 letters, digits and underscores (GitLab's rule for variable keys)",
                "credentials[0].targets[7].protected must be true or false",
                "credentials[0].targets[7].maskd is not a known setting",
                "credentials[0].targets[8].description must be at most 255 characters",
                'credentials[0].targets[9].group must be a numeric group id or a full path such as "acme" or "acme/platform"',
            ],
        );
    });

    it("reports an id YAML could not read exactly together with the target's other problems", () => {
        assert.deepEqual(
            problemsOf([
                { type: "gitlab-group", group: 1.5, hidden: true, masked: false },
                { type: "gitlab-project", project: 12345678901234567890, environmentScope: "prod!" },
                { type: "gitlab-project", project: "12345678901234567890" },
            ]),
            [
                'credentials[0].targets[0].group is a number with a fraction (1.5): write a numeric id, or a path in quotes (group: "1.5")',
                "credentials[0].targets[0].masked must be true when hidden is true (GitLab hides only masked variables)",
                'credentials[0].targets[1].project is a number too large to be read exactly (12345678901234567000): write the id in quotes (project: "<id>")',
                'credentials[0].targets[1].environmentScope must be "*" or an environment name, optionally with * wildcards (letters, digits, spaces and - _ / $ { } . *)',
            ],
        );
    });

    it("rejects a project variable of one set that shadows half of another set's group pair", () => {
        const result = validateConfig({
            credentials: [
                { name: "group", targets: [{ type: "gitlab-group", group: "acme" }] },
                {
                    name: "api",
                    targets: [
                        { type: "gitlab-project", project: "acme/platform/api", environmentScope: "production", names: { secretAccessKey: "API_SECRET" } },
                        { type: "gitlab-group", group: "ACME/platform", environmentScope: "review/*", names: { accessKeyId: "AWS_SECRET_ACCESS_KEY", secretAccessKey: "AWS_ACCESS_KEY_ID" } },
                    ],
                },
            ],
        });
        assert.equal(result.ok, false);
        if (!result.ok) {
            assert.deepEqual(result.problems, [
                "credentials[1].targets[0] (gitlab project acme/platform/api environment scope production) writes AWS_ACCESS_KEY_ID, which takes precedence in its jobs over the variable of the same key from credentials[0].targets[0] (gitlab group acme), but not AWS_SECRET_ACCESS_KEY: jobs there would read the access key id of one key and the secret of another. Give the target both keys of the pair (names.accessKeyId and names.secretAccessKey) or neither.",
                "credentials[1].targets[1] (gitlab group ACME/platform environment scope review/*) writes AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which take precedence in its jobs over the variables of the same keys from credentials[0].targets[0] (gitlab group acme), but each for the other half of the key: jobs there would read the access key id of one key and the secret of another. Use each key for the same half as the other target does, or other keys.",
            ]);
        }
    });

    it("accepts overrides that keep pairs whole: both keys, the same set, scopes that never meet, numeric ids", () => {
        const result = validateConfig({
            credentials: [
                { name: "group", targets: [{ type: "gitlab-group", group: "acme", environmentScope: "production" }, { type: "gitlab-project", project: "acme/web", names: { secretAccessKey: "WEB_SECRET" } }] },
                {
                    name: "api",
                    targets: [
                        { type: "gitlab-project", project: "acme/api" },
                        { type: "gitlab-project", project: "acme/ops", environmentScope: "staging", names: { secretAccessKey: "OPS_SECRET" } },
                        { type: "gitlab-project", project: 42, names: { secretAccessKey: "ID42_SECRET" } },
                    ],
                },
            ],
        });
        assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    });

    it("rejects a plain variable that reuses a key variable's name", () => {
        assert.deepEqual(problemsOf([{ type: "gitlab-group", group: "acme/ops", variables: { AWS_ACCESS_KEY_ID: "x" } }]), [
            "credentials[0].targets[0].variables.AWS_ACCESS_KEY_ID is already the key of an access key variable: choose another key",
        ]);
    });

    it("rejects two targets writing one key in one scope (paths compare case-insensitively), but not two scopes", () => {
        assert.deepEqual(
            problemsOf([
                { type: "gitlab-project", project: "acme/api" },
                { type: "gitlab-project", project: "acme/api", environmentScope: "production" },
                { type: "gitlab-project", project: "ACME/api", names: { accessKeyId: "KEY_ID", secretAccessKey: "AWS_SECRET_ACCESS_KEY" } },
            ]),
            [
                "credentials[0].targets[2] writes gitlab project acme/api variable AWS_SECRET_ACCESS_KEY environment scope *, which credentials[0].targets[0] already writes",
            ],
        );
    });

    it("accepts every key GitLab accepts and rejects every other", () => {
        const keyChar = fc.constantFrom(..."ABCXYZabcxyz0189_-.$ é".split(""));
        fc.assert(
            fc.property(fc.string({ unit: keyChar, minLength: 1, maxLength: 20 }), (key) => {
                const result = validateConfig(withTargets([{ type: "gitlab-project", project: "acme/api", names: { accessKeyId: key, secretAccessKey: "SECRET_KEY_NAME_THAT_DIFFERS" } }]));
                assert.equal(result.ok, /^[A-Za-z0-9_]+$/.test(key) && key !== "SECRET_KEY_NAME_THAT_DIFFERS");
            }),
        );
    });
});
