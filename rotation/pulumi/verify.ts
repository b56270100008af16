/**
 * The verification gates that run inside the engine's update (DESIGN.md §2, issue 6):
 *
 * - {@link KeyCheck}: step 2 of AWS's recipe. The current key authenticates as the set's user
 *   (STS GetCallerIdentity with the key itself, retried for IAM's eventual consistency) before any
 *   target is written.
 * - {@link TargetCheck}: every target whose store can tell was written after the current key
 *   was created.
 *
 * Both are dynamic resources, so their work happens only when the engine creates or updates them:
 * never in preview, never inside `.apply`, and not at all when their inputs are unchanged (a run
 * with nothing due calls no API). The logic is in plain exported functions, tested without Pulumi.
 * Registrations carry `kind: "key-check"` / `kind: "target-check"` so tools that watch
 * `pulumi-nodejs:dynamic:Resource` registrations (the rehearsal simulator) can recognise them.
 */
import * as pulumi from "@pulumi/pulumi";
import { confirmKeyIdentity, realClock, type RetryClock, type SdkClient } from "../core/aws-calls";

/**
 * The provider of this program's dynamic resources (the checks here, GitLab variables): one
 * explicit `pulumi-nodejs` provider without inputs. The engine gives the *default* dynamic
 * provider the whole stack configuration as its inputs (pulumi/pulumi pkg/resource/deploy/target.go
 * `GetPackageConfig`: "For dynamic providers, we always pass the full configuration", CLI ≥ 3.139),
 * and the dynamic provider has no DiffConfig (sdk/nodejs/cmd/dynamic-provider/index.ts), so every
 * config change (a rotation request, `emergency`, `revoke`) would show as an update of
 * `pulumi:providers:pulumi-nodejs::default` and fail `pulumi up --expect-no-changes`. An explicit
 * provider's inputs are what the program gives it: none. Moving existing resources to it is not a
 * replacement: the engine asks the new provider's DiffConfig, which answers "unknown, no replace"
 * (pkg/resource/plugin/provider_plugin.go `DiffConfig`; step_generator.go `providerChanged`,
 * for explicit providers since CLI 3.151, PR #18509).
 */
export class DynamicProvider extends pulumi.ProviderResource {
    /**
     * @param config the stack config the dynamic providers read in `configure` (full keys, e.g.
     * `gitlab:token`), as the provider's inputs: the engine configures an explicit provider with
     * its inputs, and the dynamic provider's `Config.get` looks keys up by full name
     * (sdk/nodejs/cmd/dynamic-provider/index.ts `configure`, config.ts). Values are secrets.
     */
    constructor(name: string, config: Record<string, pulumi.Input<string>> = {}, opts: pulumi.ResourceOptions = {}) {
        super("pulumi-nodejs", name, config, opts);
    }
}

/**
 * The values of `keys` in the stack config, as secrets, for {@link DynamicProvider}. Unset keys
 * are left out, so a stack without them gives the provider no inputs at all.
 */
export function dynamicProviderInputs(keys: readonly string[], read: (key: string) => string | undefined = (key) => pulumi.runtime.getConfig(key)): Record<string, pulumi.Output<string>> {
    const out: Record<string, pulumi.Output<string>> = {};
    for (const key of keys) {
        const value = read(key);
        if (value !== undefined && value !== "") out[key] = pulumi.secret(value);
    }
    return out;
}

/** Marker input of a {@link KeyCheck} registration. */
export const keyCheckKind = "key-check";
/** Marker input of a {@link TargetCheck} registration. */
export const targetCheckKind = "target-check";

/** What the key check's provider receives (plain values; the engine decrypts secret inputs for it). */
export interface KeyCheckInputs {
    kind: typeof keyCheckKind;
    /** Set name, for messages. */
    set: string;
    accessKeyId: string;
    /** The secret access key: a secret input, used to sign the STS call, never in the outputs. */
    secretAccessKey: string;
    userArn: string;
    /** The AWS provider's region (`aws:region`); STS is called there. */
    region: string;
    /** The set's `validateTimeout` in milliseconds. */
    timeoutMs: number;
}

/** The key check's outputs: no secret material. */
export interface KeyCheckOutputs {
    kind: typeof keyCheckKind;
    set: string;
    accessKeyId: string;
    userArn: string;
    region: string;
    /** When STS confirmed the key (real time of the run). */
    confirmedAt: string;
    /** STS calls it took (more than one while IAM propagated the key). */
    attempts: number;
}

/** Builds the STS client that signs with the key under test. Injected in tests. */
export type StsFactory = (inputs: { region: string; accessKeyId: string; secretAccessKey: string }) => SdkClient;

function stsWithKey(inputs: { region: string; accessKeyId: string; secretAccessKey: string }): SdkClient {
    // Required here, not imported: the provider is serialized and @aws-sdk v3 cannot be captured.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { STSClient } = require("@aws-sdk/client-sts") as typeof import("@aws-sdk/client-sts");
    // The key under test and nothing else: no fallback to the environment's credentials.
    // One attempt per call: confirmKeyIdentity owns the retries and their bound.
    return new STSClient({
        region: inputs.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1",
        credentials: { accessKeyId: inputs.accessKeyId, secretAccessKey: inputs.secretAccessKey },
        maxAttempts: 1,
    });
}

/** Replace every occurrence of `secret` in `text`. */
export function redact(text: string, secret: string): string {
    return secret ? text.split(secret).join("[redacted]") : text;
}

/**
 * The key check's create/update: confirm the key, return outputs without the secret. Any error is
 * rethrown as a fresh `Error` whose message has the secret removed (SDK errors carry request
 * details we do not control, so neither the original error nor its cause is passed on).
 */
export async function runKeyCheck(inputs: KeyCheckInputs, makeSts: StsFactory = stsWithKey, clock: RetryClock = realClock): Promise<KeyCheckOutputs> {
    const secret = inputs.secretAccessKey;
    try {
        if (!secret) throw new Error(`Key ${inputs.accessKeyId} of set "${inputs.set}" has no secret to check: only a key minted by ci-key-rotation can be checked and pushed.`);
        const sts = makeSts({ region: inputs.region, accessKeyId: inputs.accessKeyId, secretAccessKey: secret });
        const confirmed = await confirmKeyIdentity(
            sts,
            { set: inputs.set, accessKeyId: inputs.accessKeyId, userArn: inputs.userArn, region: inputs.region, timeoutMs: inputs.timeoutMs },
            clock,
        );
        return {
            kind: keyCheckKind,
            set: inputs.set,
            accessKeyId: inputs.accessKeyId,
            userArn: inputs.userArn,
            region: inputs.region,
            confirmedAt: new Date(clock.now()).toISOString(),
            attempts: confirmed.attempts,
        };
    } catch (err) {
        const e = err as { name?: string; message?: string };
        const clean = new Error(redact(String(e?.message ?? err), secret));
        clean.name = e?.name && e.name !== "Error" ? redact(e.name, secret) : "KeyCheckError";
        throw clean;
    }
}

/**
 * Whether the key check must run again: a different key, user or region. The timeout is not
 * part of it (changing `validateTimeout` must not call STS), and the secret cannot change while
 * the key id stays the same.
 */
export function keyCheckChanged(olds: Partial<KeyCheckOutputs>, news: Partial<KeyCheckInputs>): boolean {
    return olds.accessKeyId !== news.accessKeyId || olds.userArn !== news.userArn || olds.region !== news.region;
}

const keyCheckProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id, olds, news) {
        return { changes: keyCheckChanged(olds, news) };
    },
    async create(inputs) {
        const outs = await runKeyCheck(inputs);
        return { id: `${outs.set}-${outs.accessKeyId}`, outs };
    },
    async update(_id, _olds, news) {
        return { outs: await runKeyCheck(news) };
    },
};

/** Arguments of {@link KeyCheck}. */
export interface KeyCheckArgs {
    set: string;
    accessKeyId: pulumi.Input<string>;
    /** Always wrapped in `pulumi.secret` before it is registered. */
    secretAccessKey: pulumi.Input<string>;
    userArn: pulumi.Input<string>;
    region: string;
    timeoutMs: number;
}

/**
 * Step 2's validation: the engine creates or updates this resource when the set's current key
 * changes, and that create/update calls STS with the key until it answers with the set's user
 * ARN or `validateTimeout` passes (then the run fails: the key stays, nothing is deactivated, the
 * next run checks again). Targets take their values from its outputs, so they are written only
 * after the key is known to work.
 */
export class KeyCheck extends pulumi.dynamic.Resource {
    /** The checked key's id; resolves only once the check passed. */
    declare readonly accessKeyId: pulumi.Output<string>;
    declare readonly confirmedAt: pulumi.Output<string>;
    declare readonly attempts: pulumi.Output<number>;

    constructor(name: string, args: KeyCheckArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(
            keyCheckProvider,
            name,
            {
                kind: keyCheckKind,
                set: args.set,
                accessKeyId: args.accessKeyId,
                secretAccessKey: pulumi.secret(args.secretAccessKey),
                userArn: args.userArn,
                region: args.region,
                timeoutMs: args.timeoutMs,
                confirmedAt: undefined,
                attempts: undefined,
            },
            opts,
        );
    }
}

/** One write a store can vouch for, as the target check's provider receives it. */
export interface TargetWrite {
    /** Target label, e.g. `github repository acme/api`. */
    target: string;
    /** Config path of the target, e.g. `credentials[0].targets[1]`. */
    path: string;
    /** What was written, e.g. `secret AWS_SECRET_ACCESS_KEY`. */
    what: string;
    /** When the store says it was last written (ISO-8601), if it can tell. */
    writtenAt?: string;
    /** The access key id the store says it holds, if it can tell without reading the secret. */
    accessKeyId?: string;
}

/** What the target check's provider receives: no secret material. */
export interface TargetCheckInputs {
    kind: typeof targetCheckKind;
    set: string;
    /** The key every target must hold. */
    accessKeyId: string;
    /** When AWS created that key (`aws.iam.AccessKey.createDate`). */
    keyCreatedAt?: string;
    writes: TargetWrite[];
}

/** The target check's outputs. */
export interface TargetCheckOutputs extends TargetCheckInputs {
    /** Writes that were confirmed. */
    confirmed: number;
    /** `path what` of writes whose store gave no evidence (nothing to compare). */
    unconfirmed: string[];
}

/**
 * Clocks of AWS and of a store may disagree slightly: a write this much before the key's
 * creation time still counts as after it. One minute is far below the time between two mints
 * (at least one run apart), so a write left over from the previous key is still caught.
 */
export const writeClockSkewMs = 60_000;

/**
 * Check the evidence of every target write: a store that reports the key id it holds must hold
 * the current one, and a store that reports when it was written must have been written after the
 * current key was created. Throws one error naming every target that did not take the key.
 */
export function confirmTargetWrites(inputs: TargetCheckInputs): TargetCheckOutputs {
    const created = inputs.keyCreatedAt ? Date.parse(inputs.keyCreatedAt) : NaN;
    const problems: string[] = [];
    const unconfirmed: string[] = [];
    let confirmed = 0;
    for (const w of inputs.writes) {
        const where = `\`${w.path}\` (${w.target}): ${w.what}`;
        let evidence = false;
        if (w.accessKeyId) {
            evidence = true;
            if (w.accessKeyId !== inputs.accessKeyId) {
                problems.push(`${where} holds key ${w.accessKeyId}, not ${inputs.accessKeyId}`);
                continue;
            }
        }
        const written = w.writtenAt ? Date.parse(w.writtenAt) : NaN;
        if (!Number.isNaN(written) && !Number.isNaN(created)) {
            evidence = true;
            if (written < created - writeClockSkewMs) {
                problems.push(`${where} was last written at ${w.writtenAt}, before key ${inputs.accessKeyId} was created at ${inputs.keyCreatedAt}, so it does not hold that key`);
                continue;
            }
        }
        if (evidence) confirmed++;
        else unconfirmed.push(`${w.path} ${w.what}`);
    }
    if (problems.length > 0) {
        // A timestamp read right after a write can be stale, and no later `up` re-reads it (no
        // diff, no step), so the same evidence would fail every run. A refresh re-reads
        // `remote_updated_at`; terraform-provider-github `diffSecret` (util_diff.go) then sees it
        // differ from `updated_at` and plans an update, which rewrites the secret and reads the
        // time again. `--replace` is never advised: a replacement can delete what it just wrote.
        const fail = new Error(
            `Set "${inputs.set}": ${problems.length === 1 ? "a target did" : `${problems.length} targets did`} not take key ${inputs.accessKeyId}:\n` +
                problems.map((p) => `    - ${p}\n`).join("") +
                "  The key stays and nothing was deactivated; the rotation does not advance until every target holds it. " +
                "Check that the credentials used for each named target may write it, then run again. " +
                "If the store did take the key but reported an old time (a read right after the write can be stale), run `pulumi up --refresh`: the refresh reads the store's time again, and the GitHub provider rewrites a secret whose remote time moved. " +
                "Do not use `pulumi up --replace` on a target: a replacement can delete the value it just wrote.",
        );
        fail.name = "TargetCheckError";
        throw fail;
    }
    return { ...inputs, confirmed, unconfirmed };
}

/** Whether the target check must run again: any evidence, the key or its creation time changed. */
export function targetCheckChanged(olds: Partial<TargetCheckInputs>, news: Partial<TargetCheckInputs>): boolean {
    // Key order is not preserved through the engine's wire format: compare with sorted keys.
    const canonical = (v: unknown): string =>
        Array.isArray(v)
            ? `[${v.map(canonical).join(",")}]`
            : v !== null && typeof v === "object"
              ? `{${Object.keys(v)
                    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
                    .sort()
                    .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
                    .join(",")}}`
              : JSON.stringify(v ?? null);
    const pick = (x: Partial<TargetCheckInputs>) => canonical([x.accessKeyId, x.keyCreatedAt, x.writes ?? []]);
    return pick(olds) !== pick(news);
}

const targetCheckProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id, olds, news) {
        return { changes: targetCheckChanged(olds, news) };
    },
    async create(inputs) {
        const outs = confirmTargetWrites(inputs);
        return { id: `${outs.set}-targets`, outs };
    },
    async update(_id, _olds, news) {
        return { outs: confirmTargetWrites(news) };
    },
};

/** Arguments of {@link TargetCheck}. */
export interface TargetCheckArgs {
    set: string;
    accessKeyId: pulumi.Input<string>;
    keyCreatedAt: pulumi.Input<string | undefined>;
    writes: pulumi.Input<pulumi.Input<{ target: string; path: string; what: string; writtenAt?: pulumi.Input<string | undefined>; accessKeyId?: pulumi.Input<string | undefined> }>[]>;
}

/**
 * "Targets hold it": runs (in the engine's update, after the target resources it depends on)
 * when the key or any evidence changed, and fails the run naming every target that did not take
 * the key. The evidence comes from the stores' own resource outputs (see
 * `TargetStore.confirmWrites`), so the check itself calls no API.
 */
export class TargetCheck extends pulumi.dynamic.Resource {
    declare readonly confirmed: pulumi.Output<number>;
    declare readonly unconfirmed: pulumi.Output<string[]>;

    constructor(name: string, args: TargetCheckArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(
            targetCheckProvider,
            name,
            { kind: targetCheckKind, set: args.set, accessKeyId: args.accessKeyId, keyCreatedAt: args.keyCreatedAt, writes: args.writes, confirmed: undefined, unconfirmed: undefined },
            opts,
        );
    }
}
