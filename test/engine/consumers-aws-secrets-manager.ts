/**
 * Consumers of an `aws-secrets-manager` target, through the real AWS SDK against moto: the secret
 * is written with the calls terraform-provider-aws makes for providers/aws-secrets-manager/store.ts
 * (CreateSecret; PutSecretValue with VersionStages=[AWSCURRENT] then GetSecretValue of that
 * version; PutResourcePolicy), and a job wrapper reads it with GetSecretValue, then uses the key.
 *
 * What moto does not enforce (moto 5.2.5 moto/secretsmanager/models.py): it keeps the KMS key id
 * but never calls KMS (no encryption, no kms:Decrypt check, no encryption context), and it stores
 * the resource policy (`put_resource_policy`) without consulting it in `get_secret_value`. So a
 * principal outside `readers` or without kms:Decrypt is NOT refused here; those refusals are
 * covered by the rehearsal's fake (rotation/rehearsal/stores/aws-secrets-manager.ts) and by the
 * policies `ci-key-rotation policy --readers` prints, not by this scenario.
 */
import assert from "node:assert/strict";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
    CreateSecretCommand,
    GetResourcePolicyCommand,
    GetSecretValueCommand,
    ListSecretVersionIdsCommand,
    PutResourcePolicyCommand,
    PutSecretValueCommand,
    SecretsManagerClient,
    UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { randomUUID } from "node:crypto";
import { readerPolicy } from "../../providers/aws-secrets-manager/store";
import { log } from "./rig";
import type { Context, Scenario } from "./scenarios";

const region = "us-east-1";
const operator = { accessKeyId: "testing", secretAccessKey: "testing" };

/** The secret's value as the store writes it (default JSON keys). */
const valueOf = (key: { AccessKeyId?: string; SecretAccessKey?: string }) => JSON.stringify({ AccessKeyId: key.AccessKeyId, SecretAccessKey: key.SecretAccessKey });

/** PutSecretValue as `resourceSecretVersionCreate` sends it, then its read-back by version id. */
async function putVersion(sm: SecretsManagerClient, secretId: string, secretString: string): Promise<{ versionId: string; stages: string[] }> {
    const put = await sm.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: secretString, VersionStages: ["AWSCURRENT"], ClientRequestToken: randomUUID() }));
    const read = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: put.VersionId }));
    return { versionId: put.VersionId!, stages: read.VersionStages ?? [] };
}

export const secretsManagerConsumers: Scenario[] = [
    {
        id: "C-sm",
        title: "Secrets Manager: a job reads AWSCURRENT (the new key) and AWSPREVIOUS (the old one) after two rotations, and the key works",
        async run(ctx: Context) {
            const sm = new SecretsManagerClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const kms = new KMSClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const iam = new IAMClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const name = `ci/consumer-${Date.now()}/aws-credentials`;
            const user = `ci-sm-consumer-${Date.now()}`;
            await iam.send(new CreateUserCommand({ UserName: user, Path: "/ci/" }));
            const key1 = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
            const key2 = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
            ctx.secrets.add(key1.SecretAccessKey!);
            ctx.secrets.add(key2.SecretAccessKey!);

            const keyId = (await kms.send(new CreateKeyCommand({ Description: "ci-key-rotation consumer scenario" }))).KeyMetadata!.Arn!;
            await kms.send(new CreateAliasCommand({ AliasName: `alias/ci-sm-${Date.now()}`, TargetKeyId: keyId }));
            const secret = await sm.send(new CreateSecretCommand({ Name: name, KmsKeyId: keyId, Description: "rotated by ci-key-rotation", Tags: [{ Key: "Team", Value: "platform" }] }));
            assert.match(secret.ARN!, new RegExp(`:secret:${name.replace(/\//g, "\\/")}-[A-Za-z0-9]{6}$`), "the ARN is the name and six characters (the `-??????` of the policies)");

            // Before the first version there is no AWSCURRENT: a reader gets ResourceNotFoundException.
            await assert.rejects(sm.send(new GetSecretValueCommand({ SecretId: name })), (e: Error) => e.name === "ResourceNotFoundException");

            const readers = ["arn:aws:iam::123456789012:role/ci-runner"];
            await sm.send(new PutResourcePolicyCommand({ SecretId: secret.ARN, ResourcePolicy: readerPolicy(readers), BlockPublicPolicy: true }));
            const policy = JSON.parse((await sm.send(new GetResourcePolicyCommand({ SecretId: secret.ARN }))).ResourcePolicy!);
            assert.deepEqual(policy.Statement[0].Principal.AWS, readers);

            const v1 = await putVersion(sm, secret.ARN!, valueOf(key1));
            assert.deepEqual(v1.stages, ["AWSCURRENT"], "the first version's read-back carries AWSCURRENT: the target check's evidence");
            const v2 = await putVersion(sm, secret.ARN!, valueOf(key2));
            assert.deepEqual(v2.stages, ["AWSCURRENT"]);

            // The replaced version resource's delete (`resourceSecretVersionDelete`) skips AWSCURRENT,
            // the only stage its state recorded: no call. Had a refresh recorded AWSPREVIOUS, it
            // would remove that label from the OLD version only, as here; AWSCURRENT stays.
            const versions = await sm.send(new ListSecretVersionIdsCommand({ SecretId: secret.ARN }));
            const stages = Object.fromEntries((versions.Versions ?? []).map((v) => [v.VersionId, v.VersionStages]));
            assert.deepEqual(stages[v1.versionId], ["AWSPREVIOUS"], "PutSecretValue moved AWSPREVIOUS to the version that had AWSCURRENT");
            assert.deepEqual(stages[v2.versionId], ["AWSCURRENT"]);

            // The job wrapper: GetSecretValue with no stage reads AWSCURRENT.
            const current = await sm.send(new GetSecretValueCommand({ SecretId: name }));
            assert.equal(current.VersionId, v2.versionId);
            const read = JSON.parse(current.SecretString!) as { AccessKeyId: string; SecretAccessKey: string };
            assert.equal(read.AccessKeyId, key2.AccessKeyId);
            const previous = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: name, VersionStage: "AWSPREVIOUS" }))).SecretString!) as { AccessKeyId: string };
            assert.equal(previous.AccessKeyId, key1.AccessKeyId, "during the overlap the old key is still at AWSPREVIOUS");

            // The key the job read authenticates.
            const sts = new STSClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: read.AccessKeyId, secretAccessKey: read.SecretAccessKey } });
            const me = await sts.send(new GetCallerIdentityCommand({}));
            assert.match(me.Arn ?? "", new RegExp(`user/(ci/)?${user}$`));

            // A refreshed state with AWSPREVIOUS on the old version: its delete removes only that.
            await sm.send(new UpdateSecretVersionStageCommand({ SecretId: secret.ARN, VersionStage: "AWSPREVIOUS", RemoveFromVersionId: v1.versionId }));
            const after = await sm.send(new GetSecretValueCommand({ SecretId: name }));
            assert.equal(after.VersionId, v2.versionId, "AWSCURRENT is untouched by the old version's delete");

            // Not enforced by moto (see the file header): another principal reads it too.
            const stranger = (await iam.send(new CreateAccessKeyCommand({ UserName: (await iam.send(new CreateUserCommand({ UserName: `${user}-stranger` }))).User!.UserName! }))).AccessKey!;
            const asStranger = new SecretsManagerClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: stranger.AccessKeyId!, secretAccessKey: stranger.SecretAccessKey! } });
            const leaked = await asStranger.send(new GetSecretValueCommand({ SecretId: name })).then(
                () => true,
                () => false,
            );
            log(`C-sm: moto ${leaked ? "does not enforce" : "enforces"} the secret's resource policy and KMS for a principal outside \`readers\``);
        },
    },
];
