/**
 * What the session's methods take besides addresses: the access of a walk, the window of a map,
 * the baseline of a diff, the fault to explain, the log to read, the limits of a watch.
 */
import type { AccessKind } from '../paging/rights.js';
import type { Numberish } from './options.js';

/** The access a walk checks: a kind, or a kind with the privilege and another CR3. */
export interface WalkOptions {
  /** read (the default), write or exec. */
  access?: AccessKind;
  /** A user-mode (CPL 3) access instead of a supervisor one. */
  user?: boolean;
  /** Walk the tables at this CR3 instead of the session's. */
  cr3?: Numberish;
}

/** Which part of which address space `map()` lists. */
export interface MapWindow {
  /** First linear address to list. */
  from?: Numberish;
  /** Last linear address to list, inclusive. */
  to?: Numberish;
  /** List the tables at this CR3 instead of the session's. */
  cr3?: Numberish;
}

/** What `diff()` compares: the session's address space (or `cr3`) against `against`. */
export interface DiffOptions extends MapWindow {
  /** The CR3 of the baseline address space. */
  against: Numberish;
}

/** The page fault `fault()` explains. */
export interface FaultOptions {
  /** The #PF error code (QEMU's `e=`). */
  errorCode: Numberish;
  /** The faulting address (default: the target's CR2). */
  cr2?: Numberish;
  /** Where the CPU was (default: the target's RIP). */
  rip?: Numberish;
}

/** A QEMU `-d int,cpu_reset` log: a file, its text, or a stream of its bytes. */
export type LogSource = { path: string } | { text: string } | { chunks: AsyncIterable<string | Uint8Array> };

/** Options of `explainLog()`. */
export interface ExplainLogOptions {
  /** Walk each #PF's CR2 in the tables of the target, in the CR3 the log shows (default true). */
  tables?: boolean;
}

/** Options of `watchCr3()`. */
export interface WatchCr3Options {
  /** Stop after this many CR3 writes, standing on the last one (not executed). */
  count?: number;
  /** Stop before a write whose verdict is not safe ('danger'), or before every one ('every'). */
  stopOn?: 'danger' | 'every';
  /** Where no mov-to-CR3 site can be found, single-step at most this many instructions. */
  maxSteps?: number;
  /** Physical memory to scan for sites per address space, in MiB (default 64). */
  scanBudgetMiB?: number;
  /** Aborting ends the watch, leaving the guest stopped where it is (e.g. `AbortSignal.timeout(5000)`). */
  signal?: AbortSignal;
}

/** A streamed answer: the header now, the items as they are read. */
export interface Streamed<H, T, R> {
  header: H;
  items: AsyncGenerator<T, R, undefined>;
}
