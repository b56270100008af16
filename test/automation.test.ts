import assert from "node:assert/strict";
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConcurrentUpdateError, StackNotFoundError } from "@pulumi/pulumi/automation";
import { createRotationClient, installHint, Interrupt, minimumPulumiVersion, OperationError, requestIdFor, type ProgressEvent, type RotateOptions } from "../rotation/ops/automation";
import { FakeClock, FakeStack, fakeOpener, keyId } from "./support/fake-stack";

const workDir = "/project";

function setup(options: { sets?: string[]; settings?: Record<string, unknown> } = {}) {
    const clock = new FakeClock();
    const stack = new FakeStack({ clock, ...options });
    const sleeps: number[] = [];
    const client = createRotationClient({
        openStack: fakeOpener({ prod: stack }),
        now: clock.now,
        sleep: async (ms) => {
            sleeps.push(ms);
        },
    });
    const rotate = (o: Partial<RotateOptions> & Pick<RotateOptions, "mode">) =>
        client.rotate({ stack: "prod", workDir, reason: "key pasted in build log", requestedBy: "alice", ...o });
    return { clock, stack, client, sleeps, rotate };
}

/** A stack whose sets ran once (generation 1, steady), at a later instant. */
async function steady(options: Parameters<typeof setup>[0] = {}) {
    const s = setup(options);
    await s.stack.cron();
    s.clock.advance("PT1H");
    return s;
}

const requestKeys = (stack: FakeStack) => [...stack.config.keys()].filter((k) => /request|emergency|revoke/.test(k));

describe("rotate", () => {
    it("scheduled mode runs one up and changes no config", async () => {
        const { stack, rotate } = await steady();
        const report = await rotate({ mode: "scheduled" });
        assert.equal(stack.ups.length, 1);
        assert.deepEqual(stack.changes.filter((c) => c.op !== "up"), []);
        assert.equal(report.outcome, "done");
        assert.equal(report.runs, 1);
        assert.deepEqual(report.sets[0].steps, []); // nothing due an hour after the first key
    });

    it("emergency from steady: sets the flags, mints, deactivates and deletes, then clears the flags", async () => {
        const { stack, rotate, clock } = await steady();
        const started = clock.now();
        const report = await rotate({ mode: "emergency" });

        assert.equal(report.outcome, "done");
        assert.equal(report.requestId, requestIdFor("emergency", "key pasted in build log", started));
        assert.match(report.requestId!, /^emergency-20261123T130100Z-key-pasted-in-build-log$/);
        assert.deepEqual(stack.ups[0].request, { request: report.requestId, emergency: "true" });
        const set = report.sets[0];
        assert.deepEqual(set.steps.map((s) => s.step), ["mint", "deactivate", "delete"]);
        assert.equal(set.keyBefore, keyId("deploy", 1));
        assert.equal(set.keyAfter, keyId("deploy", 2));
        assert.deepEqual(set.keysAfter, [keyId("deploy", 2)]);
        assert.equal(set.phaseBefore, "steady");
        assert.equal(set.phaseAfter, "steady");
        assert.equal(set.requestComplete, true);
        assert.deepEqual(set.targets, ["github repository acme/deploy"]);
        assert.deepEqual(requestKeys(stack), [], "flags cleared after the request");
        assert.equal(stack.state!.sets.deploy.lastRequest, report.requestId);
    });

    it("an emergency arriving mid-rotation finishes the old rotation first and stays within the run bound", async () => {
        const { stack, rotate, clock } = await steady({ settings: { every: "P7D" } });
        clock.advance("P7D");
        await stack.cron(); // mint: pushed, two keys
        assert.equal(stack.state!.sets.deploy.phase, "pushed");
        const report = await rotate({ mode: "emergency" });
        assert.equal(report.outcome, "done");
        assert.ok(report.runs <= 8);
        assert.deepEqual(report.sets[0].steps.map((s) => s.step), ["deactivate", "delete", "mint", "deactivate", "delete"]);
        assert.deepEqual(report.sets[0].keysAfter, [keyId("deploy", 3)]);
    });

    it("a plain request does what is due now and reports when the rest is due", async () => {
        const { stack, rotate } = await steady();
        const report = await rotate({ mode: "request" });
        assert.equal(stack.ups.length, 1);
        assert.equal(report.outcome, "waiting");
        const set = report.sets[0];
        assert.deepEqual(set.steps.map((s) => s.step), ["mint"]);
        assert.equal(set.next?.step, "deactivate");
        assert.equal(set.next?.dueAt, "2026-11-24T13:01:00.000Z"); // pushed + overlap (PT24H)
        assert.match(report.summary, /deactivate due at 2026-11-24T13:01:00.000Z/);
        assert.deepEqual(requestKeys(stack), []);
    });

    it("revoke deactivates the old key in the minting run", async () => {
        const { stack, rotate } = await steady();
        const report = await rotate({ mode: "revoke" });
        assert.deepEqual(stack.ups[0].request, { request: report.requestId, emergency: "true", revoke: "true" });
        assert.deepEqual(report.sets[0].steps.map((s) => s.step), ["revoke", "delete"]);
        assert.equal(report.outcome, "done");
    });

    it("a request for some sets writes requestSets and leaves the other sets alone", async () => {
        const { stack, rotate } = await steady({ sets: ["deploy", "docs"] });
        const report = await rotate({ mode: "emergency", sets: ["docs"] });
        assert.deepEqual(stack.ups[0].request.requestSets, ["docs"]);
        const docs = report.sets.find((s) => s.name === "docs")!;
        const deploy = report.sets.find((s) => s.name === "deploy")!;
        assert.equal(docs.requestComplete, true);
        assert.deepEqual(deploy.steps, []);
        assert.equal(deploy.requested, false);
        assert.equal(deploy.keyAfter, keyId("deploy", 1));
    });

    it("stops at maxRuns and says the emergency did not finish", async () => {
        const { stack, rotate } = await steady();
        const report = await rotate({ mode: "emergency", maxRuns: 2 });
        assert.equal(stack.ups.length, 2);
        assert.equal(report.outcome, "incomplete");
        assert.match(report.summary, /did not finish/);
        assert.deepEqual(requestKeys(stack), []);
    });

    it("a paused set makes an emergency incomplete instead of looping", async () => {
        const { stack, rotate } = await steady({ settings: { paused: "true" } });
        const report = await rotate({ mode: "emergency" });
        assert.equal(stack.ups.length, 1);
        assert.equal(report.outcome, "incomplete");
        assert.match(report.summary, /deploy: paused/);
    });

    it("retries a locked stack with growing waits, then succeeds", async () => {
        const { stack, rotate, sleeps } = await steady();
        const locked = () => new ConcurrentUpdateError("stderr: the stack is currently locked by 1 lock(s)");
        stack.upFailures.push(locked(), locked());
        const events: ProgressEvent[] = [];
        const report = await rotate({ mode: "emergency", onProgress: (e) => events.push(e) });
        assert.deepEqual(sleeps, [5000, 10000]);
        assert.equal(events.filter((e) => e.kind === "locked").length, 2);
        assert.equal(report.outcome, "done");
    });

    it("gives up on a lock after the bounded attempts, with a clear answer, and clears the flags", async () => {
        const { stack, rotate, sleeps } = await steady();
        for (let i = 0; i < 10; i++) stack.upFailures.push(new ConcurrentUpdateError("[409] Conflict: Another update is currently in progress."));
        const err = await rotate({ mode: "emergency" }).then(
            () => assert.fail("expected a lock error"),
            (e: unknown) => e as OperationError,
        );
        assert.ok(err instanceof OperationError);
        assert.equal(err.kind, "stack-locked");
        assert.match(err.message, /Stack `prod` is locked by another update \(tried 6 times over 135s\)/);
        assert.equal(stack.ups.length, 6);
        assert.deepEqual(sleeps, [5000, 10000, 20000, 40000, 60000]);
        assert.deepEqual(requestKeys(stack), []);
        assert.equal(stack.state!.sets.deploy.generation, 1, "nothing rotated");
    });

    it("a blocked run fails with the program's reason, a partial report, and cleared flags", async () => {
        const { stack, rotate } = await steady();
        stack.upFailures.push(new Error(`code: 255\n stdout: error: RotationBlockedError: No step was taken for sets "deploy", "build" (any other set took its step), because:\n  - IAM shows key AKIAXXXX that ci-key-rotation does not manage`));
        const err = (await rotate({ mode: "emergency" }).catch((e: unknown) => e)) as OperationError;
        assert.equal(err.kind, "blocked");
        assert.match(err.message, /IAM shows key AKIAXXXX/);
        assert.equal(err.partial?.runs, 0);
        assert.deepEqual(requestKeys(stack), []);
    });

    it("reports flags it could not clear", async () => {
        const { stack, rotate } = await steady();
        stack.removeConfigFailure = new Error("disk full");
        // The first clear (before setting) fails too: the request fails before any up.
        const err = (await rotate({ mode: "request" }).catch((e: unknown) => e)) as OperationError;
        assert.equal(stack.ups.length, 0);
        assert.match(err.message, /Could not write the request to the config of stack `prod`.*disk full.*nothing was rotated/);
        assert.match(err.partial!.warnings[0], /could not clear the request from stack config \(disk full\)/);
    });

    it("joins a rotation already running for the stack instead of starting it twice", async () => {
        const { stack, client } = await steady();
        const release = stack.hold();
        const first = client.rotate({ stack: "prod", workDir, mode: "emergency", reason: "leak", requestedBy: "alice" });
        const second = client.rotate({ stack: "prod", workDir, mode: "emergency", reason: "leak too", requestedBy: "bob" });
        const cron = client.rotate({ stack: "prod", workDir, mode: "scheduled", reason: "cron", requestedBy: "cron" });
        assert.deepEqual(client.inFlight("prod", workDir), { mode: "emergency", requestedBy: "alice", sets: undefined });
        release();
        const [a, b, c] = await Promise.all([first, second, cron]);
        assert.equal(stack.calls.filter((x) => x.op === "setConfig" && x.key === "ci-key-rotation:request").length, 1);
        assert.equal(b.requestId, a.requestId);
        assert.deepEqual(b.joined, { mode: "emergency", requestedBy: "alice" });
        assert.equal(c.requestId, a.requestId);
        assert.equal(client.inFlight("prod", workDir), undefined);
    });

    it("queues a stronger request behind a running weaker one", async () => {
        const { stack, client } = await steady();
        const release = stack.hold();
        const plain = client.rotate({ stack: "prod", workDir, mode: "request", reason: "routine", requestedBy: "alice" });
        const emergency = client.rotate({ stack: "prod", workDir, mode: "emergency", reason: "leak", requestedBy: "bob" });
        release();
        const [p, e] = await Promise.all([plain, emergency]);
        assert.notEqual(p.requestId, e.requestId);
        assert.equal(e.joined, undefined);
        assert.equal(e.outcome, "done");
        // The emergency's first up came after the plain request had finished.
        const firstEmergencyUp = stack.ups.findIndex((u) => u.request.emergency === "true");
        assert.ok(stack.ups.slice(0, firstEmergencyUp).every((u) => u.request.request === p.requestId));
    });

    it("names the stack and how to create it when it does not exist", async () => {
        const { client } = setup();
        const err = (await client.rotate({ stack: "staging", workDir, mode: "emergency", reason: "x", requestedBy: "a" }).catch((e: unknown) => e)) as OperationError;
        assert.equal(err.kind, "stack-missing");
        assert.match(err.message, /Stack `staging` does not exist/);
        assert.match(err.message, /pulumi stack init staging/);
    });

    it("maps the SDK's StackNotFoundError", async () => {
        const client = createRotationClient({
            openStack: async () => {
                throw new StackNotFoundError("stderr: no stack named 'prod' found");
            },
        });
        const err = (await client.status({ stack: "prod", workDir }).catch((e: unknown) => e)) as OperationError;
        assert.equal(err.kind, "stack-missing");
    });

    it("refuses bad options before touching the stack", async () => {
        const { stack, rotate } = await steady();
        for (const bad of [{ mode: "scheduled" as const, sets: ["deploy"] }, { mode: "emergency" as const, sets: ["Not A Set"] }, { mode: "request" as const, stack: "bad stack" }]) {
            const err = (await rotate(bad).catch((e: unknown) => e)) as OperationError;
            assert.equal(err.kind, "bad-input", JSON.stringify(bad));
        }
        assert.deepEqual(stack.changes, []);
    });
});

describe("status", () => {
    it("reads outputs only and reports ages, next steps and a stale last run", async () => {
        const { stack, client, clock } = await steady();
        clock.advance("P1DT2H");
        const report = await client.status({ stack: "prod", workDir });
        assert.deepEqual(stack.calls.map((c) => c.op), ["outputs"]);
        const [set] = report.sets;
        assert.equal(set.name, "deploy");
        assert.equal(set.phase, "steady");
        assert.equal(set.accessKeyId, keyId("deploy", 1));
        assert.equal(set.keys[0].age, "P1DT3H1M");
        assert.equal(set.next?.step, "mint");
        assert.equal(set.next?.dueAt, "2026-11-30T12:00:00.000Z");
        assert.equal(set.next?.dueNow, false);
        assert.match(report.warnings[0], /the last successful run was at 2026-11-23T12:00:00.000Z \(1 day, 3 hr, 1 min ago\)/);
    });

    it("says when a stack has never run", async () => {
        const { client } = setup();
        const report = await client.status({ stack: "prod", workDir });
        assert.deepEqual(report.sets, []);
        assert.match(report.warnings[0], /no rotation state yet/);
    });
});

describe("the real workspace without the pulumi CLI", () => {
    it("answers with one line saying how to install it", async () => {
        const path = process.env.PATH;
        process.env.PATH = "/nonexistent";
        try {
            const err = (await createRotationClient().status({ stack: "dev", workDir: process.cwd() }).catch((e: unknown) => e)) as OperationError;
            assert.equal(err.kind, "cli-missing");
            assert.equal(err.message, installHint);
            assert.ok(!err.message.includes("\n"));
            assert.match(err.message, /https:\/\/www\.pulumi\.com\/docs\/install\//);
        } finally {
            process.env.PATH = path;
        }
    });
});

describe("a pulumi CLI older than the minimum", () => {
    it("is refused before anything changes, by rotate and status, with its own error kind", async () => {
        const { stack, client } = await steady();
        stack.workspace = { pulumiVersion: "3.132.0" };
        for (const call of [() => client.rotate({ stack: "prod", workDir, mode: "emergency", reason: "r", requestedBy: "a" }), () => client.status({ stack: "prod", workDir })]) {
            const err = (await call().catch((e: unknown) => e)) as OperationError;
            assert.equal(err.kind, "cli-too-old");
            assert.equal(
                err.message,
                `The pulumi CLI is version 3.132.0; ci-key-rotation needs ${minimumPulumiVersion} or newer: older CLIs drop every stack output when an update fails (pulumi/pulumi#12929), and the rotation state lives in those outputs. Upgrade it (https://www.pulumi.com/docs/install/) and run again.`,
            );
        }
        assert.deepEqual(stack.calls, []);
        stack.workspace = { pulumiVersion: "3.133.0" };
        assert.equal((await client.rotate({ stack: "prod", workDir, mode: "scheduled", reason: "r", requestedBy: "a" })).outcome, "done");
    });

    it("is read from the real workspace (`pulumi version`)", async () => {
        const dir = await mkdtemp(join(tmpdir(), "ckr-oldcli-"));
        // A stand-in CLI: reports an old version and accepts every other command.
        await writeFile(join(dir, "pulumi"), '#!/bin/sh\nif [ "$1" = version ]; then echo v3.100.0; fi\nexit 0\n');
        await chmod(join(dir, "pulumi"), 0o755);
        await writeFile(join(dir, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
        const path = process.env.PATH;
        process.env.PATH = dir;
        try {
            const err = (await createRotationClient().status({ stack: "dev", workDir: dir }).catch((e: unknown) => e)) as OperationError;
            assert.equal(err.kind, "cli-too-old", err.message);
            assert.match(err.message, /^The pulumi CLI is version 3\.100\.0; ci-key-rotation needs 3\.133\.0 or newer/);
        } finally {
            process.env.PATH = path;
        }
    });
});

describe("an interrupted rotation", () => {
    it("cancels the running up through its signal, starts no other, clears the request and says what is left", async () => {
        const { stack, rotate } = await steady();
        const release = stack.hold();
        const controller = new AbortController();
        const rotation = rotate({ mode: "emergency", signal: controller.signal }).catch((e: unknown) => e);
        await stack.upsStarted();
        controller.abort(new Interrupt("SIGTERM", false));
        const err = (await rotation) as OperationError;
        release();
        assert.equal(err.kind, "interrupted");
        assert.equal(stack.signals, 1, "one SIGINT to the pulumi process");
        assert.equal(stack.ups.length, 1);
        assert.deepEqual(requestKeys(stack), []);
        assert.match(err.message, /^Interrupted: the rotation of `prod` stopped after 0 completed `pulumi up` runs/);
        assert.match(err.message, /The request was removed from stack config: scheduled runs will not continue it\./);
        assert.match(err.message, new RegExp(`\\n  deploy: steady, keys ${keyId("deploy", 1)} \\(Active\\)\\n`));
    });

    it("sends no second SIGINT when the pulumi process got the Ctrl-C itself", async () => {
        const { stack, rotate } = await steady();
        const release = stack.hold();
        const controller = new AbortController();
        const rotation = rotate({ mode: "revoke", signal: controller.signal }).catch((e: unknown) => e);
        await stack.upsStarted();
        controller.abort(new Interrupt("SIGINT", true));
        // The CLI cancels itself on the terminal's SIGINT: its update fails.
        stack.upFailures.push(new Error("code: 255\n stderr: error: update canceled"));
        release();
        const err = (await rotation) as OperationError;
        assert.equal(err.kind, "interrupted");
        assert.equal(stack.signals, 0);
        assert.deepEqual(requestKeys(stack), []);
    });

    it("while waiting for another update's lock, stops waiting and starts no up", async () => {
        const clock = new FakeClock();
        const stack = new FakeStack({ clock });
        await stack.cron();
        const controller = new AbortController();
        const client = createRotationClient({
            openStack: fakeOpener({ prod: stack }),
            now: clock.now,
            // A wait that only an abort ends, like the real one for a long delay.
            sleep: (_ms, signal) =>
                new Promise((_resolve, reject) => {
                    if (signal?.aborted) return reject(signal.reason);
                    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
                }),
        });
        stack.upFailures.push(new ConcurrentUpdateError("[409] Conflict: Another update is currently in progress."));
        const rotation = client.rotate({ stack: "prod", workDir, mode: "request", reason: "r", requestedBy: "a", signal: controller.signal, onProgress: (e) => e.kind === "locked" && controller.abort(new Interrupt("SIGTERM", false)) });
        const err = (await rotation.catch((e: unknown) => e)) as OperationError;
        assert.equal(err.kind, "interrupted");
        assert.equal(stack.ups.length, 1, "the locked attempt only");
        assert.deepEqual(requestKeys(stack), []);
    });

    it("between runs, starts no further up", async () => {
        const { stack, rotate } = await steady();
        const controller = new AbortController();
        const err = (await rotate({ mode: "emergency", signal: controller.signal, onProgress: (e) => e.kind === "step" && controller.abort(new Interrupt("SIGTERM", false)) }).catch((e: unknown) => e)) as OperationError;
        assert.equal(err.kind, "interrupted");
        assert.equal(stack.ups.length, 1);
        assert.match(err.message, /stopped after 1 completed `pulumi up` run;/);
        assert.match(err.message, /deploy: pushed, keys .* \(Active\), .* \(Active\), request emergency-.* still open/);
        assert.deepEqual(requestKeys(stack), []);
    });
});
