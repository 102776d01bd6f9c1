/**
 * A CR3 watch run for the APIs: `src/watch`'s watch-cr3 with its CR3 writes handed over one at a
 * time. With `pause`, the watch waits at each write (the guest standing on the `mov cr3`, which
 * has not run) until the consumer takes the next one, so that a script can look around first;
 * without, the writes are only told (the WebSocket API's `cr3Write` notifications) and the watch
 * runs on. Stopping a paused run leaves the guest on the `mov cr3`.
 */
import { cr3WriteJson, type Cr3WriteJson } from '../json/watch.js';
import { hex } from '../paging/addr.js';
import type { Stop } from '../target/debuggee.js';
import type { Target } from '../target/target.js';
import { watchCr3, type Cr3WatchOptions } from '../watch/cr3Watch.js';
import type { WatchEnd, WatchEvent } from '../watch/events.js';

/** How a watch ended, as JSON. */
export interface WatchSummaryJson {
  end: WatchEnd;
  /** CR3 writes seen. */
  writes: number;
  /** Those whose verdict was not safe. */
  dangerous: number;
  /** Where the guest stands now (null once it is gone). */
  rip: string | null;
  /** One line for a person. */
  message: string;
}

/** The stop each end of a watch leaves the guest in. */
export const WATCH_STOPS: Readonly<Record<WatchEnd, Stop>> = {
  count: { cause: 'breakpoint', signal: 5 },
  danger: { cause: 'breakpoint', signal: 5 },
  every: { cause: 'breakpoint', signal: 5 },
  interrupted: { cause: 'interrupted', signal: 2 },
  shutdown: { cause: 'shutdown', signal: 3 },
  exited: { cause: 'exited', signal: null },
  'step-limit': { cause: 'step', signal: 5 },
  stalled: { cause: 'step', signal: 5 },
};

/** Thrown through the watch to end it on the spot, before it steps over the write it reported. */
class StoppedByConsumer extends Error {}

/** One watch in progress. */
export class WatchRun {
  /** Resolves when the watch ends (the guest left stopped), rejects with what made it fail. */
  readonly done: Promise<WatchSummaryJson>;
  private readonly queue: Cr3WriteJson[] = [];
  private wake: (() => void) | null = null;
  private proceed: (() => void) | null = null;
  private readonly abort = new AbortController();
  private finished = false;
  private writes = 0;
  private dangerous = 0;
  private lastMessage: { end: WatchEnd; rip: bigint | null; message: string } | null = null;

  /**
   * Starts watching `target`. `onWrite` hears every write as it is reported; with `pause` the
   * watch then waits for {@link next} and {@link release}.
   */
  constructor(
    target: Target,
    options: Omit<Cr3WatchOptions, 'onEvent' | 'signal'>,
    private readonly pause: boolean,
    onWrite: (e: Cr3WriteJson) => void,
  ) {
    const onEvent = async (e: WatchEvent): Promise<void> => {
      if (e.type === 'stopped') this.lastMessage = { end: e.end, rip: e.rip, message: e.message };
      if (e.type !== 'cr3-write') return;
      const json = cr3WriteJson(e);
      this.writes = e.index;
      if (json.verdict !== 'safe') this.dangerous++;
      onWrite(json);
      if (!this.pause) return;
      this.queue.push(json);
      this.wake?.();
      await new Promise<void>((resolve) => (this.proceed = resolve));
      if (this.abort.signal.aborted) throw new StoppedByConsumer();
    };
    this.done = watchCr3(target, { ...options, signal: this.abort.signal, onEvent }).then(
      (r) => this.summary(r.end, r.writes, r.dangerous, this.lastMessage?.rip ?? null, this.lastMessage?.message ?? `the watch ended (${r.end})`),
      async (e: unknown) => {
        if (!(e instanceof StoppedByConsumer)) throw e;
        const rip = await target.cpuState().then((c) => c.rip, () => null);
        return this.summary('interrupted', this.writes, this.dangerous, rip, 'stopped before the mov cr3 ran: the guest stands on it');
      },
    );
    void this.done.then(
      () => this.settle(),
      () => this.settle(),
    );
  }

  /** The next CR3 write (paused runs), or null once the watch has ended. */
  async next(): Promise<Cr3WriteJson | null> {
    for (;;) {
      const e = this.queue.shift();
      if (e) return e;
      if (this.finished) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  /** The consumer is done with the write it took: the watch steps over it and goes on. */
  release(): void {
    const p = this.proceed;
    this.proceed = null;
    p?.();
  }

  /** Ends the watch: a paused one stays on its `mov cr3`, a running guest is interrupted where it is. */
  stop(): void {
    this.abort.abort();
    this.release();
  }

  private summary(end: WatchEnd, writes: number, dangerous: number, rip: bigint | null, message: string): WatchSummaryJson {
    return { end, writes, dangerous, rip: rip === null ? null : hex(rip), message };
  }

  private settle(): void {
    this.finished = true;
    this.wake?.();
  }
}
