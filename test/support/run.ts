import * as pulumi from "@pulumi/pulumi";
import type { IAMClient } from "@aws-sdk/client-iam";
import { providerObserver } from "../../rotation/pulumi/aws";
import type { LastUse } from "../../rotation/core/plan";
import { installMocks, settle, setConfig, unwrap, type MockWorld, type Registration, type Invocation, type RegisteredOptions } from "./mocks";

export interface RunOptions {
    /** `ci-key-rotation:*` keys (without namespace) and any namespaced keys. */
    config: Record<string, unknown>;
    world?: MockWorld;
    now: string;
    preview?: boolean;
    /** GetAccessKeyLastUsed answers by key id; a missing key id fails the call. */
    lastUse?: Record<string, LastUse>;
}

export interface RunResult {
    outputs?: { rotation: any; sets: any };
    /** The raw Outputs, for secretness checks. */
    raw?: Record<string, pulumi.Output<unknown>>;
    error?: Error;
    registrations: Registration[];
    invocations: Invocation[];
    /** Key ids IAM was asked the last use of. */
    lastUseAsked: string[];
    /** Resource options of each registration, by resource name. */
    resourceOptions: Map<string, RegisteredOptions>;
}

/**
 * Run the real program once under mocks: the AWS key list goes through the real observer and
 * the mocked `getAccessKeys` invoke; GetAccessKeyLastUsed through a fake SDK client.
 */
export async function runProgram(opts: RunOptions): Promise<RunResult> {
    const { registrations, invocations, resourceOptions } = installMocks(opts.world ?? {}, { preview: opts.preview });
    setConfig(opts.config);
    const lastUseAsked: string[] = [];
    const fakeIam = {
        async send(command: { input: { AccessKeyId: string } }) {
            const id = command.input.AccessKeyId;
            lastUseAsked.push(id);
            const use = opts.lastUse?.[id];
            if (!use) throw new Error(`fake IAM: no last-use answer for ${id}`);
            return {
                UserName: undefined,
                AccessKeyLastUsed: { LastUsedDate: use.at ? new Date(use.at) : undefined, ServiceName: use.service ?? "N/A", Region: use.region ?? "N/A" },
            };
        },
    } as unknown as IAMClient;
    const program = (await import("../../index")).default;
    try {
        const raw = (await program({ env: { CI_KEY_ROTATION_NOW: opts.now }, observer: providerObserver(() => fakeIam) })) as unknown as Record<string, pulumi.Output<unknown>>;
        const outputs = { rotation: await unwrap(raw.rotation), sets: await unwrap(raw.sets) };
        await settle();
        return { outputs, raw, registrations, invocations, lastUseAsked, resourceOptions };
    } catch (error) {
        await settle();
        return { error: error as Error, registrations, invocations, lastUseAsked, resourceOptions };
    }
}

/** Registrations of one resource type. */
export function ofType(result: RunResult, type: string): Registration[] {
    return result.registrations.filter((r) => r.type === type);
}
