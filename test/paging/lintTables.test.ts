/**
 * The lint of table structure: pointers that leave RAM, shifted pointers (the C bitfield bug),
 * virtual addresses stored as table pointers, loops and recursive slots, and shared tables.
 */
import { describe, expect, it } from 'vitest';
import { PageTables, type TableFlags } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { hex } from '../../src/paging/addr.js';
import { lint, type LintCode, type LintOptions, type LintReport } from '../../src/paging/lint.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

const RAM = 64 << 20;
type Mode = '32-bit' | 'PAE' | '4-level' | '5-level';

/** Tables of `mode` in 64 MiB of RAM, and a lint of them with that RAM known. */
function setup(mode: Mode, o: { maxPhyAddr?: number; tables?: TableFlags } = {}) {
  const mem = new SparseMemory(RAM);
  const pt = new PageTables(mem, mode, new FrameAllocator(0x100000, 0x200000), o.tables);
  const longMode = mode === '4-level' || mode === '5-level';
  const ctx = (): PagingContext =>
    pagingContext(
      {
        cr0: CR0.PE | CR0.PG | CR0.WP,
        cr3: pt.cr3,
        cr4: (mode === '32-bit' ? CR4.PSE : CR4.PAE) | (mode === '5-level' ? CR4.LA57 : 0n),
        efer: (longMode ? EFER.LME | EFER.LMA : 0n) | EFER.NXE,
      },
      { maxPhyAddr: o.maxPhyAddr ?? 52 },
    );
  const run = (opts: LintOptions = {}): LintReport => lint(mem, ctx(), { ram: [{ start: 0n, end: BigInt(RAM) }], ...opts });
  return { mem, pt, ctx, run };
}

const of = (r: LintReport, code: LintCode) => r.findings.filter((f) => f.code === code);
const codes = (r: LintReport) => r.findings.map((f) => f.code);
/** The table an entry points at. */
const tableOf = (raw: bigint): number => Number(raw & 0x000ffffffffff000n);

describe('lint: table-past-ram', () => {
  it('flags a table pointer outside RAM, or unreadable when RAM is unknown; not one inside RAM', () => {
    const { pt, mem, ctx, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    expect(codes(run())).toEqual([]);
    pt.setEntry(0x200000n, 'PD', 0x8000003n); // a PT at 128 MiB
    const r = run();
    expect(codes(r)).toEqual(['table-past-ram']);
    expect(r.findings[0]).toMatchObject({
      severity: 'error',
      level: 'PD',
      entryAddress: BigInt(pt.entryAddress(0x200000n, 'PD')!),
      raw: 0x8000003n,
      va: 0x200000n,
      vaEnd: 0x3fffffn,
    });
    expect(r.findings[0]!.message).toContain('points at a PT at 0x8000000, which is not RAM');
    expect(r.findings[0]!.hint).toContain('4 KiB-aligned PT in RAM');
    const unknown = lint(mem, ctx());
    expect(codes(unknown)).toEqual(['table-past-ram']);
    expect(unknown.findings[0]!.message).toContain('0x8000000, which cannot be read');
  });

  for (const [maxPhyAddr, code] of [
    [52, 'table-past-ram'],
    [40, 'above-maxphyaddr'],
  ] as const) {
    it(`says so when the pointer is a virtual address these tables map (MAXPHYADDR ${maxPhyAddr}: ${code})`, () => {
      const { pt, mem, run } = setup('4-level', { maxPhyAddr });
      pt.mapRange(0xffff800000000000n, 0, RAM, 2 << 20, { nx: true }); // direct map of RAM
      const pdpt = 0x380000;
      mem.write64(pdpt, 0x8000000000000083n);
      mem.write64(pt.root + 8, (0xffff800000000000n + BigInt(pdpt)) | 3n); // PML4[1] = the PDPT's direct-map address
      const r = run();
      expect(codes(r)).toEqual([code]);
      expect(r.findings[0]).toMatchObject({ level: 'PML4', raw: 0xffff800000380003n, va: 0x8000000000n, severity: 'error' });
      expect(r.findings[0]!.hint).toBe(
        '0xffff800000380000 is a virtual address: these tables map it to physical 0x380000; ' +
          'store the physical address of the table, not its virtual address (entry 0x380003)',
      );
    });
  }
});

describe('lint: shifted-pointer', () => {
  it('finds the table an entry holding addr<<12 meant (4-level), instead of table-past-ram', () => {
    const { pt, mem, run } = setup('4-level');
    pt.map(0x10000n, 0x10000, 4096, { nx: true });
    const pd = 0x300000;
    mem.write64(pd, 0x8000000000400083n); // a PD with one 2 MiB page
    pt.setEntry(0x40000000n, 'PDPT', (BigInt(pd) << 12n) | 3n);
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]).toMatchObject({ severity: 'error', level: 'PDPT', raw: 0x300000003n, va: 0x40000000n, vaEnd: 0x7fffffffn });
    expect(r.findings[0]!.message).toContain('points at a PD at 0x300000000, which is not RAM; 0x300000000 >> 12 = 0x300000 holds a plausible PD');
    expect(r.findings[0]!.hint).toBe(
      'the entry holds addr<<12: a physical address was stored into a field that expects addr>>12 (a C bitfield); the entry should be 0x300003',
    );
  });

  it('uses readability for RAM when RAM is unknown', () => {
    const { pt, mem, ctx } = setup('4-level');
    pt.map(0x10000n, 0x10000, 4096, { nx: true });
    mem.write64(0x300000, 0x8000000000400083n);
    pt.setEntry(0x40000000n, 'PDPT', 0x300000003n); // 12 GiB: past the 64 MiB the memory holds
    const r = lint(mem, ctx());
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]!.message).toContain('points at a PD at 0x300000000, which cannot be read; 0x300000000 >> 12 = 0x300000 holds a plausible PD');
  });

  it('explains an address above MAXPHYADDR the same way', () => {
    const { pt, mem, run } = setup('4-level', { maxPhyAddr: 32 });
    pt.map(0x10000n, 0x10000, 4096, { nx: true });
    mem.write64(0x300000, 0x8000000000400083n);
    pt.setEntry(0x40000000n, 'PDPT', 0x300000003n);
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]!.message).toContain('which is above MAXPHYADDR=32');
  });

  it('recognises a table referenced elsewhere in the tree', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x40000000n, 0x400000, 2 << 20, { nx: true });
    const pd = tableOf(pt.getEntry(0x40000000n, 'PDPT'));
    pt.setEntry(0x80000000n, 'PDPT', (BigInt(pd) << 12n) | 3n);
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]!.message).toContain(`${hex(pd)} is a PD referenced elsewhere in these tables`);
  });

  it('finds the table an entry holding addr>>12 meant, behind an all-zero frame', () => {
    const { pt, mem, run } = setup('4-level');
    pt.map(0x10000n, 0x10000, 4096, { nx: true });
    mem.write64(0x1000000, 0x8000000000400083n); // the PD, at 16 MiB
    pt.setEntry(0x40000000n, 'PDPT', (0x1000000n >> 12n) | 3n); // 0x1003: "points at" frame 0x1000, all zeros
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]!.message).toContain('points at a PD at 0x1000, an all-zero frame; 0x1000 << 12 = 0x1000000 holds a plausible PD');
    expect(r.findings[0]!.hint).toBe(
      'the entry holds addr>>12: a page frame number was stored where the physical address belongs (shift it left by 12); the entry should be 0x1000003',
    );
  });

  it('leaves an empty table alone when no shifted address is a table', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x10000n, 0x10000, 4096, { nx: true });
    pt.setEntry(0x40000000n, 'PDPT', 0x350003n); // a fresh, empty PD
    const r = run();
    expect(r.findings).toEqual([]);
    expect(r.tables).toBe(5);
  });

  it('works on 32-bit entries', () => {
    const { pt, mem, run } = setup('32-bit');
    pt.map(0x1000n, 0x1000, 4096, { write: false });
    mem.write32(0x9000, 0x00200003); // a PT at 0x9000 with one page
    mem.write32(pt.root + 4, (0x9000 << 12) | 3); // PD[1] = 0x9000003: 144 MiB, outside RAM
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer']);
    expect(r.findings[0]).toMatchObject({ level: 'PD', raw: 0x9000003n, va: 0x400000n, vaEnd: 0x7fffffn });
    expect(r.findings[0]!.hint).toContain('the entry should be 0x9003');
  });

  it('flags a leaf whose page is addr<<12 of RAM as a warning, not the local APIC', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x10000n, 0x200000n << 12n, 4096, { nx: true }); // 8 GiB: the kernel's 0x200000, shifted
    pt.map(0x11000n, 0xfee00000, 4096, { nx: true, pcd: true }); // the local APIC: MMIO, fine
    const r = run();
    expect(codes(r)).toEqual(['shifted-pointer', 'page-past-ram']);
    expect(r.findings[0]).toMatchObject({ severity: 'warning', level: 'PT', va: 0x10000n, vaEnd: 0x10fffn });
    expect(r.findings[0]!.message).toContain('points at a 4 KiB page at 0x200000000, which is not RAM; 0x200000000 >> 12 = 0x200000 is RAM');
    expect(r.findings[0]!.hint).toContain('the entry should be 0x8000000000200003');
    expect(r.findings[1]).toMatchObject({ severity: 'info', va: 0x11000n });
  });
});

describe('lint: loops and recursive slots', () => {
  it('reports a recursive PML4 slot as info with its window, and does not walk it', () => {
    const { pt, mem, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    mem.write64(pt.root + 510 * 8, BigInt(pt.root) | 3n);
    const r = run();
    expect(codes(r)).toEqual(['recursive-slot']);
    expect(r.findings[0]).toMatchObject({
      severity: 'info',
      level: 'PML4',
      entryAddress: BigInt(pt.root + 510 * 8),
      va: 0xffffff0000000000n,
      vaEnd: 0xffffff7fffffffffn,
    });
    expect(r.findings[0]!.message).toContain('references the PML4 itself: a recursive (self-map) slot');
    expect(r.findings[0]!.message).toContain('the PML4 itself at 0xffffff7fbfdfe000');
    expect(r.tables).toBe(4);
  });

  it('reports a PDPT entry pointing back at the PML4 as a loop, not a recursive slot', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.setEntry(0x40000000n, 'PDPT', BigInt(pt.root) | 3n);
    const r = run();
    expect(codes(r)).toEqual(['table-loop']);
    expect(r.findings[0]).toMatchObject({ severity: 'error', level: 'PDPT', va: 0x40000000n, vaEnd: 0x7fffffffn });
    expect(r.findings[0]!.message).toContain(`points back at the PML4 at ${hex(pt.root)}, a table above it on the same path`);
    expect(r.findings[0]!.message).toContain('reads that PML4 as a PD');
    expect(r.findings[0]!.hint).toContain('only the top-level table may reference itself');
  });

  it('ends on a PD whose 512 entries all point at itself', () => {
    const { pt, mem, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    const pd = tableOf(pt.getEntry(0n, 'PDPT'));
    for (let i = 0; i < 512; i++) mem.write64(pd + i * 8, BigInt(pd) | 3n);
    const r = run();
    expect(of(r, 'table-loop')).toHaveLength(512);
    expect(r.findings.every((f) => f.code === 'table-loop' && f.level === 'PD')).toBe(true);
  });

  it('recognises the 32-bit recursive slot', () => {
    const { pt, mem, run } = setup('32-bit');
    pt.map(0x1000n, 0x1000, 4096, { write: false });
    mem.write32(pt.root + 1023 * 4, pt.root | 3);
    const r = run();
    expect(codes(r)).toEqual(['recursive-slot']);
    expect(r.findings[0]).toMatchObject({ level: 'PD', va: 0xffc00000n, vaEnd: 0xffffffffn });
    expect(r.findings[0]!.message).toContain('the PD itself at 0xfffff000');
  });

  it('recognises the 5-level recursive slot', () => {
    const { pt, mem, run } = setup('5-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    mem.write64(pt.root + 511 * 8, BigInt(pt.root) | 3n);
    const r = run();
    expect(codes(r)).toEqual(['recursive-slot']);
    expect(r.findings[0]).toMatchObject({ level: 'PML5', va: 0xffff000000000000n, vaEnd: 0xffffffffffffffffn });
    expect(r.findings[0]!.message).toContain('the PML5 itself at 0xfffffffffffff000');
  });

  it('recognises PAE self-map slots (PD entries pointing at the four PDs), not loops or shared tables', () => {
    const { pt, mem, run } = setup('PAE');
    for (let g = 0n; g < 4n; g++) pt.map(g << 30n, 0x10000n + g * 0x1000n, 4096, { nx: true });
    const pds = [0n, 1n, 2n, 3n].map((g) => tableOf(pt.getEntry(g << 30n, 'PDPT')));
    pds.forEach((pd, g) => mem.write64(pds[3]! + (508 + g) * 8, BigInt(pd) | 3n));
    const r = run();
    expect(codes(r)).toEqual(['recursive-slot', 'recursive-slot', 'recursive-slot', 'recursive-slot']);
    expect(r.findings.map((f) => f.va)).toEqual([0xff800000n, 0xffa00000n, 0xffc00000n, 0xffe00000n]);
    expect(r.findings[3]!.message).toContain(`references the PD of PDPT[3] at ${hex(pds[3]!)}`);
  });
});

describe('lint: shared-table', () => {
  it('reports a PT referenced by three PD entries once, and nothing for distinct tables', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.map(0x201000n, 0x1000, 4096, { nx: true });
    expect(codes(run())).toEqual([]);
    const shared = tableOf(pt.getEntry(0n, 'PD'));
    pt.linkTable(0x200000n, 'PD', shared);
    pt.linkTable(0x400000n, 'PD', shared);
    const pd0 = pt.entryAddress(0n, 'PD')!;
    const r = run();
    expect(codes(r)).toEqual(['shared-table']);
    expect(r.findings[0]).toMatchObject({ severity: 'warning', level: 'PD', entryAddress: BigInt(pd0), count: 3, va: 0n, vaEnd: 0x1fffffn });
    expect(r.findings[0]!.message).toBe(
      `PT ${hex(shared)} is referenced by PD entries at ${hex(pd0)}, ${hex(pd0 + 8)} and ${hex(pd0 + 16)}`,
    );
  });

  it('reports a table used at two levels as an error', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.map(0x8000000000n, 0x2000, 4096, { nx: true }); // PML4[1] -> its own PDPT
    const pdptX = tableOf(pt.getEntry(0n, 'PML4'));
    pt.linkTable(0x8040000000n, 'PDPT', pdptX); // PDPT[1] of PML4[1] -> PML4[0]'s PDPT, read as a PD
    const r = run();
    const shared = of(r, 'shared-table');
    expect(shared).toHaveLength(1);
    expect(shared[0]).toMatchObject({ severity: 'error', level: 'PML4', count: 2 });
    expect(shared[0]!.message).toBe(
      `table ${hex(pdptX)} is used at 2 levels: as a PDPT by PML4 entry at ${hex(pt.root)}; ` +
        `as a PD by PDPT entry at ${hex(pt.entryAddress(0x8040000000n, 'PDPT')!)}`,
    );
    expect(shared[0]!.hint).toContain('the PDPT index macro used at the PD level');
  });

  it('lints a tree where every entry shares one table per level in one pass per table', () => {
    const { pt, mem, run } = setup('4-level');
    const [pdpt, pd, ptab] = [0x180000, 0x181000, 0x182000];
    for (let i = 0; i < 512; i++) {
      mem.write64(pt.root + i * 8, BigInt(pdpt) | 7n);
      mem.write64(pdpt + i * 8, BigInt(pd) | 7n);
      mem.write64(pd + i * 8, BigInt(ptab) | 7n);
      mem.write64(ptab + i * 8, 0x8000000000000007n | BigInt(0x300000 + i * 4096));
    }
    const r = run();
    expect(r.tables).toBe(4);
    expect(r.entries).toBe(4 * 512);
    expect(r.findings.map((f) => [f.code, f.level, f.count])).toEqual([
      ['shared-table', 'PML4', 512],
      ['shared-table', 'PDPT', 512],
      ['shared-table', 'PD', 512],
      ['user-in-kernel-half', 'PT', 256 * 512 ** 3],
    ]);
    expect(r.findings[0]!.message).toContain('and 504 more');
    expect(r.findings[3]).toMatchObject({ va: 0xffff800000000000n, vaEnd: 0xffffffffffffffffn });
  });
});
