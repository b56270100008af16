import { GetAccessKeyLastUsedCommand } from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { confirmKeyIdentity, readLastUse, sdkClientConfig, type KeyIdentityCheck, type RetryClock } from "../rotation/core/aws-calls";

const userArn = "arn:aws:iam::123456789012:user/ci/ci-deploy";
const check: KeyIdentityCheck = { set: "deploy", accessKeyId: "AKIANEWKEY0000000002", userArn, region: "eu-west-1", timeoutMs: 30_000 };

/** A clock that advances only when the code under test sleeps. */
function fakeClock(): RetryClock & { sleeps: number[] } {
    let t = 0;
    const sleeps: number[] = [];
    return {
        sleeps,
        now: () => t,
        sleep: async (ms) => {
            sleeps.push(ms);
            t += ms;
        },
    };
}

/** An STS fake that rejects the first `failures` calls like IAM does for a key not yet propagated. */
function sts(failures: number, arn = userArn) {
    const calls: unknown[] = [];
    return {
        calls,
        async send(command: unknown) {
            calls.push(command);
            assert.ok(command instanceof GetCallerIdentityCommand, "only GetCallerIdentity is called");
            if (calls.length <= failures) {
                throw Object.assign(new Error("The security token included in the request is invalid."), { name: "InvalidClientTokenId" });
            }
            return { Arn: arn, Account: "123456789012", UserId: "AIDAEXAMPLE" };
        },
    };
}

describe("new key check (STS GetCallerIdentity)", () => {
    it("retries with growing waits while IAM propagates the key, then succeeds", async () => {
        const clock = fakeClock();
        const client = sts(4);
        const result = await confirmKeyIdentity(client, check, clock);
        assert.deepEqual(result, { arn: userArn, attempts: 5 });
        assert.deepEqual(clock.sleeps, [1000, 2000, 4000, 8000]);
    });

    it("succeeds at once without waiting when the key already works", async () => {
        const clock = fakeClock();
        assert.deepEqual(await confirmKeyIdentity(sts(0), check, clock), { arn: userArn, attempts: 1 });
        assert.deepEqual(clock.sleeps, []);
    });

    it("gives up within validateTimeout with a message naming the key, the last error and the setting", async () => {
        const clock = fakeClock();
        const client = sts(Infinity);
        await assert.rejects(confirmKeyIdentity(client, check, clock), (err: Error) => {
            assert.equal(err.name, "KeyCheckError");
            assert.match(err.message, /Key AKIANEWKEY0000000002 of set "deploy" did not authenticate/);
            assert.match(err.message, /within 30s: 6 attempts, last error InvalidClientTokenId: The security token/);
            assert.match(err.message, /nothing was deactivated; the next run checks it again/);
            assert.match(err.message, /raise `validateTimeout` for set "deploy"/);
            return true;
        });
        // Bounded: never sleeps past the timeout, and the back-off is capped.
        assert.deepEqual(clock.sleeps, [1000, 2000, 4000, 8000, 8000]);
        assert.ok(clock.now() <= check.timeoutMs);
        assert.equal(client.calls.length, 6);
    });

    it("a zero timeout makes exactly one attempt", async () => {
        const clock = fakeClock();
        const client = sts(Infinity);
        await assert.rejects(confirmKeyIdentity(client, { ...check, timeoutMs: 0 }, clock), /within 0s: 1 attempt, last error/);
        assert.equal(client.calls.length, 1);
    });

    it("fails at once, without retrying, when the key authenticates as another principal", async () => {
        const clock = fakeClock();
        const client = sts(0, "arn:aws:iam::123456789012:user/someone-else");
        await assert.rejects(confirmKeyIdentity(client, check, clock), (err: Error) => {
            assert.match(err.message, /authenticates as arn:aws:iam::123456789012:user\/someone-else, not as the set's user arn:aws:iam::123456789012:user\/ci\/ci-deploy/);
            return true;
        });
        assert.equal(client.calls.length, 1);
        assert.deepEqual(clock.sleeps, []);
    });
});

describe("last use of a key (IAM GetAccessKeyLastUsed)", () => {
    const iam = (answer: unknown) => {
        const calls: unknown[] = [];
        return {
            calls,
            async send(command: unknown) {
                calls.push(command);
                assert.ok(command instanceof GetAccessKeyLastUsedCommand);
                assert.deepEqual(command.input, { AccessKeyId: "AKIAOLDKEY0000000001" });
                if (answer instanceof Error) throw answer;
                return answer;
            },
        };
    };

    it("reports time, service and region of the last use", async () => {
        const use = await readLastUse(
            iam({ UserName: "ci-deploy", AccessKeyLastUsed: { LastUsedDate: new Date("2026-11-20T10:15:00Z"), ServiceName: "s3", Region: "eu-west-1" } }),
            "ci-deploy",
            "AKIAOLDKEY0000000001",
        );
        assert.deepEqual(use, { at: "2026-11-20T10:15:00.000Z", service: "s3", region: "eu-west-1" });
    });

    it("a never-used key has no time, and IAM's N/A service and region are dropped", async () => {
        const use = await readLastUse(iam({ UserName: "ci-deploy", AccessKeyLastUsed: { ServiceName: "N/A", Region: "N/A" } }), "ci-deploy", "AKIAOLDKEY0000000001");
        assert.deepEqual(use, {});
    });

    it("a use with service but region N/A (global services such as IAM) keeps the service", async () => {
        const use = await readLastUse(
            iam({ UserName: "ci-deploy", AccessKeyLastUsed: { LastUsedDate: new Date("2026-11-20T10:15:00Z"), ServiceName: "iam", Region: "N/A" } }),
            "ci-deploy",
            "AKIAOLDKEY0000000001",
        );
        assert.deepEqual(use, { at: "2026-11-20T10:15:00.000Z", service: "iam" });
    });

    it("access denied names the permission and the way to switch the gate off", async () => {
        const denied = Object.assign(new Error("User: arn:aws:iam::123456789012:user/ops is not authorized to perform: iam:GetAccessKeyLastUsed"), { name: "AccessDenied" });
        await assert.rejects(readLastUse(iam(denied), "ci-deploy", "AKIAOLDKEY0000000001"), (err: Error) => {
            assert.match(err.message, /key AKIAOLDKEY0000000001 \(IAM user ci-deploy\)/);
            assert.match(err.message, /Allow `iam:GetAccessKeyLastUsed`/);
            assert.match(err.message, /`lastUsedGate: false`/);
            return true;
        });
    });

    it("a key of another user is refused", async () => {
        await assert.rejects(readLastUse(iam({ UserName: "someone", AccessKeyLastUsed: {} }), "ci-deploy", "AKIAOLDKEY0000000001"), /belongs to someone, not ci-deploy; check the set's `user.name`/);
    });
});

describe("SDK clients use the AWS provider's configuration", () => {
    const config = (values: Record<string, string>) => (key: string) => values[key];

    it("region from aws:region first, then AWS_REGION, AWS_DEFAULT_REGION, us-east-1", () => {
        assert.equal(sdkClientConfig(config({ "aws:region": "eu-west-1" }), { AWS_REGION: "us-west-2" }).region, "eu-west-1");
        assert.equal(sdkClientConfig(config({}), { AWS_REGION: "us-west-2", AWS_DEFAULT_REGION: "ap-south-1" }).region, "us-west-2");
        assert.equal(sdkClientConfig(config({}), { AWS_DEFAULT_REGION: "ap-south-1" }).region, "ap-south-1");
        assert.equal(sdkClientConfig(config({ "aws:region": "" }), {}).region, "us-east-1");
    });

    it("a profile from aws:profile", () => {
        assert.deepEqual(sdkClientConfig(config({ "aws:region": "eu-west-1", "aws:profile": "ci-admin" }), {}), { region: "eu-west-1", profile: "ci-admin" });
    });

    it("static keys from aws:accessKey and aws:secretKey win over a profile", () => {
        const c = sdkClientConfig(config({ "aws:accessKey": "AKIAADMIN", "aws:secretKey": "s3cr3t", "aws:token": "tok", "aws:profile": "p" }), {});
        assert.deepEqual(c, { region: "us-east-1", credentials: { accessKeyId: "AKIAADMIN", secretAccessKey: "s3cr3t", sessionToken: "tok" } });
    });

    it("nothing configured leaves the SDK's default chain (environment, shared files, instance role)", () => {
        assert.deepEqual(sdkClientConfig(config({}), { AWS_REGION: "eu-central-1" }), { region: "eu-central-1" });
    });
});
