import * as pulumi from "@pulumi/pulumi";
import type { IAMClient } from "@aws-sdk/client-iam";
import { providerObserver } from "../../rotation/pulumi/aws";
import type { LastUse } from "../../rotation/core/plan";
import { installMocks, settle, setConfig, type MockWorld, type RegisteredOptions, type Registration } from "./mocks";

/**
 * Rejections nobody handled, as the program would see them. Under the real engine a failed step
 * rejects the outputs of the resource (and of every Output built from them); unhandled, they make
 * the Node program exit non-zero (sdk/nodejs/cmd/run/index.ts), which fails the update anyway. The
 * test runner would pin them on whatever test runs next, so a file that injects failures takes
 * them over with this and asserts on them instead.
 */
export const unhandled: string[] = [];
export function captureUnhandledRejections(): void {
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", (reason) => {
        unhandled.push(String((reason as Error)?.message ?? reason));
    });
}

/** How a stack output ended: resolved to a value, or rejected (then the SDK registers no outputs). */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: Error };

/**
 * Whether an Output resolves or rejects, without hanging on a rejected one (`apply` callbacks never
 * run then). Uses the Output's underlying promise, as the SDK's own stack-output walk does
 * (`sdk/nodejs/runtime/stack.ts` `massage` awaits `output.promise()`).
 */
export async function settled<T>(output: pulumi.Output<T>): Promise<Settled<T>> {
    try {
        const value = await (output as unknown as { promise(): Promise<T> }).promise();
        return { ok: true, value };
    } catch (error) {
        return { ok: false, error: error as Error };
    }
}

export interface SettledRun {
    /** The `rotation` output as the engine would save it: a value, or rejected (none registered). */
    rotation?: Settled<any>;
    sets?: Settled<any>;
    /** The program's own error (config, state), when it threw before returning outputs. */
    error?: Error;
    registrations: Registration[];
    /** Resource options by resource name, as the engine would receive them. */
    resourceOptions: Map<string, RegisteredOptions>;
    /** `start <name>` / `end <name>` / `fail <name>` per registration, in the order they happened. */
    steps: string[];
    /** Errors the program logged with `pulumi.log.error`. */
    loggedErrors: string[];
    /** The exit code the program asked for when it ended a blocked run, if any. */
    exitCode?: number;
}

/** Run the program once under mocks, observing rejected outputs and step order. */
export async function runSettled(opts: { config: Record<string, unknown>; world?: MockWorld; now: string; lastUse?: Record<string, LastUse>; env?: NodeJS.ProcessEnv }): Promise<SettledRun> {
    const { registrations, steps, resourceOptions } = installMocks(opts.world ?? {});
    setConfig(opts.config);
    const fakeIam = {
        async send(command: { input: { AccessKeyId: string } }) {
            const use = opts.lastUse?.[command.input.AccessKeyId];
            if (!use) throw new Error(`fake IAM: no last-use answer for ${command.input.AccessKeyId}`);
            return { AccessKeyLastUsed: { LastUsedDate: use.at ? new Date(use.at) : undefined, ServiceName: "N/A", Region: "N/A" } };
        },
    } as unknown as IAMClient;
    const loggedErrors: string[] = [];
    const originalError = pulumi.log.error;
    (pulumi.log as { error: typeof pulumi.log.error }).error = (msg: string) => {
        loggedErrors.push(msg);
        return Promise.resolve();
    };
    let failedWith: number | undefined;
    const program = (await import("../../index")).default;
    try {
        const raw = (await program({ env: { ...opts.env, CI_KEY_ROTATION_NOW: opts.now }, observer: providerObserver(() => fakeIam), fail: (code) => (failedWith = code) })) as unknown as Record<string, pulumi.Output<unknown>>;
        const [rotation, sets] = await Promise.all([settled(raw.rotation), settled(raw.sets)]);
        await settle();
        return { rotation, sets, registrations, resourceOptions, steps, loggedErrors, exitCode: failedWith };
    } catch (error) {
        await settle();
        return { error: error as Error, registrations, resourceOptions, steps, loggedErrors, exitCode: failedWith };
    } finally {
        (pulumi.log as { error: typeof pulumi.log.error }).error = originalError;
    }
}
