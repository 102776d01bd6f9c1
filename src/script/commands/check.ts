/**
 * `check [--cr3 CR3]`: the lint of the tables and the CR3 pre-flight with the current RIP, RSP,
 * GDT, IDT and TSS, plus what switching from the loaded tables loses; the CLI's text and JSON.
 */
import { renderHints } from '../../cli/commands/watchCr3.js';
import { lintJson, preflightJson } from '../../json/check.js';
import { mapRangeJson } from '../../json/map.js';
import { hintGroupJson } from '../../json/watch.js';
import { humanSize, table } from '../../cli/output.js';
import { hex, hexPad } from '../../paging/addr.js';
import { diffRangesAsync } from '../../paging/diff.js';
import { lintAsync } from '../../paging/lint.js';
import type { MapRange } from '../../paging/map.js';
import { withCr3 } from '../../paging/mode.js';
import { preflightAsync } from '../../paging/preflight.js';
import { preflightHints } from '../../watch/cr3Watch.js';
import { captureOutput } from '../capture.js';
import type { CommandContext, CommandOutput } from '../context.js';

/** Runs `check`. */
export async function checkCommand(c: CommandContext): Promise<CommandOutput> {
  const { target, cpu: loaded } = c.session;
  const ctx = await c.pagingContext();
  const cpu = { ...loaded, cr3: ctx.cr3 };
  const ram = await target.ram();
  const report = await lintAsync(target, ctx, { ram, rip: cpu.rip });
  const pre = await preflightAsync(target, { ctx, cpu });
  const lost: MapRange[] = [];
  const current = c.session.targetCpu.cr3;
  if (current !== ctx.cr3 && current !== 0n) {
    for await (const d of diffRangesAsync(target, ctx, withCr3(ctx, current))) {
      if (d.kind === 'removed' && d.before) lost.push({ ...d.before, va: d.va, size: d.size, pa: d.before.pa + (d.va - d.before.va) });
    }
  }
  const hints = await preflightHints(target, pre, ctx, current !== ctx.cr3 && current !== 0n ? withCr3(ctx, current) : null, cpu, ram);
  const result = { cr3: hex(ctx.cr3), mode: ctx.mode, preflight: preflightJson(pre), hints: hints.map(hintGroupJson), lost: lost.map(mapRangeJson), lint: lintJson(report) };
  const hintLines = (list: Parameters<typeof renderHints>[1], indent: string): string[] => captureOutput(c.colors, (out) => renderHints(out, list, indent)).text;

  const col = c.colors;
  const text: string[] = [];
  const verdict = { safe: col.green('safe'), 'at-risk': col.yellow('AT RISK'), fault: col.red('FAULT'), 'triple-fault': col.red(col.bold('TRIPLE FAULT')) }[pre.verdict];
  text.push(col.bold(`Pre-flight of CR3 ${hex(ctx.cr3)} (${ctx.mode}), at RIP ${hex(cpu.rip)}, RSP ${hex(cpu.rsp)}: `) + verdict);
  text.push(`  ${pre.summary}`);
  if (pre.chain.length > 0) {
    text.push('', '  What the CPU would do:');
    const rows = pre.chain.map((l, i) => [`    ${i + 1}. ${l.vector < 0 ? col.red(col.bold(l.name)) : col.bold(l.name)}`, l.errorCode !== null ? `error code ${hex(l.errorCode)}` : '', l.cause]);
    text.push(...table(rows));
  }
  if (pre.problems.length > 0) {
    text.push('', '  Problems:');
    for (const p of pre.problems) {
      text.push(`    ${col.red('✗')} ${col.bold(p.what)} ${col.dim(`(${p.when})`)}: ${p.explanation}`);
      text.push(...hintLines(hints.filter((g) => g.what === p.what && g.va === p.va).flatMap((g) => g.hints), '        '));
    }
  }
  for (const g of hints.filter((x) => !pre.problems.some((p) => p.what === x.what && p.va === x.va))) {
    text.push(`  ${col.bold(g.what)} at ${hex(g.va)}:`, ...hintLines(g.hints, '    '));
  }
  for (const u of pre.unknown) text.push(`  ${col.yellow('?')} not checked: ${u}`);
  if (lost.length > 0) {
    text.push('', col.bold(`Lost by switching from CR3 ${hex(current)}:`) + ` ${lost.length} range${lost.length === 1 ? '' : 's'}`);
    for (const r of lost.slice(0, 20)) text.push(`  ${hexPad(r.va)}  ${hexPad(r.va + r.size - 1n)}  ${humanSize(r.size)}`);
    if (lost.length > 20) text.push(col.dim(`  ... and ${lost.length - 20} more (see --json)`));
  }
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.filter((f) => f.severity === 'warning').length;
  text.push('', col.bold('Lint: ') + `${report.tables} tables, ${report.entries} entries: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  for (const f of report.findings) {
    const sev = f.severity === 'error' ? col.red('error  ') : f.severity === 'warning' ? col.yellow('warning') : col.dim('info   ');
    text.push(`  ${sev} ${f.code}  ${f.level} @${hex(f.entryAddress)}  ${hex(f.va)}..${hex(f.vaEnd)}`, `          ${f.message}`);
    if (f.hint) text.push(`          ${col.dim('hint: ' + f.hint)}`);
  }
  if (report.omitted > 0) text.push(col.dim(`  ... ${report.omitted} more findings (see --json)`));
  return { text, warnings: [], result };
}
