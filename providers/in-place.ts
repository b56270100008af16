import type * as pulumi from "@pulumi/pulumi";

/**
 * Resources that hold the key and that a bridged Terraform SDKv2 provider updates in place (a
 * GitHub secret, an SSM parameter, an S3 object), with the resources of the same target whose
 * outputs or `dependsOn` they wait on.
 *
 * A failed update of such a resource saves the planned value: SDKv2 returns the state merged with
 * the planned diff along with the error (terraform-plugin-sdk helper/schema/resource.go `Apply`,
 * `data.State()` outside partial mode), the bridge hands it on (pulumi-terraform-bridge
 * pkg/tfbridge/provider.go `Update`, `initializationError`) and the engine records it (pulumi/pulumi
 * sdk/go/common/resource/plugin/provider_plugin.go `Update`). The next run declaring the same
 * value finds no difference, while the store keeps the old one.
 *
 * A resource whose registration fails because a resource it waits on failed was never sent to
 * its provider: the engine skips the steps that depend on a failed one under
 * `--continue-on-error` (pulumi/pulumi pkg/resource/deploy/deployment_executor.go
 * `handleSingleEvent`, `doesStepDependOn`), or the SDK never registers a resource whose input
 * rejected. The Node SDK rejects the outputs of both alike (sdk/nodejs/runtime/resource.ts
 * `registerResource`: any result but `SUCCESS`), so the program tells a refused write from a skip
 * by what the resource waits on. A skipped resource's record is unchanged.
 */
const waitsOn = new WeakMap<pulumi.Resource, readonly pulumi.Resource[]>();

/** Mark `resource` as updated in place by a bridged provider, after the resources in `after`. */
export function updatedInPlace<R extends pulumi.Resource>(resource: R, after: readonly pulumi.Resource[] = []): R {
    waitsOn.set(resource, after);
    return resource;
}

/** What a resource marked by {@link updatedInPlace} waits on; undefined when it is not marked. */
export function inPlaceAfter(resource: pulumi.Resource): readonly pulumi.Resource[] | undefined {
    return waitsOn.get(resource);
}
