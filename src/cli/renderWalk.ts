/**
 * Text rendering of a walk: one line per level (index, entry address, raw value, flags spelled out,
 * next table), the failing level marked, then the translation and the access verdict; and the
 * pieces the TUI's path pane lays out its own way.
 */
import { hex, hexPad } from '../paging/addr.js';
import type { Translation, WalkFault, WalkResult, WalkStep } from '../paging/walk.js';
import { humanSize, rightsLetters, table, type Colors } from './output.js';

/** Flag names spelled out for people, keyed by the short names the JSON uses. */
export const FLAG_WORDS: Readonly<Record<string, string>> = Object.freeze({
  P: 'present',
  RW: 'writable',
  US: 'user',
  PWT: 'write-through',
  PCD: 'cache-disable',
  A: 'accessed',
  D: 'dirty',
  PS: 'huge',
  G: 'global',
  PAT: 'PAT',
  NX: 'NX',
});

/** Whether `step` (the `i`th) is where the walk stopped, or where it lost the right the access needs. */
export function isCulprit(w: WalkResult, step: WalkStep, i: number): boolean {
  const f = w.fault;
  if (!f) return false;
  if (f.reason === 'protection') return f.level === step.level;
  return i === w.steps.length - 1 && f.level === step.level;
}

/** A step's flags spelled out (`present writable user`), or `not present`. */
export function stepFlagWords(step: WalkStep): string {
  return step.present ? step.flags.map((f) => FLAG_WORDS[f] ?? f).join(' ') : 'not present';
}

/** Where a step leads: `table 0x...`, `page 0x... (2M)`, or nothing. */
export function stepTarget(step: WalkStep): string {
  return step.next === null ? '' : step.leaf ? `page ${hex(step.next)} (${humanSize(step.pageSize ?? 4096)})` : `table ${hex(step.next)}`;
}

/** A translation: `0x... 4K page, rw- supervisor global`. */
export function translationText(c: Colors, t: Translation): string {
  const who = t.rights.user ? 'user' : 'supervisor';
  const extra = [t.global ? 'global' : '', t.protectionKey ? `pkey ${t.protectionKey}` : ''].filter(Boolean).join(' ');
  return `${c.bold(hex(t.pa))}  ${humanSize(t.pageSize)} page, ${rightsLetters(t.rights)} ${who}${extra ? ' ' + extra : ''}`;
}

/** The exception a walk's fault raises: `#GP(0)` or `#PF, error code 0x...`. */
export function faultException(f: WalkFault): string {
  return f.vector === 13 ? '#GP(0)' : `#PF, error code ${hex(f.errorCode)}`;
}

/** "supervisor read", "user-mode write", "supervisor instruction fetch". */
export function accessWords(a: { kind: string; user: boolean }): string {
  return `${a.user ? 'user-mode' : 'supervisor'} ${a.kind === 'exec' ? 'instruction fetch' : a.kind}`;
}

/** Renders a walk as lines of text. `sym` turns an address into `name+off` when symbols are loaded. */
export function renderWalk(w: WalkResult, c: Colors, sym?: (va: bigint) => string | undefined): string[] {
  const lines: string[] = [];
  const name = sym?.(w.va);
  lines.push(
    `${c.bold(hex(w.va))}${name ? ` <${name}>` : ''}  ${c.dim(`${w.mode}, CR3 ${hex(w.cr3)}, ${accessWords(w.access)}`)}`,
  );
  const f = w.fault;
  const rows: string[][] = [];
  w.steps.forEach((s, i) => {
    const bad = isCulprit(w, s, i);
    const label = `${s.level}[${s.index}]`;
    const rsvd = s.reserved !== 0n ? c.red(`reserved ${hex(s.reserved)}`) : '';
    const paint = bad ? c.red : (x: string): string => x;
    rows.push([
      '  ' + paint(bad ? `${label} ✗` : label),
      c.dim(`@${hex(s.entryAddress)}`),
      hexPad(s.raw, s.raw > 0xffffffffn || w.mode !== '32-bit' ? 16 : 8),
      paint(stepFlagWords(s)),
      [stepTarget(s), rsvd].filter(Boolean).join('  '),
    ]);
  });
  lines.push(...table(rows));
  if (w.translation) lines.push(`  = ${translationText(c, w.translation)}`);
  if (f) {
    lines.push(`  ${c.red('✗')} ${c.red(faultException(f))}: ${f.explanation}`);
  } else {
    lines.push(`  ${c.green('✓')} a ${accessWords(w.access)} is allowed`);
  }
  return lines;
}
