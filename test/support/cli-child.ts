/**
 * The CLI as bin/ci-key-rotation.ts wires it (real signal handling), against a fake stack whose
 * `up` never finishes on its own: only an interrupt ends it. The stack's request config is
 * mirrored to `CKR_CONFIG_OUT` after every change, so a test can read what a killed process
 * left behind. Used by test/cli-signals.test.ts.
 */
import { createRotationClient } from "../../rotation/ops/automation";
import { main, processInterrupts } from "../../rotation/ops/cli";
import { FakeClock, FakeStack, fakeOpener } from "./fake-stack";

async function run(): Promise<void> {
    const clock = new FakeClock();
    const stack = new FakeStack({ clock });
    await stack.cron();
    clock.advance("PT1H");
    stack.configFile = process.env.CKR_CONFIG_OUT;
    stack.hold(); // never released
    const interactive = process.env.CKR_INTERACTIVE === "1";
    // The real `pulumi` child process keeps the event loop alive while an update runs.
    const pulumiProcess = setInterval(() => {}, 1_000);
    const code = await main(process.argv.slice(2), {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
        interactive,
        prompt: async () => "",
        env: {},
        cwd: process.env.CKR_CWD!,
        client: createRotationClient({ openStack: fakeOpener({ prod: stack }), now: clock.now }),
        user: "alice",
        ...processInterrupts({ stderr: (t) => process.stderr.write(t), interactive, exit: (c) => process.exit(c) }),
    });
    clearInterval(pulumiProcess);
    process.stderr.write(`[fake pulumi received ${stack.signals} SIGINT]\n`);
    process.exitCode = code;
}
void run();
