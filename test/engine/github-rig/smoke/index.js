// Declares one of each GitHub resource ci-key-rotation uses, through an explicit provider,
// for test/engine/github-rig/smoke.ts. Plain JavaScript: the project directory has no tsconfig.
"use strict";
const pulumi = require("@pulumi/pulumi");
const github = require("@pulumi/github");

const config = new pulumi.Config();
const gh = new pulumi.Config("github");
const provider = new github.Provider("acme", { owner: "acme", token: gh.requireSecret("token"), baseUrl: gh.require("baseUrl") });
const opts = { provider };
const value = config.requireSecret("value");
const name = "AWS_SECRET_ACCESS_KEY";

const repo = new github.ActionsSecret("repo", { repository: "api", secretName: name, value }, opts);
new github.ActionsEnvironmentSecret("env", { repository: "deploy", environment: "production", secretName: name, value }, opts);
new github.DependabotSecret("dependabot", { repository: "api", secretName: name, value }, opts);
const org = new github.ActionsOrganizationSecret("org", { secretName: name, visibility: "selected", value }, opts);
const repoId = github.getRepositoryOutput({ fullName: "acme/api" }, opts).repoId;
new github.ActionsOrganizationSecretRepositories("org-repos", { secretName: org.secretName, selectedRepositoryIds: [repoId] }, opts);
new github.ActionsVariable("var", { repository: "api", variableName: "AWS_REGION", value: "eu-west-1" }, opts);
new github.ActionsEnvironmentVariable("env-var", { repository: "deploy", environment: "production", variableName: "AWS_REGION", value: "eu-west-1" }, opts);
new github.ActionsOrganizationVariable("org-var", { variableName: "AWS_REGION", visibility: "all", value: "eu-west-1" }, opts);

exports.repoUpdatedAt = repo.updatedAt;
