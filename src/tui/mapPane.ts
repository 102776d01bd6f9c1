/**
 * The address-space map pane: the strip, then the coalesced ranges that pass the filter, one per
 * row, with a cursor the arrow keys move (Enter walks the range's first address). Only the rows
 * that fit are rendered, scrolled so the cursor stays in view.
 */
import { hex, hexPad } from '../paging/addr.js';
import type { MapRange } from '../paging/map.js';
import { humanSize, pad, visibleLength } from '../cli/output.js';
import { rangeRights } from '../cli/renderMap.js';
import { compileFilter, rangeSearchText } from './mapFilter.js';
import type { Paint } from './paint.js';
import { stripLines } from './strip.js';

/** What the map pane shows. */
export interface MapView {
  cr3: bigint;
  vaBits: number;
  ranges: readonly MapRange[];
  /** The filter's text ('' lists everything). */
  filter: string;
  /** Index of the cursor in the filtered list. */
  cursor: number;
  /** What the map could not list (loops cut, unreadable tables), one line each. */
  notes: string[];
}

/** The ranges of `v` that pass its filter. */
export function filteredRanges(v: Pick<MapView, 'ranges' | 'filter'>): MapRange[] {
  const test = compileFilter(v.filter);
  return v.ranges.filter((r) => test(r, rangeSearchText(r)));
}

/** One range as a row: full width when it fits, else without the end address and with a short PA. */
export function rangeRow(r: MapRange, p: Paint, width: number): string {
  const { c } = p;
  const end = r.va + r.size - 1n;
  const full = `${hexPad(r.va)}  ${hexPad(end)}  ${pad(humanSize(r.size), 5, true)} ${pad(humanSize(r.pageSize), 3, true)}  ${pad(rangeRights(r, c), 11)}  ${hex(r.pa)}`;
  if (width >= 86) return full;
  return `${hexPad(r.va)} ${pad(humanSize(r.size), 5, true)} ${pad(humanSize(r.pageSize), 3, true)} ${pad(rangeRights(r, c), 11)} ${hex(r.pa)}`;
}

/** The header row matching {@link rangeRow}. */
export function rangeHeader(p: Paint, width: number): string {
  const text = width >= 86 ? `${pad('VA start', 18)}  ${pad('VA end', 18)}  ${pad('size', 5, true)} page  rights       PA` : `${pad('VA start', 18)} ${pad('size', 5, true)} page rights      PA`;
  return p.c.dim(text);
}

/**
 * The pane's lines for `height` rows (inside the border): the strip (two rows), a header, and the
 * rows around the cursor, which is shown in inverse.
 */
export function mapPaneLines(v: MapView, p: Paint, width: number, height: number, selected: bigint | null): string[] {
  const { c } = p;
  const list = filteredRanges(v);
  const [top, bottom] = stripLines(v.ranges, v.vaBits, width, p, selected);
  const lines = [top, bottom];
  const count = `${list.length} of ${v.ranges.length} range${v.ranges.length === 1 ? '' : 's'}`;
  if (v.filter) lines.push(`${c.bold(c.cyan(`filter "${v.filter}"`))}: ${count}`);
  const header = rangeHeader(p, width);
  lines.push(!v.filter && visibleLength(header) + count.length + 2 <= width ? `${header}  ${c.dim(count)}` : header);
  const room = Math.max(1, height - lines.length - v.notes.length);
  if (list.length === 0) {
    lines.push(c.dim(v.ranges.length === 0 ? '(nothing is mapped)' : '(no range matches the filter: / to change it)'));
  } else {
    const cursor = Math.min(Math.max(0, v.cursor), list.length - 1);
    const first = Math.max(0, Math.min(cursor - Math.floor(room / 2), list.length - room));
    for (let i = first; i < Math.min(list.length, first + room); i++) {
      const row = rangeRow(list[i]!, p, width);
      lines.push(i === cursor ? c.inverse(row) : row);
    }
  }
  for (const n of v.notes) lines.push(c.yellow(n));
  return lines;
}
