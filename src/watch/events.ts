/**
 * What the watches report, as they go: the sites they break on, each CR3 write (while the guest
 * still stands on the `mov cr3`), each #PF caught at its handler, single-stepping, and how a watch
 * ended. The CLI prints them as text or as JSON lines (`src/json/watch.ts`).
 */
import type { DecodedErrorCode } from '../faults/errorCode.js';
import type { FaultComparison } from '../faults/againstTables.js';
import type { Hint } from '../faults/diagnose.js';
import type { MapRange } from '../paging/map.js';
import type { PreflightResult } from '../paging/preflight.js';
import type { WalkResult } from '../paging/walk.js';
import type { Cr3Write } from './cr3Value.js';
import type { PostMortem } from './postMortem.js';
import type { CodeSite, ScanReport } from './sites.js';

/** The hints for one thing the pre-flight (or the watch) looked at. */
export interface HintGroup {
  /** A problem's `what` ('next-instruction', 'stack', 'gate:#PF' ...). */
  what: string;
  va: bigint;
  hints: Hint[];
}

/** The breakpoints of an address space: the scan, what went in, what the target refused. */
export interface SitesEvent {
  type: 'sites';
  cr3: bigint;
  scan: ScanReport;
  /** Sites taken from the ELF file (--elf). */
  elfSites: CodeSite[];
  /** Breakpoints in place (virtual addresses). */
  armed: bigint[];
  /** Sites the target refused a breakpoint at (KVM takes four). */
  refused: bigint[];
}

/** A CR3 write, reported while the guest still stands on the `mov cr3`. */
export interface Cr3WriteEvent {
  type: 'cr3-write';
  /** 1 for the first write this watch saw. */
  index: number;
  rip: bigint;
  /** `mov cr3, rax`. */
  instruction: string;
  /** How the watch got there. */
  via: 'breakpoint' | 'single-step';
  old: bigint;
  write: Cr3Write;
  preflight: PreflightResult;
  hints: HintGroup[];
  /** Ranges the old tables map and the new ones do not (at most {@link MAX_LOST}). */
  lost: MapRange[];
  /** How many more lost ranges there were. */
  lostMore: number;
}

/** The most lost ranges an event lists. */
export const MAX_LOST = 256;

/** After stepping over a `mov cr3`, CR3 is not what the watch predicted (the MOV faulted, say). */
export interface Cr3MismatchEvent {
  type: 'cr3-mismatch';
  rip: bigint;
  expected: bigint;
  actual: bigint;
  /** Where the step went: RIP after it. */
  after: bigint;
  /** What most likely happened, in plain words. */
  reason: string;
}

/** The watch single-steps: no site to break on. */
export interface SingleStepEvent {
  type: 'single-step';
  reason: string;
  maxSteps: number;
}

/** How single-stepping went, when it ends (at a `mov cr3`, the bound, or a stop). */
export interface SingleStepDoneEvent {
  type: 'single-step-done';
  steps: number;
  ms: number;
  /** Instructions per second, measured. */
  perSecond: number;
}

/** A #PF caught at its handler. */
export interface PageFaultEvent {
  type: 'page-fault';
  index: number;
  handler: bigint;
  cr2: bigint;
  errorCode: number;
  decoded: DecodedErrorCode;
  /** From the exception frame: where the fault happened, CS, RFLAGS, and RSP/SS (64-bit frames, or a privilege change). */
  frame: { rip: bigint; cs: number; rflags: bigint; rsp: bigint | null; ss: number | null; at: bigint };
  walk: WalkResult;
  comparison: FaultComparison;
  hints: Hint[];
}

/** The IDT the #PF catch reads moved (LIDT), or its handler did. */
export interface IdtEvent {
  type: 'idt';
  base: bigint;
  limit: number;
  /** The #PF handler, or null when its gate is not present. */
  handler: bigint | null;
  /** LIDT sites broken on to follow the next IDT load. */
  lidtSites: number;
}

/** The guest shut down (a triple fault kept for post-mortem). */
export interface ShutdownEvent {
  type: 'shutdown';
  postMortem: PostMortem;
}

/** Why a watch ended. */
export type WatchEnd =
  /** `--count` writes (or faults) seen; the guest stands on the last one. */
  | 'count'
  /** `--stop-on danger`: before a CR3 write whose verdict is not safe. */
  | 'danger'
  /** `--stop-on every`. */
  | 'every'
  /** Ctrl-C, or a stop someone else asked for. */
  | 'interrupted'
  /** A triple fault: the guest is shut down. */
  | 'shutdown'
  /** The guest (or the emulator) exited. */
  | 'exited'
  /** Single-stepping reached its bound. */
  | 'step-limit'
  /** A step over a `mov cr3` left RIP where it was: the MOV does not complete (see `mismatchReason`). */
  | 'stalled';

/** The end of a watch: the guest is left stopped where it is, breakpoints removed. */
export interface StoppedEvent {
  type: 'stopped';
  end: WatchEnd;
  rip: bigint | null;
  /** One line for the user. */
  message: string;
}

/** Everything a watch reports. */
export type WatchEvent = SitesEvent | Cr3WriteEvent | Cr3MismatchEvent | SingleStepEvent | SingleStepDoneEvent | PageFaultEvent | IdtEvent | ShutdownEvent | StoppedEvent;
