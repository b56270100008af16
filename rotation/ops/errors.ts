/**
 * Errors of the automation library: the `pulumi` CLI checks (missing, too old) and the mapping of
 * Automation API failures to {@link OperationError}s that say what to do.
 */
import { OperationError, type RotationReport } from "./automation-types";

/** The install hint, kept in one place because every entry point prints it. */
export const installHint = "The `pulumi` CLI was not found on PATH: install it (https://www.pulumi.com/docs/install/) and run again.";

/**
 * The oldest `pulumi` CLI this library runs. Since pulumi/pulumi PR #15754 (CLI 3.112) a failed
 * update saves the outputs the program registered; before it, a failed update dropped every
 * stack output (pulumi/pulumi#12929), and the rotation state lives in those outputs, so a failed
 * run would forget every key. The program itself refuses engines older than 3.133 (it cannot ask
 * the engine its version before 3.217, so it probes the `parameterization` feature, PR #17153: see
 * `rotation/pulumi/program.ts`); the library asks for the same version so both refuse the same CLIs.
 * The SDK's own check only asks for 3.2 (automation/minimumVersion.ts).
 */
export const minimumPulumiVersion = "3.133.0";

/** The message for a CLI older than {@link minimumPulumiVersion}. */
export function cliTooOld(version: string): string {
    return `The pulumi CLI is version ${version}; ci-key-rotation needs ${minimumPulumiVersion} or newer: older CLIs drop every stack output when an update fails (pulumi/pulumi#12929), and the rotation state lives in those outputs. Upgrade it (https://www.pulumi.com/docs/install/) and run again.`;
}

/** Whether `version` (`3.111.0`, `v3.130.1-alpha.x`) is older than {@link minimumPulumiVersion}. */
export function olderThanMinimum(version: string): boolean {
    const m = /^v?(\d+)\.(\d+)\./.exec(version.trim());
    if (!m) return false; // unparsable (a dev build, or the SDK's check skipped): do not guess
    const [, major, minor] = m.map(Number);
    const [minMajor, minMinor] = minimumPulumiVersion.split(".").map(Number);
    return major < minMajor || (major === minMajor && minor < minMinor);
}

/** Map Automation API failures to errors that say what to do. Never echoes config values. */
export function toOperationError(err: unknown, stack: string, workDir: string, partial: RotationReport | undefined): OperationError {
    if (err instanceof OperationError) return err.partial || !partial ? err : new OperationError(err.kind, err.message, partial);
    const text = errorText(err);
    if (isCliMissing(err)) return new OperationError("cli-missing", installHint, partial);
    // The SDK's own check (older than 3.2): pulumi/pulumi sdk/nodejs/automation/cmd.ts parseAndValidatePulumiVersion.
    const sdkCheck = /Minimum version requirement failed\. .*your current CLI version is (\S+?)\.? Please/.exec(text);
    if (sdkCheck) return new OperationError("cli-too-old", cliTooOld(sdkCheck[1]), partial);
    if (nameOf(err) === "StackNotFoundError" || /no stack named .* found/i.test(text)) {
        return new OperationError(
            "stack-missing",
            `Stack \`${stack}\` does not exist for the project in ${workDir}. Create it there with \`pulumi stack init ${stack}\` and set its ci-key-rotation:credentials, or check --stack and \`pulumi login\` (the backend holding the stack).`,
            partial,
        );
    }
    if (isConcurrentUpdate(err)) {
        return new OperationError("stack-locked", `Stack \`${stack}\` is locked by another update. Wait for it to finish and run again.`, partial);
    }
    if (nameOf(err) === "StateError") return new OperationError("run-failed", text, partial);
    const details = diagnostics(text);
    // The program's RotationBlockedError (rotation/pulumi/program.ts): a blocked set registers nothing and
    // keeps its state while every other set takes its step, so "nothing changed" is said of the
    // blocked sets only.
    const blocked = /No step was taken for (sets? (.+?)|a set) \(any other set took its step\), because/.exec(text);
    if (blocked) {
        const which = blocked[2] ? `${blocked[1].startsWith("sets") ? "sets" : "set"} ${blocked[2]}` : "a set";
        return new OperationError("blocked", `The rotation of \`${stack}\` refused to act for ${which}: ${which} took no step; every other set took its step:\n${details}`, partial);
    }
    if (/Invalid ci-key-rotation configuration/.test(text)) {
        return new OperationError("config", `The configuration of stack \`${stack}\` is invalid, and nothing changed:\n${details}`, partial);
    }
    return new OperationError("run-failed", `\`pulumi up\` of stack \`${stack}\` failed:\n${details}`, partial);
}

function nameOf(err: unknown): string | undefined {
    return (err as { name?: unknown })?.name as string | undefined;
}

function errorText(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

export function firstLine(err: unknown): string {
    return errorText(err).split("\n").find((l) => l.trim() !== "")?.trim() ?? "unknown error";
}

export function isCliMissing(err: unknown): boolean {
    const text = errorText(err);
    return /spawn pulumi ENOENT/.test(text) || ((err as { code?: unknown })?.code === "ENOENT" && /pulumi/.test(text));
}

/** `ConcurrentUpdateError`, matched by name so a second copy of the SDK still matches. */
export function isConcurrentUpdate(err: unknown): boolean {
    return nameOf(err) === "ConcurrentUpdateError" || /\[409\] Conflict: Another update is currently in progress|the stack is currently locked by/.test(errorText(err));
}

/**
 * The useful part of a failed command's output: its `error:` diagnostics and the program's own
 * messages, at most 40 lines. Pulumi masks secret values in everything it prints.
 */
function diagnostics(text: string): string {
    // CommandError messages are `code: N\n stdout: ...\n stderr: ...\n err?: ...`: drop the labels.
    const lines = text
        .split("\n")
        .filter((l) => !/^\s*code: -?\d+\s*$/.test(l))
        .map((l) => l.replace(/^\s*(stdout|stderr|err\?):\s?/, "").replace(/\s+$/, ""));
    const start = lines.findIndex((l) => /\berror:|Error:|No step was taken|Invalid ci-key-rotation configuration/.test(l));
    const picked = (start >= 0 ? lines.slice(start) : lines).filter((l) => l.trim() !== "");
    const shown = picked.slice(0, 40).map((l) => `  ${l.trim()}`);
    if (picked.length > 40) shown.push(`  ... (${picked.length - 40} more lines)`);
    return shown.join("\n");
}
