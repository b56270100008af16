/**
 * The GitHub REST client of the test-only GitHub plugin, shaped like the one the real provider
 * uses by default (terraform-provider-github v6.13.0, `legacy_client` defaults to true in
 * `github/provider.go`; `Config.AuthenticatedHTTPClient` and `RateLimitedHTTPClient` in
 * `github/config.go`):
 * - requests of one provider instance run one at a time (`RateLimitTransport.smartLock` unless
 *   `parallel_requests`), and after a write (POST, PUT, PATCH, DELETE) the next request waits
 *   `write_delay_ms` (default 1000; reads `read_delay_ms`, default 0) (`github/transport.go`);
 * - `RetryTransport` (outermost, `github/transport.go`) retries an answer with status 500, 502,
 *   503 or 504 (`getDefaultRetryableErrors`) and a connection error, up to `max_retries` (default 3)
 *   more times, `retry_delay_ms` (default 1000) apart, then hands back the last answer;
 * - errors read like go-github's `ErrorResponse.Error()` (`github/github.go`):
 *   `PUT <url>: 500 Server Error []`.
 * Every sleep is multiplied by `timeScale` (the rig's `GITHUB_RIG_TIME_SCALE`, default 1).
 */

/** Transport settings, as the provider's configuration names them. */
export interface RestOptions {
    /** REST root ending in `/`, e.g. `http://127.0.0.1:4000/api/v3/`. */
    apiRoot: string;
    token?: string;
    writeDelayMs: number;
    readDelayMs: number;
    retryDelayMs: number;
    maxRetries: number;
    timeScale: number;
}

/** A failed GitHub call; `status` 0 for a connection error. */
export class GithubApiError extends Error {
    constructor(
        message: string,
        readonly status: number,
    ) {
        super(message);
    }
}

const retryable = new Set([500, 502, 503, 504]);
const isWrite = (method: string) => method !== "GET" && method !== "HEAD";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A GitHub REST client for one provider instance. */
export class GithubRest {
    private queue: Promise<unknown> = Promise.resolve();
    private nextDelayMs = 0;

    constructor(readonly opts: RestOptions) {}

    /** One API call; answers 2xx with the parsed body, anything else with a `GithubApiError`. */
    async call<T = Record<string, any>>(method: string, path: string, body?: unknown): Promise<T> {
        const url = new URL(path.replace(/^\//, ""), this.opts.apiRoot).toString();
        let last: { status: number; text: string } | undefined;
        let lastError: unknown;
        for (let attempt = 0; attempt <= this.opts.maxRetries; attempt++) {
            try {
                last = await this.serialized(method, url, body);
                lastError = undefined;
                if (!retryable.has(last.status)) break;
            } catch (e) {
                last = undefined;
                lastError = e;
            }
            await sleep(this.opts.retryDelayMs * this.opts.timeScale);
        }
        if (!last) {
            const cause = lastError instanceof Error ? (lastError.cause instanceof Error ? lastError.cause.message : lastError.message) : String(lastError);
            throw new GithubApiError(`${method[0]}${method.slice(1).toLowerCase()} "${url}": ${cause}`, 0);
        }
        if (last.status >= 200 && last.status < 300) return (last.text ? JSON.parse(last.text) : {}) as T;
        let message = "";
        try {
            message = String((JSON.parse(last.text) as { message?: unknown }).message ?? "");
        } catch {
            message = "";
        }
        throw new GithubApiError(`${method} ${url}: ${last.status} ${message} []`, last.status);
    }

    private serialized(method: string, url: string, body: unknown): Promise<{ status: number; text: string }> {
        const run = async () => {
            if (this.nextDelayMs > 0) await sleep(this.nextDelayMs * this.opts.timeScale);
            this.nextDelayMs = isWrite(method) ? this.opts.writeDelayMs : this.opts.readDelayMs;
            const res = await fetch(url, {
                method,
                headers: {
                    accept: "application/vnd.github.v3+json",
                    "user-agent": "go-github/v88.0.0",
                    ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
                    ...(body === undefined ? {} : { "content-type": "application/json" }),
                },
                body: body === undefined ? undefined : JSON.stringify(body),
            });
            return { status: res.status, text: await res.text() };
        };
        const p = this.queue.then(run, run);
        this.queue = p.catch(() => undefined);
        return p;
    }
}
