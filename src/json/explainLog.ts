/**
 * The JSON shape of `explain-log` (DESIGN.md): `{ events, outcome, summary }`, each event with its
 * vector, name, error code (decoded for #PF, as a selector for #TS/#NP/#SS/#GP), RIP, CR2, CR3 and
 * explanation, extended with line numbers, CPL, QEMU's `i=`, the chain each event belongs to, and,
 * with a target, whether the tables (now) agree with each #PF.
 */
import { hex } from '../paging/addr.js';
import type { LogChain, LogExplanation, LoggedException } from '../faults/explainLog.js';
import { chainNarrative } from '../faults/explainLog.js';
import type { SelectorErrorCode } from '../faults/logExceptions.js';
import type { WalkResult } from '../paging/walk.js';
import { decodedErrorCodeJson, type DecodedErrorCodeJson } from './fault.js';
import { walkJson, type WalkJson } from './walk.js';

/** A #PF held against the tables of a target. */
export interface TablesCheck {
  walk: WalkResult;
  agrees: boolean;
  explanation: string;
}

/** The tables' verdict on one event, as JSON. */
export interface TablesCheckJson {
  agrees: boolean;
  explanation: string;
  walk: WalkJson;
}

/** A selector error code, as JSON. */
export interface SelectorErrorCodeJson {
  code: string;
  ext: boolean;
  idt: boolean;
  ti: boolean;
  index: number;
  table: string;
  selector: string;
  summary: string;
}

/** One exception or interrupt of the log, as JSON. */
export interface LogEventJson {
  /** Index of the chain it belongs to (in `chains`). */
  chain: number;
  line: number;
  endLine: number;
  /** QEMU's interrupt count. */
  count: number;
  vector: number;
  name: string;
  longName: string;
  kind: string;
  /** QEMU's `i=`: 1 for int n / int3 / into. */
  i: 0 | 1;
  cpl: number;
  /** The error code the CPU pushed (null when none is pushed); `rawErrorCode` is QEMU's `e=`. */
  errorCode: string | null;
  rawErrorCode: string;
  decoded: DecodedErrorCodeJson | null;
  selector: SelectorErrorCodeJson | null;
  cs: string;
  rip: string;
  /** RIP as `name+0xoff`, with --elf. */
  ripSymbol: string | null;
  ss: string;
  rsp: string;
  cr2: string | null;
  /** CR2 as `name+0xoff`, with --elf. */
  cr2Symbol: string | null;
  cr3: string | null;
  mode: string | null;
  raisedWhileDelivering: string | null;
  promotedFrom: string | null;
  deliveryFailure: { raised: string; confidence: string; why: string; rule: string; address: string | null } | null;
  /** What the values suggest (CR2 equal to RIP, CR2 just below RSP). */
  hints: string[];
  explanation: string;
  /** With a target: a walk of CR2 in the log's CR3 with the access the error code describes. */
  tables: TablesCheckJson | null;
}

/** A chain of the log, as JSON. */
export interface LogChainJson {
  /** Indexes into `events`. */
  events: number[];
  end: string;
  firstLine: number;
  lastLine: number;
  occurrences: number;
  lastOccurrenceLine: number;
  tripleFaultLine: number | null;
  tripleFaultCause: string | null;
  resetAfter: boolean;
  oneLine: string;
  narrative: string;
  explanation: string;
}

/** `explain-log`, as JSON. */
export interface ExplainLogJson {
  events: LogEventJson[];
  chains: LogChainJson[];
  droppedChains: number;
  outcome: string;
  danger: boolean;
  summary: string;
  counts: LogExplanation['counts'];
  notes: string[];
  unrecognised: { line: number; text: string; cut: boolean }[];
  cut: boolean;
}

function selectorJson(s: SelectorErrorCode): SelectorErrorCodeJson {
  return { code: hex(s.code), ext: s.ext, idt: s.idt, ti: s.ti, index: s.index, table: s.table, selector: hex(s.selector), summary: s.summary };
}

const vec = (v: number | null): string | null => (v === null ? null : hex(v));

/** Names an address (`name+0xoff`), or says it cannot. */
export type Symbolizer = (va: bigint) => string | undefined;

/** Shapes one logged exception; `tables` is its check against a target, when there was one. */
export function logEventJson(l: LoggedException, chain: number, tables: TablesCheck | null, sym?: Symbolizer): LogEventJson {
  const f = l.deliveryFailure;
  return {
    chain,
    line: l.line,
    endLine: l.endLine,
    count: l.count,
    vector: l.vector,
    name: l.name,
    longName: l.longName,
    kind: l.kind,
    i: l.softwareInt ? 1 : 0,
    cpl: l.cpl,
    errorCode: l.errorCode === null ? null : hex(l.errorCode),
    rawErrorCode: hex(l.rawErrorCode),
    decoded: l.decoded ? decodedErrorCodeJson(l.decoded) : null,
    selector: l.selector ? selectorJson(l.selector) : null,
    cs: hex(l.cs),
    rip: hex(l.rip),
    ripSymbol: sym?.(l.rip) ?? null,
    ss: hex(l.ss),
    rsp: hex(l.sp),
    cr2: l.cr2 === null ? null : hex(l.cr2),
    cr2Symbol: l.cr2 === null ? null : (sym?.(l.cr2) ?? null),
    cr3: l.cr3 === null ? null : hex(l.cr3),
    mode: l.mode,
    raisedWhileDelivering: vec(l.raisedWhileDelivering),
    promotedFrom: vec(l.promotedFrom),
    deliveryFailure: f ? { raised: hex(f.raised), confidence: f.confidence, why: f.why, rule: f.rule, address: f.address === null ? null : hex(f.address) } : null,
    hints: [...l.hints],
    explanation: l.explanation,
    tables: tables ? { agrees: tables.agrees, explanation: tables.explanation, walk: walkJson(tables.walk) } : null,
  };
}

/** Shapes the whole answer; `tables` maps logged exceptions to their checks against a target, `sym` names addresses. */
export function explainLogJson(x: LogExplanation, tables: ReadonlyMap<LoggedException, TablesCheck> = new Map(), sym?: Symbolizer): ExplainLogJson {
  const events: LogEventJson[] = [];
  const chains = x.chains.map((c: LogChain, index): LogChainJson => {
    const ids = c.links.map((l) => {
      events.push(logEventJson(l, index, tables.get(l) ?? null, sym));
      return events.length - 1;
    });
    return {
      events: ids,
      end: c.end,
      firstLine: c.firstLine,
      lastLine: c.lastLine,
      occurrences: c.occurrences,
      lastOccurrenceLine: c.lastOccurrenceLine,
      tripleFaultLine: c.tripleFaultLine,
      tripleFaultCause: vec(c.tripleFaultCause),
      resetAfter: c.resetAfter,
      oneLine: c.oneLine,
      narrative: chainNarrative(c),
      explanation: c.explanation,
    };
  });
  return {
    events,
    chains,
    droppedChains: x.droppedChains,
    outcome: x.outcome,
    danger: x.danger,
    summary: x.summary,
    counts: { ...x.counts, byName: { ...x.counts.byName } },
    notes: [...x.notes],
    unrecognised: x.unrecognised.map((u) => ({ ...u })),
    cut: x.cut,
  };
}
