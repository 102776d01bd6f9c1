/**
 * What the Node API and the WebSocket API answer: the JSON shapes of the CLI's `--json` (src/json),
 * plain data with addresses as lower-case `0x` hex strings (`BigInt(walk.pa)` gives the number),
 * and the few shapes only the APIs have (a whole map, a diff, a check, a stop).
 */
import type { MapRangeJson, MapSummaryJson, AliasJson } from '../json/map.js';
import type { StopCause } from '../target/debuggee.js';

export type { RegsJson, SegmentJson } from '../json/regs.js';
export type { WalkJson, WalkStepJson, WalkFaultJson } from '../json/walk.js';
export type { MapRangeJson, MapSummaryJson, DiffEntryJson, DiffCountsJson, DiffJson, AliasJson } from '../json/map.js';
export type { FaultJson, FaultAnswerJson, DecodedErrorCodeJson } from '../json/fault.js';
export type { ExplainLogJson, LogEventJson, LogChainJson, TablesCheckJson } from '../json/explainLog.js';
export type { CheckJson, LintJson, PreflightJson, PreflightProblemJson, LintFindingJson } from '../json/check.js';
export type { StopCause } from '../target/debuggee.js';
export type { Cr3WriteJson, HintJson, HintGroupJson, ChainLinkJson } from '../json/watch.js';
export type { WatchSummaryJson } from './watchRun.js';

/** A whole address space, as `map --json` prints it. */
export interface MapJson {
  cr3: string;
  mode: string;
  ranges: MapRangeJson[];
  summary: MapSummaryJson;
}

/** Every linear address of a physical one, as `phys2virt --json` prints it. */
export interface Phys2virtJson {
  pa: string;
  cr3: string;
  mode: string;
  aliases: AliasJson[];
}

/** Where and why the guest stopped (the `stopped` event and notification). */
export interface StopJson {
  cause: StopCause;
  /** The stop reply's signal (5 trap, 2 interrupt, 3 QEMU's shutdown), where there is one. */
  signal: number | null;
  /** RIP and CR3 at the stop; null once the guest is gone. */
  rip: string | null;
  cr3: string | null;
  /** The watchpoint that fired. */
  watch: { kind: 'write' | 'read' | 'access'; address: string } | null;
  /** The exit status, when the guest exited. */
  exitCode: number | null;
  /** Why, in a line, where there is more to say than the cause (the end of a watch). */
  reason: string | null;
}

/** What the `targetLost` event carries. */
export interface TargetLostJson {
  message: string;
}
