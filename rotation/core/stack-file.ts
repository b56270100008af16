import { parseDocument } from "yaml";

/** Result of {@link parseStackFile}: the file's `config:` mapping, or every problem, each naming the file. */
export type StackFileResult = { ok: true; config: Record<string, unknown> } | { ok: false; problems: string[] };

/**
 * Parse the text of a `Pulumi.<stack>.yaml` (or `Pulumi.yaml`) read without the Pulumi CLI, and
 * return its `config:` mapping. Pure. A syntax error or a key given twice is a problem at its line
 * (the Pulumi CLI refuses both too), and so is a file or a `config:` that is not a mapping: read
 * as "no settings", it would hide every setting the file holds. An empty file is an empty config.
 */
export function parseStackFile(text: string, file: string): StackFileResult {
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
        return {
            ok: false,
            problems: doc.errors.map((e) => {
                const at = e.linePos?.[0] ? `, line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "";
                const what =
                    e.code === "DUPLICATE_KEY"
                        ? "a key is given twice (YAML keys must be unique): keep one of them"
                        : e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
                return `${file}${at}: ${what}`;
            }),
        };
    }
    const top: unknown = doc.toJS();
    if (top === null || top === undefined) return { ok: true, config: {} };
    if (typeof top !== "object" || Array.isArray(top)) {
        return { ok: false, problems: [`${file} must be a YAML mapping with a \`config:\` section, not ${describe(top)}`] };
    }
    const config = (top as Record<string, unknown>).config;
    if (config === undefined || config === null) return { ok: true, config: {} };
    if (typeof config !== "object" || Array.isArray(config)) {
        return {
            ok: false,
            problems: [`${file}: \`config\` must be a mapping of settings (ci-key-rotation:every: P7D), not ${describe(config)}`],
        };
    }
    return { ok: true, config: config as Record<string, unknown> };
}

function describe(value: unknown): string {
    if (Array.isArray(value)) return "a list";
    return `the ${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}
