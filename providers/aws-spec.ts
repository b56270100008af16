import { z } from "zod";

/**
 * Config rules shared by the AWS-native stores' specs. Pure (zod only), like every spec.
 */

/**
 * A KMS key as Secrets Manager's `KmsKeyId` and SSM's `KeyId` accept it: key id (or multi-Region
 * `mrk-` id), key ARN, alias name or alias ARN.
 */
export const kmsKeyPattern =
    /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias\/[A-Za-z0-9/_-]{1,250}|arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:(key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})|alias\/[A-Za-z0-9/_-]{1,250}))$/;

/** A target's optional `kmsKey`: any form {@link kmsKeyPattern} accepts. */
export const kmsKeyReference = z
    .string({ error: "must be a KMS key id, key ARN, alias or alias ARN" })
    .regex(kmsKeyPattern, 'must be a KMS key id, key ARN, alias ("alias/ci") or alias ARN');

/** A tag key as Secrets Manager and SSM allow it (the AWS tagging rules; `aws:` is reserved). */
export const awsTagKey = z
    .string()
    .min(1)
    .max(128, "must be at most 128 characters")
    .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u, "may hold letters, digits, spaces and _.:/=+-@ only")
    .refine((k) => !/^aws:/i.test(k), 'must not start with "aws:" (AWS reserves the prefix)');
