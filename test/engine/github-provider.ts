import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

/**
 * The `pulumi-resource-github` plugin of the engine suite.
 *
 * The real provider cannot be built on our machines: the Go module proxy refuses
 * `github.com/pulumi/pulumi-github/provider/v6@v6.15.0` (403 "This module version is not
 * available") and its upstream `github.com/integrations/terraform-provider-github/v6` too, and
 * pulumi-github's `provider/go.mod` replaces that upstream with a local `../upstream` checkout
 * (a git submodule at terraform-provider-github v6.13.0), so no wrapper module can resolve it.
 * The details are in docs/engine-suite.md (GitHub section).
 *
 * So the suite runs a test-only plugin written in TypeScript (`github-rig/plugin.ts`) that speaks
 * the provider protocol and makes the real provider's REST calls with its diff rules. This module
 * writes its launcher, an executable script, to
 * `${XDG_CACHE_HOME:-~/.cache}/ci-key-rotation-engine/github-<version>/pulumi-resource-github`
 * (rewritten only when its content changes), for `pulumi plugin install resource github <version>
 * --file <launcher>`.
 */

/** Repository root (this file is `test/engine/github-provider.ts`). */
const repoRoot = path.resolve(__dirname, "..", "..");

/** The plugin version `@pulumi/github` asks the engine for (its package.json `pulumi.version`). */
export async function githubProviderVersion(): Promise<string> {
    const pkg = JSON.parse(await readFile(require.resolve("@pulumi/github/package.json"), "utf8")) as { version: string; pulumi?: { version?: string } };
    return pkg.pulumi?.version ?? pkg.version;
}

/** Where built or written engine-suite binaries are cached. */
export function engineCacheDir(): string {
    return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), ".cache"), "ci-key-rotation-engine");
}

/** What the suite installs as the GitHub resource plugin. */
export interface GithubPlugin {
    /** Plugin name for `pulumi plugin install resource <name>`. */
    name: "github";
    version: string;
    /** Executable to pass as `--file`. */
    binary: string;
    /** `test-plugin`: the TypeScript stand-in; the real provider cannot be built here. */
    kind: "test-plugin";
}

/** Path of the GitHub plugin's executable (the launcher), written if missing or stale. */
export async function githubProviderBinary(): Promise<string> {
    return (await githubPlugin()).binary;
}

/**
 * The GitHub plugin, its launcher written if missing or stale. The launcher runs
 * `github-rig/plugin.ts` of this checkout with this Node and tsx.
 */
export async function githubPlugin(): Promise<GithubPlugin> {
    const version = await githubProviderVersion();
    const dir = path.join(engineCacheDir(), `github-${version}`);
    const binary = path.join(dir, "pulumi-resource-github");
    const loader = path.join(path.dirname(require.resolve("tsx/package.json")), "dist", "loader.mjs");
    const entry = path.join(repoRoot, "test", "engine", "github-rig", "plugin.ts");
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const script = [
        "#!/bin/sh",
        `# Test-only pulumi-resource-github ${version} for ci-key-rotation's engine suite (see docs/engine-suite.md).`,
        `exec ${q(process.execPath)} --import ${q(`file://${loader}`)} ${q(entry)} "$@"`,
        "",
    ].join("\n");
    await mkdir(dir, { recursive: true });
    const current = await readFile(binary, "utf8").catch(() => "");
    if (current !== script) {
        // Checkouts share the cache: replace the launcher atomically.
        const tmp = `${binary}.${process.pid}`;
        await writeFile(tmp, script, { mode: 0o755 });
        await rename(tmp, binary);
    }
    await chmod(binary, 0o755);
    return { name: "github", version, binary, kind: "test-plugin" };
}

/**
 * Installs the GitHub plugin into the Pulumi home of `env` (`PULUMI_HOME`), so the engine never
 * downloads it: `pulumi plugin install resource github <version> --file <launcher> --reinstall`.
 */
export async function installGithubProvider(pulumi: string, env: NodeJS.ProcessEnv): Promise<GithubPlugin> {
    const plugin = await githubPlugin();
    await promisify(execFile)(pulumi, ["plugin", "install", "resource", plugin.name, plugin.version, "--file", plugin.binary, "--reinstall"], { env });
    return plugin;
}

/**
 * Stack configuration that points the program's GitHub providers at the fake
 * (`startGithubFake` in `github-fake.ts`): the program passes `github:baseUrl` and `github:token`
 * to each explicit provider, and the owner comes from each target.
 */
export function githubStackConfig(fake: { url: string; token: string | null }): Record<string, { value: string; secret: boolean }> {
    return {
        "github:baseUrl": { value: fake.url, secret: false },
        "github:token": { value: fake.token ?? "unused", secret: true },
    };
}
