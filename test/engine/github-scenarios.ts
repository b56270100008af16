/**
 * Scenarios with GitHub targets: the fake GitHub REST API (`github-fake.ts`) and the test-only
 * GitHub plugin (`github-provider.ts`, `github-rig/`), beside a GitLab target.
 */
import assert from "node:assert/strict";
import { startGithubFake, type GithubFake } from "./github-fake";
import { githubStackConfig, installGithubProvider } from "./github-provider";
import { log } from "./rig";
import { errorLines, Stack, tail, type Context, type Scenario } from "./scenarios";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function githubStack(ctx: Context, name: string, user: string, project: number, repository: string): Promise<{ stack: Stack; gh: GithubFake }> {
    return githubStackOf(ctx, name, [{ name: "deploy", user, project, githubRepository: repository }]);
}

async function githubStackOf(ctx: Context, name: string, sets: Array<{ name: string; user: string; project: number; githubRepository?: string }>): Promise<{ stack: Stack; gh: GithubFake }> {
    const gh = await startGithubFake({ repositories: sets.flatMap((s) => (s.githubRepository ? [s.githubRepository] : [])) });
    // The plugin's 1 s waits after each write, shortened (github-rig/rest.ts).
    const stack = await Stack.create(ctx, name, sets, {}, { GITHUB_RIG_TIME_SCALE: "0.05" });
    try {
        await installGithubProvider(ctx.bins.pulumi, stack.ws.env);
        for (const [key, v] of Object.entries(githubStackConfig(gh))) {
            const r = await stack.cmd(["config", "set", ...(v.secret ? ["--secret"] : []), key, v.value]);
            assert.equal(r.code, 0, `pulumi config set ${key}: ${tail(r.stderr)}`);
        }
    } catch (err) {
        await stack.dispose();
        await gh.stop();
        throw err;
    }
    return { stack, gh };
}

/**
 * After a mint whose GitHub secret write failed: runs at later instants until GitHub and GitLab
 * hold a key other than `k1`. Every run must succeed, IAM never holds more than two keys, and
 * GitHub always holds an Active key (the one GitLab holds, with the state's secret). The first run
 * must write GitHub's secret again (the retry the partial failure used to prevent).
 */
async function recoverAfterRefusedWrite(stack: Stack, gh: GithubFake, set: { user: string; project: number; repository: string }, k1: string, after: number): Promise<string> {
    const writesBefore = gh.secret(`repo:${set.repository}`, "AWS_SECRET_ACCESS_KEY")!.writes;
    let held = k1;
    const offsets = [after + HOUR, 10 * DAY + 2 * HOUR, 14 * DAY + 2 * HOUR, 14 * DAY + 3 * HOUR, 16 * DAY];
    for (const [i, offset] of offsets.entries()) {
        const r = await stack.up(offset);
        const summary = r.code === 0 ? (await stack.outputs()).sets : undefined;
        log(`recovery of ${set.user}: run at +${(offset / DAY).toFixed(2)}d exited ${r.code}${summary ? `: ${JSON.stringify(Object.fromEntries(Object.entries(summary).map(([n, v]: [string, any]) => [n, `${v.step} (${v.reason})`])))}` : `: ${errorLines(r.stdout + r.stderr)}`}`);
        assert.equal(r.code, 0, `the run at +${(offset / DAY).toFixed(2)}d after the refused write exited ${r.code}: ${errorLines(r.stdout + r.stderr)}`);
        if (i === 0) {
            assert.ok(gh.secret(`repo:${set.repository}`, "AWS_SECRET_ACCESS_KEY")!.writes > writesBefore, "the run after the refused write did not write GitHub's secret again");
        }
        const keys = await stack.iamKeys(set.user);
        assert.ok(keys.length <= 2, `IAM has ${keys.length} keys for ${set.user}`);
        held = await stack.assertTargetHoldsLiveKey(set.user, set.project);
        assertGithubHolds(gh, set.repository, held, stack.variables(set.project).get("AWS_SECRET_ACCESS_KEY")?.value);
        if (held !== k1) break;
    }
    return held;
}

/** GitHub holds exactly the key GitLab holds (id and secret), as a job would read them. */
function assertGithubHolds(gh: GithubFake, repository: string, id: string, secret: string | undefined): void {
    assert.equal(gh.secretValue(`repo:${repository}`, "AWS_ACCESS_KEY_ID"), id, `GitHub's AWS_ACCESS_KEY_ID in ${repository} is not ${id}`);
    assert.ok(secret && gh.secretValue(`repo:${repository}`, "AWS_SECRET_ACCESS_KEY") === secret, `GitHub's AWS_SECRET_ACCESS_KEY in ${repository} is not the secret of ${id}`);
}

export const githubScenarios: Scenario[] = [
    {
        id: "G1",
        title: "GitHub and GitLab targets: first up, a rotation at +8d, destroy; GitHub's sealed secrets hold exactly the current key",
        async run(ctx) {
            const user = "ci-deploy-gh";
            const repository = "acme/api";
            const { stack, gh } = await githubStack(ctx, "github", user, 1201, repository);
            try {
                const first = await stack.up(0);
                assert.equal(first.code, 0, `first pulumi up exited ${first.code}:\n${tail(first.stdout + first.stderr)}`);
                const k1 = await stack.assertTargetHoldsLiveKey(user, 1201);
                assertGithubHolds(gh, repository, k1, stack.variables(1201).get("AWS_SECRET_ACCESS_KEY")?.value);

                const second = await stack.up(8 * DAY);
                assert.equal(second.code, 0, `pulumi up at +8d exited ${second.code}:\n${tail(second.stdout + second.stderr)}`);
                const k2 = await stack.assertTargetHoldsLiveKey(user, 1201);
                assert.notEqual(k2, k1);
                assertGithubHolds(gh, repository, k2, stack.variables(1201).get("AWS_SECRET_ACCESS_KEY")?.value);

                const destroy = await stack.cmd(["destroy", "--yes"], { env: { CI_KEY_ROTATION_NOW: stack.at(9 * DAY) } });
                assert.equal(destroy.code, 0, `pulumi destroy exited ${destroy.code}:\n${tail(destroy.stdout + destroy.stderr)}`);
                assert.deepEqual(gh.inventory(), [], "GitHub secrets or variables survived destroy");
            } finally {
                await stack.dispose();
                await gh.stop();
            }
        },
    },
    {
        id: "G3",
        title: "GitHub refuses the secret write during a mint (500 every time): the run fails, CI's key stays Active; the next run writes GitHub again, and the rotation completes without a human",
        async run(ctx) {
            const user = "ci-deploy-gh-fail";
            const repository = "acme/web";
            const { stack, gh } = await githubStack(ctx, "githubfail", user, 1203, repository);
            try {
                const first = await stack.up(0);
                assert.equal(first.code, 0, `first pulumi up exited ${first.code}:\n${tail(first.stdout + first.stderr)}`);
                const k1 = await stack.assertTargetHoldsLiveKey(user, 1203);
                const deployBefore = (await stack.outputs()).rotation.sets.deploy;
                // GitHub's updated_at and IAM's CreateDate are real time, compared with 60 s of skew
                // (rotation/pulumi/verify.ts): leave more than that between the first write and the next key.
                await new Promise((r) => setTimeout(r, 65_000));
                const stop = gh.fail({ method: "PUT", path: `/repos/${repository}/actions/secrets/AWS_SECRET_ACCESS_KEY`, status: 500, times: Infinity });
                const failed = await stack.up(8 * DAY);
                stop();
                assert.notEqual(failed.code, 0, "the run whose GitHub write failed exited 0");
                const { unconfirmed, ...deployAfter } = (await stack.outputs()).rotation.sets.deploy;
                assert.deepEqual(deployAfter, deployBefore, "the saved rotation state advanced after a failed GitHub write");
                assert.equal(unconfirmed?.length, 1, "the refused mint's key is not listed as unconfirmed");
                assert.equal((await stack.iamKeys(user)).find((k) => k.id === k1)?.status, "Active", "the key CI holds was deactivated");

                // The next run retires the key GitHub refused and writes key 1 again (a real write);
                // the retired key goes after `overlap` and `retireAfter`, and the next mint completes.
                const held = await recoverAfterRefusedWrite(stack, gh, { user, project: 1203, repository }, k1, 8 * DAY);
                assert.notEqual(held, k1, "the rotation never completed");
                assert.ok((await stack.iamKeys(user)).length <= 2, "a third key");
            } finally {
                await stack.dispose();
                await gh.stop();
            }
        },
    },
    {
        id: "G3b",
        title: "two sets, one set's GitHub write refused during a mint: the other set completes its mint in the same run, the refused set keeps its state and recovers",
        async run(ctx) {
            const failing = { name: "web", user: "ci-web-gh", project: 1231, repository: "acme/web2" };
            const other = { name: "api", user: "ci-api-gh", project: 1232, repository: "acme/api2" };
            const { stack, gh } = await githubStackOf(ctx, "githubtwo", [
                { name: failing.name, user: failing.user, project: failing.project, githubRepository: failing.repository },
                { name: other.name, user: other.user, project: other.project, githubRepository: other.repository },
            ]);
            try {
                const first = await stack.up(0);
                assert.equal(first.code, 0, `first pulumi up exited ${first.code}:\n${tail(first.stdout + first.stderr)}`);
                const w1 = await stack.assertTargetHoldsLiveKey(failing.user, failing.project);
                const a1 = await stack.assertTargetHoldsLiveKey(other.user, other.project);
                const before = (await stack.outputs()).rotation;
                await new Promise((r) => setTimeout(r, 65_000));
                const stop = gh.fail({ method: "PUT", path: `/repos/${failing.repository}/actions/secrets/AWS_SECRET_ACCESS_KEY`, status: 500, times: Infinity });
                const failed = await stack.up(8 * DAY);
                stop();
                assert.notEqual(failed.code, 0, "the run whose GitHub write failed exited 0");
                const after = (await stack.outputs()).rotation;
                const { unconfirmed: _, ...web } = after.sets[failing.name];
                assert.deepEqual(web, before.sets[failing.name], "the failed set's saved state advanced");
                assert.equal(after.sets[other.name].phase, "pushed", "the other set's mint was not saved");
                const a2 = await stack.assertTargetHoldsLiveKey(other.user, other.project);
                assert.notEqual(a2, a1, "the other set did not take its step in the run where one set's write failed");
                assertGithubHolds(gh, other.repository, a2, stack.variables(other.project).get("AWS_SECRET_ACCESS_KEY")?.value);
                assert.equal((await stack.iamKeys(failing.user)).find((k) => k.id === w1)?.status, "Active", "the key the failed set's CI holds was deactivated");

                const held = await recoverAfterRefusedWrite(stack, gh, failing, w1, 8 * DAY);
                assert.notEqual(held, w1, "the failed set's rotation never completed");
            } finally {
                await stack.dispose();
                await gh.stop();
            }
        },
    },
    {
        id: "G3r",
        title: "a revoke whose GitHub secret write is refused: the old key is off and the run fails; the next run replaces GitHub's secrets (a real write of the new key), and the run after replaces nothing",
        async run(ctx) {
            const user = "ci-deploy-gh-revoke";
            const repository = "acme/leak";
            const project = 1233;
            const { stack, gh } = await githubStack(ctx, "githubrevoke", user, project, repository);
            try {
                const first = await stack.up(0);
                assert.equal(first.code, 0, `first pulumi up exited ${first.code}:\n${tail(first.stdout + first.stderr)}`);
                const k1 = await stack.assertTargetHoldsLiveKey(user, project);
                await new Promise((r) => setTimeout(r, 65_000));
                for (const [key, value] of [["ci-key-rotation:request", "leak-g3r"], ["ci-key-rotation:revoke", "true"]]) {
                    const r = await stack.cmd(["config", "set", key, value]);
                    assert.equal(r.code, 0, `pulumi config set ${key}: ${tail(r.stderr)}`);
                }
                const stop = gh.fail({ method: "PUT", path: `/repos/${repository}/actions/secrets/AWS_SECRET_ACCESS_KEY`, status: 500, times: Infinity });
                const failed = await stack.up(HOUR);
                stop();
                assert.notEqual(failed.code, 0, "the revoke whose GitHub write failed exited 0");
                assert.equal((await stack.iamKeys(user)).find((k) => k.id === k1)?.status, "Inactive", "the revoke did not switch the leaked key off");
                const unconfirmed = (await stack.outputs()).rotation.sets.deploy.unconfirmed as string[] | undefined;
                assert.equal(unconfirmed?.length, 1, "the refused revoke's key is not listed as unconfirmed");

                // The engine's record of AWS_SECRET_ACCESS_KEY claims the new key (the provider saved
                // the planned value); only a replacement writes it.
                const fixed = await stack.up(2 * HOUR);
                log(`G3r: the run after the refused revoke exited ${fixed.code}`);
                assert.equal(fixed.code, 0, `the run after the refused revoke exited ${fixed.code}: ${errorLines(fixed.stdout + fixed.stderr)}`);
                const held = await stack.assertTargetHoldsLiveKey(user, project);
                assert.equal(held, unconfirmed![0], "CI does not hold the revoke's new key");
                assertGithubHolds(gh, repository, held, stack.variables(project).get("AWS_SECRET_ACCESS_KEY")?.value);
                assert.equal((await stack.outputs()).rotation.sets.deploy.rewriteTrigger, held, "the set's entry does not keep the trigger");

                const createdAt = gh.secret(`repo:${repository}`, "AWS_SECRET_ACCESS_KEY")!.createdAt;
                const calm = await stack.up(3 * HOUR);
                assert.equal(calm.code, 0, `the run after exited ${calm.code}: ${errorLines(calm.stdout + calm.stderr)}`);
                assert.equal(gh.secret(`repo:${repository}`, "AWS_SECRET_ACCESS_KEY")!.createdAt, createdAt, "a later run replaced GitHub's secret again");
                assertGithubHolds(gh, repository, held, stack.variables(project).get("AWS_SECRET_ACCESS_KEY")?.value);
            } finally {
                await stack.dispose();
                await gh.stop();
            }
        },
    },
];
