import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as statusproto from "@pulumi/pulumi/proto/status_pb";
import sodium from "libsodium-wrappers";
import { startGithubFake, type GithubFake } from "./engine/github-fake";
import { githubProviderBinary } from "./engine/github-provider";

/**
 * The fake GitHub API answers as GitHub does for the calls the GitHub provider makes: these tests
 * drive it the way a GitHub client does (fetch the scope's public key, seal the value, PUT it).
 */

let gh: GithubFake;
const token = "ghp_test";

async function call(method: string, path: string, body?: unknown, auth = token) {
    const res = await fetch(new URL(path.replace(/^\//, ""), gh.apiUrl), {
        method,
        headers: { authorization: `Bearer ${auth}`, accept: "application/vnd.github+json", ...(body ? { "content-type": "application/json" } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

/** What go-github users do: crypto_box_seal with the scope's public key, base64 encoded. */
async function sealFor(publicKeyPath: string, value: string) {
    const key = await call("GET", publicKeyPath);
    assert.equal(key.status, 200);
    const pk = sodium.from_base64(key.body!.key as string, sodium.base64_variants.ORIGINAL);
    const sealed = sodium.crypto_box_seal(sodium.from_string(value), pk);
    return { key_id: key.body!.key_id as string, encrypted_value: sodium.to_base64(sealed, sodium.base64_variants.ORIGINAL) };
}

before(async () => {
    await sodium.ready;
    gh = await startGithubFake({
        token,
        repositories: ["acme/api", "acme/web", { fullName: "acme/deploy", environments: ["production"] }],
    });
});
after(() => gh.stop());

describe("fake GitHub API", () => {
    it("serves the provider's configure and repository lookups, 404 for unknown ones", async () => {
        assert.equal((await call("GET", "/orgs/acme")).body!.login, "acme");
        assert.equal((await call("GET", "/orgs/nobody")).status, 404);
        assert.equal((await call("GET", "/user")).body!.login, "ci-bot");
        const repo = await call("GET", "/repos/acme/api");
        assert.equal(repo.body!.id, gh.repositoryId("acme/api"));
        assert.equal(repo.body!.full_name, "acme/api");
        const missing = await call("GET", "/repos/acme/nope");
        assert.equal(missing.status, 404);
        assert.equal(missing.body!.message, "Not Found");
        assert.equal((await call("PUT", "/repos/acme/nope/actions/secrets/X", { key_id: "1", encrypted_value: "AA==" })).status, 404);
    });

    it("refuses a wrong token with 401 Bad credentials", async () => {
        const r = await call("GET", "/repos/acme/api", undefined, "wrong");
        assert.equal(r.status, 401);
        assert.equal(r.body!.message, "Bad credentials");
    });

    it("opens a repository secret sealed to its public key: 201, then 204 on update, then delete", async () => {
        const put = await call("PUT", "/repos/acme/api/actions/secrets/aws_secret_access_key", await sealFor("/repos/acme/api/actions/secrets/public-key", "s3cr3t/one+"));
        assert.equal(put.status, 201);
        assert.equal(gh.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), "s3cr3t/one+");
        const meta = await call("GET", "/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY");
        assert.equal(meta.body!.name, "AWS_SECRET_ACCESS_KEY");
        assert.match(meta.body!.updated_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        assert.equal(meta.body!.value, undefined, "GitHub never returns a secret's value");

        const update = await call("PUT", "/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY", await sealFor("/repos/acme/api/actions/secrets/public-key", "two"));
        assert.equal(update.status, 204);
        assert.equal(gh.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), "two");
        assert.equal(gh.secret("repo:acme/api", "AWS_SECRET_ACCESS_KEY")!.writes, 2);

        assert.equal((await call("DELETE", "/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY")).status, 204);
        assert.equal(gh.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), undefined);
        assert.equal((await call("GET", "/repos/acme/api/actions/secrets/AWS_SECRET_ACCESS_KEY")).status, 404);
    });

    it("refuses a value sealed to another scope's key, keeping the old value", async () => {
        gh.seedSecret("repo:acme/web", "TOKEN", "old");
        const sealedForDependabot = await sealFor("/repos/acme/web/dependabot/secrets/public-key", "new");
        const r = await call("PUT", "/repos/acme/web/actions/secrets/TOKEN", sealedForDependabot);
        assert.equal(r.status, 422);
        assert.equal(gh.secretValue("repo:acme/web", "TOKEN"), "old");
        assert.equal((await call("PUT", "/repos/acme/web/dependabot/secrets/TOKEN", sealedForDependabot)).status, 201);
        assert.equal(gh.secretValue("dependabot:acme/web", "TOKEN"), "new");
    });

    it("keeps environment secrets by repository id and 404s unknown environments", async () => {
        const id = gh.repositoryId("acme/deploy")!;
        const body = await sealFor(`/repositories/${id}/environments/production/secrets/public-key`, "env-value");
        assert.equal((await call("PUT", `/repositories/${id}/environments/production/secrets/AWS_ACCESS_KEY_ID`, body)).status, 201);
        assert.equal(gh.secretValue("env:acme/deploy:production", "AWS_ACCESS_KEY_ID"), "env-value");
        assert.equal((await call("GET", "/repos/acme/deploy/environments/production/secrets/AWS_ACCESS_KEY_ID")).status, 200);
        assert.equal((await call("GET", `/repositories/${id}/environments/staging/secrets/public-key`)).status, 404);
        assert.equal(gh.secretValue("repo:acme/deploy", "AWS_ACCESS_KEY_ID"), undefined, "an environment secret is not a repository secret");
    });

    it("clears an organization secret's selection when an update omits selected_repository_ids", async () => {
        const api = gh.repositoryId("acme/api")!;
        const web = gh.repositoryId("acme/web")!;
        const first = { ...(await sealFor("/orgs/acme/actions/secrets/public-key", "k1")), visibility: "selected", selected_repository_ids: [api] };
        assert.equal((await call("PUT", "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID", first)).status, 201);
        assert.deepEqual(gh.selectedRepositories("secret", "acme", "AWS_ACCESS_KEY_ID"), ["acme/api"]);

        assert.equal((await call("PUT", "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID/repositories", { selected_repository_ids: [api, web] })).status, 204);
        const listed = await call("GET", "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID/repositories");
        assert.deepEqual(
            (listed.body!.repositories as { full_name: string }[]).map((r) => r.full_name),
            ["acme/api", "acme/web"],
        );

        const valueOnly = { ...(await sealFor("/orgs/acme/actions/secrets/public-key", "k2")), visibility: "selected" };
        assert.equal((await call("PUT", "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID", valueOnly)).status, 204);
        assert.equal(gh.secretValue("org:acme", "AWS_ACCESS_KEY_ID"), "k2");
        assert.deepEqual(gh.selectedRepositories("secret", "acme", "AWS_ACCESS_KEY_ID"), []);
        assert.equal((await call("GET", "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID")).body!.visibility, "selected");
    });

    it("creates variables once (409 on a second POST), updates them with PATCH", async () => {
        assert.equal((await call("POST", "/repos/acme/api/actions/variables", { name: "aws_region", value: "eu-west-1" })).status, 201);
        assert.equal((await call("POST", "/repos/acme/api/actions/variables", { name: "AWS_REGION", value: "x" })).status, 409);
        assert.equal((await call("PATCH", "/repos/acme/api/actions/variables/AWS_REGION", { name: "AWS_REGION", value: "us-east-1" })).status, 204);
        assert.equal(gh.variableValue("repo:acme/api", "aws_region"), "us-east-1");
        assert.equal((await call("GET", "/repos/acme/api/actions/variables/AWS_REGION")).body!.value, "us-east-1");
        assert.equal((await call("POST", "/orgs/acme/actions/variables", { name: "R", value: "v", visibility: "selected", selected_repository_ids: [gh.repositoryId("acme/web")] })).status, 201);
        assert.deepEqual(gh.selectedRepositories("variable", "acme", "R"), ["acme/web"]);
        assert.ok(gh.inventory().includes("repo:acme/api variable AWS_REGION"));
    });

    it("injects failures per endpoint: a status a given number of times, a delay, then answers normally", async () => {
        const path = "/repos/acme/api/actions/secrets/FLAKY";
        const body = await sealFor("/repos/acme/api/actions/secrets/public-key", "v");
        gh.fail({ method: "PUT", path, status: 500, times: 2 });
        gh.fail({ method: "PUT", path: /\/secrets\/SLOW$/, delayMs: 150 });
        assert.equal((await call("PUT", path, body)).status, 500);
        assert.equal((await call("PUT", path, body)).status, 500);
        assert.equal(gh.secretValue("repo:acme/api", "FLAKY"), undefined, "an injected failure writes nothing");
        assert.equal((await call("PUT", path, body)).status, 201);
        const started = Date.now();
        assert.equal((await call("PUT", "/repos/acme/api/actions/secrets/SLOW", body)).status, 201);
        assert.ok(Date.now() - started >= 140);
        const remove = gh.fail({ path: /^\/repos\/acme\/api\/actions\/secrets\//, status: 422, message: "nope", times: Infinity });
        const r = await call("GET", "/repos/acme/api/actions/secrets/SLOW");
        assert.deepEqual([r.status, r.body!.message], [422, "nope"]);
        remove();
        assert.equal((await call("GET", "/repos/acme/api/actions/secrets/SLOW")).status, 200);
        assert.ok(gh.requests.some((q) => q.injected && q.status === 500 && q.path === path));
    });
});

describe("test-only GitHub plugin against the fake", () => {
    let plugin: ChildProcess;
    let client: InstanceType<typeof provrpc.ResourceProviderClient>;
    let fake: GithubFake;
    const urn = (type: string, name: string) => `urn:pulumi:dev::proj::${type}::${name}`;
    const secretUrn = urn("github:index/actionsSecret:ActionsSecret", "key");

    function rpc<Req, Res>(method: string, req: Req): Promise<Res> {
        return new Promise((resolve, reject) =>
            (client as any)[method](req, (err: Error | null, res: Res) => (err ? reject(err) : resolve(res))),
        );
    }
    const struct = (o: Record<string, unknown>) => structproto.Struct.fromJavaScript(o as any);

    async function check(type: string, news: Record<string, unknown>) {
        const req = new provproto.CheckRequest().setUrn(urn(type, "r")).setNews(struct(news)).setOlds(struct({}));
        const res = await rpc<provproto.CheckRequest, provproto.CheckResponse>("check", req);
        return res.getFailuresList().map((f) => `${f.getProperty()}: ${f.getReason()}`);
    }
    async function create(u: string, props: Record<string, unknown>) {
        const res = await rpc<provproto.CreateRequest, provproto.CreateResponse>("create", new provproto.CreateRequest().setUrn(u).setProperties(struct(props)));
        return { id: res.getId(), outs: res.getProperties()!.toJavaScript() as Record<string, any> };
    }
    async function diff(u: string, id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
        const res = await rpc<provproto.DiffRequest, provproto.DiffResponse>("diff", new provproto.DiffRequest().setUrn(u).setId(id).setOlds(struct(olds)).setNews(struct(news)));
        return { changes: res.getChanges(), replaces: res.getReplacesList(), deleteBeforeReplace: res.getDeletebeforereplace() };
    }
    async function update(u: string, id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
        const res = await rpc<provproto.UpdateRequest, provproto.UpdateResponse>("update", new provproto.UpdateRequest().setUrn(u).setId(id).setOlds(struct(olds)).setNews(struct(news)));
        return res.getProperties()!.toJavaScript() as Record<string, any>;
    }
    const D = provproto.DiffResponse.DiffChanges;

    before(async () => {
        fake = await startGithubFake({ token, repositories: ["acme/api", "acme/web", { fullName: "acme/deploy", environments: ["production"] }] });
        const binary = await githubProviderBinary();
        plugin = spawn(binary, [], { env: { ...process.env, GITHUB_RIG_TIME_SCALE: "0.01" }, stdio: ["ignore", "pipe", "inherit"] });
        const port = await new Promise<string>((resolve, reject) => {
            plugin.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
            plugin.once("exit", (code) => reject(new Error(`plugin exited ${code}`)));
        });
        client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        const configure = new provproto.ConfigureRequest().setArgs(struct({ baseUrl: fake.url, token, owner: "acme" }));
        await rpc("configure", configure);
    });
    after(async () => {
        client?.close();
        plugin?.kill();
        await fake?.stop();
    });

    it("checks required inputs and secret names like the provider", async () => {
        assert.deepEqual(await check("github:index/actionsSecret:ActionsSecret", { repository: "api", secretName: "GITHUB_X", value: "v" }), [
            "secretName: secret names must not start with the GITHUB_ prefix",
        ]);
        assert.deepEqual(await check("github:index/actionsSecret:ActionsSecret", { secretName: "A", value: "v" }), ["repository: Missing required property 'repository'"]);
    });

    it("writes a repository secret the fake can open, with the repository id and Go-formatted timestamps", async () => {
        const { id, outs } = await create(secretUrn, { repository: "api", secretName: "AWS_SECRET_ACCESS_KEY", value: "k1" });
        assert.equal(id, "api:AWS_SECRET_ACCESS_KEY");
        assert.equal(fake.secretValue("repo:acme/api", "AWS_SECRET_ACCESS_KEY"), "k1");
        assert.equal(outs.repositoryId, fake.repositoryId("acme/api"));
        assert.match(outs.updatedAt as string, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
        assert.ok(!JSON.stringify(fake.requests).includes("k1"), "requests never record values");
    });

    it("updates a changed value in place and replaces on a new secret name", async () => {
        const olds = { id: "api:S", repository: "api", secretName: "S", value: "a", keyId: "1", repositoryId: fake.repositoryId("acme/api") };
        assert.deepEqual(await diff(secretUrn, "api:S", olds, { repository: "api", secretName: "S", value: "a" }), { changes: D.DIFF_NONE, replaces: [], deleteBeforeReplace: false });
        assert.deepEqual(await diff(secretUrn, "api:S", olds, { repository: "api", secretName: "S", value: "b" }), { changes: D.DIFF_SOME, replaces: [], deleteBeforeReplace: false });
        assert.deepEqual((await diff(secretUrn, "api:S", olds, { repository: "api", secretName: "T", value: "a" })).replaces, ["secretName"]);
        const envUrn = urn("github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret", "e");
        const envOlds = { repository: "deploy", environment: "production", secretName: "S", value: "a", repositoryId: fake.repositoryId("acme/deploy") };
        const { repositoryId: _computed, ...envNews } = envOlds;
        assert.deepEqual(await diff(envUrn, "x", envOlds, { ...envNews, environment: "staging" }), {
            changes: D.DIFF_SOME,
            replaces: ["environment"],
            deleteBeforeReplace: true,
        });
    });

    it("a failed update is a partial failure holding the new value, so the next diff finds nothing to write", async () => {
        const { id, outs } = await create(secretUrn, { repository: "api", secretName: "AWS_ACCESS_KEY_ID", value: "AKIA1" });
        fake.fail({ method: "PUT", path: "/repos/acme/api/actions/secrets/AWS_ACCESS_KEY_ID", status: 500, times: 4 });
        const news = { repository: "api", secretName: "AWS_ACCESS_KEY_ID", value: "AKIA2" };
        const err = await update(secretUrn, id, outs, news).then(
            () => assert.fail("update should fail"),
            (e: grpc.ServiceError) => e,
        );
        assert.match(err.details, /PUT http:\/\/127\.0\.0\.1:\d+\/api\/v3\/repos\/acme\/api\/actions\/secrets\/AWS_ACCESS_KEY_ID: 500 Server Error/);
        const status = statusproto.Status.deserializeBinary(err.metadata.get("grpc-status-details-bin")[0] as Buffer);
        const detail = provproto.ErrorResourceInitFailed.deserializeBinary(status.getDetailsList()[0].getValue_asU8());
        const saved = detail.getProperties()!.toJavaScript() as Record<string, unknown>;
        assert.equal(saved.value, "AKIA2");
        assert.equal(fake.secretValue("repo:acme/api", "AWS_ACCESS_KEY_ID"), "AKIA1", "GitHub still holds the old value");
        assert.equal((await diff(secretUrn, id, saved, news)).changes, D.DIFF_NONE);
    });

    it("rewriting an organization secret's value drops its selected repositories", async () => {
        const orgUrn = urn("github:index/actionsOrganizationSecret:ActionsOrganizationSecret", "o");
        const reposUrn = urn("github:index/actionsOrganizationSecretRepositories:ActionsOrganizationSecretRepositories", "o");
        const { id, outs } = await create(orgUrn, { secretName: "AWS_ACCESS_KEY_ID", visibility: "selected", value: "AKIA1" });
        const api = fake.repositoryId("acme/api")!;
        const repos = await create(reposUrn, { secretName: "AWS_ACCESS_KEY_ID", selectedRepositoryIds: [api] });
        assert.deepEqual(fake.selectedRepositories("secret", "acme", "AWS_ACCESS_KEY_ID"), ["acme/api"]);
        await update(orgUrn, id, outs, { secretName: "AWS_ACCESS_KEY_ID", visibility: "selected", value: "AKIA2" });
        assert.equal(fake.secretValue("org:acme", "AWS_ACCESS_KEY_ID"), "AKIA2");
        assert.deepEqual(fake.selectedRepositories("secret", "acme", "AWS_ACCESS_KEY_ID"), []);
        assert.equal((await diff(reposUrn, repos.id, repos.outs, { secretName: "AWS_ACCESS_KEY_ID", selectedRepositoryIds: [api] })).changes, D.DIFF_NONE);
    });

    it("answers getRepository with the repository id", async () => {
        const req = new provproto.InvokeRequest().setTok("github:index/getRepository:getRepository").setArgs(struct({ fullName: "acme/web" }));
        const res = await rpc<provproto.InvokeRequest, provproto.InvokeResponse>("invoke", req);
        assert.equal(res.getReturn()!.toJavaScript().repoId, fake.repositoryId("acme/web"));
    });
});
