// One measurement of `npm run bench` (test/bench.ts), in a fresh process. Plain CommonJS on
// purpose: it runs the compiled program (dist/) with no TypeScript loader, as `pulumi up` does.
// With BENCH_RUNNER=pulumi it first loads `source-map-support/register`, as Pulumi's Node.js
// runner does (@pulumi/pulumi cmd/run/index.js) before it requires the program.
//
// BENCH_SPEC names a JSON file: { mode: "load" | "program" | "floor", root, config, now, stackOutputs,
// accessKeys, registrations }. Writes one JSON line to stdout.
"use strict";
const started = process.hrtime.bigint();
if (process.env.BENCH_RUNNER === "pulumi") require("source-map-support/register");
const path = require("node:path");
const spec = JSON.parse(require("node:fs").readFileSync(process.env.BENCH_SPEC, "utf8"));
const ms = (from) => Number(process.hrtime.bigint() - from) / 1e6;

const secretSig = "4dabf18193072939515e22adb298388d";
const secretMarker = "1b47061264138c4ac30d75fd1eb44270";

function install(pulumi) {
    const registrations = [];
    const invocations = [];
    let stackReads = 0;
    pulumi.runtime.setMocks(
        {
            newResource(args) {
                if (args.type === "pulumi:pulumi:StackReference") {
                    stackReads++;
                    return { id: args.name, state: { name: args.inputs.name, outputs: spec.stackOutputs ?? {}, secretOutputNames: [] } };
                }
                registrations.push({ type: args.type, name: args.name, custom: args.custom, inputs: args.inputs });
                const state = { ...args.inputs };
                if (args.type === "aws:iam/user:User") state.arn = `arn:aws:iam::123456789012:user${args.inputs.path ?? "/"}${args.inputs.name}`;
                if (args.type === "aws:iam/accessKey:AccessKey" && !args.id) state.secret = pulumi.secret(`SECRET/${args.name}`.padEnd(40, "x").slice(0, 40));
                const id = args.type === "aws:iam/accessKey:AccessKey" ? (spec.keyIds?.[args.name] ?? `${args.name}-id`) : `${args.name}-id`;
                return { id: args.id || id, state };
            },
            call(args) {
                invocations.push(args.token);
                if (args.token === "aws:iam/getAccessKeys:getAccessKeys") return { user: args.inputs.user, accessKeys: spec.accessKeys?.[args.inputs.user] ?? [] };
                if (args.token === "github:index/getRepository:getRepository") return { fullName: args.inputs.fullName, repoId: 1 };
                throw new Error(`Mock call not implemented: ${args.token}`);
            },
        },
        "ci-key-rotation",
        "bench",
        false,
        "organization",
    );
    pulumi.runtime.setAllConfig(spec.config ?? {}, []);
    return { registrations, invocations, stackReads: () => stackReads };
}

async function settle(pulumi) {
    await pulumi.runtime.waitForRPCs?.();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** The SDK class of a type token (`aws:iam/user:User`, `github:index/actionsSecret:ActionsSecret`, `pulumi:providers:github`), if any. */
function classFor(type) {
    const [pkg, mod, name] = type.split(":");
    const sdk = { aws: "@pulumi/aws", github: "@pulumi/github" };
    if (pkg === "pulumi" && mod === "providers") return sdk[name] ? require(sdk[name]).Provider : undefined;
    if (!sdk[pkg]) return undefined;
    const lib = require(sdk[pkg]);
    const module = mod.split("/")[0];
    return (module === "index" ? lib : lib[module])?.[name];
}

/** A registered input as the program passed it: secrets wrapped again. */
function revive(pulumi, v) {
    if (v && typeof v === "object" && v[secretSig] === secretMarker) return pulumi.secret(revive(pulumi, v.value));
    if (Array.isArray(v)) return v.map((x) => revive(pulumi, x));
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(pulumi, x)]));
    return v;
}

async function main() {
    const root = spec.root;
    if (spec.mode === "load") {
        require(path.join(root, "dist/index.js"));
        return { loadMs: ms(started) };
    }
    const pulumi = require("@pulumi/pulumi");
    const seen = install(pulumi);
    let lastUseCalls = 0;
    if (spec.mode === "floor") {
        // The floor: the same reads and the same registrations, declared one after another with
        // plain inputs: the same resource classes (a class declares its outputs, and the SDK makes
        // a promise for each), but no components' logic, no Outputs between resources, no
        // decisions. Classes are looked up first, so module loading is not timed. With
        // `floor: "generic"`, every resource is a bare CustomResource of its type (no declared outputs).
        const declare = spec.registrations.map((r) => {
            const Class = r.custom && spec.floor !== "generic" ? classFor(r.type) : undefined;
            const inputs = revive(pulumi, r.inputs);
            if (Class) return () => new Class(r.name, inputs);
            if (r.custom) return () => new pulumi.CustomResource(r.type, r.name, inputs);
            return () => new pulumi.ComponentResource(r.type, r.name, {});
        });
        const t = process.hrtime.bigint();
        const ref = new pulumi.StackReference("rotation-state", { name: "organization/ci-key-rotation/bench" });
        await ref.getOutputDetails("rotation");
        await Promise.all(Object.keys(spec.accessKeys ?? {}).map((user) => pulumi.runtime.invoke("aws:iam/getAccessKeys:getAccessKeys", { user })));
        for (const make of declare) make();
        await settle(pulumi);
        return { evalMs: ms(t), registrations: seen.registrations.length, maxRssMb: process.resourceUsage().maxRSS / 1024 };
    }
    const { providerObserver } = require(path.join(root, "dist/rotation/pulumi/aws.js"));
    const program = require(path.join(root, "dist/index.js"));
    const fakeIam = {
        async send(command) {
            lastUseCalls++;
            return { AccessKeyLastUsed: { ServiceName: "N/A", Region: "N/A" }, input: command.input };
        },
    };
    const t = process.hrtime.bigint();
    const raw = await program({ env: { CI_KEY_ROTATION_NOW: spec.now }, observer: providerObserver(() => fakeIam) });
    const value = (o) => new Promise((resolve) => o.apply((v) => (resolve(v), v)));
    const outputs = { rotation: await value(raw.rotation), sets: await value(raw.sets) };
    await settle(pulumi);
    return {
        evalMs: ms(t),
        outputs: spec.wantOutputs ? outputs : undefined,
        steps: Object.values(outputs.sets).filter((s) => s.step !== "none").length,
        registrations: spec.wantRegistrations ? seen.registrations : seen.registrations.length,
        invocations: seen.invocations,
        stackReads: seen.stackReads(),
        lastUseCalls,
        maxRssMb: process.resourceUsage().maxRSS / 1024,
    };
}

main().then(
    (result) => process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0)),
    (err) => {
        process.stderr.write(`bench child: ${err && err.stack ? err.stack : err}\n`);
        process.exit(1);
    },
);
