import type { IAMClient } from "@aws-sdk/client-iam";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { readLastUse, sdkClientConfig, type SdkClientConfig } from "../core/aws-calls";
import type { LastUse, ObservedKey } from "../core/plan";

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
 * region and credentials the provider is configured with ({@link providerSdkConfig}).
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
                if (isUserNotFound(String((err as Error)?.message ?? err))) return [];
                throw err;
            }
        },
        async lastUse(userName, accessKeyId) {
            iam ??= makeIam();
            return readLastUse(iam, userName, accessKeyId);
        },
    };
}

/**
 * Whether a `getAccessKeys` failure means "this IAM user does not exist". The provider does not
 * pass NoSuchEntity through: terraform-provider-aws `internal/service/iam/access_key.go`
 * (`findAccessKeys`) wraps it in a `retry.NotFoundError` without message, whose text is
 * "couldn't find resource", and `data_source_access_keys.go` prefixes
 * "reading IAM Access Keys (<user>): ". A raw `NoSuchEntity` is accepted too (older providers).
 */
export function isUserNotFound(message: string): boolean {
    return /NoSuchEntity/.test(message) || /reading IAM Access Keys \([^)]*\): couldn't find resource/.test(message);
}

/** The SDK client configuration matching the AWS provider's (`aws:region`, `aws:profile`, static keys, environment). */
export function providerSdkConfig(env: NodeJS.ProcessEnv = process.env): SdkClientConfig {
    // Raw reads: `pulumi.Config.get` warns on secret keys such as `aws:secretKey`, and the value
    // only ever goes into an SDK client.
    return sdkClientConfig((key) => pulumi.runtime.getConfig(key), env);
}

function defaultIamClient(): IAMClient {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { IAMClient } = require("@aws-sdk/client-iam") as typeof import("@aws-sdk/client-iam");
    return new IAMClient(providerSdkConfig());
}
