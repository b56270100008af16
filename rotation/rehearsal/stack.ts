import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseStackFile } from "../core/stack-file";

/**
 * The config a `pulumi up` of `stack` would see, read from `Pulumi.yaml` (project defaults) and
 * `Pulumi.<stack>.yaml`, in the form `pulumi.runtime.allConfig()` returns: full keys, strings,
 * structured values as JSON. Secure values (`secure:`) are left out: the rehearsal needs no token.
 */
export function readStackConfig(dir: string, stack: string): { project: string; config: Record<string, string> } {
    const project = parse(readFileSync(join(dir, "Pulumi.yaml"), "utf8")) as { name: string; config?: Record<string, { default?: unknown } | unknown> };
    const file = join(dir, `Pulumi.${stack}.yaml`);
    let stackText: string;
    try {
        stackText = readFileSync(file, "utf8");
    } catch {
        throw new Error(`There is no \`Pulumi.${stack}.yaml\` in ${dir}: pass \`--stack\` with the name of a stack whose config file exists.`);
    }
    const parsed = parseStackFile(stackText, file);
    if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
    const stackConfig = parsed.config;
    const config: Record<string, string> = {};
    const put = (key: string, value: unknown) => {
        if (value && typeof value === "object" && "secure" in (value as object)) return;
        config[key] = typeof value === "string" ? value : JSON.stringify(value);
    };
    for (const [key, decl] of Object.entries(project.config ?? {})) {
        const full = key.includes(":") ? key : `${project.name}:${key}`;
        if (decl && typeof decl === "object" && "default" in (decl as object)) put(full, (decl as { default: unknown }).default);
        else if (decl === null || typeof decl !== "object") put(full, decl);
    }
    for (const [key, value] of Object.entries(stackConfig)) put(key.includes(":") ? key : `${project.name}:${key}`, value);
    return { project: project.name, config };
}
