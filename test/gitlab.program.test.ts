import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fakeSecretFor, installMocks, keyIdFor, setConfig, settle, unwrap, type Registration } from "./support/mocks";

// The program with GitLab targets, under mocks: what it registers, and that the key stays secret.

const CANARY_TOKEN = "glpat-CANARY-program-token";
const mocks = installMocks();
const savedToken = process.env.GITLAB_TOKEN;

const deps = {
    observer: { listKeys: async () => [], lastUse: async () => ({}) },
    env: { CI_KEY_ROTATION_NOW: "2026-11-23T12:00:00Z" },
};

let outputs: Record<string, pulumi.Output<unknown>>;
let variables: Registration[];

before(async () => {
    process.env.GITLAB_TOKEN = CANARY_TOKEN;
    setConfig(
        {
            "gitlab:token": CANARY_TOKEN,
            credentials: [
                {
                    name: "deploy",
                    targets: [
                        { type: "gitlab-project", project: "acme/api", environmentScope: "production", variables: { AWS_REGION: "eu-west-1" } },
                        {
                            type: "gitlab-group",
                            group: 7,
                            names: { accessKeyId: "CI_AWS_KEY_ID", secretAccessKey: "CI_AWS_SECRET" },
                            protected: false,
                            hidden: true,
                            description: "Deploy key of every acme/platform project",
                        },
                    ],
                },
            ],
        },
        ["gitlab:token"],
    );
    const program = require("../index") as typeof import("../index");
    outputs = (await program(deps)) as unknown as Record<string, pulumi.Output<unknown>>;
    await unwrap(outputs.rotation);
    await settle();
    variables = mocks.registrations.filter((r) => r.type === "pulumi-nodejs:dynamic:Resource" && r.inputs.kind === "gitlab-variable");
});

after(() => {
    if (savedToken === undefined) delete process.env.GITLAB_TOKEN;
    else process.env.GITLAB_TOKEN = savedToken;
});

/** Inputs as the engine would store them: the provider code left out, secrets unwrapped. */
function plainInputs(r: Registration): Record<string, unknown> {
    const { __provider, ...rest } = r.inputs;
    return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, pulumi.runtime.unwrapRpcSecret(v)]));
}

describe("program with GitLab targets", () => {
    const keyId = keyIdFor("deploy-key-1");
    const secret = fakeSecretFor("deploy-key-1");
    const project = {
        kind: "gitlab-variable",
        scope: "project",
        owner: "acme/api",
        environmentScope: "production",
        protected: true,
        raw: true,
        target: "`credentials[0].targets[0]` (gitlab project acme/api environment scope production)",
    };
    const group = {
        kind: "gitlab-variable",
        scope: "group",
        owner: "7",
        environmentScope: "*",
        protected: false,
        raw: true,
        masked: true,
        hidden: true,
        description: "Deploy key of every acme/platform project",
        target: "`credentials[0].targets[1]` (gitlab group 7)",
    };

    it("registers one variable per key and plain variable, with exact self-describing inputs", () => {
        // Registration order follows when inputs resolve (plain values first), so compare by name.
        const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
        assert.deepEqual(
            variables.map((r) => ({ name: r.name, inputs: plainInputs(r) })).sort(byName),
            [
                {
                    name: "gitlab-project-acme-api-environment-scope-production-0094fd1a-AWS_ACCESS_KEY_ID",
                    inputs: {
                        ...project,
                        key: "AWS_ACCESS_KEY_ID",
                        value: keyId,
                        masked: true,
                        hidden: false,
                        description: 'AWS access key id of credential set "deploy", rotated by ci-key-rotation: edits here are overwritten.',
                    },
                },
                {
                    name: "gitlab-project-acme-api-environment-scope-production-0094fd1a-AWS_SECRET_ACCESS_KEY",
                    inputs: {
                        ...project,
                        key: "AWS_SECRET_ACCESS_KEY",
                        value: secret,
                        masked: true,
                        hidden: false,
                        description: 'AWS secret access key of credential set "deploy", rotated by ci-key-rotation: edits here are overwritten.',
                    },
                },
                {
                    name: "gitlab-project-acme-api-environment-scope-production-0094fd1a-AWS_REGION",
                    inputs: {
                        ...project,
                        key: "AWS_REGION",
                        value: "eu-west-1",
                        masked: false,
                        hidden: false,
                        description: 'Set by ci-key-rotation for credential set "deploy": edits here are overwritten.',
                    },
                },
                { name: "gitlab-group-7-CI_AWS_KEY_ID", inputs: { ...group, key: "CI_AWS_KEY_ID", value: keyId } },
                { name: "gitlab-group-7-CI_AWS_SECRET", inputs: { ...group, key: "CI_AWS_SECRET", value: secret } },
            ].sort(byName),
        );
    });

    it("sends the secret access key as a secret input, and only it", () => {
        const secretInputs = variables.filter((r) => pulumi.runtime.isRpcSecret(r.inputs.value)).map((r) => r.inputs.key).sort();
        assert.deepEqual(secretInputs, ["AWS_SECRET_ACCESS_KEY", "CI_AWS_SECRET"]);
    });

    it("keeps the variables' value outputs secret", () => {
        const stored = [...(pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, { state: Record<string, unknown> }> }).getRegisteredResources().entries()]
            .filter(([urn]) => urn.includes("pulumi-nodejs:dynamic:Resource::"))
            .filter(([, r]) => pulumi.runtime.unwrapRpcSecret(r.state.value) === secret);
        assert.equal(stored.length, 2);
        for (const [urn, r] of stored) assert.ok(pulumi.runtime.isRpcSecret(r.state.value), `${urn} value must be secret`);
    });

    it("serializes the provider without the token and without the key", () => {
        for (const r of variables) {
            assert.equal(typeof r.inputs.__provider, "string");
            assert.ok(!r.inputs.__provider.includes(CANARY_TOKEN), `${r.name}: token in __provider`);
            assert.ok(!r.inputs.__provider.includes(secret), `${r.name}: key in __provider`);
        }
        assert.ok(!JSON.stringify(variables.map(plainInputs)).includes(CANARY_TOKEN), "no input carries the token");
    });

    it("lists the targets in the outputs, with no secret material", async () => {
        const sets = (await unwrap(outputs.sets)) as Record<string, { targets: string[] }>;
        assert.deepEqual(sets.deploy.targets, ["gitlab project acme/api environment scope production", "gitlab group 7"]);
        const all = JSON.stringify({ sets, rotation: await unwrap(outputs.rotation) });
        assert.ok(!all.includes(secret));
        assert.ok(!all.includes(CANARY_TOKEN));
    });
});

describe("GitlabVariable resource", () => {
    it("exposes the value as a secret Output when the input is secret", async () => {
        const { GitlabVariable } = require("../providers/gitlab/variable") as typeof import("../providers/gitlab/variable");
        const v = new GitlabVariable("direct", {
            kind: "gitlab-variable",
            scope: "project",
            owner: "42",
            key: "AWS_SECRET_ACCESS_KEY",
            value: pulumi.secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            environmentScope: "*",
            protected: true,
            masked: true,
            hidden: false,
            raw: true,
            description: "d",
            target: "`test`",
        });
        assert.equal(await pulumi.isSecret(v.value), true);
        assert.equal(await pulumi.isSecret(v.key), false);
    });
});
