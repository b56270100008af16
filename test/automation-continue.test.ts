/**
 * The library runs `pulumi up --continue-on-error`: without it the engine cancels every step not
 * yet started when one set's write fails (pulumi/pulumi pkg/resource/deploy/step_executor.go
 * `cancelDueToError`), so one team's failing target would hold back every other set's step.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { createRotationClient, type RotationStack } from "../rotation/ops/automation";
import { FakeClock, FakeStack, fakeOpener } from "./support/fake-stack";

it("every `up` the library runs passes continueOnError", async () => {
    const clock = new FakeClock();
    const stack = new FakeStack({ clock });
    const seen: unknown[] = [];
    const up = stack.up.bind(stack);
    (stack as unknown as RotationStack).up = (options) => {
        seen.push((options as { continueOnError?: boolean }).continueOnError);
        return up(options);
    };
    const client = createRotationClient({ openStack: fakeOpener({ prod: stack }), now: clock.now, sleep: async () => {} });
    await client.rotate({ stack: "prod", workDir: "/project", reason: "scheduled", requestedBy: "cron", mode: "scheduled" });
    assert.ok(seen.length > 0, "no up ran");
    assert.deepEqual(seen, seen.map(() => true));
});
