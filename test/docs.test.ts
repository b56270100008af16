import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";

// The README is the front door; the reference lives in docs/. These tests keep the two linked:
// a reader who follows a link lands on a file that exists and on a heading that exists.

const root = path.resolve(__dirname, "..");
const docsDir = path.join(root, "docs");
/** Every page under docs/, sub-folders included (e.g. `stores/aws-s3-env-file.md`). */
const docPages = (readdirSync(docsDir, { recursive: true }) as string[]).filter((name) => name.endsWith(".md")).map((name) => name.split(path.sep).join("/")).sort();
const markdownFiles = ["README.md", ...docPages.map((name) => `docs/${name}`)];

/** Lines outside fenced code blocks, with inline code spans blanked (links in code are not links). */
function proseLines(text: string): string[] {
    const lines: string[] = [];
    let fence: string | undefined;
    for (const line of text.split("\n")) {
        const opening = /^\s*(```+|~~~+)/.exec(line);
        if (fence === undefined && opening) fence = opening[1][0];
        else if (fence !== undefined && opening && opening[1][0] === fence) fence = undefined;
        else if (fence === undefined) lines.push(line);
    }
    return lines;
}

/** GitHub's heading anchor: lower-case, punctuation other than `-` and `_` dropped, spaces to `-`. */
function githubSlug(heading: string): string {
    return heading
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link in a heading keeps its text
        .replace(/<[^>]+>/g, "")
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
        .replace(/ /g, "-");
}

/** The anchors a page offers, duplicates numbered -1, -2 as GitHub does. */
function anchorsOf(file: string): Set<string> {
    const seen = new Map<string, number>();
    const anchors = new Set<string>();
    for (const line of proseLines(readFileSync(path.join(root, file), "utf8"))) {
        const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
        if (!heading) continue;
        const slug = githubSlug(heading[1]);
        const count = seen.get(slug) ?? 0;
        anchors.add(count === 0 ? slug : `${slug}-${count}`);
        seen.set(slug, count + 1);
    }
    return anchors;
}

/** Every link target in a page: inline links, images, reference definitions and HTML src/href. */
function linksOf(file: string): string[] {
    const targets: string[] = [];
    for (const raw of proseLines(readFileSync(path.join(root, file), "utf8"))) {
        const line = raw.replace(/`[^`]*`/g, "");
        for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]);
        for (const m of line.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/g)) targets.push(m[1]);
        for (const m of line.matchAll(/\b(?:src|href)="([^"]+)"/g)) targets.push(m[1]);
    }
    return targets;
}

function isExternal(target: string): boolean {
    return /^[a-z][a-z0-9+.-]*:/i.test(target);
}

describe("documentation links", () => {
    for (const file of markdownFiles) {
        test(`${file}: every relative link names an existing file and every #anchor an existing heading`, () => {
            const broken: string[] = [];
            for (const target of linksOf(file)) {
                if (isExternal(target)) continue;
                const [filePart, anchor] = target.split("#", 2) as [string, string | undefined];
                const resolved = filePart === "" ? path.join(root, file) : path.resolve(root, path.dirname(file), decodeURI(filePart));
                if (!existsSync(resolved)) {
                    broken.push(`${target}: no such file`);
                    continue;
                }
                if (anchor === undefined) continue;
                if (!resolved.endsWith(".md") || statSync(resolved).isDirectory()) {
                    broken.push(`${target}: an anchor into a file that is not a Markdown page`);
                    continue;
                }
                const anchors = anchorsOf(path.relative(root, resolved));
                if (!anchors.has(decodeURIComponent(anchor).toLowerCase())) broken.push(`${target}: no heading with that anchor`);
            }
            assert.deepEqual(broken, [], `${file} has broken links`);
        });
    }

    test("the README links to every docs/ page", () => {
        const linked = new Set(
            linksOf("README.md")
                .filter((target) => !isExternal(target))
                .map((target) => path.normalize(target.split("#")[0])),
        );
        const missing = docPages.map((name) => `docs/${name}`).filter((page) => !linked.has(path.normalize(page)));
        assert.deepEqual(missing, [], "docs pages the README does not link to");
    });

    test("the README stays a front door: under 300 lines", () => {
        const lines = readFileSync(path.join(root, "README.md"), "utf8").trimEnd().split("\n").length;
        assert.ok(lines < 300, `README.md has ${lines} lines; move reference text to a docs/ page`);
    });
});

describe("githubSlug", () => {
    test("follows GitHub's rules on the headings these docs use", () => {
        assert.equal(githubSlug("Minimum Pulumi CLI: 3.133"), "minimum-pulumi-cli-3133");
        assert.equal(githubSlug("The picture (`--svg`)"), "the-picture---svg");
        assert.equal(githubSlug("2. By hand: requests and emergencies"), "2-by-hand-requests-and-emergencies");
        assert.equal(githubSlug("`serve`: limits and refusals"), "serve-limits-and-refusals");
        assert.equal(githubSlug("stack_name and more"), "stack_name-and-more");
    });
});
