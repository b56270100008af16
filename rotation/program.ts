import * as pulumi from "@pulumi/pulumi";
import type { DateTime } from "luxon";
import type { AwsObserver } from "./aws";
import { ConfigError, decodeRawConfig, validateConfig, type CredentialSetConfig, type StackConfig } from "./config";
import { plan, type Decision, type PlanInput } from "./plan";
import { parseState, type RotationState, type SetState } from "./state";

/** What the program reads from the outside world; a real run uses the defaults. */
export interface ProgramDeps {
    /** AWS reads (key list, last use). Default: the AWS provider and SDK. */
    observer?: AwsObserver;
    /** Environment (for `CI_KEY_ROTATION_NOW`). Default: `process.env`. */
    env?: NodeJS.ProcessEnv;
}

/** Name of the stack output that holds the rotation state. */
export const stateOutput = "rotation";

/**
 * Read the `ci-key-rotation:*` config of the running stack and validate it; throws a
 * {@link ConfigError} listing every problem.
 */
export function readStackConfig(): StackConfig {
    const prefix = "ci-key-rotation:";
    const values: Record<string, string> = {};
    for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (key.startsWith(prefix)) values[key.slice(prefix.length)] = value;
    }
    const { raw, problems } = decodeRawConfig(values);
    const result = validateConfig(raw);
    if (!result.ok || problems.length > 0) throw new ConfigError([...problems, ...(result.ok ? [] : result.problems)]);
    return result.config;
}

/**
 * The previous run's `rotation` output, read through a StackReference to this very stack
 * (`organization/<project>/<stack>` on the file backend, `<org>/<project>/<stack>` on Pulumi Cloud).
 */
export async function readPreviousState(): Promise<RotationState | undefined> {
    const self = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
    const ref = new pulumi.StackReference("rotation-state", { name: self });
    const details = await ref.getOutputDetails(stateOutput);
    return parseState(details.value ?? details.secretValue);
}

/** Raised when a set cannot take its step safely; the run fails before anything changes. */
export class RotationBlockedError extends pulumi.RunError {
    constructor(readonly messages: string[]) {
        super(`No step was taken for any set, because:\n  - ${messages.join("\n  - ")}`);
        this.name = "RotationBlockedError";
    }
}

/**
 * Decide this run's step for every set. Reads IAM's key list per set, and the old key's last
 * use only when a deactivation is due and gated. Throws {@link RotationBlockedError} with every
 * blocked set's message before any resource is registered, so a blocked run changes nothing.
 */
export async function decideAll(config: StackConfig, previous: RotationState | undefined, now: DateTime, observer: AwsObserver): Promise<Map<string, Decision>> {
    const decisions = new Map<string, Decision>();
    const blocked: string[] = [];
    const results = await Promise.all(config.sets.map((set) => decideSet(set, config, previous?.sets[set.name], now, observer)));
    config.sets.forEach((set, i) => {
        const result = results[i];
        if (typeof result === "string") blocked.push(result);
        else decisions.set(set.name, result);
    });
    if (blocked.length > 0) throw new RotationBlockedError(blocked);
    return decisions;
}

async function decideSet(set: CredentialSetConfig, config: StackConfig, state: SetState | undefined, now: DateTime, observer: AwsObserver): Promise<Decision | string> {
    const request = config.request && (!config.request.sets || config.request.sets.includes(set.name)) ? config.request : undefined;
    const input: PlanInput = {
        set: set.name,
        user: set.user.name,
        state,
        observed: await observer.listKeys(set.user.name),
        policy: set.policy,
        request,
        now,
        forget: config.forgetKeys,
        adopt: set.adoptKeys,
        configPath: set.path,
    };
    let result = plan(input);
    if (result.kind === "needs-last-use") {
        result = plan({ ...input, lastUse: await observer.lastUse(set.user.name, result.accessKeyId) });
    }
    if (result.kind === "blocked") return result.message;
    if (result.kind !== "decision") throw new Error(`internal: the plan for set "${set.name}" asked twice for the last use of a key`);
    return result.decision;
}

/** One line per set for the run's log: what it did and what comes next. */
export function describeDecision(name: string, d: Decision): string {
    const did = d.step === "none" ? `no step (${d.reason})` : `${d.step}: ${d.reason}`;
    const next = d.next.step === "none" ? d.next.why : `next ${d.next.step}${d.next.dueAt ? ` at ${d.next.dueAt}` : " at the next run"}`;
    return `set "${name}": ${did}; ${next}`;
}
