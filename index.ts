import * as pulumi from "@pulumi/pulumi";
import { providerObserver } from "./rotation/aws";
import { readClock } from "./rotation/clock";
import { CredentialSet } from "./rotation/credential-set";
import { decideAll, describeDecision, readPreviousState, readStackConfig, stateOutput, type ProgramDeps } from "./rotation/program";

/**
 * The ci-key-rotation program: validate config, read the previous state and the keys IAM
 * lists, decide one step per credential set, declare the sets, export the new state.
 */
export = async function ciKeyRotation(deps: ProgramDeps = {}) {
    const { now, warning } = readClock(deps.env ?? process.env);
    if (warning) pulumi.log.warn(warning);
    const config = readStackConfig();
    const previous = await readPreviousState();
    const decisions = await decideAll(config, previous, now, deps.observer ?? providerObserver());

    const sets = config.sets.map((set) => {
        const decision = decisions.get(set.name)!;
        pulumi.log.info(describeDecision(set.name, decision));
        for (const w of decision.warnings) pulumi.log.warn(w);
        return new CredentialSet(set.name, { config: set, decision, now });
    });

    return {
        [stateOutput]: pulumi.all(sets.map((s) => s.state)).apply((states) => ({
            version: 1 as const,
            asOf: now.toISO()!,
            sets: Object.fromEntries(config.sets.map((set, i) => [set.name, states[i]])),
        })),
        sets: pulumi.all(sets.map((s) => s.summary)).apply((summaries) => Object.fromEntries(config.sets.map((set, i) => [set.name, summaries[i]]))),
    };
};
