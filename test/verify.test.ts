import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RetryClock } from "../rotation/core/aws-calls";
import { confirmTargetWrites, keyCheckChanged, runKeyCheck, targetCheckChanged, type KeyCheckInputs, type TargetCheckInputs } from "../rotation/pulumi/verify";

const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const userArn = "arn:aws:iam::123456789012:user/ci/ci-deploy";
const inputs: KeyCheckInputs = {
    kind: "key-check",
    set: "deploy",
    accessKeyId: "AKIANEWKEY0000000002",
    secretAccessKey: SECRET,
    userArn,
    region: "eu-west-1",
    timeoutMs: 30_000,
};

function fakeClock(): RetryClock {
    let t = Date.parse("2026-11-08T00:30:00Z");
    return { now: () => t, sleep: async (ms) => void (t += ms) };
}

/** Run `fn` with console output captured; returns everything printed. */
async function captureConsole(fn: () => Promise<unknown>): Promise<string> {
    const printed: string[] = [];
    const methods = ["log", "info", "warn", "error", "debug"] as const;
    const saved = methods.map((m) => console[m]);
    for (const m of methods) console[m] = (...args: unknown[]) => void printed.push(args.map(String).join(" "));
    try {
        await fn().catch((err) => printed.push(String(err), String((err as Error)?.stack)));
    } finally {
        methods.forEach((m, i) => (console[m] = saved[i]));
    }
    return printed.join("\n");
}

describe("the key check's provider logic", () => {
    it("signs with the key under test, in the provider's region, and returns outputs without the secret", async () => {
        const made: unknown[] = [];
        const outs = await runKeyCheck(
            inputs,
            (creds) => {
                made.push(creds);
                return { send: async (c: unknown) => (assert.ok(c instanceof GetCallerIdentityCommand), { Arn: userArn }) };
            },
            fakeClock(),
        );
        assert.deepEqual(made, [{ region: "eu-west-1", accessKeyId: "AKIANEWKEY0000000002", secretAccessKey: SECRET }]);
        assert.deepEqual(outs, {
            kind: "key-check",
            set: "deploy",
            accessKeyId: "AKIANEWKEY0000000002",
            userArn,
            region: "eu-west-1",
            confirmedAt: "2026-11-08T00:30:00.000Z",
            attempts: 1,
        });
        assert.ok(!JSON.stringify(outs).includes(SECRET));
    });

    it("never prints or throws the secret, even when an SDK error quotes it", async () => {
        let thrown: Error | undefined;
        const printed = await captureConsole(async () => {
            try {
                await runKeyCheck(
                    inputs,
                    () => ({
                        send: async () => {
                            throw Object.assign(new Error(`signature mismatch for secret ${SECRET}`), { name: "SignatureDoesNotMatch", cause: { secret: SECRET } });
                        },
                    }),
                    fakeClock(),
                );
            } catch (err) {
                thrown = err as Error;
                throw err;
            }
        });
        assert.ok(thrown);
        assert.equal(thrown.name, "KeyCheckError");
        assert.match(thrown.message, /Key AKIANEWKEY0000000002 of set "deploy" did not authenticate/);
        assert.match(thrown.message, /SignatureDoesNotMatch: signature mismatch for secret \[redacted\]/);
        for (const text of [thrown.message, String(thrown.stack), JSON.stringify(thrown), String(thrown.cause), printed]) {
            assert.ok(!text.includes(SECRET), `the secret leaked into: ${text.slice(0, 200)}`);
        }
        assert.equal(thrown.cause, undefined);
    });

    it("a key without a secret (an adopted key) is refused without calling STS", async () => {
        let called = false;
        await assert.rejects(
            runKeyCheck({ ...inputs, secretAccessKey: "" }, () => ({ send: async () => ((called = true), { Arn: userArn }) }), fakeClock()),
            /has no secret to check: only a key minted by ci-key-rotation can be checked and pushed/,
        );
        assert.equal(called, false);
    });

    it("runs again only for another key, user or region; a new validateTimeout calls nothing", () => {
        const olds = { ...inputs, secretAccessKey: undefined, confirmedAt: "x", attempts: 1 };
        assert.equal(keyCheckChanged(olds, inputs), false);
        assert.equal(keyCheckChanged(olds, { ...inputs, timeoutMs: 120_000 }), false);
        assert.equal(keyCheckChanged(olds, { ...inputs, accessKeyId: "AKIANEWKEY0000000003" }), true);
        assert.equal(keyCheckChanged(olds, { ...inputs, userArn: "arn:aws:iam::123456789012:user/ci2/ci-deploy" }), true);
        assert.equal(keyCheckChanged(olds, { ...inputs, region: "us-east-1" }), true);
    });
});

describe("the target check's logic", () => {
    const check = (writes: TargetCheckInputs["writes"], keyCreatedAt: string | undefined = "2026-11-08T00:30:05Z"): TargetCheckInputs => ({
        kind: "target-check",
        set: "deploy",
        accessKeyId: "AKIANEWKEY0000000002",
        keyCreatedAt,
        writes,
    });
    const repo = { target: "github repository acme/api", path: "credentials[0].targets[0]" };

    it("passes when every secret was written after the key was created", () => {
        const out = confirmTargetWrites(
            check([
                { ...repo, what: "secret AWS_ACCESS_KEY_ID", writtenAt: "2026-11-08T00:30:41Z" },
                { ...repo, what: "secret AWS_SECRET_ACCESS_KEY", writtenAt: "2026-11-08T00:30:42Z" },
            ]),
        );
        assert.equal(out.confirmed, 2);
        assert.deepEqual(out.unconfirmed, []);
    });

    it("tolerates a store clock slightly behind AWS's", () => {
        assert.equal(confirmTargetWrites(check([{ ...repo, what: "secret AWS_ACCESS_KEY_ID", writtenAt: "2026-11-08T00:29:30Z" }])).confirmed, 1);
    });

    it("fails naming every target whose write is older than the key", () => {
        const env = { target: "github environment acme/api:production", path: "credentials[0].targets[1]" };
        assert.throws(
            () =>
                confirmTargetWrites(
                    check([
                        { ...repo, what: "secret AWS_SECRET_ACCESS_KEY", writtenAt: "2026-11-08T00:30:40Z" },
                        { ...env, what: "secret PROD_SECRET", writtenAt: "2026-11-01T00:00:09Z" },
                        { ...env, what: "secret PROD_KEY_ID", accessKeyId: "AKIAOLDKEY0000000001" },
                    ]),
                ),
            (err: Error) => {
                assert.equal(err.name, "TargetCheckError");
                assert.match(err.message, /^Set "deploy": 2 targets did not take key AKIANEWKEY0000000002:/);
                assert.match(
                    err.message,
                    /`credentials\[0\]\.targets\[1\]` \(github environment acme\/api:production\): secret PROD_SECRET was last written at 2026-11-01T00:00:09Z, before key AKIANEWKEY0000000002 was created at 2026-11-08T00:30:05Z/,
                );
                assert.match(err.message, /secret PROD_KEY_ID holds key AKIAOLDKEY0000000001, not AKIANEWKEY0000000002/);
                assert.doesNotMatch(err.message, /targets\[0\]/);
                assert.match(err.message, /nothing was deactivated/);
                // A replacement of a store resource can delete the value it just wrote (issue 9).
                assert.doesNotMatch(err.message, /--replace <urn>/);
                assert.match(err.message, /pulumi up --refresh/);
                return true;
            },
        );
    });

    it("a store that cannot tell is reported as unconfirmed, not as a failure", () => {
        const out = confirmTargetWrites(check([{ ...repo, what: "secret AWS_ACCESS_KEY_ID" }], undefined));
        assert.deepEqual([out.confirmed, out.unconfirmed], [0, ["credentials[0].targets[0] secret AWS_ACCESS_KEY_ID"]]);
    });

    it("runs again only when the key or the evidence changed, whatever the key order on the wire", () => {
        const a = check([{ ...repo, what: "secret X", writtenAt: "2026-11-08T00:30:41Z" }]);
        const reordered = { writes: [{ writtenAt: "2026-11-08T00:30:41Z", what: "secret X", path: repo.path, target: repo.target }], keyCreatedAt: a.keyCreatedAt, accessKeyId: a.accessKeyId };
        assert.equal(targetCheckChanged(a, reordered), false);
        assert.equal(targetCheckChanged(a, check([{ ...repo, what: "secret X", writtenAt: "2026-11-09T00:00:00Z" }])), true);
        assert.equal(targetCheckChanged(a, { ...a, accessKeyId: "AKIANEWKEY0000000003" }), true);
    });
});
