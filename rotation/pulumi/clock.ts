import { RunError } from "@pulumi/pulumi";
import { DateTime } from "luxon";

/** The variable that pins the program's clock, for rehearsals and tests. */
export const clockVariable = "CI_KEY_ROTATION_NOW";

/**
 * The instant this run acts at: the real time, unless `CI_KEY_ROTATION_NOW` holds an ISO-8601
 * instant (with a zone or offset). A pinned clock is reported, because a forgotten one would
 * freeze every rotation.
 */
export function readClock(env: NodeJS.ProcessEnv, realNow: () => Date = () => new Date()): { now: DateTime; warning?: string } {
    const pinned = env[clockVariable];
    if (pinned === undefined || pinned === "") return { now: DateTime.fromJSDate(realNow()).toUTC() };
    const now = DateTime.fromISO(pinned, { setZone: true });
    if (!now.isValid || !/(Z|[+-]\d{2}:?\d{2})$/.test(pinned)) {
        throw new RunError(`\`${clockVariable}\` must be an ISO-8601 instant with a zone, e.g. 2026-11-23T12:00:00Z (got ${JSON.stringify(pinned)}); unset it to use the real time.`);
    }
    return { now: now.toUTC(), warning: `${clockVariable} is set: acting as if it were ${now.toUTC().toISO()}, not the real time.` };
}
