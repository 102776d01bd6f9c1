import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { hex } from '../../src/paging/addr.js';
import { diffRanges, diffRangesAsync, diffStreams, type DiffEntry } from '../../src/paging/diff.js';
import type { MapRange } from '../../src/paging/map.js';
import { asyncMemory } from '../../src/paging/memory.js';
import { pagingContext, withCr3 } from '../../src/paging/mode.js';
import { walk } from '../../src/paging/walk.js';

const KiB4 = 0x1000;
const MiB2 = 0x200000;

/** Two 4-level address spaces in one memory, as a kernel has before and after a CR3 switch. */
function spaces() {
  const mem = new SparseMemory(16 << 20);
  const alloc = new FrameAllocator(0x10000, 16 << 20);
  const before = new PageTables(mem, '4-level', alloc);
  const now = new PageTables(mem, '4-level', alloc);
  const ctx = pagingContext({ cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n, cr3: now.cr3 });
  return { mem, before, now, ctx, beforeCtx: withCr3(ctx, before.cr3) };
}

const side = (r: MapRange | null): string =>
  r === null
    ? '-'
    : `${hex(r.va)}+${hex(r.size)}>${hex(r.pa)} ${r.write ? 'w' : '-'}${r.user ? 'u' : '-'}${r.execute ? 'x' : '-'}${r.global ? 'g' : '-'} ${r.pageSize}`;

/** Golden text of a diff entry: `kind va+size | now | before`. */
const line = (d: DiffEntry): string => `${d.kind} ${hex(d.va)}+${hex(d.size)} | ${side(d.now)} | ${side(d.before)}`;

describe('diff', () => {
  it('reports what was added, removed and changed, and leaves out what maps alike', () => {
    const { mem, before, now, ctx, beforeCtx } = spaces();
    for (const pt of [before, now]) pt.mapRange(0xffffffff80000000n, 0x100000, 4 * KiB4, KiB4, { global: true }); // same in both
    before.mapRange(0x400000n, 0x400000, 2 * KiB4, KiB4); // the loader's identity map: dropped
    now.mapRange(0xffff800000000000n, 0, 2 * MiB2, MiB2, { nx: true }); // a new direct map
    before.map(0xffffffff80004000n, 0x104000, KiB4); // writable before
    now.map(0xffffffff80004000n, 0x104000, KiB4, { write: false }); // read-only now
    before.map(0xffffffff80005000n, 0x105000, KiB4);
    now.map(0xffffffff80005000n, 0x205000, KiB4); // another frame
    expect([...diffRanges(mem, ctx, beforeCtx)].map(line)).toEqual([
      'removed 0x400000+0x2000 | - | 0x400000+0x2000>0x400000 w-x- 4096',
      'added 0xffff800000000000+0x400000 | 0xffff800000000000+0x400000>0x0 w--- 2097152 | -',
      'changed 0xffffffff80004000+0x1000 | 0xffffffff80004000+0x1000>0x104000 --x- 4096 | 0xffffffff80004000+0x1000>0x104000 w-x- 4096',
      'changed 0xffffffff80005000+0x1000 | 0xffffffff80005000+0x1000>0x205000 w-x- 4096 | 0xffffffff80005000+0x1000>0x105000 w-x- 4096',
    ]);
    expect([...diffRanges(mem, ctx, ctx)]).toEqual([]);
  });

  it('splits on either side\'s boundaries: page size and partial overlaps', () => {
    const { mem, before, now, ctx, beforeCtx } = spaces();
    // The same 4 MiB at the same PAs: 2 MiB pages now, 4 KiB pages before for the second half.
    now.mapRange(0x40000000n, 0x800000, 2 * MiB2, MiB2);
    before.map(0x40000000n, 0x800000, MiB2);
    before.mapRange(0x40200000n, 0xa00000, MiB2, KiB4);
    // Before maps [0x1000, 0x5000), now maps [0x3000, 0x7000), same PA for the same VA.
    before.mapRange(0x1000n, 0x1000, 4 * KiB4, KiB4);
    now.mapRange(0x3000n, 0x3000, 4 * KiB4, KiB4);
    expect([...diffRanges(mem, ctx, beforeCtx)].map(line)).toEqual([
      'removed 0x1000+0x2000 | - | 0x1000+0x2000>0x1000 w-x- 4096',
      'added 0x5000+0x2000 | 0x5000+0x2000>0x5000 w-x- 4096 | -',
      'changed 0x40200000+0x200000 | 0x40200000+0x200000>0xa00000 w-x- 2097152 | 0x40200000+0x200000>0xa00000 w-x- 4096',
    ]);
  });

  it('entries coalesce where adjacent, of the same kind, and seamless on each side', () => {
    const r = (va: number, pa: number, size: number, write = true): MapRange => ({
      va: BigInt(va),
      pa: BigInt(pa),
      size: BigInt(size),
      pageSize: KiB4,
      write,
      user: false,
      execute: true,
      global: false,
      protectionKey: null,
    });
    // Streams that split a run where nothing changes (two snapshots cut differently) fold back together.
    const now = [r(0x1000, 0x1000, 0x1000), r(0x2000, 0x2000, 0x2000), r(0x10000, 0x50000, 0x1000), r(0x11000, 0x90000, 0x1000)];
    const before = [r(0x2000, 0x2000, 0x1000, false), r(0x3000, 0x3000, 0x1000, false), r(0x8000, 0x8000, 0x1000)];
    expect([...diffStreams(now[Symbol.iterator](), before[Symbol.iterator]())].map(line)).toEqual([
      'added 0x1000+0x1000 | 0x1000+0x1000>0x1000 w-x- 4096 | -',
      'changed 0x2000+0x2000 | 0x2000+0x2000>0x2000 w-x- 4096 | 0x2000+0x2000>0x2000 --x- 4096',
      'removed 0x8000+0x1000 | - | 0x8000+0x1000>0x8000 w-x- 4096',
      // Not seamless in PA: two entries.
      'added 0x10000+0x1000 | 0x10000+0x1000>0x50000 w-x- 4096 | -',
      'added 0x11000+0x1000 | 0x11000+0x1000>0x90000 w-x- 4096 | -',
    ]);
  });

  it('agrees with the walk on both sides at every piece boundary', () => {
    const { mem, before, now, ctx, beforeCtx } = spaces();
    now.mapRange(0x0n, 0x0, 8 * KiB4, KiB4, { user: true });
    before.mapRange(0x2000n, 0x2000, 8 * KiB4, KiB4);
    now.map(0x200000n, 0x200000, MiB2, { nx: true });
    before.mapRange(0x200000n, 0x200000, 16 * KiB4, KiB4, { nx: true });
    const entries = [...diffRanges(mem, ctx, beforeCtx)];
    expect(entries.length).toBeGreaterThan(2);
    for (const d of entries) {
      for (const va of [d.va, d.va + d.size - 1n]) {
        const a = walk(mem, ctx, va).translation;
        const b = walk(mem, beforeCtx, va).translation;
        expect(a === null).toBe(d.now === null);
        expect(b === null).toBe(d.before === null);
        if (d.now) expect(a!.pa).toBe(d.now.pa + (va - d.now.va));
        if (d.before) expect(b!.pa).toBe(d.before.pa + (va - d.before.va));
        if (d.kind === 'changed') expect(a!.pa !== b!.pa || a!.pageSize !== b!.pageSize || a!.rights.write !== b!.rights.write || a!.rights.user !== b!.rights.user).toBe(true);
      }
    }
  });

  it('honours the window on both sides and runs on asynchronous memory', async () => {
    const { mem, before, now, ctx, beforeCtx } = spaces();
    now.mapRange(0x1000n, 0x1000, 8 * KiB4, KiB4);
    before.mapRange(0x1000n, 0x9000, 8 * KiB4, KiB4);
    const opts = { from: 0x3800n, to: 0x4fffn };
    const sync = [...diffRanges(mem, ctx, beforeCtx, opts)];
    expect(sync.map(line)).toEqual(['changed 0x3800+0x1800 | 0x3800+0x1800>0x3800 w-x- 4096 | 0x3800+0x1800>0xb800 w-x- 4096']);
    const got: DiffEntry[] = [];
    for await (const d of diffRangesAsync(asyncMemory(mem), ctx, beforeCtx, opts)) got.push(d);
    expect(got).toEqual(sync);
  });
});
