import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { TargetStore, WriteEvidence } from "../types";
import { jsonKeys, secretNameOf, secretsManagerSpec, type SecretsManagerTarget } from "./spec";

export type { SecretsManagerTarget } from "./spec";

/** The stage Secrets Manager's consumers read by default (GetSecretValue without a stage or version). */
export const currentStage = "AWSCURRENT";

/** The resource policy that lets the configured readers read the secret (and nothing else). */
export function readerPolicy(readers: readonly string[]): string {
    return JSON.stringify({
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "ReadCredentials",
                Effect: "Allow",
                Principal: { AWS: [...readers] },
                Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                // In a secret's resource policy, `*` means the secret itself.
                Resource: "*",
            },
        ],
    });
}

/**
 * What the target check makes of the version resource's outputs: the access key id that the
 * version holds when it carries AWSCURRENT, else a text saying which stage it has instead, so
 * that the check (which compares it with the set's key id) fails naming the version.
 */
export function currentKeyEvidence(stages: readonly string[] | undefined, versionId: string | undefined, secretString: string | undefined, idKey: string): string {
    if (!stages?.includes(currentStage)) {
        return `none from this stack (its version ${versionId ?? "?"} is labelled ${stages?.length ? stages.join(", ") : "with no stage"}, so another version is ${currentStage})`;
    }
    try {
        const id = (JSON.parse(secretString ?? "") as Record<string, unknown>)[idKey];
        return typeof id === "string" ? id : `none (the value has no "${idKey}")`;
    } catch {
        return "none (the value is not JSON)";
    }
}

/** The version resource of each target, for `confirmWrites`. */
const versions = new WeakMap<pulumi.Resource, { name: string; idKey: string }>();

/**
 * AWS Secrets Manager: one secret per target whose value is
 * `{"AccessKeyId": "...", "SecretAccessKey": "..."}`, a version per key, and an optional
 * resource policy naming the readers.
 */
export const secretsManagerStore: TargetStore<SecretsManagerTarget> = {
    ...secretsManagerSpec,

    declare(t, ctx) {
        const name = secretNameOf(t);
        const keys = jsonKeys(t);
        const rn = (suffix: string) => `${ctx.resourceName}-${suffix}`;
        const aliases = (suffix: string) => ctx.previousResourceNames.map((previous) => ({ name: `${previous}-${suffix}` }));
        // The target's own key wins over the set's: the readers' policy (`ci-key-rotation policy
        // --readers`) is scoped to the key config names for the target.
        const kmsKeyId = t.kmsKey ?? ctx.kmsKeyArn;
        // terraform-provider-aws internal/service/secretsmanager/secret.go: `name` is ForceNew (a
        // new name is a new secret; the old one is deleted after the run, scheduled with
        // `recovery_window_in_days`); `kms_key_id` and `description` update in place (UpdateSecret),
        // tags in place. The secret holds no value itself, so no change of it blanks the value.
        const secret = new aws.secretsmanager.Secret(
            rn("secret"),
            {
                name,
                description: `AWS access key of credential set "${ctx.setName}", rotated by ci-key-rotation: values written here are overwritten.`,
                ...(kmsKeyId !== undefined ? { kmsKeyId } : {}),
                recoveryWindowInDays: t.recoveryWindowInDays,
                ...(t.tags ? { tags: t.tags } : {}),
            },
            { parent: ctx.parent, aliases: aliases("secret") },
        );
        const secretString = pulumi.secret(
            pulumi.all([ctx.key.accessKeyId, ctx.key.secretAccessKey]).apply(([id, key]) => JSON.stringify({ [keys.accessKeyId]: id, [keys.secretAccessKey]: key })),
        );
        // A new key is a new version: `secret_string` is ForceNew (terraform-provider-aws
        // internal/service/secretsmanager/secret_version.go `resourceSecretVersion`), so the engine
        // replaces the version resource, create-then-delete (the default; pulumi/pulumi
        // pkg/resource/deploy/step_generator.go). Create is PutSecretValue with
        // VersionStages=[AWSCURRENT]: Secrets Manager moves AWSCURRENT to the new version and
        // AWSPREVIOUS to the one that had it (PutSecretValue API reference), as its own rotation
        // does. The old resource's delete (`resourceSecretVersionDelete`) only removes stages from
        // the OLD version id and skips AWSCURRENT; its state still says AWSCURRENT (stages are read
        // when it was written), so it removes nothing and the old key stays AWSPREVIOUS for the
        // overlap. Nothing on this path touches the new version, so AWSCURRENT is never missing or
        // blank. Delete-first would change nothing for the consumer (the delete is a no-op on
        // AWSCURRENT) but leave no version resource in state if the write then failed.
        // `version_stages` is given (not left computed) so that, should anything else move
        // AWSCURRENT away, a refresh shows the difference and the update moves it back
        // (`resourceSecretVersionUpdate`: UpdateSecretVersionStage with RemoveFromVersionId).
        // `secretString` is marked secret by @pulumi/aws itself (secretsmanager/secretVersion.js
        // `additionalSecretOutputs`); it is listed again so the guarantee does not hang on that.
        const version = new aws.secretsmanager.SecretVersion(
            rn("version"),
            { secretId: secret.id, secretString, versionStages: [currentStage] },
            { parent: ctx.parent, aliases: aliases("version"), additionalSecretOutputs: ["secretString"] },
        );
        versions.set(version, { name, idKey: keys.accessKeyId });
        const out: pulumi.Resource[] = [secret, version];
        if (t.readers?.length) {
            // secret_policy.go: `policy` updates in place (PutResourcePolicy); removing the readers
            // deletes the resource, whose delete is DeleteResourcePolicy. `block_public_policy`
            // makes Secrets Manager refuse a policy that would open the secret to everyone.
            out.push(
                new aws.secretsmanager.SecretPolicy(
                    rn("policy"),
                    { secretArn: secret.arn, policy: readerPolicy(t.readers), blockPublicPolicy: true },
                    { parent: ctx.parent, aliases: aliases("policy") },
                ),
            );
        }
        return out;
    },

    confirmWrites(_t, declared) {
        const evidence: WriteEvidence[] = [];
        for (const r of declared) {
            const v = versions.get(r);
            if (v === undefined) continue;
            const version = r as aws.secretsmanager.SecretVersion;
            // The provider reads the version back after writing it (`resourceSecretVersionRead`:
            // GetSecretValue by version id), recording its stages and value. Only the access key
            // id leaves the secret value, unsecret: it is not secret.
            const accessKeyId = pulumi.unsecret(
                pulumi.all([version.versionStages, version.versionId, version.secretString]).apply(([stages, id, value]) => currentKeyEvidence(stages, id, value, v.idKey)),
            );
            evidence.push({ what: `secret ${v.name}, stage ${currentStage}`, accessKeyId });
        }
        return evidence;
    },
};
