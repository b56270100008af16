import type { STSClient } from "@aws-sdk/client-sts";
const backoff = [1, 2];
export async function confirm(sts: Pick<STSClient, "send">, x: string): Promise<string> {
    return `${x}${backoff.length}${typeof sts}`;
}
