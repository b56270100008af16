/**
 * Scenarios with GitHub targets: the fake GitHub REST API (`github-fake.ts`) and the test-only
 * GitHub plugin (`github-provider.ts`, `github-rig/`), beside a GitLab target.
 */
import assert from "node:assert/strict";
import { startGithubFake, type GithubFake } from "./github-fake";
import { githubStackConfig, installGithubProvider } from "./github-provider";
import { log } from "./rig";
import { errorLines, Stack, tail, type Context, type Scenario } from "./scenarios";

const DAY = 24 * 3_600_000;

async function githubStack(ctx: Context, name: string, user: string, project: number, repository: string): Promise<{ stack: Stack; gh: GithubFake }> {
    const gh = await startGithubFake({ repositories: [repository] });
    // The plugin's 1 s waits after each write, shortened (github-rig/rest.ts).
    const stack = await Stack.create(ctx, name, [{ name: "deploy", user, project, githubRepository: repository }], {}, { GITHUB_RIG_TIME_SCALE: "0.05" });
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
        title: "GitHub refuses the secret write during a mint (500 every time): the run fails, CI's key stays Active, and the next runs leave GitHub holding the current key",
        async run(ctx) {
            const user = "ci-deploy-gh-fail";
            const repository = "acme/web";
            const { stack, gh } = await githubStack(ctx, "githubfail", user, 1203, repository);
            try {
                const first = await stack.up(0);
                assert.equal(first.code, 0, `first pulumi up exited ${first.code}:\n${tail(first.stdout + first.stderr)}`);
                const k1 = await stack.assertTargetHoldsLiveKey(user, 1203);
                const rotationBefore = JSON.stringify((await stack.outputs()).rotation);
                // GitHub's updated_at and IAM's CreateDate are real time, compared with 60 s of skew
                // (rotation/pulumi/verify.ts): leave more than that between the first write and the next key.
                await new Promise((r) => setTimeout(r, 65_000));
                const stop = gh.fail({ method: "PUT", path: `/repos/${repository}/actions/secrets/AWS_SECRET_ACCESS_KEY`, status: 500, times: Infinity });
                const failed = await stack.up(8 * DAY);
                stop();
                assert.notEqual(failed.code, 0, "the run whose GitHub write failed exited 0");
                assert.equal(JSON.stringify((await stack.outputs()).rotation), rotationBefore, "the saved rotation state advanced after a failed GitHub write");
                assert.equal((await stack.iamKeys(user)).find((k) => k.id === k1)?.status, "Active", "the key CI holds was deactivated");

                for (const [i, offset] of [8 * DAY + 3_600_000, 8 * DAY + 2 * 3_600_000].entries()) {
                    const r = await stack.up(offset);
                    if (i === 1) assert.equal(r.code, 0, `the second run after the failure exited ${r.code}: ${errorLines(r.stdout + r.stderr)}`);
                    else if (r.code !== 0) log(`G3: the first run after the failure exited ${r.code}: ${errorLines(r.stdout + r.stderr)}`);
                }
                const held = await stack.assertTargetHoldsLiveKey(user, 1203);
                assert.notEqual(held, k1, "the rotation never completed");
                assertGithubHolds(gh, repository, held, stack.variables(1203).get("AWS_SECRET_ACCESS_KEY")?.value);
                assert.ok((await stack.iamKeys(user)).length <= 2, "a third key");
            } finally {
                await stack.dispose();
                await gh.stop();
            }
        },
    },
];
