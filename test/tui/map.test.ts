/**
 * The map pane: the address-space strip (cells per half, the hole, the marker under the selected
 * address), the filter words, and the rows around the cursor; on tables built with the builder.
 */
import { describe, expect, it } from 'vitest';
import { mapRanges, type MapRange } from '../../src/paging/map.js';
import type { FrameData } from '../../src/paging/memory.js';
import { listMap, summaryNotes } from '../../src/tui/mapListing.js';
import { compileFilter, rangeSearchText } from '../../src/tui/mapFilter.js';
import { filteredRanges, mapPaneLines } from '../../src/tui/mapPane.js';
import { paint } from '../../src/tui/paint.js';
import { addressHalves, buildStrip, stripLines } from '../../src/tui/strip.js';
import { ctxOf, machine, TABLES_AT } from '../paging/coreFixtures.js';

const p = paint(false, true);

/** A user range low, a direct map at the start of the upper half, kernel text at its end. */
function ranges(): MapRange[] {
  const { mem, pt } = machine('4-level');
  pt.map(0xffffffff80000000n, 0x200000, 0x1000, { global: true });
  pt.mapRange(0xffff800000000000n, 0, 0x400000, 0x200000, { write: true, nx: true });
  pt.map(0x400000n, 0x400000, 0x200000, { write: true, user: true });
  return [...mapRanges(mem, ctxOf('4-level', BigInt(TABLES_AT)))];
}

describe('the strip', () => {
  it('splits the canonical halves of each mode', () => {
    expect(addressHalves(48)).toEqual([
      [0n, 0x800000000000n],
      [0xffff800000000000n, 1n << 64n],
    ]);
    expect(addressHalves(57)[1]![0]).toBe(0xff00000000000000n);
    expect(addressHalves(32)).toEqual([[0n, 0x100000000n]]);
  });

  it('sums what is mapped in each cell, and marks user and executable cells', () => {
    const s = buildStrip(ranges(), 48, 8);
    expect(s.halves.map((h) => h.length)).toEqual([4, 4]);
    expect(s.halves[0]![0]).toMatchObject({ start: 0n, end: 0x200000000000n, mapped: 0x200000n, user: true, execute: true });
    expect(s.halves[1]![0]).toMatchObject({ start: 0xffff800000000000n, mapped: 0x400000n, user: false, execute: false });
    expect(s.halves[1]![3]).toMatchObject({ end: 1n << 64n, mapped: 0x1000n, execute: true });
    expect(s.halves[1]!.slice(1, 3).every((c) => c.mapped === 0n)).toBe(true);
  });

  it('draws the halves around the hole, the edges below, and a marker under the selected address', () => {
    expect(stripLines(ranges(), 48, 41, p, 0xffffffff80000010n)).toEqual(['▒···················┊▒··················▒', '0x0                  0xffff800000000000 ▲']);
    expect(stripLines(ranges(), 48, 41, p, null)[1]).toBe('0x0                  0xffff800000000000');
    // A fully mapped cell is solid: 32-bit paging, 4 GiB in 4 cells, the first GiB mapped.
    const { mem, pt } = machine('32-bit');
    pt.mapRange(0n, 0, 0x40000000, 0x400000, { write: true });
    const flat = [...mapRanges(mem, ctxOf('32-bit', BigInt(TABLES_AT)))];
    expect(stripLines(flat, 32, 4, p, 0x7fffffffn)[0]).toBe('█···');
    expect(stripLines(flat, 32, 4, p, 0x7fffffffn)[1]).toBe('0▲0');
  });
});

describe('the map filter', () => {
  const all = ranges();
  const keep = (text: string): bigint[] => all.filter((r) => compileFilter(text)(r, rangeSearchText(r))).map((r) => r.va);

  it('tests rights, page sizes and contained addresses, all words at once', () => {
    expect(keep('')).toHaveLength(3);
    expect(keep('user')).toEqual([0x400000n]);
    expect(keep('kern')).toEqual([0xffff800000000000n, 0xffffffff80000000n]);
    expect(keep('nx')).toEqual([0xffff800000000000n]);
    expect(keep('x kern')).toEqual([0xffffffff80000000n]);
    expect(keep('2M w')).toEqual([0x400000n, 0xffff800000000000n]);
    expect(keep('4k')).toEqual([0xffffffff80000000n]);
    expect(keep('global')).toEqual([0xffffffff80000000n]);
    expect(keep('0xffff8000003fffff')).toEqual([0xffff800000000000n]);
    expect(keep('0xffff800000400000')).toEqual([]);
  });

  it('matches any other word in the text the pane shows', () => {
    expect(keep('rw-')).toEqual([0xffff800000000000n]);
    expect(keep('ffffffff8')).toEqual([0xffffffff80000000n]);
    expect(rangeSearchText(all[0]!)).toBe('0x400000 0x5fffff 0x400000 rwx user 2M 2M');
  });
});

describe('the map pane', () => {
  const all = ranges();

  it('shows the strip, a header with the count, and the rows', () => {
    expect(mapPaneLines({ cr3: 0x10000n, vaBits: 48, ranges: all, filter: '', cursor: 1, notes: [] }, p, 90, 8, null)).toEqual([
      '▒···········································┊▒··········································▒',
      '0x0                                          0xffff800000000000',
      'VA start            VA end               size page  rights       PA  3 of 3 ranges',
      '0x0000000000400000  0x00000000005fffff     2M  2M  rwx user     0x400000',
      '0xffff800000000000  0xffff8000003fffff     4M  2M  rw- kern     0x0',
      '0xffffffff80000000  0xffffffff80000fff     4K  4K  rwx kern G   0x200000',
    ]);
  });

  it('says what the filter keeps, and what the map could not list', () => {
    expect(mapPaneLines({ cr3: 0x10000n, vaBits: 48, ranges: all, filter: 'nx', cursor: 0, notes: ['1 table(s) lie outside memory'] }, p, 60, 8, null).slice(2)).toEqual([
      'filter "nx": 1 of 3 ranges',
      'VA start            size page rights      PA',
      '0xffff800000000000    4M  2M rw- kern    0x0',
      '1 table(s) lie outside memory',
    ]);
    expect(mapPaneLines({ cr3: 0x10000n, vaBits: 48, ranges: all, filter: 'user kern', cursor: 0, notes: [] }, p, 60, 8, null).at(-1)).toBe('(no range matches the filter: / to change it)');
  });

  it('scrolls to keep the cursor in view, and shows it in inverse', () => {
    const many: MapRange[] = Array.from({ length: 40 }, (_, i) => ({ ...all[0]!, va: BigInt(i) << 21n, pa: BigInt(i) << 21n }));
    const colored = paint(true, true);
    const lines = mapPaneLines({ cr3: 0x10000n, vaBits: 48, ranges: many, filter: '', cursor: 30, notes: [] }, colored, 90, 10, null);
    const rows = lines.slice(3);
    expect(rows).toHaveLength(7);
    const inverse = rows.findIndex((l) => l.startsWith('\x1b[7m'));
    expect(inverse).toBe(3);
    expect(rows[inverse]).toContain('0x0000000003c00000');
    expect(filteredRanges({ ranges: many, filter: '0x3c00000' })).toHaveLength(1);
  });
});

describe('listing a map', () => {
  /** 600 single pages, every other one writable: 600 ranges that do not coalesce. */
  function striped() {
    const { mem, pt } = machine('4-level');
    for (let i = 0; i < 600; i++) pt.map(0x1000000n + BigInt(i) * 0x1000n, 0x200000 + i * 0x1000, 0x1000, { write: i % 2 === 0 });
    const async = { frames: async (pas: readonly number[]): Promise<FrameData[]> => pas.map((pa) => mem.frame(pa)) };
    return { mem: async, ctx: ctxOf('4-level', BigInt(TABLES_AT)) };
  }

  it('lists every range, and stops at its bound with a note', async () => {
    const { mem, ctx } = striped();
    expect((await listMap(mem, ctx, () => true))!.ranges).toHaveLength(600);
    const bounded = await listMap(mem, ctx, () => true, 100);
    expect(bounded!.ranges).toHaveLength(100);
    expect(bounded!.notes).toEqual(['the listing stopped at 100 ranges (map --from/--to on the command line lists a part)']);
  });

  it('gives up as soon as it is no longer wanted', async () => {
    const { mem, ctx } = striped();
    let asked = 0;
    expect(await listMap(mem, ctx, () => ++asked < 10)).toBeNull();
    expect(asked).toBe(10);
  });

  it('says what it could not list', () => {
    const place = { va: 0n, table: 0x9000000n, level: 'PT' as const };
    expect(summaryNotes({ leaves: 0, ranges: 0, truncated: [place], unreadable: [place, place], reservedEntries: 1 })).toEqual([
      '1 subtree(s) reached through loops were cut off',
      '2 table(s) lie outside memory',
      '1 entry has reserved bits set (they map nothing)',
    ]);
  });
});
