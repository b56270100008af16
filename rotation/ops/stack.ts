/**
 * Opening a stack (with the CLI version check), reading its outputs, and the request flags this
 * library writes to and removes from its config.
 */
import { parseState, type Phase, type RotationState } from "../core/state";
import type { NextStep, StepName } from "../core/plan";
import { OperationError, type AutomationDeps, type RotationStack, type StackOutputs } from "./automation-types";
import { cliTooOld, olderThanMinimum, toOperationError } from "./errors";

export const configPrefix = "ci-key-rotation:";
const requestKeys = ["request", "requestSets", "emergency", "revoke"] as const;
export const stackNamePattern = /^[A-Za-z0-9_.\/-]{1,200}$/;

export async function open(deps: AutomationDeps, stack: string, workDir: string): Promise<RotationStack> {
    let opened: RotationStack;
    try {
        opened = await deps.openStack({ stack, workDir });
    } catch (err) {
        throw toOperationError(err, stack, workDir, undefined);
    }
    let version: string | undefined;
    try {
        // LocalWorkspace ran `pulumi version` when it was created; the getter throws when the
        // version could not be read (PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK): then do not guess.
        version = opened.workspace?.pulumiVersion;
    } catch {
        version = undefined;
    }
    if (version !== undefined && olderThanMinimum(version)) throw new OperationError("cli-too-old", cliTooOld(version));
    return opened;
}

export async function clearRequestConfig(stack: RotationStack): Promise<void> {
    for (const key of requestKeys) await stack.removeConfig(`${configPrefix}${key}`);
}

/** The per-set output (`sets`) as far as this module reads it. */
export interface SetSummaryOutput {
    user: string;
    accessKeyId: string;
    phase: Phase;
    paused: boolean;
    step: StepName;
    reason: string;
    next: NextStep;
    targets: string[];
    warnings: string[];
}

export interface ParsedOutputs {
    state?: RotationState;
    summaries: Record<string, SetSummaryOutput>;
}

export function readOutputs(outputs: StackOutputs): ParsedOutputs {
    const state = parseState(outputs.rotation?.value);
    const raw = outputs.sets?.value;
    const summaries = raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, SetSummaryOutput>) : {};
    return { state, summaries };
}

/** The real opener: selects an existing stack of the project in `workDir`. */
export async function openLocalStack({ stack, workDir }: { stack: string; workDir: string }): Promise<RotationStack> {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    return LocalWorkspace.selectStack({ stackName: stack, workDir });
}
