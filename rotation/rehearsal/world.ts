import type { Random } from "./random";

/**
 * The fake outside world of a rehearsal: IAM (users, access keys, last use), STS, and every
 * secret store a target writes to. It enforces the rules the real services enforce (two keys
 * per user, inactive keys count, a wrong secret does not authenticate), so what the simulator
 * reports is observed behaviour, not a model of what the program meant to do.
 */

/** An error as an AWS or CI API would return it: the code is what callers branch on. */
export class ApiError extends Error {
    constructor(
        readonly code: string,
        message: string,
    ) {
        super(`${code}: ${message}`);
        this.name = "ApiError";
    }
}

/** One IAM access key. `secret` is fake material that the simulator never prints. */
export interface FakeKey {
    accessKeyId: string;
    secret: string;
    user: string;
    status: "Active" | "Inactive";
    /** Epoch milliseconds. */
    createdAt: number;
    deactivatedAt?: number;
    deletedAt?: number;
    /** Last successful authentication, as GetAccessKeyLastUsed reports it. */
    lastUsedAt?: number;
    /**
     * When STS first accepts the key. IAM is eventually consistent: a new key is refused for a
     * few seconds after CreateAccessKey returned it (FACTS.md: no fixed bound is documented).
     */
    usableAt: number;
}

/** What a consumer reads from a target: either half may be missing. */
export interface Credentials {
    accessKeyId?: string;
    secret?: string;
    /** Why the job could not get the secret from what the target holds (e.g. KMS refused to decrypt). */
    error?: string;
}

/** The account every fake IAM user lives in. */
export const fakeAccountId = "123456789012";

/** Longest time, by default, IAM takes to make a new key usable (ms): "several seconds". */
export const defaultPropagationMs = 10_000;

/** IAM and STS with AWS's rules for access keys. */
export class FakeIam {
    readonly users = new Map<string, { name: string; path: string; keys: FakeKey[] }>();
    /** Every key ever minted, deleted ones included (for ages and pictures). */
    readonly history = new Map<string, FakeKey>();
    /**
     * How long IAM takes to make the next new key usable, in ms. The fault injector replaces it
     * to make IAM slow; by default a key works within {@link defaultPropagationMs}.
     */
    propagationMs: () => number;

    constructor(private readonly random: Random) {
        this.propagationMs = () => Math.floor(random.next() * defaultPropagationMs);
    }

    createUser(name: string, path = "/"): void {
        if (!this.users.has(name)) this.users.set(name, { name, path, keys: [] });
    }

    /** The user's ARN, as IAM and STS report it. */
    userArn(name: string): string {
        return `arn:aws:iam::${fakeAccountId}:user${this.users.get(name)?.path ?? "/"}${name}`;
    }

    deleteUser(name: string): void {
        const user = this.users.get(name);
        if (user && user.keys.length > 0) throw new ApiError("DeleteConflict", `Cannot delete entity, must delete access keys first (user ${name}).`);
        this.users.delete(name);
    }

    createAccessKey(userName: string, now: number): FakeKey {
        const user = this.users.get(userName);
        if (!user) throw new ApiError("NoSuchEntity", `The user with name ${userName} cannot be found.`);
        // AWS counts inactive keys too: a third key is refused whatever the first two's status.
        if (user.keys.length >= 2) throw new ApiError("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2");
        const key: FakeKey = {
            accessKeyId: `AKIA${this.random.text(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}`,
            secret: this.random.text(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
            user: userName,
            status: "Active",
            createdAt: now,
            usableAt: now + this.propagationMs(),
        };
        user.keys.push(key);
        this.history.set(key.accessKeyId, key);
        return key;
    }

    updateAccessKey(accessKeyId: string, status: "Active" | "Inactive", now: number): FakeKey {
        const key = this.live(accessKeyId);
        if (key.status !== status) {
            key.status = status;
            key.deactivatedAt = status === "Inactive" ? now : undefined;
        }
        return key;
    }

    deleteAccessKey(accessKeyId: string, now: number): void {
        const key = this.live(accessKeyId);
        const user = this.users.get(key.user)!;
        user.keys = user.keys.filter((k) => k !== key);
        key.deletedAt = now;
    }

    /** `ListAccessKeys` (what `aws.iam.getAccessKeys` returns). */
    listKeys(userName: string): FakeKey[] {
        const user = this.users.get(userName);
        if (!user) throw new ApiError("NoSuchEntity", `The user with name ${userName} cannot be found.`);
        return user.keys;
    }

    /** A live key by id, or undefined. */
    key(accessKeyId: string | undefined): FakeKey | undefined {
        if (!accessKeyId) return undefined;
        const key = this.history.get(accessKeyId);
        return key && key.deletedAt === undefined ? key : undefined;
    }

    /**
     * STS GetCallerIdentity signed with the given credentials: fails for unknown, deleted or
     * inactive keys and for a secret that does not match. A success records the key's last use.
     */
    authenticate(credentials: Credentials, now: number): { ok: true; key: FakeKey } | { ok: false; reason: string } {
        if (credentials.error) return { ok: false, reason: credentials.error };
        if (!credentials.accessKeyId || !credentials.secret) return { ok: false, reason: "no credentials in the target" };
        const key = this.key(credentials.accessKeyId);
        if (!key) return { ok: false, reason: `InvalidClientTokenId: key ${credentials.accessKeyId} does not exist` };
        if (key.status !== "Active") return { ok: false, reason: `InvalidClientTokenId: key ${credentials.accessKeyId} is inactive` };
        if (key.secret !== credentials.secret) return { ok: false, reason: `SignatureDoesNotMatch: the secret does not belong to key ${credentials.accessKeyId}` };
        if (now < key.usableAt) return { ok: false, reason: `InvalidClientTokenId: key ${credentials.accessKeyId} is not usable yet (IAM makes it usable ${Math.ceil((key.usableAt - now) / 1000)} s later)` };
        key.lastUsedAt = Math.max(key.lastUsedAt ?? 0, now);
        return { ok: true, key };
    }

    /**
     * STS GetCallerIdentity as an SDK client sees it: the caller's ARN, or an error whose `name`
     * is STS's error code (as the SDK throws it). Never mentions the secret.
     */
    getCallerIdentity(credentials: Credentials, now: number): { Arn: string; Account: string; UserId: string } {
        const result = this.authenticate(credentials, now);
        if (!result.ok) {
            const [code, ...rest] = result.reason.split(": ");
            const err = new Error(rest.join(": ") || code);
            err.name = rest.length ? code : "InvalidClientTokenId";
            throw err;
        }
        return { Arn: this.userArn(result.key.user), Account: fakeAccountId, UserId: `AIDA${result.key.accessKeyId.slice(4)}` };
    }

    private live(accessKeyId: string): FakeKey {
        const key = this.key(accessKeyId);
        if (!key) throw new ApiError("NoSuchEntity", `The Access Key with id ${accessKeyId} cannot be found.`);
        return key;
    }
}

/** One value held by a secret store. */
export interface StoredValue {
    value: string;
    /** Written as a secret (encrypted by the CI service) rather than a plain variable. */
    secret: boolean;
    /** Extra attributes some stores have (an organisation secret's visibility). */
    meta?: Record<string, unknown>;
    writtenAt: number;
}

/**
 * Every CI secret store, as one map from an address to a value. An address names the service,
 * the scope and the name (`github:acme/api:actions:secret:aws_access_key_id`), so adding a store
 * (GitLab project or group variables, SSM parameters) needs only new address shapes.
 */
export class SecretStores {
    readonly entries = new Map<string, StoredValue>();
    /** The world's KMS, for views of targets that hold ciphertexts (set by {@link World}). */
    kms?: FakeKms;
    /**
     * Values replaced or deleted, with the instant they stopped holding, so a CI job can read the
     * stores as they were at its own instant: a run's writes land after its key check has taken
     * simulated time, and a job that starts in between still reads the old value.
     */
    private readonly past = new Map<string, { until: number; value: StoredValue | undefined }[]>();
    private lastChange = -Infinity;

    write(address: string, value: Omit<StoredValue, "writtenAt">, now: number): void {
        this.remember(address, now);
        this.entries.set(address, { ...value, writtenAt: now });
    }

    delete(address: string, now: number): void {
        this.remember(address, now);
        this.entries.delete(address);
    }

    read(address: string): StoredValue | undefined {
        return this.entries.get(address);
    }

    /** The stores as they were at instant `t` (the stores themselves when nothing changed after `t`). */
    asOf(t: number): SecretStores {
        if (t >= this.lastChange) return this;
        const view = new SecretStores();
        view.kms = this.kms;
        for (const address of new Set([...this.entries.keys(), ...this.past.keys()])) {
            const replaced = (this.past.get(address) ?? []).find((v) => v.until > t);
            const value = replaced ? replaced.value : this.entries.get(address);
            if (value) view.entries.set(address, value);
        }
        return view;
    }

    private remember(address: string, now: number): void {
        const versions = this.past.get(address) ?? [];
        // Only recent history is ever asked for (a job inside the last run's span).
        versions.push({ until: now, value: this.entries.get(address) });
        if (versions.length > 4) versions.shift();
        this.past.set(address, versions);
        this.lastChange = Math.max(this.lastChange, now);
    }
}

/** GitHub repository ids, as `github.getRepository` returns them. */
export class FakeGithub {
    private readonly ids = new Map<string, number>();

    repoId(fullName: string): number {
        const key = fullName.toLowerCase();
        if (!this.ids.has(key)) this.ids.set(key, 100000 + this.ids.size);
        return this.ids.get(key)!;
    }
}

/**
 * AWS KMS as the AWS-native stores and `encrypt` need it: keys with the principals their policy
 * lets decrypt, and Encrypt/Decrypt with an encryption context. As in KMS, a ciphertext names its
 * key and decrypts only with the exact context it was made with (the context is authenticated
 * data, not stored in the clear for the caller to reuse), and a principal the key policy does not
 * name gets `AccessDeniedException`. Ciphertexts are opaque handles into this fake; they never
 * contain the plaintext, so searching outputs and logs for secrets (I7) still works.
 */
export class FakeKms {
    readonly keys = new Map<string, { arn: string; decrypters: Set<string> | "any"; aliases: Set<string>; grants?: KmsGrant[] }>();
    /** Principals the fault injector denies on every key (a key policy edited by hand). */
    readonly denied = new Set<string>();
    /** Windows (epoch ms) in which KMS denies Decrypt to a principal (every principal when absent). */
    deniedDuring: { principal?: string; from: number; until: number }[] = [];
    /** Every Encrypt call, for tests that count them. */
    encryptCalls = 0;
    private readonly blobs = new Map<string, { keyArn: string; context: string; plaintext: string }>();

    /** Create (or find) a key; `decrypters` are principal ARNs, or "any" principal of the account. */
    ensureKey(idOrAlias: string, decrypters: Iterable<string> | "any" = "any"): string {
        const existing = this.resolve(idOrAlias);
        if (existing) return existing;
        const id = idOrAlias.startsWith("alias/") ? `key-${this.keys.size + 1}` : idOrAlias.replace(/^arn:[^:]+:kms:[^:]*:\d*:key\//, "");
        const arn = `arn:aws:kms:us-east-1:${fakeAccountId}:key/${id}`;
        this.keys.set(arn, { arn, decrypters: decrypters === "any" ? "any" : new Set(decrypters), aliases: new Set(idOrAlias.startsWith("alias/") ? [idOrAlias] : []) });
        return arn;
    }

    /**
     * Apply a key policy: its `kms:Decrypt` statements become the only grants Decrypt is checked
     * against: those with `kms:EncryptionContext:<k>` conditions (StringEquals) grant their
     * principals that context on direct calls; those with a `kms:ViaService` condition
     * (StringEquals/StringLike) grant their principals any context, but only on calls a service
     * makes on their behalf (Secrets Manager, SSM and S3 decrypt for GetSecretValue, GetParameter
     * WithDecryption and GetObject: the store models pass `via`). AWS KMS developer guide,
     * "kms:ViaService" condition key: the key is usable only when the request comes from the named
     * service on behalf of the principal. Statements with other conditions grant nothing.
     */
    putKeyPolicy(arn: string, policyJson: string): void {
        const key = this.keys.get(arn);
        if (!key) throw new ApiError("NotFoundException", `Key '${arn}' does not exist`);
        const policy = JSON.parse(policyJson) as { Statement: { Effect: string; Principal?: { AWS?: string | string[] }; Action?: string | string[]; Condition?: Record<string, Record<string, string | string[]>> }[] };
        const grants: KmsGrant[] = [];
        for (const s of policy.Statement) {
            const actions = [s.Action ?? []].flat();
            if (s.Effect !== "Allow" || !actions.includes("kms:Decrypt")) continue;
            const principals = new Set([s.Principal?.AWS ?? []].flat());
            const conditions = s.Condition ?? {};
            const via = Object.entries(conditions).flatMap(([op, c]) => (op === "StringEquals" || op === "StringLike") && c["kms:ViaService"] !== undefined ? [[c["kms:ViaService"]].flat()] : []);
            if (via.length === 1 && Object.values(conditions).every((c) => Object.keys(c).length === 1)) {
                grants.push({ principals, context: {}, via: via[0] });
                continue;
            }
            const equals = conditions.StringEquals ?? {};
            const context = Object.fromEntries(Object.entries(equals).filter(([k]) => k.startsWith("kms:EncryptionContext:")).map(([k, v]) => [k.slice("kms:EncryptionContext:".length), v]));
            if (Object.keys(context).length === 0 || Object.keys(conditions).some((op) => op !== "StringEquals")) continue;
            grants.push({ principals, context: context as Record<string, string> });
        }
        key.decrypters = new Set(grants.flatMap((g) => [...g.principals]));
        key.grants = grants;
    }

    /** Point an alias at a key. */
    setAlias(alias: string, arn: string): void {
        for (const key of this.keys.values()) key.aliases.delete(alias);
        this.keys.get(arn)?.aliases.add(alias);
    }

    /** The key's ARN from an id, ARN or `alias/...`, or undefined when no such key exists. */
    resolve(idOrAlias: string): string | undefined {
        for (const key of this.keys.values()) {
            if (key.arn === idOrAlias || key.arn.endsWith(`/${idOrAlias}`) || key.aliases.has(idOrAlias)) return key.arn;
        }
        return undefined;
    }

    encrypt(idOrAlias: string, plaintext: string, context: Record<string, string> = {}): string {
        const keyArn = this.resolve(idOrAlias);
        if (!keyArn) throw new ApiError("NotFoundException", `Key '${idOrAlias}' does not exist`);
        this.encryptCalls++;
        const handle = `kms-ciphertext-${this.blobs.size + 1}`;
        this.blobs.set(handle, { keyArn, context: canonicalContext(context), plaintext });
        return handle;
    }

    /**
     * Decrypt as `principal` at `at`: refused unless the key policy lets it (with this context,
     * when the policy binds contexts, or through service `via`, e.g. `ssm.us-east-1.amazonaws.com`,
     * when a ViaService statement names it) and the context is exact.
     */
    decrypt(principal: string, ciphertext: string, context: Record<string, string> = {}, at?: number, via?: string): string {
        const blob = this.blobs.get(ciphertext);
        if (!blob || blob.context !== canonicalContext(context)) {
            throw new ApiError("InvalidCiphertextException", "The ciphertext is invalid or was made with another encryption context.");
        }
        const key = this.keys.get(blob.keyArn)!;
        const deniedNow = at !== undefined && this.deniedDuring.some((w) => at >= w.from && at < w.until && (w.principal === undefined || w.principal === principal));
        const granted = key.grants
            ? key.grants.some((g) => (g.principals.has(principal) || delegatesTo(g.principals, principal)) && (g.via ? via !== undefined && g.via.some((p) => likeMatch(p, via)) : Object.entries(g.context).every(([k, v]) => context[k] === v)))
            : key.decrypters === "any" || key.decrypters.has(principal);
        if (deniedNow || this.denied.has(principal) || !granted) {
            throw new ApiError("AccessDeniedException", `${principal} is not authorized to perform: kms:Decrypt on resource: ${key.arn}`);
        }
        return blob.plaintext;
    }

    /**
     * Whether the key has a key policy applied (`putKeyPolicy`, the set's managed key). Keys made
     * by `ensureKey` alone model only their readers, not the operator's access.
     */
    hasPolicy(idOrAlias: string): boolean {
        const arn = this.resolve(idOrAlias);
        return arn !== undefined && this.keys.get(arn)?.grants !== undefined;
    }

    /** The plaintext of a ciphertext with its exact context, as the simulator's own bookkeeping reads it (no principal). */
    peek(ciphertext: string, context: Record<string, string>): string | undefined {
        const blob = this.blobs.get(ciphertext);
        return blob && blob.context === canonicalContext(context) ? blob.plaintext : undefined;
    }
}

/** One Decrypt grant of a key policy: who, and with which context pairs or through which services (`kms:ViaService` patterns). */
export interface KmsGrant {
    principals: Set<string>;
    context: Record<string, string>;
    via?: string[];
}

/**
 * The identity the program runs as (the operator): it reads back what the AWS provider writes
 * (GetSecretValue, GetParameter WithDecryption) with this identity.
 */
export const operatorPrincipal = `arn:aws:iam::${fakeAccountId}:role/ci-key-rotation-operator`;

/**
 * A key policy statement naming an account's root delegates to that account's IAM policies
 * (AWS KMS developer guide, default key policy, "Allows access to the AWS account and enables IAM
 * policies"). The fake has no IAM policies: it takes every principal of the account as granted
 * by its own (the operator's and readers' from `ci-key-rotation policy`).
 */
function delegatesTo(principals: Set<string>, principal: string): boolean {
    const account = principal.match(/^arn:[^:]+:(?:iam|sts)::(\d{12}):/)?.[1];
    return account !== undefined && [...principals].some((p) => /^arn:[^:]+:iam::\d{12}:root$/.test(p) && p.split(":")[4] === account);
}

/** IAM `StringLike`: `*` any run of characters, `?` one character. */
function likeMatch(pattern: string, value: string): boolean {
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    return re.test(value);
}

function canonicalContext(context: Record<string, string>): string {
    return JSON.stringify(Object.keys(context).sort().map((k) => [k, context[k]]));
}

/** The whole fake world of one rehearsal. */
export class World {
    readonly iam: FakeIam;
    readonly stores = new SecretStores();
    readonly github = new FakeGithub();
    readonly kms = new FakeKms();

    constructor(readonly random: Random) {
        this.iam = new FakeIam(random);
        this.stores.kms = this.kms;
    }

    /** Every secret value the world ever minted, to search outputs, logs and inputs for (I7). */
    secrets(): string[] {
        return [...this.iam.history.values()].map((k) => k.secret);
    }
}
