/**
 * The Automation API face of ci-key-rotation: `rotate` and `status`, used by the CLI, the chatops
 * server and any Node program. `pulumi up` still does the work, one step per set per run; this
 * module sets the request flags in stack config, repeats `up` until the request is done or
 * waiting, clears the flags, and reports what happened.
 *
 * This file is the package's `ci-key-rotation/automation` entry; the code lives beside it:
 * `automation-types.ts` (options, reports, errors), `client.ts` (single-flight client),
 * `rotate.ts` (the loop of `up`s), `locks.ts` (the `stack.up` call and its lock retry),
 * `stack.ts` (opening a stack, its outputs and request flags), `report.ts`, `status.ts`, `errors.ts`.
 */
export * from "./automation-types";
export { createRotationClient, rotate, status } from "./client";
export { installHint, isConcurrentUpdate, minimumPulumiVersion, olderThanMinimum, toOperationError } from "./errors";
export { requestIdFor } from "./rotate";
