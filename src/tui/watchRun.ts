/**
 * Running the guest under the CR3 watch (src/watch's watch-cr3), as the TUI needs it: every
 * `mov cr3` the watch meets becomes a log entry with its pre-flight and hints; one whose verdict is
 * not safe stops the guest before it executes; a triple fault on the way is explained post mortem.
 */
import { hex } from '../paging/addr.js';
import type { CpuFeatures } from '../paging/mode.js';
import type { PreflightResult } from '../paging/preflight.js';
import type { Stop } from '../target/debuggee.js';
import type { Target } from '../target/target.js';
import { watchCr3, type WatchEnd } from '../watch/index.js';
import { stopWords } from './state.js';
import type { WatchEntry } from './watchPane.js';

/** What the watch tells the TUI as it goes. */
export type WatchEvent =
  /** A `mov cr3` the guest stands on, not yet executed. */
  | { kind: 'cr3-write'; entry: WatchEntry; result: PreflightResult; hints: string[] }
  /** The guest shut down on the way (a triple fault), explained from the state kept. */
  | { kind: 'shutdown'; summary: string };

/** How a run under the watch ended: the stop, and its words for the status line. */
export interface WatchStopped {
  stop: Stop;
  words: string;
}

/** Options of a run under the watch. */
export interface WatchRunOptions {
  /** MAXPHYADDR and 1 GiB pages, as the TUI has them (command-line overrides included). */
  features: CpuFeatures;
  /** Aborting interrupts the guest and ends the run where it is. */
  signal: AbortSignal;
}

/** A CR3 watch the controller runs the guest under. */
export interface Cr3Watch {
  /** Lets the guest run until the watch stops it (a dangerous `mov cr3`, an interrupt, a shutdown, the end), reporting as it goes. */
  run(target: Target, o: WatchRunOptions, onEvent: (e: WatchEvent) => void): Promise<WatchStopped>;
}

/** The Stop a watch's end stands for. */
function stopOf(end: WatchEnd): Stop {
  switch (end) {
    case 'count':
    case 'danger':
    case 'every':
      return { cause: 'breakpoint', signal: 5 };
    case 'step-limit':
    case 'stalled':
      return { cause: 'step', signal: 5 };
    case 'interrupted':
      return { cause: 'interrupted', signal: 2 };
    case 'shutdown':
      return { cause: 'shutdown', signal: 3 };
    case 'exited':
      return { cause: 'exited', signal: null };
  }
}

/** The watch of src/watch, stopping before every `mov cr3` whose verdict is not safe. */
export function cr3Watch(): Cr3Watch {
  // The mov cr3 the last run stopped before: `c` from there executes it instead of stopping on it again.
  let stoppedAt: bigint | null = null;
  return {
    async run(target, o, onEvent) {
      const ram = await target.ram();
      let words = '';
      const reported = stoppedAt;
      stoppedAt = null;
      const result = await watchCr3(target, {
        features: o.features,
        stopOn: 'danger',
        ram,
        signal: o.signal,
        reported,
        onEvent: (e) => {
          if (e.type === 'cr3-write') {
            const pre = e.preflight;
            const entry: WatchEntry = {
              rip: e.rip,
              old: e.old,
              new: e.write.value,
              verdict: pre.verdict,
              problems: pre.problems.map((p) => `${p.what}: ${p.explanation}`),
              stopped: pre.verdict !== 'safe',
            };
            onEvent({ kind: 'cr3-write', entry, result: pre, hints: e.hints.flatMap((g) => g.hints.map((h) => h.text)) });
          } else if (e.type === 'shutdown') {
            onEvent({ kind: 'shutdown', summary: e.postMortem.summary });
          } else if (e.type === 'stopped') {
            if (e.end === 'danger') stoppedAt = e.rip;
            words =
              e.end === 'danger' || e.end === 'every' || e.end === 'count'
                ? `before the mov cr3 at ${e.rip === null ? '?' : hex(e.rip)}`
                : e.end === 'interrupted' || e.end === 'shutdown' || e.end === 'exited'
                  ? stopWords(stopOf(e.end))
                  : e.message;
          }
        },
      });
      return { stop: stopOf(result.end), words: words || result.end };
    },
  };
}
