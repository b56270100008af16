import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

interface Child {
    send(signal: NodeJS.Signals): void;
    /** Resolves once stderr matches. */
    waitFor(pattern: RegExp): Promise<void>;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
    config(): Promise<Record<string, string>>;
}

async function rotateInChild(args: string[], env: Record<string, string> = {}): Promise<Child> {
    const dir = await mkdtemp(join(tmpdir(), "ckr-signal-"));
    await writeFile(join(dir, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
    await writeFile(join(dir, "Pulumi.prod.yaml"), "config: {}\n");
    const configOut = join(dir, "config.json");
    const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "support", "cli-child.ts"), ...args], {
        cwd: join(__dirname, ".."),
        env: { ...process.env, CKR_CWD: dir, CKR_CONFIG_OUT: configOut, ...env },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const waiters: { pattern: RegExp; resolve: () => void }[] = [];
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        for (const w of waiters.filter((w) => w.pattern.test(stderr))) w.resolve();
    });
    child.stdout.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    void exited.then(() => clearTimeout(killer));
    return {
        send: (signal) => child.kill(signal),
        waitFor: (pattern) => (pattern.test(stderr) ? Promise.resolve() : new Promise((resolve) => waiters.push({ pattern, resolve }))),
        exited,
        config: async () => JSON.parse(await readFile(configOut, "utf8")),
    };
}

describe("rotate, interrupted", () => {
    it("SIGTERM cancels the update, removes the request flags and exits 130 saying what is left", async () => {
        const child = await rotateInChild(["rotate", "--emergency", "--yes"]);
        await child.waitFor(/run 1\/8: pulumi up…/);
        assert.deepEqual(Object.keys(await child.config()).sort(), ["ci-key-rotation:emergency", "ci-key-rotation:request"]);
        child.send("SIGTERM");
        const { code, signal, stderr } = await child.exited;
        assert.equal(signal, null, stderr);
        assert.equal(code, 130, stderr);
        assert.deepEqual(await child.config(), {}, "no request, emergency or revoke flag left in stack config");
        assert.match(stderr, /SIGTERM received: cancelling the running update/);
        assert.match(stderr, /error: Interrupted: the rotation of `prod` stopped after 0 completed `pulumi up` runs/);
        assert.match(stderr, /The request was removed from stack config/);
        assert.match(stderr, /\[fake pulumi received 1 SIGINT\]/);
    });

    it("a Ctrl-C from a terminal is not sent to pulumi a second time; a second Ctrl-C exits at once", async () => {
        const child = await rotateInChild(["rotate", "--revoke", "--yes"], { CKR_INTERACTIVE: "1" });
        await child.waitFor(/run 1\/8: pulumi up…/);
        child.send("SIGINT");
        await child.waitFor(/Press Ctrl-C again to exit at once/);
        child.send("SIGINT");
        const { code, stderr } = await child.exited;
        assert.equal(code, 130, stderr);
        assert.match(stderr, /Exiting at once\. The request may still be in stack config: run `pulumi config rm ci-key-rotation:request`/);
        assert.doesNotMatch(stderr, /fake pulumi received/, "exited without waiting for the update");
    });
});
