/**
 * What the secret stores declare, judged by what the real providers and engine do with it
 * (issue 9): organization selections on the secret itself, delete-first replacements, names that
 * survive a set rename or a change of case, GitHub App authentication from the environment.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { reveal } from "./support/mocks";
import { runSettled, type SettledRun } from "./support/run-settled";

const repoIds = { "acme/web": 101, "acme/worker": 102 };
const orgTarget = { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web", "worker"], variables: { AWS_REGION: "eu-west-1" } };
const repoTarget = { type: "github-repository", repository: "acme/api", variables: { AWS_REGION: "eu-west-1" } };
const envTarget = { type: "github-environment", repository: "acme/api", environment: "production" };
const depTarget = { type: "github-dependabot", repository: "acme/api" };
const gitlabTarget = { type: "gitlab-project", project: "acme/api", variables: { AWS_REGION: "eu-west-1" } };

const run = (credentials: unknown[], env: Record<string, string> = {}) => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    return runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds } }).finally(() => {
        for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    });
};

const storeResources = (r: SettledRun) => r.registrations.filter((x) => /^github:index\/(actions|dependabot)\w*:/i.test(x.type) || (x.type === "pulumi-nodejs:dynamic:Resource" && reveal(x.inputs).plain.kind === "gitlab-variable"));

describe("organization secrets with visibility `selected`", () => {
    test("the selected repository ids are on the secret and the variable themselves, so an update keeps them", async () => {
        const r = await run([{ name: "deploy", targets: [orgTarget] }]);
        assert.ok(r.rotation?.ok, String(r.error ?? (r.rotation as any)?.error));
        const secrets = r.registrations.filter((x) => x.type === "github:index/actionsOrganizationSecret:ActionsOrganizationSecret");
        assert.equal(secrets.length, 2);
        for (const s of secrets) assert.deepEqual(s.inputs.selectedRepositoryIds, [101, 102], `${s.name} lacks its repositories`);
        const [variable] = r.registrations.filter((x) => x.type === "github:index/actionsOrganizationVariable:ActionsOrganizationVariable");
        assert.deepEqual(variable.inputs.selectedRepositoryIds, [101, 102]);
        // The separate selections stay declared: deleting one would set the selection to [].
        assert.equal(r.registrations.filter((x) => /OrganizationSecretRepositories:/.test(x.type)).length, 2);
    });
});

describe("replacements never delete what they just wrote", () => {
    test("every secret and variable resource is replaced delete-first", async () => {
        const r = await run([{ name: "deploy", targets: [repoTarget, envTarget, orgTarget, depTarget, gitlabTarget] }]);
        assert.ok(r.rotation?.ok, String(r.error ?? (r.rotation as any)?.error));
        const resources = storeResources(r);
        assert.ok(resources.length >= 12, `only ${resources.length} store resources`);
        for (const x of resources) assert.equal(r.resourceOptions.get(x.name)?.deleteBeforeReplace, true, `${x.type} ${x.name} is replaced create-first`);
    });

    test("renaming a set keeps every target resource's name (its URN), and existing stacks carry their resources over by alias", async () => {
        const a = await run([{ name: "deploy", targets: [repoTarget, gitlabTarget] }]);
        const b = await run([{ name: "deployers", targets: [repoTarget, gitlabTarget] }]);
        const names = (r: SettledRun) => storeResources(r).map((x) => x.name).sort();
        assert.deepEqual(names(b), names(a));
        for (const x of storeResources(a)) {
            assert.ok(!x.name.startsWith("deploy-"), `${x.name} still carries the set name`);
            const aliases = a.resourceOptions.get(x.name)?.aliases ?? [];
            assert.ok(aliases.some((n) => n.startsWith("deploy-")), `${x.name} has no alias from its earlier name: ${JSON.stringify(aliases)}`);
        }
    });

    test("a change of case in a GitHub secret name keeps the resource (GitHub names are case-insensitive)", async () => {
        const a = await run([{ name: "deploy", targets: [{ ...repoTarget, names: { accessKeyId: "aws_key_id", secretAccessKey: "aws_secret" } }] }]);
        const b = await run([{ name: "deploy", targets: [{ ...repoTarget, names: { accessKeyId: "AWS_KEY_ID", secretAccessKey: "AWS_SECRET" } }] }]);
        const secretNames = (r: SettledRun) => r.registrations.filter((x) => x.type === "github:index/actionsSecret:ActionsSecret").map((x) => x.name).sort();
        assert.deepEqual(secretNames(b), secretNames(a));
        // The new name is written, by a delete-first replacement of the same resource.
        assert.deepEqual(r2names(b), ["AWS_KEY_ID", "AWS_SECRET"]);
    });
});

const r2names = (r: SettledRun) =>
    r.registrations
        .filter((x) => x.type === "github:index/actionsSecret:ActionsSecret")
        .map((x) => x.inputs.secretName as string)
        .sort();

describe("GitHub App authentication from the environment", () => {
    const appEnv = { GITHUB_APP_ID: "123456", GITHUB_APP_INSTALLATION_ID: "7890123", GITHUB_APP_PEM_FILE: "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----" };

    test("with the App variables set and no token, the explicit provider carries an empty `appAuth` block, and no key material", async () => {
        const r = await run([{ name: "deploy", targets: [repoTarget] }], appEnv);
        const [provider] = r.registrations.filter((x) => x.type === "pulumi:providers:github");
        const appAuth = typeof provider.inputs.appAuth === "string" ? JSON.parse(provider.inputs.appAuth) : provider.inputs.appAuth;
        assert.deepEqual(appAuth, {});
        assert.ok(!JSON.stringify(provider.inputs).includes("not-a-key"), "the provider's inputs carry the App's private key");
    });

    test("without them, no `appAuth` block (the provider uses GITHUB_TOKEN)", async () => {
        const r = await run([{ name: "deploy", targets: [repoTarget] }]);
        const [provider] = r.registrations.filter((x) => x.type === "pulumi:providers:github");
        assert.equal(provider.inputs.appAuth, undefined);
    });
});

describe("dynamic resources do not depend on the stack's configuration", () => {
    test("checks and GitLab variables use one explicit dynamic provider without inputs, so a request flag is no change", async () => {
        const credentials = [{ name: "deploy", targets: [repoTarget, gitlabTarget] }];
        const first = await runSettled({ config: { credentials }, now: "2026-11-01T00:00:00Z", world: { repoIds } });
        assert.ok(first.rotation?.ok);
        const before = first.rotation.value;
        const iam = { "ci-deploy": before.sets.deploy.keys.map((k: any) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createdAt })) };
        // Two no-op runs an hour apart; the second still carries the flags of a request already handled.
        const handled = { ...before, sets: { deploy: { ...before.sets.deploy, lastRequest: "incident-1" } } };
        const a = await runSettled({ config: { credentials }, now: "2026-11-01T01:00:00Z", world: { repoIds, stackOutputs: { rotation: handled }, accessKeys: iam } });
        const b = await runSettled({ config: { credentials, request: "incident-1", emergency: "true" }, now: "2026-11-01T02:00:00Z", world: { repoIds, stackOutputs: { rotation: handled }, accessKeys: iam } });
        assert.equal(b.error, undefined, b.error?.message);
        assert.equal((b.sets as any)?.value?.deploy?.step, "none");
        const [provider] = b.registrations.filter((x) => x.type === "pulumi:providers:pulumi-nodejs");
        assert.ok(provider, "no explicit dynamic provider");
        assert.deepEqual(provider.inputs, {}, "the dynamic provider's inputs carry configuration");
        const dynamic = b.registrations.filter((x) => x.type === "pulumi-nodejs:dynamic:Resource");
        assert.ok(dynamic.length >= 3);
        for (const x of dynamic) assert.match(x.provider ?? "", /pulumi:providers:pulumi-nodejs::ci-key-rotation-dynamic::/, `${x.name} uses the default dynamic provider`);
        // Nothing the engine would compare differs between the two runs.
        const view = (r: SettledRun) => r.registrations.map((x) => [x.type, x.name, JSON.stringify(x.inputs), x.provider]).sort();
        assert.deepEqual(view(b), view(a));
    });

    test("the GitLab token in config still reaches the GitLab provider, as a secret, and nothing else does", async () => {
        const r = await runSettled({
            config: { credentials: [{ name: "deploy", targets: [gitlabTarget] }], "gitlab:token": "glpat-not-a-real-token", "gitlab:baseUrl": "https://gitlab.example.com/api/v4/" },
            now: "2026-11-01T00:00:00Z",
        });
        const [provider] = r.registrations.filter((x) => x.type === "pulumi:providers:pulumi-nodejs");
        const { plain, secretPaths } = reveal(provider.inputs);
        assert.deepEqual(plain, { "gitlab:token": "glpat-not-a-real-token", "gitlab:baseUrl": "https://gitlab.example.com/api/v4/" });
        assert.deepEqual(secretPaths.sort(), ["gitlab:baseUrl", "gitlab:token"]);
    });
});
