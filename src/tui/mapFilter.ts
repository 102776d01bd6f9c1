/**
 * The map pane's filter: words that must all hold for a range to be listed. An address (hex with
 * 0x) keeps the ranges that contain it; `w`, `x`, `user`, `kern`, `global` (and `ro`, `nx`, `!g`)
 * test rights; `4K`, `2M`, `4M`, `1G` test the page size; `wx` finds writable code; anything
 * else must appear in the range's line of text.
 */
import type { MapRange } from '../paging/map.js';
import { hex } from '../paging/addr.js';
import { humanSize, rightsLetters } from '../cli/output.js';

/** A compiled filter. */
export type RangeTest = (r: MapRange, line: string) => boolean;

const PAGE_SIZES: Record<string, number> = { '4k': 4096, '2m': 2 << 20, '4m': 4 << 20, '1g': 1 << 30 };

const RIGHTS: Record<string, (r: MapRange) => boolean> = {
  w: (r) => r.write,
  ro: (r) => !r.write,
  x: (r) => r.execute,
  nx: (r) => !r.execute,
  wx: (r) => r.write && r.execute,
  user: (r) => r.user,
  u: (r) => r.user,
  kern: (r) => !r.user,
  k: (r) => !r.user,
  global: (r) => r.global,
  g: (r) => r.global,
  '!g': (r) => !r.global,
};

/** One word of a filter as a test. */
function wordTest(word: string): RangeTest {
  const w = word.toLowerCase();
  if (/^0x[0-9a-f]+$/.test(w)) {
    const va = BigInt(w);
    return (r) => va >= r.va && va < r.va + r.size;
  }
  const size = PAGE_SIZES[w];
  if (size !== undefined) return (r) => r.pageSize === size;
  const right = RIGHTS[w];
  if (right) return (r) => right(r);
  return (_r, line) => line.toLowerCase().includes(w);
}

/** Compiles `text` (words separated by spaces; empty keeps everything). */
export function compileFilter(text: string): RangeTest {
  const tests = text.trim().split(/\s+/).filter(Boolean).map(wordTest);
  return (r, line) => tests.every((t) => t(r, line));
}

/** The text a range is matched against when no other test applies: its addresses, rights and sizes, as the pane shows them. */
export function rangeSearchText(r: MapRange): string {
  return `${hex(r.va)} ${hex(r.va + r.size - 1n)} ${hex(r.pa)} ${rightsLetters(r)} ${r.user ? 'user' : 'kern'} ${humanSize(r.size)} ${humanSize(r.pageSize)}`;
}
