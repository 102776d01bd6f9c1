/**
 * `diff --against CR3 [--cr3 CR3] [--from VA] [--to VA]`: what the current (or --cr3) address
 * space maps that the other does not, or maps differently; the CLI's text and JSON.
 */
import { diffEntryJson, type DiffEntryJson } from '../../json/map.js';
import { humanSize, pad } from '../../cli/output.js';
import { rangeRights } from '../../cli/renderMap.js';
import { hex, hexPad } from '../../paging/addr.js';
import { diffRangesAsync } from '../../paging/diff.js';
import type { MapRange } from '../../paging/map.js';
import { withCr3 } from '../../paging/mode.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { windowOf } from './map.js';

/** Runs `diff`. */
export async function diffCommand(c: CommandContext): Promise<CommandOutput> {
  const now = await c.pagingContext();
  const before = withCr3(now, (await c.optionNumber('against'))!);
  const col = c.colors;
  const text = [col.bold(`${now.mode} paging: CR3 ${hex(now.cr3)} against ${hex(before.cr3)}`)];
  const counts = { added: 0, removed: 0, changed: 0 };
  const entries: DiffEntryJson[] = [];
  for await (const d of diffRangesAsync(c.session.target, now, before, await windowOf(c))) {
    counts[d.kind]++;
    entries.push(diffEntryJson(d));
    const mark = d.kind === 'added' ? col.green('+') : d.kind === 'removed' ? col.red('-') : col.yellow('~');
    const span = `${hexPad(d.va)}  ${hexPad(d.va + d.size - 1n)}  ${pad(humanSize(d.size), 6, true)}`;
    const side = (r: MapRange): string => `${rangeRights(r, col)} ${humanSize(r.pageSize)} -> ${hex(r.pa + (d.va - r.va))}`;
    const what = d.kind === 'added' ? side(d.now!) : d.kind === 'removed' ? side(d.before!) : `${side(d.before!)}  =>  ${side(d.now!)}`;
    text.push(`${mark} ${span}  ${what}`);
  }
  text.push(col.dim(`${counts.added} added, ${counts.removed} removed, ${counts.changed} changed`));
  return { text, warnings: [], result: { cr3: hex(now.cr3), against: hex(before.cr3), mode: now.mode, entries, counts } };
}
