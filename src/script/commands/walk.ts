/**
 * `walk VA... [--access r|w|x] [--user] [--cr3 CR3]`: the CLI's walk, one result per command
 * (an object for one address, an array for several, as `pagewalk walk --json` prints).
 */
import { walkJson } from '../../json/walk.js';
import { renderWalk } from '../../cli/renderWalk.js';
import type { AccessKind } from '../../paging/rights.js';
import type { WalkResult } from '../../paging/walk.js';
import type { CommandOutput, CommandContext } from '../context.js';
import { walkAt } from '../queries.js';

/** Runs `walk`. */
export async function walkCommand(c: CommandContext): Promise<CommandOutput> {
  const ctx = await c.pagingContext();
  const access = { kind: (c.optionWord('access') ?? 'read') as AccessKind, user: c.flag('user') };
  const results: WalkResult[] = [];
  for (const arg of c.statement.args) {
    const va = await c.number(arg, 'the address');
    results.push(await walkAt(c.session.target, ctx, va, access, arg.span));
  }
  const text: string[] = [];
  results.forEach((r, i) => {
    if (i > 0) text.push('');
    text.push(...renderWalk(r, c.colors, (va) => c.symbolize(va)));
  });
  const shaped = results.map(walkJson);
  return { text, warnings: [], result: shaped.length === 1 ? shaped[0] : shaped };
}
