/**
 * `regs`: the paging registers of the current stop, decoded; the CLI's text and JSON.
 */
import { regsReport } from '../../report/regs.js';
import type { CommandContext, CommandOutput } from '../context.js';

/** Runs `regs`. */
export async function regsCommand(c: CommandContext): Promise<CommandOutput> {
  const report = regsReport(c.session);
  return { text: report.lines(c.colors), warnings: [], result: report.json };
}
