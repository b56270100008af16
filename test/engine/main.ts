/**
 * `npm run test:engine`: the engine conformance suite (docs/engine-suite.md). Builds or reuses the
 * Pulumi CLI and language host, installs and starts moto on 127.0.0.1, runs the scenarios with
 * real `pulumi` commands, stops everything it started and prints `N passed, N failed`.
 *
 * `ENGINE_SCENARIOS=1,2` runs a subset. `ENGINE_STRICT=1` counts known findings as failures.
 */
import { ensureBinaries, ensureMoto, log, programRoot, pulumiVersion, run, startMoto, type Moto } from "./rig";
import { githubScenarios } from "./github-scenarios";
import { s3Consumers } from "./consumers-s3";
import { secretsManagerConsumers } from "./consumers-aws-secrets-manager";
import { kmsConsumers } from "./consumers-kms";
import { ssmParameterConsumers } from "./consumers-aws-ssm-parameter";
import { awsStoreScenarios } from "./aws-store-scenarios";
import { knownFindings, scenarios, tail, type Context } from "./scenarios";

async function main(): Promise<number> {
    const started = Date.now();
    const bins = await ensureBinaries();
    if (process.env.ENGINE_PROGRAM_DIR) log(`program under test: ${programRoot}`);
    log(`${bins.built ? "built" : "reused"} pulumi ${pulumiVersion} and the language host in ${bins.seconds.toFixed(0)} s (${bins.binDir})`);
    // The program runs as compiled JavaScript (Pulumi.yaml: typescript: false).
    const tsc = await run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: programRoot });
    if (tsc.code !== 0) throw new Error(`tsc -p tsconfig.json failed:\n${tail(tsc.stdout + tsc.stderr)}`);
    const motoServer = await ensureMoto();
    let moto: Moto | undefined;
    let passed = 0;
    let failed = 0;
    let known = 0;
    try {
        moto = await startMoto(motoServer);
        log(`moto on ${moto.url}`);
        const ctx: Context = { bins, moto, logs: [], secrets: new Set() };
        const only = process.env.ENGINE_SCENARIOS?.split(",").map((s) => s.trim());
        for (const scenario of [...scenarios, ...githubScenarios, ...s3Consumers, ...secretsManagerConsumers, ...kmsConsumers, ...ssmParameterConsumers, ...awsStoreScenarios]) {
            if (only && !only.includes(scenario.id)) continue;
            const t = Date.now();
            log(`scenario ${scenario.id}: ${scenario.title}`);
            const took = () => `${((Date.now() - t) / 1000).toFixed(0)} s`;
            const finding = knownFindings[scenario.id];
            try {
                await scenario.run(ctx);
                passed++;
                log(`ok   ${scenario.id} (${took()})${finding ? `: known finding did not reproduce this run (remove it from knownFindings once fixed): ${finding}` : ""}`);
            } catch (err) {
                const message = (err as Error)?.message ?? String(err);
                if (finding && !process.env.ENGINE_STRICT) {
                    known++;
                    log(`KNOWN ${scenario.id} (${took()}): ${finding}\n       this run: ${message.split("\n")[0]}`);
                } else {
                    failed++;
                    log(`FAIL ${scenario.id} (${took()}): ${message}`);
                }
            }
        }
        if (ctx.rotated) await ctx.rotated.dispose();
    } finally {
        await moto?.stop();
    }
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    // Known findings (scenarios that fail on the program as it is, reported to be fixed) count as skipped.
    console.log(`${passed} passed, ${failed} failed${known ? `, ${known} skipped` : ""}`);
    return failed === 0 ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (err) => {
        console.error(`[engine] ${(err as Error)?.stack ?? err}`);
        console.log("0 passed, 1 failed");
        process.exit(1);
    },
);
