/**
 * `check [--cr3 CR3]`: the lint of the tables and the CR3 pre-flight with the current RIP, RSP,
 * GDT, IDT and TSS, plus what switching from the loaded tables loses; the CLI's text and JSON.
 */
import { checkReport } from '../../report/check.js';
import type { CommandContext, CommandOutput } from '../context.js';

/** Runs `check`. */
export async function checkCommand(c: CommandContext): Promise<CommandOutput> {
  const report = await checkReport(c.session, await c.pagingContext());
  return { text: report.lines(c.colors), warnings: [], result: report.json };
}
