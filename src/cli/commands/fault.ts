/**
 * `pagewalk fault --cr2 X --error-code E [--rip R]`: a page fault decoded bit by bit and held
 * against the tables. Exit status 1: the tables (still) fault.
 */
import { Command } from 'commander';
import { decodeErrorCode } from '../../faults/errorCode.js';
import { faultReport, undefinedBitsProblem } from '../../report/fault.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { parseNumber } from '../numbers.js';

interface FaultOptions extends CommonOptions {
  cr2?: string;
  errorCode?: string;
  rip?: string;
}

/** Builds the `fault` command. */
export function faultCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('fault')
      .description('decode a page fault (CR2 and error code) and explain it against the tables')
      .option('--cr2 <va>', 'the faulting linear address (default: the target\'s CR2)')
      .requiredOption('--error-code <code>', 'the #PF error code (QEMU\'s e=, hex with 0x or decimal)')
      .option('--rip <va>', 'where the CPU was (default: the target\'s RIP)'),
  ).action((opts: FaultOptions) =>
    inSession(run, opts, async (s, out) => {
      const decoded = decodeErrorCode(Number(parseNumber(opts.errorCode!, '--error-code', 0xffffffffn)));
      const problem = undefinedBitsProblem(decoded);
      if (problem) throw new UsageError(`--error-code: ${problem}`);
      const cr2 = opts.cr2 !== undefined ? s.address(opts.cr2, '--cr2') : s.cpu.cr2;
      const rip = opts.rip !== undefined ? s.address(opts.rip, '--rip') : s.cpu.rip !== 0n ? s.cpu.rip : undefined;
      const report = await faultReport(s, { decoded, cr2, rip });
      if (report.danger) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) return out.jsonValue(report.json);
      for (const line of report.lines(out.c)) out.line(line);
    }),
  );
}
