/**
 * SSM Parameter Store in the rehearsal: SecureString parameters with versions, the KMS key that
 * encrypts them, and the delivery to EC2 instances (an EventBridge rule on the parameter's change
 * event whose target runs the Run Command document on tagged instances).
 *
 * What the world's {@link SecretStores} hold:
 * - `aws-ssm:<name>` — the parameter's value (the Parameter resource's write: a delete removes it,
 *   as DeleteParameter does), and `aws-ssm:<name>:kms`, the KMS ciphertext the reader decrypts
 *   with the encryption context `PARAMETER_ARN` (Parameter Store's context for SecureStrings);
 * - `aws-ssm-doc:<arn>` — a Command document's content; `aws-ssm-rule:<name>` — a rule's event
 *   pattern; `aws-ssm-deliver:<parameter>` — that a rule's Run Command target runs a document on
 *   instances with a tag when that parameter changes;
 * - `aws-ssm-file:<instance>:<path>` — the credentials file on one instance.
 *
 * Delivery is asynchronous in AWS (EventBridge, then Run Command per instance): the run that wrote
 * the parameter cannot see it. Here it happens at the write's instant, except on instances a
 * fault makes miss it ({@link failDeliveries}): they keep the old file, their jobs keep using the
 * old key, and the last-used gate sees that use, until the optional State Manager association
 * runs the document again (see {@link staleInstances}).
 */
import type { Credentials, SecretStores, World } from "../world";
import { fakeAccountId, operatorPrincipal } from "../world";
import type { Consumer, ResourceModel, TargetView } from "../targets";
import { parameterNames, type SsmParameterTarget } from "../../../providers/aws-ssm-parameter/spec";

/** The AWS-managed key Parameter Store uses when a parameter names none. */
export const awsManagedKey = "alias/aws/ssm";

/** The role the runners' jobs read parameters with (their instance role; same account). */
export const runnerRole = `arn:aws:iam::${fakeAccountId}:role/ci-runner`;

/** Instances per tag the rehearsal runs (a small fleet of self-hosted runners). */
export const instancesPerTag = 3;

/** The instances a tag selects: `i-<value>-1` ... */
export function instancesOf(tagKey: string, tagValue: string): string[] {
    return Array.from({ length: instancesPerTag }, (_, i) => `i-${tagKey}-${tagValue}-${i + 1}`.replace(/[^A-Za-z0-9-]/g, "-"));
}

const paramAddress = (name: string) => `aws-ssm:${name}`;
const arnOf = (name: string) => `arn:aws:ssm:us-east-1:${fakeAccountId}:parameter${name}`;
const fileAddress = (instance: string, path: string) => `aws-ssm-file:${instance}:${path}`;

/** Windows in which Run Command fails on an instance (it is offline, or its agent is stopped). */
export interface DeliveryFault {
    instance: string;
    from: number;
    until: number;
}

const deliveryFaults = new WeakMap<World, DeliveryFault[]>();
const versions = new WeakMap<World, Map<string, number>>();
/** Every delivery attempt, per world, for tests and reports: which instance got which version. */
export const deliveries = new WeakMap<World, { at: number; instance: string; parameter: string; ok: boolean }[]>();

/** Instances whose last delivery failed, with the document and parameter it was for. */
const stale = new WeakMap<World, Map<string, { documentArn: string; content: string }>>();

function staleOf(world: World): Map<string, { documentArn: string; content: string }> {
    const m = stale.get(world) ?? new Map<string, { documentArn: string; content: string }>();
    stale.set(world, m);
    return m;
}

const inFault = (world: World, instance: string, at: number) => (deliveryFaults.get(world) ?? []).some((f) => f.instance === instance && at >= f.from && at < f.until);

/**
 * Before each run: a State Manager association of the document (`distribute.schedule`) runs it
 * again on instances that missed a delivery, once they are reachable (its schedule approximated
 * by the run cadence). Then every instance still holding an old file is a standing condition of
 * the world: its jobs use the old key (the last-used gate sees them) and break once it is off.
 */
export function staleInstances(world: World, at: number): string[] {
    const out: string[] = [];
    for (const [instance, { documentArn, content }] of staleOf(world)) {
        const associated = world.stores.read(`aws-ssm-assoc:${documentArn}`) !== undefined;
        if (associated && !inFault(world, instance, at) && runDocument(world, content, instance, at)) {
            staleOf(world).delete(instance);
            continue;
        }
        out.push(`${instance} holds an old credentials file (a Run Command delivery failed${associated ? "; the association retries" : ""})`);
    }
    return out;
}

/** Make Run Command fail on `instance` in the window (it keeps its old credentials file). */
export function failDeliveries(world: World, faults: DeliveryFault[]): void {
    deliveryFaults.set(world, [...(deliveryFaults.get(world) ?? []), ...faults]);
}

/**
 * What the document does on one instance: read the parameter(s) it names (as the instance role),
 * and write the credentials file. Read from the document's own script, so the model runs what the
 * program declared: the `--name '<parameter>'` arguments and the final `mv` destination.
 */
function runDocument(world: World, content: string, instance: string, at: number): boolean {
    const script: string[] = JSON.parse(content).mainSteps[0].inputs.runCommand;
    const names = script.flatMap((l) => [...l.matchAll(/--name '([^']+)'/g)].map((m) => m[1]));
    const path = script.map((l) => l.match(/^mv -f "\$TMP" '([^']+)'$/)?.[1]).find((p) => p !== undefined);
    if (!path || names.length === 0) throw new Error("the rehearsal could not read the parameter names or the file path from the Run Command document");
    const values = names.map((n) => getParameter(world.stores, world, n, runnerRole).value);
    if (values.some((v) => v === undefined)) return false;
    const file = values.length === 1 ? values[0]! : `[default]\naws_access_key_id = ${values[0]}\naws_secret_access_key = ${values[1]}\n`;
    world.stores.write(fileAddress(instance, path), { value: file, secret: true }, at);
    return true;
}

/** Whether `instance` holds a file at the path the document writes (from an earlier delivery). */
function holdsFile(world: World, content: string, instance: string): boolean {
    const script: string[] = JSON.parse(content).mainSteps[0].inputs.runCommand;
    const path = script.map((l) => l.match(/^mv -f "\$TMP" '([^']+)'$/)?.[1]).find((p) => p !== undefined);
    return path !== undefined && world.stores.read(fileAddress(instance, path)) !== undefined;
}

/** The change event of parameter `name`: every rule target that listens to it runs its document. */
function onChange(world: World, name: string, at: number, noteFault: (text: string) => void): void {
    const deliver = world.stores.read(`aws-ssm-deliver:${name}`);
    if (!deliver) return;
    const { documentArn, tagKey, tagValue } = deliver.meta as { documentArn: string; tagKey: string; tagValue: string };
    const content = world.stores.read(`aws-ssm-doc:${documentArn}`)?.value;
    if (!content) return;
    const log = deliveries.get(world) ?? [];
    deliveries.set(world, log);
    for (const instance of instancesOf(tagKey, tagValue)) {
        const failed = inFault(world, instance, at);
        const ok = !failed && runDocument(world, content, instance, at);
        if (failed) noteFault(`Run Command failed on ${instance}: it keeps its old credentials file`);
        // Stale only when an older file is in place: an instance that never got one holds no old key.
        if (ok) staleOf(world).delete(instance);
        else if (holdsFile(world, content, instance)) staleOf(world).set(instance, { documentArn, content });
        log.push({ at, instance, parameter: name, ok });
    }
}

/**
 * `aws.ssm.Parameter`: terraform-provider-aws internal/service/ssm/parameter.go, `name` and
 * `data_type` ForceNew (a tier change Advanced -> Standard too, by CustomizeDiff), the rest in
 * place with PutParameter(Overwrite); delete is DeleteParameter by name. Each write is a new
 * version, and the change event fires (which is what the delivery listens to).
 */
const parameterModel: ResourceModel = {
    replaceOn: ["name", "dataType"],
    writes: (i) => [{ address: paramAddress(String(i.name)), value: String(i.value ?? ""), secret: true }],
    outputs(i, ctx) {
        const name = String(i.name);
        const at = ctx.clock.now();
        const keyArn = ctx.world.kms.ensureKey(String(i.keyId ?? awsManagedKey));
        const ciphertext = ctx.world.kms.encrypt(keyArn, String(i.value ?? ""), { PARAMETER_ARN: arnOf(name) });
        // The provider reads the parameter back as the operator (terraform-provider-aws
        // internal/service/ssm/parameter.go read: GetParameter WithDecryption): SSM decrypts on
        // the operator's behalf, and a key policy that refuses it fails the write.
        // (Only keys with a modelled key policy: the others model their readers alone.)
        if (ctx.world.kms.hasPolicy(keyArn)) ctx.world.kms.decrypt(operatorPrincipal, ciphertext, { PARAMETER_ARN: arnOf(name) }, undefined, "ssm.us-east-1.amazonaws.com");
        ctx.world.stores.write(`${paramAddress(name)}:kms`, { value: ciphertext, secret: false }, at);
        const perWorld = versions.get(ctx.world) ?? new Map<string, number>();
        versions.set(ctx.world, perWorld);
        const version = (perWorld.get(name) ?? 0) + 1;
        perWorld.set(name, version);
        onChange(ctx.world, name, at, (text) => ctx.noteFault(text));
        // The provider reads the parameter back (GetParameter WithDecryption) after the write.
        return { arn: arnOf(name), name, version, value: i.value, keyId: keyArn };
    },
    id: (i) => String(i.name),
};

/** `aws.ssm.Document`: `name` ForceNew, `content` updates in place (document.go). */
const documentModel: ResourceModel = {
    replaceOn: ["name"],
    writes: (i) => [{ address: `aws-ssm-doc:arn:aws:ssm:us-east-1:${fakeAccountId}:document/${String(i.name)}`, value: String(i.content ?? ""), secret: false }],
    outputs: (i) => ({ arn: `arn:aws:ssm:us-east-1:${fakeAccountId}:document/${String(i.name)}`, name: i.name }),
    id: (i) => String(i.name),
};

/** An autonamed rule: the name is fixed from its pattern here (one rule per pattern in a stack). */
function ruleName(pattern: unknown): string {
    let h = 0x811c9dc5;
    for (const c of String(pattern)) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return `rule-${h.toString(16)}`;
}

/** `aws.cloudwatch.EventRule`: the pattern updates in place (PutRule). */
const ruleModel: ResourceModel = {
    replaceOn: ["name", "namePrefix", "eventBusName"],
    writes: (i) => [{ address: `aws-ssm-rule:${ruleName(i.eventPattern)}`, value: String(i.eventPattern ?? ""), secret: false }],
    outputs: (i) => ({ name: ruleName(i.eventPattern), arn: `arn:aws:events:us-east-1:${fakeAccountId}:rule/${ruleName(i.eventPattern)}` }),
    id: (i) => ruleName(i.eventPattern),
};

/**
 * `aws.cloudwatch.EventTarget` with `runCommandTargets`: from now on, the rule's parameter's
 * change events run the document on the tagged instances (the `aws-ssm-deliver` entry).
 * The rule's pattern is read from the store at the target's write; `rule` and `targetId` are
 * ForceNew (cloudwatch event target.go).
 */
const eventTargetModel: ResourceModel = {
    replaceOn: ["rule", "targetId", "eventBusName"],
    outputs(i, ctx) {
        const pattern = ctx.world.stores.read(`aws-ssm-rule:${String(i.rule)}`)?.value;
        const name = pattern ? (JSON.parse(pattern).detail?.name?.[0] as string | undefined) : undefined;
        const target = (i.runCommandTargets as { key: string; values: string[] }[] | undefined)?.[0];
        if (name && target) {
            ctx.world.stores.write(
                `aws-ssm-deliver:${name}`,
                { value: String(i.arn), secret: false, meta: { documentArn: String(i.arn), tagKey: target.key.replace(/^tag:/, ""), tagValue: target.values[0] } },
                ctx.clock.now(),
            );
        }
        return {};
    },
};

/** Resources that change nothing the rehearsal observes (the role EventBridge assumes and its policy). */
const inert: ResourceModel = {};

/** Resource models of the store, by type token (registered in rotation/rehearsal/targets.ts). */
export const ssmParameterModels: Record<string, ResourceModel> = {
    "aws:ssm/parameter:Parameter": parameterModel,
    "aws:ssm/document:Document": documentModel,
    "aws:cloudwatch/eventRule:EventRule": ruleModel,
    "aws:cloudwatch/eventTarget:EventTarget": eventTargetModel,
    "aws:iam/role:Role": { replaceOn: ["name", "namePrefix"], outputs: () => ({ arn: `arn:aws:iam::${fakeAccountId}:role/distribute` }) },
    "aws:iam/rolePolicy:RolePolicy": inert,
    // State Manager association: runs its document on the targeted instances on its schedule (see `staleInstances`).
    "aws:ssm/association:Association": {
        replaceOn: ["name"],
        writes: (i) => [{ address: `aws-ssm-assoc:arn:aws:ssm:us-east-1:${fakeAccountId}:document/${String(i.name)}`, value: String(i.scheduleExpression ?? ""), secret: false }],
    },
};

/**
 * GetParameter WithDecryption as `principal`: the parameter must exist and KMS must let the
 * principal decrypt with the parameter's ARN as context (a KMS denial reads as no value). SSM
 * decrypts on the reader's behalf: `kms:ViaService` is SSM's endpoint.
 */
export function getParameter(stores: SecretStores, world: World, name: string, principal: string): { value?: string; error?: string } {
    const stored = stores.read(paramAddress(name));
    if (!stored) return { error: `ParameterNotFound: ${name}` };
    const ciphertext = stores.read(`${paramAddress(name)}:kms`)?.value;
    try {
        return { value: world.kms.decrypt(principal, String(ciphertext), { PARAMETER_ARN: arnOf(name) }, undefined, "ssm.us-east-1.amazonaws.com") };
    } catch (err) {
        return { error: (err as Error).message };
    }
}

/** Key id and secret from an AWS shared credentials file (its first profile). */
export function parseCredentialsFile(file: string | undefined): Credentials {
    if (file === undefined) return {};
    return { accessKeyId: file.match(/^aws_access_key_id = (\S+)$/m)?.[1], secret: file.match(/^aws_secret_access_key = (\S+)$/m)?.[1] };
}

function fromParameters(t: SsmParameterTarget, read: (name: string) => string | undefined): Credentials {
    const names = parameterNames(t);
    if (t.format === "credentials-file") return parseCredentialsFile(read(names[0]));
    return { accessKeyId: read(names[0]), secret: read(names[1]) };
}

/**
 * The target as the simulator sees it: what the parameters hold; a job that reads them at job
 * time with the runner role (GetParameter WithDecryption); and with `distribute`, a job on each
 * tagged instance that reads the credentials file the document wrote there.
 */
export function ssmParameterView(t: SsmParameterTarget, label: string): TargetView {
    const consumers: Consumer[] = [
        {
            label: `job reading ${parameterNames(t).join(" and ")} as ${runnerRole}`,
            read: (stores, world) => fromParameters(t, (n) => getParameter(stores, world, n, runnerRole).value),
        },
    ];
    const d = t.distribute;
    if (d) {
        for (const instance of instancesOf(d.instanceTag.key, d.instanceTag.value)) {
            consumers.push({ label: `job on instance ${instance} reading ${d.path}`, read: (stores) => parseCredentialsFile(stores.read(fileAddress(instance, d.path))?.value) });
        }
    }
    return { label, holds: (s) => fromParameters(t, (n) => s.read(paramAddress(n))?.value), consumers };
}
