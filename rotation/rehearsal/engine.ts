import * as pulumi from "@pulumi/pulumi";
import type { IAMClient } from "@aws-sdk/client-iam";
import { providerObserver } from "../pulumi/aws";
import { clockVariable } from "../pulumi/clock";
import type { RetryClock } from "../core/aws-calls";
import { modelFor, UnmodelledResourceError, type Change, type ModelContext, type PlainInputs, type ResourceModel, type StoreWrite } from "./targets";
import { Random } from "./random";
import type { World } from "./world";

/**
 * A model of the Pulumi engine driving the real program under `pulumi.runtime.setMocks`. It
 * keeps the stack's resources between runs and applies the engine's rules, each checked in the
 * engine's source (docs/rehearsal.md lists them with their sources):
 * - steps run in any order their dependencies allow: a registration is applied once the SDK sends
 *   it (after every input and `dependsOn` resolved), and of the registrations waiting at once the
 *   seed draws which goes first (the engine runs independent steps in parallel);
 * - a resource that exists keeps its id and outputs (an access key keeps its secret) unless an
 *   input that forces replacement changes; replacement is create-then-delete unless the program
 *   or the provider asks for `deleteBeforeReplace`, and the replaced resource is deleted with the
 *   removed ones after the program ends;
 * - resources the program no longer registers are deleted after the program ends, newest first;
 *   deletes a failed or killed run did not reach stay pending for the next run's end;
 * - stack outputs are registered when every one of them has resolved (under
 *   `--continue-on-error` also after a failed step; otherwise only if no step had failed by
 *   then); a failed update saves them over the old ones (CLI >= 3.112), or, with
 *   `legacyOutputs`, keeps only what was registered (older CLIs drop the rest);
 * - with `--continue-on-error` (default, as the scheduled job runs it) a failed step rejects that
 *   resource's outputs, whatever depends on it is not registered, and the other steps go on;
 *   without it (or with `legacyOutputs`), after the first failed step the engine starts no new
 *   step; a kill (crash) also loses the create in flight (the resource exists in the cloud but
 *   not in state) and saves no outputs;
 * - a failed update of a bridged GitHub resource saves the planned inputs (the provider's
 *   partial state), so the next run sees no difference while GitHub keeps the old value;
 * - `import` adopts an existing cloud resource by id, and fails when the declared inputs differ;
 * - `aliases` carry a resource's state over to its new name;
 * - a dynamic provider's own diff decides whether its resource changes, and its create or update
 *   may take simulated time (the key check retrying while IAM makes a key usable);
 * - a resource the rehearsal has no model of fails the run, and the rehearsal stops.
 */

/**
 * Marks the error a failed step's registration rejects with under `--continue-on-error`. The
 * program builds Outputs from that resource that nobody awaits; in a real run their rejections
 * reach the language host, which logs them and exits non-zero (sdk/nodejs/cmd/run/run.ts
 * `uncaughtHandler`), a run that fails anyway. Here they would reach the process hosting the
 * rehearsal, so {@link swallowFailedStepRejections} drops exactly those.
 */
const failedStepMark = "rehearsed failed step: ";

/**
 * For the length of a run: drop the rejections of failed steps' Outputs, hand every other one to
 * the listeners the process had. Returns the function that restores them.
 */
function swallowFailedStepRejections(): () => void {
    const saved = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    const listener = (reason: unknown, promise: Promise<unknown>) => {
        if (String((reason as Error)?.message ?? reason).includes(failedStepMark)) return;
        if (saved.length === 0) {
            // Node's own behaviour without a listener.
            process.nextTick(() => {
                throw reason;
            });
        }
        for (const l of saved) (l as (r: unknown, p: Promise<unknown>) => void)(reason, promise);
    };
    process.on("unhandledRejection", listener);
    return () => {
        process.removeListener("unhandledRejection", listener);
        for (const l of saved) process.on("unhandledRejection", l as (...args: unknown[]) => void);
    };
}

/** The secret sentinel the SDK puts around secret values it sends to the (mock) monitor. */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretSigValue = "1b47061264138c4ac30d75fd1eb44270";

/** One change the engine made to the world. */
export interface Operation {
    /** 1-based position in its run. */
    index: number;
    action: "create" | "update" | "delete" | "import";
    /** Pulumi type token. */
    type: string;
    /** Resource name. */
    name: string;
    /** Access key id, for access key operations. */
    accessKeyId?: string;
    /** Access key status after an update. */
    status?: "Active" | "Inactive";
    /** IAM user of an access key. */
    user?: string;
    /** Store addresses written or deleted. */
    addresses?: string[];
    /**
     * The provider finished but the engine never recorded it: the run was killed while the call
     * was in flight. A lost create leaves a resource in the cloud that the stack's state lacks.
     */
    lost?: true;
}

/** An operation about to happen (no index or key id yet for a create). */
export type PendingOperation = Omit<Operation, "index">;

/** What the simulator plugs into the engine: fault injection and invariant checks. */
export interface EngineHooks {
    /** Before an operation reaches the world. Throw to make it fail (an API error, a crash). */
    beforeOperation(op: PendingOperation, run: RunContext): void;
    /**
     * After the provider applied an operation to the world, before the engine records it. Throw
     * a {@link CrashSignal} to kill the run with the operation in flight (its result is lost).
     */
    afterEffect?(op: PendingOperation, run: RunContext): void;
    /** After an operation applied. */
    afterOperation(op: Operation, run: RunContext): void;
    /** A registration that names a cloud resource to take over (`import`), before its step runs. */
    declaresImport?(type: string, name: string, id: string, run: RunContext): void;
    /** Every registration's inputs as the monitor received them (for secrets in plain inputs). */
    inspectInputs(type: string, name: string, inputs: Record<string, unknown>, run: RunContext): void;
    /** A dynamic provider's state after each registration: the outputs the engine stores unencrypted. */
    inspectState(type: string, name: string, plaintextOutputs: Record<string, unknown>, run: RunContext): void;
}

/** How the engine model behaves where Pulumi versions or runs differ. */
export interface EngineOptions {
    /**
     * Seeds the draw of which of the steps ready at the same time runs first (the engine runs
     * independent steps in parallel). Each run draws from its own stream, seeded from this and the
     * run's instant, so a run's order does not depend on how many runs before it were evaluated
     * (the rehearsal answers some runs without evaluating them). Absent: registration order, which
     * no real engine promises.
     */
    orderSeed?: number;
    /**
     * Rehearse a Pulumi CLI older than 3.112: a failed update keeps only the stack outputs
     * registered before the failure and drops the others (pulumi/pulumi #12929). Default false:
     * old outputs are kept and registered ones saved over them (pulumi/pulumi PR #15754).
     */
    legacyOutputs?: boolean;
    /**
     * Rehearse `pulumi up --continue-on-error` (CLI 3.114, pulumi/pulumi PR #15740), as the
     * scheduled job and the automation library run it. A failed step no longer stops
     * the update (pkg/resource/deploy/step_executor.go `cancelDueToError`: `step.Fail()` instead of
     * `se.cancel()`): independent steps still run; the engine answers the failed registration with
     * `Result.FAIL`, so the Node SDK rejects that resource's outputs (sdk/nodejs/runtime/resource.ts
     * `registerResource`, `resultFailed`, PR #23844) and nothing that depends on it registers
     * (the engine would skip it: deployment_executor.go `handleSingleEvent`, `doesStepDependOn`);
     * the stack outputs the program still resolves are registered and saved. False: the engine
     * cancels every step not yet started at the first failure. Default: true, false with
     * `legacyOutputs` (a CLI before 3.112 has no `--continue-on-error`).
     */
    continueOnError?: boolean;
}

/** Thrown by a hook to end the run at once, as a killed `pulumi up` would. */
export class CrashSignal extends Error {
    constructor(afterOperations: number, inFlight = false) {
        super(`simulated crash after ${afterOperations} operation(s)${inFlight ? ", with the next one in flight" : ""}`);
        this.name = "CrashSignal";
    }
}

/** One run in progress. */
export interface RunContext {
    /** Epoch milliseconds the run acts at. */
    at: number;
    operations: Operation[];
    /** Log lines the program and the SDK wrote (console). */
    logs: string[];
    /** Error messages (the program's, the engine's, unhandled rejections). */
    errors: string[];
    /** First failure; the engine starts no step after it. */
    failure?: string;
    /** Name of the resource whose step failed first, when a step failed (not the program). */
    failedResource?: string;
    crashed: boolean;
    /** Simulated time the run has spent so far (providers waiting and retrying), ms. */
    elapsedMs: number;
    /** Faults the world caused during the run (IAM slow to make a key usable). */
    worldFaults: string[];
    /** Set when the program registered a resource the rehearsal has no model of. */
    unmodelled?: string;
}

/** Result of one engine run. */
export interface EngineRun extends RunContext {
    ok: boolean;
    /** Stack outputs this run registered (all of them when it succeeded). */
    outputs?: Record<string, unknown>;
    /** Output names that came back as Pulumi secrets. */
    secretOutputs: string[];
}

interface ResourceRecord {
    type: string;
    name: string;
    id: string;
    /** Plain inputs (secrets unwrapped), for diffs. */
    inputs: PlainInputs;
    /** Plain outputs (the access key's secret among them). */
    outputs: Record<string, unknown>;
    /** What the resource wrote, to delete it again. */
    writes: StoreWrite[];
    seq: number;
    /** The `replacementTrigger` the engine saved with it (absent: none). */
    trigger?: unknown;
}

/** The resource options of a registration, as the monitor receives them (mocks never see them). */
interface RegistrationOptions {
    deleteBeforeReplace: boolean;
    /** Names the resource had before (`aliases`), same type. */
    aliases: string[];
    /** The `replacementTrigger` option's value; absent when the program set none. */
    replacementTrigger?: unknown;
}

/**
 * Whether a resource's replacement trigger replaces it: a trigger that changed, where both the
 * saved and the declared one are set. A trigger going from none to a value (or back) replaces
 * nothing (pulumi/pulumi pkg/resource/deploy/step_generator.go `shouldTriggerReplace`: "Nulls mean
 * there is no replacement trigger"); a replacing trigger skips the provider's diff
 * (`generateStepsFromDiff`).
 */
function triggerReplaces(declared: unknown, saved: unknown): boolean {
    if (declared === undefined || declared === null || saved === undefined || saved === null) return false;
    return canonical(declared) !== canonical(saved);
}

/** Pulumi's stack name and project for the self-StackReference. */
export interface StackIdentity {
    project: string;
    stack: string;
}

type Program = (deps: {
    observer?: ReturnType<typeof providerObserver>;
    env?: NodeJS.ProcessEnv;
    /** Called when sets were blocked: the real program then exits non-zero (rotation/pulumi/program.ts `endBlockedRun`). */
    fail?: (code: number, error?: Error) => void;
}) => Promise<Record<string, unknown>>;

const key = (type: string, name: string) => `${type}::${name}`;

/** Plain value of an input, and whether any part of it was a secret. */
function plain(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(plain);
    if (value && typeof value === "object") {
        const v = value as Record<string, unknown>;
        if (v[secretSig] === secretSigValue) return plain(v.value);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    }
    return value;
}

function canonical(value: unknown): string {
    return JSON.stringify(value, (_, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}

const accessKeyType = "aws:iam/accessKey:AccessKey";
const userType = "aws:iam/user:User";
const dynamicType = "pulumi-nodejs:dynamic:Resource";

/** Whether a serialized input value was a secret. */
function isSecretInput(value: unknown): boolean {
    return !!value && typeof value === "object" && (value as Record<string, unknown>)[secretSig] === secretSigValue;
}

/** The run's simulated instant, ms. */
const nowOf = (run: RunContext) => run.at + run.elapsedMs;

/**
 * The options of a `RegisterResourceRequest` the mocks drop: `deleteBeforeReplace` and the
 * aliases (as URNs or alias specs, whichever the SDK sent).
 */
function registrationOptions(req: Record<string, (() => unknown) | undefined>): RegistrationOptions {
    const call = <T>(name: string, fallback: T): T => (typeof req[name] === "function" ? (req[name]!() as T) : fallback);
    const aliases: string[] = [];
    for (const urn of call<string[]>("getAliasurnsList", [])) aliases.push(urn.split("::").pop()!);
    for (const alias of call<Record<string, () => unknown>[]>("getAliasesList", [])) {
        const urn = typeof alias.getUrn === "function" ? (alias.getUrn() as string) : "";
        const spec = typeof alias.getSpec === "function" ? (alias.getSpec() as Record<string, () => unknown> | undefined) : undefined;
        if (urn) aliases.push(urn.split("::").pop()!);
        else if (spec && typeof spec.getName === "function" && spec.getName()) aliases.push(String(spec.getName()));
    }
    // The SDK sends the option as a google.protobuf.Value (sdk/nodejs/runtime/resource.ts
    // `prepareResource`: `setReplacementTrigger`), only when the program set one.
    const trigger = call<{ toJavaScript(): unknown } | undefined>("getReplacementTrigger", undefined);
    const replacementTrigger = trigger === undefined ? undefined : trigger.toJavaScript();
    return { deleteBeforeReplace: call("getDeletebeforereplace", false), aliases, ...(replacementTrigger === undefined || replacementTrigger === null ? {} : { replacementTrigger }) };
}

/** The engine model: one per rehearsal, holding the stack's resources and outputs between runs. */
export class Engine {
    private readonly resources = new Map<string, ResourceRecord>();
    /**
     * Replaced resources whose delete has not happened yet (`Delete: true` in the state). The
     * engine deletes them with the removed resources at the end of a run that gets that far
     * (pulumi/pulumi pkg/resource/deploy/step_generator.go `GenerateDeletes`: "If this resource is
     * explicitly marked for deletion or wasn't seen at all, delete it").
     */
    private pendingDeletes: ResourceRecord[] = [];
    private seq = 0;
    /** This run's draw of the order of steps ready at the same time (see `EngineOptions.orderSeed`). */
    private order: Random | undefined;
    /** The stack outputs as the state holds them (what the next run's StackReference reads). */
    outputs: Record<string, unknown> | undefined;
    /** Whether a failed step lets the other steps run (`EngineOptions.continueOnError`). */
    private get continues(): boolean {
        // A CLI before 3.112 (`legacyOutputs`) predates the flag (3.114).
        return this.options.continueOnError ?? !this.options.legacyOutputs;
    }
    private program: Program | undefined;
    /** Steps the SDK has sent and the engine has not started. */
    private ready: (() => Promise<void>)[] = [];
    private pumping = false;

    constructor(
        private readonly world: World,
        private readonly identity: StackIdentity,
        private readonly hooks: EngineHooks,
        private readonly options: EngineOptions = {},
    ) {}

    /** Resources the stack holds, for checks (type and name, id, plain outputs). */
    managed(): ReadonlyMap<string, Readonly<ResourceRecord>> {
        return this.resources;
    }

    /** Run the program once at `at` with the given stack config (full keys, string values). */
    async run(at: number, config: Record<string, string>): Promise<EngineRun> {
        this.order = this.options.orderSeed === undefined ? undefined : new Random((this.options.orderSeed ^ Math.floor(at / 1000)) >>> 0);
        const run: RunContext = { at, operations: [], logs: [], errors: [], crashed: false, elapsedMs: 0, worldFaults: [] };
        const registered = new Set<string>();
        const requests = new Map<string, RegistrationOptions>();
        const restoreRejections = this.continues ? swallowFailedStepRejections() : () => {};

        const errorLogs: string[] = [];
        const restore = captureConsole(run.logs, errorLogs);
        // The program may end its process non-zero (`process.exitCode`, or the `fail` it is given)
        // once it has registered everything: the language host then reports a failed program.
        const hostExitCode = process.exitCode;
        process.exitCode = undefined;
        let exitCode: number | undefined;
        let exitMessage: string | undefined;
        const stackTraceLimit = Error.stackTraceLimit;
        const prepareStackTrace = Error.prepareStackTrace;
        // The SDK records a stack trace for every promise and resource (and raises the limit to
        // find source positions); formatting them is most of a mocked run's time, and no
        // simulated run needs them. Messages are kept; only stacks go.
        Error.stackTraceLimit = 0;
        Error.prepareStackTrace = (err: Error) => `${err.name}: ${err.message}`;
        const restoreSdk = withoutSdkDiagnostics();
        let outputs: Record<string, unknown> | undefined;
        /** The stack outputs the engine received, if it did before any step failed. */
        let registeredOutputs: Record<string, unknown> | undefined;
        const secretOutputs: string[] = [];
        try {
            pulumi.runtime.setMocks(this.mocks(run, registered, requests), this.identity.project, this.identity.stack, false, "organization");
            captureOptions(requests);
            pulumi.runtime.setAllConfig(config, []);
            this.program ??= require("../../index") as Program;
            const iam = { send: (command: object) => this.lastUsed(command) } as unknown as IAMClient;
            const result = await this.program({
                observer: providerObserver(() => iam),
                env: { [clockVariable]: new Date(at).toISOString() },
                // A blocked set makes the program exit non-zero once it has registered everything:
                // recorded here, applied when the program is done (below), as the host would.
                fail: (code, error) => {
                    exitCode = code;
                    if (error) exitMessage = messageOf(error);
                },
            });
            // The Node SDK registers the stack's outputs in one RegisterResourceOutputs call once
            // every one of them has resolved (sdk/nodejs/runtime/resource.ts
            // `registerResourceOutputs` awaits `serializeProperties` of them all), not when the
            // program ends. The engine takes that event only while no step has failed
            // (pkg/resource/deploy/deployment_executor.go `Execute`: the event loop returns at the
            // first error) and keeps it to finalise at the end (step_executor.go
            // `executeRegisterResourceOutputs`).
            const collected: Record<string, unknown> = {};
            for (const [name, value] of Object.entries(result)) {
                if (pulumi.Output.isInstance(value)) {
                    const internal = value as unknown as { promise(): Promise<unknown>; isSecret: Promise<boolean> };
                    collected[name] = await internal.promise();
                    if (await internal.isSecret) secretOutputs.push(name);
                } else {
                    collected[name] = value;
                }
            }
            outputs = collected;
            // Under `--continue-on-error` the program keeps running after a failed step, and the
            // outputs it resolves are registered (saved over the old ones at the end, below).
            if (run.failure === undefined || (this.continues && !run.crashed)) registeredOutputs = collected;
        } catch (err) {
            run.errors.push(messageOf(err));
            run.failure ??= messageOf(err);
        } finally {
            try {
                await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
            } catch (err) {
                run.errors.push(messageOf(err));
                run.failure ??= messageOf(err);
            }
            // Rejections surface once the microtasks after them have run: give them a turn.
            await new Promise((r) => setImmediate(r));
            restoreRejections();
            Error.stackTraceLimit = stackTraceLimit;
            Error.prepareStackTrace = prepareStackTrace;
            restoreSdk();
            restore();
            exitCode ??= typeof process.exitCode === "number" && process.exitCode !== 0 ? process.exitCode : undefined;
            process.exitCode = hostExitCode;
        }
        if (exitCode !== undefined && exitCode !== 0 && run.failure === undefined) {
            // A non-zero exit is a source error: the deployment bails before its post-steps, so
            // no delete is generated; steps done stay done and registered outputs are saved
            // (pulumi/pulumi deployment_executor.go `Execute`; sdk/nodejs/cmd/run/index.ts, exit
            // code 32 after a logged error).
            const message = exitMessage ?? (errorLogs.length > 0 ? errorLogs.join("\n") : `the program exited with code ${exitCode}`);
            run.errors.push(message);
            run.failure = message;
        }
        // A killed `pulumi up` never finalises: the outputs it registered were held for the end
        // of the deployment (PR #15754) and are lost with it.
        if (run.crashed) return { ...run, ok: false, secretOutputs };
        if (run.failure !== undefined) {
            // A failed update saves the outputs it registered over the old ones (pulumi/pulumi
            // PR #15754, CLI 3.112: step_executor.go `executeRegisterResourceOutputs`, "we keep old
            // outputs, overwriting new ones"). Older CLIs keep only the registered ones (#12929).
            this.outputs = this.options.legacyOutputs ? { ...(registeredOutputs ?? {}) } : { ...(this.outputs ?? {}), ...(registeredOutputs ?? {}) };
            return { ...run, ok: false, ...(registeredOutputs ? { outputs: registeredOutputs } : {}), secretOutputs };
        }

        // After the program: deletes of resources it no longer registers and of replaced ones,
        // dependents first (pulumi/pulumi deployment_executor.go `performPostSteps`). Creation order
        // stands in for the dependency order: what depends on a resource was created after it.
        const removed = [...this.resources.values()].filter((r) => !registered.has(key(r.type, r.name)));
        const condemned = [...this.pendingDeletes, ...removed].sort((a, b) => b.seq - a.seq);
        for (const record of condemned) {
            if (!(await this.destroy(record, run))) {
                // A failed delete fails the update; the outputs were all registered, so they are
                // saved all the same. A kill saves nothing.
                if (!run.crashed) this.outputs = outputs;
                return { ...run, ok: false, outputs, secretOutputs };
            }
            if (this.pendingDeletes.includes(record)) this.pendingDeletes = this.pendingDeletes.filter((r) => r !== record);
            else this.resources.delete(key(record.type, record.name));
        }
        this.outputs = outputs;
        return { ...run, ok: true, outputs, secretOutputs };
    }

    /**
     * Queue a step the SDK sent. Steps waiting at the same time run in an order drawn from the
     * seed, one after the other; between two, the program gets a turn to send the steps the
     * finished one unblocked.
     */
    private schedule<T>(step: () => Promise<T>): Promise<T> {
        return new Promise<T>((resolve, reject) => {
            this.ready.push(() => step().then(resolve, reject));
            if (!this.pumping) {
                this.pumping = true;
                setImmediate(() => void this.pump());
            }
        });
    }

    private async pump(): Promise<void> {
        while (this.ready.length > 0) {
            const i = this.order ? Math.floor(this.order.next() * this.ready.length) : 0;
            const [step] = this.ready.splice(i, 1);
            await step();
            await new Promise((r) => setImmediate(r));
        }
        this.pumping = false;
    }

    private mocks(run: RunContext, registered: Set<string>, requests: Map<string, RegistrationOptions>): pulumi.runtime.Mocks {
        const providers = new Map<string, PlainInputs>();
        return withDetails({
            newResource: (args) => {
                if (args.type === "pulumi:pulumi:StackReference") {
                    return { id: args.name, state: { name: args.inputs.name, outputs: this.outputs ?? {}, secretOutputNames: [] } };
                }
                this.hooks.inspectInputs(args.type, args.name, args.inputs, run);
                const inputs = plain(args.inputs) as PlainInputs;
                if (!args.custom) return { id: "", state: {} };
                if (args.type.startsWith("pulumi:providers:")) {
                    const id = `${args.name}-provider`;
                    providers.set(id, inputs);
                    return { id, state: args.inputs };
                }
                const owner = args.provider ? (providers.get(args.provider.split("::").pop()!)?.owner as string | undefined) : undefined;
                const options = requests.get(key(args.type, args.name)) ?? { deleteBeforeReplace: false, aliases: [] };
                if (args.id) this.hooks.declaresImport?.(args.type, args.name, args.id, run);
                // The run has failed (recorded on `run`): the engine starts no more steps and the
                // outputs the program registers from here on are not taken. The program gets a
                // stand-in instead of a rejection, because rejected outputs nobody awaits would
                // surface as unhandled rejections in the host process, where a real engine would
                // simply have stopped the program.
                const standIn = () => {
                    const existing = this.resources.get(key(args.type, args.name));
                    return { id: existing?.id ?? `${args.name}-not-created`, state: existing ? this.state(existing, args.inputs) : { ...args.inputs, secret: pulumi.secret("") } };
                };
                const done = (record: ResourceRecord) => {
                    registered.add(key(args.type, args.name));
                    if (record.type === dynamicType) {
                        const plaintext = Object.fromEntries(Object.entries(record.outputs).filter(([name]) => !isSecretInput(args.inputs[name])));
                        this.hooks.inspectState(args.type, args.name, plaintext, run);
                    }
                    return { id: record.id, state: this.state(record, args.inputs) };
                };
                return this.schedule(async () => {
                    try {
                        return done(await this.register(args.type, args.name, inputs, owner, args.id || undefined, options, run));
                    } catch (err) {
                        this.fail(run, err, args.name);
                        if (this.continues && !run.crashed && !(err instanceof UnmodelledResourceError)) {
                            // `Result.FAIL`: the SDK rejects the resource's outputs (see `continueOnError`).
                            throw Object.assign(new Error(`${failedStepMark}${args.name}: ${messageOf(err)}`), { details: messageOf(err) });
                        }
                        return standIn();
                    }
                });
            },
            call: (args) => {
                if (args.token === "aws:iam/getAccessKeys:getAccessKeys") {
                    const user = String(args.inputs.user);
                    if (!this.world.iam.users.has(user)) {
                        // terraform-provider-aws internal/service/iam/access_keys_data_source.go
                        // `dataSourceAccessKeysRead`: "reading IAM Access Keys (%s): %s" around the
                        // not-found error `findAccessKeysByUser` makes of NoSuchEntity, whose text is
                        // "couldn't find resource"; the engine prefixes it (pkg/resource/deploy/
                        // source_eval.go: "invocation of %v returned an error: %w"). No "NoSuchEntity".
                        throw new Error(`invocation of ${args.token} returned an error: reading IAM Access Keys (${user}): couldn't find resource`);
                    }
                    const keys = this.world.iam.listKeys(user);
                    return {
                        user,
                        accessKeys: keys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: new Date(k.createdAt).toISOString() })),
                    };
                }
                if (args.token === "aws:kms/getKey:getKey") {
                    // An existing key the set names (`kms.key`): DescribeKey. It exists outside the
                    // program; the fake makes it on first use (rotation/rehearsal/stores/kms.ts).
                    const ref = String(args.inputs.keyId);
                    const arn = this.world.kms.resolve(ref) ?? this.world.kms.ensureKey(ref, "any");
                    return { keyId: ref, arn, id: arn.split("/").at(-1) };
                }
                if (args.token === "github:index/getRepository:getRepository") {
                    const fullName = String(args.inputs.fullName);
                    return { fullName, repoId: this.world.github.repoId(fullName) };
                }
                throw new Error(`Mock call not implemented: ${args.token}`);
            },
        });
    }

    /** GetAccessKeyLastUsed through a fake `IAMClient`, so the program's real observer runs. */
    private async lastUsed(command: object): Promise<unknown> {
        const name = command.constructor.name;
        const input = (command as { input?: { AccessKeyId?: string; UserName?: string } }).input;
        if (name === "ListAccessKeysCommand" && input?.UserName) {
            // IAM ListAccessKeys: NoSuchEntityException for a user that does not exist.
            const user = input.UserName;
            if (!this.world.iam.users.has(user)) {
                const err = new Error(`The user with name ${user} cannot be found.`);
                err.name = "NoSuchEntityException";
                throw err;
            }
            return {
                AccessKeyMetadata: this.world.iam.listKeys(user).map((k) => ({ UserName: user, AccessKeyId: k.accessKeyId, Status: k.status, CreateDate: new Date(k.createdAt) })),
                IsTruncated: false,
            };
        }
        if (name !== "GetAccessKeyLastUsedCommand" || !input?.AccessKeyId) {
            throw new Error(`the rehearsal's IAM client does not implement ${name}`);
        }
        const found = this.world.iam.key(input.AccessKeyId);
        if (!found) throw new Error(`NoSuchEntity: The Access Key with id ${input.AccessKeyId} cannot be found.`);
        const used = found.lastUsedAt !== undefined;
        return {
            UserName: found.user,
            AccessKeyLastUsed: {
                LastUsedDate: used ? new Date(found.lastUsedAt!) : undefined,
                ServiceName: used ? "sts" : "N/A",
                Region: used ? "us-east-1" : "N/A",
            },
        };
    }

    /**
     * The state the mock returns for a resource. Under mocks the engine does not mark provider
     * outputs secret (FACTS.md): the mock must. An output is secret when the input of the same
     * name was, as the engine re-marks it, and the access key's `secret` always is. A dynamic
     * provider's state is its outputs alone (the real provider's `outs`).
     */
    private state(record: ResourceRecord, rawInputs: Record<string, unknown>): Record<string, unknown> {
        const outputs = Object.fromEntries(
            Object.entries(record.outputs).map(([name, value]) => [
                name,
                (record.type === accessKeyType && name === "secret") || isSecretInput(rawInputs[name]) ? pulumi.secret(value) : value,
            ]),
        );
        return record.type === dynamicType ? outputs : { ...rawInputs, ...outputs };
    }

    /** A failure that escaped an operation (the engine's own checks) still fails the run. */
    private fail(run: RunContext, err: unknown, resource?: string): void {
        if (err instanceof UnmodelledResourceError) run.unmodelled ??= err.message;
        if (run.failure === undefined || err instanceof UnmodelledResourceError) {
            const message = messageOf(err);
            if (!run.errors.includes(message)) run.errors.push(message);
            if (run.failure === undefined && resource !== undefined) run.failedResource = resource;
            run.failure ??= message;
        }
    }

    /** What changes for a resource that exists: the provider's diff, or any input change. */
    private change(existing: ResourceRecord, model: ResourceModel, inputs: PlainInputs): Change {
        if (model.diff) return model.diff(existing.outputs, inputs);
        if (canonical(existing.inputs) === canonical(inputs)) return "none";
        return (model.replaceOn ?? []).some((f) => canonical(existing.inputs[f]) !== canonical(inputs[f])) ? "replace" : "update";
    }

    /**
     * Create, import, update, replace or keep a registered resource, applying the change to the
     * world. Runs as one step of the engine.
     */
    private async register(type: string, name: string, inputs: PlainInputs, owner: string | undefined, importId: string | undefined, options: RegistrationOptions, run: RunContext): Promise<ResourceRecord> {
        const model = modelFor(type, name, inputs);
        let existing = this.resources.get(key(type, name));
        if (!existing) {
            // An alias names the resource's old URN: the engine treats it as the same resource.
            const alias = options.aliases.find((a) => this.resources.has(key(type, a)));
            if (alias !== undefined) {
                const old = this.resources.get(key(type, alias))!;
                this.resources.delete(key(type, alias));
                existing = { ...old, name };
                this.resources.set(key(type, name), existing);
            }
        }
        if (run.failure !== undefined && (run.crashed || !this.continues)) throw new Error(`the update was stopped by an earlier failure; ${name} was not ${existing ? "updated" : "created"}`);
        // An import happens when no resource of that name exists or its id differs; then the old
        // one is replaced (pulumi/pulumi step_generator.go `isImport`, import-replacement).
        if (importId !== undefined && (!existing || existing.id !== importId)) {
            const imported = await this.import(type, name, inputs, importId, run);
            if (existing) this.pendingDeletes.push(existing);
            imported.trigger = options.replacementTrigger;
            return imported;
        }
        const change = existing && triggerReplaces(options.replacementTrigger, existing.trigger) ? "replace" : existing ? this.change(existing, model, inputs) : "create";
        if (existing && change === "none") {
            // Same resource: the engine keeps its outputs and records the new inputs and options
            // (a trigger set for the first time is saved without a replacement).
            const same = { ...existing, ...(model.diff ? { inputs } : {}), trigger: options.replacementTrigger };
            this.resources.set(key(type, name), same);
            return same;
        }
        // Where the resource will write, so a fault can reject writes to one target.
        const writes = model.writes?.(inputs, owner).map((w) => w.address) ?? [];
        const where = writes.length ? { addresses: writes } : {};
        const keyInfo = type === accessKeyType ? { user: String(inputs.user) } : {};
        const ctx = this.context(run, owner);

        if (!existing || change === "replace") {
            // Replacement is create-then-delete unless the program (the `deleteBeforeReplace`
            // option) or the provider (pulumi-github provider/resources.go sets it for
            // `github_actions_environment_secret` alone; a dynamic provider's diff may ask) says
            // otherwise (pulumi/pulumi step_generator.go: replacement steps).
            const deleteFirst = existing !== undefined && (options.deleteBeforeReplace || model.deleteBeforeReplace === true);
            if (existing && deleteFirst) {
                // The old resource goes first; a failed create then leaves nothing (FACTS.md).
                if (!(await this.destroy(existing, run))) throw new Error(`${name} was not replaced: its delete failed`);
                this.resources.delete(key(type, name));
            }
            const record = await this.apply(run, { action: "create", type, name, ...where, ...keyInfo }, () => this.create(type, name, model, inputs, ctx));
            record.trigger = options.replacementTrigger;
            // The replaced resource waits for the end of the run (`Delete: true` in the state).
            if (existing && !deleteFirst) this.pendingDeletes.push(existing);
            this.resources.set(key(type, name), record);
            return record;
        }
        const status = type === accessKeyType ? { accessKeyId: existing.id, status: inputs.status as "Active" | "Inactive" } : {};
        const before = existing;
        try {
            const updated = await this.apply(run, { action: "update", type, name, ...where, ...keyInfo, ...status }, () => this.update(before, model, inputs, ctx));
            updated.trigger = options.replacementTrigger;
            this.resources.set(key(type, name), updated);
            return updated;
        } catch (err) {
            if ((type.startsWith("github:") || type === accessKeyType) && !run.crashed) {
                // A failed update of a bridged (Terraform SDKv2) resource saves the planned value.
                // Both GitHub's resources and `aws_iam_access_key` are SDKv2 resources; the access
                // key's update returns UpdateAccessKey's error without `d.Partial`
                // (hashicorp/terraform-provider-aws internal/service/iam/access_key.go
                // `resourceAccessKeyUpdate`), so a failed deactivation is saved as Inactive while
                // IAM keeps the key Active. The provider returns the planned state with the error
                // (terraform-plugin-sdk helper/schema/grpc_provider.go `ApplyResourceChange`;
                // pulumi-terraform-bridge pkg/tfbridge/provider.go `Update` through
                // `initializationError`), and the engine records those inputs and outputs
                // (pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go `Update`). The next
                // run's same inputs show no difference, and the store keeps the old value.
                const outputs = type === accessKeyType ? { ...before.outputs, status: inputs.status } : before.outputs;
                this.resources.set(key(type, name), { ...before, inputs, outputs, trigger: options.replacementTrigger });
            }
            throw err;
        }
    }

    /**
     * The `import` resource option: read the cloud resource by id and adopt it. The engine fails
     * when it does not exist (pulumi/pulumi pkg/resource/deploy/step.go `ImportStep.Apply`:
     * "resource '%v' does not exist"), and when the declared inputs differ from what it read (the
     * `import` option's documented contract). An imported access key has no `secret`:
     * terraform-provider-aws cannot read it back.
     */
    private async import(type: string, name: string, inputs: PlainInputs, id: string, run: RunContext): Promise<ResourceRecord> {
        const keyInfo = type === accessKeyType ? { user: String(inputs.user), accessKeyId: id } : {};
        return this.apply(run, { action: "import", type, name, ...keyInfo }, () => {
            const record: ResourceRecord = { type, name, id, inputs, outputs: {}, writes: [], seq: ++this.seq };
            if (type === accessKeyType) {
                const found = this.world.iam.key(id);
                if (!found) throw new Error(`resource '${id}' does not exist`);
                const status = inputs.status ?? "Active";
                if (found.user !== inputs.user || found.status !== status) {
                    throw new Error(`inputs to import do not match the existing resource: user ${found.user} and status ${found.status}, declared ${String(inputs.user)} and ${String(status)}`);
                }
                record.outputs = { id, status: found.status, createDate: new Date(found.createdAt).toISOString() };
            } else if (type === userType) {
                if (!this.world.iam.users.has(id)) throw new Error(`resource '${id}' does not exist`);
                record.outputs = { name: id, arn: this.world.iam.userArn(id) };
            } else {
                throw new UnmodelledResourceError(`the rehearsal cannot import ${name} (${type}): only IAM users and access keys are modelled for \`import\``);
            }
            this.resources.set(key(type, name), record);
            return record;
        });
    }

    /** What a model's create or update can reach: the world and the run's simulated clock. */
    private context(run: RunContext, owner: string | undefined): ModelContext {
        const clock: RetryClock = {
            now: () => nowOf(run),
            sleep: async (ms) => {
                run.elapsedMs += ms;
            },
        };
        return { world: this.world, clock, owner, noteFault: (text) => run.worldFaults.push(text) };
    }

    /**
     * Run one operation through the hooks; a failure is recorded on the run and rethrown. A kill
     * while the provider call is in flight (a {@link CrashSignal} from `afterEffect`) leaves the
     * world changed and the operation unrecorded.
     */
    private async apply<T extends ResourceRecord | void>(run: RunContext, pending: PendingOperation, effect: () => T | Promise<T>): Promise<T> {
        try {
            this.hooks.beforeOperation(pending, run);
            const result = await effect();
            try {
                this.hooks.afterEffect?.(pending, run);
            } catch (err) {
                // The provider finished; the engine never checkpointed it (pulumi/pulumi
                // deployment_executor.go `printPendingOperationsWarning`: the next update proceeds
                // and an interrupted create is not in the state).
                const op: Operation = { ...pending, index: run.operations.length + 1, lost: true };
                if (result && pending.action === "create" && pending.type === accessKeyType) op.accessKeyId = (result as ResourceRecord).id;
                run.operations.push(op);
                this.hooks.afterOperation(op, run);
                throw err;
            }
            const op: Operation = { ...pending, index: run.operations.length + 1 };
            if (result && pending.action === "create" && pending.type === accessKeyType) op.accessKeyId = (result as ResourceRecord).id;
            run.operations.push(op);
            this.hooks.afterOperation(op, run);
            return result;
        } catch (err) {
            if (err instanceof CrashSignal) run.crashed = true;
            if (err instanceof UnmodelledResourceError) throw err;
            const message = `${pending.action} ${pending.name}: ${messageOf(err)}`;
            run.errors.push(message);
            run.failedResource ??= pending.name;
            run.failure ??= message;
            throw err instanceof CrashSignal ? err : new Error(message);
        }
    }

    private create(type: string, name: string, model: ResourceModel, inputs: PlainInputs, ctx: ModelContext): ResourceRecord | Promise<ResourceRecord> {
        const iam = this.world.iam;
        const at = ctx.clock.now();
        const record: ResourceRecord = { type, name, id: `${name}-id`, inputs, outputs: {}, writes: [], seq: ++this.seq };
        switch (type) {
            case userType:
                iam.createUser(String(inputs.name), String(inputs.path ?? "/"));
                record.id = String(inputs.name);
                record.outputs = { name: inputs.name, arn: iam.userArn(String(inputs.name)) };
                return record;
            case accessKeyType: {
                let created;
                try {
                    created = iam.createAccessKey(String(inputs.user), at);
                } catch (err) {
                    // terraform-provider-aws internal/service/iam/access_key.go
                    // `resourceAccessKeyCreate`: "creating IAM Access Key (%s): %s".
                    throw new Error(`creating IAM Access Key (${String(inputs.user)}): ${messageOf(err)}`);
                }
                if (inputs.status === "Inactive") iam.updateAccessKey(created.accessKeyId, "Inactive", at);
                record.id = created.accessKeyId;
                record.outputs = { id: created.accessKeyId, secret: created.secret, status: inputs.status ?? "Active", createDate: new Date(at).toISOString() };
                return record;
            }
        }
        record.writes = this.write(model, inputs, ctx);
        const finish = (outputs: Record<string, unknown>): ResourceRecord => ({ ...record, outputs, id: model.id?.(inputs, outputs) ?? record.id });
        const outputs = model.outputs?.(inputs, ctx) ?? {};
        return outputs instanceof Promise ? outputs.then(finish) : finish(outputs);
    }

    private update(existing: ResourceRecord, model: ResourceModel, inputs: PlainInputs, ctx: ModelContext): ResourceRecord | Promise<ResourceRecord> {
        if (existing.type === accessKeyType) {
            const status = (inputs.status as "Active" | "Inactive" | undefined) ?? "Active";
            this.world.iam.updateAccessKey(existing.id, status, ctx.clock.now());
            return { ...existing, inputs, outputs: { ...existing.outputs, status } };
        }
        if (existing.type === userType) return { ...existing, inputs };
        const writes = this.write(model, inputs, ctx);
        // An address the new inputs no longer write (a repository dropped from a list) is cleared.
        for (const old of existing.writes) if (!writes.some((w) => w.address === old.address)) this.world.stores.delete(old.address, ctx.clock.now());
        const finish = (outputs: Record<string, unknown>): ResourceRecord => ({ ...existing, inputs, writes, outputs: model.dynamic ? outputs : { ...existing.outputs, ...outputs } });
        const outputs = model.outputs?.(inputs, ctx) ?? {};
        return outputs instanceof Promise ? outputs.then(finish) : finish(outputs);
    }

    private write(model: ResourceModel, inputs: PlainInputs, ctx: ModelContext): StoreWrite[] {
        const writes = model.writes?.(inputs, ctx.owner) ?? [];
        for (const w of writes) this.world.stores.write(w.address, { value: w.value, secret: w.secret, meta: w.meta }, ctx.clock.now());
        return writes;
    }

    /** Delete a resource from the world; false (and the run failed) when the delete failed. */
    private async destroy(record: ResourceRecord, run: RunContext): Promise<boolean> {
        const pending: PendingOperation = {
            action: "delete",
            type: record.type,
            name: record.name,
            ...(record.type === accessKeyType ? { accessKeyId: record.id, user: String(record.inputs.user) } : {}),
            ...(record.writes.length ? { addresses: record.writes.map((w) => w.address) } : {}),
        };
        try {
            await this.apply(run, pending, () => {
                // A resource already gone counts as deleted (terraform-provider-aws access_key.go
                // `resourceAccessKeyDelete` ignores NoSuchEntity), as after a delete a kill interrupted.
                if (record.type === accessKeyType) {
                    if (this.world.iam.key(record.id)) this.world.iam.deleteAccessKey(record.id, nowOf(run));
                } else if (record.type === userType) this.world.iam.deleteUser(record.id);
                for (const w of record.writes) this.world.stores.delete(w.address, nowOf(run));
            });
            return true;
        } catch {
            return false;
        }
    }
}

/**
 * Record the options of every registration the SDK sends to the mock monitor: the mocks' own
 * `newResource` never sees them (FACTS.md), and the engine's replacement and aliasing follow them.
 */
function captureOptions(requests: Map<string, RegistrationOptions>): void {
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: Record<string, () => unknown>, cb: unknown): unknown; __captured?: boolean };
    if (!monitor || monitor.__captured) return;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
        requests.set(key(String(req.getType()), String(req.getName())), registrationOptions(req as Record<string, (() => unknown) | undefined>));
        return original(req, cb);
    };
    monitor.__captured = true;
}

/**
 * The SDK turns a monitor error into `new Error(err.details)`, as it would a gRPC status: give
 * every error the mocks throw its message as `details`, so the program sees AWS's message.
 */
function withDetails(mocks: pulumi.runtime.Mocks): pulumi.runtime.Mocks {
    const wrap = <A, R>(f: (a: A) => R) => (a: A): R => {
        try {
            return f(a);
        } catch (err) {
            const e = err instanceof Error ? err : new Error(String(err));
            (e as Error & { details?: string }).details = e.message;
            throw e;
        }
    };
    return { newResource: wrap(mocks.newResource.bind(mocks)), call: wrap(mocks.call.bind(mocks)) };
}

/**
 * Switch off two debugging aids of the SDK for the length of a run, and return the function that
 * switches them back on. Both capture a stack trace: `debuggablePromise` on every promise the
 * runtime makes (to name leaked promises when the process exits), `Resource.callsites` on every
 * registration (a source position for the engine's display, which the mock monitor drops). They
 * were a third of a mocked run's time and change nothing the program or the engine model does.
 */
function withoutSdkDiagnostics(): () => void {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const debuggable = require("@pulumi/pulumi/runtime/debuggable") as { debuggablePromise?: unknown };
    const resource = require("@pulumi/pulumi/resource") as { Resource?: { callsites?: unknown } };
    /* eslint-enable @typescript-eslint/no-require-imports */
    const promise = debuggable.debuggablePromise;
    const callsites = resource.Resource?.callsites;
    if (typeof promise === "function") debuggable.debuggablePromise = <T>(p: Promise<T>) => p;
    if (resource.Resource && typeof callsites === "function") resource.Resource.callsites = () => [];
    return () => {
        if (typeof promise === "function") debuggable.debuggablePromise = promise;
        if (resource.Resource && typeof callsites === "function") resource.Resource.callsites = callsites;
    };
}

/** Route console output (where the SDK's `pulumi.log` goes without an engine) into `lines`, errors also into `errors`. */
function captureConsole(lines: string[], errors: string[]): () => void {
    const methods = ["log", "info", "warn", "error", "debug"] as const;
    const saved = methods.map((m) => console[m]);
    for (const m of methods) {
        console[m] = (...args: unknown[]) => {
            const line = args.map((a) => (typeof a === "string" ? a : messageOf(a))).join(" ");
            lines.push(line);
            if (m === "error") errors.push(line);
        };
    }
    return () => methods.forEach((m, i) => (console[m] = saved[i]));
}

/** The message of anything thrown, without a stack. */
export function messageOf(err: unknown): string {
    if (err instanceof Error) return err.message;
    if (typeof err === "string") return err;
    try {
        return JSON.stringify(err);
    } catch {
        return String(err);
    }
}
