/**
 * `pagewalk check [--cr3 NEW]`: the lint of the tables, and the CR3 pre-flight: would loading them,
 * with the current RIP, RSP, GDT, IDT and TSS, fault or triple-fault? Exit status 1 on a fault,
 * a triple fault, a handler at risk, or a lint error.
 */
import { Command } from 'commander';
import { lintJson, preflightJson } from '../../json/check.js';
import { mapRangeJson } from '../../json/map.js';
import { hintGroupJson } from '../../json/watch.js';
import { hex, hexPad } from '../../paging/addr.js';
import { diffRangesAsync } from '../../paging/diff.js';
import { lintAsync } from '../../paging/lint.js';
import type { MapRange } from '../../paging/map.js';
import { withCr3 } from '../../paging/mode.js';
import { preflightAsync } from '../../paging/preflight.js';
import { preflightHints } from '../../watch/cr3Watch.js';
import { guestRunState } from '../../watch/driven.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT } from '../errors.js';
import { humanSize, table } from '../output.js';
import { renderHints } from './watchCr3.js';

/** Builds the `check` command. */
export function checkCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('check').description(
      'lint the tables and pre-flight a CR3 load: with --cr3 NEW, would loading NEW (with the current RIP, RSP, GDT, IDT, TSS) fault or triple-fault?',
    ),
  ).action((opts: CommonOptions) =>
    inSession(run, opts, async (s, out) => {
      if ((await guestRunState(s.target)) === 'shutdown') out.note('the guest is shut down after a triple fault (QEMU kept its state): `pagewalk post-mortem` explains why');
      const ram = await s.target.ram();
      const report = await lintAsync(s.target, s.ctx, { ram, rip: s.cpu.rip });
      const pre = await preflightAsync(s.target, { ctx: s.ctx, cpu: s.cpu });
      // What the switch loses: ranges the loaded tables map that the new ones do not.
      const lost: MapRange[] = [];
      if (s.targetCpu.cr3 !== s.ctx.cr3 && s.targetCpu.cr3 !== 0n) {
        for await (const d of diffRangesAsync(s.target, s.ctx, withCr3(s.ctx, s.targetCpu.cr3))) {
          if (d.kind === 'removed' && d.before) lost.push({ ...d.before, va: d.va, size: d.size, pa: d.before.pa + (d.va - d.before.va) });
        }
      }
      const before = s.targetCpu.cr3 !== s.ctx.cr3 && s.targetCpu.cr3 !== 0n ? withCr3(s.ctx, s.targetCpu.cr3) : null;
      const hints = await preflightHints(s.target, pre, s.ctx, before, s.cpu, ram);
      const lintErrors = report.findings.filter((f) => f.severity === 'error').length;
      if (pre.verdict !== 'safe' || lintErrors > 0) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) {
        return out.jsonValue({
          cr3: hex(s.ctx.cr3),
          mode: s.ctx.mode,
          preflight: preflightJson(pre),
          hints: hints.map(hintGroupJson),
          lost: lost.map(mapRangeJson),
          lint: lintJson(report),
        });
      }
      const c = out.c;
      const verdictText = { safe: c.green('safe'), 'at-risk': c.yellow('AT RISK'), fault: c.red('FAULT'), 'triple-fault': c.red(c.bold('TRIPLE FAULT')) }[pre.verdict];
      out.line(c.bold(`Pre-flight of CR3 ${hex(s.ctx.cr3)} (${s.ctx.mode}), at RIP ${hex(s.cpu.rip)}, RSP ${hex(s.cpu.rsp)}: `) + verdictText);
      out.line(`  ${pre.summary}`);
      if (pre.chain.length > 0) {
        out.line();
        out.line('  What the CPU would do:');
        const rows = pre.chain.map((l, i) => [
          `    ${i + 1}. ${l.vector < 0 ? c.red(c.bold(l.name)) : c.bold(l.name)}`,
          l.errorCode !== null ? `error code ${hex(l.errorCode)}` : '',
          l.cause,
        ]);
        for (const line of table(rows)) out.line(line);
      }
      if (pre.problems.length > 0) {
        out.line();
        out.line('  Problems:');
        for (const p of pre.problems) {
          out.line(`    ${c.red('✗')} ${c.bold(p.what)} ${c.dim(`(${p.when})`)}: ${p.explanation}`);
          renderHints(out, hints.filter((g) => g.what === p.what && g.va === p.va).flatMap((g) => g.hints), '        ');
        }
      }
      for (const g of hints.filter((x) => !pre.problems.some((p) => p.what === x.what && p.va === x.va))) {
        out.line(`  ${c.bold(g.what)} at ${hex(g.va)}:`);
        renderHints(out, g.hints, '    ');
      }
      for (const u of pre.unknown) out.line(`  ${c.yellow('?')} not checked: ${u}`);
      if (lost.length > 0) {
        out.line();
        out.line(c.bold(`Lost by switching from CR3 ${hex(s.targetCpu.cr3)}:`) + ` ${lost.length} range${lost.length === 1 ? '' : 's'}`);
        for (const r of lost.slice(0, 20)) out.line(`  ${hexPad(r.va)}  ${hexPad(r.va + r.size - 1n)}  ${humanSize(r.size)}`);
        if (lost.length > 20) out.line(c.dim(`  ... and ${lost.length - 20} more (see --json)`));
      }
      out.line();
      const warnings = report.findings.filter((f) => f.severity === 'warning').length;
      out.line(c.bold(`Lint: `) + `${report.tables} tables, ${report.entries} entries: ${lintErrors} error${lintErrors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
      for (const f of report.findings) {
        const sev = f.severity === 'error' ? c.red('error  ') : f.severity === 'warning' ? c.yellow('warning') : c.dim('info   ');
        out.line(`  ${sev} ${f.code}  ${f.level} @${hex(f.entryAddress)}  ${hex(f.va)}..${hex(f.vaEnd)}`);
        out.line(`          ${f.message}`);
        if (f.hint) out.line(`          ${c.dim('hint: ' + f.hint)}`);
      }
      if (report.omitted > 0) out.line(c.dim(`  ... ${report.omitted} more findings (see --json)`));
    }),
  );
}
