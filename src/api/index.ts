/**
 * The Node API: `attach()` a target, then read and drive it through the session's methods, whose
 * answers are the CLI's JSON shapes.
 */
export { attach, attachTarget } from './attach.js';
export { ApiError, type ApiErrorCode } from './errors.js';
export type { AttachOptions, Numberish } from './options.js';
export { PagewalkSession, type PagewalkSessionEvents } from './session.js';
export type { DiffOptions, ExplainLogOptions, FaultOptions, LogSource, MapWindow, Streamed, WalkOptions, WatchCr3Options } from './requests.js';
export type * from './types.js';
