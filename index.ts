import * as pulumi from "@pulumi/pulumi";
import { providerObserver } from "./rotation/pulumi/aws";
import { readClock } from "./rotation/pulumi/clock";
import { CredentialSet, blockedSummary } from "./rotation/pulumi/credential-set";
import { decideAll, describeDecision, endBlockedRun, readPreviousState, readStackConfig, requireEngine, stateOutput, type ProgramDeps } from "./rotation/pulumi/program";
import type { SetState } from "./rotation/core/state";
import { dynamicProviderConfigKeys } from "./providers";
import { DynamicProvider, dynamicProviderInputs } from "./rotation/pulumi/verify";

/**
 * The ci-key-rotation program: validate config, read the previous state and the keys IAM
 * lists, decide one step per credential set, declare the sets, export the new state. A blocked
 * set registers nothing and keeps its previous state; the others take their step, and the run
 * then ends non-zero naming the blocked sets.
 */
export = async function ciKeyRotation(deps: ProgramDeps = {}) {
    requireEngine(deps.engineSupportsParameterization ?? pulumi.runtime.supportsParameterization());
    const { now, warning } = readClock(deps.env ?? process.env);
    if (warning) pulumi.log.warn(warning);
    const config = readStackConfig();
    const previous = await readPreviousState(deps.env ?? process.env);
    const { decisions, blocked } = await decideAll(config, previous, now, deps.observer ?? providerObserver());

    // Only when some set registers resources: a run where every set is blocked registers nothing.
    const dynamicProvider = decisions.size > 0 ? new DynamicProvider("ci-key-rotation-dynamic", dynamicProviderInputs(dynamicProviderConfigKeys)) : undefined;
    const states: pulumi.Output<[string, SetState | undefined]>[] = [];
    const summaries: pulumi.Output<[string, unknown]>[] = [];
    /** Whether each declared set's every step succeeded (a failed one keeps its previous state). */
    const completions: pulumi.Output<boolean>[] = [];
    /** Per set, keys a failed run created that the next run finishes (`RotationState.recorded`). */
    const recorded: pulumi.Output<[string, string[]]>[] = [];
    /** Per set without state, keys a failed first run created and must never push (`RotationState.unconfirmed`). */
    const unconfirmed: pulumi.Output<[string, string[]]>[] = [];
    for (const set of config.sets) {
        const decision = decisions.get(set.name);
        if (!decision) {
            const before = previous?.sets[set.name];
            states.push(pulumi.output([set.name, before] as [string, SetState | undefined]));
            recorded.push(pulumi.output([set.name, previous?.recorded?.[set.name] ?? []] as [string, string[]]));
            unconfirmed.push(pulumi.output([set.name, previous?.unconfirmed?.[set.name] ?? []] as [string, string[]]));
            summaries.push(pulumi.output([set.name, blockedSummary(set, before, blocked.get(set.name)!, now)] as [string, unknown]));
            continue;
        }
        pulumi.log.info(describeDecision(set.name, decision));
        for (const w of decision.warnings) pulumi.log.warn(w);
        const component = new CredentialSet(set.name, { config: set, decision, now, dynamicProvider });
        states.push(component.state.apply((s) => [set.name, s] as [string, SetState | undefined]));
        summaries.push(component.summary.apply((s) => [set.name, s] as [string, unknown]));
        completions.push(component.completed);
        recorded.push(component.recorded.apply((ids) => [set.name, ids] as [string, string[]]));
        unconfirmed.push(component.unconfirmedFirst.apply((ids) => [set.name, ids] as [string, string[]]));
    }
    endBlockedRun(blocked, deps.fail);

    return {
        [stateOutput]: pulumi.all([pulumi.all(states), pulumi.all(completions), pulumi.all(recorded), pulumi.all(unconfirmed)]).apply(([entries, done, keys, refused]) => {
            const pending = keys.filter(([, ids]) => ids.length > 0);
            const notPushed = refused.filter(([, ids]) => ids.length > 0);
            return {
                version: 1 as const,
                // The last run in which no set's step failed (`status` warns when it gets old).
                asOf: done.every(Boolean) || !previous ? now.toISO()! : previous.asOf,
                sets: Object.fromEntries(entries.filter(([, s]) => s !== undefined)),
                ...(pending.length > 0 ? { recorded: Object.fromEntries(pending) } : {}),
                ...(notPushed.length > 0 ? { unconfirmed: Object.fromEntries(notPushed) } : {}),
            };
        }),
        sets: pulumi.all(summaries).apply((entries) => Object.fromEntries(entries)),
    };
};
