/**
 * The translation path of the selected address: one row per level (index, entry address, raw value,
 * flags spelled out, next table or page), the level that stops the walk in red, then the
 * translation with its effective rights and the verdict of the access check. On a narrow pane each
 * level takes two rows instead of one.
 */
import { hex, hexPad } from '../paging/addr.js';
import type { WalkResult } from '../paging/walk.js';
import { table, visibleLength } from '../cli/output.js';
import { accessWords, faultException, isCulprit, stepFlagWords, stepTarget, translationText } from '../cli/renderWalk.js';
import type { Paint } from './paint.js';
import { wrapWords } from './text.js';

/** The lines of the path pane for walk `w` in a pane `width` cells wide; `sym` names addresses. */
export function pathLines(w: WalkResult, p: Paint, width: number, sym?: (va: bigint) => string | undefined): string[] {
  const { c, g } = p;
  const name = sym?.(w.va);
  const head = `${c.bold(hex(w.va))}${name ? ` <${name}>` : ''}  ${c.dim(accessWords(w.access))}`;
  const where = c.dim(`, ${w.mode}, CR3 ${hex(w.cr3)}`);
  const lines = [visibleLength(head) + visibleLength(where) <= width ? head + where : head];
  const digits = w.mode === '32-bit' ? 8 : 16;
  const cells = w.steps.map((s, i) => {
    const bad = isCulprit(w, s, i);
    const paint = bad ? c.red : (x: string): string => x;
    const rsvd = s.reserved !== 0n ? c.red(`reserved ${hex(s.reserved)}`) : '';
    return {
      label: paint(bad ? `${s.level}[${s.index}] ${g.bad}` : `${s.level}[${s.index}]`),
      at: c.dim(`@${hex(s.entryAddress)}`),
      raw: hexPad(s.raw, digits),
      short: hex(s.raw),
      flags: paint(stepFlagWords(s)),
      next: [stepTarget(s), rsvd].filter(Boolean).join('  '),
    };
  });
  // One row per level with the raw value in full, else in short, else two rows per level.
  const wide = table(cells.map((x) => [x.label, x.at, x.raw, x.flags, x.next]));
  const medium = table(cells.map((x) => [x.label, x.at, x.short, x.flags, x.next]));
  if (wide.every((l) => visibleLength(l) <= width)) lines.push(...wide);
  else if (medium.every((l) => visibleLength(l) <= width)) lines.push(...medium);
  else {
    const heads = table(cells.map((x) => [x.label, x.raw, x.flags]));
    cells.forEach((x, i) => lines.push(heads[i]!, `    ${x.at}${x.next ? `  ${x.next}` : ''}`));
  }
  if (w.translation) lines.push(`= ${translationText(c, w.translation)}`);
  const f = w.fault;
  if (f) {
    const text = wrapWords(`${faultException(f)}: ${f.explanation}`, width, `${g.bad} `, '  ');
    lines.push(...text.map((l) => c.red(l)));
  } else {
    lines.push(c.green(`${g.good} a ${accessWords(w.access)} is allowed`));
  }
  return lines;
}
