import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { AddressError, hex } from '../../src/paging/addr.js';
import { asyncMemory } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { phys2virt, phys2virtAsync, type Alias } from '../../src/paging/phys2virt.js';
import { walk } from '../../src/paging/walk.js';

const KiB4 = 0x1000;
const MiB2 = 0x200000;
const GiB = 0x40000000;

function linuxLike() {
  const mem = new SparseMemory(16 << 20);
  const alloc = new FrameAllocator(0x10000, 16 << 20);
  const pt = new PageTables(mem, '4-level', alloc);
  pt.mapRange(0x0n, 0x0, 4 * MiB2, MiB2); // identity, 2 MiB pages
  pt.mapRange(0xffff888000000000n, 0, 4 * GiB, GiB, { nx: true, global: true }); // direct map, 1 GiB pages
  pt.mapRange(0xffffffff81000000n, 0x1000000, 16 * KiB4, KiB4, { write: false, global: true }); // kernel text
  pt.map(0xffffffff81200000n, 0x1003000, KiB4, { nx: true }); // a second alias of one text frame
  const ctx = pagingContext({ cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n, cr3: pt.cr3 });
  return { mem, pt, ctx };
}

const line = (a: Alias): string => `${hex(a.va)} ${a.range.pageSize} ${a.range.write ? 'w' : '-'}${a.range.execute ? 'x' : '-'}`;

describe('phys2virt', () => {
  it('finds every alias, across page sizes, in VA order', () => {
    const { mem, ctx } = linuxLike();
    expect(phys2virt(mem, ctx, 0x1003abcn).map(line)).toEqual([
      '0xffff888001003abc 1073741824 w-',
      '0xffffffff81003abc 4096 -x',
      '0xffffffff81200abc 4096 w-',
    ]);
    expect(phys2virt(mem, ctx, 0x123456n).map(line)).toEqual(['0x123456 2097152 wx', '0xffff888000123456 1073741824 w-']);
    for (const a of phys2virt(mem, ctx, 0x1003abcn)) expect(walk(mem, ctx, a.va).translation?.pa).toBe(0x1003abcn);
  });

  it('returns the coalesced range each alias lies in', () => {
    const { mem, ctx } = linuxLike();
    const [direct] = phys2virt(mem, ctx, 0x80000000n);
    expect(direct).toEqual({
      va: 0xffff888080000000n,
      range: { va: 0xffff888000000000n, pa: 0n, size: 0x100000000n, pageSize: GiB, write: true, user: false, execute: false, global: true, protectionKey: 0 },
    });
  });

  it('has nothing for an unmapped frame, and rejects what is not a physical address', () => {
    const { mem, ctx } = linuxLike();
    expect(phys2virt(mem, ctx, 0x100000000n)).toEqual([]);
    expect(() => phys2virt(mem, ctx, 1n << 52n)).toThrow(AddressError);
    expect(() => phys2virt(mem, ctx, -1n)).toThrow(AddressError);
  });

  it('finds page tables through a recursive slot', () => {
    const { mem, pt, ctx } = linuxLike();
    pt.linkTable(0xffffff0000000000n, 'PML4', pt.root);
    const aliases = phys2virt(mem, ctx, BigInt(pt.root));
    // The identity and direct maps cover the root too. Through the slot, 510/273/0 reads the direct
    // map's 1 GiB PDPTE for PA 0 as a 2 MiB PDE (PS=1): a 2 MiB page at PA 0, which holds the root.
    // 510/510/510/510 is the classic self-map of the PML4.
    expect(aliases.map((a) => hex(a.va))).toEqual([hex(BigInt(pt.root)), '0xffff888000010000', '0xffffff4440010000', '0xffffff7fbfdfe000']);
    expect(aliases[2]!.range.pageSize).toBe(MiB2);
    for (const a of aliases) expect(walk(mem, ctx, a.va).translation?.pa).toBe(BigInt(pt.root));
  });

  it('paging off: the address itself, below 4 GiB', () => {
    const mem = new SparseMemory(0x10000);
    const ctx = pagingContext({ cr0: 0x11n, cr3: 0n, cr4: 0n, efer: 0n });
    expect(phys2virt(mem, ctx, 0xb8000n).map((a) => hex(a.va))).toEqual(['0xb8000']);
    expect(phys2virt(mem, ctx, 0x100000000n)).toEqual([]);
  });

  it('the async form gives the same answer', async () => {
    const { mem, ctx } = linuxLike();
    expect(await phys2virtAsync(asyncMemory(mem), ctx, 0x1003abcn)).toEqual(phys2virt(mem, ctx, 0x1003abcn));
  });
});
