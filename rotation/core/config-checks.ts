import type { Target } from "../../providers/specs";
import { encryptedKeyNames } from "../../providers/kms/spec";
import { defaultKeyNames, type TargetSpec } from "../../providers/types";

/**
 * Checks of validated configuration that look across targets and sets: configurations that pass
 * every field's own rule and then fail in the engine (two resources with one URN) or in CI jobs
 * (a job reading an access key id and a secret of different keys). Pure, like `validateConfig`.
 */

/** A validated target with what the checks need to know about it. */
export interface PlacedTarget {
    target: Target;
    spec: TargetSpec<Target>;
    /** `credentials[i].targets[j]`. */
    path: string;
    /** Name of the credential set that owns it. */
    setName: string;
}

/**
 * Lower-case letters, digits, `_` and dashes: the same rule as `slug` in rotation/pulumi/credential-set.ts,
 * which names the resources (test/config.test.ts checks the two agree). It is repeated here so
 * config validation does not load the AWS SDK; it must never change (a new name replaces the
 * resource, and the delete removes the secret just written).
 */
export function resourceSlug(text: string): string {
    return text
        .toLowerCase()
        .replace(/[^a-z0-9_]+/g, "-")
        .replace(/^-+|-+$/g, "");
}

/**
 * The suffix providers/gitlab/store.ts adds for an environment scope other than `*` (an FNV-1a hash of
 * the exact scope), repeated for the same reason as {@link resourceSlug}.
 */
function gitlabScopeSuffix(scope: string): string {
    if (scope === "*") return "";
    let h = 0x811c9dc5;
    for (const c of scope) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return `-${h.toString(16).padStart(8, "0")}`;
}

function keyNamesOf(t: Target): { accessKeyId: string; secretAccessKey: string } {
    // Encrypting targets write other names by default (providers/kms/spec.ts `encryptedKeyNames`).
    const defaults = "encrypt" in t && t.encrypt ? encryptedKeyNames : defaultKeyNames;
    return {
        accessKeyId: t.names?.accessKeyId ?? defaults.accessKeyId,
        secretAccessKey: t.names?.secretAccessKey ?? defaults.secretAccessKey,
    };
}

/**
 * The names of the resources a target declares, as rotation/pulumi/credential-set.ts and the store's
 * `declare` make them: `<slug of the label>` (no set name, so a target keeps its resources when it
 * moves between sets) then one suffix per written value, lower-cased for GitHub (names there are
 * case-insensitive, providers/github/store.ts) and as written for GitLab (providers/gitlab/store.ts).
 */
function targetResourceNames(p: PlacedTarget): string[] {
    const t = p.target;
    const n = keyNamesOf(t);
    const variables = Object.keys(("variables" in t ? t.variables : undefined) ?? {});
    const prefix = resourceSlug(p.spec.label(t));
    // The AWS stores name their resources by the label alone (providers/s3/store.ts,
    // providers/aws-secrets-manager/store.ts), whatever the variable or JSON key names.
    if (t.type === "aws-s3-env-file") return [`${prefix}-object`];
    if (t.type === "aws-secrets-manager") return ["secret", "version", "policy"].map((s) => `${prefix}-${s}`);
    if (t.type === "gitlab-project" || t.type === "gitlab-group") {
        const scoped = `${prefix}${gitlabScopeSuffix(t.environmentScope)}`;
        return [n.accessKeyId, n.secretAccessKey, ...variables].map((key) => `${scoped}-${key}`);
    }
    return [n.accessKeyId, n.secretAccessKey, ...(t.type === "github-dependabot" ? [] : variables.map((v) => `var-${v}`))].map((s) => `${prefix}-${s.toLowerCase()}`);
}

/**
 * Two targets (in any sets) whose resources would get the same names. The engine fails the whole
 * update on the duplicate URN ("Duplicate resource URN '…'; try giving it a unique name":
 * pulumi/pulumi sdk/go/common/diag/errors.go `GetDuplicateResourceURNError`). The URN holds the
 * parent's type chain but not the parent's name (pulumi/pulumi sdk/nodejs/resource.ts `createUrn`:
 * `<parent urn up to its last "::">$<type>::<name>`), so children of two sets collide when their
 * names do. Targets that write the same place are reported by the destination check instead, so
 * pairs with the same label (ignoring case) are left out here.
 */
export function resourceNameCollisions(targets: readonly PlacedTarget[]): string[] {
    const problems: string[] = [];
    const owners = new Map<string, PlacedTarget>();
    for (const p of targets) {
        const reported = new Set<PlacedTarget>();
        for (const name of targetResourceNames(p)) {
            const other = owners.get(name);
            if (other === undefined) {
                owners.set(name, p);
                continue;
            }
            if (other === p || reported.has(other)) continue;
            reported.add(other);
            const label = p.spec.label(p.target);
            const otherLabel = other.spec.label(other.target);
            if (label.toLowerCase() === otherLabel.toLowerCase()) continue;
            problems.push(
                `${p.path} (${label}) would have the same Pulumi resource name as ${other.path} (${otherLabel}): ${name} (resource names keep only letters, digits and _). ` +
                    "Resource names do not include the set (a target keeps its resources when it moves between sets), so the two cannot share a stack: rotate one of them from another stack.",
            );
        }
    }
    return problems;
}

/** `arn:aws:iam::aws:policy/ReadOnlyAccess` → `aws-readonlyaccess`, as rotation/pulumi/credential-set.ts names attachments. */
function policySlug(arn: string): string {
    const [, , , , account, resource] = arn.split(":");
    return resourceSlug(`${account}-${resource.replace(/^policy\//, "")}`);
}

/**
 * A managed policy listed twice, or two whose attachments would get one resource name
 * (`<set>-policy-<slug>`), within one set's `user.managedPolicyArns`.
 */
export function policyAttachmentCollisions(setName: string, arns: readonly string[], at: string): string[] {
    const problems: string[] = [];
    const seen = new Map<string, number>();
    const named = new Map<string, number>();
    arns.forEach((arn, i) => {
        const first = seen.get(arn);
        if (first !== undefined) {
            problems.push(`${at}.managedPolicyArns[${i}] repeats managedPolicyArns[${first}] (${arn}): list each policy once`);
            return;
        }
        seen.set(arn, i);
        const name = `${setName}-policy-${policySlug(arn)}`;
        const other = named.get(name);
        if (other === undefined) named.set(name, i);
        else {
            problems.push(
                `${at}.managedPolicyArns[${i}] (${arn}) would have the same Pulumi resource name as managedPolicyArns[${other}] (${arns[other]}): ${name} (resource names keep only letters, digits and _). ` +
                    "Attach one of them to an IAM group of the user instead, or merge them.",
            );
        }
    });
    return problems;
}

type Role = "accessKeyId" | "secretAccessKey";

/** A GitHub Actions secret layer: environment over repository over organization (Dependabot is apart). */
interface Layer {
    p: PlacedTarget;
    /** Lower-case secret name → the role it holds the key's half in. */
    writes: Map<string, Role>;
    names: { accessKeyId: string; secretAccessKey: string };
}

function layerOf(p: PlacedTarget): Layer {
    const names = keyNamesOf(p.target);
    return {
        p,
        names,
        // GitHub compares secret names case-insensitively.
        writes: new Map<string, Role>([
            [names.accessKeyId.toLowerCase(), "accessKeyId"],
            [names.secretAccessKey.toLowerCase(), "secretAccessKey"],
        ]),
    };
}

/**
 * GitHub hands a job the environment's secret over the repository's over the organization's of
 * the same name, comparing names case-insensitively ("About secrets", naming and precedence:
 * https://docs.github.com/en/actions/security-for-github-actions/security-guides/about-secrets). When a nearer target writes one name of a farther target's pair (or both, in
 * swapped roles) and the two are different keys, a job that reads that pair gets an access key id
 * of one key and a secret of another. Report each such pair at the nearer target.
 *
 * An organization secret with `visibility: private` reaches only private and internal
 * repositories, which config cannot tell apart: such pairs count as reaching every repository.
 */
export function splitSecretPairs(targets: readonly PlacedTarget[]): string[] {
    const orgs: Layer[] = [];
    const repos: Layer[] = [];
    const envs: Layer[] = [];
    for (const p of targets) {
        const t = p.target;
        if (t.type === "github-organization") orgs.push(layerOf(p));
        else if (t.type === "github-repository") repos.push(layerOf(p));
        else if (t.type === "github-environment") envs.push(layerOf(p));
    }
    const repoOf = (l: Layer) => ("repository" in l.p.target ? (l.p.target.repository as string).toLowerCase() : "");
    const reaches = (org: Layer, repository: string) => {
        const t = org.p.target;
        if (t.type !== "github-organization") return false;
        const [owner, name] = repository.split("/");
        if (owner !== t.organization.toLowerCase()) return false;
        return t.visibility !== "selected" || (t.repositories ?? []).some((r) => r.toLowerCase() === name);
    };

    const problems: string[] = [];
    // Every place a job can run that some target writes to, with its layers nearest first.
    const places: Layer[][] = [];
    for (const env of envs) {
        const repository = repoOf(env);
        places.push([env, ...repos.filter((r) => repoOf(r) === repository), ...orgs.filter((o) => reaches(o, repository))]);
    }
    for (const repo of repos) places.push([repo, ...orgs.filter((o) => reaches(o, repoOf(repo)))]);

    for (const layers of places) {
        const resolve = (name: string) => layers.find((l) => l.writes.has(name.toLowerCase()));
        for (const [depth, farther] of layers.entries()) {
            const idSource = resolve(farther.names.accessKeyId)!;
            const secretSource = resolve(farther.names.secretAccessKey)!;
            const idRole = idSource.writes.get(farther.names.accessKeyId.toLowerCase());
            const secretRole = secretSource.writes.get(farther.names.secretAccessKey.toLowerCase());
            const sameKey = idSource.p.setName === secretSource.p.setName;
            if (sameKey && idRole === "accessKeyId" && secretRole === "secretAccessKey") continue;
            // The nearest layer above `farther` that takes one of its names is the one to change.
            const nearer = layers.slice(0, depth).find((l) => l === idSource || l === secretSource);
            if (nearer === undefined) continue;
            const taken = [farther.names.accessKeyId, farther.names.secretAccessKey].filter((n) => nearer.writes.has(n.toLowerCase()));
            const kept = [farther.names.accessKeyId, farther.names.secretAccessKey].filter((n) => !nearer.writes.has(n.toLowerCase()));
            const where = nearer.p.target.type === "github-environment" ? "environment" : "repository";
            const what = `${nearer.p.path} (${nearer.p.spec.label(nearer.p.target)})`;
            const from = `${farther.p.path} (${farther.p.spec.label(farther.p.target)})`;
            const effect = "jobs there would read the access key id of one key and the secret of another.";
            problems.push(
                kept.length > 0
                    ? `${what} writes ${taken.join(" and ")}, which takes precedence in that ${where} over the secret of the same name from ${from}, but not ${kept.join(" and ")}: ${effect} ` +
                          "Give the target both names of the pair (names.accessKeyId and names.secretAccessKey) or neither."
                    : `${what} writes ${taken.join(" and ")}, which take precedence in that ${where} over the secrets of the same names from ${from}, but each for the other half of the key: ${effect} ` +
                          "Use each name for the same half as the other target does, or other names.",
            );
        }
    }
    return problems;
}

/** C0 and C1 controls, and the Unicode bidirectional marks, embeddings, overrides and isolates. */
const invisibleControls = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** Problems of values GitHub refuses only when the run writes them, with paths relative to the target. */
export function githubValueProblems(t: Target): { path: (string | number)[]; message: string }[] {
    const problems: { path: (string | number)[]; message: string }[] = [];
    const badName = (name: string) => name === "." || name === ".." || name.startsWith("-");
    const rule = 'a repository name is not "." or ".." and does not start with "-"';
    if ("repository" in t && typeof t.repository === "string" && t.type.startsWith("github-") && badName(t.repository.split("/")[1] ?? "")) {
        problems.push({ path: ["repository"], message: `names a repository GitHub cannot have ("${t.repository}"): ${rule}` });
    }
    if (t.type === "github-organization") {
        (t.repositories ?? []).forEach((name, i) => {
            if (badName(name)) problems.push({ path: ["repositories", i], message: `names a repository GitHub cannot have ("${name}"): ${rule}` });
        });
    }
    if (t.type === "github-environment") {
        const found = invisibleControls.exec(t.environment);
        if (found) {
            const code = found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
            problems.push({ path: ["environment"], message: `must not contain control characters or bidirectional-text controls (found U+${code})` });
        }
    }
    return problems;
}

/**
 * Problems of a raw target that its schema would hide: a GitLab id that YAML or JSON read as a
 * number it cannot hold exactly (beyond 2^53: another id) or with a fraction (`1.5`, which the
 * schema would take as a path), and a `__proto__` variable, which a parsed object drops.
 */
export function rawTargetProblems(raw: unknown): { path: (string | number)[]; message: string; replace?: Record<string, unknown> }[] {
    const problems: { path: (string | number)[]; message: string; replace?: Record<string, unknown> }[] = [];
    if (typeof raw !== "object" || raw === null) return problems;
    const r = raw as Record<string, unknown>;
    for (const field of ["project", "group"]) {
        const value = Object.hasOwn(r, field) ? r[field] : undefined;
        if (typeof value !== "number" || !Number.isFinite(value) || (Number.isSafeInteger(value) && value >= 0)) continue;
        if (!Number.isInteger(value)) {
            problems.push({ path: [field], message: `is a number with a fraction (${value}): write a numeric id, or a path in quotes (${field}: "${value}")`, replace: { [field]: 1 } });
        } else if (value > 0) {
            problems.push({ path: [field], message: `is a number too large to be read exactly (${value}): write the id in quotes (${field}: "<id>")`, replace: { [field]: 1 } });
        }
    }
    const variables = Object.hasOwn(r, "variables") ? r.variables : undefined;
    if (typeof variables === "object" && variables !== null && Object.hasOwn(variables, "__proto__")) {
        problems.push({ path: ["variables", "__proto__"], message: "cannot be used as a variable name (JavaScript reserves the name): choose another name" });
    }
    return problems;
}

/**
 * Whether jobs of some environment could receive variables of both scopes: equal scopes, a
 * wildcard scope that matches the other, or two wildcard scopes whose fixed starts agree.
 */
function scopesOverlap(a: string, b: string): boolean {
    if (a === b) return true;
    const glob = (pattern: string) => new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, "\\$&")).join(".*")}$`);
    if (a.includes("*") && b.includes("*")) {
        const [pa, pb] = [a.split("*")[0], b.split("*")[0]];
        return pa.startsWith(pb) || pb.startsWith(pa);
    }
    if (a.includes("*")) return glob(a).test(b);
    if (b.includes("*")) return glob(b).test(a);
    return false;
}

/**
 * The GitLab form of {@link splitSecretPairs}. A job receives a project's variable before its
 * groups' of the same key, and the closest subgroup's before its parents' ("CI/CD variable
 * precedence": https://docs.gitlab.com/ci/variables/#cicd-variable-precedence). When a nearer
 * target writes one key of a farther target's pair (or both keys in swapped roles) for
 * environments both scopes can match, and the two are different keys of AWS, jobs there read
 * halves of two keys. Targets given by numeric id cannot be placed in the group tree from
 * config and are left out; scopes with wildcards count as overlapping.
 */
export function splitVariablePairs(targets: readonly PlacedTarget[]): string[] {
    type Placed = { p: PlacedTarget; path: string; depth: number; scope: string; layer: Layer };
    const placed: Placed[] = [];
    for (const p of targets) {
        const t = p.target;
        if (t.type !== "gitlab-project" && t.type !== "gitlab-group") continue;
        const path = (t.type === "gitlab-project" ? t.project : t.group).toLowerCase();
        if (/^[0-9]+$/.test(path)) continue;
        // Projects are nearer than any group: a project's depth counts past every group's.
        placed.push({ p, path, depth: t.type === "gitlab-project" ? Number.MAX_SAFE_INTEGER : path.split("/").length, scope: t.environmentScope, layer: layerOf(p) });
    }
    const problems: string[] = [];
    for (const nearer of placed) {
        for (const farther of placed) {
            const below = nearer.path.startsWith(`${farther.path}/`);
            if (!below || nearer.depth <= farther.depth || !scopesOverlap(nearer.scope, farther.scope)) continue;
            const f = farther.layer.names;
            const roleOf = (name: string) => nearer.layer.writes.get(name.toLowerCase());
            const taken = [f.accessKeyId, f.secretAccessKey].filter((n) => roleOf(n) !== undefined);
            if (taken.length === 0) continue;
            const consistent =
                taken.length === 2 && roleOf(f.accessKeyId) === "accessKeyId" && roleOf(f.secretAccessKey) === "secretAccessKey";
            const sameKey = nearer.p.setName === farther.p.setName && taken.every((n) => roleOf(n) === (n === f.accessKeyId ? "accessKeyId" : "secretAccessKey"));
            if (consistent || sameKey) continue;
            const kept = [f.accessKeyId, f.secretAccessKey].filter((n) => roleOf(n) === undefined);
            const what = `${nearer.p.path} (${nearer.p.spec.label(nearer.p.target)})`;
            const from = `${farther.p.path} (${farther.p.spec.label(farther.p.target)})`;
            const effect = "jobs there would read the access key id of one key and the secret of another.";
            problems.push(
                kept.length > 0
                    ? `${what} writes ${taken.join(" and ")}, which takes precedence in its jobs over the variable of the same key from ${from}, but not ${kept.join(" and ")}: ${effect} ` +
                          "Give the target both keys of the pair (names.accessKeyId and names.secretAccessKey) or neither."
                    : `${what} writes ${taken.join(" and ")}, which take precedence in its jobs over the variables of the same keys from ${from}, but each for the other half of the key: ${effect} ` +
                          "Use each key for the same half as the other target does, or other keys.",
            );
        }
    }
    return problems;
}
