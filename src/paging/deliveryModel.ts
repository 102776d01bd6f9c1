/**
 * The CPU as exception delivery sees it, the exceptions a delivery raises, and what a delivery ends
 * in: a handler running, a fault during delivery, a handler whose first instruction faults, or an
 * input the target did not report.
 */
import type { CpuState } from './cpu.js';
import type { PagingContext } from './mode.js';
import type { Log } from './preflightLog.js';
import type { WalkResult } from './walk.js';

/** Where the next same-privilege delivery pushes. */
export type Stack =
  | { kind: 'known'; base: bigint; sp: bigint; name: string }
  /** Used up by a handler that faults at once, over and over: the next push faults. */
  | { kind: 'exhausted'; name: string }
  /** Not reported by the target (the pushes are not checked). */
  | { kind: 'unknown'; name: string };

/** The state a delivery starts from. */
export interface Machine {
  readonly ctx: PagingContext;
  /** IA-32e delivery (16-byte gates, 64-bit pushes) rather than legacy. */
  readonly long: boolean;
  readonly cpl: number;
  readonly stack: Stack;
  /** EFLAGS.AC: lets explicit supervisor data accesses to user pages pass SMAP. */
  readonly ac: boolean;
  /** TSS selectors a task switch has made busy (a task gate to one of them raises #GP). */
  readonly busy: readonly number[];
}

/** An exception as the CPU raises it: vector, error code (null when none is pushed), CR2 for a #PF. */
export interface Raised {
  vector: number;
  errorCode: number | null;
  cr2: bigint | null;
}

/** An exception other than #PF (CR2 untouched) with `errorCode`. */
export function raised(vector: number, errorCode: number): Raised {
  return { vector, errorCode, cr2: null };
}

/** The exception a failed walk raises; a stack access that is not canonical raises #SS, not #GP. */
export function raisedBy(walk: WalkResult, stack: boolean): Raised {
  const f = walk.fault!;
  if (f.vector === 14) return { vector: 14, errorCode: f.errorCode, cr2: walk.va };
  return raised(stack && f.reason === 'non-canonical' ? 12 : 13, 0);
}

/** A check that failed, worded for the summary: "the #PF handler's IDT entry at X is not mapped". */
export interface Failure {
  raised: Raised;
  /** Whose part it is: the vector's handler ("the #PF handler's stack"), the vector's own ("the #PF gate"), a task's, or nobody's. */
  owner: 'handler' | 'vector' | 'task' | 'plain';
  noun: string;
  verb: string;
  /** Not a check of its own (the stack ran out): no phrase of its own in the summary. */
  silent?: boolean;
}

/** What delivering one vector ends in. */
export type Delivery =
  | { kind: 'handled'; handler: bigint; how: string }
  /** A fault during delivery. */
  | { kind: 'faulted'; failure: Failure }
  /** Delivery completed, but the handler's first instruction faults. */
  | { kind: 'handler-faults'; failure: Failure; next: Machine; reloaded: string | null }
  | { kind: 'unknown'; reason: string }
  /** Interrupt sweep only: no present gate for the vector. */
  | { kind: 'absent' };

/** A step of delivery that cannot go on: the delivery it ends in. */
export type Stop = { kind: 'stop'; delivery: Delivery };

/** Ends a step of delivery with `delivery`. */
export function stop(delivery: Delivery): Stop {
  return { kind: 'stop', delivery };
}

/** What every delivery of one pre-flight shares: the CPU state reported and the record of checks. */
export interface Env {
  readonly cpu: CpuState;
  readonly log: Log;
}
