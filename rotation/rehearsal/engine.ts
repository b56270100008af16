import * as pulumi from "@pulumi/pulumi";
import type { IAMClient } from "@aws-sdk/client-iam";
import { providerObserver } from "../aws";
import { clockVariable } from "../clock";
import type { RetryClock } from "../aws-calls";
import { modelFor, UnmodelledResourceError, type Change, type ModelContext, type PlainInputs, type ResourceModel, type StoreWrite } from "./targets";
import type { World } from "./world";

/**
 * A model of the Pulumi engine driving the real program under `pulumi.runtime.setMocks`. It
 * keeps the stack's resources between runs and applies the engine's rules (FACTS.md):
 * - creates and updates happen when a resource registers, in the order registrations arrive;
 * - a resource that exists keeps its id and outputs (an access key keeps its secret) unless an
 *   input that forces replacement changes; replacement is create-then-delete;
 * - resources the program no longer registers are deleted after the program ends, newest first
 *   (dependents were created after what they depend on);
 * - stack outputs are written when the program completes with every create and update applied;
 *   the deletes come after, so a failed delete fails the run but keeps the new outputs (as the
 *   real engine's checkpoint does), and a replaced resource whose delete did not happen is
 *   deleted first on the next run;
 * - a run that fails or crashes keeps what it applied and writes no outputs;
 * - a dynamic provider's own diff decides whether its resource changes, and its create or update
 *   may take simulated time (the key check retrying while IAM makes a key usable);
 * - a resource the rehearsal has no model of fails the run, and the rehearsal stops.
 */

/** The secret sentinel the SDK puts around secret values it sends to the (mock) monitor. */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretSigValue = "1b47061264138c4ac30d75fd1eb44270";

/** One change the engine made to the world. */
export interface Operation {
    /** 1-based position in its run. */
    index: number;
    action: "create" | "update" | "delete";
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
}

/** An operation about to happen (no index or key id yet for a create). */
export type PendingOperation = Omit<Operation, "index">;

/** What the simulator plugs into the engine: fault injection and invariant checks. */
export interface EngineHooks {
    /** Before an operation reaches the world. Throw to make it fail (an API error, a crash). */
    beforeOperation(op: PendingOperation, run: RunContext): void;
    /** After an operation applied. */
    afterOperation(op: Operation, run: RunContext): void;
    /** Every registration's inputs as the monitor received them (for secrets in plain inputs). */
    inspectInputs(type: string, name: string, inputs: Record<string, unknown>, run: RunContext): void;
    /** A dynamic provider's state after each registration: the outputs the engine stores unencrypted. */
    inspectState(type: string, name: string, plaintextOutputs: Record<string, unknown>, run: RunContext): void;
}

/** Thrown by a hook to end the run at once, as a killed `pulumi up` would. */
export class CrashSignal extends Error {
    constructor(afterOperations: number) {
        super(`simulated crash after ${afterOperations} operation(s)`);
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
    /** First failure; the engine applies nothing after it. */
    failure?: string;
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
    /** Stack outputs written by this run, if it wrote them. */
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
}

/** Pulumi's stack name and project for the self-StackReference. */
export interface StackIdentity {
    project: string;
    stack: string;
}

type Program = (deps: {
    observer?: ReturnType<typeof providerObserver>;
    env?: NodeJS.ProcessEnv;
    /** Called when sets were blocked: the real program then exits non-zero (rotation/program.ts `endBlockedRun`). */
    fail?: (code: number, error: Error) => void;
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

/** The engine model: one per rehearsal, holding the stack's resources and outputs between runs. */
export class Engine {
    private readonly resources = new Map<string, ResourceRecord>();
    /** Replaced resources whose delete has not happened yet. */
    private pendingDeletes: ResourceRecord[] = [];
    private seq = 0;
    /** The stack outputs of the last run that wrote them. */
    outputs: Record<string, unknown> | undefined;
    private program: Program | undefined;

    constructor(
        private readonly world: World,
        private readonly identity: StackIdentity,
        private readonly hooks: EngineHooks,
    ) {}

    /** Resources the stack holds, for checks (type and name, id, plain outputs). */
    managed(): ReadonlyMap<string, Readonly<ResourceRecord>> {
        return this.resources;
    }

    /** Run the program once at `at` with the given stack config (full keys, string values). */
    async run(at: number, config: Record<string, string>): Promise<EngineRun> {
        const run: RunContext = { at, operations: [], logs: [], errors: [], crashed: false, elapsedMs: 0, worldFaults: [] };
        const registered = new Set<string>();

        // Deletes a failed run left pending come first, as the engine does on the next update.
        for (const record of [...this.pendingDeletes]) {
            if (!this.destroy(record, run)) return { ...run, ok: false, secretOutputs: [] };
            this.pendingDeletes = this.pendingDeletes.filter((r) => r !== record);
        }

        const restore = captureConsole(run.logs);
        const stackTraceLimit = Error.stackTraceLimit;
        const prepareStackTrace = Error.prepareStackTrace;
        // The SDK records a stack trace for every promise and resource (and raises the limit to
        // find source positions); formatting them is most of a mocked run's time, and no
        // simulated run needs them. Messages are kept; only stacks go.
        Error.stackTraceLimit = 0;
        Error.prepareStackTrace = (err: Error) => `${err.name}: ${err.message}`;
        const restoreSdk = withoutSdkDiagnostics();
        let outputs: Record<string, unknown> | undefined;
        const secretOutputs: string[] = [];
        try {
            pulumi.runtime.setMocks(this.mocks(run, registered), this.identity.project, this.identity.stack, false, "organization");
            pulumi.runtime.setAllConfig(config, []);
            this.program ??= require("../../index") as Program;
            const iam = { send: (command: object) => this.lastUsed(command) } as unknown as IAMClient;
            // A blocked set makes the program exit non-zero after registering: the engine then
            // skips every delete (the blocked set's resources stay). Recorded as a failed run.
            const fail = (_code: number, error: Error) => {
                run.errors.push(messageOf(error));
                run.failure ??= messageOf(error);
            };
            const result = await this.program({ observer: providerObserver(() => iam), env: { [clockVariable]: new Date(at).toISOString() }, fail });
            outputs = {};
            for (const [name, value] of Object.entries(result)) {
                if (pulumi.Output.isInstance(value)) {
                    const internal = value as unknown as { promise(): Promise<unknown>; isSecret: Promise<boolean> };
                    outputs[name] = await internal.promise();
                    if (await internal.isSecret) secretOutputs.push(name);
                } else {
                    outputs[name] = value;
                }
            }
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
            Error.stackTraceLimit = stackTraceLimit;
            Error.prepareStackTrace = prepareStackTrace;
            restoreSdk();
            restore();
        }
        if (run.failure !== undefined) return { ...run, ok: false, secretOutputs };

        this.outputs = outputs;
        const removed = [...this.resources.values()].filter((r) => !registered.has(key(r.type, r.name))).sort((a, b) => b.seq - a.seq);
        for (const record of removed) {
            if (!this.destroy(record, run)) return { ...run, ok: false, outputs, secretOutputs };
            this.resources.delete(key(record.type, record.name));
        }
        return { ...run, ok: true, outputs, secretOutputs };
    }

    private mocks(run: RunContext, registered: Set<string>): pulumi.runtime.Mocks {
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
                // The run has failed (recorded on `run`): the engine applies nothing more and
                // writes no outputs. The program gets a stand-in instead of a rejection, because
                // rejected outputs nobody awaits would surface as unhandled rejections in the
                // host process, where a real engine would simply have stopped the program.
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
                let result: ResourceRecord | Promise<ResourceRecord>;
                try {
                    result = this.register(args.type, args.name, inputs, owner, run);
                } catch (err) {
                    this.fail(run, err);
                    return standIn();
                }
                if (!(result instanceof Promise)) return done(result);
                return result.then(done, (err: unknown) => {
                    this.fail(run, err);
                    return standIn();
                });
            },
            call: (args) => {
                if (args.token === "aws:iam/getAccessKeys:getAccessKeys") {
                    const user = String(args.inputs.user);
                    const keys = this.world.iam.listKeys(user);
                    return {
                        user,
                        accessKeys: keys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: new Date(k.createdAt).toISOString() })),
                    };
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
        const input = (command as { input?: { AccessKeyId?: string } }).input;
        if (command.constructor.name !== "GetAccessKeyLastUsedCommand" || !input?.AccessKeyId) {
            throw new Error(`the rehearsal's IAM client does not implement ${command.constructor.name}`);
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
    private fail(run: RunContext, err: unknown): void {
        if (err instanceof UnmodelledResourceError) run.unmodelled ??= err.message;
        if (run.failure === undefined || err instanceof UnmodelledResourceError) {
            const message = messageOf(err);
            if (!run.errors.includes(message)) run.errors.push(message);
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
     * Create, update, replace or keep a registered resource, applying the change to the world.
     * Returns a promise when the provider takes (simulated) time.
     */
    private register(type: string, name: string, inputs: PlainInputs, owner: string | undefined, run: RunContext): ResourceRecord | Promise<ResourceRecord> {
        const model = modelFor(type, name, inputs);
        const existing = this.resources.get(key(type, name));
        const change = existing ? this.change(existing, model, inputs) : "create";
        if (existing && change === "none") {
            // Same resource: the engine keeps its outputs and records the new inputs.
            if (model.diff) this.resources.set(key(type, name), { ...existing, inputs });
            return existing;
        }
        if (run.failure !== undefined) throw new Error(`the update was stopped by an earlier failure; ${name} was not ${existing ? "updated" : "created"}`);
        // Where the resource will write, so a fault can reject writes to one target.
        const writes = model.writes?.(inputs, owner).map((w) => w.address) ?? [];
        const where = writes.length ? { addresses: writes } : {};
        const keyInfo = type === accessKeyType ? { user: String(inputs.user) } : {};
        const ctx = this.context(run, owner);

        if (!existing || change === "replace") {
            if (existing && model.deleteBeforeReplace) {
                // The old resource goes first; a failed create then leaves nothing (FACTS.md).
                if (!this.destroy(existing, run)) throw new Error(`${name} was not replaced: its delete failed`);
                this.resources.delete(key(type, name));
            }
            const created = this.apply(run, { action: "create", type, name, ...where, ...keyInfo }, () => this.create(type, name, model, inputs, ctx));
            const store = (record: ResourceRecord) => {
                if (existing && !model.deleteBeforeReplace) this.pendingDeletes.push(existing);
                this.resources.set(key(type, name), record);
                return record;
            };
            return created instanceof Promise ? created.then(store) : store(created);
        }
        const status = type === accessKeyType ? { accessKeyId: existing.id, status: inputs.status as "Active" | "Inactive" } : {};
        const updated = this.apply(run, { action: "update", type, name, ...where, ...keyInfo, ...status }, () => this.update(existing, model, inputs, ctx));
        const store = (record: ResourceRecord) => {
            this.resources.set(key(type, name), record);
            return record;
        };
        return updated instanceof Promise ? updated.then(store) : store(updated);
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
     * Run one operation through the hooks; a failure is recorded on the run and rethrown. An
     * effect that returns a promise (a provider taking simulated time) is applied when it settles.
     */
    private apply<T extends ResourceRecord | void>(run: RunContext, pending: PendingOperation, effect: () => T | Promise<T>): T | Promise<T> {
        const failed = (err: unknown): never => {
            if (err instanceof CrashSignal) run.crashed = true;
            const message = `${pending.action} ${pending.name}: ${messageOf(err)}`;
            run.errors.push(message);
            run.failure ??= message;
            throw err instanceof CrashSignal ? err : new Error(message);
        };
        const applied = (result: T): T => {
            const op: Operation = { ...pending, index: run.operations.length + 1 };
            if (result && pending.action === "create" && pending.type === accessKeyType) op.accessKeyId = result.id;
            run.operations.push(op);
            this.hooks.afterOperation(op, run);
            return result;
        };
        try {
            this.hooks.beforeOperation(pending, run);
            const result = effect();
            if (result instanceof Promise) return result.then(applied, failed);
            return applied(result);
        } catch (err) {
            return failed(err);
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
                const created = iam.createAccessKey(String(inputs.user), at);
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
        for (const old of existing.writes) if (!writes.some((w) => w.address === old.address)) this.world.stores.delete(old.address);
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
    private destroy(record: ResourceRecord, run: RunContext): boolean {
        const pending: PendingOperation = {
            action: "delete",
            type: record.type,
            name: record.name,
            ...(record.type === accessKeyType ? { accessKeyId: record.id, user: String(record.inputs.user) } : {}),
            ...(record.writes.length ? { addresses: record.writes.map((w) => w.address) } : {}),
        };
        try {
            this.apply(run, pending, () => {
                if (record.type === accessKeyType) this.world.iam.deleteAccessKey(record.id, nowOf(run));
                else if (record.type === userType) this.world.iam.deleteUser(record.id);
                for (const w of record.writes) this.world.stores.delete(w.address);
            });
            return true;
        } catch {
            return false;
        }
    }
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

/** Route console output (where the SDK's `pulumi.log` goes without an engine) into `lines`. */
function captureConsole(lines: string[]): () => void {
    const methods = ["log", "info", "warn", "error", "debug"] as const;
    const saved = methods.map((m) => console[m]);
    for (const m of methods) console[m] = (...args: unknown[]) => void lines.push(args.map((a) => (typeof a === "string" ? a : messageOf(a))).join(" "));
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
