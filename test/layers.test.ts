/**
 * The layers of the code, as a newcomer can check them (docs/development.md "Where things live"):
 *
 * - `rotation/core/` and the stores' specs (`providers/specs.ts`, `providers/types.ts`, `providers/aws-spec.ts`,
 *   `providers/<store>/spec.ts`): the rotation logic and what config may say. Nothing they load at
 *   run time, directly or through other files, comes from Pulumi.
 * - `rotation/pulumi/`, `providers/<store>/` and `index.ts`: the Pulumi program. It imports the
 *   core, never the operations or the rehearsal.
 * - `rotation/ops/` and `bin/`: running it (Automation API library, CLI, chatops). They import the
 *   core, and from the Pulumi program its types only (`import type`).
 * - `rotation/rehearsal/`: nothing imports it but its own files and tests, except its entry
 *   (`rotation/rehearsal/cli.ts`, behind `npm run simulate` and `ci-key-rotation simulate`), which
 *   the CLI loads on demand (`await import`), so no other command pays for it.
 *
 * Imports are read with the TypeScript parser. An `import type` (or an import whose every name is
 * marked `type`) is erased by the compiler and loads nothing; every other import loads its module.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const root = resolve(__dirname, "..");

interface Import {
    /** The specifier as written. */
    spec: string;
    /** Repository-relative path of the imported file, for relative imports. */
    file?: string;
    /** False when the compiler erases it (types only). */
    runtime: boolean;
    /** `import(...)` or `require(...)`: loaded when the code runs, not when the module loads. */
    lazy: boolean;
}

function sourceFiles(dir: string): string[] {
    const out: string[] = [];
    for (const name of readdirSync(join(root, dir))) {
        const path = join(dir, name);
        if (statSync(join(root, path)).isDirectory()) out.push(...sourceFiles(path));
        else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
    }
    return out;
}

const all = ["index.ts", ...sourceFiles("rotation"), ...sourceFiles("providers"), ...sourceFiles("bin")];

function resolveRelative(from: string, spec: string): string | undefined {
    const base = relative(root, resolve(root, dirname(from), spec));
    for (const candidate of [`${base}.ts`, base, join(base, "index.ts")]) {
        try {
            if (statSync(join(root, candidate)).isFile()) return candidate;
        } catch {
            // try the next form
        }
    }
    return undefined;
}

const cache = new Map<string, Import[]>();
function importsOf(file: string): Import[] {
    const known = cache.get(file);
    if (known) return known;
    const source = ts.createSourceFile(file, readFileSync(join(root, file), "utf8"), ts.ScriptTarget.ES2022, true);
    const found: Import[] = [];
    const add = (spec: string, runtime: boolean, lazy = false) =>
        found.push({ spec, runtime, lazy, file: spec.startsWith(".") ? resolveRelative(file, spec) : undefined });
    const visit = (node: ts.Node) => {
        if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
            const clause = node.importClause;
            let runtime = true;
            if (clause?.isTypeOnly) runtime = false;
            else if (clause && !clause.name && clause.namedBindings && ts.isNamedImports(clause.namedBindings)) {
                const names = clause.namedBindings.elements;
                if (names.length > 0 && names.every((e) => e.isTypeOnly)) runtime = false;
            }
            add(node.moduleSpecifier.text, runtime);
        } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
            const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
            const typeOnly = node.isTypeOnly || (named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly));
            add(node.moduleSpecifier.text, !typeOnly);
        } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
            add(node.moduleReference.expression.text, !node.isTypeOnly);
        } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
            const callee = node.expression;
            if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === "require")) add(node.arguments[0].text, true, true);
        } else if (ts.isImportTypeNode(node)) {
            // `typeof import("x")`: a type, loads nothing; not listed.
            return;
        }
        ts.forEachChild(node, visit);
    };
    visit(source);
    cache.set(file, found);
    return found;
}

/** Every file a file loads at run time, through relative imports, with the path that leads there. */
function runtimeClosure(file: string): Map<string, string[]> {
    const seen = new Map<string, string[]>([[file, [file]]]);
    const queue = [file];
    while (queue.length > 0) {
        const current = queue.shift()!;
        for (const i of importsOf(current)) {
            if (!i.runtime || !i.file || seen.has(i.file)) continue;
            seen.set(i.file, [...seen.get(current)!, i.file]);
            queue.push(i.file);
        }
    }
    return seen;
}

const isPure = (f: string) => f.startsWith("rotation/core/") || f === "providers/specs.ts" || f === "providers/types.ts" || f === "providers/aws-spec.ts" || /^providers\/[^/]+\/spec\.ts$/.test(f);
const inFolder = (f: string, folder: string) => f.startsWith(`${folder}/`);

describe("layers", () => {
    it("finds the files of every layer (the rules below check something)", () => {
        for (const folder of ["rotation/core", "rotation/pulumi", "rotation/ops", "rotation/rehearsal"]) {
            assert.ok(all.some((f) => inFolder(f, folder)), `no files under ${folder}/`);
        }
        assert.ok(all.some((f) => /^providers\/[^/]+\/spec\.ts$/.test(f)), "no providers/<store>/spec.ts");
        assert.ok(importsOf("rotation/pulumi/credential-set.ts").some((i) => i.spec === "@pulumi/pulumi" && i.runtime), "the parser misses a runtime import");
        assert.ok(importsOf("providers/types.ts").some((i) => i.spec === "@pulumi/pulumi" && !i.runtime), "the parser misses a type-only import");
    });

    it("the core and the stores' specs load nothing from Pulumi, directly or through other files", () => {
        const problems: string[] = [];
        for (const file of all.filter(isPure)) {
            for (const [loaded, via] of runtimeClosure(file)) {
                if (!isPure(loaded)) problems.push(`${file} loads ${loaded} (${via.join(" -> ")}), outside the core`);
                for (const i of importsOf(loaded)) {
                    if (i.runtime && /^@pulumi\//.test(i.spec)) problems.push(`${file} loads ${i.spec} (${via.join(" -> ")})`);
                }
            }
        }
        assert.deepEqual(problems, []);
    });

    it("the Pulumi program imports the core and the stores, never the operations or the rehearsal", () => {
        const program = all.filter((f) => inFolder(f, "rotation/pulumi") || inFolder(f, "providers") || f === "index.ts");
        const problems = program.flatMap((file) =>
            importsOf(file)
                .filter((i) => i.file && (inFolder(i.file, "rotation/ops") || inFolder(i.file, "rotation/rehearsal") || inFolder(i.file, "bin")))
                .map((i) => `${file} imports ${i.file}`),
        );
        assert.deepEqual(problems, []);
    });

    it("the operations use the Pulumi program's types only, and never load the rehearsal or the stores' resources", () => {
        const ops = all.filter((f) => inFolder(f, "rotation/ops") || inFolder(f, "bin"));
        const problems = ops.flatMap((file) =>
            importsOf(file)
                .filter((i) => i.file && i.runtime && (inFolder(i.file, "rotation/pulumi") || i.file === "index.ts" || (inFolder(i.file, "providers") && !isPure(i.file))))
                .map((i) => `${file} loads ${i.file}`),
        );
        assert.deepEqual(problems, []);
    });

    it("nothing imports the rehearsal but the rehearsal itself; the CLI loads its entry on demand", () => {
        const entry = "rotation/rehearsal/cli.ts";
        const problems = all
            .filter((f) => !inFolder(f, "rotation/rehearsal"))
            .flatMap((file) =>
                importsOf(file)
                    .filter((i) => i.file && inFolder(i.file, "rotation/rehearsal") && !(i.file === entry && i.lazy && i.runtime))
                    .map((i) => `${file} imports ${i.file}${i.file === entry ? " (the entry: load it with await import)" : ""}`),
            );
        assert.deepEqual(problems, []);
    });

    it("every relative import resolves to a file of the repository", () => {
        const problems = all.flatMap((file) => importsOf(file).filter((i) => i.spec.startsWith(".") && !i.file).map((i) => `${file}: ${i.spec}`));
        assert.deepEqual(problems, []);
    });
});
