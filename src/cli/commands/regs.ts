/**
 * `pagewalk regs`: the paging registers, decoded.
 */
import { Command } from 'commander';
import { regsReport } from '../../report/regs.js';
import { guestRunState } from '../../watch/driven.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';

/** Builds the `regs` command. */
export function regsCommand(run: CliRun): Command {
  return withTargetOptions(new Command('regs').description('the paging registers, decoded: mode, CR0, CR3, CR4, EFER, RIP, RSP, CR2')).action(
    (opts: CommonOptions) =>
      inSession(run, opts, async (s, out) => {
        if ((await guestRunState(s.target)) === 'shutdown') out.note('the guest is shut down after a triple fault (QEMU kept its state): `pagewalk post-mortem` explains why');
        const report = regsReport(s);
        if (out.json) return out.jsonValue(report.json);
        for (const line of report.lines(out.c)) out.line(line);
      }),
  );
}
