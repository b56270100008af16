import fc from "fast-check";
import { ConfigError } from "../../rotation/core/config";
import type { FaultOptions } from "../../rotation/rehearsal/faults";
import { instancesOf } from "../../rotation/rehearsal/stores/aws-ssm-parameter";
import { simulate, validatedConfig, type ScheduledRequest, type SimulationOptions, type SimulationResult } from "../../rotation/rehearsal/simulation";

/**
 * Random configurations, cadences, gaps, requests and faults; every invariant of DESIGN.md is
 * checked by the simulator after every operation and every run. Durations are drawn in hours so
 * that 60–90 runs see several complete rotations. The seed also draws the order in which the
 * engine model runs independent steps, so each scenario is one of the orders the real engine may
 * take; kills (between writes and with a write in flight) and failed writes are drawn too.
 */

const hour = 3_600_000;
const start = Date.parse("2026-03-01T00:00:00Z");

const targetArb = fc.constantFrom(
    { type: "github-repository", repository: "acme/api" },
    { type: "github-environment", repository: "acme/api", environment: "production" },
    { type: "github-organization", organization: "acme", visibility: "selected", repositories: ["web"] },
    { type: "github-organization", organization: "acme", visibility: "all" },
    { type: "github-dependabot", repository: "acme/bot" },
    { type: "gitlab-project", project: "acme/api" },
    { type: "gitlab-group", group: "acme", environmentScope: "production" },
    { type: "gitlab-project", project: "acme/platform/web", environmentScope: "review/*", hidden: true },
);

// AWS-native stores and KMS, drawn per set. Principals and keys are the ones a real user would
// name: the runner role decrypts (a decrypter of a key the set manages), team keys exist outside
// the program, a reader in another account reads a secret under a customer-managed key.
const account = "123456789012";
const runner = `arn:aws:iam::${account}:role/ci-runner`;
const taskRole = `arn:aws:iam::${account}:role/api-task`;
const otherAccountReader = "arn:aws:iam::210987654321:role/deployer";
const teamKeyArn = `arn:aws:kms:us-east-1:${account}:key/0a1b2c3d-1111-2222-3333-444455556666`;

/** The set's KMS key (`credentials[].kms`): none first, so the shrinker drops it. */
const setKmsArb = fc.constantFrom<undefined | { create: true; decrypters: string[] } | { key: string }>(undefined, { create: true, decrypters: [runner] }, { key: "alias/team-ci" }, { key: teamKeyArn });

/** What one set adds to the drawn GitHub/GitLab targets. Every field defaults to nothing. */
const setStoresArb = fc.record({
    kms: setKmsArb,
    // `encrypt` on the set's GitHub/GitLab targets: the set's key when it has one, else its own key.
    encrypt: fc.constantFrom<"none" | "first" | "all">("none", "first", "all"),
    encryptOwnKey: fc.boolean(),
    // An S3 env file: its own key ARN, or the set's key (only when the set has one: one is required).
    s3: fc.option(fc.record({ ownKey: fc.boolean(), bucketKey: fc.boolean(), manage: fc.boolean(), reader: fc.constantFrom<undefined | "runner" | "task">(undefined, "runner", "task") }), { nil: undefined, freq: 2 }),
    // A Secrets Manager secret: the set's key or `aws/secretsmanager`, or a team key; readers.
    sm: fc.option(fc.record({ kmsKey: fc.constantFrom<undefined | string>(undefined, "alias/ci-deploy", teamKeyArn), reader: fc.constantFrom<undefined | "runner" | "other-account">(undefined, "runner", "other-account") }), { nil: undefined, freq: 2 }),
    // SSM SecureStrings: either layout, the set's key or `aws/ssm` or a team key; maybe delivered to tagged runners.
    ssm: fc.option(
        fc.record({
            format: fc.constantFrom<"parameters" | "credentials-file">("parameters", "credentials-file"),
            kmsKey: fc.constantFrom<undefined | string>(undefined, "alias/ci-deploy"),
            distribute: fc.option(fc.constantFrom<string | undefined>(undefined, "rate(30 minutes)"), { nil: null, freq: 2 }),
        }),
        { nil: undefined, freq: 2 },
    ),
});

/** A fault window `lengthH` hours long from scheduled run `run`. */
const windowArb = fc.record({ run: fc.integer({ min: 1, max: 60 }), lengthH: fc.integer({ min: 1, max: 6 }) });

/** Faults of the AWS-native stores and KMS; each absent by default. */
const storeFaultsArb = fc.record({
    s3: fc.option(fc.record({ window: windowArb, code: fc.constantFrom<"SlowDown" | "KMSAccessDenied">("SlowDown", "KMSAccessDenied") }), { nil: undefined, freq: 2 }),
    smThrottle: fc.option(windowArb, { nil: undefined, freq: 2 }),
    kmsThrottled: fc.option(windowArb, { nil: undefined, freq: 2 }),
    // KMS refuses Decrypt (`kmsDenied`) or a key policy edited by hand denies a principal (`kmsDeny`):
    // the runner, or with `everyone` every principal (`kmsDenied`) / the other account's reader (`kmsDeny`).
    // Run Command fails on the first tagged runner of set 0 (offline): it keeps its old credentials file.
    deliveryFails: fc.option(windowArb, { nil: undefined, freq: 2 }),
    kmsDenial: fc.option(fc.record({ window: windowArb, kind: fc.constantFrom<"denied" | "deny">("denied", "deny"), everyone: fc.boolean() }), { nil: undefined, freq: 2 }),
});

export const scenarioArb = fc
    .record({
        sets: fc.integer({ min: 1, max: 2 }),
        targets: fc.uniqueArray(targetArb, { minLength: 1, maxLength: 2, selector: (t) => (t.type === "github-organization" ? t.type : JSON.stringify(t)) }),
        overlapH: fc.integer({ min: 1, max: 4 }),
        settleH: fc.integer({ min: 1, max: 4 }),
        retireH: fc.integer({ min: 0, max: 3 }),
        gate: fc.boolean(),
        gateTimeoutH: fc.integer({ min: 1, max: 3 }),
        slackH: fc.integer({ min: 1, max: 12 }),
        cadenceMin: fc.constantFrom(30, 60, 90),
        // 60 scheduled runs or a few more: enough for several rotations at these durations, and
        // the suite's time budget (300 scenarios in two minutes) is spent on scenarios, not length.
        runCount: fc.integer({ min: 60, max: 66 }),
        requests: fc.array(fc.record({ run: fc.integer({ min: 1, max: 80 }), mode: fc.constantFrom("normal", "emergency", "revoke") }), { maxLength: 2 }),
        failRate: fc.constantFrom(0, 0, 0.03, 0.1),
        // IAM's eventual consistency: a short validateTimeout gives up on keys that need seconds;
        // slow keys need minutes, longer than the default PT30S.
        validateTimeout: fc.constantFrom(undefined, undefined, undefined, "PT0S", "PT5S"),
        slowKeyRate: fc.constantFrom(0, 0, 0, 0.2),
        crashRate: fc.constantFrom(0, 0, 0.05),
        // A kill with a write in flight (the create reaches the cloud, not the state) at a chosen run.
        kill: fc.option(fc.record({ run: fc.integer({ min: 1, max: 60 }), after: fc.integer({ min: 0, max: 8 }) }), { nil: undefined }),
        missRate: fc.constantFrom(0, 0.1),
        jitterMin: fc.constantFrom(0, 10),
        reject: fc.option(fc.record({ run: fc.integer({ min: 1, max: 60 }), lengthH: fc.integer({ min: 1, max: 6 }) }), { nil: undefined }),
        seed: fc.integer({ min: 1, max: 1_000_000 }),
        // One entry per set (the first `sets` are used): none of the AWS-native stores by default.
        stores: fc.array(setStoresArb, { minLength: 2, maxLength: 2 }),
        storeFaults: storeFaultsArb,
    })
    .map((s) => ({ ...s, settleH: Math.min(s.settleH, s.overlapH) }));

export type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

export function stackConfig(s: Scenario): Record<string, string> {
    // `every` must exceed overlap + gateTimeout + retireAfter + 2 × cadence (the program validates
    // it against the `cadence` it is told); the slack decides how close to that bound it runs.
    const cadenceMin = s.cadenceMin;
    const boundMin = (s.overlapH + s.retireH + (s.gate ? s.gateTimeoutH : 0)) * 60 + 2 * cadenceMin;
    const credentials = Array.from({ length: s.sets }, (_, i) => credentialSet(s, i));
    const aws = credentials.some((c) => c.kms !== undefined || c.targets.some((t) => t.type.startsWith("aws-") || "encrypt" in t));
    return {
        // The fake KMS names its keys in us-east-1; S3 wants its key in the bucket's region.
        ...(aws ? { "aws:region": "us-east-1" } : {}),
        "ci-key-rotation:credentials": JSON.stringify(credentials),
        "ci-key-rotation:every": `PT${boundMin + s.slackH * 60}M`,
        "ci-key-rotation:cadence": `PT${cadenceMin}M`,
        "ci-key-rotation:overlap": `PT${s.overlapH}H`,
        "ci-key-rotation:settle": `PT${s.settleH}H`,
        "ci-key-rotation:retireAfter": `PT${s.retireH}H`,
        "ci-key-rotation:lastUsedGate": String(s.gate),
        "ci-key-rotation:gateTimeout": `PT${s.gateTimeoutH}H`,
        ...(s.validateTimeout ? { "ci-key-rotation:validateTimeout": s.validateTimeout } : {}),
    };
}

/** Set `i` of a scenario: the drawn GitHub/GitLab targets (maybe encrypting), then its AWS-native stores. */
function credentialSet(s: Scenario, i: number): { name: string; kms?: object; targets: ({ type: string } & Record<string, unknown>)[] } {
    const stores = s.stores[i];
    const kms = stores.kms;
    const targets: ({ type: string } & Record<string, unknown>)[] = s.targets.map((t, j) => {
        const encrypt = stores.encrypt === "all" || (stores.encrypt === "first" && j === 0);
        return {
            ...t,
            names: { accessKeyId: `S${i}_AWS_ACCESS_KEY_ID`, secretAccessKey: `S${i}_AWS_SECRET_ACCESS_KEY` },
            // A set without a key needs the target's own (`encrypt.key`).
            ...(encrypt ? { encrypt: { context: { target: `set${i}-${j}` }, ...(stores.encryptOwnKey || !kms ? { key: "alias/ci-encrypt" } : {}) } } : {}),
        };
    });
    if (stores.s3) {
        const reader = stores.s3.reader === "runner" ? runner : stores.s3.reader === "task" ? taskRole : undefined;
        targets.push({
            type: "aws-s3-env-file",
            // A bucket per set: a bucket's policy has one managing target.
            bucket: `acme-ci-env-${i}`,
            prefix: `ci/set${i}`,
            env: "production",
            // The set's managed key lets only its decrypters read: another reader gets the team key.
            ...(stores.s3.ownKey || !kms || (kms && "create" in kms && stores.s3.reader === "task") ? { kmsKey: teamKeyArn } : {}),
            bucketKey: stores.s3.bucketKey,
            variables: { AWS_REGION: "us-east-1" },
            ...(reader ? { readers: [reader] } : {}),
            ...(stores.s3.manage ? { bucketPolicy: "manage" } : {}),
        });
    }
    if (stores.sm) {
        // A reader in another account cannot use `aws/secretsmanager`: it gets a team key then.
        // So can the set's managed key, which lets only its decrypters read.
        const kmsKey = stores.sm.kmsKey ?? (stores.sm.reader === "other-account" && (!kms || "create" in kms) ? teamKeyArn : undefined);
        const reader = stores.sm.reader === "runner" ? runner : stores.sm.reader === "other-account" ? otherAccountReader : undefined;
        targets.push({ type: "aws-secrets-manager", ...(kmsKey ? { kmsKey } : {}), ...(reader ? { readers: [reader] } : {}) });
    }
    if (stores.ssm) {
        const distribute = stores.ssm.distribute === null ? undefined : { instanceTag: { key: "ci-runner", value: `set${i}` }, ...(stores.ssm.distribute ? { schedule: stores.ssm.distribute } : {}) };
        targets.push({ type: "aws-ssm-parameter", format: stores.ssm.format, ...(stores.ssm.kmsKey ? { kmsKey: stores.ssm.kmsKey } : {}), ...(distribute ? { distribute } : {}) });
    }
    return { name: `set${i}`, ...(kms ? { kms } : {}), targets };
}

/** Problems the program's config validation finds in a scenario's stack config (none: a real user could write it). */
export function configProblems(s: Scenario): string[] {
    try {
        validatedConfig(stackConfig(s));
        return [];
    } catch (err) {
        if (err instanceof ConfigError) return [err.message];
        throw err;
    }
}

/** Rehearse one generated scenario. */
export function runScenario(s: Scenario): Promise<SimulationResult> {
    return simulate(scenarioOptions(s));
}

/** The rehearsal of one generated scenario. */
export function scenarioOptions(s: Scenario): SimulationOptions {
    const cadenceMs = s.cadenceMin * 60_000;
    const requests: ScheduledRequest[] = s.requests.map((r) => ({ at: start + r.run * cadenceMs + 60_000, mode: r.mode as ScheduledRequest["mode"] }));
    requests.sort((a, b) => a.at - b.at);
    return {
        config: stackConfig(s),
        stack: "property",
        start,
        durationMs: (s.runCount - 1) * cadenceMs,
        cadenceMs,
        requests,
        seed: s.seed,
        faults: {
            failRate: s.failRate,
            crashRate: s.crashRate,
            ...(s.kill ? { crashAt: [{ at: start + s.kill.run * cadenceMs, after: s.kill.after, inFlight: true }] } : {}),
            missRate: s.missRate,
            slowKeyRate: s.slowKeyRate,
            jitterMs: s.jitterMin * 60_000,
            // Runs that changed something always get a twin (I6); a twin of an idle run repeats an idle run.
            twinRate: 0,
            ...(s.reject ? { rejectWrites: [{ from: start + s.reject.run * cadenceMs, until: start + s.reject.run * cadenceMs + s.reject.lengthH * hour }] } : {}),
            ...storeFaults(s, cadenceMs),
        },
        // Jobs never outlast `settle`: the documented contract of the last-used gate.
        jobs: { perDay: 24, longestMs: s.settleH * hour },
    };
}

/** The drawn faults of the AWS-native stores and KMS, as fault options. */
function storeFaults(s: Scenario, cadenceMs: number): FaultOptions {
    const f = s.storeFaults;
    const window = (w: { run: number; lengthH: number }) => ({ from: start + w.run * cadenceMs, until: start + w.run * cadenceMs + w.lengthH * hour });
    const denial = f.kmsDenial;
    return {
        ...(f.s3 ? { s3Faults: [{ ...window(f.s3.window), code: f.s3.code }] } : {}),
        ...(f.smThrottle ? { throttle: [{ ...window(f.smThrottle), type: "aws:secretsmanager/secretVersion:SecretVersion" }] } : {}),
        ...(f.deliveryFails ? { deliveryFails: [{ ...window(f.deliveryFails), instance: instancesOf("ci-runner", "set0")[0] }] } : {}),
        ...(f.kmsThrottled ? { kmsThrottled: [window(f.kmsThrottled)] } : {}),
        ...(denial?.kind === "denied" ? { kmsDenied: [{ ...window(denial.window), ...(denial.everyone ? {} : { principal: runner }) }] } : {}),
        ...(denial?.kind === "deny" ? { kmsDeny: [{ ...window(denial.window), principal: denial.everyone ? otherAccountReader : runner }] } : {}),
    };
}

/**
 * The result without the violations the design accepts: a mint whose target write failed cannot be
 * finished (the provider saved the planned value), so its key is retired and targets are written
 * with the previous key again; for that key alone I3 (it stays the newest Active key, held by no
 * target, for `overlap`) and I4 (deactivated while targets hold the older key) give way, as
 * test/rehearsal.test.ts accepts (docs/failures.md).
 */
export function withoutAccepted(result: SimulationResult): SimulationResult {
    const rolledBack = new Set<string>();
    for (const run of result.runs) {
        for (const set of Object.values(run.sets)) {
            for (const w of set.warnings ?? []) {
                const m = /key (AKIA[A-Z0-9]+) is from a mint whose target write failed/.exec(w);
                if (m) rolledBack.add(m[1]);
            }
        }
    }
    // The warning comes only from a successful run; the run that rolls targets back may itself
    // fail. So also: a key created by a failed run, which a later run's targets no longer hold
    // while it still exists.
    result.runs.forEach((run, i) => {
        if (run.ok) return;
        for (const op of run.operations) {
            const k = op.action === "create" && op.type === "aws:iam/accessKey:AccessKey" ? op.accessKeyId : undefined;
            if (k && result.runs.slice(i + 1).some((later) => Object.values(later.sets).some((set) => set.targetKey !== undefined && set.targetKey !== k && set.keys.some((key) => key.accessKeyId === k)))) rolledBack.add(k);
        }
    });
    if (rolledBack.size === 0) return result;
    const accepted = (v: SimulationResult["violations"][number]) =>
        [...rolledBack].some((k) => (v.invariant === "I3" && v.message.includes(`not the newest Active key ${k}`)) || (v.invariant === "I4" && v.message.startsWith(`key ${k} was deactivated while`)));
    const violations = result.violations.filter((v) => !accepted(v));
    return { ...result, violations, summary: { ...result.summary, violationCount: result.summary.violationCount - (result.violations.length - violations.length) } };
}

/**
 * The open finding of issue 9 a scenario's violations follow from, if any (see the `todo` in
 * test/rehearsal.property.test.ts and docs/failures.md). Either the set's first two runs were
 * killed (no output of either is saved, and the older key was used by its key check, so it may as
 * well be a key made by hand: the set stops and names both keys), or, before the first violation,
 * a run failed on a GitHub secret's update. The bridged provider saves the planned value of a failed update, so
 * when the other secret of the pair was written, the target is torn (a key id with another key's
 * secret) and no later run sees a difference to write it again. `undefined` when the violations
 * are new. Pass it the result of {@link withoutAccepted}.
 */
export function knownFinding(result: SimulationResult): string | undefined {
    const first = result.violations[0];
    if (!first) return undefined;
    const before = result.runs.slice(0, first.run + 1);
    const refused = before.find((r) => !r.ok && r.faults.some((f) => /\((update|create) github-[^)]*\)/.test(f) || /^target rejected (update|create) github-/.test(f)));
    if (refused && /SignatureDoesNotMatch|secret that does not match|did not take key/.test(first.message)) return `a GitHub write failed (run ${refused.index}) and its saved planned value hides a torn target`;
    const firstOk = before.findIndex((r) => r.ok);
    const killed = before.slice(0, firstOk < 0 ? before.length : firstOk).filter((r) => r.faults.some((f) => f.startsWith("crash after")));
    if (killed.length >= 2 && /already has keys .* but this stack has no rotation state/.test(first.message)) return "the set's first two runs were killed, leaving two keys nothing records";
    return undefined;
}

/** Violations of a result, one per line, for assertion messages. */
export function describeViolations(result: SimulationResult): string {
    return result.violations
        .slice(0, 8)
        .map((v) => `${v.invariant} at ${v.at} (run ${v.run}): ${v.message}`)
        .join("\n");
}
