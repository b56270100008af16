/**
 * The `ci-key-rotation` command line. `main` is the single error boundary: every command returns
 * an exit code or throws, and only `main` turns errors into messages and codes. Everything the
 * commands touch (output, prompts, the Pulumi stack, the chatops server) comes in through
 * {@link CliIo}, so tests run it in process.
 */
import { readdir, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Interrupt, OperationError, type ProgressEvent, type RotationClient, type RotationMode } from "./automation";
// Types only: the chatops server (zod, luxon, yaml) loads when `serve` runs, so that `--help`
// and argument errors start fast.
import type { ChatopsFileConfig, ChatopsOptions, ChatopsServer } from "./chatops";
import { formatRotationReport, formatStatusReport } from "./report-text";

/** Exit codes, documented in `--help` and docs/operations.md. */
export const exitCodes = {
    /** Done: the run or request finished, or a plain request did what is due now. */
    ok: 0,
    /** `pulumi up` failed, or an unexpected error. */
    failed: 1,
    /** Bad arguments or invalid stack configuration: nothing was changed. */
    usage: 2,
    /** A destructive mode was not confirmed: nothing was changed. */
    notConfirmed: 3,
    /** The stack stayed locked by another update through every retry. */
    locked: 4,
    /** Setup: the `pulumi` CLI is missing or the stack does not exist. */
    setup: 5,
    /** The program refused to act (state and IAM disagree, last-used gate timed out): a person must look. */
    blocked: 6,
    /** An emergency or revoke did not finish (a set is paused, or the run limit was reached). */
    incomplete: 7,
    /** Setup: the `pulumi` CLI is older than 3.133 (see `minimumPulumiVersion`). */
    cliTooOld: 8,
    /** Interrupted (Ctrl-C or SIGTERM): the update was cancelled and the request cleared. */
    interrupted: 130,
} as const;

/** Everything the CLI reads and writes. */
export interface CliIo {
    stdout(text: string): void;
    stderr(text: string): void;
    /** Whether a person can answer a prompt (stdin and stderr are terminals). */
    interactive: boolean;
    /** Ask a question, resolve with the answer line. */
    prompt(question: string): Promise<string>;
    env: NodeJS.ProcessEnv;
    /** The directory commands run in unless `--cwd` says otherwise. */
    cwd: string;
    client: RotationClient;
    /** Who runs the command, for `requestedBy` (default: the login name). */
    user: string;
    /** Resolves when the server should stop (SIGINT/SIGTERM in the real CLI). */
    untilShutdown(): Promise<void>;
    /**
     * Run `work` with a signal that the first interrupt (Ctrl-C, SIGTERM) aborts with an
     * {@link Interrupt}. Default: nothing interrupts it. See {@link processInterrupts}.
     */
    cancellable?<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>;
    /** Make the chatops server. Default `createChatopsServer` of ./chatops. */
    createServer?: (options: ChatopsOptions) => ChatopsServer;
}

/** A usage problem: exit code 2 and a pointer to `--help`. */
export class UsageError extends Error {
    constructor(
        message: string,
        readonly command?: string,
    ) {
        super(message);
        this.name = "UsageError";
    }
}

interface Command {
    summary: string;
    help: string;
    options: NonNullable<ParseArgsConfig["options"]>;
    run(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number>;
    /** A command with its own argument parser gets the raw arguments instead (`simulate`). */
    runRaw?(argv: string[], io: CliIo): Promise<number>;
}

const common = {
    stack: { type: "string", short: "s" },
    cwd: { type: "string", short: "C" },
    help: { type: "boolean", short: "h" },
} as const;

const exitCodeHelp = `Exit codes:
  0  done (a plain request may leave later steps to the scheduled runs)
  1  pulumi up failed, or an unexpected error
  2  bad arguments or invalid stack configuration (nothing changed)
  3  not confirmed (nothing changed)
  4  stack locked by another update through every retry
  5  setup: pulumi CLI missing, or the stack does not exist
  6  blocked: a set refused to act (the other sets took their step); read the message
  7  emergency or revoke did not finish
  8  the pulumi CLI is older than 3.133: upgrade it
  130  interrupted (Ctrl-C or SIGTERM): the running update was cancelled`;

/**
 * The commands. Adding one (e.g. `simulate`) is one entry here: its options, help and `run`.
 */
export const commands: Record<string, Command> = {
    rotate: {
        summary: "Run the rotation now: a scheduled run, a request, an emergency or a revocation",
        help: `Usage: ci-key-rotation rotate [--stack <name>] [--request | --emergency | --revoke] [--sets a,b] [--reason <text>] [--yes] [--json] [--verbose]

Without a mode, runs one \`pulumi up\`: exactly what the scheduled job does.
  --request     rotate now, keeping the usual waits: mints at once, and reports when
                the remaining steps (deactivate, delete) are due for the scheduled runs
  --emergency   rotate to the end now: no overlap, no retire wait, no last-used gate;
                CI jobs still holding an old key fail. Asks for confirmation.
  --revoke      the key leaked: as --emergency, and the old key is deactivated in the same
                run that mints the new one. Asks for confirmation.
  --sets a,b    only these credential sets (request modes; default every set)
  --reason      why (goes into the request id and the report)
  --yes, -y     do not ask for confirmation (required without a terminal)
  --json        print the report as JSON on stdout
  --verbose     stream Pulumi's own output
  --stack, -s   stack name (default: the only Pulumi.<stack>.yaml in the directory)
  --cwd, -C     project directory (default: current directory)

Ctrl-C or SIGTERM cancels the running update (Pulumi finishes the operations in flight) and
removes the request from stack config, then exits 130 saying what state it left; a second
one exits at once. Needs the pulumi CLI 3.133 or newer (exit 8 otherwise).

Reference: docs/operations.md ("By hand: requests and emergencies", "Exit codes").

${exitCodeHelp}`,
        options: {
            ...common,
            request: { type: "boolean" },
            emergency: { type: "boolean" },
            revoke: { type: "boolean" },
            sets: { type: "string" },
            reason: { type: "string" },
            yes: { type: "boolean", short: "y" },
            json: { type: "boolean" },
            verbose: { type: "boolean", short: "v" },
        },
        run: runRotate,
    },
    status: {
        summary: "Show each set's phase, keys and ages, and what the next scheduled run does",
        help: `Usage: ci-key-rotation status [--stack <name>] [--json]

Reads the stack's outputs; changes nothing.
  --json        print the report as JSON on stdout
  --stack, -s   stack name (default: the only Pulumi.<stack>.yaml in the directory)
  --cwd, -C     project directory (default: current directory)

Reference: docs/timing.md (phases) and docs/outputs-and-state.md.

${exitCodeHelp}`,
        options: { ...common, json: { type: "boolean" } },
        async run(values, io) {
            const { stack, workDir } = await target(values, io);
            const report = await io.client.status({ stack, workDir });
            io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatusReport(report)}\n`);
            return exitCodes.ok;
        },
    },
    policy: {
        summary: "Print the least-privilege IAM policy the operator's credentials need",
        help: `Usage: ci-key-rotation policy [--readers [--target <path>]] [--stack <name>] [--account <id>] [--partition <aws|aws-cn|aws-us-gov>]

Reads Pulumi.<stack>.yaml (no pulumi CLI needed), validates it, and prints the IAM policy
document for the credentials \`pulumi up\` runs with: user, key and policy actions scoped to
each set's IAM user, managed policy attachment limited to the configured ARNs, the AWS stores'
own actions (e.g. Secrets Manager, KMS) scoped to their resources, plus sts:GetCallerIdentity.
State backend and secrets provider permissions are not included.
  --readers     instead, the policies the consumers of AWS-side targets need (e.g. a runner's
                instance role reading a Secrets Manager secret): a JSON list of
                { path, target, policy }, one per target, in config order
  --target      with --readers: print only that target's policy document, ready to paste
                (its config path, e.g. credentials[0].targets[2], or its label)
  --account     AWS account id of the users (default *)
  --partition   ARN partition (default aws)
  --stack, -s   stack name (default: the only Pulumi.<stack>.yaml in the directory)
  --cwd, -C     project directory (default: current directory)

Reference: docs/permissions.md.

${exitCodeHelp}`,
        options: { ...common, account: { type: "string" }, partition: { type: "string" }, readers: { type: "boolean" }, target: { type: "string" } },
        async run(values, io) {
            const { stack, workDir } = await target(values, io);
            const account = values.account as string | undefined;
            if (account !== undefined && !/^\d{12}$/.test(account)) throw new UsageError("`--account` must be a 12-digit AWS account id", "policy");
            const partition = values.partition as string | undefined;
            if (partition !== undefined && !["aws", "aws-cn", "aws-us-gov"].includes(partition)) throw new UsageError("`--partition` must be aws, aws-cn or aws-us-gov", "policy");
            // Loaded on demand: validating a stack's config loads the secret stores' modules.
            const only = values.target as string | undefined;
            if (only !== undefined && !values.readers) throw new UsageError("`--target` is only used with `--readers`", "policy");
            const { operatorPolicy, readerPolicies, readStackFileConfig } = await import("./operator-policy");
            const result = await readStackFileConfig(workDir, stack);
            if (!result.ok) {
                io.stderr(`${result.file}: invalid ci-key-rotation configuration (${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}):\n${result.problems.map((p) => `  - ${p}`).join("\n")}\n`);
                return exitCodes.usage;
            }
            if (values.readers) {
                const policies = readerPolicies(result.config, { account, partition });
                if (only === undefined) {
                    if (policies.length === 0) io.stderr(`${result.file}: no target is read with an AWS identity of its own (GitHub and GitLab targets are read by the CI service): no reader policies.\n`);
                    io.stdout(`${JSON.stringify(policies, null, 2)}\n`);
                    return exitCodes.ok;
                }
                const one = policies.find((p) => p.path === only || p.target === only);
                if (!one) {
                    const known = policies.map((p) => `${p.path} (${p.target})`).join(", ") || "none";
                    throw new UsageError(`\`--target\` ${only} is no target with reader permissions; targets with reader permissions: ${known}`, "policy");
                }
                io.stdout(`${JSON.stringify(one.policy, null, 2)}\n`);
                return exitCodes.ok;
            }
            io.stdout(`${JSON.stringify(operatorPolicy(result.config, { account, partition }), null, 2)}\n`);
            return exitCodes.ok;
        },
    },
    simulate: {
        summary: "Rehearse the stack's rotations offline: the real program, a simulated year, faults",
        help: "", // filled in lazily: the simulator is loaded only when asked for
        options: {},
        run: async () => exitCodes.usage,
        async runRaw(argv, io) {
            // Loaded on demand: it brings the program and Pulumi's mocks, which no other command needs.
            const { simulateCommand } = await import("../rehearsal/cli");
            const args = argv.includes("--dir") || argv.includes("--help") || argv.includes("-h") ? argv : ["--dir", io.cwd, ...argv];
            return simulateCommand(args, { stdout: { write: (t: string) => io.stdout(t) }, stderr: { write: (t: string) => io.stderr(t) } });
        },
    },
    serve: {
        summary: "Run the chatops endpoint for Slack's /rotate command",
        help: `Usage: ci-key-rotation serve [--port <n>] [--host <addr>] [--config <file>] [--audit-log <file>] [--cwd <dir>]

Accepts POST /slack/commands from a Slack app's slash command (GET /healthz answers ok).
  --port        default 3000
  --host        default 127.0.0.1 (put a TLS-terminating proxy in front)
  --config      JSON or YAML: allowedUsers, allowedChannels, stacks, cooldown (ISO-8601,
                default PT15M), auditLog, responseUrlHosts
  --audit-log   JSON lines file (default ./ci-key-rotation-audit.jsonl)
Environment: SLACK_SIGNING_SECRET (required), CI_KEY_ROTATION_ALLOWED_USERS and
CI_KEY_ROTATION_ALLOWED_CHANNELS (comma-separated ids, added to the file's lists),
CI_KEY_ROTATION_STACKS (comma-separated stack names).

Reference: docs/operations.md ("Chatops: Slack /rotate": setup, checks, audit log).

${exitCodeHelp}`,
        options: {
            cwd: common.cwd,
            help: common.help,
            port: { type: "string", short: "p" },
            host: { type: "string" },
            config: { type: "string" },
            "audit-log": { type: "string" },
        },
        run: runServe,
    },
};

const overview = () => `ci-key-rotation: short-lived AWS access keys for hosted CI.

Usage: ci-key-rotation <command> [options]

Commands:
${Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
    .join("\n")}

Run \`ci-key-rotation <command> --help\` for a command's options.

Documentation: README.md, and docs/ for reference (docs/operations.md for running it).

${exitCodeHelp}
`;

/** Run the CLI; resolves with the exit code and never rejects. */
export async function main(argv: string[], io: CliIo): Promise<number> {
    const [name, ...rest] = argv;
    let commandName: string | undefined;
    try {
        if (name === undefined || name === "--help" || name === "-h" || name === "help") {
            const topic = name === "help" ? rest[0] : undefined;
            if (topic !== undefined && !(topic in commands)) throw new UsageError(`unknown command \`${topic}\``);
            if (name === undefined) {
                io.stderr(overview());
                return exitCodes.usage;
            }
            if (topic && commands[topic].runRaw) return await commands[topic].runRaw!(["--help"], io);
            io.stdout(topic ? `${commands[topic].help}\n` : overview());
            return exitCodes.ok;
        }
        const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
        if (!command) throw new UsageError(`unknown command \`${name}\` (commands: ${Object.keys(commands).join(", ")})`);
        commandName = name;
        if (command.runRaw) return await command.runRaw(rest, io);
        let values: Record<string, string | boolean | undefined>;
        try {
            values = parseArgs({ args: rest, options: command.options, strict: true, allowPositionals: false }).values as typeof values;
        } catch (err) {
            throw new UsageError((err as Error).message, name);
        }
        if (values.help) {
            io.stdout(`${command.help}\n`);
            return exitCodes.ok;
        }
        return await command.run(values, io);
    } catch (err) {
        return report(err, io, commandName);
    }
}

function report(err: unknown, io: CliIo, command: string | undefined): number {
    if (err instanceof UsageError) {
        const which = err.command ?? command;
        io.stderr(`error: ${err.message}\nSee \`ci-key-rotation ${which ? `${which} ` : ""}--help\`.\n`);
        return exitCodes.usage;
    }
    if (err instanceof OperationError) {
        if (err.partial && err.partial.runs > 0) io.stderr(`${formatRotationReport(err.partial)}\n\n`);
        io.stderr(`error: ${err.message}\n`);
        switch (err.kind) {
            case "cli-missing":
            case "stack-missing":
                return exitCodes.setup;
            case "cli-too-old":
                return exitCodes.cliTooOld;
            case "stack-locked":
                return exitCodes.locked;
            case "blocked":
                return exitCodes.blocked;
            case "config":
            case "bad-input":
                return exitCodes.usage;
            case "run-failed":
                return exitCodes.failed;
            case "interrupted":
                return exitCodes.interrupted;
        }
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodes.failed;
}

/** The stack and project directory a command acts on. */
async function target(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<{ stack: string; workDir: string }> {
    const workDir = resolve(io.cwd, (values.cwd as string | undefined) ?? ".");
    const given = values.stack as string | undefined;
    if (given !== undefined) {
        if (!/^[A-Za-z0-9_.\/-]{1,200}$/.test(given)) throw new UsageError(`\`--stack\` must be a stack name (got ${JSON.stringify(given)})`);
        return { stack: given, workDir };
    }
    let files: string[];
    try {
        files = await readdir(workDir);
    } catch {
        throw new UsageError(`cannot read the project directory ${workDir}; pass --cwd`);
    }
    const stacks = files.map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1]).filter((s): s is string => s !== undefined);
    if (stacks.length === 1) return { stack: stacks[0], workDir };
    throw new UsageError(
        stacks.length === 0 ? `no Pulumi.<stack>.yaml in ${workDir}: pass --stack (or --cwd to the project directory)` : `several stacks in ${workDir} (${stacks.join(", ")}): pass --stack`,
    );
}

async function runRotate(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number> {
    const flags = (["request", "emergency", "revoke"] as const).filter((f) => values[f]);
    if (flags.length > 1) throw new UsageError(`choose one of --request, --emergency, --revoke (got ${flags.map((f) => `--${f}`).join(" and ")})`, "rotate");
    const mode = (flags[0] as RotationMode | undefined) ?? "scheduled";
    const sets = typeof values.sets === "string" ? values.sets.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
    if (sets && mode === "scheduled") throw new UsageError("`--sets` needs --request, --emergency or --revoke: a scheduled run advances every set", "rotate");
    if (sets && sets.length === 0) throw new UsageError("`--sets` must name at least one set", "rotate");
    const { stack, workDir } = await target(values, io);
    const reason = (values.reason as string | undefined)?.trim() || (mode === "scheduled" ? "scheduled run" : `${mode} from the command line`);

    if ((mode === "emergency" || mode === "revoke") && !values.yes) {
        const what =
            mode === "revoke"
                ? "deactivates the current key at once and deletes it"
                : "replaces the current key and deactivates and deletes the old one with no overlap";
        if (!io.interactive) {
            io.stderr(`Refusing: ${mode} ${what} for stack \`${stack}\`, and there is no terminal to confirm it. Re-run with --yes to confirm.\n`);
            return exitCodes.notConfirmed;
        }
        io.stderr(`This ${what} (stack \`${stack}\`, ${sets ? `sets ${sets.join(", ")}` : "every set"}). CI jobs still holding the old key will fail.\n`);
        const answer = (await io.prompt(`Type the stack name (${stack}) to confirm: `)).trim();
        if (answer !== stack) {
            io.stderr("Not confirmed; nothing was changed.\n");
            return exitCodes.notConfirmed;
        }
    }

    const onProgress = (e: ProgressEvent) => {
        const line = progressLine(e, Boolean(values.verbose));
        if (line !== undefined) io.stderr(line);
    };
    const rotate = (signal?: AbortSignal) => io.client.rotate({ stack, workDir, sets, mode, reason, requestedBy: io.user, onProgress, signal });
    const report = io.cancellable ? await io.cancellable(rotate) : await rotate();
    io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatRotationReport(report)}\n`);
    return report.outcome === "incomplete" ? exitCodes.incomplete : exitCodes.ok;
}

/** The compact step view (default) or Pulumi's own output (`--verbose`). */
function progressLine(e: ProgressEvent, verbose: boolean): string | undefined {
    switch (e.kind) {
        case "output":
            return verbose ? e.text : undefined;
        case "up":
            return `run ${e.run}/${e.maxRuns}: pulumi up…\n`;
        case "step":
            return `  ${e.set}: ${e.step === "none" ? "no step" : e.step} (${e.reason}) → ${e.phase}\n`;
        case "locked":
            return `  stack locked by another update; retry ${e.attempt + 1}/${e.attempts} in ${Math.round(e.retryInMs / 1000)}s\n`;
        case "config":
            return `  ${e.message}\n`;
        case "stale-lock":
            return `  ${e.message}\n`;
        case "joined":
            return `  joining the ${e.mode} rotation already running for ${e.requestedBy}\n`;
    }
}

async function runServe(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number> {
    const workDir = resolve(io.cwd, (values.cwd as string | undefined) ?? ".");
    const portText = (values.port as string | undefined) ?? "3000";
    // `Number("")` is 0, which would listen on a random port: only digits are a port.
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 0 && port <= 65535)) throw new UsageError(`\`--port\` must be a port number from 0 to 65535 (got ${JSON.stringify(portText)})`, "serve");
    const host = (values.host as string | undefined) ?? "127.0.0.1";

    const { chatopsFileSchema, createChatopsServer, defaultCooldownMs, jsonLinesAudit } = await import("./chatops");
    const { parse: parseYaml } = await import("yaml");
    const { Duration } = await import("luxon");
    let file: ChatopsFileConfig = {};
    if (typeof values.config === "string") {
        const path = resolve(workDir, values.config);
        let parsed: unknown;
        try {
            parsed = parseYaml(await readFile(path, "utf8"));
        } catch (err) {
            throw new UsageError(`cannot read --config ${path}: ${(err as Error).message.split("\n")[0]}`, "serve");
        }
        const result = chatopsFileSchema.safeParse(parsed ?? {});
        if (!result.success) {
            const { formatPath } = await import("../core/config");
            throw new UsageError(`--config ${path}:\n${result.error.issues.map((i) => `  - ${formatPath(i.path) || "file"} ${i.message}`).join("\n")}`, "serve");
        }
        file = result.data;
    }
    const list = (name: string) => (io.env[name] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    const signingSecret = io.env.SLACK_SIGNING_SECRET ?? "";
    const allowedUsers = [...(file.allowedUsers ?? []), ...list("CI_KEY_ROTATION_ALLOWED_USERS")];
    const allowedChannels = [...(file.allowedChannels ?? []), ...list("CI_KEY_ROTATION_ALLOWED_CHANNELS")];
    const envStacks = list("CI_KEY_ROTATION_STACKS");
    const stacks = file.stacks || envStacks.length > 0 ? [...(file.stacks ?? []), ...envStacks] : undefined;
    const problems: string[] = [];
    if (signingSecret === "") problems.push("SLACK_SIGNING_SECRET is not set: copy the signing secret from the Slack app's Basic Information page");
    if (allowedUsers.length === 0) problems.push("no allowed users: list Slack user ids in the config file's allowedUsers or CI_KEY_ROTATION_ALLOWED_USERS");
    if (allowedChannels.length === 0) problems.push("no allowed channels: list channel ids in allowedChannels or CI_KEY_ROTATION_ALLOWED_CHANNELS");
    if (problems.length > 0) throw new UsageError(`the chatops server does not start:\n${problems.map((p) => `  - ${p}`).join("\n")}`, "serve");

    const auditLog = resolve(workDir, (values["audit-log"] as string | undefined) ?? file.auditLog ?? "ci-key-rotation-audit.jsonl");
    const make = io.createServer ?? createChatopsServer;
    const serve = async (signal?: AbortSignal): Promise<number> => {
        const chatops = make({
            signingSecret,
            allowedUsers,
            allowedChannels,
            stacks,
            workDir,
            cooldownMs: file.cooldown ? Duration.fromISO(file.cooldown).toMillis() : defaultCooldownMs,
            responseUrlHosts: file.responseUrlHosts,
            client: io.client,
            audit: jsonLinesAudit(auditLog),
            log: (line) => io.stderr(`${new Date().toISOString()} ${line}\n`),
            signal,
        });
        const address = await chatops.listen(port, host);
        io.stderr(`ci-key-rotation chatops listening on http://${address.address}:${address.port}/slack/commands (audit log ${auditLog})\n`);
        await io.untilShutdown();
        io.stderr("shutting down: waiting for running rotations to finish (signal again to cancel them)\n");
        await chatops.close();
        return signal?.aborted ? exitCodes.interrupted : exitCodes.ok;
    };
    return io.cancellable ? io.cancellable(serve) : serve();
}

/**
 * How the real CLI answers SIGINT and SIGTERM. During `rotate` the first one cancels the
 * rotation (see `RotateOptions.signal`: the running update stops cleanly and the request is
 * removed from stack config). During `serve` the first one starts the shutdown (no new requests,
 * running rotations finish) and the second cancels the running rotations the same way. Anywhere
 * else, and after that, a signal exits at once, saying what may be left behind.
 */
export function processInterrupts(options: {
    stderr(text: string): void;
    /** Whether a Ctrl-C comes from a terminal, which also delivers it to the `pulumi` process. */
    interactive: boolean;
    exit(code: number): void;
    /** Default: `process.on`. */
    on?(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
}): Required<Pick<CliIo, "cancellable" | "untilShutdown">> {
    let rotation: AbortController | undefined;
    const shutdownWaiters: (() => void)[] = [];
    let shuttingDown = false;
    const handle = (signalName: "SIGINT" | "SIGTERM") => {
        // `serve`: the first signal stops it taking requests; running rotations go on.
        if (shutdownWaiters.length > 0 && !shuttingDown) {
            shuttingDown = true;
            for (const resolve of shutdownWaiters.splice(0)) resolve();
            return;
        }
        if (rotation && !rotation.signal.aborted) {
            options.stderr(
                `\n${signalName} received: cancelling the running update (Pulumi finishes the operations in flight), then removing the request from stack config. ${signalName === "SIGINT" ? "Press Ctrl-C" : "Send SIGTERM"} again to exit at once.\n`,
            );
            rotation.abort(new Interrupt(signalName, signalName === "SIGINT" && options.interactive));
            return;
        }
        if (rotation) {
            options.stderr(
                "Exiting at once. The request may still be in stack config: run `pulumi config rm ci-key-rotation:request` (and requestSets, emergency, revoke) before the next scheduled run; if `pulumi up` was still running, the stack may stay locked (`pulumi cancel`).\n",
            );
        }
        options.exit(exitCodes.interrupted);
    };
    const on = options.on ?? ((signal, handler) => void process.on(signal, handler));
    on("SIGINT", () => handle("SIGINT"));
    on("SIGTERM", () => handle("SIGTERM"));
    return {
        async cancellable(work) {
            const controller = new AbortController();
            rotation = controller;
            try {
                return await work(controller.signal);
            } finally {
                // A second interrupt after this one ended still exits at once.
                if (!controller.signal.aborted) rotation = undefined;
            }
        },
        untilShutdown: () => new Promise<void>((resolve) => shutdownWaiters.push(resolve)),
    };
}
