/**
 * AWS Secrets Manager in the rehearsal: secrets, versions with staging labels, the KMS key that
 * encrypts them, the readers' resource policy, and a consumer that reads AWSCURRENT at job time.
 *
 * The store keeps everything in the world's {@link SecretStores} so that a job reads it as it
 * was at its own instant:
 * - `aws-sm:<name>:secret` — that the secret exists (the Secret resource's write: gone when it is
 *   deleted), and `aws-sm:<name>:meta`, its ARN and KMS key;
 * - `aws-sm:<name>:secret:policy` — the resource policy (the SecretPolicy resource's write);
 * - `aws-sm:<name>:version:<id>` — a version's value (plaintext JSON, and the KMS ciphertext the
 *   consumer must decrypt);
 * - `aws-sm:<name>:stage:AWSCURRENT` / `AWSPREVIOUS` — which version holds the label.
 * Versions and labels are written by the version's create, not recorded as the resource's own
 * writes, so deleting a replaced version resource does not delete them: its delete in
 * terraform-provider-aws (internal/service/secretsmanager/secret_version.go
 * `resourceSecretVersionDelete`) only removes labels other than AWSCURRENT from the old version,
 * and the old resource's recorded labels are AWSCURRENT (read when it was written), so it removes
 * nothing. PutSecretValue with VersionStages=[AWSCURRENT] moves AWSCURRENT to the new version and
 * AWSPREVIOUS to the one that had it (PutSecretValue API reference), as modelled in `put`.
 */
import type { Credentials, SecretStores, World } from "../world";
import { ApiError, fakeAccountId, operatorPrincipal } from "../world";
import type { Consumer, ResourceModel, TargetView } from "../targets";
import { jsonKeys, secretNameOf, type SecretsManagerTarget } from "../../../providers/aws-secrets-manager/spec";

/** The AWS-managed key Secrets Manager uses when a secret names none. */
export const awsManagedKey = "alias/aws/secretsmanager";

/** The service endpoint Secrets Manager calls KMS from (`kms:ViaService`), in the fake's region. */
const viaSecretsManager = "secretsmanager.us-east-1.amazonaws.com";

/** The role a same-account consumer reads with when the target names no readers (its own IAM policy grants it). */
export const defaultReader = `arn:aws:iam::${fakeAccountId}:role/ci-runner`;

const secretAddress = (name: string) => `aws-sm:${name}:secret`;
const versionAddress = (name: string, id: string) => `aws-sm:${name}:version:${id}`;
const stageAddress = (name: string, stage: string) => `aws-sm:${name}:stage:${stage}`;

interface SecretMeta {
    arn: string;
    keyArn: string;
    /** Encrypted under `aws/secretsmanager`, which only principals of the secret's account can use. */
    awsManaged: boolean;
}

const metaAddress = (name: string) => `aws-sm:${name}:meta`;
const policyAddress = (name: string) => `${secretAddress(name)}:policy`;

const versionCounters = new WeakMap<World, number>();

/** The secret, if it exists. */
function secretOf(stores: SecretStores, name: string): SecretMeta | undefined {
    const meta = stores.read(metaAddress(name));
    return stores.read(secretAddress(name)) && meta ? (JSON.parse(meta.value) as SecretMeta) : undefined;
}

/** The principals the secret's resource policy names. */
function readersOf(stores: SecretStores, name: string): string[] {
    const policy = stores.read(policyAddress(name));
    if (!policy) return [];
    return (JSON.parse(policy.value) as { Statement: { Principal: { AWS: string[] } }[] }).Statement.flatMap((st) => st.Principal.AWS);
}

/** The secret's name from a version's `secretId` (the secret's ARN, `...:secret:<name>-XXXXXX`). */
function nameFromArn(arn: string): string {
    return arn.replace(/^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:/, "").replace(/-[A-Za-z0-9]{6}$/, "");
}

/**
 * PutSecretValue with VersionStages=[AWSCURRENT]: a new version, encrypted under the secret's
 * key with the secret's ARN as encryption context, that takes AWSCURRENT; the version that had
 * it becomes AWSPREVIOUS, and the one that was AWSPREVIOUS loses its last label.
 */
function put(world: World, name: string, secretString: string, at: number): { versionId: string; arn: string } {
    const secret = secretOf(world.stores, name);
    if (!secret) throw new ApiError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
    const n = (versionCounters.get(world) ?? 0) + 1;
    versionCounters.set(world, n);
    const versionId = `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
    const ciphertext = world.kms.encrypt(secret.keyArn, secretString, { SecretARN: secret.arn });
    // The provider reads the version back as the operator (terraform-provider-aws
    // internal/service/secretsmanager/secret_version.go read: GetSecretValue), which Secrets
    // Manager decrypts on the operator's behalf: a key policy that refuses it fails the write.
    // (Only keys with a modelled key policy: the others model their readers alone.)
    if (world.kms.hasPolicy(secret.keyArn)) world.kms.decrypt(operatorPrincipal, ciphertext, { SecretARN: secret.arn }, undefined, "secretsmanager.us-east-1.amazonaws.com");
    world.stores.write(versionAddress(name, versionId), { value: secretString, secret: true, meta: { ciphertext } }, at);
    const current = world.stores.read(stageAddress(name, "AWSCURRENT"));
    if (current) world.stores.write(stageAddress(name, "AWSPREVIOUS"), { value: current.value, secret: false }, at);
    world.stores.write(stageAddress(name, "AWSCURRENT"), { value: versionId, secret: false }, at);
    return { versionId, arn: secret.arn };
}

/** The labels a version has now. */
function stagesOf(stores: SecretStores, name: string, versionId: string): string[] {
    return ["AWSCURRENT", "AWSPREVIOUS"].filter((s) => stores.read(stageAddress(name, s))?.value === versionId);
}

/**
 * UpdateSecret with a new KmsKeyId (the Secret's in-place update): Secrets Manager re-encrypts the
 * versions labelled AWSCURRENT, AWSPENDING and AWSPREVIOUS with the new key and keeps them
 * encrypted with the previous key as well, so either key decrypts them (AWS Secrets Manager User
 * Guide, "Change the encryption key for a secret"; UpdateSecret `KmsKeyId`: given kms:Encrypt on
 * the new key, which the operator's policy grants). Older versions stay under their old keys.
 */
function reencrypt(world: World, name: string, meta: SecretMeta, at: number): void {
    for (const stage of ["AWSCURRENT", "AWSPREVIOUS"]) {
        const versionId = world.stores.read(stageAddress(name, stage))?.value;
        const version = versionId ? world.stores.read(versionAddress(name, versionId)) : undefined;
        if (!versionId || !version) continue;
        const ciphertexts = [...((version.meta?.ciphertexts as string[] | undefined) ?? [String(version.meta?.ciphertext)])];
        ciphertexts.push(world.kms.encrypt(meta.keyArn, version.value, { SecretARN: meta.arn }));
        world.stores.write(versionAddress(name, versionId), { value: version.value, secret: true, meta: { ...version.meta, ciphertexts } }, at);
    }
}

/** `aws.secretsmanager.Secret`: terraform-provider-aws secret.go, `name` ForceNew, the rest in place. */
const secretModel: ResourceModel = {
    replaceOn: ["name", "namePrefix"],
    writes: (i) => [{ address: secretAddress(String(i.name)), value: "exists", secret: false }],
    outputs(i, ctx) {
        const name = String(i.name);
        // Secrets Manager appends six random characters to the ARN; fixed here, as the name is unique.
        const arn = `arn:aws:secretsmanager:us-east-1:${fakeAccountId}:secret:${name}-Rh3arS`;
        // A key the rehearsal does not know is made for it; the AWS-managed key lets any principal of the account decrypt.
        // The secret as it was before this operation: none on a create, even when a deleted
        // secret of the same name left its meta behind (the engine has just written the address).
        const existed = ctx.world.stores.asOf(ctx.clock.now() - 1).read(secretAddress(name)) !== undefined;
        const before = existed ? secretOf(ctx.world.stores, name) : undefined;
        // A new secret has no versions: labels a deleted secret of the same name left are gone.
        if (!existed) for (const stage of ["AWSCURRENT", "AWSPREVIOUS"]) if (ctx.world.stores.read(stageAddress(name, stage))) ctx.world.stores.delete(stageAddress(name, stage), ctx.clock.now());
        // An update without kmsKeyId keeps the secret's key: secret.go `resourceSecretUpdate` sends
        // `KmsKeyId` only when `d.GetOk("kms_key_id")`, and UpdateSecret without it changes no key.
        const keep = i.kmsKeyId === undefined && before !== undefined;
        const keyArn = keep ? before.keyArn : ctx.world.kms.ensureKey(String(i.kmsKeyId ?? awsManagedKey));
        const meta: SecretMeta = { arn, keyArn, awsManaged: keep ? before.awsManaged : i.kmsKeyId === undefined };
        ctx.world.stores.write(metaAddress(name), { value: JSON.stringify(meta), secret: false }, ctx.clock.now());
        if (before && before.keyArn !== keyArn) reencrypt(ctx.world, name, meta, ctx.clock.now());
        return { arn, name };
    },
    id: (_, o) => String(o.arn),
};

/**
 * `aws.secretsmanager.SecretVersion`: secret_version.go, every value input ForceNew; create is
 * PutSecretValue then a read of that version (its id and labels); `version_stages` alone updates
 * in place by moving labels. A replaced version's delete removes nothing (see the file header).
 */
const versionModel: ResourceModel = {
    replaceOn: ["secretId", "secretString", "secretBinary", "secretStringWo", "secretStringWoVersion"],
    outputs(i, ctx) {
        const name = nameFromArn(String(i.secretId));
        const { versionId, arn } = put(ctx.world, name, String(i.secretString ?? ""), ctx.clock.now());
        return { versionId, versionStages: stagesOf(ctx.world.stores, name, versionId), arn };
    },
    id: (i, o) => `${String(i.secretId)}|${String(o.versionId)}`,
};

/** `aws.secretsmanager.SecretPolicy`: PutResourcePolicy; its delete is DeleteResourcePolicy. */
const policyModel: ResourceModel = {
    replaceOn: ["secretArn"],
    writes: (i) => [{ address: policyAddress(nameFromArn(String(i.secretArn))), value: String(i.policy ?? ""), secret: false }],
};

/** Resource models of the store, by type token (registered in rotation/rehearsal/targets.ts). */
export const secretsManagerModels: Record<string, ResourceModel> = {
    "aws:secretsmanager/secret:Secret": secretModel,
    "aws:secretsmanager/secretVersion:SecretVersion": versionModel,
    "aws:secretsmanager/secretPolicy:SecretPolicy": policyModel,
};

/**
 * GetSecretValue of a stage as `principal`: the secret must exist, the principal must be in the
 * resource policy unless it is of the secret's own account (then its identity policy grants it,
 * as `ci-key-rotation policy --readers` prints it), and KMS must let it decrypt with the secret's
 * ARN as context. Any refusal reads as no credentials (the wrapper that fetches the secret fails
 * the job).
 */
export function getSecretValue(stores: SecretStores, world: World, name: string, stage: string, principal: string): { value?: string; error?: string } {
    const secret = secretOf(stores, name);
    if (!secret) return { error: "ResourceNotFoundException: Secrets Manager can't find the specified secret." };
    const sameAccount = principal.split(":")[4] === fakeAccountId;
    const policyRead = readersOf(stores, name).includes(principal);
    if (!sameAccount && !policyRead) return { error: `AccessDeniedException: ${principal} is not authorized to perform: secretsmanager:GetSecretValue` };
    const versionId = stores.read(stageAddress(name, stage))?.value;
    const version = versionId ? stores.read(versionAddress(name, versionId)) : undefined;
    if (!version) return { error: `ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: ${stage}` };
    // The AWS-managed key's policy admits only principals of its own account (UpdateSecret
    // `KmsKeyId` API reference: other accounts need a customer-managed key).
    if (secret.awsManaged && !sameAccount) return { error: `AccessDeniedException: ${principal} is not authorized to perform: kms:Decrypt on resource: ${secret.keyArn}` };
    // A version re-encrypted after a change of key decrypts with any of its keys (`reencrypt`).
    const ciphertexts = (version.meta?.ciphertexts as string[] | undefined) ?? [String(version.meta?.ciphertext)];
    let refusal = "";
    for (const ciphertext of ciphertexts) {
        try {
            return { value: world.kms.decrypt(principal, ciphertext, { SecretARN: secret.arn }, undefined, viaSecretsManager) };
        } catch (err) {
            refusal ||= (err as Error).message;
        }
    }
    return { error: refusal };
}

function parse(value: string | undefined, t: SecretsManagerTarget): Credentials {
    if (value === undefined) return {};
    try {
        const k = jsonKeys(t);
        const o = JSON.parse(value) as Record<string, string>;
        return { accessKeyId: o[k.accessKeyId], secret: o[k.secretAccessKey] };
    } catch {
        return {};
    }
}

/** What the secret holds at AWSCURRENT, read with the operator's view (no KMS or policy in the way). */
function holdsCurrent(stores: SecretStores, t: SecretsManagerTarget): Credentials {
    const name = secretNameOf(t);
    if (!stores.read(secretAddress(name))) return {};
    const versionId = stores.read(stageAddress(name, "AWSCURRENT"))?.value;
    return parse(versionId ? stores.read(versionAddress(name, versionId))?.value : undefined, t);
}

/**
 * The target as the simulator sees it: the secret's AWSCURRENT, and one consumer, a job wrapper
 * that fetches AWSCURRENT with its principal's identity (the first reader, or a role of the same
 * account) right before the step runs.
 */
export function secretsManagerView(t: SecretsManagerTarget, label: string): TargetView {
    const name = secretNameOf(t);
    const principal = t.readers?.[0] ?? defaultReader;
    const consumer: Consumer = {
        label: `job reading secret ${name} as ${principal}`,
        read: (stores, world) => parse(getSecretValue(stores, world, name, "AWSCURRENT", principal).value, t),
    };
    return { label, holds: (s) => holdsCurrent(s, t), consumers: [consumer] };
}
