/**
 * The JSON shape of `check`: the lint of the tables and the CR3 pre-flight.
 */
import { hex } from '../paging/addr.js';
import type { LintFinding, LintReport } from '../paging/lint.js';
import type { PreflightProblem, PreflightResult } from '../paging/preflight.js';
import type { MapRangeJson } from './map.js';
import { walkFaultJson, walkJson, type WalkFaultJson, type WalkJson } from './walk.js';
import type { HintGroupJson } from './watch.js';

/** A lint finding, as JSON. */
export interface LintFindingJson {
  code: string;
  severity: string;
  level: string;
  entryAddress: string;
  raw: string;
  va: string;
  vaEnd: string;
  message: string;
  hint: string | null;
  count: number;
}

/** A pre-flight problem, as JSON (DESIGN's watch-cr3 problem shape plus the walk and when). */
export interface PreflightProblemJson {
  what: string;
  va: string;
  access: string;
  when: string;
  fault: WalkFaultJson | null;
  explanation: string;
  walk: WalkJson | null;
}

/** The pre-flight, as JSON. */
export interface PreflightJson {
  cr3: string;
  verdict: string;
  problems: PreflightProblemJson[];
  chain: { vector: number; name: string; errorCode: string | null; cr2: string | null; cause: string }[];
  checked: { what: string; va: string; access: string; ok: boolean }[];
  unknown: string[];
  summary: string;
}

/** The lint of the tables. */
export interface LintJson {
  findings: LintFindingJson[];
  omitted: number;
  tables: number;
  entries: number;
}

/** The lint and the CR3 pre-flight, as `check --json` prints it; `lost` is what switching from the loaded CR3 loses. */
export interface CheckJson {
  cr3: string;
  mode: string;
  preflight: PreflightJson;
  /** What the code most likely did wrong, for each problem (and the next instruction). */
  hints: HintGroupJson[];
  lost: MapRangeJson[];
  lint: LintJson;
}

/** Shapes a finding. */
export function lintFindingJson(f: LintFinding): LintFindingJson {
  return {
    code: f.code,
    severity: f.severity,
    level: f.level,
    entryAddress: hex(f.entryAddress),
    raw: hex(f.raw),
    va: hex(f.va),
    vaEnd: hex(f.vaEnd),
    message: f.message,
    hint: f.hint ?? null,
    count: f.count ?? 1,
  };
}

/** Shapes a lint report. */
export function lintJson(r: LintReport): LintJson {
  return { findings: r.findings.map(lintFindingJson), omitted: r.omitted, tables: r.tables, entries: r.entries };
}

/** Shapes a pre-flight problem. */
export function preflightProblemJson(p: PreflightProblem): PreflightProblemJson {
  return {
    what: p.what,
    va: hex(p.va),
    access: p.access,
    when: p.when,
    fault: p.fault ? walkFaultJson(p.fault) : null,
    explanation: p.explanation,
    walk: p.walk ? walkJson(p.walk) : null,
  };
}

/** Shapes a pre-flight result. */
export function preflightJson(r: PreflightResult): PreflightJson {
  return {
    cr3: hex(r.cr3),
    verdict: r.verdict,
    problems: r.problems.map(preflightProblemJson),
    chain: r.chain.map((l) => ({
      vector: l.vector,
      name: l.name,
      errorCode: l.errorCode === null ? null : hex(l.errorCode),
      cr2: l.cr2 === null ? null : hex(l.cr2),
      cause: l.cause,
    })),
    checked: r.checked.map((k) => ({ what: k.what, va: hex(k.va), access: k.access, ok: k.ok })),
    unknown: [...r.unknown],
    summary: r.summary,
  };
}
