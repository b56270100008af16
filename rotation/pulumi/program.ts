import * as pulumi from "@pulumi/pulumi";
import type { DateTime } from "luxon";
import type { AwsObserver } from "./aws";
import { ConfigError, decodeRawConfig, validateConfig, type CredentialSetConfig, type StackConfig } from "../core/config";
import { plan, type Decision, type PlanInput } from "../core/plan";
import { parseState, StateError, type RotationState, type SetState } from "../core/state";

/** What the program reads from the outside world; a real run uses the defaults. */
export interface ProgramDeps {
    /** AWS reads (key list, last use). Default: the AWS provider and SDK. */
    observer?: AwsObserver;
    /** Environment (for `CI_KEY_ROTATION_NOW`). Default: `process.env`. */
    env?: NodeJS.ProcessEnv;
    /** Whether the engine reports the `parameterization` feature (see {@link requireEngine}). Default: asks the SDK. */
    engineSupportsParameterization?: boolean;
    /**
     * Ends the run non-zero when sets were blocked, after everything is registered. Default: sets
     * `process.exitCode`. A host that runs the program in its own process (a rehearsal) passes
     * its own, and must then keep the blocked set's resources and save the registered outputs,
     * as the engine does (see {@link endBlockedRun}).
     */
    fail?: (code: number, error: RotationBlockedError) => void;
}

/** Name of the stack output that holds the rotation state. */
export const stateOutput = "rotation";

/**
 * Read the `ci-key-rotation:*` config of the running stack and validate it; throws a
 * {@link ConfigError} listing every problem.
 */
export function readStackConfig(): StackConfig {
    const prefix = "ci-key-rotation:";
    // Built with fromEntries, not by assignment: `values["__proto__"] = v` would be dropped
    // silently, and the key must reach validation to be reported as unknown.
    const values: Record<string, string> = Object.fromEntries(
        Object.entries(pulumi.runtime.allConfig())
            .filter(([key]) => key.startsWith(prefix))
            .map(([key, value]) => [key.slice(prefix.length), value]),
    );
    const { raw, problems } = decodeRawConfig(values);
    const result = validateConfig(raw);
    if (!result.ok || problems.length > 0) throw new ConfigError([...problems, ...(result.ok ? [] : result.problems)]);
    return result.config;
}

/**
 * The name of the StackReference to this very stack: `<org>/<project>/<stack>` (the file backend's
 * project layout uses the literal `organization`), or the bare `<stack>` when
 * `PULUMI_DIY_BACKEND_LEGACY_LAYOUT` is set: the legacy DIY layout has no projects, and its
 * stack names may not contain `/` (pulumi/pulumi pkg/backend/diy/store.go
 * `legacyReferenceStore.ParseReference` → sdk/go/common/tokens/stack_name.go `ParseStackName`).
 */
export function selfReferenceName(env: NodeJS.ProcessEnv = process.env): string {
    const legacy = /^(1|true|yes)$/i.test(env.PULUMI_DIY_BACKEND_LEGACY_LAYOUT ?? env.PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT ?? "");
    return legacy ? pulumi.getStack() : `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
}

/** The text `ParseStackName` answers for a name with `/`, as the legacy DIY layout does. */
const legacyLayoutRejection = /a stack name may only contain alphanumeric, hyphens, underscores, or periods: invalid character '\/'/;

/**
 * The previous run's `rotation` output, read through a StackReference to this very stack
 * ({@link selfReferenceName}). A DIY backend in the legacy layout rejects the project-scoped name;
 * that read fails the update in the engine whatever the program does, so the program explains
 * the two ways out instead of guessing.
 */
export async function readPreviousState(env: NodeJS.ProcessEnv = process.env): Promise<RotationState | undefined> {
    const self = selfReferenceName(env);
    const ref = new pulumi.StackReference("rotation-state", { name: self });
    let details: { value?: unknown; secretValue?: unknown };
    try {
        details = await ref.getOutputDetails(stateOutput);
    } catch (err) {
        const message = String((err as Error)?.message ?? err);
        if (legacyLayoutRejection.test(message)) {
            throw new StateError(
                `This stack's backend uses the legacy DIY layout, which has no projects, so the program cannot read its own state as \`${self}\`. ` +
                    "Nothing was changed. Either move the backend to the project layout with `pulumi state upgrade` (recommended), " +
                    "or set PULUMI_DIY_BACKEND_LEGACY_LAYOUT=true in the environment of every run, so the program reads its state as the bare stack name.",
            );
        }
        throw err;
    }
    return parseState(details.value ?? details.secretValue);
}

/**
 * Raised when sets could not take their step. Since one blocked set must not freeze the others,
 * the program does not throw it: it logs it and ends the run non-zero after the other sets took
 * their step (see {@link endBlockedRun}). Its message names every blocked set.
 */
export class RotationBlockedError extends pulumi.RunError {
    constructor(
        readonly messages: string[],
        readonly sets: string[] = [],
    ) {
        const names = sets.map((s) => `"${s}"`).join(", ");
        super(`No step was taken for ${sets.length === 1 ? `set ${names}` : sets.length > 1 ? `sets ${names}` : "a set"} (any other set took its step), because:\n  - ${messages.join("\n  - ")}`);
        this.name = "RotationBlockedError";
    }
}

/** This run's decisions, and the sets that cannot take a step, with why. */
export interface Decisions {
    decisions: Map<string, Decision>;
    /** Message per blocked set: it registers nothing this run and keeps its previous state. */
    blocked: Map<string, string>;
}

/**
 * Decide this run's step for every set. Reads IAM's key list per set, and the old key's last
 * use only when a deactivation is due and gated. A set whose plan is blocked, or whose AWS reads
 * fail, is reported in `blocked` and takes no step; the other sets are decided as usual.
 */
export async function decideAll(config: StackConfig, previous: RotationState | undefined, now: DateTime, observer: AwsObserver): Promise<Decisions> {
    const decisions = new Map<string, Decision>();
    const blocked = new Map<string, string>();
    const results = await Promise.allSettled(config.sets.map((set) => decideSet(set, config, previous?.sets[set.name], { recorded: previous?.recorded?.[set.name], unconfirmed: previous?.unconfirmed?.[set.name] }, now, observer)));
    config.sets.forEach((set, i) => {
        const result = results[i];
        if (result.status === "rejected") {
            const message = String((result.reason as Error)?.message ?? result.reason);
            blocked.set(set.name, message.includes(`"${set.name}"`) ? message : `set "${set.name}": ${message}`);
        } else if (typeof result.value === "string") blocked.set(set.name, result.value);
        else decisions.set(set.name, result.value);
    });
    return { decisions, blocked };
}

/**
 * Exit code that tells Pulumi's Node.js language host the program already reported its error:
 * `nodeJSProcessExitedAfterLoggingUserActionableMessage` (pulumi/pulumi sdk/nodejs/cmd/run/index.ts);
 * the host answers the engine with `Bail` and prints nothing more
 * (sdk/nodejs/cmd/pulumi-language-nodejs/main.go `execNodejs`).
 */
export const exitAfterLoggedError = 32;

/**
 * End a run in which some sets were blocked: log one error naming every blocked set, and make the
 * program exit non-zero once it has registered everything (the outputs included).
 *
 * What the engine then does (pulumi/pulumi, checked in source):
 * - the program's non-zero exit is a source error, so the deployment bails before its post-steps:
 *   deletes of resources the program no longer registered are not generated at all
 *   (pkg/resource/deploy/deployment_executor.go `Execute`: a source error returns before
 *   `performPostSteps`/`GenerateDeletes`). The blocked set registered nothing and keeps every
 *   resource exactly as it is;
 * - every step already done stays done (each is checkpointed as it completes), so the other sets'
 *   creates and updates stand;
 * - stack outputs the program registered are saved, old ones kept where none was registered
 *   (PR #15754, CLI 3.112; pkg/resource/deploy/step_executor.go `executeRegisterResourceOutputs`).
 *   The blocked set's entry in `rotation` is its previous state, so it stays as it was.
 * Throwing instead would register no outputs at all (sdk/nodejs/runtime/stack.ts
 * `Stack.initialize`), and `pulumi.log.error` alone does not fail the update.
 */
export function endBlockedRun(
    blocked: Map<string, string>,
    fail: (code: number, error: RotationBlockedError) => void = (code) => void (process.exitCode = code),
): RotationBlockedError | undefined {
    if (blocked.size === 0) return undefined;
    const error = new RotationBlockedError([...blocked.values()], [...blocked.keys()]);
    void pulumi.log.error(error.message);
    fail(exitAfterLoggedError, error);
    return error;
}

/**
 * The engine this program needs: CLI 3.133 or later. Stack outputs of a failed update must be
 * saved (CLI ≥ 3.112, PR #15754); before, a failed update dropped every output (issue #12929) and
 * the next run would find no rotation state. The program cannot ask the CLI its version on older
 * engines (`requirePulumiVersion` needs CLI ≥ 3.217), so it probes a monitor feature of the same
 * era: `parameterization` (engine ≥ 3.133, PR #17153), which the SDK queries before the program
 * starts (sdk/nodejs/runtime/settings.ts `setRootResource` → `awaitFeatureSupport`).
 */
export function requireEngine(supportsParameterization: boolean): void {
    if (!supportsParameterization) {
        throw new pulumi.RunError(
            "ci-key-rotation needs Pulumi CLI 3.133 or later: older engines drop every stack output when an update fails, " +
                "and the rotation state lives in a stack output. Nothing was changed. Upgrade the `pulumi` CLI (https://www.pulumi.com/docs/install/) and run again.",
        );
    }
}

/**
 * A set's entry in `rotation` as a failed run saves it: the previous state, plus the keys whose
 * mint the run could not confirm (see {@link PlanInput.unconfirmed}) and the keys whose status
 * change failed (see {@link PlanInput.statusFailed}). `parseState` keeps the field;
 * the plan gets the state without it, so no decided state carries it on.
 */
export type SavedSetState = SetState & { unconfirmed?: string[]; statusFailed?: string[] };

async function decideSet(set: CredentialSetConfig, config: StackConfig, saved: SavedSetState | undefined, created: { recorded?: readonly string[]; unconfirmed?: readonly string[] }, now: DateTime, observer: AwsObserver): Promise<Decision | string> {
    const { unconfirmed, statusFailed, ...rest } = saved ?? ({} as SavedSetState);
    const state: SetState | undefined = saved ? rest : undefined;
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
        ...(Array.isArray(unconfirmed) || created.unconfirmed ? { unconfirmed: [...(Array.isArray(unconfirmed) ? unconfirmed : []), ...(created.unconfirmed ?? [])].filter((id): id is string => typeof id === "string") } : {}),
        ...(created.recorded && created.recorded.length > 0 ? { recorded: created.recorded } : {}),
        ...(Array.isArray(statusFailed) ? { statusFailed: statusFailed.filter((id): id is string => typeof id === "string") } : {}),
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
