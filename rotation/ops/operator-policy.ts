/**
 * The least-privilege IAM policy the operator's credentials (the ones `pulumi up` runs with)
 * need for a stack's credential sets: `ci-key-rotation policy` prints it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { OperatorStatement } from "../../providers/types";
import { validateConfig, type ConfigResult, type CredentialSetConfig, type StackConfig } from "../core/config";
import { parseStackFile } from "../core/stack-file";

/** An IAM policy document. */
export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: OperatorStatement[];
}

/** Options of {@link operatorPolicy}. */
export interface OperatorPolicyOptions {
    /**
     * The AWS account id the users live in. Default `*`: the stack file does not say which
     * account the provider's credentials belong to; pass it to narrow the policy further.
     */
    account?: string;
    /** ARN partition. Default `aws`; `aws-cn` and `aws-us-gov` for those regions. */
    partition?: string;
}

/** `arn:aws:iam::*:user/ci/ci-deploy` for a set's user. */
export function userArn(set: CredentialSetConfig, options: OperatorPolicyOptions = {}): string {
    return `arn:${options.partition ?? "aws"}:iam::${options.account ?? "*"}:user${set.user.path}${set.user.name}`;
}

/**
 * The policy for a validated stack config. Every IAM action is scoped to the sets' own users;
 * attaching managed policies is limited to the configured ARNs (otherwise these credentials
 * could attach AdministratorAccess to a CI user and use its keys), and a configured
 * permissions boundary must be the one set.
 */
export function operatorPolicy(config: StackConfig, options: OperatorPolicyOptions = {}): PolicyDocument {
    const statements: OperatorStatement[] = [];
    for (const set of config.sets) {
        const id = sidPart(set.name);
        const arn = userArn(set, options);
        const userActions = [
            "iam:GetUser",
            "iam:UpdateUser",
            "iam:DeleteUser",
            "iam:TagUser",
            "iam:UntagUser",
            "iam:ListUserTags",
            // Read by the provider before it deletes a user.
            "iam:ListGroupsForUser",
            // The rotation itself: IAM's key list, the keys, and the last-used gate.
            "iam:ListAccessKeys",
            "iam:CreateAccessKey",
            "iam:UpdateAccessKey",
            "iam:DeleteAccessKey",
            "iam:GetAccessKeyLastUsed",
            "iam:ListAttachedUserPolicies",
            // Detaching only narrows what the CI user may do, so it needs no condition; removing a
            // managed policy from config must keep working after the policy is gone from here.
            "iam:DetachUserPolicy",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:DeleteUserPolicy",
            "iam:DeleteUserPermissionsBoundary",
        ];
        if (set.user.inlinePolicy) userActions.push("iam:PutUserPolicy");
        if (!set.user.permissionsBoundary) userActions.push("iam:CreateUser");
        statements.push({ Sid: `User${id}`, Effect: "Allow", Action: userActions.sort(), Resource: arn });
        if (set.user.permissionsBoundary) {
            statements.push({
                Sid: `Boundary${id}`,
                Effect: "Allow",
                Action: ["iam:CreateUser", "iam:PutUserPermissionsBoundary"],
                Resource: arn,
                Condition: { StringEquals: { "iam:PermissionsBoundary": set.user.permissionsBoundary } },
            });
        }
        if (set.user.managedPolicyArns.length > 0) {
            statements.push({
                Sid: `AttachPolicies${id}`,
                Effect: "Allow",
                Action: ["iam:AttachUserPolicy"],
                Resource: arn,
                Condition: { ArnEquals: { "iam:PolicyARN": [...set.user.managedPolicyArns].sort() } },
            });
        }
        statements.push(...kmsStatements(set, id, options));
        const targetStatements = new Map<string, OperatorStatement>();
        for (const { target, spec } of set.targets) {
            for (const s of spec.awsPermissions?.(target, options) ?? []) targetStatements.set(JSON.stringify(s), s);
        }
        // IAM refuses a policy whose statements repeat a `Sid`: two targets of one store number theirs.
        const sids = new Map<string, number>();
        targetStatements.forEach((s) => {
            const sid = `${s.Sid}${id}`;
            const n = (sids.get(sid) ?? 0) + 1;
            sids.set(sid, n);
            statements.push({ ...s, Sid: n === 1 ? sid : `${sid}${n}` });
        });
    }
    // The AWS provider checks its credentials when it starts; STS needs no resource scope.
    statements.push({ Sid: "CallerIdentity", Effect: "Allow", Action: ["sts:GetCallerIdentity"], Resource: "*" });
    return { Version: "2012-10-17", Statement: statements };
}

/** The identity policy one target's readers need, as `ci-key-rotation policy --readers` prints it. */
export interface ReaderPolicy {
    /** Config path of the target, e.g. `credentials[0].targets[2]`. */
    path: string;
    /** The target's label, e.g. `aws-secrets-manager ci/deploy/aws-credentials`. */
    target: string;
    /** Attach to the role or user that reads the target at job time (a runner's instance role, a task role). */
    policy: PolicyDocument;
}

/**
 * One identity policy per target that a consumer reads with its own AWS identity (the stores'
 * `readerPermissions`), in config order. Targets read by the CI service itself (GitHub, GitLab)
 * have none and are left out. One document per target, because each is attached to that
 * target's readers, which differ between targets.
 */
export function readerPolicies(config: StackConfig, options: OperatorPolicyOptions = {}): ReaderPolicy[] {
    const out: ReaderPolicy[] = [];
    for (const set of config.sets) {
        for (const { target, spec, path } of set.targets) {
            const statements = spec.readerPermissions?.(target, options) ?? [];
            if (statements.length > 0) out.push({ path, target: spec.label(target), policy: { Version: "2012-10-17", Statement: statements } });
        }
    }
    return out;
}

/**
 * The set's KMS key (`credentials[].kms`), as the AWS provider calls KMS (terraform-provider-aws
 * internal/service/kms/key.go: CreateKey with Tags, EnableKeyRotation, then DescribeKey,
 * GetKeyPolicy, GetKeyRotationStatus, ListResourceTags on every read; PutKeyPolicy and
 * UpdateKeyDescription on update; ScheduleKeyDeletion on delete; alias.go: CreateAlias,
 * ListAliases, UpdateAlias, DeleteAlias; ciphertext.go: Encrypt). A managed key is known by its
 * `CredentialSet` tag: CreateKey names no key, and tagging at creation needs `kms:TagResource`
 * on all keys (KMS developer guide, "Controlling access to tags"), so both are limited to
 * requests that tag the key with the set. Decrypt is never granted: only the decrypters may.
 */
function kmsStatements(set: CredentialSetConfig, id: string, options: OperatorPolicyOptions): OperatorStatement[] {
    const kms = set.kms;
    if (!kms) return [];
    const partition = options.partition ?? "aws";
    const account = options.account ?? "*";
    if (!kms.create) {
        const resource = kms.key.startsWith("arn:") && kms.key.includes(":key/")
            ? kms.key
            : /^(mrk-)?[0-9a-f-]{32,36}$/.test(kms.key)
              ? `arn:${partition}:kms:*:${account}:key/${kms.key}`
              : `arn:${partition}:kms:*:${account}:key/*`;
        const alias = kms.key.startsWith("alias/") ? kms.key : kms.key.includes(":alias/") ? `alias/${kms.key.split(":alias/")[1]}` : undefined;
        return [
            {
                Sid: `KmsUseKey${id}`,
                Effect: "Allow",
                Action: ["kms:DescribeKey", "kms:Encrypt"],
                Resource: resource,
                ...(alias ? { Condition: { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } } } : {}),
            },
        ];
    }
    const tagged = { StringEquals: { "aws:ResourceTag/CredentialSet": set.name } };
    return [
        { Sid: `KmsCreateKey${id}`, Effect: "Allow", Action: ["kms:CreateKey", "kms:TagResource"], Resource: "*", Condition: { StringEquals: { "aws:RequestTag/CredentialSet": set.name } } },
        {
            Sid: `KmsKey${id}`,
            Effect: "Allow",
            Action: [
                "kms:DescribeKey",
                "kms:EnableKey",
                "kms:EnableKeyRotation",
                "kms:Encrypt",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:UpdateKeyDescription",
            ],
            Resource: `arn:${partition}:kms:*:${account}:key/*`,
            Condition: tagged,
        },
        // CreateAlias and UpdateAlias authorise on the alias and on the key it points to.
        {
            Sid: `KmsAlias${id}`,
            Effect: "Allow",
            Action: ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            Resource: [`arn:${partition}:kms:*:${account}:${kms.alias}`, `arn:${partition}:kms:*:${account}:key/*`],
        },
        { Sid: `KmsListAliases${id}`, Effect: "Allow", Action: ["kms:ListAliases"], Resource: "*" },
    ];
}

/** `deploy-eu` → `DeployEu`: IAM allows only letters and digits in a `Sid`. */
function sidPart(name: string): string {
    return name
        .split(/[^A-Za-z0-9]+/)
        .filter(Boolean)
        .map((w) => w[0].toUpperCase() + w.slice(1))
        .join("");
}

/**
 * Read a stack's `ci-key-rotation:*` settings from `Pulumi.<stack>.yaml` in `workDir` and
 * validate them, without the Pulumi CLI. Values Pulumi encrypted (`secure:`) are skipped: none of
 * this program's settings are secret.
 */
export async function readStackFileConfig(workDir: string, stack: string): Promise<ConfigResult & { file: string }> {
    const file = join(workDir, `Pulumi.${stack.split("/").at(-1)}.yaml`);
    let text: string;
    try {
        text = await readFile(file, "utf8");
    } catch (err) {
        const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
        return { ok: false, file, problems: [missing ? `${file} does not exist: create the stack with \`pulumi stack init ${stack}\`, or check --stack and --cwd` : `cannot read ${file}: ${(err as Error).message}`] };
    }
    const parsed = parseStackFile(text, file);
    if (!parsed.ok) return { ok: false, file, problems: parsed.problems };
    const config = parsed.config;
    // Built with fromEntries, not by assignment (as the program's reader, rotation/pulumi/program.ts):
    // `raw["__proto__"] = v` would be dropped silently, and the key must reach validation to be
    // reported as unknown.
    const raw: Record<string, unknown> = Object.fromEntries(
        Object.entries(config && typeof config === "object" ? (config as Record<string, unknown>) : {})
            .filter(([key]) => key.startsWith("ci-key-rotation:"))
            .filter(([, value]) => !(value && typeof value === "object" && "secure" in value))
            // Pulumi.yaml gives optional keys empty defaults; empty means unset (as in the program).
            .filter(([, value]) => !(value === "" || (Array.isArray(value) && value.length === 0)))
            .map(([key, value]) => [key.slice("ci-key-rotation:".length), value]),
    );
    return { ...validateConfig(raw), file };
}
