import { Duration } from "luxon";
import { z } from "zod";
import { specFor, targetSchema, type Target } from "../../providers/specs";
import { defaultAlias, setKmsSchema } from "../../providers/kms/spec";
import type { TargetSpec } from "../../providers/types";
import { defaultPolicy, type RotationPolicy, type RotationRequest } from "./policy";
import { githubValueProblems, policyAttachmentCollisions, rawTargetProblems, resourceNameCollisions, splitSecretPairs, splitVariablePairs, type PlacedTarget } from "./config-checks";

/** The IAM user a credential set owns. */
export interface UserConfig {
    /** IAM user name. Default `ci-<set name>`. */
    name: string;
    /** IAM path. Default `/ci/`, so CI users are easy to find and to scope policies to. */
    path: string;
    /** Tags on the user; `ManagedBy: ci-key-rotation` and `CredentialSet: <name>` are added. */
    tags: Record<string, string>;
    /** Managed policies attached to the user. */
    managedPolicyArns: string[];
    /** Inline policy document, as JSON text. */
    inlinePolicy?: string;
    /** Permissions boundary policy ARN. */
    permissionsBoundary?: string;
}

/** A target after validation, with its store and its place in config (for messages). */
export interface TargetConfig {
    target: Target;
    spec: TargetSpec<Target>;
    /** `credentials[i].targets[j]`. */
    path: string;
}

/** One credential set: a CI user, its keys and the targets that hold the current key. */
export interface CredentialSetConfig {
    /** Set name: lower-case letters, digits and dashes; names resources and state entries. */
    name: string;
    user: UserConfig;
    /** Stack-wide rotation settings merged with the set's own `rotation` overrides. */
    policy: RotationPolicy;
    targets: TargetConfig[];
    /**
     * Access key ids of the user that ci-key-rotation did not mint but should take over
     * (`credentials[].adoptKeys`). An adopted key is never written to targets (its secret is
     * unknown): it becomes the set's old key and is deactivated and deleted like any other.
     * Default empty: a key the state does not know blocks the set. See docs/verification.md.
     */
    adoptKeys: string[];
    /**
     * The set's KMS key (`credentials[].kms`), the default key of the targets that encrypt.
     * `create`: the set manages a key whose policy lets `decrypters` decrypt only with the
     * targets' encryption contexts (alias default `alias/ci-key-rotation/<set>`, deletion window
     * default 30 days); `key`: an existing key. Absent: no set key. See docs/stores/kms.md.
     */
    kms?: SetKms;
    /** `credentials[i]`, for messages that tell which setting to change. */
    path: string;
}

/** The set's KMS key after validation: one the set manages, or an existing one. */
export type SetKms =
    | { create: true; decrypters: string[]; alias: string; deletionWindowInDays: number }
    | { create?: undefined; key: string };

/** The whole validated configuration of a stack. */
export interface StackConfig {
    sets: CredentialSetConfig[];
    /** The operator's rotation request, if any, and the sets it applies to (all when absent). */
    request?: RotationRequest & { sets?: string[] };
    /** Access key ids deleted outside the program that the state may forget (`forgetKeys`). */
    forgetKeys: string[];
    /**
     * How often `pulumi up` runs (`cadence`). Default `PT1H`, the recommended hourly cron. Each
     * step may wait up to one run after it is due, so rotation timing is checked against it.
     */
    cadence: Duration;
}

/** Result of {@link validateConfig}: typed config, or every problem found. */
export type ConfigResult = { ok: true; config: StackConfig } | { ok: false; problems: string[] };

/**
 * An input repeated in a message: short ones only, and never one that looks like a credential
 * (a token pasted into the wrong setting must not reach CI logs through the error).
 */
function shown(text: string): string {
    if (text.length > 32 || /glpat-|gh[pousr]_|github_pat_|A[KS]IA[A-Z0-9]{4}|[A-Za-z0-9/+=_-]{20,}/.test(text)) return `a ${text.length}-character value, not shown`;
    return JSON.stringify(text);
}

/** Upper bound of every duration setting. */
const longestDuration = Duration.fromObject({ years: 10 });

const isoDuration = z.string().transform((text, ctx) => {
    const duration = Duration.fromISO(text);
    if (!duration.isValid) {
        ctx.addIssue({ code: "custom", message: `must be an ISO-8601 duration such as "P7D" or "PT12H" (got ${shown(text)})` });
        return z.NEVER;
    }
    if (duration.toMillis() < 0) {
        ctx.addIssue({ code: "custom", message: `must not be negative (got ${shown(text)})` });
        return z.NEVER;
    }
    // No setting needs more than ten years, and far beyond it date arithmetic breaks: JavaScript
    // time values end 100,000,000 days from 1970 (ECMA-262 "Time Values and Time Range"), past
    // which luxon's DateTime.plus gives an invalid date, and every comparison with it is false.
    if (!(duration.toMillis() <= longestDuration.toMillis())) {
        ctx.addIssue({ code: "custom", message: `must be at most P10Y (got ${shown(text)})` });
        return z.NEVER;
    }
    return duration;
});

/** Pulumi config stores booleans as the strings "true"/"false"; accept both forms. */
const flag = z.union([z.boolean(), z.enum(["true", "false"]).transform((s) => s === "true")], {
    error: "must be true or false",
});

const policyShape = {
    every: isoDuration,
    overlap: isoDuration,
    retireAfter: isoDuration,
    settle: isoDuration,
    gateTimeout: isoDuration,
    lastUsedGate: flag,
    onGateTimeout: z.enum(["proceed", "fail"], { error: 'must be "proceed" or "fail"' }),
    paused: flag,
    validateTimeout: isoDuration.refine((d) => d.toMillis() <= 10 * 60_000, "must be at most PT10M: the engine waits for the key check inline"),
};
const policyOverrides = z.strictObject(policyShape).partial();

const policyArn = z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\/[\w+=,.@\/-]+$/, "must be an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)");

const policyDocument = z
    .union([z.string(), z.record(z.string(), z.unknown())], { error: "must be an IAM policy document (object or JSON text)" })
    .transform((doc, ctx) => {
        let parsed: unknown = doc;
        if (typeof doc === "string") {
            try {
                parsed = JSON.parse(doc);
            } catch {
                ctx.addIssue({ code: "custom", message: "must be valid JSON" });
                return z.NEVER;
            }
        }
        const p = parsed as { Version?: unknown; Statement?: unknown };
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || typeof p.Version !== "string" || p.Statement === undefined) {
            ctx.addIssue({ code: "custom", message: "must be an IAM policy document with Version and Statement" });
            return z.NEVER;
        }
        if (typeof p.Statement !== "object" || p.Statement === null || (Array.isArray(p.Statement) && p.Statement.length === 0)) {
            ctx.addIssue({ code: "custom", message: "must be an IAM policy document with Version and Statement (a statement or a non-empty list of statements)" });
            return z.NEVER;
        }
        const text = JSON.stringify(parsed);
        // IAM quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
        // policy documents hold only tab, LF, CR and U+0020-U+00FF, and a user's inline policies
        // together hold at most 2,048 characters, whitespace not counted. This set has one.
        const outside = /[^\t\n\r\u0020-\u00ff]/u.exec(text);
        if (outside) {
            const code = outside[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
            ctx.addIssue({ code: "custom", message: `must contain only characters IAM accepts in a policy (tab, line breaks and U+0020-U+00FF; found U+${code})` });
            return z.NEVER;
        }
        const size = text.replace(/\s/g, "").length;
        if (size > 2048) {
            ctx.addIssue({
                code: "custom",
                message: `has ${size.toLocaleString("en-US")} characters without whitespace, and IAM allows 2,048 for a user's inline policies: move statements to a managed policy (user.managedPolicyArns)`,
            });
            return z.NEVER;
        }
        return text;
    });

const accessKeyId = z.string().regex(/^[A-Z0-9]{16,128}$/, "must be an access key id (e.g. AKIA...)");

const userSchema = z.strictObject({
    name: z.string().regex(/^[\w+=,.@-]{1,64}$/, "must be 1-64 characters of letters, digits and + = , . @ _ -").optional(),
    path: z
        .string()
        .regex(/^\/([\x21-\x7e]+\/)?$/, 'must begin and end with "/" (e.g. "/ci/")')
        .max(512)
        .optional(),
    tags: z
        .record(z.string().min(1).max(128), z.string().max(256), { error: "must be a map of tag names to strings" })
        .refine((t) => Object.keys(t).length <= 48, "must have at most 48 tags (AWS allows 50; two are ours)")
        .optional(),
    managedPolicyArns: z.array(policyArn).max(20, "must have at most 20 policies (AWS's limit per user)").optional(),
    inlinePolicy: policyDocument.optional(),
    permissionsBoundary: policyArn.optional(),
});

const setSchema = z.strictObject({
    name: z
        .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") })
        .regex(/^[a-z][a-z0-9-]{0,39}$/, "must be 1-40 lower-case letters, digits or dashes, starting with a letter"),
    user: userSchema.optional(),
    rotation: policyOverrides.optional(),
    // Targets are parsed one by one below, so one bad target does not hide the others' problems.
    targets: z
        .array(z.unknown(), { error: (iss) => (iss.input === undefined ? "is required" : "must be a list of targets") })
        .min(1, "must list at least one target"),
    adoptKeys: z.array(accessKeyId, { error: "must be a list of access key ids" }).max(2, "must list at most two keys (AWS allows two per user)").optional(),
    kms: setKmsSchema.optional(),
});

const requestId = z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, "must be 1-128 letters, digits or . _ : @ - (e.g. incident-2026-11-22)");

const topLevel = {
    credentials: z
        .array(z.unknown(), {
            error: (iss) => (iss.input === undefined ? "is required: list at least one credential set" : "must be a list of credential sets"),
        })
        .min(1, "must list at least one credential set"),
    ...policyShape,
    request: requestId,
    requestSets: z.array(z.string(), { error: "must be a list of set names" }).min(1, "must name at least one set, or be removed"),
    emergency: flag,
    revoke: flag,
    forgetKeys: z.array(accessKeyId, { error: "must be a list of access key ids" }).optional(),
    cadence: isoDuration.refine((d) => d.toMillis() > 0, "must be longer than zero (e.g. PT1H for an hourly cron)"),
} as const;

type Path = readonly PropertyKey[];

/** `credentials[1].targets[0].repository` from a path, optionally under a prefix. */
export function formatPath(path: Path, prefix = ""): string {
    let out = prefix;
    for (const part of path) {
        if (typeof part === "number") out += `[${part}]`;
        else out += out === "" ? String(part) : `.${String(part)}`;
    }
    return out;
}

function describeIssue(issue: z.core.$ZodIssue, prefix: string): string[] {
    const at = formatPath(issue.path, prefix);
    const where = at === "" ? "configuration" : at;
    switch (issue.code) {
        case "unrecognized_keys":
            return issue.keys.map((k) => `${formatPath([...issue.path, k], prefix)} is not a known setting`);
        case "invalid_union":
            if ("note" in issue && issue.note === "No matching discriminator") {
                const options = (issue as unknown as { options: unknown[] }).options.map((o) => `"${String(o)}"`).join(", ");
                return [`${where} must be one of ${options}`];
            }
            return [`${where} ${issue.message}`];
        case "invalid_type":
            // zod's own wording; our schemas' custom messages pass through as they are.
            if (/^Invalid input: expected \w+, received undefined$/.test(issue.message)) return [`${where} is required`];
            if (issue.message.startsWith("Invalid input")) return [`${where} must be ${article(issue.expected)}`];
            return [`${where} ${issue.message}`];
        default:
            return [`${where} ${issue.message}`];
    }
}

function article(expected: string): string {
    if (expected === "array") return "a list";
    if (expected === "object" || expected === "record") return "an object";
    return `a ${expected}`;
}

/** Parse one value; on failure, record its problems under `path` and return undefined. */
function parseAt<S extends z.ZodType>(schema: S, value: unknown, path: string, problems: string[]): z.output<S> | undefined {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    problems.push(...result.error.issues.flatMap((i) => describeIssue(i, path)));
    return undefined;
}

/**
 * Validate a stack's raw configuration (the `ci-key-rotation:*` keys without the namespace, with
 * `credentials` already parsed from JSON). Pure: reports every problem at once, each with its
 * path, and never throws on bad input.
 */
export function validateConfig(raw: unknown): ConfigResult {
    const problems: string[] = [];
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        return { ok: false, problems: ["configuration must be an object of ci-key-rotation settings"] };
    }
    const input = raw as Record<string, unknown>;
    for (const key of Object.keys(input)) {
        // Own keys only: `constructor` or `toString` are "in" every object.
        if (!Object.hasOwn(topLevel, key)) problems.push(`${key} is not a known setting (known: ${Object.keys(topLevel).join(", ")})`);
    }
    const top: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(topLevel)) {
        const value = Object.hasOwn(input, key) ? input[key] : undefined;
        if (value === undefined && key !== "credentials") continue;
        top[key] = parseAt(schema, value, key, problems);
    }

    const cadence = (top.cadence as Duration | undefined) ?? Duration.fromObject({ hours: 1 });
    const stackPolicy: RotationPolicy = { ...defaultPolicy };
    for (const key of Object.keys(policyShape)) {
        if (top[key] !== undefined) (stackPolicy as unknown as Record<string, unknown>)[key] = top[key];
    }

    const sets: CredentialSetConfig[] = [];
    const setNames = new Map<string, number>();
    const userNames = new Map<string, string>();
    const destinations = new Map<string, string>();
    const adopters = new Map<string, string>();
    const aliases = new Map<string, string>();
    const placed: PlacedTarget[] = [];
    ((top.credentials as unknown[] | undefined) ?? []).forEach((rawSet, i) => {
        const at = `credentials[${i}]`;
        const set = parseAt(setSchema, rawSet, at, problems);
        const rawTargets = Array.isArray((rawSet as { targets?: unknown })?.targets) ? ((rawSet as { targets: unknown[] }).targets) : [];
        const targets: TargetConfig[] = [];
        rawTargets.forEach((rawTarget, j) => {
            const path = `${at}.targets[${j}]`;
            const rawProblems = rawTargetProblems(rawTarget);
            for (const p of rawProblems) problems.push(`${formatPath(p.path, path)} ${p.message}`);
            // A value reported above is replaced by a harmless one, so the rest of the target is still checked.
            const replaced = rawProblems.reduce((t, p) => (p.replace ? { ...(t as object), ...p.replace } : t), rawTarget);
            const parsed = parseAt(targetSchema, replaced, path, problems);
            if (!parsed) return;
            const spec = specFor(parsed.type);
            // Defaults drawn from the set (e.g. a secret name); without a valid set, config fails anyway.
            const target = set && spec.withSet ? spec.withSet(parsed, set) : parsed;
            for (const p of spec.check?.(target) ?? []) problems.push(`${formatPath(p.path, path)} ${p.message}`);
            const hasKmsKey = typeof rawSet === "object" && rawSet !== null && (rawSet as { kms?: unknown }).kms != null;
            for (const p of spec.checkInSet?.(target, { hasKmsKey }) ?? []) problems.push(`${formatPath(p.path, path)} ${p.message}`);
            for (const p of githubValueProblems(target)) problems.push(`${formatPath(p.path, path)} ${p.message}`);
            // Its id was replaced for the checks above: it must not stand for the real one below.
            if (rawProblems.length > 0) return;
            const clashes = new Map<string, string[]>();
            for (const d of new Set(spec.destinations(target))) {
                const other = destinations.get(d);
                if (other) clashes.set(other, [...(clashes.get(other) ?? []), d]);
                else destinations.set(d, path);
            }
            for (const [other, ds] of clashes) problems.push(`${path} writes ${ds.join(" and ")}, which ${other} already writes`);
            targets.push({ target, spec, path });
        });
        const rawTags = (rawSet as { user?: { tags?: unknown } } | undefined)?.user?.tags;
        if (typeof rawTags === "object" && rawTags !== null && Object.hasOwn(rawTags, "__proto__")) {
            problems.push(`${at}.user.tags.__proto__ cannot be used as a tag key (JavaScript reserves the name): choose another key`);
        }
        if (!set) return;
        for (const t of targets) placed.push({ ...t, setName: set.name });
        for (const key of Object.keys(set.user?.tags ?? {})) {
            if (/^aws:/i.test(key)) problems.push(`${at}.user.tags.${key} must not start with "aws:" (AWS reserves the prefix)`);
        }
        problems.push(...policyAttachmentCollisions(set.name, set.user?.managedPolicyArns ?? [], `${at}.user`));

        if (setNames.has(set.name)) problems.push(`${at}.name "${set.name}" is already used by credentials[${setNames.get(set.name)}]`);
        else setNames.set(set.name, i);

        const userName = set.user?.name ?? `ci-${set.name}`;
        const previousUser = userNames.get(userName.toLowerCase());
        if (previousUser) problems.push(`${at}.user.name "${userName}" is already the user of ${previousUser}: each set needs its own IAM user`);
        else userNames.set(userName.toLowerCase(), at);

        (set.adoptKeys ?? []).forEach((id, k) => {
            const other = adopters.get(id);
            if (other) problems.push(`${at}.adoptKeys[${k}] ${id} is already adopted by ${other}: a key belongs to one user`);
            else adopters.set(id, `${at}.adoptKeys`);
        });

        const kms: SetKms | undefined =
            set.kms === undefined
                ? undefined
                : set.kms.key !== undefined
                  ? { key: set.kms.key }
                  : { create: true, decrypters: set.kms.decrypters ?? [], alias: set.kms.alias ?? defaultAlias(set.name), deletionWindowInDays: set.kms.deletionWindowInDays ?? 30 };
        if (kms?.create) {
            // Alias names are unique per account and region: the second CreateAlias would fail.
            const other = aliases.get(kms.alias);
            if (other) problems.push(`${at}.kms.alias "${kms.alias}" is already the alias of ${other}'s key: give each set's key its own alias`);
            else aliases.set(kms.alias, at);
        }
        for (const t of targets) {
            const encrypt = "encrypt" in t.target ? t.target.encrypt : undefined;
            if (encrypt && encrypt.key === undefined && kms === undefined) {
                problems.push(`${t.path}.encrypt.key is required when the set has no key: name a KMS key here, or give ${at}.kms (create: true, or an existing key)`);
            }
        }

        const policy: RotationPolicy = { ...stackPolicy, ...(set.rotation as Partial<RotationPolicy> | undefined) };
        problems.push(...checkTiming(policy, set.rotation ? `${at}.rotation` : at, cadence));

        sets.push({
            name: set.name,
            user: {
                name: userName,
                path: set.user?.path ?? "/ci/",
                tags: set.user?.tags ?? {},
                managedPolicyArns: set.user?.managedPolicyArns ?? [],
                inlinePolicy: set.user?.inlinePolicy,
                permissionsBoundary: set.user?.permissionsBoundary,
            },
            policy,
            targets,
            adoptKeys: set.adoptKeys ?? [],
            ...(kms ? { kms } : {}),
            path: at,
        });
    });

    problems.push(...resourceNameCollisions(placed), ...splitSecretPairs(placed), ...splitVariablePairs(placed));

    const request = top.request as string | undefined;
    const emergency = (top.emergency as boolean | undefined) ?? false;
    const revoke = (top.revoke as boolean | undefined) ?? false;
    const requestSets = top.requestSets as string[] | undefined;
    if (input.request === undefined) {
        if (emergency) problems.push("emergency needs request: set ci-key-rotation:request to a new id (e.g. incident-2026-11-22)");
        if (revoke) problems.push("revoke needs request: set ci-key-rotation:request to a new id (e.g. leak-2026-11-22)");
        if (input.requestSets !== undefined) problems.push("requestSets needs request: set ci-key-rotation:request, or remove requestSets");
    }
    requestSets?.forEach((name, i) => {
        if (!setNames.has(name)) problems.push(`requestSets[${i}] ${shown(name)} is not the name of a credential set`);
    });

    ((top.forgetKeys as string[] | undefined) ?? []).forEach((id, i) => {
        const adopter = adopters.get(id);
        if (adopter) problems.push(`forgetKeys[${i}] ${id} is also listed in ${adopter}: adopt a key, or forget it, not both`);
    });

    if (problems.length > 0) return { ok: false, problems: dedupe(problems) };
    return {
        ok: true,
        config: {
            sets,
            request: request === undefined ? undefined : { id: request, emergency: emergency || revoke, revoke, sets: requestSets },
            forgetKeys: (top.forgetKeys as string[] | undefined) ?? [],
            cadence,
        },
    };
}

/**
 * The timing a set's policy must allow for one step per run to keep keys fresh (I5).
 *
 * After a mint at M, the deactivation is due at `M + overlap` (the gate may hold it `gateTimeout`
 * longer), the delete `retireAfter` after the deactivation actually ran, and the next mint at
 * `M + every`, but only at a run after the delete's (one step per run; the delete happens after
 * the program, so a mint in the same run would make a third key). Each step runs at the first run
 * at or after it is due, at most one gap G between runs later. So the key in targets is replaced
 * by `max(every, overlap + gateTimeout + retireAfter + 2G) + G`. This check makes that
 * `every + cadence` while runs keep to `cadence`; after missed runs (G > cadence) it is at most
 * `every + G + 2 × (G − cadence)` (docs/timing.md).
 */
function checkTiming(policy: RotationPolicy, at: string, cadence: Duration): string[] {
    const problems: string[] = [];
    const ms = (d: Duration) => d.toMillis();
    if (ms(policy.every) <= 0) problems.push(`${at}: every must be longer than zero`);
    if (ms(policy.settle) > ms(policy.overlap)) {
        problems.push(`${at}: settle (${policy.settle.toISO()}) must not exceed overlap (${policy.overlap.toISO()})`);
    }
    const cycle = policy.overlap
        .plus(policy.retireAfter)
        .plus(policy.lastUsedGate ? policy.gateTimeout : Duration.fromMillis(0))
        .plus(cadence)
        .plus(cadence);
    if (ms(cycle) >= ms(policy.every)) {
        const parts = policy.lastUsedGate ? "overlap + gateTimeout + retireAfter" : "overlap + retireAfter";
        problems.push(
            `${at}: every (${policy.every.toISO()}) must be longer than ${parts} + 2 × cadence (${human(cycle)}) so a rotation finishes before the next one is due, and no key stays in targets longer than every + cadence (${human(policy.every.plus(cadence))}) while runs keep to the cadence. Raise \`every\`, or shorten ${parts.replace(/ \+ /g, ", ")} or \`cadence\``,
        );
    }
    return problems;
}

function human(d: Duration): string {
    return d.shiftTo("days", "hours", "minutes").toHuman({ listStyle: "narrow" });
}

function dedupe(xs: string[]): string[] {
    return [...new Set(xs)];
}

/**
 * Thrown by the program when configuration is invalid; the message lists every problem.
 *
 * A `RunError` for Pulumi without importing the SDK (so the CLI reads config without loading
 * it): `RunError.isInstance` only checks that `__pulumiRunError` is `true`, and the Node
 * language host then prints the message without a stack trace (pulumi/pulumi
 * sdk/nodejs/errors.ts `RunError.isInstance`, sdk/nodejs/cmd/run/run.ts `uncaughtHandler`).
 */
export class ConfigError extends Error {
    /** Pulumi's `RunError` marker (see above). */
    readonly __pulumiRunError = true;
    constructor(readonly problems: string[]) {
        super(`Invalid ci-key-rotation configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` + problems.map((p) => `  - ${p}`).join("\n"));
        this.name = "ConfigError";
    }
}

/** The `ci-key-rotation:*` keys the program reads; anything else in the namespace is a typo. */
export const configKeys: readonly string[] = Object.keys(topLevel);

/**
 * Turn the namespace's raw config strings (as Pulumi stores them) into the input of
 * {@link validateConfig}: structured keys are JSON, everything else stays a string.
 * Returns problems for JSON that does not parse.
 */
export function decodeRawConfig(values: Record<string, string>): { raw: Record<string, unknown>; problems: string[] } {
    const raw: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [key, value] of Object.entries(values)) {
        // Pulumi.yaml gives optional keys empty defaults (project config without a default must be
        // set in every stack); empty means unset.
        if (value === "" || (value === "[]" && (key === "requestSets" || key === "forgetKeys"))) continue;
        if (key === "credentials" || key === "requestSets" || key === "forgetKeys") {
            try {
                raw[key] = JSON.parse(value);
            } catch {
                problems.push(`${key} must be structured YAML in the stack file (a list), not the text ${shown(value)}`);
            }
        } else {
            // Defined, not assigned: a key named `__proto__` must stay a key (and be reported).
            Object.defineProperty(raw, key, { value, enumerable: true, writable: true, configurable: true });
        }
    }
    return { raw, problems };
}

