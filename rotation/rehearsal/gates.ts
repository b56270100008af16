import type { SdkClient } from "../core/aws-calls";
import { confirmTargetWrites, keyCheckChanged, runKeyCheck, targetCheckChanged, type KeyCheckInputs, type TargetCheckInputs } from "../pulumi/verify";
import type { ResourceModel } from "./targets";
import type { World } from "./world";

/**
 * The verification gates of `rotation/pulumi/verify.ts` as the rehearsal runs them. They are not
 * re-implemented: a create or update calls the provider's own functions (`runKeyCheck`,
 * `confirmTargetWrites`, and the diffs `keyCheckChanged` / `targetCheckChanged`), with the fake
 * world's STS in place of AWS and the run's simulated clock in place of the real one, so the
 * retries, their bound, the messages and the outputs are the real provider's.
 */

/** An STS client signed with one key, answering from the fake world at the run's simulated time. */
function fakeSts(world: World, credentials: { accessKeyId: string; secretAccessKey: string }, now: () => number): SdkClient {
    return {
        async send(command: unknown) {
            const name = (command as object).constructor.name;
            if (name !== "GetCallerIdentityCommand") throw new Error(`the rehearsal's STS client does not implement ${name}`);
            return world.iam.getCallerIdentity({ accessKeyId: credentials.accessKeyId, secret: credentials.secretAccessKey }, now());
        },
    };
}

/**
 * `<set>-key-check`: GetCallerIdentity with the new key until it answers with the set's user or
 * `timeoutMs` of simulated time has passed. When it gives up because IAM had not yet made the key
 * usable, that is the world's eventual consistency (a fault the run did not cause): it is noted
 * as such, so the invariant checker can tell it from a failure of the program.
 */
export const keyCheckModel: ResourceModel = {
    dynamic: true,
    diff: (olds, news) => (keyCheckChanged(olds, news) ? "update" : "none"),
    async outputs(inputs, ctx) {
        const check = inputs as unknown as KeyCheckInputs;
        const started = ctx.clock.now();
        try {
            return { ...(await runKeyCheck(check, (c) => fakeSts(ctx.world, c, ctx.clock.now), ctx.clock)) };
        } catch (err) {
            const key = ctx.world.iam.key(check.accessKeyId);
            // Judged from when the check began: its last back-off may end after IAM caught up.
            if (key && key.status === "Active" && key.secret === check.secretAccessKey && key.usableAt > started) {
                ctx.noteFault(`IAM made key ${key.accessKeyId} usable only ${Math.round((key.usableAt - key.createdAt) / 1000)} s after its creation`);
            }
            throw err;
        }
    },
    id: (_, outputs) => `${String(outputs.set)}-${String(outputs.accessKeyId)}`,
};

/** `<set>-target-check`: the evidence the stores' resources report (GitHub's `updatedAt`), checked by the provider's function. */
export const targetCheckModel: ResourceModel = {
    dynamic: true,
    diff: (olds, news) => (targetCheckChanged(olds, news) ? "update" : "none"),
    outputs: (inputs) => ({ ...confirmTargetWrites(inputs as unknown as TargetCheckInputs) }),
    id: (_, outputs) => `${String(outputs.set)}-targets`,
};
