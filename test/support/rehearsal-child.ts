import { fork, type ChildProcess } from "node:child_process";
import { simulateCommand } from "../../rotation/rehearsal/cli";
import { simulate, type SimulationOptions, type SimulationResult } from "../../rotation/rehearsal/simulation";

/**
 * Rehearsals run in a child process, outside the test harness: Node 20's test runner installs an
 * async hook that runs on every promise, and a rehearsal makes millions of them (measured: a
 * 30-day rehearsal costs 15–17 ms per run as a plain script, 39–46 ms inside `test()`). The
 * assertions stay in the test; only the rehearsal moves.
 */

/** What a child is asked to do: a rehearsal, or the `simulate` command with its arguments. */
export type RehearsalJob = { kind: "simulate"; options: SimulationOptions } | { kind: "command"; args: string[] };

/** What the `simulate` command did: its exit status and everything it wrote. */
export interface CommandOutcome {
    code: number;
    output: string;
}

type Reply = { ok: true; value: unknown } | { ok: false; error: string };

/** Environment variable that makes this module, started as a child process, wait for a job. */
const childVariable = "REHEARSAL_CHILD";

/** Tests run the slow tier (`npm run test:slow`) when `TEST_TIER=slow`. */
export const slowTier = process.env.TEST_TIER === "slow";

interface Worker {
    child: ChildProcess;
    busy: boolean;
}

/**
 * Up to two children (one per core of the CI machine), kept for the whole test file: starting
 * one loads tsx and the Pulumi SDK (over a second), more than many rehearsals cost. An idle
 * child does not keep the test process alive.
 */
const workers: Worker[] = [];
const waiting: (() => void)[] = [];
const poolSize = 2;

function startWorker(): Worker {
    const child = fork(__filename, [], {
        env: { ...process.env, [childVariable]: "1" },
        // A larger young generation: a rehearsal allocates many short-lived Outputs and promises.
        execArgv: [...process.execArgv, "--max-semi-space-size=64"],
        serialization: "advanced",
        stdio: "inherit",
    });
    const worker = { child, busy: false };
    child.once("exit", () => workers.splice(workers.indexOf(worker), 1));
    workers.push(worker);
    return worker;
}

async function acquire(): Promise<Worker> {
    for (;;) {
        const idle = workers.find((w) => !w.busy && w.child.connected) ?? (workers.length < poolSize ? startWorker() : undefined);
        if (idle) {
            idle.busy = true;
            idle.child.ref();
            (idle.child.channel as { ref?(): void } | undefined)?.ref?.();
            return idle;
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
    }
}

function release(worker: Worker): void {
    worker.busy = false;
    worker.child.unref();
    (worker.child.channel as { unref?(): void } | undefined)?.unref?.();
    waiting.shift()?.();
}

/** Hand the job to a child and resolve with what it sends back (structured clone, so `undefined` fields survive). */
async function inChild(job: RehearsalJob): Promise<unknown> {
    const worker = await acquire();
    try {
        return await new Promise((resolve, reject) => {
            const onExit = (code: number | null) => reject(new Error(`rehearsal child exited with code ${code} before reporting`));
            worker.child.once("exit", onExit);
            worker.child.once("message", (reply: Reply) => {
                worker.child.off("exit", onExit);
                if (reply.ok) resolve(reply.value);
                else reject(new Error(reply.error));
            });
            worker.child.send(job);
        });
    } finally {
        release(worker);
    }
}

/** End the children (a test file's `after` hook), and wait until they are gone. */
export async function stopRehearsalChildren(): Promise<void> {
    await Promise.all(
        workers.map(
            (w) =>
                new Promise<void>((resolve) => {
                    if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
                    w.child.once("exit", () => resolve());
                    w.child.disconnect();
                }),
        ),
    );
}

/** {@link simulate} in a child process. */
export function rehearseInChild(options: SimulationOptions): Promise<SimulationResult> {
    return inChild({ kind: "simulate", options }) as Promise<SimulationResult>;
}

/** The `simulate` command (`npm run simulate -- args`) in a child process. */
export function simulateCommandInChild(args: string[]): Promise<CommandOutcome> {
    return inChild({ kind: "command", args }) as Promise<CommandOutcome>;
}

async function runJob(job: RehearsalJob): Promise<unknown> {
    if (job.kind === "simulate") return simulate(job.options);
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => void out.push(t) }, stderr: { write: (t: string) => void out.push(t) } };
    const code = await simulateCommand(job.args, io);
    return { code, output: out.join("") } satisfies CommandOutcome;
}

if (process.env[childVariable] && process.send) {
    process.on("message", (job: RehearsalJob) => {
        runJob(job)
            .then(
                (value): Reply => ({ ok: true, value }),
                (err: unknown): Reply => ({ ok: false, error: err instanceof Error ? err.message : String(err) }),
            )
            .then((reply) => process.send!(reply));
    });
    // The test process went away (or finished): so does this child.
    process.on("disconnect", () => process.exit(0));
}
