import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConcurrentUpdateError } from "@pulumi/pulumi/automation";
import { createRotationClient, type ProgressEvent } from "../rotation/ops/automation";
import { lockHolders, staleLocks, thisHost, type HostView, type ProcessState } from "../rotation/ops/stale-lock";
import { FakeClock, FakeStack, fakeOpener } from "./support/fake-stack";

/** The locked error of a DIY backend, as pulumi/pulumi pkg/backend/diy/lock.go `checkForLock` words it. */
function lockedError(locks: Array<{ url: string; user?: string; host: string; pid: number }>): string {
    return (
        "code: 255\n stdout: \n stderr: error: the stack is currently locked by " +
        `${locks.length} lock(s). Either wait for the other process(es) to end or delete the lock file with \`pulumi cancel\`.` +
        locks.map((l) => `\n  ${l.url}: created by ${l.user ?? "ci"}@${l.host} (pid ${l.pid}) at 2026-11-23T21:00:00Z`).join("") +
        "\n"
    );
}

const lockUrl = "file:///srv/state/.pulumi/locks/organization/ci-key-rotation/prod/6f1c0a2e.json?metadata=skip";
const host = (states: Record<number, ProcessState>, hostname = "runner-1"): HostView => ({ hostname, processState: (pid) => states[pid] ?? "running" });

describe("stale locks", () => {
    it("reads every lock holder from the locked error", () => {
        const text = lockedError([
            { url: lockUrl, user: "ci@corp", host: "runner-1", pid: 4242 },
            { url: "s3://bucket/.pulumi/locks/organization/p/prod/x.json", host: "runner-2", pid: 7 },
        ]);
        assert.deepEqual(lockHolders(text), [
            { lock: lockUrl, user: "ci@corp", host: "runner-1", pid: 4242, since: "2026-11-23T21:00:00Z" },
            { lock: "s3://bucket/.pulumi/locks/organization/p/prod/x.json", user: "ci", host: "runner-2", pid: 7, since: "2026-11-23T21:00:00Z" },
        ]);
    });

    it("reads each lock once from the Automation API's error, which repeats the CLI's stderr", () => {
        const stderr = lockedError([{ url: lockUrl, host: "runner-1", pid: 4242 }]).replace(/^code: 255\n stdout: \n stderr: /, "");
        const sdkMessage = `code: -2\n stdout: \n stderr: Command failed with exit code 1: pulumi up --yes\n${stderr} err?: Error: Command failed with exit code 1: pulumi up --yes\n${stderr}`;
        assert.equal(lockHolders(sdkMessage).length, 1);
        assert.equal(staleLocks(sdkMessage, host({ 4242: "gone" })).stale, true);
    });

    it("is stale only when every lock was taken on this host by a process that is gone (or whose id was reused)", () => {
        const one = lockedError([{ url: lockUrl, host: "runner-1", pid: 4242 }]);
        assert.equal(staleLocks(one, host({ 4242: "gone" })).stale, true);
        assert.equal(staleLocks(one, host({ 4242: "reused" })).stale, true);
        assert.match((staleLocks(one, host({ 4242: "running" })) as { why: string }).why, /still running/);
        assert.match((staleLocks(one, host({ 4242: "gone" }, "runner-9")) as { why: string }).why, /host runner-1, not this one/);
        const two = lockedError([
            { url: lockUrl, host: "runner-1", pid: 4242 },
            { url: lockUrl.replace("6f1c", "9999"), host: "runner-1", pid: 5000 },
        ]);
        assert.equal(staleLocks(two, host({ 4242: "gone", 5000: "running" })).stale, false, "one live lock keeps the stack locked");
        assert.equal(staleLocks("[409] Conflict: Another update is currently in progress.", host({})).stale, false, "the Pulumi Cloud conflict names no holder");
    });

    it("this host: a pid now held by another program is reused, an unused pid is gone", () => {
        // This test runs in `node`, not `pulumi`: a lock naming this pid would be stale.
        assert.equal(thisHost.processState(process.pid), "reused");
        assert.equal(thisHost.processState(2 ** 22 + 17), "gone"); // above Linux's pid_max
    });
});

describe("rotate after a killed update", () => {
    function setup(states: Record<number, ProcessState>, locks: Array<{ url: string; host: string; pid: number }>) {
        const clock = new FakeClock();
        const stack = new FakeStack({ clock });
        const cancels: number[] = [];
        Object.assign(stack, { cancel: async () => void cancels.push(1) });
        const removed: string[] = [];
        const sleeps: number[] = [];
        const client = createRotationClient({
            openStack: fakeOpener({ prod: stack }),
            now: clock.now,
            sleep: async (ms) => void sleeps.push(ms),
            host: host(states),
            removeLockFile: async (path) => void removed.push(path),
        });
        stack.upFailures.push(new ConcurrentUpdateError(lockedError(locks)));
        const events: ProgressEvent[] = [];
        const rotate = () => client.rotate({ stack: "prod", workDir: "/project", mode: "scheduled", reason: "cron", requestedBy: "cron", onProgress: (e) => events.push(e) });
        return { stack, cancels, removed, sleeps, events, rotate };
    }

    it("removes the lock file of a dead update on this host and runs at once, saying so in the report", async () => {
        const s = setup({ 4242: "gone" }, [{ url: lockUrl, host: "runner-1", pid: 4242 }]);
        const report = await s.rotate();
        assert.equal(s.stack.ups.length, 2, "the up did not run again after the stale lock was removed");
        assert.deepEqual(s.removed, ["/srv/state/.pulumi/locks/organization/ci-key-rotation/prod/6f1c0a2e.json"]);
        assert.deepEqual(s.cancels, [], "a file backend's stale lock is removed by itself, not with pulumi cancel");
        assert.deepEqual(s.sleeps, [], "no wait for a lock nobody holds");
        assert.equal(report.outcome, "done");
        assert.match(report.warnings.join("\n"), /removed the lock of an update that is no longer running \(pid 4242 on runner-1 since 2026-11-23T21:00:00Z/);
        assert.ok(s.events.some((e) => e.kind === "stale-lock"));
    });

    it("uses pulumi cancel for a stale lock in a bucket", async () => {
        const s = setup({ 4242: "gone" }, [{ url: "s3://state/.pulumi/locks/organization/p/prod/a.json", host: "runner-1", pid: 4242 }]);
        await s.rotate();
        assert.deepEqual(s.cancels, [1]);
        assert.deepEqual(s.removed, []);
        assert.equal(s.stack.ups.length, 2);
    });

    it("leaves a live lock alone and waits as documented", async () => {
        const s = setup({ 4242: "running" }, [{ url: lockUrl, host: "runner-1", pid: 4242 }]);
        await s.rotate();
        assert.deepEqual(s.removed, []);
        assert.deepEqual(s.cancels, []);
        assert.deepEqual(s.sleeps, [5000], "the usual lock retry");
        assert.ok(!s.events.some((e) => e.kind === "stale-lock"));
    });

    it("leaves a lock from another host alone", async () => {
        const s = setup({ 4242: "gone" }, [{ url: lockUrl, host: "runner-2", pid: 4242 }]);
        await s.rotate();
        assert.deepEqual(s.removed, []);
        assert.deepEqual(s.sleeps, [5000]);
    });
});
