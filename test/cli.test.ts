import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConcurrentUpdateError } from "@pulumi/pulumi/automation";
import { createRotationClient, installHint, Interrupt, type RotationClient } from "../rotation/ops/automation";
import { commands, exitCodes, main, processInterrupts, type CliIo } from "../rotation/ops/cli";
import { FakeClock, FakeStack, fakeOpener, keyId } from "./support/fake-stack";

async function projectDir(stackFiles: Record<string, string> = { prod: "config: {}\n" }): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "ckr-cli-"));
    await writeFile(join(dir, "Pulumi.yaml"), "name: ci-key-rotation\nruntime: nodejs\n");
    for (const [name, text] of Object.entries(stackFiles)) await writeFile(join(dir, `Pulumi.${name}.yaml`), text);
    return dir;
}

interface Run {
    code: number;
    stdout: string;
    stderr: string;
    prompts: string[];
}

async function cli(argv: string[], options: { cwd: string; client?: RotationClient; interactive?: boolean; answer?: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
    let stdout = "";
    let stderr = "";
    const prompts: string[] = [];
    const io: CliIo = {
        stdout: (t) => (stdout += t),
        stderr: (t) => (stderr += t),
        interactive: options.interactive ?? false,
        prompt: async (q) => {
            prompts.push(q);
            return options.answer ?? "";
        },
        env: options.env ?? {},
        cwd: options.cwd,
        client: options.client ?? createRotationClient({ openStack: fakeOpener({}) }),
        user: "alice",
        untilShutdown: async () => {},
    };
    const code = await main(argv, io);
    return { code, stdout, stderr, prompts };
}

async function fakeProject(settings: Record<string, unknown> = {}) {
    const cwd = await projectDir();
    const clock = new FakeClock();
    const stack = new FakeStack({ clock, settings });
    await stack.cron();
    clock.advance("PT1H");
    const sleeps: number[] = [];
    const client = createRotationClient({ openStack: fakeOpener({ prod: stack }), now: clock.now, sleep: async (ms) => void sleeps.push(ms) });
    return { cwd, stack, client, sleeps };
}

describe("ci-key-rotation rotate", () => {
    it("refuses an emergency without a terminal and without --yes, and rotates nothing", async () => {
        const { cwd, stack, client } = await fakeProject();
        const run = await cli(["rotate", "--emergency"], { cwd, client });
        assert.equal(run.code, exitCodes.notConfirmed);
        assert.match(run.stderr, /no terminal to confirm it\. Re-run with --yes/);
        assert.deepEqual(stack.calls, []);
    });

    it("asks on a terminal and rotates nothing when the answer is not the stack name", async () => {
        const { cwd, stack, client } = await fakeProject();
        const run = await cli(["rotate", "--revoke"], { cwd, client, interactive: true, answer: "yes" });
        assert.equal(run.code, exitCodes.notConfirmed);
        assert.deepEqual(run.prompts, ["Type the stack name (prod) to confirm: "]);
        assert.match(run.stderr, /Not confirmed; nothing was changed/);
        assert.deepEqual(stack.calls, []);
    });

    it("rotates when confirmed with the stack name, and prints the report", async () => {
        const { cwd, stack, client } = await fakeProject();
        const run = await cli(["rotate", "--emergency", "--reason", "leaked in logs"], { cwd, client, interactive: true, answer: "prod\n" });
        assert.equal(run.code, exitCodes.ok);
        assert.equal(stack.ups.length, 3);
        assert.match(run.stdout, /Emergency rotation of `prod` complete/);
        assert.match(run.stdout, new RegExp(`targets now hold \`${keyId("deploy", 2)}\``));
        assert.match(run.stderr, /run 1\/8: pulumi up/);
        assert.match(run.stderr, /deploy: mint/);
    });

    it("--yes skips the question; --json prints the report as JSON", async () => {
        const { cwd, client } = await fakeProject();
        const run = await cli(["rotate", "--emergency", "--yes", "--json", "--sets", "deploy"], { cwd, client });
        assert.equal(run.code, exitCodes.ok);
        const report = JSON.parse(run.stdout);
        assert.equal(report.mode, "emergency");
        assert.equal(report.requestedBy, "alice");
        assert.equal(report.sets[0].requestComplete, true);
    });

    it("a plain request needs no confirmation and exits 0 while later steps wait", async () => {
        const { cwd, stack, client } = await fakeProject();
        const run = await cli(["rotate", "--request"], { cwd, client });
        assert.equal(run.code, exitCodes.ok);
        assert.equal(stack.ups.length, 1);
        assert.match(run.stdout, /scheduled runs finish it \(deploy: deactivate due at /);
    });

    it("exits 7 when an emergency cannot finish (paused set)", async () => {
        const { cwd, client } = await fakeProject({ paused: "true" });
        const run = await cli(["rotate", "--emergency", "--yes"], { cwd, client });
        assert.equal(run.code, exitCodes.incomplete);
    });

    it("exits 4 when the stack stays locked", async () => {
        const { cwd, stack, client, sleeps } = await fakeProject();
        for (let i = 0; i < 6; i++) stack.upFailures.push(new ConcurrentUpdateError("the stack is currently locked by 1 lock(s)"));
        const run = await cli(["rotate"], { cwd, client });
        assert.equal(run.code, exitCodes.locked);
        assert.equal(sleeps.length, 5);
        assert.match(run.stderr, /error: Stack `prod` is locked by another update/);
    });

    it("exits 6 when the program refuses to act", async () => {
        const { cwd, stack, client } = await fakeProject();
        stack.upFailures.push(new Error('stdout: error: No step was taken for set "deploy" (any other set took its step), because:\n  - key AKIA1 is missing'));
        const run = await cli(["rotate"], { cwd, client });
        assert.equal(run.code, exitCodes.blocked);
        assert.match(run.stderr, /set "deploy" took no step; every other set took its step:\n.*No step was taken for set "deploy"/);
    });

    it("exits 1 when pulumi up fails otherwise", async () => {
        const { cwd, stack, client } = await fakeProject();
        stack.upFailures.push(new Error("code: 255\n stderr: error: update failed: 403 from GitHub"));
        const run = await cli(["rotate"], { cwd, client });
        assert.equal(run.code, exitCodes.failed);
        assert.match(run.stderr, /`pulumi up` of stack `prod` failed:\n {2}error: update failed: 403 from GitHub/);
    });

    it("exits 2 on bad arguments, before touching the stack", async () => {
        const { cwd, stack, client } = await fakeProject();
        for (const argv of [["rotate", "--emergency", "--revoke", "--yes"], ["rotate", "--sets", "deploy"], ["rotate", "--bogus"], ["rotate", "extra"], ["nonsense"]]) {
            const run = await cli(argv, { cwd, client });
            assert.equal(run.code, exitCodes.usage, argv.join(" "));
            assert.match(run.stderr, /^error: .*\nSee `ci-key-rotation (rotate )?--help`\.\n$/, argv.join(" "));
        }
        assert.deepEqual(stack.calls, []);
    });

    it("needs --stack when the directory has several stacks", async () => {
        const cwd = await projectDir({ prod: "config: {}\n", dev: "config: {}\n" });
        const run = await cli(["status"], { cwd });
        assert.equal(run.code, exitCodes.usage);
        assert.match(run.stderr, /several stacks in .* \((dev, prod|prod, dev)\): pass --stack/);
    });

    it("exits 5 with a stack-creation hint for an unknown stack", async () => {
        const { cwd, client } = await fakeProject();
        const run = await cli(["status", "--stack", "staging"], { cwd, client });
        assert.equal(run.code, exitCodes.setup);
        assert.match(run.stderr, /pulumi stack init staging/);
    });

    it("exits 5 with one line when the pulumi CLI is missing", async () => {
        const cwd = await projectDir();
        const path = process.env.PATH;
        process.env.PATH = "/nonexistent";
        try {
            const run = await cli(["rotate", "--emergency", "--yes"], { cwd, client: createRotationClient() });
            assert.equal(run.code, exitCodes.setup);
            assert.equal(run.stderr, `error: ${installHint}\n`);
        } finally {
            process.env.PATH = path;
        }
    });
});

describe("an old pulumi CLI", () => {
    it("exits 8 with its own message from status and rotate, changing nothing", async () => {
        const { cwd, stack, client } = await fakeProject();
        stack.workspace = { pulumiVersion: "3.100.2" };
        stack.calls.length = 0;
        for (const argv of [["status"], ["rotate", "--emergency", "--yes"]]) {
            const run = await cli(argv, { cwd, client });
            assert.equal(run.code, exitCodes.cliTooOld, argv.join(" "));
            assert.match(run.stderr, /^error: The pulumi CLI is version 3\.100\.2; ci-key-rotation needs 3\.133\.0 or newer: .*Upgrade it/);
        }
        assert.deepEqual(stack.calls, []);
    });
});

describe("ci-key-rotation status", () => {
    it("prints JSON with --json and changes nothing", async () => {
        const { cwd, stack, client } = await fakeProject();
        const run = await cli(["status", "--json"], { cwd, client });
        assert.equal(run.code, exitCodes.ok);
        assert.equal(JSON.parse(run.stdout).sets[0].accessKeyId, keyId("deploy", 1));
        assert.deepEqual(stack.changes, []);
    });

    it("prints keys with ages and the next step", async () => {
        const { cwd, client } = await fakeProject();
        const run = await cli(["status"], { cwd, client });
        assert.match(run.stdout, /• deploy \(IAM user ci-deploy\): steady, generation 1/);
        assert.match(run.stdout, /Active, age PT1H1M \(in targets\)/);
        assert.match(run.stdout, /next: mint at 2026-11-30T12:00:00.000Z/);
    });
});

describe("ci-key-rotation policy", () => {
    const stackFile = `config:
  aws:region: eu-west-1
  ci-key-rotation:credentials:
    - name: deploy
      user: { name: ci-deploy, path: /ci/, managedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess], permissionsBoundary: arn:aws:iam::123456789012:policy/ci-boundary }
      targets: [{ type: github-repository, repository: acme/api }]
    - name: docs
      targets: [{ type: github-repository, repository: acme/docs }]
`;

    it("prints a policy scoped to each set's user, with attachment limited to the configured ARNs", async () => {
        const cwd = await projectDir({ prod: stackFile });
        const run = await cli(["policy", "--account", "123456789012"], { cwd });
        assert.equal(run.code, exitCodes.ok, run.stderr);
        const doc = JSON.parse(run.stdout);
        const resources = new Set(doc.Statement.filter((s: { Sid: string }) => s.Sid !== "CallerIdentity").map((s: { Resource: string }) => s.Resource));
        assert.deepEqual([...resources].sort(), ["arn:aws:iam::123456789012:user/ci/ci-deploy", "arn:aws:iam::123456789012:user/ci/ci-docs"]);
        const attach = doc.Statement.find((s: { Sid: string }) => s.Sid === "AttachPoliciesDeploy");
        assert.deepEqual(attach.Condition, { ArnEquals: { "iam:PolicyARN": ["arn:aws:iam::aws:policy/ReadOnlyAccess"] } });
        const boundary = doc.Statement.find((s: { Sid: string }) => s.Sid === "BoundaryDeploy");
        assert.deepEqual(boundary.Condition, { StringEquals: { "iam:PermissionsBoundary": "arn:aws:iam::123456789012:policy/ci-boundary" } });
        const deployUser = doc.Statement.find((s: { Sid: string }) => s.Sid === "UserDeploy");
        assert.ok(!deployUser.Action.includes("iam:CreateUser"), "CreateUser only with the boundary condition");
        assert.ok(deployUser.Action.includes("iam:GetAccessKeyLastUsed"));
        assert.ok(!deployUser.Action.includes("iam:PutUserPolicy"), "no inline policy configured");
        assert.ok(!doc.Statement.some((s: { Action: string[] }) => s.Action.includes("iam:AttachUserPolicy") && !("Condition" in s)));
        assert.deepEqual(doc.Statement.at(-1), { Sid: "CallerIdentity", Effect: "Allow", Action: ["sts:GetCallerIdentity"], Resource: "*" });
    });

    it("exits 2 and lists every problem of an invalid stack file", async () => {
        const cwd = await projectDir({ prod: "config:\n  ci-key-rotation:every: soon\n  ci-key-rotation:credentials:\n    - name: Bad Name\n      targets: []\n" });
        const run = await cli(["policy"], { cwd });
        assert.equal(run.code, exitCodes.usage);
        assert.match(run.stderr, /every must be an ISO-8601 duration/);
        assert.match(run.stderr, /credentials\[0\]\.name must be/);
        assert.equal(run.stdout, "");
    });
});

describe("ci-key-rotation serve", () => {
    it("does not start without a signing secret and allowlists", async () => {
        const cwd = await projectDir();
        const run = await cli(["serve"], { cwd, env: {} });
        assert.equal(run.code, exitCodes.usage);
        assert.match(run.stderr, /SLACK_SIGNING_SECRET is not set/);
        assert.match(run.stderr, /no allowed users/);
        assert.match(run.stderr, /no allowed channels/);
    });

    it("refuses an empty or non-numeric --port instead of picking a random one", async () => {
        const cwd = await projectDir();
        const env = { SLACK_SIGNING_SECRET: "s3cret-value", CI_KEY_ROTATION_ALLOWED_USERS: "U0001", CI_KEY_ROTATION_ALLOWED_CHANNELS: "C0001" };
        for (const port of ["", " ", "0x50", "1e3", "65536", "80 "]) {
            const run = await cli(["serve", "--port", port], { cwd, env });
            assert.equal(run.code, exitCodes.usage, JSON.stringify(port));
            assert.match(run.stderr, /^error: `--port` must be a port number from 0 to 65535 \(got ".*"\)/);
        }
    });

    it("starts and stops with settings from a config file and the environment", async () => {
        const cwd = await projectDir();
        await writeFile(join(cwd, "chatops.yaml"), "allowedUsers: [U0001]\ncooldown: PT5M\nauditLog: audit.jsonl\n");
        const run = await cli(["serve", "--port", "0", "--config", "chatops.yaml"], { cwd, env: { SLACK_SIGNING_SECRET: "s3cret-value", CI_KEY_ROTATION_ALLOWED_CHANNELS: "C0001" } });
        assert.equal(run.code, exitCodes.ok, run.stderr);
        assert.match(run.stderr, /listening on http:\/\/127\.0\.0\.1:\d+\/slack\/commands \(audit log .*audit\.jsonl\)/);
        assert.ok(!run.stderr.includes("s3cret-value"));
    });
});

describe("help", () => {
    it("every command has --help, exit 0", async () => {
        const cwd = await projectDir();
        for (const name of Object.keys(commands)) {
            const run = await cli([name, "--help"], { cwd });
            assert.equal(run.code, exitCodes.ok);
            assert.match(run.stdout, new RegExp(`^Usage: ci-key-rotation ${name}`));
            assert.match(run.stdout, /Exit codes:/);
        }
        const overview = await cli(["--help"], { cwd });
        assert.equal(overview.code, exitCodes.ok);
        for (const name of Object.keys(commands)) assert.match(overview.stdout, new RegExp(`\\n  ${name} `));
        const bare = await cli([], { cwd });
        assert.equal(bare.code, exitCodes.usage);
    });
});

describe("ci-key-rotation simulate", () => {
    const root = join(__dirname, "..");

    it("rehearses the project's dev stack and exits 0 when every invariant held", async () => {
        const run = await cli(["simulate", "--days", "9"], { cwd: root });
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /Rehearsal of stack "dev"/);
        assert.match(run.stdout, /invariant violations:\s+0/);
        assert.match(run.stdout, /deploy\s+mint/);
    });

    it("answers a bad option with usage and exit code 2, simulating nothing", async () => {
        const run = await cli(["simulate", "--dayz", "9"], { cwd: root });
        assert.equal(run.code, 2);
        assert.doesNotMatch(run.stdout, /Rehearsal of stack/);
    });
});

describe("interrupts", () => {
    function harness() {
        const handlers: Record<string, () => void> = {};
        const exits: number[] = [];
        let stderr = "";
        const io = processInterrupts({ stderr: (t) => (stderr += t), interactive: false, exit: (c) => void exits.push(c), on: (s, h) => void (handlers[s] = h) });
        return { io, exits, send: (s: "SIGINT" | "SIGTERM") => handlers[s](), stderr: () => stderr };
    }

    it("serve: the first signal shuts down, the second cancels running rotations, the third exits", async () => {
        const { io, exits, send } = harness();
        let signal: AbortSignal | undefined;
        let shutdown = false;
        const serving = io.cancellable(async (s) => {
            signal = s;
            await io.untilShutdown();
            shutdown = true;
            await new Promise<void>((r) => s.addEventListener("abort", () => r(), { once: true }));
        });
        await new Promise((r) => setImmediate(r));
        send("SIGTERM");
        await new Promise((r) => setImmediate(r));
        assert.equal(shutdown, true);
        assert.equal(signal!.aborted, false, "the first signal lets running rotations finish");
        send("SIGTERM");
        await serving;
        assert.ok(signal!.reason instanceof Interrupt);
        assert.deepEqual(exits, []);
        send("SIGTERM");
        assert.deepEqual(exits, [exitCodes.interrupted]);
    });

    it("status and other commands exit at the first signal", () => {
        const { exits, send } = harness();
        send("SIGINT");
        assert.deepEqual(exits, [exitCodes.interrupted]);
    });
});
