/**
 * `fault [--cr2 VA] --error-code E [--rip VA] [--cr3 CR3]`: a page fault decoded bit by bit and
 * held against the tables; the CLI's text and JSON.
 */
import { renderHints } from '../../cli/commands/watchCr3.js';
import { compareFault } from '../../faults/againstTables.js';
import { diagnoseAsync } from '../../faults/diagnose.js';
import { decodeErrorCode } from '../../faults/errorCode.js';
import { faultJson } from '../../json/fault.js';
import { hintJson } from '../../json/watch.js';
import { table } from '../../cli/output.js';
import { renderWalk } from '../../cli/renderWalk.js';
import { hex } from '../../paging/addr.js';
import { captureOutput } from '../capture.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';
import { walkAt } from '../queries.js';

/** Runs `fault`. */
export async function faultCommand(c: CommandContext): Promise<CommandOutput> {
  const code = (await c.optionNumber('error-code'))!;
  const codeSpan = c.statement.options.get('error-code')!.span;
  if (code > 0xffffffffn) throw new ScriptError('E_VALUE', `--error-code ${hex(code)} does not fit the 32 bits of an error code`, codeSpan);
  const decoded = decodeErrorCode(Number(code));
  if (decoded.undefinedBits !== 0) {
    throw new ScriptError('E_VALUE', `--error-code ${hex(code)} sets bits no CPU defines (${hex(decoded.undefinedBits)}); a #PF error code uses bits 0-7 and 15`, codeSpan);
  }
  const { cpu } = c.session;
  const cr2 = (await c.optionNumber('cr2')) ?? cpu.cr2;
  const rip = (await c.optionNumber('rip')) ?? (cpu.rip !== 0n ? cpu.rip : undefined);
  const ctx = await c.pagingContext();
  const w = await walkAt(c.session.target, ctx, cr2, { kind: decoded.access, user: decoded.user }, c.statement.options.get('cr2')?.span ?? c.statement.span);
  const cmp = compareFault(decoded, w, rip);
  const hints = w.fault ? await diagnoseAsync(c.session.target, { ctx, walk: w, rsp: cpu.rsp, ram: await c.session.target.ram() }) : [];

  const col = c.colors;
  const text = [`${col.bold('#PF')} at CR2 ${col.bold(hex(cr2))}, error code ${col.bold(hex(code))}${rip !== undefined ? `, RIP ${hex(rip)}` : ''}`];
  const rows = decoded.bits.filter((b) => b.bit <= 5 || b.set).map((b) => [`  ${b.name}=${b.set ? 1 : 0}`, b.set ? b.meaning : col.dim(b.meaning)]);
  text.push(...table(rows), `  => a ${decoded.summary}`);
  for (const p of decoded.pitfalls) text.push(`  ${col.yellow('!')} ${p}`);
  text.push('', 'The tables now:', ...renderWalk(w, col, (va) => c.symbolize(va)), '', (cmp.agrees ? col.green('✓ ') : col.yellow('? ')) + cmp.explanation);
  text.push(...captureOutput(col, (out) => renderHints(out, hints, '')).text);
  return { text, warnings: [], result: { ...faultJson(cr2, rip, decoded, w, cmp), hints: hints.map(hintJson) } };
}
