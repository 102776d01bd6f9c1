/**
 * The fault pane: the CR3 pre-flight of the last `mov cr3` the watch stopped at or the last `check`
 * (verdict, summary, the chain of exceptions, the failing checks), and the page fault at hand: CR2,
 * the error code bit by bit, its walk through the tables, and the explanation.
 */
import type { DecodedErrorCode } from '../faults/errorCode.js';
import type { FaultComparison } from '../faults/againstTables.js';
import { hex } from '../paging/addr.js';
import type { PreflightResult, Verdict } from '../paging/preflight.js';
import type { WalkResult } from '../paging/walk.js';
import { visibleLength } from '../cli/output.js';
import type { Paint } from './paint.js';
import { wrapWords } from './text.js';

/** Where a fault shown in the pane comes from. */
export type FaultOrigin =
  /** The exception log (the emulator's, or QEMU's `-d int` log when pagewalk started QEMU). */
  | 'log'
  /** The first exception the pre-flight predicts for a `mov cr3` not yet executed. */
  | 'predicted'
  /** Given on the command line (`fault --cr2 X --error-code E`). */
  | 'command'
  /** Only CR2 is known: the error code is what a walk of CR2 would give for a supervisor read. */
  | 'cr2';

/** A page fault and what the tables say about it. */
export interface FaultView {
  origin: FaultOrigin;
  cr2: bigint;
  /** The error code, decoded; null when it is not known (origin 'cr2'). */
  decoded: DecodedErrorCode | null;
  rip: bigint | null;
  /** CR2 walked with the access the error code describes (a supervisor read when it is unknown). */
  walk: WalkResult;
  /** The error code held against the walk (null without an error code). */
  comparison: FaultComparison | null;
}

/** A pre-flight and where it came from. */
export interface CheckView {
  /** What asked for it: 'watch' (a `mov cr3` the watch stopped at) or 'check' (the `x` key or the command). */
  origin: 'watch' | 'check';
  /** The CR3 loaded when it ran. */
  from: bigint;
  rip: bigint;
  result: PreflightResult;
  /** What the tables suggest went wrong (a stack in loader memory, a shifted address ...), one sentence or two each. */
  hints: string[];
  /** The guest has moved since (the prediction is history). */
  stale?: boolean;
}

const ORIGIN_WORDS: Record<FaultOrigin, string> = {
  log: 'from the exception log',
  predicted: 'predicted: what the CPU would raise first',
  command: 'as given',
  cr2: 'only CR2 is known: walked as a supervisor read',
};

/** The verdict in words and colour. */
export function verdictText(v: Verdict, p: Paint): string {
  const { c } = p;
  return { safe: c.green('safe'), 'at-risk': c.yellow('AT RISK'), fault: c.red('FAULT'), 'triple-fault': c.red(c.bold('TRIPLE FAULT')) }[v];
}

/** The pre-flight section: verdict, summary, the chain (#PF -> #DF -> triple fault, then one line each), the problems, the hints. */
export function checkLines(v: CheckView, p: Paint, width: number): string[] {
  const { c, g } = p;
  const r = v.result;
  const when = v.stale ? 'earlier, ' : '';
  const lines = [`${c.bold(`Pre-flight of CR3 ${hex(r.cr3)}`)}: ${verdictText(r.verdict, p)}`];
  if (r.chain.length > 0) lines.push(`  ${r.chain.map((l) => (l.vector < 0 ? c.red(c.bold(l.name)) : c.bold(l.name))).join(` ${g.arrow} `)}`);
  lines.push(...wrapWords(r.summary, width, '  ', '  '));
  lines.push(...wrapWords(`${when}with ${hex(v.from)} loaded, ${v.origin === 'watch' ? 'the mov cr3' : 'RIP'} at ${hex(v.rip)}`, width, '  ', '  ').map((x) => c.dim(x)));
  r.chain.forEach((l, i) => {
    const facts = [l.errorCode !== null ? `error code ${hex(l.errorCode)}` : '', l.cr2 !== null ? `CR2 ${hex(l.cr2)}` : ''].filter(Boolean).join(', ');
    const name = l.vector < 0 ? c.red(l.name) : c.bold(l.name);
    lines.push(`  ${i + 1}. ${name}${facts ? `  ${facts}` : ''}`);
    lines.push(...wrapWords(l.cause, width, '     ', '     ').map((x) => c.dim(x)));
  });
  for (const prob of r.problems) {
    lines.push(...wrapWords(`${prob.what} (${prob.when}): ${prob.explanation}`, width, `  ${g.bad} `, '    ').map((x) => c.red(x)));
  }
  for (const h of v.hints) lines.push(...wrapWords(h, width, `  ${g.warn} `, '    ').map((x) => c.yellow(x)));
  for (const u of r.unknown) lines.push(...wrapWords(`not checked: ${u}`, width, '  ? ', '    ').map((x) => c.yellow(x)));
  return lines;
}

/** The fault section: CR2, the error code bit by bit, the walk in one line per level, the explanation. */
export function faultLines(f: FaultView, p: Paint, width: number): string[] {
  const { c, g } = p;
  const d = f.decoded;
  const lines = [`${c.bold(c.red('#PF'))} CR2 ${c.bold(hex(f.cr2))}${d ? `  error code ${c.bold(hex(d.code))}` : ''}`];
  lines.push(...wrapWords(`${ORIGIN_WORDS[f.origin]}${f.rip !== null ? `; raised at RIP ${hex(f.rip)}` : ''}`, width, '  ', '  ').map((x) => c.dim(x)));
  if (d) {
    const shown = d.bits.filter((b) => b.bit <= 5 || b.set);
    const labelWidth = Math.max(...shown.map((b) => `${b.name}=1`.length)) + 2;
    for (const b of shown) {
      const label = `  ${`${b.name}=${b.set ? 1 : 0}`.padEnd(labelWidth)}`;
      const rows = wrapWords(b.meaning, width, label, ' '.repeat(label.length));
      lines.push(...rows.map((x, i) => (b.set ? x : i === 0 ? label + c.dim(x.slice(label.length)) : c.dim(x))));
    }
    lines.push(...wrapWords(`a ${d.summary}`, width, '  => ', '     '));
    for (const pit of d.pitfalls) lines.push(...wrapWords(pit, width, `  ${g.warn} `, '    ').map((x) => c.yellow(x)));
  }
  lines.push(...joinWrapped(walkParts(f.walk, p), c.dim(' > '), width, `  ${c.dim('walk:')} `, '        '));
  if (f.comparison) {
    const mark = f.comparison.agrees ? c.green(g.good) : c.yellow('?');
    lines.push(...wrapWords(f.comparison.explanation, width, '    ', '    ').map((x, i) => (i === 0 ? `  ${mark} ${x.slice(4)}` : x)));
  } else if (f.walk.fault) {
    lines.push(...wrapWords(f.walk.fault.explanation, width, '    ', '    '));
  }
  return lines;
}

/** Joins coloured `parts` with `sep` into lines no wider than `width`, breaking only between parts. */
function joinWrapped(parts: readonly string[], sep: string, width: number, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const part of parts) {
    const add = empty ? part : sep + part;
    if (!empty && visibleLength(line) + visibleLength(add) > width) {
      lines.push(line);
      line = rest + part;
    } else line += add;
    empty = false;
  }
  lines.push(line);
  return lines;
}

/** A walk's levels in a few words each: `PML4[256] ok`, `PD[1] not present ✗`, then the physical address. */
export function walkParts(w: WalkResult, p: Paint): string[] {
  const { c, g } = p;
  const f = w.fault;
  const parts = w.steps.map((s, i) => {
    const last = i === w.steps.length - 1;
    const bad = f !== null && f.level === s.level && (f.reason === 'protection' || last);
    const what = !s.present ? 'not present' : s.reserved !== 0n ? 'reserved bits' : s.leaf ? `${s.flags.includes('RW') ? 'rw' : 'ro'}${s.flags.includes('US') ? ' user' : ''}${s.flags.includes('NX') ? ' nx' : ''}` : 'ok';
    const text = `${s.level}[${s.index}] ${what}`;
    return bad ? c.red(`${text} ${g.bad}`) : text;
  });
  if (f && f.level === null) parts.push(c.red(`non-canonical ${g.bad}`));
  if (!f && w.translation) parts.push(c.green(`${hex(w.translation.pa)} ${g.good}`));
  return parts;
}

/** A walk in one line: `PML4[256] ok > PDPT[0] ok > PD[1] not present ✗`. */
export function walkSummary(w: WalkResult, p: Paint): string {
  return walkParts(w, p).join(p.c.dim(' > '));
}
