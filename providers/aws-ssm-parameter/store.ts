import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { updatedInPlace } from "../in-place";
import type { TargetStore, WriteEvidence } from "../types";
import { parameterNames, ssmParameterSpec, type Distribution, type SsmParameterTarget } from "./spec";

export type { SsmParameterTarget } from "./spec";

/** The AWS-managed key of Parameter Store, used when neither the set nor the target names a key. */
export const defaultKmsKey = "alias/aws/ssm";

/** The parameter resources `declare` made, with the name each writes, for `confirmWrites`. */
const parameterOf = new WeakMap<pulumi.Resource, { name: string; holds: "accessKeyId" | "file" | "secretAccessKey" }>();

/** An AWS shared credentials file holding the key (format `credentials-file`). */
export function credentialsFile(profile: string, accessKeyId: string, secretAccessKey: string): string {
    return `[${profile}]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`;
}

/** The key id inside a credentials file this store wrote (never the secret). */
export function accessKeyIdIn(file: string | undefined): string | undefined {
    return file?.match(/^aws_access_key_id = (\S+)$/m)?.[1];
}

/** Single-quote a value for a POSIX shell. */
function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell script the Run Command document runs on each instance: read the parameter(s) with
 * the instance role, write the credentials file beside its destination with mode 0400 and the
 * owner set, then rename it into place (a job never reads a half-written file). The region comes
 * from the instance metadata (IMDSv2). Pure, so the docs and tests show exactly what runs.
 */
export function distributionScript(t: SsmParameterTarget, d: Distribution): string[] {
    const names = parameterNames(t);
    const group = d.group ?? d.owner;
    const dir = d.path.slice(0, d.path.lastIndexOf("/")) || "/";
    const lines = [
        // aws:runShellScript runs the lines with `sh -c` (aws/amazon-ssm-agent
        // agent/plugins/runscript/runshellscript.go: `shellCommand = "sh"`), which is dash on
        // Debian and Ubuntu: no `pipefail` (dash rejects `set -o pipefail`), so no value is read
        // through a pipe.
        "set -eu",
        'TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")',
        'REGION=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/placement/region)',
        `install -d -m 0700 -o ${d.owner} -g ${group} ${shellQuote(dir)}`,
        `TMP=$(mktemp ${shellQuote(`${d.path}.XXXXXX`)})`,
        'trap \'rm -f "$TMP"\' EXIT',
        'umask 0377',
    ];
    const get = (name: string) => `aws ssm get-parameter --region "$REGION" --with-decryption --name ${shellQuote(name)} --query Parameter.Value --output text`;
    if (t.format === "credentials-file" && d.profile === t.profile) {
        lines.push(`${get(names[0])} > "$TMP"`);
    } else if (t.format === "credentials-file") {
        lines.push(`FILE=$(${get(names[0])})`, `printf '%s\\n' "$FILE" | sed ${shellQuote(`1s/^\\[.*\\]$/[${d.profile}]/`)} > "$TMP"`);
    } else {
        lines.push(
            `ID=$(${get(names[0])})`,
            `SECRET=$(${get(names[1])})`,
            `printf '[%s]\\naws_access_key_id = %s\\naws_secret_access_key = %s\\n' ${shellQuote(d.profile)} "$ID" "$SECRET" > "$TMP"`,
        );
    }
    lines.push(`chown ${d.owner}:${group} "$TMP"`, 'chmod 0400 "$TMP"', `mv -f "$TMP" ${shellQuote(d.path)}`, "trap - EXIT");
    return lines;
}

/** The SSM Command document (schema 2.2) that writes the credentials file. */
export function distributionDocument(t: SsmParameterTarget, d: Distribution): string {
    return JSON.stringify(
        {
            schemaVersion: "2.2",
            description: `Write the AWS credentials file ${d.path} (mode 0400, owner ${d.owner}) from ${parameterNames(t).join(" and ")}; managed by ci-key-rotation.`,
            mainSteps: [{ action: "aws:runShellScript", name: "writeCredentialsFile", precondition: { StringEquals: ["platformType", "Linux"] }, inputs: { timeoutSeconds: "120", runCommand: distributionScript(t, d) } }],
        },
        null,
        2,
    );
}

/**
 * The EventBridge pattern of Parameter Store's change event for the parameter written last
 * (the secret, or the credentials file): when it fires, every parameter already holds the new
 * key (the secret parameter is written after the key id one, see `dependsOn` below).
 */
export function changePattern(t: SsmParameterTarget): string {
    const names = parameterNames(t);
    return JSON.stringify({ source: ["aws.ssm"], "detail-type": ["Parameter Store Change"], detail: { name: [names[names.length - 1]], operation: ["Create", "Update"] } });
}

/** SSM Parameter Store SecureStrings, and optionally their delivery to EC2 instances. */
export const ssmParameterStore: TargetStore<SsmParameterTarget> = {
    ...ssmParameterSpec,

    declare(t, ctx) {
        const names = parameterNames(t);
        // A key the target names wins over the set's default key.
        const keyId = t.kmsKey ?? ctx.kmsKeyArn ?? defaultKmsKey;
        const description = t.description ?? `AWS access key of credential set "${ctx.setName}", rotated by ci-key-rotation: edits here are overwritten.`;
        const values: [string, pulumi.Output<string>, "accessKeyId" | "file" | "secretAccessKey"][] =
            t.format === "credentials-file"
                ? [[names[0], pulumi.all([ctx.key.accessKeyId, ctx.key.secretAccessKey]).apply(([id, secret]) => credentialsFile(t.profile, id, secret)), "file"]]
                : [
                      [names[0], ctx.key.accessKeyId, "accessKeyId"],
                      [names[1], ctx.key.secretAccessKey, "secretAccessKey"],
                  ];
        const leafOf = (name: string) => name.slice(name.lastIndexOf("/") + 1);
        const out: pulumi.Resource[] = [];
        // The delivery exists before the first write: the parameter's Create event then reaches the
        // rule's target (a rule made after the write would never see it, and new instances would
        // wait for the next rotation).
        const delivery = t.distribute ? declareDistribution(t, t.distribute, ctx.resourceName, ctx.parent) : undefined;
        let previous: pulumi.Resource | undefined = delivery?.target;
        for (const [name, value, holds] of values) {
            const parameter = new aws.ssm.Parameter(
                `${ctx.resourceName}-${leafOf(name)}`,
                {
                    name,
                    type: "SecureString",
                    // Every value is passed as a secret (the key id too: a SecureString's value is secret to
                    // the provider, and the key id's is harmless but shares the path).
                    value: pulumi.secret(value),
                    keyId,
                    tier: t.tier,
                    description,
                    tags: t.tags,
                },
                {
                    parent: ctx.parent,
                    // terraform-provider-aws internal/service/ssm/parameter.go: `name` and `data_type` are
                    // ForceNew, and a tier change Advanced -> Standard forces a new parameter
                    // (CustomizeDiff `ForceNewIfChange("tier")`); `type`, `value`, `key_id`, `description`
                    // update in place with PutParameter(Overwrite). Delete (`resourceParameterDelete`) is
                    // DeleteParameter by *name*: a create-before-delete replacement of the same name would
                    // delete the parameter it just wrote. Delete first instead; creating with Overwrite
                    // false (`shouldUpdateParameter`, overwrite left unset) then never takes over a
                    // parameter someone else made. `insecure_value` is never used.
                    deleteBeforeReplace: true,
                    // `value` is Sensitive in the provider schema; `insecureValue` is Computed and could
                    // echo a value: both stay secret in state whatever the bridge does.
                    additionalSecretOutputs: ["value", "insecureValue"],
                    // The secret's parameter is written after the key id's: the change event of the last
                    // one (which triggers delivery) sees both new. The first waits for the delivery's
                    // EventBridge target, when there is one.
                    ...(previous ? { dependsOn: [previous] } : {}),
                    aliases: ctx.previousResourceNames.map((p) => ({ name: `${p}-${leafOf(name)}` })),
                },
            );
            parameterOf.set(parameter, { name, holds });
            // `value` updates in place (PutParameter with Overwrite): see `updatedInPlace`.
            out.push(updatedInPlace(parameter, previous ? [previous] : []));
            previous = parameter;
        }
        if (delivery) {
            out.push(...delivery.resources);
            // State Manager runs the document when the association is made and then on its schedule:
            // made after the last write, its first run already reads the new key.
            if (t.distribute?.schedule) {
                const tagTarget = { key: `tag:${t.distribute.instanceTag.key}`, values: [t.distribute.instanceTag.value] };
                out.push(new aws.ssm.Association(`${ctx.resourceName}-distribute`, { name: delivery.documentName, targets: [tagTarget], scheduleExpression: t.distribute.schedule }, { parent: ctx.parent, dependsOn: [previous!] }));
            }
        }
        return out;
    },

    confirmWrites(_t, declared) {
        // The provider reads the parameter back (GetParameter WithDecryption) after each PutParameter
        // (parameter.go `resourceParameterCreate`/`Update` end in `resourceParameterRead`), so
        // `value` is what SSM holds after this run's write. The key id in it is no secret: it is
        // compared with the key this run made. The secret's parameter carries no id to compare.
        const evidence: WriteEvidence[] = [];
        for (const r of declared) {
            const p = parameterOf.get(r);
            if (!p || p.holds === "secretAccessKey") continue;
            const value = (r as aws.ssm.Parameter).value;
            const id = p.holds === "file" ? value.apply(accessKeyIdIn) : value;
            evidence.push({ what: `parameter ${p.name}`, accessKeyId: pulumi.unsecret(id) });
        }
        return evidence;
    },
};

/**
 * The delivery to instances: the Command document, the EventBridge rule on the last parameter's
 * change event, and its Run Command target with the role EventBridge assumes. (With `schedule`,
 * `declare` adds a State Manager association that also runs the document on instances that missed
 * an event.)
 */
function declareDistribution(t: SsmParameterTarget, d: Distribution, base: string, parent: pulumi.Resource): { resources: pulumi.Resource[]; target: pulumi.Resource; documentName: pulumi.Output<string> } {
    const opts = { parent };
    const tagTarget = { key: `tag:${d.instanceTag.key}`, values: [d.instanceTag.value] };
    // terraform-provider-aws internal/service/ssm/document.go: `name` is ForceNew; `content` updates
    // in place (UpdateDocument, then UpdateDocumentDefaultVersion), so a changed script is a new
    // version of the same document and the rule keeps pointing at it.
    const document = new aws.ssm.Document(
        `${base}-distribute`,
        { name: documentName(base), documentType: "Command", documentFormat: "JSON", content: distributionDocument(t, d), tags: t.tags },
        opts,
    );
    const rule = new aws.cloudwatch.EventRule(
        `${base}-distribute`,
        { description: `Run ${documentName(base)} when ${parameterNames(t).at(-1)} changes (ci-key-rotation).`, eventPattern: changePattern(t), tags: t.tags },
        opts,
    );
    const role = new aws.iam.Role(
        `${base}-distribute`,
        {
            description: "EventBridge runs the ci-key-rotation credentials document on tagged instances.",
            assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "events.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
            tags: t.tags,
        },
        opts,
    );
    const policy = new aws.iam.RolePolicy(
        `${base}-distribute`,
        { role: role.id, policy: document.arn.apply((arn) => sendCommandPolicy(arn, d)) },
        opts,
    );
    const target = new aws.cloudwatch.EventTarget(
        `${base}-distribute`,
        { rule: rule.name, arn: document.arn, roleArn: role.arn, runCommandTargets: [tagTarget] },
        { ...opts, dependsOn: [policy] },
    );
    return { resources: [document, rule, role, policy, target], target, documentName: document.name };
}

/** The document's name: SSM allows 3-128 of `[A-Za-z0-9_.-]`, and reserves `AWS-`/`Amazon` prefixes. */
export function documentName(base: string): string {
    return `ci-key-rotation-${base}`.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 128);
}

/**
 * What EventBridge's role may do: run this document, and only on instances with the tag
 * (`ssm:resourceTag/<key>` on the instance resource).
 */
export function sendCommandPolicy(documentArn: string, d: Distribution): string {
    const partition = documentArn.split(":")[1] ?? "aws";
    return JSON.stringify({
        Version: "2012-10-17",
        Statement: [
            { Sid: "Document", Effect: "Allow", Action: "ssm:SendCommand", Resource: documentArn },
            { Sid: "TaggedInstances", Effect: "Allow", Action: "ssm:SendCommand", Resource: `arn:${partition}:ec2:*:*:instance/*`, Condition: { StringEquals: { [`ssm:resourceTag/${d.instanceTag.key}`]: d.instanceTag.value } } },
        ],
    });
}
