import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { simulateCommand } from "../rotation/rehearsal/cli";
import { simulate, type SimulationOptions, type SimulationResult } from "../rotation/rehearsal/simulation";
import { readStackConfig } from "../rotation/rehearsal/stack";

const root = join(__dirname, "..");
const dev = readStackConfig(root, "dev");
const start = Date.parse("2026-01-01T00:00:00Z");
const hour = 3_600_000;
const day = 24 * hour;

function rehearse(overrides: Partial<SimulationOptions>): Promise<SimulationResult> {
    return simulate({ config: dev.config, project: dev.project, stack: "dev", start, durationMs: 30 * day, cadenceMs: hour, seed: 7, ...overrides });
}

function violations(result: SimulationResult): string {
    return result.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

const changed = (r: SimulationResult) => r.runs.filter((run) => run.operations.length > 0 && run.twinOf === undefined);

test("a normal year of the example stack keeps every invariant and breaks no CI job", async () => {
    const result = await rehearse({ durationMs: 365 * day, cadenceMs: 6 * hour });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.summary.brokenJobs, 0);
    assert.equal(result.summary.runsFailed, 0);
    // Weekly keys: 1 + 52 rotations; each run that changed something was followed by an idle twin.
    assert.equal(result.summary.keysMinted, 53);
    assert.ok(result.checks.I6.checked >= 150, "every changing run gets a twin run at the same instant");
    assert.ok(result.summary.oldestTargetKeyAgeHours <= 7 * 24 + 6);
    assert.ok(result.summary.longestTwoActiveHours >= 24 && result.summary.longestTwoActiveHours <= 30);
});

test("a crash right after the mint created the new key recovers on the next run, with no extra key (I8)", async () => {
    const result = await rehearse({ durationMs: 10 * day, faults: { crashAt: [{ at: Date.parse("2026-01-08T00:00:00Z"), after: 1 }] } });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const crashed = result.runs.find((r) => r.at === "2026-01-08T00:00:00.000Z")!;
    assert.equal(crashed.ok, false);
    assert.deepEqual(crashed.faults, ["crash after 1 operation(s)"]);
    assert.equal(crashed.operations.length, 1);
    assert.equal(crashed.operations[0].name, "deploy-key-2");
    const next = result.runs.find((r) => r.at === "2026-01-08T01:00:00.000Z")!;
    assert.equal(next.ok, true);
    assert.equal(next.sets.deploy.step, "mint");
    // The key from the crashed run was adopted, not minted again.
    assert.ok(!next.operations.some((o) => o.action === "create" && o.type === "aws:iam/accessKey:AccessKey"));
    assert.equal(next.sets.deploy.targetKey, crashed.operations[0].accessKeyId);
    assert.equal(result.summary.keysMinted, 2);
});

test("an API error at every operation of a mint run is recovered by later runs (I8)", async () => {
    for (let op = 1; op <= 7; op++) {
        const result = await rehearse({ durationMs: 12 * day, faults: { failAt: [{ at: Date.parse("2026-01-08T00:00:00Z"), op }] } });
        assert.equal(result.summary.violationCount, 0, `fault at operation ${op}:\n${violations(result)}`);
        assert.equal(result.runs.find((r) => r.at === "2026-01-08T00:00:00.000Z")!.ok, false);
        assert.equal(result.summary.keysMinted, 2, `fault at operation ${op}`);
    }
});

test("revoke deactivates the old key in the mint run, before the new key exists", async () => {
    const result = await rehearse({ durationMs: 5 * day, requests: [{ at: Date.parse("2026-01-03T10:30:00Z"), mode: "revoke" }] });
    assert.equal(result.summary.violationCount, 0, violations(result));
    const run = result.runs.find((r) => r.at === "2026-01-03T11:00:00.000Z")!;
    assert.equal(run.sets.deploy.step, "revoke");
    const keyOps = run.operations.filter((o) => o.type === "aws:iam/accessKey:AccessKey");
    assert.deepEqual(
        keyOps.map((o) => [o.action, o.name, o.status]),
        [
            ["update", "deploy-key-1", "Inactive"],
            ["create", "deploy-key-2", undefined],
        ],
    );
    // The emergency retirement deletes the revoked key at the next run.
    const next = result.runs.find((r) => r.at === "2026-01-03T12:00:00.000Z")!;
    assert.equal(next.sets.deploy.step, "delete");
});

test("a request mid-rotation fast-forwards: deactivate, delete, then mint, never three keys", async () => {
    const result = await rehearse({ durationMs: 12 * day, requests: [{ at: Date.parse("2026-01-08T05:00:00Z"), mode: "normal" }] });
    assert.equal(result.summary.violationCount, 0, violations(result));
    assert.equal(result.checks.I1.failed, 0);
    const steps = changed(result)
        .filter((r) => r.at >= "2026-01-08")
        .slice(0, 4)
        .map((r) => `${r.at.slice(0, 13)} ${r.sets.deploy.step}`);
    // The request was seen with keys 1 and 2 alive: both must go, so the rotation runs until key 3.
    assert.deepEqual(steps.map((s) => s.split(" ")[1]), ["mint", "deactivate", "delete", "mint"]);
    assert.ok(steps[3] < "2026-01-15", `the request's mint comes before the weekly one: ${steps.join(", ")}`);
    for (const run of result.runs) for (const set of Object.values(run.sets)) assert.ok(set.keys.length <= 2);
});

test("simulate writes JSON with every run and an empty violation list, and exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rehearsal-"));
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } };
    const code = await simulateCommand(["--dir", root, "--days", "10", "--json", join(dir, "r.json"), "--svg", join(dir, "r.svg")], io);
    assert.equal(code, 0, out.join(""));
    const report = JSON.parse(readFileSync(join(dir, "r.json"), "utf8"));
    assert.equal(report.version, 1);
    assert.deepEqual(report.summary.violations, []);
    const scheduled = report.runs.filter((r: { twinOf?: number }) => r.twinOf === undefined);
    assert.equal(scheduled.length, 10 * 24 + 1);
    assert.ok(report.runs.every((r: { checks: Record<string, unknown> }) => "I7" in r.checks));
    const text = out.join("");
    assert.match(text, /invariant violations:\s+0/);
    assert.match(text, /keys minted:\s+2/);
    // Key ids (20 characters) appear; nothing shaped like a 40-character secret access key does.
    for (const file of ["r.json", "r.svg"]) assert.doesNotMatch(readFileSync(join(dir, file), "utf8"), /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/])/);
    assert.match(readFileSync(join(dir, "r.svg"), "utf8"), /^<svg /);
});

test("simulate exits 1 when an invariant is violated: a consumer stuck on the old key stalls rotation (I5)", async () => {
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } };
    const code = await simulateCommand(["--dir", root, "--days", "20", "--quiet", "--rogue", "2026-01-01T00:00:00Z/2026-03-01T00:00:00Z"], io);
    assert.equal(code, 1, out.join(""));
    assert.match(out.join(""), /I5 at .*more than every/);
});

test("simulate rejects bad options with exit 2 and names the option", async () => {
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } };
    assert.equal(await simulateCommand(["--dir", root, "--cadence", "hourly"], io), 2);
    assert.match(out.join(""), /`--cadence` must be a positive ISO-8601 duration/);
});
