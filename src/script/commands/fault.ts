/**
 * `fault [--cr2 VA] --error-code E [--rip VA] [--cr3 CR3]`: a page fault decoded bit by bit and
 * held against the tables; the CLI's text and JSON.
 */
import { decodeErrorCode } from '../../faults/errorCode.js';
import { hex } from '../../paging/addr.js';
import { faultReport, undefinedBitsProblem } from '../../report/fault.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';
import { addressAt } from '../queries.js';

/** Runs `fault`. */
export async function faultCommand(c: CommandContext): Promise<CommandOutput> {
  const code = (await c.optionNumber('error-code'))!;
  const codeSpan = c.statement.options.get('error-code')!.span;
  if (code > 0xffffffffn) throw new ScriptError('E_VALUE', `--error-code ${hex(code)} does not fit the 32 bits of an error code`, codeSpan);
  const decoded = decodeErrorCode(Number(code));
  const problem = undefinedBitsProblem(decoded);
  if (problem) throw new ScriptError('E_VALUE', `--error-code ${problem}`, codeSpan);
  const { cpu } = c.session;
  const cr2 = (await c.optionNumber('cr2')) ?? cpu.cr2;
  const rip = (await c.optionNumber('rip')) ?? (cpu.rip !== 0n ? cpu.rip : undefined);
  const ctx = await c.pagingContext();
  const report = await addressAt(c.statement.options.get('cr2')?.span ?? c.statement.span, () =>
    faultReport(c.session, { decoded, cr2, rip, ctx, symbolize: (va) => c.symbolize(va) }),
  );
  return { text: report.lines(c.colors), warnings: [], result: report.json };
}
