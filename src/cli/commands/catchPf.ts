/**
 * `pagewalk catch-pf [--count N]`: break at the #PF handler (read from the IDT, followed through
 * LIDT) and explain every page fault the guest takes: CR2 and the error code from the exception
 * frame, the code bit by bit, the walk of CR2 with that access, whether the tables agree, and what
 * the code most likely did wrong. At --count (or Ctrl-C, --timeout) the guest is left stopped at
 * the handler's first instruction. Exit status 1 when the guest triple-faulted.
 */
import { Command } from 'commander';
import { watchEventJson } from '../../json/watch.js';
import { hex } from '../../paging/addr.js';
import { catchPageFaults, describeFault } from '../../watch/catchPf.js';
import type { PageFaultEvent, WatchEvent } from '../../watch/events.js';
import { inSession, withTargetOptions, type CliRun } from '../command.js';
import { parseSmall } from '../numbers.js';
import { table, type Output } from '../output.js';
import { renderWalk } from '../renderWalk.js';
import { rejectOverrides, renderHints, renderWatchEvent, runWatch, watchStatus, withWatchOptions, type WatchCommandOptions } from './watchCr3.js';

function renderFault(out: Output, e: PageFaultEvent): void {
  const c = out.c;
  out.line();
  out.line(c.bold(`#${e.index} ${describeFault(e)}`));
  const f = e.frame;
  out.line(c.dim(`  frame at ${hex(f.at)}: RIP ${hex(f.rip)} CS ${hex(f.cs)} RFLAGS ${hex(f.rflags)}${f.rsp !== null ? ` RSP ${hex(f.rsp)}` : ''}${f.ss !== null ? ` SS ${hex(f.ss)}` : ''}`));
  const rows = e.decoded.bits.filter((b) => b.bit <= 5 || b.set).map((b) => [`  ${b.name}=${b.set ? 1 : 0}`, b.set ? b.meaning : c.dim(b.meaning)]);
  for (const line of table(rows)) out.line(line);
  for (const p of e.decoded.pitfalls) out.line(`  ${c.yellow('!')} ${p}`);
  for (const line of renderWalk(e.walk, c)) out.line(`  ${line}`);
  out.line(`  ${e.comparison.agrees ? c.green('✓') : c.yellow('?')} ${e.comparison.explanation}`);
  renderHints(out, e.hints, '  ');
}

function render(out: Output, e: WatchEvent): void {
  if (e.type === 'page-fault') return renderFault(out, e);
  if (e.type === 'idt') {
    const where = e.handler === null ? out.c.yellow('no #PF handler yet (its gate is not present)') : `#PF handler at ${hex(e.handler)}`;
    out.line(`IDT ${hex(e.base)} (limit ${hex(e.limit)}): ${where}; following ${e.lidtSites} LIDT site${e.lidtSites === 1 ? '' : 's'}`);
    return;
  }
  renderWatchEvent(out, e);
}

/** Builds the `catch-pf` command. */
export function catchPfCommand(run: CliRun): Command {
  return withWatchOptions(
    withTargetOptions(
      new Command('catch-pf')
        .description('break at the #PF handler and explain each page fault: CR2, the error code, the walk, what the code most likely did wrong')
        .option('--count <n>', 'stop after N page faults, at the handler\'s first instruction'),
    ),
  ).action((opts: WatchCommandOptions) =>
    inSession(run, opts, async (s, out) => {
      rejectOverrides(opts, 'catch-pf');
      const count = opts.count === undefined ? undefined : parseSmall(opts.count, '--count', 1, 1_000_000_000);
      const budget = opts.scanBudget === undefined ? undefined : parseSmall(opts.scanBudget, '--scan-budget', 1, 1 << 20) * (1 << 20);
      const r = await runWatch(s, opts, (w) =>
        catchPageFaults(s.target, {
          ...w,
          features: s.features,
          count,
          scanBudget: budget,
          onEvent: (e) => (out.json ? out.jsonValue(watchEventJson(e), false) : render(out, e)),
        }),
      );
      run.status = Math.max(run.status, watchStatus(r.end, false));
    }),
  );
}
