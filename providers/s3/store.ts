import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { updatedInPlace } from "../in-place";
import type { TargetStore, WriteEvidence } from "../types";
import { accessKeyIdMetadata, bucketPolicyStatements, envFileText, objectKey, s3Spec, type S3EnvFileTarget } from "./spec";

export type { S3EnvFileTarget } from "./spec";

/** The env-file object of each target `declare` made, for `confirmWrites`. */
const envFiles = new WeakMap<pulumi.Resource, string>();

/** The resource name of a managed bucket policy: by bucket alone, whatever the key. */
export function bucketPolicyResourceName(bucket: string): string {
    return `s3-bucket-policy-${bucket}`;
}

/**
 * S3 env files with SSE-KMS (`aws.s3.BucketObjectv2`, terraform-provider-aws `aws_s3_object`).
 *
 * What the provider does with the object (internal/service/s3/object.go):
 * - `bucket` and `key` are ForceNew; every other input we set (`content`, `kms_key_id`,
 *   `metadata`, `content_type`, `bucket_key_enabled`, `server_side_encryption`) is in
 *   `hasObjectContentChanges`, so `resourceObjectUpdate` uploads the object again in place
 *   (PutObject): a rotation overwrites the file, it is never deleted and re-created.
 * - `resourceObjectDelete`: in a versioned bucket (`version_id` set) it deletes EVERY version of
 *   the key (`deleteAllObjectVersions`, internal/service/s3/delete.go), else the object. A
 *   replacement therefore must never have the old and new resource name the same object: the
 *   key is validated so the provider's key cleaning (`sdkv1CompatibleCleanKey`) cannot fold two
 *   spellings together, and the resource is named by bucket and key (the label), so a moved file
 *   is a new resource at a new address and the old one's delete (after the run) takes only the
 *   old address. The default create-then-delete order keeps a file at the new address before the
 *   old one goes.
 * - Read sets `metadata` from HeadObject after every upload: the target check's evidence.
 */
export const s3Store: TargetStore<S3EnvFileTarget> = {
    ...s3Spec,

    declare(t, ctx) {
        const kmsKeyId = t.kmsKey ?? ctx.kmsKeyArn;
        // Config validation refuses this (`checkInSet`); a set key that is absent at run time is
        // a wiring fault, and an unencrypted (or S3-key) file would leak to any reader.
        if (kmsKeyId === undefined) throw new Error(`\`${ctx.configPath}.kmsKey\` is required when the set has no KMS key: give the ARN of the key readers may decrypt with`);
        const key = objectKey(t);
        const rn = (suffix: string) => `${ctx.resourceName}-${suffix}`;
        const setName = ctx.setName;
        // The text is built inside `apply` from the two Outputs and stays a secret Output; a
        // value that cannot be written names the variable, never the value.
        const content = pulumi.secret(pulumi.all([ctx.key.accessKeyId, ctx.key.secretAccessKey]).apply(([id, secret]) => envFileText(t, setName, id, secret)));
        let bucketPolicy: aws.s3.BucketPolicy | undefined;
        if (t.bucketPolicy === "manage") {
            // A bucket has ONE policy: aws_s3_bucket_policy PUTs the whole document and its
            // Delete calls DeleteBucketPolicy (internal/service/s3/bucket_policy.go
            // `resourceBucketPolicyDelete`). It is named by the bucket alone, so changing the
            // key updates it in place instead of creating a second resource for the same bucket
            // whose old twin's delete, after the run, would remove the policy just written.
            const policy = pulumi.output(kmsKeyId).apply((arn) => JSON.stringify({ Version: "2012-10-17", Statement: bucketPolicyStatements(t, arn) }));
            bucketPolicy = new aws.s3.BucketPolicy(bucketPolicyResourceName(t.bucket), { bucket: t.bucket, policy }, { parent: ctx.parent });
        }
        const object = new aws.s3.BucketObjectv2(
            rn("object"),
            {
                bucket: t.bucket,
                key,
                content,
                contentType: t.contentType,
                serverSideEncryption: "aws:kms",
                kmsKeyId,
                // A false value is never sent (`resourceObjectUpload` uses GetOk), and the
                // attribute is Computed: leaving it out when false avoids a diff against what the
                // bucket's default chose.
                ...(t.bucketKey ? { bucketKeyEnabled: true } : {}),
                // Written with the content in the same PutObject, read back by HeadObject.
                metadata: { [accessKeyIdMetadata]: ctx.key.accessKeyId },
                ...(t.tags && Object.keys(t.tags).length > 0 ? { tags: t.tags } : {}),
            },
            {
                parent: ctx.parent,
                // After the managed policy: it denies PutObject under any key but the target's, so
                // an upload under a new `kmsKey` that ran before the policy's update would be
                // refused by the old document (the engine orders only dependent steps).
                ...(bucketPolicy ? { dependsOn: [bucketPolicy] } : {}),
                // `content` is not Sensitive in the provider's schema: keep its output secret
                // whatever the engine infers from the secret input.
                additionalSecretOutputs: ["content"],
                aliases: ctx.previousResourceNames.map((previous) => ({ name: `${previous}-object` })),
            },
        );
        envFiles.set(object, `env file s3://${t.bucket}/${key}`);
        // `content` and `metadata` update in place (a new PutObject): see `updatedInPlace`.
        updatedInPlace(object, bucketPolicy ? [bucketPolicy] : []);
        return bucketPolicy ? [object, bucketPolicy] : [object];
    },

    confirmWrites(_t, declared) {
        const evidence: WriteEvidence[] = [];
        for (const r of declared) {
            const what = envFiles.get(r);
            if (what === undefined) continue;
            const metadata = (r as aws.s3.BucketObjectv2).metadata;
            evidence.push({ what, accessKeyId: metadata.apply((m) => m?.[accessKeyIdMetadata]) });
        }
        return evidence;
    },
};
