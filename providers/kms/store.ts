import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DeclareContext } from "../types";
import type { EncryptConfig } from "./spec";

/**
 * The value an encrypting target writes instead of the secret access key: its KMS ciphertext
 * (base64), made with the target's encryption context, with `encrypt.key` or else the set's key.
 *
 * The `aws.kms.Ciphertext` resource, not the data source: the data source encrypts again on every
 * run (a new ciphertext each time, so every target would be written every hour), the resource
 * encrypts once and keeps the ciphertext in state. terraform-provider-aws
 * internal/service/kms/ciphertext.go: `plaintext`, `context` and `key_id` are ForceNew (a new key
 * or context replaces it, i.e. encrypts again), `plaintext` is Sensitive (the bridge stores it
 * as a secret; `additionalSecretOutputs` says so for any provider version), `ciphertext_blob` is
 * not (it may be plain in state: it is useless without Decrypt on the key with the context), Read
 * and Delete do nothing (deleting the replaced one removes nothing a consumer reads).
 */
export function ciphertextFor(
    encrypt: EncryptConfig,
    plaintext: pulumi.Output<string>,
    ctx: DeclareContext,
    suffix: string,
): { value: pulumi.Output<string>; resource: aws.kms.Ciphertext } {
    const keyId = encrypt.key ?? ctx.kmsKeyArn;
    // Config validation requires a key (config.ts); this guards callers that skip it.
    if (keyId === undefined) throw new Error(`\`${ctx.configPath}.encrypt.key\` is required when the set has no \`kms\` key: name a KMS key, or give the set one`);
    const resource = new aws.kms.Ciphertext(
        `${ctx.resourceName}-${suffix}-ciphertext`,
        { keyId, plaintext: pulumi.secret(plaintext), context: encrypt.context },
        {
            parent: ctx.parent,
            additionalSecretOutputs: ["plaintext"],
            aliases: ctx.previousResourceNames.map((previous) => ({ name: `${previous}-${suffix}-ciphertext` })),
        },
    );
    return { value: resource.ciphertextBlob, resource };
}
