import { z } from "zod";
import { githubStore, type GithubTarget } from "./github/store";
import { gitlabStore, type GitlabTarget } from "./gitlab/store";
import type { TargetStore } from "./types";

/**
 * Every secret store, by the target `type`s it handles. Adding a store: one module implementing
 * `TargetStore`, one line here, and its target type in `Target`.
 */
const stores: TargetStore<any>[] = [githubStore, gitlabStore];

/** Any target of any store, as validated config. */
export type Target = GithubTarget | GitlabTarget;

const byType = new Map<string, TargetStore<Target>>();
for (const store of stores) {
    for (const schema of store.schemas) byType.set(schema.shape.type.value as string, store);
}

/** The schema of one target: its `type` picks the store's schema. */
export const targetSchema = z.discriminatedUnion(
    "type",
    stores.flatMap((s) => s.schemas) as unknown as [z.ZodObject<{ type: z.ZodLiteral<string> }>, ...z.ZodObject<{ type: z.ZodLiteral<string> }>[]],
) as unknown as z.ZodType<Target>;

/** Every stack config key some store's dynamic provider reads in `configure`. */
export const dynamicProviderConfigKeys: readonly string[] = [...new Set(stores.flatMap((s) => s.dynamicProviderConfig ?? []))];

/** The store that handles a target type. */
export function storeFor(type: string): TargetStore<Target> {
    const store = byType.get(type);
    if (!store) throw new Error(`No secret store handles target type \`${type}\``);
    return store;
}
