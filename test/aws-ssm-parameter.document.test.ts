import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync, readdirSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { distributionDocument } from "../providers/aws-ssm-parameter/store";
import type { Distribution, SsmParameterTarget } from "../providers/aws-ssm-parameter/spec";

// The Run Command document's script, run with `sh` as aws:runShellScript runs it, against stub
// `aws` and `curl` commands: the credentials file it leaves, its mode, and what a failed read does.

const target = (format: SsmParameterTarget["format"], profile = "default"): SsmParameterTarget => ({ type: "aws-ssm-parameter", path: "/ci/deploy", format, fileName: "credentials", profile, tier: "Standard" });
const values: Record<string, string> = {
    "/ci/deploy/AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000000001",
    "/ci/deploy/AWS_SECRET_ACCESS_KEY": "secret/with+chars=and'quote",
    "/ci/deploy/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE000000001\naws_secret_access_key = s3cr3t\n",
};

/** Run the document's lines with sh in a sandbox; `failOn` makes the stub `aws` fail for that parameter. */
function run(t: SsmParameterTarget, d: Omit<Distribution, "owner"> & { owner?: string }, failOn?: string): { status: number; dir: string; file: string } {
    const dir = mkdtempSync(join(tmpdir(), "ssm-doc-"));
    const bin = join(dir, "bin");
    execFileSync("mkdir", ["-p", bin]);
    writeFileSync(join(bin, "curl"), "#!/bin/sh\ncase \"$*\" in *api/token*) echo token ;; *region*) echo eu-west-1 ;; esac\n");
    const cases = Object.entries(values)
        .map(([name, value]) => `  ${name}) ${name === failOn ? "echo 'AccessDeniedException' >&2; exit 254" : `printf '%s\\n' ${shellQuote(value.replace(/\n$/, ""))}`} ;;`)
        .join("\n");
    writeFileSync(join(bin, "aws"), `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --name ] && NAME=$2; shift; done\ncase "$NAME" in\n${cases}\nesac\n`);
    chmodSync(join(bin, "curl"), 0o755);
    chmodSync(join(bin, "aws"), 0o755);
    const user = userInfo().username;
    const file = join(dir, "home", ".aws", "credentials");
    const doc = JSON.parse(distributionDocument(t, { owner: user, group: undefined, ...d, path: file } as Distribution));
    const script = (doc.mainSteps[0].inputs.runCommand as string[]).join("\n");
    try {
        execFileSync("sh", ["-c", script], { env: { PATH: `${bin}:/usr/bin:/bin` }, stdio: "pipe" });
        return { status: 0, dir, file };
    } catch (e) {
        return { status: (e as { status: number }).status, dir, file };
    }
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

const user = userInfo().username;
const distribute = { instanceTag: { key: "ci-runner", value: "deploy" }, path: "", profile: "default", owner: user };

describe("the delivery document's script", () => {
    it("writes the two parameters as a credentials file, mode 0400, the owner's", () => {
        const { status, file } = run(target("parameters"), distribute);
        assert.equal(status, 0);
        assert.equal(readFileSync(file, "utf8"), `[default]\naws_access_key_id = AKIAEXAMPLE000000001\naws_secret_access_key = secret/with+chars=and'quote\n`);
        assert.equal(statSync(file).mode & 0o777, 0o400);
        assert.equal(statSync(join(file, "..")).mode & 0o777, 0o700);
    });

    it("copies a credentials-file parameter as it is, or under another profile", () => {
        const same = run(target("credentials-file"), distribute);
        assert.equal(same.status, 0);
        assert.equal(readFileSync(same.file, "utf8"), values["/ci/deploy/credentials"]);
        const other = run(target("credentials-file"), { ...distribute, profile: "deploy" });
        assert.equal(other.status, 0);
        assert.equal(readFileSync(other.file, "utf8"), values["/ci/deploy/credentials"].replace("[default]", "[deploy]"));
    });

    it("leaves the old file and no temporary file when a read fails (sh has no pipefail: no value goes through a pipe)", () => {
        for (const [t, failOn, profile] of [
            [target("parameters"), "/ci/deploy/AWS_SECRET_ACCESS_KEY", "default"],
            [target("credentials-file"), "/ci/deploy/credentials", "deploy"],
        ] as const) {
            const first = run(t, { ...distribute, profile });
            assert.equal(first.status, 0);
            const before = readFileSync(first.file, "utf8");
            // Run again in the same sandbox with the read failing.
            const doc = JSON.parse(distributionDocument(t, { ...distribute, profile, path: first.file, owner: user } as Distribution));
            const script = (doc.mainSteps[0].inputs.runCommand as string[]).join("\n");
            const aws = join(first.dir, "bin", "aws");
            writeFileSync(aws, readFileSync(aws, "utf8").replace(new RegExp(`  ${failOn}\\) [^\\n]*`), `  ${failOn}) echo AccessDeniedException >&2; exit 254 ;;`));
            assert.throws(() => execFileSync("sh", ["-c", script], { env: { PATH: `${join(first.dir, "bin")}:/usr/bin:/bin` }, stdio: "pipe" }));
            assert.equal(readFileSync(first.file, "utf8"), before, "the old file stays");
            assert.deepEqual(readdirSync(join(first.file, "..")), ["credentials"], "no temporary file is left");
        }
    });
});
