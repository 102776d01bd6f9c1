/**
 * `pagewalk check [--cr3 NEW]`: the lint of the tables, and the CR3 pre-flight: would loading them,
 * with the current RIP, RSP, GDT, IDT and TSS, fault or triple-fault? Exit status 1 on a fault,
 * a triple fault, a handler at risk, or a lint error.
 */
import { Command } from 'commander';
import { checkReport } from '../../report/check.js';
import { guestRunState } from '../../watch/driven.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT } from '../errors.js';

/** Builds the `check` command. */
export function checkCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('check').description(
      'lint the tables and pre-flight a CR3 load: with --cr3 NEW, would loading NEW (with the current RIP, RSP, GDT, IDT, TSS) fault or triple-fault?',
    ),
  ).action((opts: CommonOptions) =>
    inSession(run, opts, async (s, out) => {
      if ((await guestRunState(s.target)) === 'shutdown') out.note('the guest is shut down after a triple fault (QEMU kept its state): `pagewalk post-mortem` explains why');
      const report = await checkReport(s);
      if (report.danger) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) return out.jsonValue(report.json);
      for (const line of report.lines(out.c)) out.line(line);
    }),
  );
}
