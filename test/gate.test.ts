import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DateTime } from "luxon";
import type { AwsObserver } from "../rotation/pulumi/aws";
import { validateConfig } from "../rotation/core/config";
import type { LastUse } from "../rotation/core/plan";
import { decideAll, RotationBlockedError } from "../rotation/pulumi/program";
import type { RotationState } from "../rotation/core/state";

const OLD = "AKIAOLDKEY0000000001";
const NEW = "AKIANEWKEY0000000002";

/** A set in `pushed`: key 2 reached every target on Nov 8 at 00:00; overlap 24h, settle 6h, gateTimeout 1 day. */
const previous: RotationState = {
    version: 1,
    asOf: "2026-11-08T00:00:00Z",
    sets: {
        deploy: {
            generation: 2,
            phase: "pushed",
            keys: [
                { generation: 1, accessKeyId: OLD, status: "Active", createdAt: "2026-11-01T00:00:00Z", pushedAt: "2026-11-01T00:00:00Z" },
                { generation: 2, accessKeyId: NEW, status: "Active", createdAt: "2026-11-08T00:00:00Z", pushedAt: "2026-11-08T00:00:00Z" },
            ],
            changedAt: "2026-11-08T00:00:00Z",
        },
    },
};

function configWith(rotation: Record<string, unknown> = {}) {
    const result = validateConfig({ credentials: [{ name: "deploy", targets: [{ type: "github-repository", repository: "acme/api" }], rotation }] });
    assert.ok(result.ok, JSON.stringify(result));
    return result.config;
}

/** IAM as the observer sees it: both keys Active; the old key's last use as given. */
function observer(use: LastUse | Error) {
    const asked: string[] = [];
    const o: AwsObserver = {
        listKeys: async () => [
            { accessKeyId: OLD, status: "Active" },
            { accessKeyId: NEW, status: "Active" },
        ],
        lastUse: async (_user, id) => {
            asked.push(id);
            if (use instanceof Error) throw use;
            return use;
        },
    };
    return { o, asked };
}

const decide = async (now: string, use: LastUse | Error, rotation: Record<string, unknown> = {}) => {
    const { o, asked } = observer(use);
    const { decisions, blocked } = await decideAll(configWith(rotation), previous, DateTime.fromISO(now, { setZone: true }), o);
    if (blocked.size > 0) throw new RotationBlockedError([...blocked.values()], [...blocked.keys()]);
    return { decision: decisions.get("deploy")!, asked };
};

describe("the last-used gate, through decideAll", () => {
    it("open: no use after push + settle, so the old key is deactivated", async () => {
        const { decision, asked } = await decide("2026-11-09T01:00:00Z", { at: "2026-11-08T05:59:00Z", service: "s3", region: "eu-west-1" });
        assert.deepEqual(asked, [OLD]);
        assert.equal(decision.step, "deactivate");
        assert.deepEqual(decision.keys.map((k) => [k.accessKeyId, k.status]), [[OLD, "Inactive"], [NEW, "Active"]]);
        assert.deepEqual(decision.warnings, []);
    });

    it("open: a key never used (no LastUsedDate) passes", async () => {
        const { decision } = await decide("2026-11-09T01:00:00Z", {});
        assert.equal(decision.step, "deactivate");
    });

    it("closed: use after push + settle holds the key, warning with key id, time, service and region", async () => {
        const { decision } = await decide("2026-11-09T01:00:00Z", { at: "2026-11-08T22:10:00Z", service: "s3", region: "eu-west-1" });
        assert.equal(decision.step, "none");
        assert.deepEqual(decision.keys.map((k) => k.status), ["Active", "Active"]);
        assert.equal(decision.warnings.length, 1);
        const [w] = decision.warnings;
        assert.match(w, /key AKIAOLDKEY0000000001 \(generation 1\) of set "deploy" was last used at 2026-11-08T22:10:00Z \(s3 in eu-west-1\)/);
        assert.match(w, /waits until that stops, or until 2026-11-10T00:00:00.000Z \(gateTimeout\)/);
    });

    it("timeout, onGateTimeout fail (the default): the run fails naming the key and the settings", async () => {
        await assert.rejects(decide("2026-11-10T00:30:00Z", { at: "2026-11-10T00:10:00Z", service: "ec2", region: "us-east-1" }), (err: Error) => {
            assert.ok(err instanceof RotationBlockedError);
            assert.match(err.message, /key AKIAOLDKEY0000000001 \(generation 1\) of set "deploy" was last used at 2026-11-10T00:10:00Z \(ec2 in us-east-1\)/);
            assert.match(err.message, /The gate timed out at 2026-11-10T00:00:00.000Z and onGateTimeout is "fail"/);
            assert.match(err.message, /`lastUsedGate: false` or `onGateTimeout: proceed`/);
            return true;
        });
    });

    it("timeout, onGateTimeout proceed: deactivated anyway, with a warning", async () => {
        const { decision } = await decide("2026-11-10T00:30:00Z", { at: "2026-11-10T00:10:00Z", service: "ec2", region: "us-east-1" }, { onGateTimeout: "proceed" });
        assert.equal(decision.step, "deactivate");
        assert.match(decision.warnings.join("\n"), /deactivating it anyway \(onGateTimeout: proceed\)/);
    });

    it("switched off: IAM is not asked", async () => {
        const { decision, asked } = await decide("2026-11-09T01:00:00Z", new Error("must not be called"), { lastUsedGate: false });
        assert.equal(decision.step, "deactivate");
        assert.deepEqual(asked, []);
    });

    it("before the deactivation is due, IAM is not asked", async () => {
        const { decision, asked } = await decide("2026-11-08T12:00:00Z", new Error("must not be called"));
        assert.equal(decision.step, "none");
        assert.deepEqual(asked, []);
    });

    it("an IAM error reading the last use fails the run, and nothing is decided", async () => {
        await assert.rejects(decide("2026-11-09T01:00:00Z", new Error("Allow `iam:GetAccessKeyLastUsed` ...")), /Allow `iam:GetAccessKeyLastUsed`/);
    });
});
