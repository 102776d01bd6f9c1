/**
 * The CR3 watch log: one entry per `mov cr3` the watch saw: its pre-flight's verdict, then the old
 * and new CR3 and where it was (two short rows, so a narrow pane shows them whole), then its
 * problems; the newest last, so the pane follows the tail.
 */
import { hex } from '../paging/addr.js';
import type { Verdict } from '../paging/preflight.js';
import { verdictText } from './faultPane.js';
import type { Paint } from './paint.js';
import { shorten, wrapWords } from './text.js';

/** One CR3 write, as the log shows it. */
export interface WatchEntry {
  rip: bigint;
  old: bigint;
  new: bigint;
  verdict: Verdict;
  /** The failing checks, one short line each ("stack: PD[1] at 0x405008 is not present"). */
  problems: string[];
  /** True when the watch stopped the guest before this write (it has not executed). */
  stopped: boolean;
}

/** Why the watch is on or off: on, off by request (--no-watch), or impossible (the target cannot be driven). */
export type WatchStatus = 'on' | 'off' | 'impossible';

const IDLE_WORDS: Record<WatchStatus, string> = {
  on: 'c runs the guest and stops before every mov to CR3 that would fault: none seen yet',
  off: 'the CR3 watch is off (--no-watch): c runs the guest freely',
  impossible: 'no CR3 watch: this target cannot be driven (a dump, or QMP alone)',
};

/** The lines of the watch pane for `entries` (oldest first), or what the watch does when there are none. */
export function watchLines(entries: readonly WatchEntry[], p: Paint, width: number, status: WatchStatus): string[] {
  const { c } = p;
  if (entries.length === 0) return wrapWords(IDLE_WORDS[status], width).map((l) => c.dim(l));
  const lines: string[] = [];
  entries.forEach((e, i) => {
    const stop = e.stopped ? c.bold('  stopped before it') : '';
    lines.push(`${c.dim(`${i + 1}.`)} ${verdictText(e.verdict, p)}${stop}`);
    lines.push(`   ${hex(e.old)} ${p.g.arrow} ${c.bold(hex(e.new))} at ${hex(e.rip)}`);
    for (const prob of e.problems) lines.push(c.red(shorten(`   ${p.g.bad} ${prob}`, width)));
  });
  return lines;
}
