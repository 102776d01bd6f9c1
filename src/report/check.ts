/**
 * `check`, as the CLI, the run language and the APIs answer it: the lint of the tables and the CR3
 * pre-flight with the current RIP, RSP, GDT, IDT and TSS, the hints for its problems, and what
 * switching from the loaded tables loses; as JSON and as text.
 */
import { humanSize, type Colors } from '../cli/output.js';
import type { Session } from '../cli/session.js';
import { lintJson, preflightJson, type CheckJson } from '../json/check.js';
import { mapRangeJson } from '../json/map.js';
import { hintGroupJson } from '../json/watch.js';
import { hex, hexPad } from '../paging/addr.js';
import { diffRangesAsync } from '../paging/diff.js';
import { lintAsync } from '../paging/lint.js';
import type { MapRange } from '../paging/map.js';
import { withCr3, type PagingContext } from '../paging/mode.js';
import { preflightAsync } from '../paging/preflight.js';
import { preflightHints } from '../watch/cr3Watch.js';
import { preflightDetailLines, verdictWord } from './preflight.js';

/** How many lost ranges the text lists (the JSON has them all). */
const SHOWN_LOST = 20;

/** What `check` found. */
export interface CheckReport {
  json: CheckJson;
  /** The load would not be safe, or the lint found errors (the CLI's exit status 1). */
  danger: boolean;
  /** The report as text, coloured with `c`. */
  lines(c: Colors): string[];
}

/**
 * Checks the tables of `ctx` (default: the session's) on the session's target: lint, pre-flight
 * with the session's registers and CR3 of `ctx`, hints, and the ranges lost from the loaded CR3.
 */
export async function checkReport(s: Session, ctx: PagingContext = s.ctx): Promise<CheckReport> {
  const target = s.target;
  const cpu = { ...s.cpu, cr3: ctx.cr3 };
  const ram = await target.ram();
  const report = await lintAsync(target, ctx, { ram, rip: cpu.rip });
  const pre = await preflightAsync(target, { ctx, cpu });
  const loaded = s.targetCpu.cr3;
  const before = loaded !== ctx.cr3 && loaded !== 0n ? withCr3(ctx, loaded) : null;
  // What the switch loses: ranges the loaded tables map that the new ones do not.
  const lost: MapRange[] = [];
  if (before) {
    for await (const d of diffRangesAsync(target, ctx, before)) {
      if (d.kind === 'removed' && d.before) lost.push({ ...d.before, va: d.va, size: d.size, pa: d.before.pa + (d.va - d.before.va) });
    }
  }
  const hints = await preflightHints(target, pre, ctx, before, cpu, ram);
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.filter((f) => f.severity === 'warning').length;
  return {
    json: { cr3: hex(ctx.cr3), mode: ctx.mode, preflight: preflightJson(pre), hints: hints.map(hintGroupJson), lost: lost.map(mapRangeJson), lint: lintJson(report) },
    danger: pre.verdict !== 'safe' || errors > 0,
    lines(c) {
      const text = [c.bold(`Pre-flight of CR3 ${hex(ctx.cr3)} (${ctx.mode}), at RIP ${hex(cpu.rip)}, RSP ${hex(cpu.rsp)}: `) + verdictWord(c, pre.verdict), `  ${pre.summary}`];
      text.push(...preflightDetailLines(c, pre, hints, true));
      if (lost.length > 0) {
        text.push('', c.bold(`Lost by switching from CR3 ${hex(loaded)}:`) + ` ${lost.length} range${lost.length === 1 ? '' : 's'}`);
        for (const r of lost.slice(0, SHOWN_LOST)) text.push(`  ${hexPad(r.va)}  ${hexPad(r.va + r.size - 1n)}  ${humanSize(r.size)}`);
        if (lost.length > SHOWN_LOST) text.push(c.dim(`  ... and ${lost.length - SHOWN_LOST} more (see --json)`));
      }
      text.push('', c.bold('Lint: ') + `${report.tables} tables, ${report.entries} entries: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
      for (const f of report.findings) {
        const sev = f.severity === 'error' ? c.red('error  ') : f.severity === 'warning' ? c.yellow('warning') : c.dim('info   ');
        text.push(`  ${sev} ${f.code}  ${f.level} @${hex(f.entryAddress)}  ${hex(f.va)}..${hex(f.vaEnd)}`, `          ${f.message}`);
        if (f.hint) text.push(`          ${c.dim('hint: ' + f.hint)}`);
      }
      if (report.omitted > 0) text.push(c.dim(`  ... ${report.omitted} more findings (see --json)`));
      return text;
    },
  };
}
