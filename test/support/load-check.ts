/**
 * Runs the real CLI entry point with the arguments after `--`, then writes to the file named by
 * `LOAD_CHECK_OUT` which modules of the Pulumi SDK the process loaded. Used by
 * test/cli-start.test.ts: commands that need no stack must start without the SDK.
 */
import { writeFileSync } from "node:fs";

const out = process.env.LOAD_CHECK_OUT!;
process.on("exit", () => {
    const loaded = Object.keys(require.cache).filter((k) => /[\\/]@pulumi[\\/]pulumi[\\/]/.test(k));
    writeFileSync(out, JSON.stringify({ pulumiModules: loaded.length, first: loaded.slice(0, 3) }));
});
const at = process.argv.indexOf("--");
process.argv = [process.argv[0], "ci-key-rotation", ...process.argv.slice(at + 1)];
require("../../bin/ci-key-rotation");
