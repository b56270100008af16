import type { IAMClient } from "@aws-sdk/client-iam";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { LastUse, ObservedKey } from "./plan";

/** What the program reads from AWS before deciding. Injected so tests need no network. */
export interface AwsObserver {
    /** The user's access keys as IAM lists them; empty when the user does not exist yet. */
    listKeys(userName: string): Promise<ObservedKey[]>;
    /** IAM GetAccessKeyLastUsed for one key. */
    lastUse(userName: string, accessKeyId: string): Promise<LastUse>;
}

/**
 * The observer a real run uses: `aws.iam.getAccessKeys` through the AWS provider, and
 * GetAccessKeyLastUsed through the SDK (the provider has no data source for it) with the
 * region and profile the provider is configured with.
 */
export function providerObserver(makeIam: () => IAMClient = defaultIamClient): AwsObserver {
    let iam: IAMClient | undefined;
    return {
        async listKeys(userName) {
            try {
                const result = await aws.iam.getAccessKeys({ user: userName });
                return result.accessKeys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, createDate: k.createDate }));
            } catch (err) {
                // A user this stack has not created yet has no keys.
                if (/NoSuchEntity/.test(String((err as Error)?.message ?? err))) return [];
                throw err;
            }
        },
        async lastUse(userName, accessKeyId) {
            const { GetAccessKeyLastUsedCommand } = await import("@aws-sdk/client-iam");
            iam ??= makeIam();
            const out = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId }));
            if (out.UserName && out.UserName !== userName) {
                throw new Error(`IAM says key ${accessKeyId} belongs to ${out.UserName}, not ${userName}; check the set's \`user.name\`.`);
            }
            const last = out.AccessKeyLastUsed;
            return {
                at: last?.LastUsedDate?.toISOString(),
                // IAM reports "N/A" for keys never used.
                service: last?.ServiceName && last.ServiceName !== "N/A" ? last.ServiceName : undefined,
                region: last?.Region && last.Region !== "N/A" ? last.Region : undefined,
            };
        },
    };
}

function defaultIamClient(): IAMClient {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { IAMClient } = require("@aws-sdk/client-iam") as typeof import("@aws-sdk/client-iam");
    const config = new pulumi.Config("aws");
    const profile = config.get("profile");
    return new IAMClient({ region: config.get("region") ?? process.env.AWS_REGION ?? "us-east-1", ...(profile ? { profile } : {}) });
}
