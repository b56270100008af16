#!/usr/bin/env node
/** Entry point of the `ci-key-rotation` command; all logic lives in `rotation/ops/cli.ts`. */
import { userInfo } from "node:os";
import { createInterface } from "node:readline/promises";
import { createRotationClient } from "../rotation/ops/automation";
import { main, processInterrupts } from "../rotation/ops/cli";

function loginName(): string {
    try {
        return userInfo().username;
    } catch {
        return process.env.USER ?? "unknown";
    }
}

const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);

main(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    interactive,
    async prompt(question) {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        // On a terminal readline takes Ctrl-C itself: hand it to the process's interrupt handling.
        rl.on("SIGINT", () => {
            rl.close();
            process.kill(process.pid, "SIGINT");
        });
        try {
            return await rl.question(question);
        } finally {
            rl.close();
        }
    },
    env: process.env,
    cwd: process.cwd(),
    client: createRotationClient(),
    user: process.env.CI_KEY_ROTATION_USER ?? loginName(),
    ...processInterrupts({ stderr: (text) => process.stderr.write(text), interactive, exit: (code) => process.exit(code) }),
}).then(
    (code) => {
        process.exitCode = code;
    },
    (err: unknown) => {
        // `main` maps every error itself; reaching this is a bug in the CLI.
        process.stderr.write(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
    },
);
