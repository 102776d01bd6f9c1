/**
 * A clock whose timers fire only when a test advances it: the timeouts of the RSP client
 * (`RspTimers`) and of the QMP client (`Clock`) alike.
 */
import type { Clock, TimerHandle } from '../../src/qmp/clock.js';
import type { RspTimers } from '../../src/rsp/timers.js';

/** Timers that fire in {@link ManualClock.advance}, in time order. */
export class ManualClock implements Clock, RspTimers {
  private now = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + ms, callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** How many timers have been set so far. */
  get created(): number {
    return this.nextId - 1;
  }

  /** How many timers are set and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (those the callbacks set too), in time order. */
  advance(ms: number): void {
    this.now += ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= this.now).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) return;
      this.timers.delete(due[0]);
      due[1].callback();
    }
  }
}
