/**
 * The JSON shapes of `watch-cr3`, `catch-pf` and `post-mortem`: one object per event, printed as
 * JSON lines (DESIGN.md: `{ "event": "cr3-write", "rip", "old", "new", "verdict", "problems",
 * "lost" }`, each problem with its walk and its hints), and the diagnosis hints shared with
 * `fault` and `check`.
 */
import type { Hint } from '../faults/diagnose.js';
import { hex } from '../paging/addr.js';
import type { ChainLink } from '../paging/preflight.js';
import type { Cr3WriteEvent, HintGroup, PageFaultEvent, WatchEvent } from '../watch/events.js';
import type { PostMortem } from '../watch/postMortem.js';
import { preflightJson, preflightProblemJson, type PreflightJson, type PreflightProblemJson } from './check.js';
import { decodedErrorCodeJson, type DecodedErrorCodeJson } from './fault.js';
import { mapRangeJson, type MapRangeJson } from './map.js';
import { walkJson, type WalkJson } from './walk.js';

/** A diagnosis hint, as JSON. */
export interface HintJson {
  kind: string;
  confidence: string;
  level: string | null;
  entryAddress: string | null;
  text: string;
}

/** Shapes a hint. */
export function hintJson(h: Hint): HintJson {
  return { kind: h.kind, confidence: h.confidence, level: h.level, entryAddress: h.entryAddress === null ? null : hex(h.entryAddress), text: h.text };
}

/** The hints of one thing looked at, as JSON. */
export interface HintGroupJson {
  what: string;
  va: string;
  hints: HintJson[];
}

/** Shapes a group of hints. */
export function hintGroupJson(g: HintGroup): HintGroupJson {
  return { what: g.what, va: hex(g.va), hints: g.hints.map(hintJson) };
}

/** A chain link, as JSON. */
export interface ChainLinkJson {
  vector: number;
  name: string;
  errorCode: string | null;
  cr2: string | null;
  cause: string;
}

function chainJson(chain: readonly ChainLink[]): ChainLinkJson[] {
  return chain.map((l) => ({ vector: l.vector, name: l.name, errorCode: l.errorCode === null ? null : hex(l.errorCode), cr2: l.cr2 === null ? null : hex(l.cr2), cause: l.cause }));
}

/** A CR3 write, as JSON: DESIGN's shape, with the pre-flight's chain and summary, PCID, and hints. */
export interface Cr3WriteJson {
  event: 'cr3-write';
  index: number;
  rip: string;
  instruction: string;
  via: string;
  old: string;
  new: string;
  /** The value moved (bit 63 included). */
  value: string;
  pcid: number | null;
  noFlush: boolean;
  verdict: string;
  summary: string;
  problems: (PreflightProblemJson & { hints: HintJson[] })[];
  chain: ChainLinkJson[];
  unknown: string[];
  /** Every hint, the problems' and the next instruction's. */
  hints: HintGroupJson[];
  lost: MapRangeJson[];
  lostMore: number;
}

/** Shapes a CR3 write. */
export function cr3WriteJson(e: Cr3WriteEvent): Cr3WriteJson {
  const p = e.preflight;
  return {
    event: 'cr3-write',
    index: e.index,
    rip: hex(e.rip),
    instruction: e.instruction,
    via: e.via,
    old: hex(e.old),
    new: hex(e.write.cr3),
    value: hex(e.write.value),
    pcid: e.write.pcid,
    noFlush: e.write.noFlush,
    verdict: p.verdict,
    summary: p.summary,
    problems: p.problems.map((x) => ({
      ...preflightProblemJson(x),
      hints: e.hints.filter((g) => g.what === x.what && g.va === x.va).flatMap((g) => g.hints.map(hintJson)),
    })),
    chain: chainJson(p.chain),
    unknown: [...p.unknown],
    hints: e.hints.map(hintGroupJson),
    lost: e.lost.map(mapRangeJson),
    lostMore: e.lostMore,
  };
}

/** A caught #PF, as JSON. */
export interface PageFaultJson {
  event: 'page-fault';
  index: number;
  handler: string;
  cr2: string;
  errorCode: string;
  decoded: DecodedErrorCodeJson;
  frame: { rip: string; cs: string; rflags: string; rsp: string | null; ss: string | null; at: string };
  walk: WalkJson;
  agrees: boolean;
  explanation: string;
  hints: HintJson[];
}

/** Shapes a caught #PF. */
export function pageFaultJson(e: PageFaultEvent): PageFaultJson {
  return {
    event: 'page-fault',
    index: e.index,
    handler: hex(e.handler),
    cr2: hex(e.cr2),
    errorCode: hex(e.errorCode),
    decoded: decodedErrorCodeJson(e.decoded),
    frame: {
      rip: hex(e.frame.rip),
      cs: hex(e.frame.cs),
      rflags: hex(e.frame.rflags),
      rsp: e.frame.rsp === null ? null : hex(e.frame.rsp),
      ss: e.frame.ss === null ? null : hex(e.frame.ss),
      at: hex(e.frame.at),
    },
    walk: walkJson(e.walk),
    agrees: e.comparison.agrees,
    explanation: e.comparison.explanation,
    hints: e.hints.map(hintJson),
  };
}

/** A post-mortem, as JSON. */
export interface PostMortemJson {
  rip: string;
  rsp: string;
  cr2: string;
  cr3: string;
  mode: string;
  explained: boolean;
  summary: string;
  instruction: { text: string; bytes: string } | null;
  access: { va: string; size: number; access: string; walk: WalkJson; chain: ChainLinkJson[]; end: string } | null;
  raised: { vector: number; chain: ChainLinkJson[]; end: string } | null;
  cr2Walk: { access: string; walk: WalkJson } | null;
  preflight: PreflightJson;
  hints: HintJson[];
  log: { chain: string; explanation: string } | null;
}

/** Shapes a post-mortem. */
export function postMortemJson(pm: PostMortem): PostMortemJson {
  return {
    rip: hex(pm.cpu.rip),
    rsp: hex(pm.cpu.rsp),
    cr2: hex(pm.cpu.cr2),
    cr3: hex(pm.cpu.cr3),
    mode: pm.ctx.mode,
    explained: pm.explained,
    summary: pm.summary,
    instruction: pm.instruction ? { text: pm.instruction.text, bytes: [...pm.instruction.bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ') } : null,
    access: pm.access
      ? { va: hex(pm.access.va), size: pm.access.size, access: pm.access.access, walk: walkJson(pm.access.walk), chain: chainJson(pm.access.chain), end: pm.access.end }
      : null,
    raised: pm.raised ? { vector: pm.raised.vector, chain: chainJson(pm.raised.chain), end: pm.raised.end } : null,
    cr2Walk: pm.cr2 ? { access: pm.cr2.access, walk: walkJson(pm.cr2.walk) } : null,
    preflight: preflightJson(pm.preflight),
    hints: pm.hints.map(hintJson),
    log: pm.log ? { chain: pm.log.oneLine, explanation: pm.log.explanation } : null,
  };
}

/** Any watch event, as one JSON object (`event` names its kind). */
export function watchEventJson(e: WatchEvent): Record<string, unknown> {
  switch (e.type) {
    case 'cr3-write':
      return { ...cr3WriteJson(e) };
    case 'page-fault':
      return { ...pageFaultJson(e) };
    case 'sites':
      return {
        event: 'sites',
        cr3: hex(e.cr3),
        sites: [...e.scan.sites, ...e.elfSites].map((s) => ({ kind: s.kind, va: hex(s.va), pa: s.pa === null ? null : hex(s.pa), instruction: s.text, from: s.from })),
        armed: e.armed.map(hex),
        refused: e.refused.map(hex),
        scan: {
          executableRanges: e.scan.executableRanges,
          executableBytes: hex(e.scan.executableBytes),
          scannedBytes: e.scan.scannedBytes,
          skippedBytes: hex(e.scan.skippedBytes),
          candidates: e.scan.candidates,
          ms: Math.round(e.scan.ms),
        },
      };
    case 'cr3-mismatch':
      return { event: 'cr3-mismatch', rip: hex(e.rip), expected: hex(e.expected), actual: hex(e.actual), after: hex(e.after), reason: e.reason };
    case 'single-step':
      return { event: 'single-step', reason: e.reason, maxSteps: e.maxSteps };
    case 'single-step-done':
      return { event: 'single-step-done', steps: e.steps, ms: Math.round(e.ms), perSecond: e.perSecond };
    case 'idt':
      return { event: 'idt', base: hex(e.base), limit: hex(e.limit), handler: e.handler === null ? null : hex(e.handler), lidtSites: e.lidtSites };
    case 'shutdown':
      return { event: 'shutdown', postMortem: postMortemJson(e.postMortem) };
    case 'stopped':
      return { event: 'stopped', end: e.end, rip: e.rip === null ? null : hex(e.rip), message: e.message };
  }
}
