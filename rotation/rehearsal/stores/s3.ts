import { keyNames, objectKey, type S3EnvFileTarget } from "../../../providers/s3/spec";
import type { ResourceModel, TargetView } from "../targets";
import type { Credentials, SecretStores, StoredValue, World } from "../world";

/**
 * The rehearsal's S3 env files: the object resource (`aws.s3.BucketObjectv2`), the managed bucket
 * policy, and the consumer, a container whose entrypoint reads the file when it starts.
 *
 * As in S3, an object records the KMS key it was encrypted with, and a GetObject is decrypted
 * with the READER's permissions: a principal the key does not let decrypt gets AccessDenied and
 * the container starts without a key. A container keeps the key it started with for its whole
 * life (the jobs' `longestMs` stands for the longest container lifetime): one that outlives
 * `overlap` still uses the old key when it is deactivated.
 */

/** The store address of an object: bucket names are lower-case, keys case-sensitive. */
export function s3Address(bucket: string, key: string): string {
    return `s3:${bucket}/${key}`;
}

/** The principal a container reads the file as, when the target names no `readers`. */
export const defaultContainerRole = "arn:aws:iam::123456789012:role/container-task";

/**
 * `aws:s3/bucketObjectv2:BucketObjectv2`. terraform-provider-aws internal/service/s3/object.go:
 * `bucket` and `key` are ForceNew; content, key and metadata changes re-upload in place
 * (`hasObjectContentChanges` → `resourceObjectUpload`); Read returns the metadata and a new
 * version id. Delete (the engine's) clears the address, every version with it.
 */
export const s3ObjectModel: ResourceModel = {
    replaceOn: ["bucket", "key"],
    writes: (i) => [
        {
            address: s3Address(String(i.bucket), String(i.key)),
            value: String(i.content ?? ""),
            secret: true,
            meta: { kmsKeyId: i.kmsKeyId, serverSideEncryption: i.serverSideEncryption, bucketKeyEnabled: i.bucketKeyEnabled === true },
        },
    ],
    outputs: (i, ctx) => ({
        // HeadObject after the upload: the metadata S3 holds (the target check's evidence).
        metadata: i.metadata,
        versionId: `v-${ctx.clock.now()}`,
        kmsKeyId: i.kmsKeyId,
    }),
    id: (i) => `${String(i.bucket)}/${String(i.key)}`,
};

/** `aws:s3/bucketPolicy:BucketPolicy`: one document per bucket, not read by consumers here. */
export const s3BucketPolicyModel: ResourceModel = {
    replaceOn: ["bucket"],
    writes: (i) => [{ address: `s3-policy:${String(i.bucket)}`, value: String(i.policy ?? ""), secret: false }],
};

/**
 * What `set -a; . file` leaves in the environment for the lines the program writes: `NAME=value`
 * or `NAME='value'`; comments and blank lines are skipped.
 */
export function parseEnvFile(text: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(?:'([^']*)'|([^'\s]*))$/.exec(line);
        if (m) env[m[1]] = m[2] ?? m[3];
    }
    return env;
}

// One ciphertext per stored value: what S3 holds encrypted under the object's key.
const ciphertexts = new WeakMap<StoredValue, string>();

/**
 * GetObject as `principal`: the plaintext, or the error S3 returns. S3 asks KMS to decrypt with
 * the caller's permissions, with the encryption context `aws:s3:arn` (the bucket's ARN with a
 * bucket key, else the object's).
 */
export function getObject(stores: SecretStores, world: World, bucket: string, key: string, principal: string): { body: string } | { error: string } {
    const stored = stores.read(s3Address(bucket, key));
    if (!stored) return { error: "NoSuchKey: The specified key does not exist." };
    const keyArn = String(stored.meta?.kmsKeyId ?? "");
    const context = { "aws:s3:arn": stored.meta?.bucketKeyEnabled ? `arn:aws:s3:::${bucket}` : `arn:aws:s3:::${bucket}/${key}` };
    // The key exists outside the program (a team's key): known to KMS from its first use.
    // By its key id: the fake names every key in one region, and `ensureKey` of an ARN from
    // another region would make a second record of the same key (with an open policy).
    const known = world.kms.ensureKey(keyArn.replace(/^arn:[^:]+:kms:[^:]*:\d*:key\//, ""));
    let blob = ciphertexts.get(stored);
    if (!blob) {
        blob = world.kms.encrypt(known, stored.value, context);
        ciphertexts.set(stored, blob);
    }
    try {
        return { body: world.kms.decrypt(principal, blob, context, undefined, "s3.us-east-1.amazonaws.com") };
    } catch (err) {
        // S3 answers AccessDenied when KMS refuses the reader.
        return { error: `AccessDenied: ${(err as Error).message}` };
    }
}

/** The view of an `aws-s3-env-file` target: what the object holds, and a container reading it at start. */
export function s3View(target: S3EnvFileTarget, label: string): TargetView {
    const names = keyNames(target);
    const key = objectKey(target);
    const principal = target.readers?.[0] ?? defaultContainerRole;
    const credentialsIn = (text: string | undefined): Credentials => {
        const env = parseEnvFile(text ?? "");
        return { accessKeyId: env[names.accessKeyId], secret: env[names.secretAccessKey] };
    };
    return {
        label,
        holds: (s) => credentialsIn(s.read(s3Address(target.bucket, key))?.value),
        consumers: [
            {
                label: `container reading s3://${target.bucket}/${key} as ${principal}`,
                read: (stores, world) => {
                    const got = getObject(stores, world, target.bucket, key, principal);
                    // The entrypoint's `aws s3 cp` fails: the container starts without a key.
                    return "body" in got ? credentialsIn(got.body) : {};
                },
            },
        ],
    };
}
