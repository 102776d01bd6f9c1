/**
 * Timers as an injected dependency: the client's timeouts (connect, greeting, each request, each
 * awaited event) go through a {@link Clock}, so tests can fire them at will.
 */

/** A handle returned by {@link Clock.setTimeout}, opaque to the caller. */
export type TimerHandle = unknown;

/** Schedules and cancels one-shot timers. */
export interface Clock {
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired yet (a no-op for one that has). */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: Node's timers, unref'd so a pending timeout never keeps the process alive. */
export const systemClock: Clock = {
  setTimeout(callback, ms) {
    const t = setTimeout(callback, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
