/**
 * KMS in the rehearsal: the set's key, its alias and the ciphertexts of encrypting GitHub and
 * GitLab targets (providers/kms), and what a job on a runner with a role reads from such a target:
 * the ciphertext, decrypted with its principal and the target's encryption context at job time.
 */
import type { SetKms } from "../../core/config";
import type { EncryptConfig } from "../../../providers/kms/spec";
import { ApiError, type Credentials } from "../world";
import type { ResourceModel, TargetView } from "../targets";

/**
 * The role a rehearsal job decrypts as: the set's first decrypter when the set manages its key;
 * otherwise (an existing key, whose policy is not the program's) a runner role the fake key lets
 * decrypt.
 */
export function runnerPrincipal(kms: SetKms | undefined): string {
    return kms?.create ? kms.decrypters[0] : "arn:aws:iam::123456789012:role/ci-runner";
}

/**
 * Resource models, as terraform-provider-aws internal/service/kms behaves:
 * - key.go: ForceNew only `custom_key_store_id`, `customer_master_key_spec`, `key_usage`,
 *   `multi_region`, `xks_key_id`; the policy is put on create and on update (PutKeyPolicy).
 * - alias.go: `name` ForceNew; a new target key is UpdateAlias.
 * - ciphertext.go: `key_id`, `plaintext`, `context` ForceNew; create is one Encrypt; Read and
 *   Delete do nothing (deleting a replaced ciphertext removes nothing).
 */
export const kmsResourceModels: Record<string, ResourceModel> = {
    "aws:kms/key:Key": {
        replaceOn: ["customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"],
        outputs(inputs, ctx) {
            // Create and update both land here (the engine gives a model no old outputs): the key is
            // found again by the set it belongs to, so an update keeps its ARN as in KMS.
            const set = String((inputs.tags as Record<string, string> | undefined)?.CredentialSet ?? "unnamed");
            const arn = ctx.world.kms.ensureKey(`set-${set}`, []);
            if (typeof inputs.policy === "string") ctx.world.kms.putKeyPolicy(arn, inputs.policy);
            return { arn, keyId: arn.split("/").at(-1)! };
        },
        id: (_, outputs) => String(outputs.keyId),
    },
    "aws:kms/alias:Alias": {
        replaceOn: ["name", "namePrefix"],
        outputs(inputs, ctx) {
            const arn = ctx.world.kms.resolve(String(inputs.targetKeyId));
            if (!arn) throw new ApiError("NotFoundException", `Key '${String(inputs.targetKeyId)}' does not exist`);
            ctx.world.kms.setAlias(String(inputs.name), arn);
            return { arn: `arn:aws:kms:us-east-1:123456789012:${String(inputs.name)}`, targetKeyArn: arn };
        },
        id: (inputs) => String(inputs.name),
    },
    "aws:kms/ciphertext:Ciphertext": {
        replaceOn: ["keyId", "plaintext", "context"],
        outputs(inputs, ctx) {
            const keyId = String(inputs.keyId);
            // A key the config names but the program does not manage exists outside: the rehearsal
            // makes it on first use, with a policy that lets the runner role decrypt.
            if (!ctx.world.kms.resolve(keyId)) ctx.world.kms.ensureKey(keyId, "any");
            return { ciphertextBlob: ctx.world.kms.encrypt(keyId, String(inputs.plaintext), (inputs.context ?? {}) as Record<string, string>) };
        },
    },
};

/**
 * The view of an encrypting target: it holds the key id and the ciphertext; the simulator's
 * bookkeeping (I2-I4) decrypts with the exact context and no principal, a job decrypts as the
 * runner's role at job time and fails (its reason recorded) when KMS refuses.
 */
export function decryptingView(view: TargetView, encrypt: EncryptConfig, principal: string): TargetView {
    const open = (c: Credentials, decrypt: (ciphertext: string) => string): Credentials => {
        if (c.secret === undefined) return c;
        try {
            return { accessKeyId: c.accessKeyId, secret: decrypt(c.secret) };
        } catch (err) {
            return { accessKeyId: c.accessKeyId, error: `the job could not decrypt the secret: ${(err as Error).message}` };
        }
    };
    return {
        label: view.label,
        holds: (stores) => {
            const c = view.holds(stores);
            return { accessKeyId: c.accessKeyId, secret: c.secret === undefined ? undefined : (stores.kms?.peek(c.secret, encrypt.context) ?? c.secret) };
        },
        consumers: view.consumers.map((consumer) => ({
            ...consumer,
            read: (stores, world, at) => open(consumer.read(stores, world, at), (ciphertext) => world.kms.decrypt(principal, ciphertext, encrypt.context, at)),
        })),
    };
}
