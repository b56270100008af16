/**
 * Consumers of an `aws-ssm-parameter` target, through the real AWS SDK against moto: the
 * parameters are written with the calls terraform-provider-aws makes for
 * providers/aws-ssm-parameter/store.ts (internal/service/ssm/parameter.go: PutParameter with
 * Overwrite false and Tags on create, Overwrite true on update, then GetParameter WithDecryption
 * and DescribeParameters to read back), and a job reads them with GetParameter WithDecryption and
 * GetParametersByPath, then uses the key. The delivery's Command document is created as the
 * provider does (CreateDocument), and its script's read is the consumer's GetParameter.
 *
 * What moto does not enforce (moto 5.2.5 moto/ssm/models.py): a SecureString is not encrypted
 * through KMS (moto keeps `kms:<key id>:<value>` as the undecrypted value and records the key id it
 * was given), there is no kms:Decrypt check and no `PARAMETER_ARN` encryption context, and IAM
 * policies are not evaluated. So a principal without kms:Decrypt or outside the reader policy is
 * NOT refused here; those refusals are covered by the rehearsal's fake
 * (rotation/rehearsal/stores/aws-ssm-parameter.ts) and the statements `ci-key-rotation policy`
 * prints. Run Command does not run anything in moto: delivery is covered by the rehearsal.
 */
import assert from "node:assert/strict";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateDocumentCommand, DescribeParametersCommand, GetDocumentCommand, GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { accessKeyIdIn, credentialsFile, distributionDocument, documentName } from "../../providers/aws-ssm-parameter/store";
import { parameterNames, type SsmParameterTarget } from "../../providers/aws-ssm-parameter/spec";
import { log } from "./rig";
import type { Context, Scenario } from "./scenarios";

const region = "us-east-1";
const operator = { accessKeyId: "testing", secretAccessKey: "testing" };

/** PutParameter as `resourceParameterCreate` (Overwrite false, tags) or `resourceParameterUpdate` (Overwrite true) sends it, then the read-back. */
async function put(ssm: SSMClient, name: string, value: string, keyId: string, create: boolean): Promise<number> {
    await ssm.send(
        new PutParameterCommand({
            Name: name,
            Type: "SecureString",
            Value: value,
            KeyId: keyId,
            Tier: "Standard",
            Description: "rotated by ci-key-rotation",
            Overwrite: !create,
            ...(create ? { Tags: [{ Key: "Team", Value: "platform" }] } : {}),
        }),
    );
    const read = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    assert.equal(read.Parameter?.Value, value, "the provider's read-back sees what it wrote");
    return Number(read.Parameter?.Version);
}

export const ssmParameterConsumers: Scenario[] = [
    {
        id: "C-ssm",
        title: "SSM Parameter Store: a job reads the SecureStrings (GetParameter WithDecryption, GetParametersByPath) after a rotation, and the key works",
        async run(ctx: Context) {
            const ssm = new SSMClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const kms = new KMSClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const iam = new IAMClient({ region, endpoint: ctx.moto.url, credentials: operator });
            const stamp = Date.now();
            const user = `ci-ssm-consumer-${stamp}`;
            await iam.send(new CreateUserCommand({ UserName: user, Path: "/ci/" }));
            const key1 = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
            const key2 = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
            ctx.secrets.add(key1.SecretAccessKey!);
            ctx.secrets.add(key2.SecretAccessKey!);
            const keyArn = (await kms.send(new CreateKeyCommand({ Description: "ci-key-rotation ssm consumer scenario" }))).KeyMetadata!.Arn!;

            const target: SsmParameterTarget = { type: "aws-ssm-parameter", path: `/ci/consumer-${stamp}`, format: "parameters", fileName: "credentials", profile: "default", tier: "Standard" };
            const [idName, secretName] = parameterNames(target);
            assert.equal(await put(ssm, idName, key1.AccessKeyId!, keyArn, true), 1);
            assert.equal(await put(ssm, secretName, key1.SecretAccessKey!, keyArn, true), 1);
            // A create with Overwrite false on an existing name fails: the store never takes over a
            // parameter someone else made, and a replacement must delete first (deleteBeforeReplace).
            await assert.rejects(put(ssm, idName, key2.AccessKeyId!, keyArn, true), (e: Error) => e.name === "ParameterAlreadyExists");
            // The rotation: updates in place, a new version each.
            assert.equal(await put(ssm, idName, key2.AccessKeyId!, keyArn, false), 2);
            assert.equal(await put(ssm, secretName, key2.SecretAccessKey!, keyArn, false), 2);

            // The KMS key id moto records for the parameters is the one the store passed.
            const described = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "OneLevel", Values: [target.path!] }] }));
            assert.deepEqual(new Set(described.Parameters?.map((p) => p.KeyId)), new Set([keyArn]));
            assert.ok(described.Parameters?.every((p) => p.Type === "SecureString"));

            // Without decryption a reader does not get the secret.
            const raw = await ssm.send(new GetParameterCommand({ Name: secretName, WithDecryption: false }));
            assert.notEqual(raw.Parameter?.Value, key2.SecretAccessKey);

            // The consumer: one parameter at a time, or the whole path.
            const id = (await ssm.send(new GetParameterCommand({ Name: idName, WithDecryption: true }))).Parameter!.Value!;
            const secret = (await ssm.send(new GetParameterCommand({ Name: secretName, WithDecryption: true }))).Parameter!.Value!;
            assert.equal(id, key2.AccessKeyId);
            const byPath = await ssm.send(new GetParametersByPathCommand({ Path: target.path, WithDecryption: true }));
            assert.deepEqual(Object.fromEntries((byPath.Parameters ?? []).map((p) => [p.Name, p.Value])), { [idName]: key2.AccessKeyId, [secretName]: key2.SecretAccessKey });
            const sts = new STSClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: id, secretAccessKey: secret } });
            assert.match((await sts.send(new GetCallerIdentityCommand({}))).Arn ?? "", new RegExp(`user/(ci/)?${user}$`));

            // Format credentials-file: one parameter holding the file; its key id is the target check's evidence.
            const fileTarget: SsmParameterTarget = { ...target, path: `/runners/consumer-${stamp}`, format: "credentials-file" };
            const [fileName] = parameterNames(fileTarget);
            await put(ssm, fileName, credentialsFile("default", key2.AccessKeyId!, key2.SecretAccessKey!), keyArn, true);
            const file = (await ssm.send(new GetParameterCommand({ Name: fileName, WithDecryption: true }))).Parameter!.Value!;
            assert.equal(accessKeyIdIn(file), key2.AccessKeyId);

            // The delivery's Command document as the provider creates it (CreateDocument, JSON).
            const distribute = { instanceTag: { key: "ci-runner", value: "deploy" }, path: "/home/runner/.aws/credentials", owner: "runner", profile: "default" };
            const name = documentName(`aws-ssm-parameter-runners-consumer-${stamp}-credentials`);
            await ssm.send(new CreateDocumentCommand({ Name: name, DocumentType: "Command", DocumentFormat: "JSON", Content: distributionDocument(fileTarget, distribute) }));
            const doc = await ssm.send(new GetDocumentCommand({ Name: name }));
            assert.ok(doc.Content?.includes(`--name '${fileName}'`), "the stored document reads the file's parameter");
            assert.ok(!doc.Content?.includes(key2.SecretAccessKey!), "the document holds no key");

            // Not enforced by moto (see the file header): a principal with no policy decrypts too.
            const stranger = (await iam.send(new CreateAccessKeyCommand({ UserName: (await iam.send(new CreateUserCommand({ UserName: `${user}-stranger` }))).User!.UserName! }))).AccessKey!;
            const asStranger = new SSMClient({ region, endpoint: ctx.moto.url, credentials: { accessKeyId: stranger.AccessKeyId!, secretAccessKey: stranger.SecretAccessKey! } });
            const leaked = await asStranger.send(new GetParameterCommand({ Name: secretName, WithDecryption: true })).then(
                () => true,
                () => false,
            );
            log(`C-ssm: moto ${leaked ? "does not enforce" : "enforces"} IAM and kms:Decrypt for a principal without the reader policy`);
        },
    },
];
