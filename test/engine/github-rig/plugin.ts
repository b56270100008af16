import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as anyproto from "google-protobuf/google/protobuf/any_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as plugproto from "@pulumi/pulumi/proto/plugin_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as statusproto from "@pulumi/pulumi/proto/status_pb";
import { GithubApiError, GithubRest } from "./rest";
import { getRepository, InitError, resourceKinds, type Owner, type Props, type ResourceKind } from "./resources";

/**
 * A test-only `pulumi-resource-github` (version 6.15.0), standing in for the real provider that
 * cannot be built here (see docs/engine-suite.md, GitHub section). It speaks the provider gRPC
 * protocol itself (not `@pulumi/pulumi/provider`'s `main`, whose server ignores the configuration
 * sent to `Configure`, so an explicit provider's `baseUrl`, `owner` and `token` would be lost) and
 * implements the resource and invoke tokens ci-key-rotation uses (`resources.ts`).
 *
 * Engine-facing behaviour follows the bridge (pulumi-terraform-bridge v3.137.0, the version
 * pulumi-github v6.15.0 pins, `pkg/tfbridge/provider.go`): `DiffConfig` reports changed keys and
 * never replaces the provider (no config field of pulumi-github sets `ForcesProviderReplace`);
 * `Diff` returns a detailed diff; `Create`/`Update` honour `preview`; a failed `Update` is a partial
 * failure carrying the planned state (`initializationError`), so the engine saves the new inputs and
 * the next update finds no diff (`pkg/resource/deploy/step_generator.go`: init errors only force an
 * empty update, which the bridge answers with the old state and no API call).
 *
 * Never logs a property value; errors carry method, URL and GitHub's status and message only.
 */

const version = "6.15.0";
const secretSig = "1b47061264138c4ac30d75fd1eb44270";
const sigKey = "4dabf18193072939515e22adb298388d";
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Strips secret wrappers (the engine sends them only to providers that accept secrets). */
function plain(v: any): any {
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === "object") {
        if (v[sigKey] === secretSig) return plain(v.value);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    }
    return v;
}
const hasUnknown = (v: any): boolean => v === unknown || (Array.isArray(v) ? v.some(hasUnknown) : !!v && typeof v === "object" && Object.values(v).some(hasUnknown));
const toStruct = (o: Props) => structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(o)) as Record<string, any>);
/** Terraform's equality: null and absent agree; sets (`selectedRepositoryIds`) ignore order. */
const same = (a: any, b: any) => {
    const norm = (v: any) => (Array.isArray(v) && v.every((x) => typeof x === "number") ? [...v].sort((x, y) => x - y) : v ?? null);
    return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
};
/** Terraform Optional+Computed inputs keep their state value when the program leaves them out. */
const optionalComputed = new Set(["keyId"]);
const computedOuts = ["keyId", "repositoryId", "createdAt", "updatedAt", "remoteUpdatedAt"];

let owner: Owner | undefined;
const timeScale = Number(process.env.GITHUB_RIG_TIME_SCALE ?? "1");

function kindOf(urn: string): ResourceKind {
    const type = urn.split("::")[2]?.split("$").pop() ?? "";
    const kind = resourceKinds[type];
    if (!kind) throw new Error(`unrecognized resource type: ${type} (the test GitHub plugin implements ${Object.keys(resourceKinds).join(", ")})`);
    return kind;
}
function needOwner(): Owner {
    if (!owner) throw new Error("the GitHub provider is not configured");
    return owner;
}

/** A gRPC error; an `InitError` becomes `pulumirpc.ErrorResourceInitFailed` (a partial failure). */
function grpcError(e: unknown): Partial<grpc.StatusObject> {
    const message = e instanceof Error ? e.message : String(e);
    const metadata = new grpc.Metadata();
    if (e instanceof InitError) {
        const status = new statusproto.Status();
        status.setCode(grpc.status.UNKNOWN);
        status.setMessage(message);
        const detail = new provproto.ErrorResourceInitFailed();
        detail.setId(e.id);
        detail.setProperties(toStruct(e.properties));
        detail.setReasonsList(e.reasons);
        const any = new anyproto.Any();
        any.pack(detail.serializeBinary(), "pulumirpc.ErrorResourceInitFailed");
        status.addDetails(any);
        metadata.add("grpc-status-details-bin", Buffer.from(status.serializeBinary()));
    }
    return { code: grpc.status.UNKNOWN, details: message, metadata };
}

function unary<Req, Res>(f: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
        f(call.request).then(
            (res) => callback(null, res),
            (e) => callback(grpcError(e), null),
        );
    };
}

async function configure(args: Props, variables: Map<string, string>) {
    const get = (k: string): string | undefined => {
        const v = args[k] ?? variables.get(`github:config:${k}`);
        return v === undefined || v === null || v === "" ? undefined : String(v);
    };
    const num = (k: string, d: number) => (get(k) === undefined ? d : Number(get(k)));
    // Defaults: pulumi-github provider/resources.go (base_url and token env vars) and
    // terraform-provider-github github/provider.go (owner from GITHUB_OWNER, delays, retries).
    const baseUrl = get("baseUrl") ?? process.env.GITHUB_BASE_URL ?? "https://api.github.com/";
    const token = get("token") ?? process.env.GITHUB_TOKEN;
    let name = get("owner") ?? get("organization") ?? process.env.GITHUB_OWNER ?? process.env.GITHUB_ORGANIZATION ?? "";
    const u = new URL(baseUrl);
    if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
        throw new Error(`the test GitHub plugin only talks to a loopback GitHub; set \`github:baseUrl\` to the fake's URL (got ${u.origin})`);
    }
    // getBaseURL (github/config.go): a host other than github.com or *.ghe.com is GitHub Enterprise
    // Server, whose REST API lives under api/v3/.
    const path = u.pathname.endsWith("/") ? u.pathname : `${u.pathname}/`;
    const apiRoot = `${u.origin}${path.replace(/api\/v3\/$/, "")}api/v3/`;
    const rest = new GithubRest({
        apiRoot,
        token,
        writeDelayMs: num("writeDelayMs", 1000),
        readDelayMs: num("readDelayMs", 0),
        retryDelayMs: num("retryDelayMs", 1000),
        maxRetries: num("maxRetries", 3),
        timeScale,
    });
    if (!name && token) {
        try {
            name = (await rest.call("GET", "user")).login as string;
        } catch (e) {
            throw new Error(`owner cannot be found by token: ${(e as Error).message}`);
        }
    }
    let isOrganization = false;
    if (name) {
        try {
            await rest.call("GET", `orgs/${encodeURIComponent(name)}`);
            isOrganization = true;
        } catch (e) {
            if (!(e instanceof GithubApiError && e.status === 404)) throw new Error(`failed to lookup organization "${name}": ${(e as Error).message}`);
        }
    }
    owner = { rest, name, isOrganization, timeScale };
}

function diffResponse(kind: ResourceKind | undefined, changed: string[], replaces: string[], olds: Props, news: Props) {
    const resp = new provproto.DiffResponse();
    resp.setChanges(changed.length ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE);
    resp.setDiffsList(changed);
    resp.setReplacesList(replaces);
    resp.setDeletebeforereplace(!!kind?.deleteBeforeReplace && replaces.length > 0);
    resp.setHasdetaileddiff(true);
    const detailed = resp.getDetaileddiffMap();
    const K = provproto.PropertyDiff.Kind;
    for (const k of changed) {
        const d = new provproto.PropertyDiff();
        const replace = replaces.includes(k);
        const kindOfChange = olds[k] === undefined ? (replace ? K.ADD_REPLACE : K.ADD) : news[k] === undefined ? (replace ? K.DELETE_REPLACE : K.DELETE) : replace ? K.UPDATE_REPLACE : K.UPDATE;
        d.setKind(kindOfChange);
        d.setInputdiff(k !== "updatedAt");
        detailed.set(k, d);
    }
    return resp;
}

const server: Partial<provrpc.IResourceProviderServer> = {
    getPluginInfo: unary(async () => new plugproto.PluginInfo().setVersion(version)),
    getSchema: unary(async () => new provproto.GetSchemaResponse().setSchema(JSON.stringify({ name: "github", version }))),
    attach: unary(async () => new emptyproto.Empty()),
    cancel: unary(async () => new emptyproto.Empty()),
    checkConfig: unary(async (req: provproto.CheckRequest) => {
        const resp = new provproto.CheckResponse();
        resp.setInputs(req.getNews());
        return resp;
    }),
    diffConfig: unary(async (req: provproto.DiffRequest) => {
        const olds = plain(req.getOldInputs()?.toJavaScript() ?? req.getOlds()?.toJavaScript() ?? {});
        const news = plain(req.getNews()?.toJavaScript() ?? {});
        const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].filter((k) => k !== "version" && !same(olds[k], news[k]));
        return diffResponse(undefined, keys, [], olds, news);
    }),
    configure: unary(async (req: provproto.ConfigureRequest) => {
        const variables = new Map<string, string>(req.getVariablesMap().toArray());
        const args = plain(req.getArgs()?.toJavaScript() ?? {});
        if (!hasUnknown(args)) await configure(args, variables);
        const resp = new provproto.ConfigureResponse();
        // Secrets are unwrapped by the engine; it marks outputs named like secret inputs, and the
        // SDK lists `value` in additionalSecretOutputs.
        resp.setAcceptsecrets(false);
        resp.setSupportspreview(true);
        resp.setAcceptresources(false);
        resp.setAcceptoutputs(false);
        return resp;
    }),
    check: unary(async (req: provproto.CheckRequest) => {
        const kind = kindOf(req.getUrn());
        const news = plain(req.getNews()?.toJavaScript() ?? {});
        const failures = kind.required
            .filter((k) => news[k] === undefined || news[k] === null)
            .map((k) => ({ property: k, reason: `Missing required property '${k}'` }));
        // During preview a value may be unknown: its checks wait for it.
        failures.push(...(kind.check?.(news) ?? []).filter((f) => !hasUnknown(news[f.property])));
        const resp = new provproto.CheckResponse();
        resp.setInputs(req.getNews());
        resp.setFailuresList(
            failures.map((f) => {
                const c = new provproto.CheckFailure();
                c.setProperty(f.property);
                c.setReason(f.reason);
                return c;
            }),
        );
        return resp;
    }),
    diff: unary(async (req: provproto.DiffRequest) => {
        const kind = kindOf(req.getUrn());
        const olds = plain(req.getOlds()?.toJavaScript() ?? {});
        const news = plain(req.getNews()?.toJavaScript() ?? {});
        const ignored = new Set(req.getIgnorechangesList());
        const changed = kind.inputs.filter((k) => {
            if (ignored.has(k)) return false;
            if (optionalComputed.has(k) && (news[k] === undefined || news[k] === null)) return false;
            return hasUnknown(news[k]) || !same(olds[k], news[k]);
        });
        const replaces = changed.filter((k) => kind.forceNew.includes(k));
        if (kind.customizeDiff && !Object.values(news).some(hasUnknown)) {
            const extra = await kind.customizeDiff(needOwner(), olds, news);
            for (const k of extra.replaces ?? []) if (!replaces.includes(k)) replaces.push(k);
            for (const k of [...(extra.replaces ?? []), ...(extra.changes ?? [])]) if (!changed.includes(k)) changed.push(k);
        }
        return diffResponse(kind, changed, replaces, olds, news);
    }),
    create: unary(async (req: provproto.CreateRequest) => {
        const kind = kindOf(req.getUrn());
        const news = plain(req.getProperties()?.toJavaScript() ?? {});
        const resp = new provproto.CreateResponse();
        if (req.getPreview()) {
            const outs: Props = { ...news };
            for (const k of computedOuts) if (outs[k] === undefined) outs[k] = unknown;
            resp.setId("");
            resp.setProperties(toStruct(outs));
            return resp;
        }
        const { id, outs } = await kind.create(needOwner(), news);
        resp.setId(id);
        resp.setProperties(toStruct(outs));
        return resp;
    }),
    read: unary(async (req: provproto.ReadRequest) => {
        const kind = kindOf(req.getUrn());
        const state = plain(req.getProperties()?.toJavaScript() ?? {});
        const outs = await kind.read(needOwner(), req.getId(), state);
        const resp = new provproto.ReadResponse();
        if (!outs) {
            resp.setId("");
            return resp;
        }
        resp.setId(req.getId());
        resp.setProperties(toStruct(outs));
        resp.setInputs(toStruct(Object.fromEntries(kind.inputs.filter((k) => outs[k] !== undefined && !optionalComputed.has(k)).map((k) => [k, outs[k]]))));
        return resp;
    }),
    update: unary(async (req: provproto.UpdateRequest) => {
        const kind = kindOf(req.getUrn());
        const olds = plain(req.getOlds()?.toJavaScript() ?? {});
        const news = plain(req.getNews()?.toJavaScript() ?? {});
        const resp = new provproto.UpdateResponse();
        const changed = kind.inputs.some((k) => !(optionalComputed.has(k) && news[k] == null) && !same(olds[k], news[k]));
        const drift = !!olds.remoteUpdatedAt && olds.updatedAt !== olds.remoteUpdatedAt;
        if (!changed && !drift) {
            // The bridge answers an empty diff with the old state and no API call.
            resp.setProperties(req.getOlds());
            return resp;
        }
        if (req.getPreview()) {
            const outs: Props = { ...olds, ...news };
            if (drift) outs.updatedAt = unknown;
            resp.setProperties(toStruct(outs));
            return resp;
        }
        resp.setProperties(toStruct(await kind.update(needOwner(), req.getId(), olds, news)));
        return resp;
    }),
    delete: unary(async (req: provproto.DeleteRequest) => {
        const kind = kindOf(req.getUrn());
        await kind.delete(needOwner(), req.getId(), plain(req.getProperties()?.toJavaScript() ?? {}));
        return new emptyproto.Empty();
    }),
    invoke: unary(async (req: provproto.InvokeRequest) => {
        if (req.getTok() !== "github:index/getRepository:getRepository") {
            throw new Error(`unknown function ${req.getTok()} (the test GitHub plugin implements github:index/getRepository:getRepository)`);
        }
        const resp = new provproto.InvokeResponse();
        resp.setReturn(toStruct(await getRepository(needOwner(), plain(req.getArgs()?.toJavaScript() ?? {}))));
        return resp;
    }),
};

async function main() {
    const s = new grpc.Server({ "grpc.max_receive_message_length": 1024 * 1024 * 400 });
    s.addService(provrpc.ResourceProviderService, server as provrpc.IResourceProviderServer);
    const port = await new Promise<number>((resolve, reject) =>
        s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    // The engine reads the port from the first line of stdout.
    process.stdout.write(`${port}\n`);
}

void main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
});
