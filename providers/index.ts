import { secretsManagerStore } from "./aws-secrets-manager/store";
import { ssmParameterStore } from "./aws-ssm-parameter/store";
import { githubStore } from "./github/store";
import { gitlabStore } from "./gitlab/store";
import { s3Store } from "./s3/store";
import type { Target } from "./specs";
import type { TargetStore } from "./types";

export { dynamicProviderConfigKeys, specFor, targetSchema, type Target } from "./specs";

/**
 * Every secret store with its resources, by the target `type`s it handles. This loads the Pulumi
 * SDK and the providers' packages: only the Pulumi program imports it (config uses `./specs`).
 */
const stores: TargetStore<any>[] = [githubStore, gitlabStore, s3Store, secretsManagerStore, ssmParameterStore];

const byType = new Map<string, TargetStore<Target>>();
for (const store of stores) {
    for (const schema of store.schemas) byType.set(schema.shape.type.value as string, store);
}

/** The store that handles a target type. */
export function storeFor(type: string): TargetStore<Target> {
    const store = byType.get(type);
    if (!store) throw new Error(`No secret store handles target type \`${type}\``);
    return store;
}
