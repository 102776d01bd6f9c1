/**
 * Text rendering of a walk: one line per level (index, entry address, raw value, flags spelled out,
 * next table), the failing level marked, then the translation and the access verdict.
 */
import { hex, hexPad } from '../paging/addr.js';
import type { WalkResult } from '../paging/walk.js';
import { humanSize, rightsLetters, table, type Colors } from './output.js';

/** Flag names spelled out for people, keyed by the short names the JSON uses. */
const FLAG_WORDS: Record<string, string> = {
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
};

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
    const last = i === w.steps.length - 1;
    const failing = last && f !== null && f.level === s.level && f.reason !== 'protection';
    const culprit = f !== null && f.reason === 'protection' && f.level === s.level;
    const label = `${s.level}[${s.index}]`;
    const flags = s.present ? s.flags.map((fl) => FLAG_WORDS[fl] ?? fl).join(' ') : 'not present';
    const next = s.next === null ? '' : s.leaf ? `page ${hex(s.next)} (${humanSize(s.pageSize ?? 4096)})` : `table ${hex(s.next)}`;
    const rsvd = s.reserved !== 0n ? c.red(`reserved ${hex(s.reserved)}`) : '';
    const paint = failing || culprit ? c.red : (x: string): string => x;
    rows.push([
      '  ' + paint(failing || culprit ? `${label} ✗` : label),
      c.dim(`@${hex(s.entryAddress)}`),
      hexPad(s.raw, s.raw > 0xffffffffn || w.mode !== '32-bit' ? 16 : 8),
      paint(flags),
      [next, rsvd].filter(Boolean).join('  '),
    ]);
  });
  lines.push(...table(rows));
  const t = w.translation;
  if (t) {
    const who = t.rights.user ? 'user' : 'supervisor';
    const extra = [t.global ? 'global' : '', t.protectionKey ? `pkey ${t.protectionKey}` : ''].filter(Boolean).join(' ');
    lines.push(`  = ${c.bold(hex(t.pa))}  ${humanSize(t.pageSize)} page, ${rightsLetters(t.rights)} ${who}${extra ? ' ' + extra : ''}`);
  }
  if (f) {
    const exc = f.vector === 13 ? '#GP(0)' : `#PF, error code ${hex(f.errorCode)}`;
    lines.push(`  ${c.red('✗')} ${c.red(exc)}: ${f.explanation}`);
  } else {
    lines.push(`  ${c.green('✓')} a ${accessWords(w.access)} is allowed`);
  }
  return lines;
}
