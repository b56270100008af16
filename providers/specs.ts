import { secretsManagerSpec, type SecretsManagerTarget } from "./aws-secrets-manager/spec";
import { z } from "zod";
import { ssmParameterSpec, type SsmParameterTarget } from "./aws-ssm-parameter/spec";
import { githubSpec, type GithubTarget } from "./github/spec";
import { gitlabSpec, type GitlabTarget } from "./gitlab/spec";
import { s3Spec, type S3EnvFileTarget } from "./s3/spec";
import type { TargetSpec } from "./types";

/**
 * What config may say about every store's targets, by target `type`. Pure (zod only): the
 * configuration layer and `ci-key-rotation policy` load this without the Pulumi SDK. The stores
 * with their resources are in `./index`. Adding a store: a folder with `spec.ts` and `store.ts`,
 * one line here, one in `./index`, and its target type in `Target`.
 */
const specs: TargetSpec<any>[] = [githubSpec, gitlabSpec, s3Spec, secretsManagerSpec, ssmParameterSpec];

/** Any target of any store, as validated config. */
export type Target = GithubTarget | GitlabTarget | S3EnvFileTarget | SecretsManagerTarget | SsmParameterTarget;

const byType = new Map<string, TargetSpec<Target>>();
for (const spec of specs) {
    for (const schema of spec.schemas) byType.set(schema.shape.type.value as string, spec);
}

/** The schema of one target: its `type` picks the store's schema. */
export const targetSchema = z.discriminatedUnion(
    "type",
    specs.flatMap((s) => s.schemas) as unknown as [z.ZodObject<{ type: z.ZodLiteral<string> }>, ...z.ZodObject<{ type: z.ZodLiteral<string> }>[]],
) as unknown as z.ZodType<Target>;

/** Every stack config key some store's dynamic provider reads in `configure`. */
export const dynamicProviderConfigKeys: readonly string[] = [...new Set(specs.flatMap((s) => s.dynamicProviderConfig ?? []))];

/** The spec of the store that handles a target type. */
export function specFor(type: string): TargetSpec<Target> {
    const spec = byType.get(type);
    if (!spec) throw new Error(`No secret store handles target type \`${type}\``);
    return spec;
}
