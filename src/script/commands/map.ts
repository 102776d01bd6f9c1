/**
 * `map [--from VA] [--to VA] [--cr3 CR3]`: every mapping, coalesced into ranges, with the CLI's
 * text and its JSON (`{cr3, mode, ranges, summary}`) as one result.
 */
import { mapRangeJson, mapSummaryJson, type MapRangeJson } from '../../json/map.js';
import { mapHeader, mapLine, vaDigits } from '../../cli/renderMap.js';
import { hex } from '../../paging/addr.js';
import { mapRangesAsync, type MapOptions, type MapSummary } from '../../paging/map.js';
import { cr3ReservedWarning, mapTitle, mapTotalLine, mapWarnings } from '../../report/map.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';

/** The --from/--to window of `map` and `diff`; --from above --to is a ScriptError (E_VALUE). */
export async function windowOf(c: CommandContext): Promise<MapOptions> {
  const from = await c.optionNumber('from');
  const to = await c.optionNumber('to');
  if (from !== undefined && to !== undefined && from > to) {
    throw new ScriptError('E_VALUE', `--from ${hex(from)} is above --to ${hex(to)}`, c.statement.options.get('from')!.span);
  }
  return { ...(from !== undefined && { from }), ...(to !== undefined && { to }) };
}

/** Runs `map`. */
export async function mapCommand(c: CommandContext): Promise<CommandOutput> {
  const ctx = await c.pagingContext();
  const reserved = cr3ReservedWarning(ctx);
  const warnings = reserved ? [reserved] : [];
  const it = mapRangesAsync(c.session.target, ctx, await windowOf(c));
  const col = c.colors;
  const text = [mapTitle(col, ctx), mapHeader(col, vaDigits(ctx.vaBits))];
  const ranges: MapRangeJson[] = [];
  let bytes = 0n;
  let summary: MapSummary;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      summary = r.value;
      break;
    }
    bytes += r.value.size;
    ranges.push(mapRangeJson(r.value));
    text.push(mapLine(r.value, col, vaDigits(ctx.vaBits)));
  }
  text.push(mapTotalLine(col, summary, bytes));
  const { unlisted, loops } = mapWarnings(summary, 'check');
  warnings.push(...unlisted, ...loops);
  return { text, warnings, result: { cr3: hex(ctx.cr3), mode: ctx.mode, ranges, summary: mapSummaryJson(summary) } };
}
