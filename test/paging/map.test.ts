import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { hex } from '../../src/paging/addr.js';
import { DEFAULT_MAX_CYCLIC_LEAVES, MapError, mapRanges, mapRangesAsync, mapTask, type MapOptions, type MapRange, type MapSummary } from '../../src/paging/map.js';
import { runSync, type AsyncPhysMemory, type FrameData, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext, type CpuFeatures, type PagingContext, type PagingMode } from '../../src/paging/mode.js';
import { walk } from '../../src/paging/walk.js';

type Mode = Exclude<PagingMode, 'none'>;

/** CR0.PG|WP|PE with the CR4/EFER bits of each mode (NXE on where the mode has it). */
const REGS: Record<Mode, { cr0: bigint; cr4: bigint; efer: bigint }> = {
  '32-bit': { cr0: 0x80010001n, cr4: 0x10n, efer: 0n },
  PAE: { cr0: 0x80010001n, cr4: 0x20n, efer: 0x800n },
  '4-level': { cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n },
  '5-level': { cr0: 0x80010001n, cr4: 0x1020n, efer: 0xd00n },
};

function machine(mode: Mode, ram = 16 << 20) {
  const mem = new SparseMemory(ram);
  const alloc = new FrameAllocator(0x10000, ram);
  const pt = new PageTables(mem, mode, alloc);
  const ctx = (features: CpuFeatures = {}, regs: Partial<typeof REGS[Mode]> = {}): PagingContext =>
    pagingContext({ ...REGS[mode], ...regs, cr3: pt.cr3 }, features);
  return { mem, pt, alloc, ctx };
}

function collect(mem: PhysMemory, ctx: PagingContext, opts: MapOptions = {}): { ranges: MapRange[]; summary: MapSummary } {
  const it = mapRanges(mem, ctx, opts);
  const ranges: MapRange[] = [];
  for (;;) {
    const r = it.next();
    if (r.done) return { ranges, summary: r.value };
    ranges.push(r.value);
  }
}

/** Golden text of a range: `va -> pa size pageSize wuxg pkN`. */
function line(r: MapRange): string {
  const f = `${r.write ? 'w' : '-'}${r.user ? 'u' : '-'}${r.execute ? 'x' : '-'}${r.global ? 'g' : '-'}`;
  return `${hex(r.va)} -> ${hex(r.pa)} ${hex(r.size)} ${r.pageSize} ${f}${r.protectionKey === null ? '' : ` pk${r.protectionKey}`}`;
}

const lines = (mem: PhysMemory, ctx: PagingContext, opts: MapOptions = {}): string[] => collect(mem, ctx, opts).ranges.map(line);

const KiB4 = 0x1000;
const MiB2 = 0x200000;
const MiB4 = 0x400000;
const GiB = 0x40000000;

describe('map: golden maps per mode', () => {
  it('32-bit paging with 4 MiB pages (PSE, PSE-36) and 4 KiB pages, zero-extended addresses', () => {
    const { mem, pt, ctx } = machine('32-bit');
    pt.mapRange(0x1000n, 0x5000, 3 * KiB4, KiB4, { user: true });
    pt.map(0x80000000n, 0x100400000n, MiB4); // above 4 GiB through PSE-36
    pt.mapRange(0xc0000000n, 0x400000, 2 * MiB4, MiB4, { global: true, write: false });
    pt.map(0xfffff000n, 0x9000, KiB4);
    expect(lines(mem, ctx())).toEqual([
      '0x1000 -> 0x5000 0x3000 4096 wux-',
      '0x80000000 -> 0x100400000 0x400000 4194304 w-x-',
      '0xc0000000 -> 0x400000 0x800000 4194304 --xg',
      '0xfffff000 -> 0x9000 0x1000 4096 w-x-',
    ]);
  });

  it('32-bit paging without CR4.PSE reads PS=1 directory entries as page tables', () => {
    const { mem, pt, ctx } = machine('32-bit');
    pt.map(0x1000n, 0x5000, KiB4);
    // A PDE with PS=1 pointing at the page table of 0x0: with PSE off it is a table reference.
    const pde = pt.getEntry(0x0n, 'PD');
    pt.setEntry(0x400000n, 'PD', pde | 0x80n);
    const regsNoPse = { cr4: 0n };
    expect(lines(mem, ctx({}, regsNoPse))).toEqual(['0x1000 -> 0x5000 0x1000 4096 w-x-', '0x401000 -> 0x5000 0x1000 4096 w-x-']);
    // With PSE on, the same entry (0x11087: PT at 0x11000, P|RW|US|PS) is a 4 MiB page: bits 31:22
    // give PA bits 31:22 (0) and bits 20:13 give PA bits 39:32 through PSE-36 (0x11000 >> 13 = 8).
    expect(pde | 0x80n).toBe(0x11087n);
    expect(lines(mem, ctx())).toEqual(['0x1000 -> 0x5000 0x1000 4096 w-x-', '0x400000 -> 0x800000000 0x400000 4194304 wux-']);
    expect(walk(mem, ctx(), 0x400123n).translation?.pa).toBe(0x800000123n);
  });

  it('PAE: 2 MiB and 4 KiB pages, NX, rights from PD and PT only, reserved entries skipped', () => {
    const { mem, pt, ctx } = machine('PAE');
    pt.mapRange(0x1000n, 0x7000, 2 * KiB4, KiB4, { user: true, nx: true });
    pt.mapRange(0xc0000000n, 0x200000, 2 * MiB2, MiB2, { global: true });
    pt.map(0xc0400000n, 0x600000, MiB2, { global: true, nx: true });
    // Bit 62 is reserved in PAE entries: this 2 MiB page maps nothing.
    pt.setEntry(0x40000000n, 'PD', (1n << 62n) | 0x800000n | 0x83n);
    const { ranges, summary } = collect(mem, ctx());
    expect(ranges.map(line)).toEqual([
      '0x1000 -> 0x7000 0x2000 4096 wu--',
      '0xc0000000 -> 0x200000 0x400000 2097152 w-xg',
      '0xc0400000 -> 0x600000 0x200000 2097152 w--g',
    ]);
    expect(summary).toEqual({ leaves: 5, ranges: 3, truncated: [], unreadable: [], reservedEntries: 1 });
  });

  it('4-level: a Linux-style layout (identity, direct map, kernel text/rodata/data, user stack with a key)', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.mapRange(0n, 0, 4 * MiB2, MiB2);
    pt.mapRange(0xffff888000000000n, 0, 2 * GiB, GiB, { nx: true, global: true });
    pt.mapRange(0xffffffff81000000n, 0x1000000, 4 * KiB4, KiB4, { write: false, global: true });
    pt.mapRange(0xffffffff81004000n, 0x1004000, 2 * KiB4, KiB4, { write: false, nx: true, global: true });
    pt.mapRange(0xffffffff81006000n, 0x1006000, 2 * KiB4, KiB4, { nx: true, global: true });
    pt.mapRange(0x7fffffffd000n, 0x300000, 3 * KiB4, KiB4, { user: true, nx: true, pkey: 3 });
    const { ranges, summary } = collect(mem, ctx());
    expect(ranges.map(line)).toEqual([
      '0x0 -> 0x0 0x800000 2097152 w-x- pk0',
      '0x7fffffffd000 -> 0x300000 0x3000 4096 wu-- pk3',
      '0xffff888000000000 -> 0x0 0x80000000 1073741824 w--g pk0',
      '0xffffffff81000000 -> 0x1000000 0x4000 4096 --xg pk0',
      '0xffffffff81004000 -> 0x1004000 0x2000 4096 ---g pk0',
      '0xffffffff81006000 -> 0x1006000 0x2000 4096 w--g pk0',
    ]);
    expect(summary).toEqual({ leaves: 17, ranges: 6, truncated: [], unreadable: [], reservedEntries: 0 });
  });

  it('5-level: 57-bit canonical addresses, both halves', () => {
    const { mem, pt, ctx } = machine('5-level');
    pt.mapRange(0x1000n, 0x5000, 2 * KiB4, KiB4);
    pt.map(0x00ffffffc0000000n, 0x40000000n, GiB);
    pt.mapRange(0xff00000000000000n, 0x80000000, 2 * KiB4, KiB4, { global: true });
    pt.map(0xffffffffffe00000n, 0x200000, MiB2, { nx: true });
    expect(lines(mem, ctx())).toEqual([
      '0x1000 -> 0x5000 0x2000 4096 w-x- pk0',
      '0xffffffc0000000 -> 0x40000000 0x40000000 1073741824 w-x- pk0',
      '0xff00000000000000 -> 0x80000000 0x2000 4096 w-xg pk0',
      '0xffffffffffe00000 -> 0x200000 0x200000 2097152 w--- pk0',
    ]);
  });

  it('paging off: one identity range over the 32-bit space, as the walk translates', () => {
    const mem = new SparseMemory(0x10000);
    const ctx = pagingContext({ cr0: 0x11n, cr3: 0n, cr4: 0n, efer: 0n });
    expect(lines(mem, ctx)).toEqual(['0x0 -> 0x0 0x100000000 4096 wux-']);
    expect(lines(mem, ctx, { from: 0x1234n, to: 0x5fffn })).toEqual(['0x1234 -> 0x1234 0x4dcc 4096 wux-']);
  });
});

describe('map: coalescing', () => {
  it('merges only runs contiguous in VA and PA with equal rights, G, key and page size', () => {
    const { mem, pt, ctx } = machine('4-level');
    const base = 0x40000000n;
    const at = (i: number): bigint => base + BigInt(i * KiB4);
    pt.mapRange(at(0), 0x100000, 2 * KiB4, KiB4); // 0-1
    pt.map(at(2), 0x103000, KiB4); // PA gap
    pt.map(at(3), 0x104000, KiB4, { write: false }); // rights
    pt.map(at(4), 0x105000, KiB4, { write: false, global: true }); // G
    pt.map(at(5), 0x106000, KiB4, { write: false, global: true, pkey: 1 }); // key
    pt.map(at(6), 0x107000, KiB4, { write: false, global: true, pkey: 1, dirty: true, accessed: true, pcd: true }); // A/D/PCD do not split
    // VA gap at 7, then contiguous PA and VA again but across a page-size change.
    pt.map(at(8), 0x109000, KiB4);
    pt.map(base + 0x200000n, 0x200000, MiB2);
    pt.map(base + 0x1ff000n, 0x1ff000, KiB4);
    expect(lines(mem, ctx())).toEqual([
      '0x40000000 -> 0x100000 0x2000 4096 w-x- pk0',
      '0x40002000 -> 0x103000 0x1000 4096 w-x- pk0',
      '0x40003000 -> 0x104000 0x1000 4096 --x- pk0',
      '0x40004000 -> 0x105000 0x1000 4096 --xg pk0',
      '0x40005000 -> 0x106000 0x2000 4096 --xg pk1',
      '0x40008000 -> 0x109000 0x1000 4096 w-x- pk0',
      '0x401ff000 -> 0x1ff000 0x1000 4096 w-x- pk0',
      '0x40200000 -> 0x200000 0x200000 2097152 w-x- pk0',
    ]);
  });

  it('effective rights: R/W and U/S ANDed over the levels, NX ORed', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.mapRange(0x1000n, 0x1000, 2 * KiB4, KiB4, { user: true });
    pt.mapRange(0x40001000n, 0x1000, 2 * KiB4, KiB4, { user: true });
    pt.mapRange(0x8000001000n, 0x1000, 2 * KiB4, KiB4, { user: true });
    // PD entry read-only above the first run, PDPT entry supervisor above the second, NX in the PML4E above the third.
    pt.setEntry(0x1000n, 'PD', pt.getEntry(0x1000n, 'PD') & ~2n);
    pt.setEntry(0x40001000n, 'PDPT', pt.getEntry(0x40001000n, 'PDPT') & ~4n);
    pt.setEntry(0x8000001000n, 'PML4', pt.getEntry(0x8000001000n, 'PML4') | (1n << 63n));
    expect(lines(mem, ctx())).toEqual([
      '0x1000 -> 0x1000 0x2000 4096 -ux- pk0',
      '0x40001000 -> 0x1000 0x2000 4096 w-x- pk0',
      '0x8000001000 -> 0x1000 0x2000 4096 wu-- pk0',
    ]);
  });

  it('without EFER.NXE bit 63 is reserved: those entries map nothing', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.map(0x1000n, 0x1000, KiB4, { nx: true });
    pt.map(0x2000n, 0x2000, KiB4);
    const noNxe = ctx({}, { efer: 0x500n });
    const { ranges, summary } = collect(mem, noNxe);
    expect(ranges.map(line)).toEqual(['0x2000 -> 0x2000 0x1000 4096 w-x- pk0']);
    expect(summary.reservedEntries).toBe(1);
    expect(walk(mem, noNxe, 0x1000n).fault?.reason).toBe('reserved-bit');
  });

  it('reserved bits anywhere on the path map nothing: huge-page low bits, MAXPHYADDR, PS in a PML4E, 1 GiB without gbPages', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.map(0x200000n, 0x200000, MiB2, { extra: 1n << 13n }); // bit 13 of a 2 MiB page
    pt.map(0x400000n, 0x400000, MiB2);
    pt.map(0x40000000n, 0x40000000, GiB);
    pt.map(0x8000000000n, 0x1000, KiB4);
    pt.setEntry(0x8000000000n, 'PML4', pt.getEntry(0x8000000000n, 'PML4') | 0x80n);
    pt.map(0x10000000000n, 0x1000000000n, KiB4); // PA bit 36
    expect(lines(mem, ctx())).toEqual([
      '0x400000 -> 0x400000 0x200000 2097152 w-x- pk0',
      '0x40000000 -> 0x40000000 0x40000000 1073741824 w-x- pk0',
      '0x10000000000 -> 0x1000000000 0x1000 4096 w-x- pk0',
    ]);
    const narrow = collect(mem, ctx({ maxPhyAddr: 36, gbPages: false }));
    expect(narrow.ranges.map(line)).toEqual(['0x400000 -> 0x400000 0x200000 2097152 w-x- pk0']);
    expect(narrow.summary.reservedEntries).toBe(4);
  });

  it('never merges across the non-canonical hole, even when VA page numbers and PAs are contiguous', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.map(0x7ffffffff000n, 0x10000, KiB4);
    pt.map(0xffff800000000000n, 0x11000, KiB4);
    expect(lines(mem, ctx())).toEqual(['0x7ffffffff000 -> 0x10000 0x1000 4096 w-x- pk0', '0xffff800000000000 -> 0x11000 0x1000 4096 w-x- pk0']);
  });
});

/** Memory that records which frames were read. */
function spy(mem: PhysMemory): PhysMemory & { reads: number[] } {
  const reads: number[] = [];
  return {
    reads,
    frame(pa: number): FrameData {
      reads.push(pa);
      return mem.frame(pa);
    },
  };
}

describe('map: windows', () => {
  it('clips ranges to [from, to], adjusting the PA', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.mapRange(0xffffffff80000000n, 0x200000, 4 * MiB2, MiB2);
    pt.mapRange(0xffffffffc0000000n, 0x10000, 4 * KiB4, KiB4);
    expect(lines(mem, ctx(), { from: 0xffffffff80123456n, to: 0xffffffffc0001fffn })).toEqual([
      '0xffffffff80123456 -> 0x323456 0x6dcbaa 2097152 w-x- pk0',
      '0xffffffffc0000000 -> 0x10000 0x2000 4096 w-x- pk0',
    ]);
    expect(lines(mem, ctx(), { from: 0xffffffff80400000n, to: 0xffffffff80400000n })).toEqual(['0xffffffff80400000 -> 0x600000 0x1 2097152 w-x- pk0']);
  });

  it('reads no table outside the window', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.map(0x1000n, 0x1000, KiB4);
    pt.map(0x40000000n, 0x2000, KiB4);
    pt.map(0xffffffff80000000n, 0x3000, KiB4);
    const lowPt = pt.entryAddress(0x1000n, 'PT')! & ~0xfff;
    const lowPd = pt.entryAddress(0x1000n, 'PD')! & ~0xfff;
    const highPdpt = pt.entryAddress(0xffffffff80000000n, 'PDPT')! & ~0xfff;
    const m = spy(mem);
    expect(lines(m, ctx(), { from: 0x40000000n, to: 0x7fffffffn })).toEqual(['0x40000000 -> 0x2000 0x1000 4096 w-x- pk0']);
    // 0x1000 and 0x40000000 share the PDPT but not the PD: only 0x40000000's PD and PT are read.
    expect(m.reads).not.toContain(lowPt);
    expect(m.reads).not.toContain(lowPd);
    expect(m.reads).not.toContain(highPdpt);
  });

  it('clamps bounds in the non-canonical hole and outside the mode, and an empty window lists nothing', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.map(0x7ffffffff000n, 0x10000, KiB4);
    pt.map(0xffff800000000000n, 0x11000, KiB4);
    expect(lines(mem, ctx(), { from: 0x800000000000n })).toEqual(['0xffff800000000000 -> 0x11000 0x1000 4096 w-x- pk0']);
    expect(lines(mem, ctx(), { to: 0xfffe000000000000n })).toEqual(['0x7ffffffff000 -> 0x10000 0x1000 4096 w-x- pk0']);
    expect(lines(mem, ctx(), { from: 0x900000000000n, to: 0xa00000000000n })).toEqual([]);
    expect(lines(mem, ctx(), { from: 0x2000n, to: 0x1000n })).toEqual([]);

    const p = machine('PAE');
    p.pt.map(0xfffff000n, 0x1000, KiB4);
    expect(lines(p.mem, p.ctx(), { to: 0xffffffffffffffffn })).toEqual(['0xfffff000 -> 0x1000 0x1000 4096 w-x-']);
    expect(lines(p.mem, p.ctx(), { from: 0x100000000n })).toEqual([]);
  });
});

describe('map: recursive slots, loops, unreadable tables', () => {
  it('a recursive PML4 slot lists the self-mapped tables exactly as the walk finds them', () => {
    const { mem, pt, ctx } = machine('4-level');
    pt.mapRange(0x1000n, 0x1000, 2 * KiB4, KiB4);
    pt.mapRange(0xffffffff80000000n, 0x200000, 2 * KiB4, KiB4, { global: true });
    pt.linkTable(0xffffff0000000000n, 'PML4', pt.root); // PML4[510] = PML4
    const c = ctx();
    const { ranges, summary } = collect(mem, c);
    const self = 0xffffff7fbfdfe000n; // 510/510/510/510: the PML4 itself
    const kernelPtVa = 0xffffff7fffc00000n; // the PT that maps 0xffffffff80000000
    const ptOfKernel = BigInt(pt.entryAddress(0xffffffff80000000n, 'PT')! & ~0xfff);
    const covering = (va: bigint): MapRange | undefined => ranges.find((r) => va >= r.va && va < r.va + r.size);
    expect(covering(self)?.pa).toBe(BigInt(pt.root) + (self - covering(self)!.va));
    expect(covering(kernelPtVa)!.pa + (kernelPtVa - covering(kernelPtVa)!.va)).toBe(ptOfKernel);

    // Every page the walk maps in the recursive 512 GiB is listed, and nothing else is.
    const walked = walkedPages(mem, c, 0xffffff0000000000n, 1);
    const listed = ranges
      .filter((r) => r.va >= 0xffffff0000000000n && r.va < 0xffffff8000000000n)
      .flatMap((r) => {
        const out: string[] = [];
        for (let off = 0n; off < r.size; off += BigInt(r.pageSize)) out.push(`${hex(r.va + off)}->${hex(r.pa + off)}/${r.pageSize}`);
        return out;
      });
    expect(listed).toEqual(walked);
    expect(listed.length).toBeGreaterThan(4);
    expect(summary.truncated).toEqual([]);
  });

  it('a garbage loop that would be 512^4 leaves ends with the budget spent and the cut reported', () => {
    const { mem, pt, alloc, ctx } = machine('4-level');
    const t = alloc.alloc();
    // Every PML4 entry points at T, and every entry of T points at T: T is a PDPT, PD and PT at once.
    for (let i = 0; i < 512; i++) {
      mem.write64(pt.root + i * 8, BigInt(t) | 3n);
      mem.write64(t + i * 8, BigInt(t) | 3n);
    }
    const budget = 100_000;
    const started = performance.now();
    const { ranges, summary } = collect(mem, ctx(), { maxCyclicLeaves: budget });
    expect(performance.now() - started).toBeLessThan(20_000);
    // PML4[0] -> T[0] -> T[j] -> T is followed for j < 196 (196 * 512 leaves reach the budget); then
    // T[196..511] as PD entries are cut (one report), then every T entry read as a PDPT entry, under
    // PML4[0] and all the other PML4 entries (one more report: the cuts run on contiguously).
    expect(summary.leaves).toBe(196 * 512);
    expect(summary.truncated).toEqual([
      { va: 196n * 0x200000n, table: BigInt(t), level: 'PT' },
      { va: 0x40000000n, table: BigInt(t), level: 'PD' },
    ]);
    // Every leaf maps T's frame; what is listed is what the walk finds.
    expect(ranges[0]).toEqual({ va: 0n, pa: BigInt(t), size: 0x1000n, pageSize: 4096, write: true, user: false, execute: true, global: false, protectionKey: 0 });
    expect(walk(mem, ctx(), ranges[ranges.length - 1]!.va).translation?.pa).toBe(BigInt(t));
  });

  it('with the default budget (1 << 22 leaves) a root that points at itself from every slot ends too', () => {
    const { mem, pt, ctx } = machine('4-level');
    for (let i = 0; i < 512; i++) mem.write64(pt.root + i * 8, BigInt(pt.root) | 3n);
    let leaves = 0;
    const it = mapRanges(mem, ctx());
    let step = it.next();
    for (; !step.done; step = it.next()) leaves++;
    // 0/0/k/* for k < 16 is 16 * 512 * 512 = 1 << 22 leaves (each maps the root: no two coalesce).
    expect(DEFAULT_MAX_CYCLIC_LEAVES).toBe(1 << 22);
    expect(leaves).toBe(1 << 22);
    expect(step.value.truncated).toEqual([
      { va: 16n << 30n, table: BigInt(pt.root), level: 'PD' },
      { va: 1n << 39n, table: BigInt(pt.root), level: 'PDPT' },
    ]);
    expect(() => mapTask(ctx(), { maxCyclicLeaves: -1 }).next()).toThrow(MapError);
    expect(() => mapTask(ctx(), { maxCyclicLeaves: 1.5 }).next()).toThrow(MapError);
  });

  it('reports tables outside memory, and a root outside memory', () => {
    const { mem, pt, ctx } = machine('4-level', 1 << 20);
    pt.map(0x1000n, 0x1000, KiB4);
    pt.map(0x40000000n, 0x1000, KiB4);
    pt.setEntry(0x40000000n, 'PDPT', 0x7000000n | 3n); // a PD past the 1 MiB of RAM
    const { ranges, summary } = collect(mem, ctx());
    expect(ranges.map(line)).toEqual(['0x1000 -> 0x1000 0x1000 4096 w-x- pk0']);
    expect(summary.unreadable).toEqual([{ va: 0x40000000n, table: 0x7000000n, level: 'PD' }]);
    expect(walk(mem, ctx(), 0x40000000n).fault?.reason).toBe('outside-memory');

    const far = pagingContext({ ...REGS['4-level'], cr3: 0x9000000n });
    expect(collect(mem, far).summary.unreadable).toEqual([{ va: 0n, table: 0x9000000n, level: 'PML4' }]);
  });

  it('a CR3 with bits above MAXPHYADDR maps nothing, as the walk says (#GP on mov to CR3)', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x1000n, 0x1000, KiB4);
    const bad = pagingContext({ ...REGS['4-level'], cr3: pt.cr3 | (1n << 40n) }, { maxPhyAddr: 36 });
    expect(lines(mem, bad)).toEqual([]);
    expect(walk(mem, bad, 0x1000n).fault?.level).toBe('CR3');
  });
});

describe('map: streaming and drivers', () => {
  it('hands out ranges table by table, before the rest of the tree is read', () => {
    const { mem, pt, ctx } = machine('4-level');
    // Two PML4 subtrees of 64 scattered pages each.
    for (let i = 0; i < 64; i++) {
      pt.map(BigInt(i * KiB4), 0x100000 + i * 2 * KiB4, KiB4);
      pt.map(0x8000000000n + BigInt(i * KiB4), 0x200000 + i * 2 * KiB4, KiB4);
    }
    // The root's children (both PDPTs) come in one batch; the second subtree's PD and PT come later.
    const secondPt = pt.entryAddress(0x8000000000n, 'PT')! & ~0xfff;
    const secondPd = pt.entryAddress(0x8000000000n, 'PD')! & ~0xfff;
    const m = spy(mem);
    const it = mapRanges(m, ctx());
    const first = it.next();
    expect(first.done).toBe(false);
    expect(m.reads).not.toContain(secondPd);
    expect(m.reads).not.toContain(secondPt);
    let n = 1;
    while (!it.next().done) n++;
    expect(n).toBe(128);
    expect(m.reads).toContain(secondPt);
  });

  it('the async driver gives the same ranges and fetches a table\'s children in one batch', async () => {
    const { mem, pt, ctx } = machine('4-level');
    for (let i = 0; i < 8; i++) pt.map(BigInt(i) * BigInt(MiB2), 0x100000 + i * KiB4, KiB4, { user: i % 2 === 0 });
    const batches: number[][] = [];
    const amem: AsyncPhysMemory = {
      frames: async (pas) => {
        batches.push([...pas]);
        return pas.map((p) => mem.frame(p));
      },
    };
    const got: MapRange[] = [];
    const it = mapRangesAsync(amem, ctx());
    let summary: MapSummary;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        summary = r.value;
        break;
      }
      got.push(r.value);
    }
    expect(got).toEqual(collect(mem, ctx()).ranges);
    expect(summary.leaves).toBe(8);
    // root; the PDPT; the PD; the 8 PTs of the PD together.
    expect(batches.map((b) => b.length)).toEqual([1, 1, 1, 8]);
  });

  it('mapTask can be run by any driver: runSync collects the summary', () => {
    const { mem, pt, ctx } = machine('PAE');
    pt.map(0x1000n, 0x1000, KiB4);
    const seen: MapRange[] = [];
    const task = mapTask(ctx());
    const asRequests = (function* () {
      let step = task.next();
      while (!step.done) {
        const v = step.value;
        if ('frames' in v) step = task.next(yield v);
        else {
          seen.push(v);
          step = task.next([]);
        }
      }
      return step.value;
    })();
    const summary = runSync(asRequests, mem);
    expect(summary.leaves).toBe(1);
    expect(seen.map(line)).toEqual(['0x1000 -> 0x1000 0x1000 4096 w-x-']);
  });
});

/**
 * Every page the walk maps under a table entry, found with the walk alone: descend wherever the
 * walk passes the level, list the leaf where it translates. `va` is the entry's first address and
 * `depth` the level below it.
 */
function walkedPages(mem: PhysMemory, ctx: PagingContext, va: bigint, depth: number): string[] {
  const rule = ctx.levels[depth]!;
  const out: string[] = [];
  for (let i = 0; i < 1 << rule.indexBits; i++) {
    const at = va + (BigInt(i) << BigInt(rule.shift));
    const w = walk(mem, ctx, at);
    if (w.translation && w.steps.length === depth + 1) {
      out.push(`${hex(at)}->${hex(w.translation.pa)}/${w.translation.pageSize}`);
    } else if (w.steps.length > depth + 1) {
      out.push(...walkedPages(mem, ctx, at, depth + 1));
    }
  }
  return out;
}
