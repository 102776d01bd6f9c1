/**
 * `diff`, as the CLI, the run language and the APIs answer it: what one address space maps that
 * another does not, or maps differently, streamed entry by entry and counted; the JSON header, a
 * line of text per entry, and the counts.
 */
import { humanSize, pad, type Colors } from '../cli/output.js';
import { rangeRights } from '../cli/renderMap.js';
import type { DiffCountsJson } from '../json/map.js';
import { hex, hexPad } from '../paging/addr.js';
import { diffRangesAsync, type DiffEntry } from '../paging/diff.js';
import type { AsyncPhysMemory } from '../paging/memory.js';
import type { MapOptions, MapRange } from '../paging/map.js';
import type { PagingContext } from '../paging/mode.js';

/** A diff under way. */
export interface DiffReport {
  /** The JSON that comes before the entries. */
  header: { cr3: string; against: string; mode: string };
  /** The entries as they come; the generator's return value is how many of each kind there were. */
  entries: AsyncGenerator<DiffEntry, DiffCountsJson, undefined>;
  /** The title line of the text: `4-level paging: CR3 A against B`. */
  title(c: Colors): string;
}

/** Compares the address space of `now` against `before` on `mem` (in the window of `window`). */
export function diffReport(mem: AsyncPhysMemory, now: PagingContext, before: PagingContext, window: MapOptions = {}): DiffReport {
  const it = diffRangesAsync(mem, now, before, window);
  return {
    header: { cr3: hex(now.cr3), against: hex(before.cr3), mode: now.mode },
    entries: (async function* () {
      const counts: DiffCountsJson = { added: 0, removed: 0, changed: 0 };
      for await (const d of it) {
        counts[d.kind]++;
        yield d;
      }
      return counts;
    })(),
    title: (c) => c.bold(`${now.mode} paging: CR3 ${hex(now.cr3)} against ${hex(before.cr3)}`),
  };
}

/** One entry as text: `+`, `-` or `~`, the span, and the rights, page size and PA on either side. */
export function diffLine(c: Colors, d: DiffEntry): string {
  const mark = d.kind === 'added' ? c.green('+') : d.kind === 'removed' ? c.red('-') : c.yellow('~');
  const span = `${hexPad(d.va)}  ${hexPad(d.va + d.size - 1n)}  ${pad(humanSize(d.size), 6, true)}`;
  const side = (r: MapRange): string => `${rangeRights(r, c)} ${humanSize(r.pageSize)} -> ${hex(r.pa + (d.va - r.va))}`;
  const what = d.kind === 'added' ? side(d.now!) : d.kind === 'removed' ? side(d.before!) : `${side(d.before!)}  =>  ${side(d.now!)}`;
  return `${mark} ${span}  ${what}`;
}

/** The last line of the text: `1 added, 2 removed, 0 changed`. */
export function diffCountsLine(c: Colors, counts: DiffCountsJson): string {
  return c.dim(`${counts.added} added, ${counts.removed} removed, ${counts.changed} changed`);
}
