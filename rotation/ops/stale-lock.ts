/**
 * Stale update locks of DIY (file, S3, GCS, Azure Blob) backends: recognising a lock whose update
 * died (kill -9, a runner that vanished) so that the next run clears it instead of failing until
 * someone runs `pulumi cancel`.
 *
 * What a DIY lock holds: pulumi/pulumi pkg/backend/diy/lock.go (v3.259.0), `lockContent`: the
 * `pid` of the `pulumi` process that took it (`os.Getpid()`), its `username`, `hostname`
 * (`os.Hostname()`) and `timestamp`. The locked error lists every lock as
 * `<lock url>: created by <user>@<host> (pid <pid>) at <RFC 3339 time>` (`checkForLock`), so the
 * holders are read from the error itself, for any bucket. A lock is stale only when it was taken
 * on this host and its process is gone: a lock from another host, or whose process still runs
 * (or cannot be checked), is left alone.
 */
import { readFileSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { hostname } from "node:os";

/** One lock, as the locked error describes it. */
export interface LockHolder {
    /** The lock's URL (`file:///.../.pulumi/locks/<org>/<project>/<stack>/<id>.json`, `s3://...`). */
    lock: string;
    user: string;
    host: string;
    pid: number;
    /** When the lock was taken (RFC 3339, as Pulumi prints it). */
    since: string;
}

/** What a process id stands for on this host now. */
export type ProcessState =
    /** A `pulumi` process (or one whose name cannot be read): the lock may be live. */
    | "running"
    /** No such process: whoever took the lock is gone. */
    | "gone"
    /** The id now belongs to a process that is not `pulumi`: the id was reused, the holder is gone. */
    | "reused";

/** What the decision reads from the host; tests replace it. */
export interface HostView {
    hostname: string;
    processState(pid: number): ProcessState;
}

/** The outcome of {@link staleLocks}. */
export type StaleLockDecision = { stale: true; holders: LockHolder[] } | { stale: false; why: string };

/**
 * Every lock a DIY backend's locked error lists (`checkForLock` in pkg/backend/diy/lock.go), once
 * each: the Automation API's error repeats the CLI's stderr (its message holds both `stderr` and
 * the `err` of the failed command, as seen with SDK 3.270 on CLI 3.259).
 */
export function lockHolders(text: string): LockHolder[] {
    const holders = new Map<string, LockHolder>();
    // The user name comes first and may hold an `@` (a domain account); the host name cannot.
    const line = /^\s*(\S+): created by (.*)@([^@\s]+) \(pid (\d+)\) at (\S+)\s*$/gm;
    for (const m of text.matchAll(line)) if (!holders.has(m[1])) holders.set(m[1], { lock: m[1], user: m[2], host: m[3], pid: Number(m[4]), since: m[5] });
    return [...holders.values()];
}

/**
 * Whether every lock in a locked error is stale: each was taken on this host by a process that is
 * gone (or whose id now belongs to another program). Any other lock (another host, a live or
 * unknown process, a lock the error does not describe) means the stack stays locked.
 */
export function staleLocks(text: string, host: HostView): StaleLockDecision {
    const holders = lockHolders(text);
    const count = /locked by (\d+) lock\(s\)/.exec(text);
    if (holders.length === 0) return { stale: false, why: "the error names no lock holder (not a DIY backend's lock)" };
    if (count && Number(count[1]) !== holders.length) return { stale: false, why: `the error counts ${count[1]} locks but describes ${holders.length}` };
    for (const h of holders) {
        if (h.host !== host.hostname) return { stale: false, why: `a lock was taken on host ${h.host}, not this one (${host.hostname}): its process cannot be checked from here` };
        const state = host.processState(h.pid);
        if (state === "running") return { stale: false, why: `process ${h.pid}, which took a lock, is still running` };
    }
    return { stale: true, holders };
}

/** This host: `os.hostname()` (what Go's `os.Hostname()` returns on Linux and macOS) and its processes. */
export const thisHost: HostView = {
    hostname: hostname(),
    processState(pid) {
        if (!Number.isInteger(pid) || pid <= 0) return "running";
        try {
            process.kill(pid, 0);
        } catch (err) {
            // EPERM: the process exists but belongs to another user.
            return (err as NodeJS.ErrnoException).code === "ESRCH" ? "gone" : "running";
        }
        try {
            // Linux: the process's name; a DIY lock is taken by the `pulumi` binary itself.
            const comm = readFileSync(`/proc/${pid}/comm`, "utf8");
            return /pulumi/i.test(comm) ? "running" : "reused";
        } catch {
            return "running";
        }
    },
};

/**
 * Remove the stale locks: the lock files themselves when they are `file://` URLs (only those
 * files, so a lock another process took meanwhile survives), otherwise every lock of the stack
 * with `pulumi cancel` (pkg/backend/diy/backend.go `CancelCurrentUpdate` deletes every lock file
 * of the stack). While the stale lock is present no update can hold another (`Lock` in
 * pkg/backend/diy/lock.go checks before and after writing its own and backs out), so `pulumi
 * cancel` removes only the stale one, unless two processes recover the same stale lock at the same
 * moment: then the later `cancel` can delete the lock the first one just took. File backends are
 * not exposed to that. Returns how the locks were removed.
 */
export async function removeStaleLocks(holders: LockHolder[], cancel: () => Promise<void>, removeFile: (path: string) => Promise<void> = unlinkIfPresent): Promise<"lock files removed" | "pulumi cancel"> {
    const files = holders.map((h) => fileUrlPath(h.lock));
    if (files.every((f): f is string => f !== undefined)) {
        for (const f of files) await removeFile(f);
        return "lock files removed";
    }
    await cancel();
    return "pulumi cancel";
}

/**
 * The lock file of a `file://` lock URL. The error prints the backend's URL after
 * `massageBlobPath` (pkg/backend/diy/backend.go: `~` expanded, the path made absolute, a query
 * such as `?no_tmp_dir=true` added) joined with the lock's key (`lockURLForError`), so its path
 * is the file's absolute path.
 */
function fileUrlPath(lock: string): string | undefined {
    try {
        const url = new URL(lock);
        return url.protocol === "file:" && url.pathname.endsWith(".json") ? decodeURIComponent(url.pathname) : undefined;
    } catch {
        return undefined;
    }
}

async function unlinkIfPresent(path: string): Promise<void> {
    try {
        await unlink(path);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
}
