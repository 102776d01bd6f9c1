/**
 * The lint, entry by entry: reserved-bit codes in every mode they apply to, findings about CR3,
 * and the report itself (sorting, the findings cap, async parity, never reading non-RAM frames).
 */
import { describe, expect, it } from 'vitest';
import { PageTables, type TableFlags } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { lint, lintAsync, type LintCode, type LintOptions, type LintReport } from '../../src/paging/lint.js';
import { asyncMemory, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

const RAM = 64 << 20;
type Mode = '32-bit' | 'PAE' | '4-level' | '5-level';
interface Setup {
  nxe?: boolean;
  maxPhyAddr?: number;
  gbPages?: boolean;
  tables?: TableFlags;
}

/** Tables of `mode` in 64 MiB of RAM, and a lint of them with that RAM known. */
function setup(mode: Mode, o: Setup = {}) {
  const mem = new SparseMemory(RAM);
  const pt = new PageTables(mem, mode, new FrameAllocator(0x100000, 0x400000), o.tables);
  const longMode = mode === '4-level' || mode === '5-level';
  const ctx = (cr3 = pt.cr3): PagingContext =>
    pagingContext(
      {
        cr0: CR0.PE | CR0.PG | CR0.WP,
        cr3,
        cr4: (mode === '32-bit' ? CR4.PSE : CR4.PAE) | (mode === '5-level' ? CR4.LA57 : 0n),
        efer: (longMode ? EFER.LME | EFER.LMA : 0n) | (o.nxe === false ? 0n : EFER.NXE),
      },
      { maxPhyAddr: o.maxPhyAddr ?? 52, gbPages: o.gbPages ?? true },
    );
  const run = (opts: LintOptions = {}, mem2: PhysMemory = mem): LintReport =>
    lint(mem2, ctx(), { ram: [{ start: 0n, end: BigInt(RAM) }], ...opts });
  return { mem, pt, ctx, run };
}

const of = (r: LintReport, code: LintCode) => r.findings.filter((f) => f.code === code);
const codes = (r: LintReport) => r.findings.map((f) => f.code);

describe('lint: clean tables', () => {
  it('reports nothing for W^X kernel tables, and counts tables and entries', () => {
    const { pt, run } = setup('4-level');
    pt.mapRange(0xffffffff80000000n, 0x200000, 0x2000, 4096, { write: false });
    pt.mapRange(0xffffffff80002000n, 0x202000, 0x2000, 4096, { nx: true });
    const r = run({ rip: 0xffffffff80000010n });
    expect(r.findings).toEqual([]);
    expect(r.omitted).toBe(0);
    expect(r.tables).toBe(4); // PML4, PDPT, PD, PT
    expect(r.entries).toBe(7); // 1 + 1 + 1 + 4 leaves
  });

  it('is empty without paging', () => {
    const mem = new SparseMemory(RAM);
    const ctx = pagingContext({ cr0: CR0.PE, cr3: 0n, cr4: 0n, efer: 0n });
    expect(lint(mem, ctx)).toEqual({ findings: [], omitted: 0, tables: 0, entries: 0 });
  });
});

describe('lint: huge-misaligned', () => {
  it('flags a 2 MiB page with low address bits set, not an aligned one (4-level)', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x40000000n, 0x200000, 2 << 20, { nx: true }); // aligned: fine
    pt.setEntry(0x40200000n, 'PD', 0x8000000000280083n); // 0x280000: bit 19 set
    const r = run();
    const [f, ...rest] = of(r, 'huge-misaligned');
    expect(rest).toEqual([]);
    expect(f).toMatchObject({
      severity: 'error',
      level: 'PD',
      entryAddress: BigInt(pt.entryAddress(0x40200000n, 'PD')!),
      raw: 0x8000000000280083n,
      va: 0x40200000n,
      vaEnd: 0x403fffffn,
    });
    expect(f!.message).toContain('maps a 2 MiB page at 0x280000, which is not 2 MiB aligned');
    expect(f!.message).toContain('bits 20:13 (0x80000)');
    expect(f!.hint).toContain('map 0x200000 (entry 0x8000000000200083)');
    expect(codes(r)).toEqual(['huge-misaligned']);
  });

  it('flags a misaligned 1 GiB page in 5-level paging', () => {
    const { pt, run } = setup('5-level');
    pt.setEntry(0xff00000040000000n, 'PDPT', 0x8000000000100083n);
    pt.map(0xff00000080000000n, 0x40000000, 1 << 30, { nx: true });
    const r = run();
    expect(of(r, 'huge-misaligned')).toMatchObject([
      { level: 'PDPT', va: 0xff00000040000000n, vaEnd: 0xff0000007fffffffn, severity: 'error' },
    ]);
    expect(of(r, 'huge-misaligned')[0]!.message).toContain('bits 29:13 (0x100000)');
  });

  it('flags a misaligned 2 MiB page in PAE paging', () => {
    const { pt, run } = setup('PAE');
    pt.setEntry(0xc0000000n, 'PD', 0x8000000000302083n);
    pt.map(0xc0200000n, 0x400000, 2 << 20, { nx: true });
    const r = run();
    expect(of(r, 'huge-misaligned')).toMatchObject([{ level: 'PD', va: 0xc0000000n, vaEnd: 0xc01fffffn }]);
    expect(of(r, 'huge-misaligned')[0]!.message).toContain('0x302000');
  });

  it('flags a 32-bit 4 MiB page with reserved bit 21 set (a base that is not 4 MiB aligned)', () => {
    const { pt, mem, run } = setup('32-bit');
    pt.map(0x00400000n, 0x400000, 4 << 20); // aligned 4 MiB page: fine
    mem.write32(pt.root + 2 * 4, 0x00600083); // PD[2]: "0x600000 | PS | RW | P"
    const r = run();
    const [f, ...rest] = of(r, 'huge-misaligned');
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ level: 'PD', entryAddress: BigInt(pt.root + 8), raw: 0x600083n, va: 0x800000n, vaEnd: 0xbfffffn });
    expect(f!.message).toContain('reserved bits 0x200000');
    expect(f!.message).toContain('PSE-36');
    expect(f!.hint).toContain('if 0x600000 was meant, map 0x400000 (entry 0x400083)');
  });
});

describe('lint: PS where it cannot be', () => {
  it('flags PS in a PML4 entry, not in a PD entry (4-level)', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x200000n, 0x200000, 2 << 20, { nx: true }); // PD PS: a 2 MiB page, fine
    const pdpt = pt.getEntry(0n, 'PML4') & 0xfffff000n;
    pt.setEntry(0x8000000000n, 'PML4', pdpt | 0x83n);
    const r = run();
    expect(codes(r)).toEqual(['ps-in-top-level']);
    expect(r.findings[0]).toMatchObject({ level: 'PML4', va: 0x8000000000n, vaEnd: 0xffffffffffn, severity: 'error' });
    expect(r.findings[0]!.message).toContain('PML4[1]');
    expect(r.findings[0]!.hint).toContain('a PML4 entry always points at a PDPT');
  });

  it('flags PS in a PML5 entry', () => {
    const { pt, run } = setup('5-level');
    pt.map(0x200000n, 0x200000, 2 << 20, { nx: true });
    const pml4 = pt.getEntry(0n, 'PML5') & 0xfffff000n;
    pt.setEntry(0xff00000000000000n, 'PML5', pml4 | 0x83n);
    const r = run();
    expect(of(r, 'ps-in-top-level')).toMatchObject([{ level: 'PML5', va: 0xff00000000000000n, vaEnd: 0xff00ffffffffffffn }]);
    expect(of(r, 'ps-in-top-level')[0]!.hint).toContain('a PML5 entry always points at a PML4');
  });

  it('flags a 1 GiB page on a CPU without 1 GiB pages, and not on one with them', () => {
    const build = (gbPages: boolean) => {
      const s = setup('4-level', { gbPages });
      s.pt.map(0x40000000n, 0, 1 << 30, { nx: true });
      return s.run();
    };
    expect(codes(build(true))).toEqual([]);
    const r = build(false);
    expect(codes(r)).toEqual(['no-1g-pages']);
    expect(r.findings[0]).toMatchObject({ level: 'PDPT', va: 0x40000000n, vaEnd: 0x7fffffffn, severity: 'error' });
    expect(r.findings[0]!.message).toContain('no 1 GiB pages (CPUID pdpe1gb)');
  });
});

describe('lint: nx-reserved', () => {
  for (const mode of ['4-level', 'PAE'] as const) {
    it(`flags NX while EFER.NXE=0, and not with NXE=1 (${mode})`, () => {
      const build = (nxe: boolean) => {
        const s = setup(mode, { nxe });
        s.pt.map(0x1000n, 0x1000, 4096, { nx: true, write: false });
        return s.run();
      };
      expect(codes(build(true))).toEqual([]);
      const r = build(false);
      expect(codes(r)).toEqual(['nx-reserved']);
      expect(r.findings[0]).toMatchObject({ level: 'PT', va: 0x1000n, vaEnd: 0x1fffn, raw: 0x8000000000001001n });
      expect(r.findings[0]!.message).toContain('bit 63 (NX) while EFER.NXE=0');
      expect(r.findings[0]!.hint).toContain('EFER.NXE');
    });
  }
});

describe('lint: above-maxphyaddr', () => {
  it('flags address bits at or above MAXPHYADDR, and not below it', () => {
    const build = (maxPhyAddr: number) => {
      const s = setup('4-level', { maxPhyAddr });
      s.pt.map(0x1000n, 0x1000001000n, 4096, { nx: true }); // bit 36
      return s.run();
    };
    const wide = build(52);
    expect(of(wide, 'above-maxphyaddr')).toEqual([]);
    expect(codes(wide)).toEqual(['page-past-ram']); // outside the 64 MiB of RAM, but addressable
    const r = build(36);
    expect(codes(r)).toEqual(['above-maxphyaddr']);
    expect(r.findings[0]).toMatchObject({ level: 'PT', va: 0x1000n, severity: 'error' });
    expect(r.findings[0]!.message).toContain('address bits 51:36 set (0x1000000000)');
    expect(r.findings[0]!.message).toContain('36-bit physical addresses');
  });

  it('flags CR3 with bits above MAXPHYADDR and still lints the tables', () => {
    const { pt, ctx, mem } = setup('4-level', { maxPhyAddr: 36 });
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    const r = lint(mem, ctx(pt.cr3 | (1n << 40n)), { ram: [{ start: 0n, end: BigInt(RAM) }] });
    expect(codes(r)).toEqual(['above-maxphyaddr']);
    expect(r.findings[0]).toMatchObject({ level: 'PML4', raw: 0x10000100000n, entryAddress: 0x100000n, va: 0n, vaEnd: 0xffffffffffffffffn });
    expect(r.findings[0]!.message).toContain('CR3 0x10000100000 has bits at or above MAXPHYADDR=36 set (0x10000000000)');
    expect(r.tables).toBe(4);
  });
});

describe('lint: reserved-bits', () => {
  it('flags PAE PDPTE bits that long-mode builders set (R/W), not a P-only PDPTE', () => {
    const { pt, run } = setup('PAE');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    expect(codes(run())).toEqual([]);
    pt.setEntry(0x40000000n, 'PDPT', pt.getEntry(0n, 'PDPT') | 2n);
    const r = run();
    expect(codes(r)).toEqual(['reserved-bits']);
    expect(r.findings[0]).toMatchObject({ level: 'PDPT', va: 0x40000000n, vaEnd: 0x7fffffffn, severity: 'error' });
    expect(r.findings[0]!.message).toContain('bits 2:1 and 8:6, reserved in PAE PDPTEs');
    expect(r.findings[0]!.message).toContain('#GP(0)');
    expect(r.findings[0]!.hint).toContain('only P, PWT, PCD and the address');
  });

  it('flags PAE bits 62:52 in a PD entry', () => {
    const { pt, run } = setup('PAE');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.setEntry(0x200000n, 'PD', pt.getEntry(0n, 'PD') | (1n << 52n));
    const r = run();
    expect(of(r, 'reserved-bits')).toMatchObject([{ level: 'PD', va: 0x200000n, vaEnd: 0x3fffffn }]);
    expect(of(r, 'reserved-bits')[0]!.message).toContain('bits 62:52, reserved in PAE paging (0x10000000000000)');
  });
});

describe('lint: pae-pdpte-accessed', () => {
  it('warns about bit 5 in a PAE PDPTE (set by QEMU\'s TCG, rejected by real CPUs), and walks on below it', () => {
    const { pt, run } = setup('PAE');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.map(0x40000000n, 0x2000, 4096, { nx: true });
    expect(codes(run())).toEqual([]);
    pt.setEntry(0x40000000n, 'PDPT', pt.getEntry(0x40000000n, 'PDPT') | 0x20n);
    pt.setEntry(0x40000000n, 'PT', pt.getEntry(0x40000000n, 'PT') | (1n << 52n)); // below it: still linted
    const r = run();
    expect(codes(r).sort()).toEqual(['pae-pdpte-accessed', 'reserved-bits']);
    expect(of(r, 'pae-pdpte-accessed')).toMatchObject([{ level: 'PDPT', severity: 'warning', va: 0x40000000n, vaEnd: 0x7fffffffn }]);
    expect(of(r, 'pae-pdpte-accessed')[0]!.message).toContain("QEMU's TCG sets it");
    expect(of(r, 'pae-pdpte-accessed')[0]!.message).toContain('#GP(0)');
  });

  it('says nothing of bit 5 outside PAE PDPTEs (A in a PD entry, A in a 4-level PDPTE)', () => {
    const pae = setup('PAE');
    pae.pt.map(0x1000n, 0x1000, 4096, { nx: true, accessed: true });
    pae.pt.setEntry(0n, 'PD', pae.pt.getEntry(0n, 'PD') | 0x20n);
    expect(codes(pae.run())).toEqual([]);
    const long = setup('4-level');
    long.pt.map(0x1000n, 0x1000, 4096, { nx: true });
    long.pt.setEntry(0n, 'PDPT', long.pt.getEntry(0n, 'PDPT') | 0x20n);
    expect(codes(long.run())).toEqual([]);
  });
});

describe('lint: CR3 outside RAM', () => {
  it('reports a top table that is not RAM, and one that cannot be read when RAM is unknown', () => {
    const { ctx, mem } = setup('4-level');
    const outside = lint(mem, ctx(0x8000000n), { ram: [{ start: 0n, end: BigInt(RAM) }] });
    expect(outside).toMatchObject({ tables: 0, entries: 0 });
    expect(outside.findings).toMatchObject([{ code: 'table-past-ram', level: 'PML4', entryAddress: 0x8000000n, raw: 0x8000000n }]);
    expect(outside.findings[0]!.message).toContain('CR3 0x8000000 points at the PML4 at 0x8000000, which is not RAM');
    const unknown = lint(mem, ctx(0x8000000n));
    expect(unknown.findings[0]!.message).toContain('which cannot be read');
  });
});

describe('lint: the report', () => {
  it('sorts by VA then severity, and caps the findings with a count of the rest', () => {
    const { pt, run } = setup('4-level', { nxe: false });
    for (let i = 0n; i < 20n; i++) pt.map(0x10000n + i * 0x1000n, 0x10000n + i * 0x1000n, 4096, { nx: true });
    pt.map(0x200000n, 0x200000, 4096); // W+X, but without NXE nothing can be NX: not reported
    pt.setEntry(0x40000000n, 'PD', 0x280083n); // huge-misaligned at a higher VA
    const all = run();
    expect(all.findings).toHaveLength(21);
    expect(all.findings.slice(0, 20).every((f) => f.code === 'nx-reserved')).toBe(true);
    expect(all.findings.map((f) => f.va)).toEqual([...all.findings.map((f) => f.va)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const capped = run({ maxFindings: 5 });
    expect(capped.findings).toEqual(all.findings.slice(0, 5));
    expect(capped.omitted).toBe(16);
  });

  it('puts errors before warnings at the same VA, upper levels first', () => {
    const { pt, run } = setup('4-level', { maxPhyAddr: 40, tables: { nx: true } });
    pt.setEntry(0n, 'PT', (1n << 45n) | 0x8000000000000003n); // address bit 45: above MAXPHYADDR
    pt.map(0x1000n, 0x1000, 4096); // NX clear at its own level, under NX upper entries
    const r = run();
    expect(r.findings.map((f) => [f.va, f.severity, f.code, f.level])).toEqual([
      [0n, 'error', 'above-maxphyaddr', 'PT'],
      [0n, 'warning', 'nx-above-code', 'PML4'],
      [0n, 'warning', 'nx-above-code', 'PDPT'],
      [0n, 'warning', 'nx-above-code', 'PD'],
    ]);
  });

  it('gives the same report through an async memory', async () => {
    const { pt, ctx, mem, run } = setup('4-level');
    pt.mapRange(0xffffffff80000000n, 0x200000, 0x4000, 4096);
    pt.setEntry(0x40000000n, 'PD', 0x280083n);
    const sync = run();
    expect(sync.findings.length).toBeGreaterThan(1);
    expect(await lintAsync(asyncMemory(mem), ctx(), { ram: [{ start: 0n, end: BigInt(RAM) }] })).toEqual(sync);
  });

  it('never reads a frame outside the known RAM (MMIO reads can have side effects)', () => {
    const { pt, mem, run } = setup('4-level');
    pt.map(0x1000n, 0x1000, 4096, { nx: true });
    pt.setEntry(0x200000n, 'PD', 0xfd000003n); // "a PT" in the framebuffer
    pt.setEntry(0x40000000n, 'PDPT', 0xfee00003n); // "a PD" at the local APIC
    const asked: number[] = [];
    const spy: PhysMemory = { frame: (pa) => (asked.push(pa), mem.frame(pa)) };
    const r = run({}, spy);
    expect(of(r, 'table-past-ram').map((f) => f.message.match(/at 0x[0-9a-f]+,/)?.[0])).toEqual(['at 0xfd000000,', 'at 0xfee00000,']);
    expect(asked.filter((pa) => pa >= RAM)).toEqual([]);
    expect(asked.length).toBeGreaterThan(0);
  });
});
