import * as pulumi from "@pulumi/pulumi";
import type { IAMClient } from "@aws-sdk/client-iam";
import { providerObserver } from "../aws";
import { clockVariable } from "../clock";
import { modelFor, type PlainInputs, type StoreWrite } from "./targets";
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
 * - a run that fails or crashes keeps what it applied and writes no outputs.
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

type Program = (deps: { observer?: ReturnType<typeof providerObserver>; env?: NodeJS.ProcessEnv }) => Promise<Record<string, unknown>>;

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
const accessKeyReplaceOn = ["user", "pgpKey"];

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
        const run: RunContext = { at, operations: [], logs: [], errors: [], crashed: false };
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
        let outputs: Record<string, unknown> | undefined;
        const secretOutputs: string[] = [];
        try {
            pulumi.runtime.setMocks(this.mocks(run, registered), this.identity.project, this.identity.stack, false, "organization");
            pulumi.runtime.setAllConfig(config, []);
            this.program ??= require("../../index") as Program;
            const iam = { send: (command: object) => this.lastUsed(command) } as unknown as IAMClient;
            const result = await this.program({ observer: providerObserver(() => iam), env: { [clockVariable]: new Date(at).toISOString() } });
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
                let record: ResourceRecord;
                try {
                    record = this.register(args.type, args.name, inputs, owner, run);
                } catch {
                    // The run has failed (recorded on `run`): the engine applies nothing more and
                    // writes no outputs. The program gets a stand-in instead of a rejection, because
                    // rejected outputs nobody awaits would surface as unhandled rejections in the
                    // host process, where a real engine would simply have stopped the program.
                    const existing = this.resources.get(key(args.type, args.name));
                    return { id: existing?.id ?? `${args.name}-not-created`, state: existing ? this.state(existing, args.inputs) : { ...args.inputs, secret: pulumi.secret("") } };
                }
                registered.add(key(args.type, args.name));
                return { id: record.id, state: this.state(record, args.inputs) };
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

    /** The state the mock returns for a resource: its stored outputs, the key's secret as a secret. */
    private state(record: ResourceRecord, rawInputs: Record<string, unknown>): Record<string, unknown> {
        if (record.type !== accessKeyType) return { ...rawInputs, ...record.outputs };
        const { secret, ...rest } = record.outputs;
        // Under mocks the engine does not mark provider outputs secret: the mock must (FACTS.md).
        return { ...rawInputs, ...rest, secret: pulumi.secret(secret as string) };
    }

    /** Create, update, replace or keep a registered resource, applying the change to the world. */
    private register(type: string, name: string, inputs: PlainInputs, owner: string | undefined, run: RunContext): ResourceRecord {
        const existing = this.resources.get(key(type, name));
        if (existing && canonical(existing.inputs) === canonical(inputs)) return existing;
        if (run.failure !== undefined) throw new Error(`the update was stopped by an earlier failure; ${name} was not ${existing ? "updated" : "created"}`);
        const model = type === accessKeyType ? undefined : modelFor(type, inputs);
        const replaceOn = type === accessKeyType ? accessKeyReplaceOn : (model?.replaceOn ?? []);
        const replace = existing !== undefined && replaceOn.some((f) => canonical(existing.inputs[f]) !== canonical(inputs[f]));
        // Where the resource will write, so a fault can reject writes to one target.
        const writes = model?.writes(inputs, owner).map((w) => w.address) ?? [];
        const where = writes.length ? { addresses: writes } : {};

        if (!existing || replace) {
            const record = this.apply(run, { action: "create", type, name, ...where, ...(type === accessKeyType ? { user: String(inputs.user) } : {}) }, () => this.create(type, name, inputs, owner, run.at));
            if (existing) this.pendingDeletes.push(existing);
            this.resources.set(key(type, name), record);
            return record;
        }
        const updated = this.apply(run, { action: "update", type, name, ...where, ...(type === accessKeyType ? { accessKeyId: existing.id, user: String(inputs.user), status: inputs.status as "Active" | "Inactive" } : {}) }, () =>
            this.update(existing, inputs, owner, run.at),
        );
        this.resources.set(key(type, name), updated);
        return updated;
    }

    /** Run one operation through the hooks; a failure is recorded on the run and rethrown. */
    private apply<T extends ResourceRecord | void>(run: RunContext, pending: PendingOperation, effect: () => T): T {
        try {
            this.hooks.beforeOperation(pending, run);
            const result = effect();
            const op: Operation = { ...pending, index: run.operations.length + 1 };
            if (result && pending.action === "create" && pending.type === accessKeyType) op.accessKeyId = result.id;
            run.operations.push(op);
            this.hooks.afterOperation(op, run);
            return result;
        } catch (err) {
            if (err instanceof CrashSignal) run.crashed = true;
            const message = `${pending.action} ${pending.name}: ${messageOf(err)}`;
            run.errors.push(message);
            run.failure ??= message;
            throw err instanceof CrashSignal ? err : new Error(message);
        }
    }

    private create(type: string, name: string, inputs: PlainInputs, owner: string | undefined, at: number): ResourceRecord {
        const iam = this.world.iam;
        const record: ResourceRecord = { type, name, id: `${name}-id`, inputs, outputs: {}, writes: [], seq: ++this.seq };
        switch (type) {
            case "aws:iam/user:User":
                iam.createUser(String(inputs.name));
                record.id = String(inputs.name);
                record.outputs = { name: inputs.name, arn: `arn:aws:iam::123456789012:user${inputs.path ?? "/"}${inputs.name}` };
                return record;
            case accessKeyType: {
                const created = iam.createAccessKey(String(inputs.user), at);
                if (inputs.status === "Inactive") iam.updateAccessKey(created.accessKeyId, "Inactive", at);
                record.id = created.accessKeyId;
                record.outputs = { id: created.accessKeyId, secret: created.secret, status: inputs.status ?? "Active", createDate: new Date(at).toISOString() };
                return record;
            }
        }
        record.writes = this.write(type, inputs, owner, at);
        return record;
    }

    private update(existing: ResourceRecord, inputs: PlainInputs, owner: string | undefined, at: number): ResourceRecord {
        if (existing.type === accessKeyType) {
            const status = (inputs.status as "Active" | "Inactive" | undefined) ?? "Active";
            this.world.iam.updateAccessKey(existing.id, status, at);
            return { ...existing, inputs, outputs: { ...existing.outputs, status } };
        }
        const writes = this.write(existing.type, inputs, owner, at);
        // An address the new inputs no longer write (a repository dropped from a list) is cleared.
        for (const old of existing.writes) if (!writes.some((w) => w.address === old.address)) this.world.stores.delete(old.address);
        return { ...existing, inputs, writes };
    }

    private write(type: string, inputs: PlainInputs, owner: string | undefined, at: number): StoreWrite[] {
        const writes = modelFor(type, inputs)?.writes(inputs, owner) ?? [];
        for (const w of writes) this.world.stores.write(w.address, { value: w.value, secret: w.secret, meta: w.meta }, at);
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
                if (record.type === accessKeyType) this.world.iam.deleteAccessKey(record.id, run.at);
                else if (record.type === "aws:iam/user:User") this.world.iam.deleteUser(record.id);
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
