/**
 * What the CR3 pre-flight starts from and what it answers: the verdict, the failing checks, the
 * chain of exceptions the CPU goes through, and one summary line.
 */
import type { CpuState } from './cpu.js';
import type { PagingContext } from './mode.js';
import type { AccessKind } from './rights.js';
import type { WalkFault, WalkResult } from './walk.js';

/** The pre-flight's answer: `fault` when the next access faults but a handler takes it. */
export type Verdict = 'safe' | 'at-risk' | 'fault' | 'triple-fault';

/** When a problem bites: at once, on the next exception, or on the next interrupt. */
export type ProblemTime = 'now' | 'on-exception' | 'on-interrupt';

/** One failing check. */
export interface PreflightProblem {
  /**
   * 'next-instruction' | 'stack' | 'cr3' | 'gdt' | 'idt' | 'tss', or a part of one vector's delivery:
   * 'gate:#PF', 'stack:#DF' (the stack the delivery pushes to), 'handler:#GP', 'handler:int 0x20'.
   * Interrupt vectors that fail alike are merged: 'handler:int 0x20-0x2f'.
   */
  what: string;
  va: bigint;
  access: AccessKind;
  /** The paging fault, or null when it is not one (gate not present, IDT limit too small...). */
  fault: WalkFault | null;
  walk: WalkResult | null;
  when: ProblemTime;
  /** One line, plain words. */
  explanation: string;
}

/** One exception in the chain the CPU goes through. */
export interface ChainLink {
  /** The vector; `TRIPLE_FAULT` (-1, see `exceptions.ts`) for the shutdown that ends a chain. */
  vector: number;
  name: string;
  errorCode: number | null;
  cr2: bigint | null;
  cause: string;
}

/** Everything the pre-flight found. */
export interface PreflightResult {
  cr3: bigint;
  verdict: Verdict;
  /** Every failing check, with its walk (a 'safe' switch has none). */
  problems: PreflightProblem[];
  /** What the CPU does, in order, when the next access faults: e.g. #PF -> #DF -> triple fault. */
  chain: ChainLink[];
  checked: { what: string; va: bigint; access: AccessKind; ok: boolean }[];
  /** What could not be checked and why. */
  unknown: string[];
  /** One line in plain words. */
  summary: string;
}

/** What the pre-flight starts from. */
export interface PreflightInput {
  /** The paging context with the NEW CR3 (see `withCr3`). */
  ctx: PagingContext;
  /** RIP (the next instruction), RSP, RFLAGS, CS, SS, GDTR, IDTR, TR (with its base). */
  cpu: CpuState;
}
