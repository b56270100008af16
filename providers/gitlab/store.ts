import * as pulumi from "@pulumi/pulumi";
import { ciphertextFor } from "../kms/store";
import { GitlabVariable, type GitlabVariableArgs } from "./variable";
import type { TargetStore } from "../types";
import { gitlabSpec, keyNames, ownerOf, scopeSuffix, type GitlabTarget } from "./spec";

export type { GitlabTarget } from "./spec";

/** GitLab CI/CD variables of projects and groups, through the `GitlabVariable` dynamic provider. */
export const gitlabStore: TargetStore<GitlabTarget> = {
    ...gitlabSpec,

    declare(t, ctx) {
        const { scope, owner } = ownerOf(t);
        const n = keyNames(t);
        const label = gitlabStore.label(t);
        const base = {
            kind: "gitlab-variable" as const,
            scope,
            owner,
            environmentScope: t.environmentScope,
            protected: t.protected,
            raw: t.raw,
            target: `\`${ctx.configPath}\` (${label})`,
        };
        const rn = (key: string) => `${ctx.resourceName}${scopeSuffix(t.environmentScope)}-${key}`;
        // Replacements delete first: the default create-then-delete (pulumi/pulumi
        // pkg/resource/deploy/step_generator.go) would write the variable and then delete the same
        // key at the end of the run. Aliases carry resources named by earlier releases over.
        const opts = (key: string): pulumi.CustomResourceOptions => ({
            parent: ctx.parent,
            ...(ctx.dynamicProvider ? { provider: ctx.dynamicProvider } : {}),
            deleteBeforeReplace: true,
            aliases: ctx.previousResourceNames.map((previous) => ({ name: `${previous}${scopeSuffix(t.environmentScope)}-${key}` })),
        });
        const out: pulumi.Resource[] = [];
        // With `encrypt`, the variable holds the KMS ciphertext of the secret access key (base64,
        // which GitLab can mask); the access key id stays plain.
        let secretValue = ctx.key.secretAccessKey;
        let idValue = ctx.key.accessKeyId;
        if (t.encrypt) {
            const sealed = ciphertextFor(t.encrypt, ctx.key.secretAccessKey, ctx, `${scopeSuffix(t.environmentScope).slice(1) || "all"}-${n.secretAccessKey}`.toLowerCase());
            out.push(sealed.resource);
            secretValue = sealed.value;
            // The id is written only once the ciphertext exists: a failed Encrypt (throttling, a
            // key policy) must not leave the new id beside the old key's ciphertext, which no job
            // could use. The id becomes known with the ciphertext, so both change in the same run.
            idValue = pulumi.all([ctx.key.accessKeyId, sealed.value]).apply(([id]) => id);
        }
        const keyVariables: [string, pulumi.Output<string>, string][] = [
            [n.accessKeyId, idValue, "AWS access key id"],
            [n.secretAccessKey, secretValue, t.encrypt ? "KMS ciphertext (base64) of the AWS secret access key" : "AWS secret access key"],
        ];
        for (const [key, value, what] of keyVariables) {
            const inputs: GitlabVariableArgs = {
                ...base,
                key,
                value,
                masked: t.masked,
                hidden: t.hidden,
                description: t.description ?? `${what} of credential set "${ctx.setName}", rotated by ci-key-rotation: edits here are overwritten.`,
            };
            out.push(new GitlabVariable(rn(key), inputs, opts(key)));
        }
        for (const [key, value] of Object.entries(t.variables ?? {})) {
            out.push(
                new GitlabVariable(
                    rn(key),
                    {
                        ...base,
                        key,
                        value,
                        masked: false,
                        hidden: false,
                        description: t.description ?? `Set by ci-key-rotation for credential set "${ctx.setName}": edits here are overwritten.`,
                    },
                    opts(key),
                ),
            );
        }
        return out;
    },
};
