import * as pulumi from "@pulumi/pulumi";

/** One resource registration seen by the mock monitor. */
export interface Registration {
    type: string;
    name: string;
    inputs: Record<string, any>;
    provider?: string;
    id: string;
    /** The `import` resource option, when set (the mock monitor passes it as the id to import). */
    importId?: string;
}

/** Resource options of one registration, as the engine would receive them. */
export interface RegisteredOptions {
    deleteBeforeReplace: boolean;
    /** Alias names (alias specs) or URNs. */
    aliases: string[];
    /** URNs of the resources it depends on. */
    dependencies: string[];
    /** Outputs the resource asks the engine to keep secret (`additionalSecretOutputs`). */
    additionalSecretOutputs: string[];
    /** The `replacementTrigger` option's value; absent when none was set. */
    replacementTrigger?: unknown;
}

/** One invoke seen by the mock monitor. */
export interface Invocation {
    token: string;
    inputs: Record<string, any>;
}

export interface MockWorld {
    /** Previous stack outputs, returned through the self-StackReference. */
    stackOutputs?: Record<string, unknown>;
    /**
     * Keys IAM lists per user name (`aws:iam/getAccessKeys:getAccessKeys`). A user missing here does
     * not exist: the invoke fails with the provider's not-found text ({@link accessKeysNotFound}).
     */
    accessKeys?: Record<string, { accessKeyId: string; status: string; createDate?: string }[]>;
    /** GitHub repository ids by full name (`github:index/getRepository:getRepository`). */
    repoIds?: Record<string, number>;
    /** Ids for new access keys by resource name; default derived from the name. */
    keyIds?: Record<string, string>;
    /** Outputs a real provider would add (e.g. GitHub's `updatedAt`, IAM's `createDate`). */
    extraState?: (resource: { type: string; name: string; inputs: Record<string, any> }) => Record<string, any> | undefined;
    /**
     * A provider error for this registration (its step fails, as a rejected write or a failed
     * UpdateAccessKey would): the mock rejects it with this text, and the SDK rejects the resource's
     * outputs, as it does when the engine answers RegisterResource with an error.
     */
    fail?: (resource: { type: string; name: string; inputs: Record<string, any> }) => string | undefined;
    /** Milliseconds this registration's step takes (to see which steps wait for which). */
    delay?: (resource: { type: string; name: string }) => number | undefined;
}

/** The error text of `aws.iam.getAccessKeys` for a user IAM does not know (terraform-provider-aws). */
export function accessKeysNotFound(user: string): string {
    return `reading IAM Access Keys (${user}): couldn't find resource`;
}

/** A fake secret that still looks like AWS's 40-character secret access keys. */
export function fakeSecretFor(name: string): string {
    return `SECRET/${name}`.padEnd(40, "x").slice(0, 40);
}

/**
 * Install Pulumi mocks that record every registration and invoke. Unmocked invokes throw
 * `Mock call not implemented: <token>`, so a test sees any call the program makes unexpectedly.
 * Call before the program runs (and before importing it).
 */
export function installMocks(world: MockWorld = {}, options: { preview?: boolean; stack?: string } = {}) {
    const registrations: Registration[] = [];
    const invocations: Invocation[] = [];
    /** `start <name>` when a registration reaches the monitor, `end <name>` (or `fail <name>`) when its step is done. */
    const steps: string[] = [];
    function register(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        if (args.type === "pulumi:pulumi:StackReference") {
            const outputs = world.stackOutputs ?? {};
            return { id: args.name, state: { name: args.inputs.name, outputs, secretOutputNames: [] } };
        }
        // An imported resource keeps the id it was imported by.
        const id = args.id || (args.type === "aws:iam/accessKey:AccessKey" ? (world.keyIds?.[args.name] ?? keyIdFor(args.name)) : `${args.name}-id`);
        registrations.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider, id, ...(args.id ? { importId: args.id } : {}) });
        const state: Record<string, any> = { ...args.inputs };
        if (args.type === "aws:iam/user:User") state.arn = `arn:aws:iam::123456789012:user${args.inputs.path ?? "/"}${args.inputs.name}`;
        // IAM never returns the secret of an existing key: an imported key has none.
        if (args.type === "aws:iam/accessKey:AccessKey" && !args.id) state.secret = pulumi.secret(fakeSecretFor(args.name));
        Object.assign(state, world.extraState?.({ type: args.type, name: args.name, inputs: args.inputs }));
        return { id, state };
    }
    pulumi.runtime.setMocks(
        {
            async newResource(args) {
                if (args.type !== "pulumi:pulumi:StackReference") steps.push(`start ${args.name}`);
                const ms = world.delay?.({ type: args.type, name: args.name });
                if (ms) await new Promise((r) => setTimeout(r, ms));
                const failure = world.fail?.({ type: args.type, name: args.name, inputs: args.inputs });
                if (failure !== undefined) {
                    steps.push(`fail ${args.name}`);
                    throw Object.assign(new Error(failure), { details: failure });
                }
                const result = register(args);
                if (args.type !== "pulumi:pulumi:StackReference") steps.push(`end ${args.name}`);
                return result;
            },
            call(args) {
                invocations.push({ token: args.token, inputs: args.inputs });
                if (args.token === "aws:iam/getAccessKeys:getAccessKeys") {
                    const keys = world.accessKeys?.[args.inputs.user];
                    // The real provider's answer for a user that does not exist yet:
                    // terraform-provider-aws internal/service/iam/access_key.go `findAccessKeys` wraps
                    // NoSuchEntity in a `retry.NotFoundError` without message ("couldn't find resource"),
                    // and data_source_access_keys.go prefixes "reading IAM Access Keys (<user>): ".
                    // The engine wraps it ("invocation of <token> returned an error: ...",
                    // pulumi/pulumi pkg/resource/deploy/source_eval.go `Invoke`) and the SDK turns the
                    // gRPC error's `details` into the Error's message (sdk/nodejs/runtime/invoke.ts).
                    if (keys === undefined) {
                        const details = `invocation of ${args.token} returned an error: invoking ${args.token}: 1 error occurred:\n\t* ${accessKeysNotFound(args.inputs.user)}\n\n`;
                        throw Object.assign(new Error(details), { details });
                    }
                    return { user: args.inputs.user, accessKeys: keys };
                }
                if (args.token === "aws:kms/getKey:getKey") {
                    // DescribeKey of an existing key named by id or alias: its ARN.
                    const ref = String(args.inputs.keyId);
                    return { keyId: ref, arn: `arn:aws:kms:eu-west-1:123456789012:key/${ref.startsWith("alias/") ? "0000aaaa-0000-0000-0000-00000000a11a" : ref}` };
                }
                if (args.token === "github:index/getRepository:getRepository") {
                    const fullName = args.inputs.fullName as string;
                    const repoId = world.repoIds?.[fullName];
                    if (repoId === undefined) throw new Error(`Mock: no repository ${fullName}`);
                    return { fullName, repoId };
                }
                throw new Error(`Mock call not implemented: ${args.token}`);
            },
        },
        "ci-key-rotation",
        options.stack ?? "dev",
        options.preview ?? false,
        "organization",
    );
    // The mock's `newResource` never sees resource options; read them off the request itself.
    const resourceOptions = new Map<string, RegisteredOptions>();
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: any, callback: any): unknown };
    const registerResource = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        resourceOptions.set(req.getName(), {
            deleteBeforeReplace: req.getDeletebeforereplace(),
            aliases: req.getAliasesList().map((a: any) => (a.hasSpec() ? a.getSpec().getName() : a.getUrn())),
            dependencies: req.getDependenciesList(),
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            ...(req.hasReplacementTrigger() ? { replacementTrigger: req.getReplacementTrigger().toJavaScript() } : {}),
        });
        return registerResource(req, callback);
    };
    return { registrations, invocations, steps, resourceOptions };
}

/** Deterministic fake access key id for a key resource name: `AKIA` + 16 upper-case characters. */
export function keyIdFor(name: string): string {
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return `AKIA${name.replace(/[^A-Za-z0-9]/g, "").toUpperCase().slice(-8).padStart(8, "0")}${h.toString(16).toUpperCase().padStart(8, "0")}`.slice(0, 20);
}

/** Wait until every registration and invoke the program started has reached the mocks. */
export async function settle(): Promise<void> {
    // `waitForRPCs` is internal to the SDK (used by `disconnect`); fall back to a few turns of the loop.
    const wait = (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> }).waitForRPCs;
    if (wait) await wait();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** Await an Output's value (and whether it is secret) without `done` callbacks. */
export async function unwrap<T>(output: pulumi.Output<T> | T): Promise<T> {
    if (!pulumi.Output.isInstance(output)) return output as T;
    return new Promise<T>((resolve) => (output as pulumi.Output<T>).apply((v) => {
        resolve(v);
        return v;
    }));
}

/** Set the stack's config the way `Pulumi.<stack>.yaml` would: strings, JSON for structures. */
export function setConfig(values: Record<string, unknown>, secretKeys: string[] = []) {
    const all: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
        const full = key.includes(":") ? key : `ci-key-rotation:${key}`;
        all[full] = typeof value === "string" ? value : JSON.stringify(value);
    }
    pulumi.runtime.setAllConfig(all, secretKeys);
}

/** The signature Pulumi puts on a secret value when it crosses the mock monitor. */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretMarker = "1b47061264138c4ac30d75fd1eb44270";

/** Is this registered input a secret (as the engine would see it)? */
export function isSecretInput(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)[secretSig] === secretMarker;
}

/** Registered inputs with secrets unwrapped, and the paths of the inputs that were secret. */
export function reveal(inputs: Record<string, any>): { plain: Record<string, any>; secretPaths: string[] } {
    const secretPaths: string[] = [];
    const walk = (v: any, path: string): any => {
        if (isSecretInput(v)) {
            secretPaths.push(path);
            return walk(v.value, path);
        }
        if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
        if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path ? `${path}.${k}` : k)]));
        return v;
    };
    return { plain: walk(inputs, ""), secretPaths };
}
