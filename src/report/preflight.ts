/**
 * The pre-flight as text, as `check`, `watch-cr3` and the post-mortem print it: the verdict as a
 * word, the chain the CPU would take, the problems with their hints, and what was not checked.
 */
import type { Colors } from '../cli/output.js';
import { table } from '../cli/output.js';
import type { Hint } from '../faults/diagnose.js';
import { hex } from '../paging/addr.js';
import type { PreflightResult, Verdict } from '../paging/preflight.js';
import type { HintGroup } from '../watch/events.js';

/** The verdict as people read it: safe, AT RISK, FAULT, TRIPLE FAULT (coloured). */
export function verdictWord(c: Colors, verdict: Verdict): string {
  return { safe: c.green('safe'), 'at-risk': c.yellow('AT RISK'), fault: c.red('FAULT'), 'triple-fault': c.red(c.bold('TRIPLE FAULT')) }[verdict];
}

/** One line per hint, after `indent`: `→ likely: ...` (maybe, perhaps by confidence). */
export function hintLines(c: Colors, hints: readonly Hint[], indent: string): string[] {
  return hints.map((h) => {
    const tag = h.confidence === 'high' ? c.yellow('likely') : h.confidence === 'medium' ? c.yellow('maybe') : c.dim('perhaps');
    return `${indent}${c.yellow('→')} ${tag}: ${h.text}`;
  });
}

/**
 * The pre-flight's chain, problems (each with its hints), the other hint groups and what was not
 * checked; `spaced` puts a blank line before the chain and before the problems (as `check` does).
 */
export function preflightDetailLines(c: Colors, pre: PreflightResult, groups: readonly HintGroup[], spaced = false): string[] {
  const lines: string[] = [];
  const gap = spaced ? [''] : [];
  if (pre.chain.length > 0) {
    lines.push(...gap, '  What the CPU would do:');
    const rows = pre.chain.map((l, i) => [`    ${i + 1}. ${l.vector < 0 ? c.red(c.bold(l.name)) : c.bold(l.name)}`, l.errorCode !== null ? `error code ${hex(l.errorCode)}` : '', l.cause]);
    lines.push(...table(rows));
  }
  if (pre.problems.length > 0) {
    lines.push(...gap, '  Problems:');
    for (const p of pre.problems) {
      lines.push(`    ${c.red('✗')} ${c.bold(p.what)} ${c.dim(`(${p.when})`)}: ${p.explanation}`);
      lines.push(...hintLines(c, groups.filter((g) => g.what === p.what && g.va === p.va).flatMap((g) => g.hints), '        '));
    }
  }
  for (const g of groups.filter((x) => !pre.problems.some((p) => p.what === x.what && p.va === x.va))) {
    lines.push(`  ${c.bold(g.what)} at ${hex(g.va)}:`, ...hintLines(c, g.hints, '    '));
  }
  for (const u of pre.unknown) lines.push(`  ${c.yellow('?')} not checked: ${u}`);
  return lines;
}
