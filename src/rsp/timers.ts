/**
 * The clock the RSP client uses for timeouts, injected so tests can control it.
 */

/** Schedules and cancels callbacks, like the global `setTimeout`/`clearTimeout`. */
export interface RspTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemTimers: RspTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
