import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseSimulateArgs, simulateCommand } from "../rotation/rehearsal/cli";
import { FaultInjector } from "../rotation/rehearsal/faults";
import { CiJobs } from "../rotation/rehearsal/jobs";
import { Random } from "../rotation/rehearsal/random";
import type { SimulationOptions, SimulationResult } from "../rotation/rehearsal/simulation";
import { renderSvg } from "../rotation/rehearsal/svg";
import { World } from "../rotation/rehearsal/world";

/** Issue 10, items 15–17: the rehearsal must not hide failures. */

const root = join(__dirname, "..");
const hour = 3_600_000;
const day = 24 * hour;

function io() {
    const out: string[] = [];
    const write = (t: string) => void out.push(t);
    return { out, io: { stdout: { write }, stderr: { write } } };
}

/** A project directory with the real Pulumi.yaml and a one-set stack `rehearsal` with the given extra config lines. */
function projectDir(extra: string, targets = "        - type: github-repository\n          repository: acme/api\n"): string {
    const dir = mkdtempSync(join(tmpdir(), "rehearsal-hardening-"));
    copyFileSync(join(root, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    writeFileSync(
        join(dir, "Pulumi.rehearsal.yaml"),
        `config:\n  aws:region: eu-west-1\n  ci-key-rotation:every: P7D\n  ci-key-rotation:overlap: PT24H\n  ci-key-rotation:retireAfter: P3D\n${extra}  ci-key-rotation:credentials:\n    - name: deploy\n      user:\n        name: ci-deploy\n      targets:\n${targets}`,
    );
    return dir;
}

test("item 15: consumers that share a label are separate places, each running its jobs", () => {
    const world = new World(new Random(1));
    world.iam.createUser("ci");
    const key = world.iam.createAccessKey("ci", 0);
    const good = { label: "github job in acme/api", set: "a", read: () => ({ accessKeyId: key.accessKeyId, secret: key.secret }) };
    const bad = { label: "github job in acme/api", set: "b", read: () => ({ accessKeyId: key.accessKeyId, secret: "not-the-secret" }) };
    const jobs = new CiJobs(world, new Random(2), { perDay: 24 }, [good, bad], hour);
    jobs.advance(2 * day);
    // Two places at 24 jobs a day each over ~47 hours: about 94 jobs, half of them broken.
    assert.ok(jobs.started > 70, `${jobs.started} jobs started`);
    assert.ok(jobs.broken.length > 30 && jobs.broken.every((j) => j.set === "b"), `${jobs.broken.length} broken`);
});

test("item 16: simulate exits 1 when CI jobs break with no injected fault (jobs longer than the overlap, no gate)", async () => {
    const dir = projectDir("  ci-key-rotation:lastUsedGate: false\n");
    const { out, io: streams } = io();
    const code = await simulateCommand(["--dir", dir, "--stack", "rehearsal", "--days", "9", "--quiet", "--longest-job", "P2D"], streams);
    assert.equal(code, 1, out.join(""));
    assert.match(out.join(""), /I2 at .*a CI job in github job in acme\/api broke .* with no injected fault or request to explain it/);
});

test("item 17: --reject TEXT keeps its case and matches addresses in any case (GitLab keys keep theirs)", () => {
    const parsed = parseSimulateArgs(["--reject", "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z=AWS_Secret_Access_Key"]);
    const reject = parsed.options.faults!.rejectWrites!;
    assert.equal(reject[0].match, "AWS_Secret_Access_Key");
    const faults = new FaultInjector({ rejectWrites: reject }, new Random(1));
    faults.startRun(Date.parse("2026-01-01T01:00:00Z"), false);
    const ctx = { at: Date.parse("2026-01-01T01:00:00Z"), operations: [], logs: [], errors: [], crashed: false, elapsedMs: 0, worldFaults: [] };
    const op = (address: string) => ({ action: "update" as const, type: "pulumi-nodejs:dynamic:Resource", name: "v", addresses: [address] });
    assert.throws(() => faults.beforeOperation(op("gitlab:project:acme/api:var:AWS_SECRET_ACCESS_KEY:*"), ctx), /rejected the write/);
    assert.doesNotThrow(() => faults.beforeOperation(op("gitlab:project:acme/api:var:AWS_ACCESS_KEY_ID:*"), ctx));
});

test("item 17: --cadence defaults to the stack's cadence, and --jitter longer than the cadence is refused", async () => {
    const dir = projectDir("  ci-key-rotation:cadence: PT2H\n");
    const json = join(dir, "r.json");
    const first = io();
    assert.equal(await simulateCommand(["--dir", dir, "--stack", "rehearsal", "--days", "1", "--quiet", "--json", json], first.io), 0, first.out.join(""));
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(report.options.cadenceMinutes, 120);
    assert.equal(report.runs.filter((r: { twinOf?: number }) => r.twinOf === undefined).length, 13);
    const second = io();
    assert.equal(await simulateCommand(["--dir", dir, "--stack", "rehearsal", "--days", "1", "--jitter", "PT3H"], second.io), 2);
    assert.match(second.out.join(""), /`--jitter` \(PT3H\) must not be longer than the cadence \(PT2H\)/);
});

test("item 17: a stack that keeps requestSets can be rehearsed, and --request-sets names the sets of scheduled requests", async () => {
    const dir = projectDir("  ci-key-rotation:requestSets: [deploy]\n");
    const plainRun = io();
    assert.equal(await simulateCommand(["--dir", dir, "--stack", "rehearsal", "--days", "1", "--quiet"], plainRun.io), 0, plainRun.out.join(""));
    const json = join(dir, "r.json");
    const requested = io();
    const code = await simulateCommand(["--dir", dir, "--stack", "rehearsal", "--days", "2", "--quiet", "--request-at", "2026-01-02T00:30:00Z", "--request-sets", "deploy", "--json", json], requested.io);
    assert.equal(code, 0, requested.out.join(""));
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.ok(report.runs.some((r: { at: string; sets: Record<string, { step: string }> }) => r.at > "2026-01-02" && r.sets.deploy.step === "mint"), "the request's mint ran");
    assert.throws(() => parseSimulateArgs(["--request-sets", "deploy,,web"]), /`--request-sets` must be set names separated by commas/);
});

test("item 17: the SVG draws a failed run and a broken job only on the row of the set they belong to", () => {
    const options = { start: Date.parse("2026-01-01T00:00:00Z"), durationMs: 2 * day, stack: "s" } as SimulationOptions;
    const result = {
        runs: [{ index: 0, at: "2026-01-01T12:00:00.000Z", ok: false, error: "boom", faults: [], failedSets: ["a"], operations: [], sets: {}, checks: {}, violations: 0 }],
        keys: [
            { accessKeyId: "AKIAA", user: "ua", set: "a", createdAt: "2026-01-01T00:00:00.000Z" },
            { accessKeyId: "AKIAB", user: "ub", set: "b", createdAt: "2026-01-01T00:00:00.000Z" },
        ],
        jobs: { started: 2, broken: [{ consumer: "github job in acme/api", set: "b", at: "2026-01-01T13:00:00.000Z", when: "start", startedAt: "2026-01-01T13:00:00.000Z", reason: "r" }], rogueUses: 0, rogueFailures: 0 },
        violations: [],
        summary: { runs: 1, keysMinted: 2, violationCount: 0 },
    } as unknown as SimulationResult;
    const svg = renderSvg(result, options);
    assert.equal(svg.match(/run 0 failed/g)?.length, 1);
    assert.equal(svg.match(/broken job in/g)?.length, 1);
});
