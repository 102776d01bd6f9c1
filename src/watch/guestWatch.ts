/**
 * What the watches (watch-cr3, catch-pf) share: the controls and breakpoints they drive the guest
 * with, their loop run to an end that is reported (breakpoints removed however it ends, an abort
 * interrupting the guest), what a stop means to them, and the post-mortem of a triple fault met
 * on the way.
 */
import type { CpuFeatures } from '../paging/mode.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import type { Target } from '../target/target.js';
import { BreakpointSet } from './breakpoints.js';
import type { WatchEnd, WatchEvent } from './events.js';
import { postMortem } from './postMortem.js';

/** The options every watch takes. */
export interface GuestWatchOptions {
  /** MAXPHYADDR and 1 GiB pages, as the session has them. */
  features: CpuFeatures;
  /** Readable physical memory (the target's `ram()`), for scans, hints and the post-mortem. */
  ram?: readonly { start: bigint; end: bigint }[] | null;
  /** Aborting stops the watch: the guest is interrupted and left where it is. */
  signal?: AbortSignal;
  /** QEMU's `-d int` log for a post-mortem, when its path is known. */
  log?: () => AsyncIterable<string | Uint8Array>;
  onEvent: (e: WatchEvent) => void | Promise<void>;
}

/** A watch of a driven guest; subclasses write its loop. */
export abstract class GuestWatch {
  protected readonly bps: BreakpointSet;

  constructor(
    protected readonly target: Target,
    protected readonly control: DebugControl,
    private readonly options: GuestWatchOptions,
  ) {
    this.bps = new BreakpointSet(control);
  }

  /** Runs {@link loop} to its end; an abort interrupts the guest, and the breakpoints are removed however it ends. */
  protected async watch(): Promise<WatchEnd> {
    const signal = this.options.signal;
    const onAbort = (): void => void this.control.interrupt().catch(() => undefined);
    signal?.addEventListener('abort', onAbort);
    try {
      return await this.loop();
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await this.bps.clear();
    }
  }

  /** Runs the guest, reporting, until the watch ends; resolves with how it ended (already reported with {@link finish}). */
  protected abstract loop(): Promise<WatchEnd>;

  /** What the watch says when someone else stopped the guest. */
  protected abstract readonly stoppedByOthers: string;

  /** What the watch says when the guest is shut down (a triple fault). */
  protected abstract shutdownMessage(): string;

  protected emit(e: WatchEvent): Promise<void> | void {
    return this.options.onEvent(e);
  }

  /** Reports the end of the watch (with RIP, unless the guest is gone) and returns it. */
  protected async finish(end: WatchEnd, message: string): Promise<WatchEnd> {
    const rip = end === 'exited' ? null : (await this.target.cpuState().catch(() => null))?.rip ?? null;
    await this.emit({ type: 'stopped', end, rip, message });
    return end;
  }

  /** What a stop means for the watch: null to go on, else how it ended (reported). */
  protected async ended(stop: Stop): Promise<WatchEnd | null> {
    switch (stop.cause) {
      case 'breakpoint':
      case 'step':
      case 'watchpoint':
        return null;
      case 'interrupted':
        return this.finish('interrupted', this.options.signal?.aborted ? 'interrupted: the guest is left stopped where it is' : this.stoppedByOthers);
      case 'shutdown':
        return this.shutdown();
      case 'exited':
        return this.finish('exited', `the guest exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`);
    }
  }

  /** Executes the instruction the guest stands on: the watch's end when that step ended it (a triple fault, an exit...), else null. */
  protected async stepOver(): Promise<WatchEnd | null> {
    return this.ended(await this.control.step());
  }

  /** Explains the triple fault from the state the guest was kept in, and ends the watch. */
  protected async shutdown(): Promise<WatchEnd> {
    const o = this.options;
    const pm = await postMortem(this.target, { features: o.features, log: o.log?.(), ram: o.ram ?? null });
    await this.emit({ type: 'shutdown', postMortem: pm });
    return this.finish('shutdown', this.shutdownMessage());
  }
}
