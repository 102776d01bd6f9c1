/**
 * pagewalk's Node API, the package's main entry (`import { attach } from 'pagewalk'`): attach to
 * QEMU (gdbstub, QMP), a memory dump, the bundled emulator or the example machine, then walk,
 * map, diff, check, explain faults and logs, and drive the guest. Answers are the JSON shapes of
 * the CLI's `--json`. `WsApiServer` serves the same session over WebSocket JSON-RPC.
 */
export * from './api/index.js';
export { WsApiServer, type ServeOptions, type WsApiServerEvents } from './serve/server.js';
export { ServeError, type ServeErrorCode } from './serve/errors.js';
export type { Target, TargetInfo, RamRange } from './target/target.js';
