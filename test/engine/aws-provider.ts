/**
 * A test-only `pulumi-resource-aws` for the engine conformance suite: the resource and invoke
 * tokens this program uses, served through `@pulumi/pulumi/provider` and carried out against moto
 * (the AWS API emulator) with the AWS SDK. The real provider cannot be built from the Go module
 * proxy (pulumi-aws's go.mod replaces its upstream with a local checkout).
 *
 * Tokens (grep of index.ts, rotation/, providers/ for `aws.`): `aws:iam/user:User`,
 * `aws:iam/userPolicyAttachment:UserPolicyAttachment`, `aws:iam/userPolicy:UserPolicy`,
 * `aws:iam/accessKey:AccessKey`, and the invoke `aws:iam/getAccessKeys:getAccessKeys`.
 *
 * Diff rules and error texts follow hashicorp/terraform-provider-aws, which pulumi-aws bridges:
 * - internal/service/iam/user.go (resourceUser): `name`, `path`, `permissions_boundary`, `tags`
 *   update in place (resourceUserUpdate: UpdateUser, Put/DeleteUserPermissionsBoundary,
 *   TagUser/UntagUser); nothing replaces. Id is the user name.
 * - internal/service/iam/access_key.go (resourceAccessKey): `user` and `pgp_key` are ForceNew,
 *   `status` updates in place (UpdateAccessKey). Id is the access key id; `secret` is Sensitive,
 *   which the bridge returns as a Pulumi secret. `create_date` is RFC 3339. Delete ignores
 *   NoSuchEntity.
 * - internal/service/iam/user_policy_attachment.go: `user`, `policy_arn` ForceNew; id is
 *   `<user>-<unique suffix>` (id.PrefixedUniqueId).
 * - internal/service/iam/user_policy.go: `user`, `name`, `name_prefix` ForceNew, `policy` in place;
 *   id `<user>:<name>`.
 * - internal/service/iam/access_keys_data_source.go (dataSourceAccessKeysRead): a missing user
 *   fails with `reading IAM Access Keys (<user>): couldn't find resource` (findAccessKeysByUser
 *   wraps NoSuchEntity in a retry.NotFoundError without a message: the AWS error name is lost;
 *   also /work/shared/FACTS.md). Keys are `{ accessKeyId, createDate, status }`.
 * AWS errors read as the Go SDK prints them (`operation error IAM: <Op>, https response error
 * StatusCode: <n>, RequestID: <id>, <Code>: <message>`) after the resource's own prefix
 * (`creating IAM Access Key (<user>): ...`).
 *
 * S3 (the `aws-s3-env-file` store, providers/s3/store.ts):
 * - internal/service/s3/object.go (resourceObject, `aws_s3_object` = BucketObjectv2): `bucket` and
 *   `key` are ForceNew; `content`, `content_type`, `kms_key_id`, `metadata`, `bucket_key_enabled`,
 *   `server_side_encryption` are in `hasObjectContentChanges`, so resourceObjectUpdate uploads
 *   again in place (PutObject); `tags` update in place too (the tags interceptor; modelled here as
 *   a new upload). `content_type`, `kms_key_id`, `bucket_key_enabled`,
 *   `server_side_encryption` are Optional+Computed: left out, they never diff. Id is `<bucket>/<key>` (createObjectImportID);
 *   `version_id` and `etag` are read back by HeadObject, as `metadata` is. `content` is NOT
 *   Sensitive in the schema (the program adds it to additionalSecretOutputs). resourceObjectDelete:
 *   with a `version_id` (versioned bucket) it deletes every version and delete marker of the key
 *   (`deleteAllObjectVersions`, internal/service/s3/delete.go), else DeleteObject.
 * - internal/service/s3/bucket_policy.go: `bucket` ForceNew, `policy` in place (PutBucketPolicy);
 *   Delete is DeleteBucketPolicy; id is the bucket name.
 *
 * SSM (the `aws-ssm-parameter` store, providers/aws-ssm-parameter/store.ts):
 * - internal/service/ssm/parameter.go (resourceParameter): `name` and `data_type` are ForceNew, a
 *   tier change Advanced -> Standard forces a new parameter (CustomizeDiff ForceNewIfChange);
 *   `type`, `value`, `key_id`, `description`, `tier`, `allowed_pattern` update in place with
 *   PutParameter(Overwrite: true); tags with Add/RemoveTagsFromResource. Create is PutParameter
 *   with Overwrite false (`shouldUpdateParameter`, `overwrite` left unset). `value` is Sensitive
 *   (returned as a secret); `key_id`, `tier`, `data_type` are Optional+Computed. Id is the name.
 *   resourceParameterDelete: DeleteParameter by *name*, ParameterNotFound ignored.
 * The distribution resources (ssm Document/Association, EventBridge, iam Role) are not modelled.
 * Secrets Manager (the `aws-secrets-manager` store):
 * - internal/service/secretsmanager/secret.go: `name`, `name_prefix` ForceNew; `description`,
 *   `kms_key_id` in place (UpdateSecret), tags in place; `recovery_window_in_days` (default 30)
 *   only matters at Delete: DeleteSecret with RecoveryWindowInDays, or ForceDeleteWithoutRecovery
 *   when 0. Id is the ARN.
 * - internal/service/secretsmanager/secret_version.go: `secret_id`, `secret_string`,
 *   `secret_binary` ForceNew, `secret_string` Sensitive (returned as a secret); `version_stages`
 *   Optional+Computed, in place (resourceSecretVersionUpdate: UpdateSecretVersionStage, moving
 *   AWSCURRENT from the version holding it, never removing AWSCURRENT). Create is PutSecretValue
 *   with the given stages (AWSCURRENT moves, the old holder becomes AWSPREVIOUS). Id
 *   `<secret id>|<version id>`. resourceSecretVersionDelete removes the stages the STATE lists from
 *   that version, skipping AWSCURRENT; the version itself is never deleted.
 * `aws:secretsmanager/secretPolicy:SecretPolicy` is not modelled.
 * KMS (the set's `kms.create`, rotation/pulumi/credential-set.ts):
 * - internal/service/kms/key.go: `customer_master_key_spec`, `key_usage`, `multi_region`,
 *   `custom_key_store_id`, `xks_key_id` ForceNew (the program sets none); `description`, `policy`,
 *   `enable_key_rotation`, `deletion_window_in_days`, tags in place. Id is the key id.
 *   resourceKeyDelete: ScheduleKeyDeletion with `deletion_window_in_days` (default 30).
 * - internal/service/kms/alias.go: `name` ForceNew, `target_key_id` in place (UpdateAlias); Delete
 *   is DeleteAlias (the key stays). Id is the alias name.
 * `aws:kms/ciphertext:Ciphertext` (the `encrypt` option) is not modelled.
 *
 * Not modelled: `sesSmtpPasswordV4`, `pgpKey`/`encryptedSecret`, `forceDestroy`.
 *
 * Run as `node --import tsx test/engine/aws-provider.ts` (the launcher the suite installs as the
 * plugin binary). The engine passes its address as the first argument.
 */
import {
    AttachUserPolicyCommand,
    CreateAccessKeyCommand,
    CreateUserCommand,
    DeleteAccessKeyCommand,
    DeleteUserCommand,
    DeleteUserPermissionsBoundaryCommand,
    DeleteUserPolicyCommand,
    DetachUserPolicyCommand,
    GetUserCommand,
    IAMClient,
    ListAccessKeysCommand,
    PutUserPermissionsBoundaryCommand,
    PutUserPolicyCommand,
    TagUserCommand,
    UntagUserCommand,
    UpdateAccessKeyCommand,
    UpdateUserCommand,
} from "@aws-sdk/client-iam";
import {
    DeleteBucketPolicyCommand,
    DeleteObjectCommand,
    HeadObjectCommand,
    ListObjectVersionsCommand,
    PutBucketPolicyCommand,
    PutObjectCommand,
    S3Client,
} from "@aws-sdk/client-s3";
import {
    AddTagsToResourceCommand,
    DeleteParameterCommand,
    DescribeParametersCommand,
    GetParameterCommand,
    PutParameterCommand,
    RemoveTagsFromResourceCommand,
    SSMClient,
} from "@aws-sdk/client-ssm";
import {
    CreateSecretCommand,
    DeleteSecretCommand,
    GetSecretValueCommand,
    ListSecretVersionIdsCommand,
    PutSecretValueCommand,
    SecretsManagerClient,
    UpdateSecretCommand,
    UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import {
    CreateAliasCommand,
    CreateKeyCommand,
    DeleteAliasCommand,
    EnableKeyRotationCommand,
    KMSClient,
    PutKeyPolicyCommand,
    ScheduleKeyDeletionCommand,
    UpdateAliasCommand,
    UpdateKeyDescriptionCommand,
} from "@aws-sdk/client-kms";
import * as provider from "@pulumi/pulumi/provider";
import { randomBytes, randomUUID } from "node:crypto";

/** The wire form of a Pulumi secret (sdk/nodejs/runtime/rpc: specialSigKey / specialSecretSig). */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretValue = "1b47061264138c4ac30d75fd1eb44270";
const asSecret = (value: unknown) => ({ [secretSig]: secretValue, value });
const unwrap = (v: unknown): unknown => (v && typeof v === "object" && (v as Record<string, unknown>)[secretSig] === secretValue ? (v as { value: unknown }).value : v);

const iam = new IAMClient({
    region: process.env.AWS_REGION ?? "us-east-1",
    endpoint: process.env.AWS_ENDPOINT_URL_IAM ?? process.env.AWS_ENDPOINT_URL,
    maxAttempts: 1,
});

const s3 = new S3Client({
    region: process.env.AWS_REGION ?? "us-east-1",
    endpoint: process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
    forcePathStyle: true,
    maxAttempts: 1,
});

const ssm = new SSMClient({ region: process.env.AWS_REGION ?? "us-east-1", endpoint: process.env.AWS_ENDPOINT_URL_SSM ?? process.env.AWS_ENDPOINT_URL, maxAttempts: 1 });

const sm = new SecretsManagerClient({
    region: process.env.AWS_REGION ?? "us-east-1",
    endpoint: process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? process.env.AWS_ENDPOINT_URL,
    maxAttempts: 1,
});

const kms = new KMSClient({ region: process.env.AWS_REGION ?? "us-east-1", endpoint: process.env.AWS_ENDPOINT_URL_KMS ?? process.env.AWS_ENDPOINT_URL, maxAttempts: 1 });

type Props = Record<string, unknown>;

/** `urn:pulumi:stack::project::parent$type::name` → `type`. */
function typeOf(urn: string): string {
    const qualified = urn.split("::")[2] ?? "";
    return qualified.split("$").pop()!;
}

/** `creating IAM Access Key (u): operation error IAM: CreateAccessKey, https response error ...` */
function awsError(prefix: string, op: string, err: unknown): Error {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
    if (e?.$metadata?.httpStatusCode) {
        return new Error(
            `${prefix}: operation error IAM: ${op}, https response error StatusCode: ${e.$metadata.httpStatusCode}, ` +
                `RequestID: ${e.$metadata.requestId ?? ""}, ${e.name}: ${e.message}`,
        );
    }
    return new Error(`${prefix}: operation error IAM: ${op}, ${e?.message ?? String(err)}`);
}

const isNoSuchEntity = (err: unknown) => (err as { name?: string })?.name === "NoSuchEntityException" || (err as { name?: string })?.name === "NoSuchEntity";

async function call<T>(prefix: string, op: string, run: () => Promise<T>): Promise<T> {
    try {
        return await run();
    } catch (err) {
        throw awsError(prefix, op, err);
    }
}

const rfc3339 = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d{3}Z$/, "Z") : "");
const tagList = (tags: unknown) => Object.entries((tags ?? {}) as Record<string, string>).map(([Key, Value]) => ({ Key, Value }));
const same = (a: unknown, b: unknown) => JSON.stringify(sortSets(a) ?? null) === JSON.stringify(sortSets(b) ?? null);
/** `version_stages` is a TypeSet: order does not count. */
const sortSets = (v: unknown) => (Array.isArray(v) ? [...v].sort() : v);
const emptyToUndef = (v: unknown) =>
    v === "" || v === null || (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) ? undefined : v;

/** Inputs each type compares, which of them replace (ForceNew), and which are Optional+Computed (no diff when left out). */
const rules: Record<string, { fields: string[]; replace: string[]; computed?: string[] }> = {
    "aws:s3/bucketObjectv2:BucketObjectv2": {
        fields: ["bucket", "key", "content", "contentType", "kmsKeyId", "metadata", "bucketKeyEnabled", "serverSideEncryption", "tags"],
        replace: ["bucket", "key"],
        computed: ["contentType", "kmsKeyId", "bucketKeyEnabled", "serverSideEncryption"],
    },
    "aws:ssm/parameter:Parameter": {
        fields: ["name", "dataType", "type", "value", "keyId", "description", "tier", "allowedPattern", "tags"],
        replace: ["name", "dataType"],
        computed: ["keyId", "tier", "dataType"],
    },
    "aws:secretsmanager/secret:Secret": {
        fields: ["name", "namePrefix", "description", "kmsKeyId", "recoveryWindowInDays", "tags"],
        replace: ["name", "namePrefix"],
    },
    "aws:secretsmanager/secretVersion:SecretVersion": {
        fields: ["secretId", "secretString", "secretBinary", "versionStages"],
        replace: ["secretId", "secretString", "secretBinary"],
        computed: ["versionStages"],
    },
    "aws:kms/key:Key": {
        fields: ["description", "policy", "enableKeyRotation", "deletionWindowInDays", "tags", "customerMasterKeySpec", "keyUsage", "multiRegion"],
        replace: ["customerMasterKeySpec", "keyUsage", "multiRegion"],
        computed: ["customerMasterKeySpec", "keyUsage", "multiRegion"],
    },
    "aws:kms/alias:Alias": { fields: ["name", "targetKeyId"], replace: ["name"] },
    "aws:s3/bucketPolicy:BucketPolicy": { fields: ["bucket", "policy"], replace: ["bucket"] },
    "aws:iam/user:User": { fields: ["name", "path", "permissionsBoundary", "tags"], replace: [] },
    "aws:iam/accessKey:AccessKey": { fields: ["user", "pgpKey", "status"], replace: ["user", "pgpKey"] },
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": { fields: ["user", "policyArn"], replace: ["user", "policyArn"] },
    "aws:iam/userPolicy:UserPolicy": { fields: ["user", "name", "namePrefix", "policy"], replace: ["user", "name", "namePrefix"] },
};

/** Defaults the real schema applies in Check. */
function withDefaults(type: string, news: Props): Props {
    switch (type) {
        case "aws:iam/user:User":
            return { path: "/", ...news, tags: news.tags ?? {} };
        case "aws:iam/accessKey:AccessKey":
            return { status: "Active", ...news };
        case "aws:secretsmanager/secret:Secret":
            return { recoveryWindowInDays: 30, ...news };
        default:
            return news;
    }
}

const awsProvider: provider.Provider = {
    version: process.env.ENGINE_AWS_PLUGIN_VERSION ?? "7.48.0",

    async check(urn, _olds, news) {
        const type = typeOf(urn);
        if (!rules[type]) throw new Error(`unknown resource type ${type}: the engine suite's AWS plugin implements ${Object.keys(rules).join(", ")}`);
        return { inputs: withDefaults(type, news) };
    },

    async diff(_id, urn, olds, news) {
        const rule = rules[typeOf(urn)];
        const changed = rule.fields.filter((f) => !(rule.computed?.includes(f) && news[f] === undefined) && !same(emptyToUndef(unwrap(olds[f])), emptyToUndef(unwrap(news[f]))));
        const replaces = changed.filter((f) => rule.replace.includes(f));
        // parameter.go CustomizeDiff: ForceNewIfChange("tier") from Advanced to anything else.
        if (typeOf(urn) === "aws:ssm/parameter:Parameter" && changed.includes("tier") && olds.tier === "Advanced") replaces.push("tier");
        return { changes: changed.length > 0, replaces };
    },

    async create(urn, inputs) {
        const type = typeOf(urn);
        switch (type) {
            case "aws:iam/user:User": {
                const name = String(inputs.name);
                const out = await call(`creating IAM User (${name})`, "CreateUser", () =>
                    iam.send(
                        new CreateUserCommand({
                            UserName: name,
                            Path: inputs.path as string,
                            PermissionsBoundary: emptyToUndef(inputs.permissionsBoundary) as string | undefined,
                            Tags: tagList(inputs.tags),
                        }),
                    ),
                );
                return { id: name, outs: userOuts(inputs, out.User!.Arn!, out.User!.UserId!) };
            }
            case "aws:iam/accessKey:AccessKey": {
                const user = String(inputs.user);
                const out = await call(`creating IAM Access Key (${user})`, "CreateAccessKey", () => iam.send(new CreateAccessKeyCommand({ UserName: user })));
                const key = out.AccessKey!;
                if (inputs.status === "Inactive") {
                    await call(`updating IAM Access Key (${key.AccessKeyId})`, "UpdateAccessKey", () =>
                        iam.send(new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: key.AccessKeyId!, Status: "Inactive" })),
                    );
                }
                return {
                    id: key.AccessKeyId!,
                    outs: { user, status: inputs.status, secret: asSecret(key.SecretAccessKey), createDate: rfc3339(key.CreateDate) },
                };
            }
            case "aws:iam/userPolicyAttachment:UserPolicyAttachment": {
                const user = String(inputs.user);
                await call(`attaching IAM Policy (${inputs.policyArn}) to IAM User (${user})`, "AttachUserPolicy", () =>
                    iam.send(new AttachUserPolicyCommand({ UserName: user, PolicyArn: String(inputs.policyArn) })),
                );
                return { id: `${user}-${uniqueSuffix()}`, outs: { user, policyArn: inputs.policyArn } };
            }
            case "aws:kms/key:Key": {
                const out = await call("creating KMS Key", "CreateKey", () =>
                    kms.send(new CreateKeyCommand({ Description: inputs.description as string | undefined, Policy: inputs.policy as string | undefined, Tags: Object.entries((inputs.tags ?? {}) as Record<string, string>).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) })),
                );
                const keyId = out.KeyMetadata!.KeyId!;
                if (inputs.enableKeyRotation) await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
                return { id: keyId, outs: keyOuts(inputs, keyId, out.KeyMetadata!.Arn!) };
            }
            case "aws:kms/alias:Alias": {
                await call(`creating KMS Alias (${inputs.name})`, "CreateAlias", () => kms.send(new CreateAliasCommand({ AliasName: String(inputs.name), TargetKeyId: String(inputs.targetKeyId) })));
                return { id: String(inputs.name), outs: { name: inputs.name, targetKeyId: inputs.targetKeyId, arn: "", targetKeyArn: "" } };
            }
            case "aws:secretsmanager/secret:Secret": {
                const name = String(inputs.name);
                const out = await call(`creating Secrets Manager Secret (${name})`, "CreateSecret", () =>
                    sm.send(new CreateSecretCommand({ Name: name, Description: inputs.description as string | undefined, KmsKeyId: emptyToUndef(inputs.kmsKeyId) as string | undefined, Tags: tagList(inputs.tags) })),
                );
                return { id: out.ARN!, outs: secretOuts(inputs, out.ARN!) };
            }
            case "aws:secretsmanager/secretVersion:SecretVersion": {
                const secretId = String(inputs.secretId);
                const stages = inputs.versionStages as string[] | undefined;
                const out = await call(`putting Secrets Manager Secret (${secretId}) value`, "PutSecretValue", () =>
                    sm.send(new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: randomUUID(), SecretString: unwrap(inputs.secretString) as string, ...(stages?.length ? { VersionStages: stages } : {}) })),
                );
                return { id: `${secretId}|${out.VersionId}`, outs: await readSecretVersion(secretId, out.VersionId!) };
            }
            case "aws:ssm/parameter:Parameter":
                await putParameter(inputs, false);
                await retagParameter(String(inputs.name), {}, (inputs.tags ?? {}) as Record<string, string>);
                return { id: String(inputs.name), outs: await readParameter(inputs) };
            case "aws:s3/bucketObjectv2:BucketObjectv2":
                return { id: `${inputs.bucket}/${inputs.key}`, outs: await uploadObject(inputs) };
            case "aws:s3/bucketPolicy:BucketPolicy":
                await putBucketPolicy(inputs);
                return { id: String(inputs.bucket), outs: { bucket: inputs.bucket, policy: inputs.policy } };
            case "aws:iam/userPolicy:UserPolicy": {
                const user = String(inputs.user);
                const name = String(inputs.name);
                const policy = typeof inputs.policy === "string" ? inputs.policy : JSON.stringify(inputs.policy);
                await call(`putting IAM User (${user}) Policy (${name})`, "PutUserPolicy", () =>
                    iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: name, PolicyDocument: policy })),
                );
                return { id: `${user}:${name}`, outs: { user, name, policy } };
            }
        }
        throw new Error(`unknown resource type ${type}`);
    },

    async update(id, urn, olds, news) {
        const type = typeOf(urn);
        switch (type) {
            case "aws:iam/user:User": {
                const oldName = String(olds.name);
                const name = String(news.name);
                if (oldName !== name || olds.path !== news.path) {
                    await call(`updating IAM User (${oldName})`, "UpdateUser", () =>
                        iam.send(new UpdateUserCommand({ UserName: oldName, NewUserName: name, NewPath: news.path as string })),
                    );
                }
                if (!same(emptyToUndef(olds.permissionsBoundary), emptyToUndef(news.permissionsBoundary))) {
                    await call(`updating IAM User (${name}) permissions boundary`, news.permissionsBoundary ? "PutUserPermissionsBoundary" : "DeleteUserPermissionsBoundary", () =>
                        news.permissionsBoundary
                            ? iam.send(new PutUserPermissionsBoundaryCommand({ UserName: name, PermissionsBoundary: String(news.permissionsBoundary) }))
                            : iam.send(new DeleteUserPermissionsBoundaryCommand({ UserName: name })),
                    );
                }
                const oldTags = (olds.tags ?? {}) as Record<string, string>;
                const newTags = (news.tags ?? {}) as Record<string, string>;
                const removed = Object.keys(oldTags).filter((k) => !(k in newTags));
                if (removed.length) await call(`untagging IAM User (${name})`, "UntagUser", () => iam.send(new UntagUserCommand({ UserName: name, TagKeys: removed })));
                if (!same(oldTags, newTags)) await call(`tagging IAM User (${name})`, "TagUser", () => iam.send(new TagUserCommand({ UserName: name, Tags: tagList(newTags) })));
                const user = await call(`reading IAM User (${name})`, "GetUser", () => iam.send(new GetUserCommand({ UserName: name })));
                return { outs: userOuts(news, user.User!.Arn!, user.User!.UserId!) };
            }
            case "aws:iam/accessKey:AccessKey": {
                await call(`updating IAM Access Key (${id})`, "UpdateAccessKey", () =>
                    iam.send(new UpdateAccessKeyCommand({ UserName: String(news.user), AccessKeyId: id, Status: news.status as "Active" | "Inactive" })),
                );
                return { outs: { ...olds, status: news.status } };
            }
            case "aws:iam/userPolicy:UserPolicy": {
                const policy = typeof news.policy === "string" ? news.policy : JSON.stringify(news.policy);
                await call(`putting IAM User (${news.user}) Policy (${news.name})`, "PutUserPolicy", () =>
                    iam.send(new PutUserPolicyCommand({ UserName: String(news.user), PolicyName: String(news.name), PolicyDocument: policy })),
                );
                return { outs: { ...olds, policy } };
            }
            case "aws:kms/key:Key": {
                if (!same(olds.description, news.description)) await kms.send(new UpdateKeyDescriptionCommand({ KeyId: id, Description: String(news.description ?? "") }));
                if (!same(olds.policy, news.policy) && news.policy) await kms.send(new PutKeyPolicyCommand({ KeyId: id, Policy: String(news.policy) }));
                if (news.enableKeyRotation && !olds.enableKeyRotation) await kms.send(new EnableKeyRotationCommand({ KeyId: id }));
                return { outs: keyOuts(news, id, String(olds.arn)) };
            }
            case "aws:kms/alias:Alias":
                await kms.send(new UpdateAliasCommand({ AliasName: id, TargetKeyId: String(news.targetKeyId) }));
                return { outs: { ...olds, targetKeyId: news.targetKeyId } };
            case "aws:secretsmanager/secret:Secret": {
                if (!same(olds.description, news.description) || !same(emptyToUndef(olds.kmsKeyId), emptyToUndef(news.kmsKeyId))) {
                    await call(`updating Secrets Manager Secret (${id})`, "UpdateSecret", () =>
                        sm.send(new UpdateSecretCommand({ SecretId: id, Description: news.description as string | undefined, KmsKeyId: emptyToUndef(news.kmsKeyId) as string | undefined })),
                    );
                }
                return { outs: secretOuts(news, id) };
            }
            case "aws:secretsmanager/secretVersion:SecretVersion": {
                const [secretId, versionId] = id.split("|");
                const before = (olds.versionStages ?? []) as string[];
                const after = (news.versionStages ?? []) as string[];
                for (const stage of after.filter((s) => !before.includes(s))) {
                    let RemoveFromVersionId: string | undefined;
                    if (stage === "AWSCURRENT") {
                        const listed = await sm.send(new ListSecretVersionIdsCommand({ SecretId: secretId }));
                        RemoveFromVersionId = listed.Versions?.find((v) => v.VersionStages?.includes("AWSCURRENT"))?.VersionId;
                    }
                    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: stage, MoveToVersionId: versionId, RemoveFromVersionId }));
                }
                for (const stage of before.filter((s) => !after.includes(s) && s !== "AWSCURRENT")) {
                    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: stage, RemoveFromVersionId: versionId }));
                }
                return { outs: await readSecretVersion(secretId, versionId) };
            }
            case "aws:ssm/parameter:Parameter":
                await putParameter(news, true);
                await retagParameter(String(news.name), (olds.tags ?? {}) as Record<string, string>, (news.tags ?? {}) as Record<string, string>);
                return { outs: await readParameter(news) };
            case "aws:s3/bucketObjectv2:BucketObjectv2":
                return { outs: await uploadObject(news) };
            case "aws:s3/bucketPolicy:BucketPolicy":
                await putBucketPolicy(news);
                return { outs: { bucket: news.bucket, policy: news.policy } };
        }
        throw new Error(`${type} has no in-place update`);
    },

    async delete(id, urn, props) {
        const type = typeOf(urn);
        const ignoreMissing = async (prefix: string, op: string, run: () => Promise<unknown>) => {
            try {
                await run();
            } catch (err) {
                if (!isNoSuchEntity(err)) throw awsError(prefix, op, err);
            }
        };
        switch (type) {
            case "aws:iam/user:User":
                return ignoreMissing(`deleting IAM User (${id})`, "DeleteUser", () => iam.send(new DeleteUserCommand({ UserName: id })));
            case "aws:iam/accessKey:AccessKey":
                return ignoreMissing(`deleting IAM Access Key (${id})`, "DeleteAccessKey", () =>
                    iam.send(new DeleteAccessKeyCommand({ UserName: String(props.user), AccessKeyId: id })),
                );
            case "aws:iam/userPolicyAttachment:UserPolicyAttachment":
                return ignoreMissing(`detaching IAM Policy (${props.policyArn}) from IAM User (${props.user})`, "DetachUserPolicy", () =>
                    iam.send(new DetachUserPolicyCommand({ UserName: String(props.user), PolicyArn: String(props.policyArn) })),
                );
            case "aws:kms/key:Key":
                await call(`deleting KMS Key (${id})`, "ScheduleKeyDeletion", () => kms.send(new ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: Number(props.deletionWindowInDays || 30) })));
                return;
            case "aws:kms/alias:Alias":
                await call(`deleting KMS Alias (${id})`, "DeleteAlias", () => kms.send(new DeleteAliasCommand({ AliasName: id })));
                return;
            case "aws:secretsmanager/secret:Secret": {
                const days = Number(props.recoveryWindowInDays ?? 30);
                await call(`deleting Secrets Manager Secret (${id})`, "DeleteSecret", () =>
                    sm.send(new DeleteSecretCommand({ SecretId: id, ...(days === 0 ? { ForceDeleteWithoutRecovery: true } : { RecoveryWindowInDays: days }) })),
                ).catch((err: Error) => {
                    if (!/ResourceNotFound/.test(err.message)) throw err;
                });
                return;
            }
            case "aws:secretsmanager/secretVersion:SecretVersion": {
                const [secretId, versionId] = id.split("|");
                for (const stage of ((props.versionStages ?? []) as string[]).filter((s) => s !== "AWSCURRENT")) {
                    try {
                        await sm.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: stage, RemoveFromVersionId: versionId }));
                    } catch (err) {
                        const e = err as { name?: string; message?: string };
                        if (e.name === "ResourceNotFoundException" || /because it was (deleted|marked for deletion)/.test(e.message ?? "")) return;
                        throw awsError(`deleting Secrets Manager Secret Version (${id}) stage (${stage})`, "UpdateSecretVersionStage", err);
                    }
                }
                return;
            }
            case "aws:ssm/parameter:Parameter":
                try {
                    await ssm.send(new DeleteParameterCommand({ Name: String(props.name) }));
                } catch (err) {
                    if ((err as { name?: string })?.name !== "ParameterNotFound") throw awsError(`deleting SSM Parameter (${id})`, "DeleteParameter", err);
                }
                return;
            case "aws:s3/bucketObjectv2:BucketObjectv2":
                return deleteObject(String(props.bucket), String(props.key), Boolean(props.versionId));
            case "aws:s3/bucketPolicy:BucketPolicy":
                await s3Call(`deleting S3 Bucket Policy (${id})`, "DeleteBucketPolicy", () => s3.send(new DeleteBucketPolicyCommand({ Bucket: id })));
                return;
            case "aws:iam/userPolicy:UserPolicy":
                return ignoreMissing(`deleting IAM User Policy (${id})`, "DeleteUserPolicy", () =>
                    iam.send(new DeleteUserPolicyCommand({ UserName: String(props.user), PolicyName: String(props.name) })),
                );
        }
    },

    async read(id, urn, props) {
        const type = typeOf(urn);
        if (type === "aws:iam/accessKey:AccessKey") {
            // Import of an adopted key and refresh: the key as ListAccessKeys shows it (no secret).
            const user = String(props?.user ?? "");
            const keys = await listKeys(user);
            const key = keys.find((k) => k.accessKeyId === id);
            if (!key) return { id: "", props: {} };
            const outs = { ...props, user, status: key.status, createDate: key.createDate };
            return { id, props: outs, inputs: { user, status: key.status } };
        }
        return { id, props: props ?? {} };
    },

    async invoke(token, inputs) {
        if (token !== "aws:iam/getAccessKeys:getAccessKeys") {
            throw new Error(`unknown function ${token}: the engine suite's AWS plugin implements aws:iam/getAccessKeys:getAccessKeys`);
        }
        const user = String(inputs.user);
        return { outputs: { id: user, user, accessKeys: await listKeys(user) } };
    },
};

async function s3Call<T>(prefix: string, op: string, run: () => Promise<T>): Promise<T> {
    try {
        return await run();
    } catch (err) {
        throw new Error(awsError(prefix, op, err).message.replace("operation error IAM", "operation error S3"));
    }
}

/** resourceObjectUpload (PutObject) then resourceObjectRead (HeadObject): the outputs as the provider reads them. */
async function uploadObject(inputs: Props): Promise<Props> {
    const Bucket = String(inputs.bucket);
    const Key = String(inputs.key);
    const tags = (inputs.tags ?? {}) as Record<string, string>;
    await s3Call(`uploading S3 Object (${Key}) to Bucket (${Bucket})`, "PutObject", () =>
        s3.send(
            new PutObjectCommand({
                Bucket,
                Key,
                Body: String(unwrap(inputs.content) ?? ""),
                ContentType: inputs.contentType as string | undefined,
                ServerSideEncryption: inputs.serverSideEncryption as "aws:kms" | undefined,
                SSEKMSKeyId: inputs.kmsKeyId as string | undefined,
                BucketKeyEnabled: inputs.bucketKeyEnabled ? true : undefined,
                Metadata: unwrap(inputs.metadata) as Record<string, string> | undefined,
                Tagging: Object.keys(tags).length ? new URLSearchParams(tags).toString() : undefined,
            }),
        ),
    );
    const head = await s3Call(`reading S3 Object (${Key})`, "HeadObject", () => s3.send(new HeadObjectCommand({ Bucket, Key })));
    return {
        bucket: Bucket,
        key: Key,
        content: inputs.content,
        contentType: head.ContentType ?? "",
        serverSideEncryption: head.ServerSideEncryption ?? "",
        kmsKeyId: head.SSEKMSKeyId ?? "",
        bucketKeyEnabled: head.BucketKeyEnabled ?? false,
        metadata: head.Metadata ?? {},
        tags,
        tagsAll: tags,
        etag: (head.ETag ?? "").replace(/"/g, ""),
        versionId: head.VersionId ?? "",
    };
}

/** resourceObjectDelete: every version and delete marker of the key in a versioned bucket, else DeleteObject. */
async function deleteObject(Bucket: string, Key: string, versioned: boolean): Promise<void> {
    if (!versioned) {
        await s3Call(`deleting S3 Bucket (${Bucket}) Object (${Key})`, "DeleteObject", () => s3.send(new DeleteObjectCommand({ Bucket, Key })));
        return;
    }
    const listed = await s3Call(`listing S3 Bucket (${Bucket}) Object (${Key}) versions`, "ListObjectVersions", () => s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: Key })));
    for (const v of [...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])].filter((v) => v.Key === Key)) {
        await s3Call(`deleting S3 Bucket (${Bucket}) Object (${Key}) Version (${v.VersionId})`, "DeleteObject", () => s3.send(new DeleteObjectCommand({ Bucket, Key, VersionId: v.VersionId })));
    }
}

/** PutParameter as resourceParameterCreate (Overwrite false) and resourceParameterUpdate (Overwrite true) send it. */
async function putParameter(inputs: Props, overwrite: boolean): Promise<void> {
    const name = String(inputs.name);
    await call(`${overwrite ? "updating" : "creating"} SSM Parameter (${name})`, "PutParameter", () =>
        ssm.send(
            new PutParameterCommand({
                Name: name,
                Type: inputs.type as "SecureString" | "String" | "StringList",
                Value: String(unwrap(inputs.value)),
                KeyId: inputs.type === "SecureString" ? (inputs.keyId as string | undefined) : undefined,
                Description: inputs.description as string | undefined,
                Tier: inputs.tier as "Standard" | "Advanced" | undefined,
                AllowedPattern: inputs.allowedPattern as string | undefined,
                DataType: inputs.dataType as string | undefined,
                Overwrite: overwrite,
            }),
        ),
    ).catch((err: Error) => {
        throw new Error(err.message.replace("operation error IAM", "operation error SSM"));
    });
}

async function retagParameter(name: string, olds: Record<string, string>, news: Record<string, string>): Promise<void> {
    const removed = Object.keys(olds).filter((k) => !(k in news));
    if (removed.length) await ssm.send(new RemoveTagsFromResourceCommand({ ResourceType: "Parameter", ResourceId: name, TagKeys: removed }));
    if (Object.keys(news).length && !same(olds, news)) await ssm.send(new AddTagsToResourceCommand({ ResourceType: "Parameter", ResourceId: name, Tags: tagList(news) }));
}

/** resourceParameterRead: GetParameter(WithDecryption) and DescribeParameters; `value` a secret. */
async function readParameter(inputs: Props): Promise<Props> {
    const name = String(inputs.name);
    const got = (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter!;
    const meta = (await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Option: "Equals", Values: [name] }] }))).Parameters?.[0];
    const tags = (inputs.tags ?? {}) as Record<string, string>;
    return {
        name,
        arn: got.ARN ?? "",
        type: got.Type,
        value: asSecret(got.Value),
        insecureValue: "",
        keyId: meta?.KeyId ?? "",
        tier: meta?.Tier ?? "Standard",
        description: meta?.Description ?? "",
        allowedPattern: meta?.AllowedPattern ?? "",
        dataType: got.DataType ?? "text",
        version: got.Version ?? 0,
        tags,
        tagsAll: tags,
    };
}

function keyOuts(inputs: Props, keyId: string, arn: string): Props {
    const tags = (inputs.tags ?? {}) as Record<string, string>;
    return {
        ...inputs,
        keyId,
        arn,
        customerMasterKeySpec: inputs.customerMasterKeySpec ?? "SYMMETRIC_DEFAULT",
        keyUsage: inputs.keyUsage ?? "ENCRYPT_DECRYPT",
        multiRegion: inputs.multiRegion ?? false,
        isEnabled: true,
        enableKeyRotation: inputs.enableKeyRotation ?? false,
        tags,
        tagsAll: tags,
    };
}

function secretOuts(inputs: Props, arn: string): Props {
    const tags = (inputs.tags ?? {}) as Record<string, string>;
    return { arn, name: inputs.name, description: inputs.description ?? "", kmsKeyId: inputs.kmsKeyId ?? "", recoveryWindowInDays: inputs.recoveryWindowInDays ?? 30, tags, tagsAll: tags };
}

/** resourceSecretVersionRead: GetSecretValue of that version; `secretString` a secret. */
async function readSecretVersion(secretId: string, versionId: string): Promise<Props> {
    const out = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: versionId }));
    return { arn: out.ARN, secretId, secretString: asSecret(out.SecretString ?? ""), secretBinary: "", versionId: out.VersionId, versionStages: out.VersionStages ?? [], hasSecretStringWo: false };
}

async function putBucketPolicy(inputs: Props): Promise<void> {
    const policy = typeof inputs.policy === "string" ? inputs.policy : JSON.stringify(inputs.policy);
    await s3Call(`putting S3 Bucket Policy (${inputs.bucket})`, "PutBucketPolicy", () => s3.send(new PutBucketPolicyCommand({ Bucket: String(inputs.bucket), Policy: policy })));
}

function userOuts(inputs: Props, arn: string, uniqueId: string): Props {
    const tags = (inputs.tags ?? {}) as Record<string, string>;
    return {
        name: inputs.name,
        path: inputs.path ?? "/",
        permissionsBoundary: inputs.permissionsBoundary ?? "",
        tags,
        tagsAll: tags,
        forceDestroy: false,
        arn,
        uniqueId,
    };
}

async function listKeys(user: string): Promise<Array<{ accessKeyId: string; createDate: string; status: string }>> {
    try {
        const out = await iam.send(new ListAccessKeysCommand({ UserName: user }));
        return (out.AccessKeyMetadata ?? []).map((k) => ({ accessKeyId: k.AccessKeyId!, createDate: rfc3339(k.CreateDate), status: String(k.Status) }));
    } catch (err) {
        if (isNoSuchEntity(err)) throw new Error(`reading IAM Access Keys (${user}): couldn't find resource`);
        throw awsError(`reading IAM Access Keys (${user})`, "ListAccessKeys", err);
    }
}

/** terraform-plugin-sdk id.UniqueId: a timestamp and a counter, 26 characters. */
function uniqueSuffix(): string {
    const ts = new Date().toISOString().replace(/[-:TZ.]/g, "").slice(0, 17);
    return `${ts}${randomBytes(4).toString("hex").slice(0, 9)}`.slice(0, 26);
}

provider.main(awsProvider, process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
});
