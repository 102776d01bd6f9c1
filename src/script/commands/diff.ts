/**
 * `diff --against CR3 [--cr3 CR3] [--from VA] [--to VA]`: what the current (or --cr3) address
 * space maps that the other does not, or maps differently; the CLI's text and JSON.
 */
import { diffEntryJson, type DiffEntryJson } from '../../json/map.js';
import { withCr3 } from '../../paging/mode.js';
import { diffCountsLine, diffLine, diffReport } from '../../report/diff.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { windowOf } from './map.js';

/** Runs `diff`. */
export async function diffCommand(c: CommandContext): Promise<CommandOutput> {
  const now = await c.pagingContext();
  const before = withCr3(now, (await c.optionNumber('against'))!);
  const d = diffReport(c.session.target, now, before, await windowOf(c));
  const col = c.colors;
  const text = [d.title(col)];
  const entries: DiffEntryJson[] = [];
  for (;;) {
    const r = await d.entries.next();
    if (r.done) {
      text.push(diffCountsLine(col, r.value));
      return { text, warnings: [], result: { ...d.header, entries, counts: r.value } };
    }
    entries.push(diffEntryJson(r.value));
    text.push(diffLine(col, r.value));
  }
}
