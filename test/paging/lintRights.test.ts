/**
 * The lint's grouped findings about rights and targets: W+X kernel pages and user pages in the
 * kernel half (coalesced VA ranges, replayed through shared tables), NX above code (one per
 * upper-level entry), and leaves mapping non-RAM memory.
 */
import { describe, expect, it } from 'vitest';
import { PageTables, type TableFlags } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { lint, type LintCode, type LintOptions, type LintReport } from '../../src/paging/lint.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

const RAM = 64 << 20;
const K = 0xffffffff80000000n;
type Mode = '32-bit' | 'PAE' | '4-level' | '5-level';

/** Tables of `mode` in 64 MiB of RAM, and a lint of them with that RAM known. */
function setup(mode: Mode, o: { nxe?: boolean; smap?: boolean; smep?: boolean; tables?: TableFlags } = {}) {
  const mem = new SparseMemory(RAM);
  const pt = new PageTables(mem, mode, new FrameAllocator(0x100000, 0x200000), o.tables);
  const longMode = mode === '4-level' || mode === '5-level';
  const ctx = (): PagingContext =>
    pagingContext({
      cr0: CR0.PE | CR0.PG | CR0.WP,
      cr3: pt.cr3,
      cr4:
        (mode === '32-bit' ? CR4.PSE : CR4.PAE) |
        (mode === '5-level' ? CR4.LA57 : 0n) |
        (o.smap ? CR4.SMAP : 0n) |
        (o.smep ? CR4.SMEP : 0n),
      efer: (longMode ? EFER.LME | EFER.LMA : 0n) | (o.nxe === false ? 0n : EFER.NXE),
    });
  const run = (opts: LintOptions = {}): LintReport => lint(mem, ctx(), { ram: [{ start: 0n, end: BigInt(RAM) }], ...opts });
  return { mem, pt, ctx, run };
}

const of = (r: LintReport, code: LintCode) => r.findings.filter((f) => f.code === code);
const codes = (r: LintReport) => r.findings.map((f) => f.code);

describe('lint: wx-kernel', () => {
  it('reports supervisor W+X pages as coalesced ranges, not user, read-only or NX pages', () => {
    const { pt, run } = setup('4-level');
    pt.mapRange(K, 0x200000, 0x4000, 4096); // W+X
    pt.map(K + 0x4000n, 0x204000, 4096, { write: false }); // text
    pt.map(K + 0x5000n, 0x205000, 4096, { nx: true }); // data
    pt.mapRange(K + 0x6000n, 0x206000, 0x2000, 4096); // W+X again
    pt.mapRange(0x400000n, 0x400000, 0x3000, 4096, { user: true }); // user W+X: not the kernel's problem
    const r = run();
    expect(codes(r)).toEqual(['wx-kernel', 'wx-kernel']);
    expect(r.findings[0]).toMatchObject({
      severity: 'warning',
      level: 'PT',
      entryAddress: BigInt(pt.entryAddress(K, 'PT')!),
      raw: 0x200003n,
      va: K,
      vaEnd: K + 0x3fffn,
      count: 4,
    });
    expect(r.findings[0]!.message).toBe(
      '0xffffffff80000000..0xffffffff80003fff is supervisor, writable and executable (W+X): 4 leaf entries, R/W=1 and NX clear at every level',
    );
    expect(r.findings[0]!.hint).toContain('W^X');
    expect(r.findings[1]).toMatchObject({ va: K + 0x6000n, vaEnd: K + 0x7fffn, count: 2 });
  });

  it('coalesces across tables and page sizes', () => {
    const { pt, run } = setup('4-level');
    pt.map(0x1ff000n, 0x1ff000, 4096); // last page of the first PT
    pt.map(0x200000n, 0x200000, 2 << 20); // a 2 MiB page in the PD
    pt.map(0x400000n, 0x400000, 4096); // first page of another PT
    const r = run();
    expect(of(r, 'wx-kernel')).toMatchObject([{ va: 0x1ff000n, vaEnd: 0x400fffn, count: 3, level: 'PT' }]);
  });

  it('is reported in PAE paging, and not where nothing can be NX (NXE=0, 32-bit)', () => {
    const pae = setup('PAE');
    pae.pt.mapRange(0xc0000000n, 0x200000, 0x2000, 4096);
    expect(of(pae.run(), 'wx-kernel')).toMatchObject([{ va: 0xc0000000n, vaEnd: 0xc0001fffn, count: 2 }]);
    const noNxe = setup('4-level', { nxe: false });
    noNxe.pt.mapRange(K, 0x200000, 0x2000, 4096);
    expect(noNxe.run().findings).toEqual([]);
    const legacy = setup('32-bit');
    legacy.pt.mapRange(0xc0000000n, 0x200000, 0x2000, 4096);
    expect(legacy.run().findings).toEqual([]);
  });
});

describe('lint: user-in-kernel-half', () => {
  it('reports user pages in the upper half (4-level), not in the lower half', () => {
    const { pt, run } = setup('4-level');
    pt.mapRange(0x400000n, 0x400000, 0x2000, 4096, { user: true, nx: true });
    pt.mapRange(0xffff800000000000n, 0, 0x2000, 4096, { user: true, nx: true });
    pt.map(0xffff800000003000n, 0x3000, 4096, { user: true, nx: true });
    const r = run();
    expect(codes(r)).toEqual(['user-in-kernel-half', 'user-in-kernel-half']);
    expect(r.findings[0]).toMatchObject({ severity: 'warning', level: 'PT', va: 0xffff800000000000n, vaEnd: 0xffff800000001fffn, count: 2 });
    expect(r.findings[0]!.message).toBe(
      '0xffff800000000000..0xffff800000001fff is user-accessible (U/S=1 at every level) in the kernel half (linear-address bit 47 set): 2 leaf entries',
    );
    expect(r.findings[1]).toMatchObject({ va: 0xffff800000003000n, vaEnd: 0xffff800000003fffn, count: 1 });
  });

  it('is an error with SMAP or SMEP on', () => {
    const { pt, run } = setup('4-level', { smap: true, smep: true });
    pt.map(K, 0x200000, 4096, { user: true, write: false });
    const r = run();
    expect(r.findings).toMatchObject([{ code: 'user-in-kernel-half', severity: 'error' }]);
    expect(r.findings[0]!.message).toContain("with CR4.SMAP=1 the kernel's own data accesses there fault");
    expect(r.findings[0]!.message).toContain('with CR4.SMEP=1 the kernel cannot execute there');
  });

  it('does not report a user leaf below a supervisor upper-level entry', () => {
    const { pt, run } = setup('4-level', { tables: { user: false } });
    pt.map(K, 0x200000, 4096, { user: true, write: false });
    expect(run().findings).toEqual([]);
  });

  it('uses bit 56 in 5-level paging', () => {
    const { pt, run } = setup('5-level');
    pt.map(0xff00000000000000n, 0x1000, 4096, { user: true, nx: true });
    pt.map(0x00ff000000000000n, 0x1000, 4096, { user: true, nx: true }); // lower half, bit 56 clear
    const r = run();
    expect(r.findings).toMatchObject([{ code: 'user-in-kernel-half', va: 0xff00000000000000n, vaEnd: 0xff00000000000fffn }]);
    expect(r.findings[0]!.message).toContain('linear-address bit 56 set');
  });

  it('takes 0x80000000 and up as the kernel half in 32-bit and PAE paging', () => {
    for (const mode of ['32-bit', 'PAE'] as const) {
      const { pt, run } = setup(mode);
      pt.map(0x40000000n, 0x1000, 4096, { user: true, write: false });
      pt.map(0xc0000000n, 0x1000, 4096, { user: true, write: false });
      const r = run();
      expect(r.findings).toMatchObject([{ code: 'user-in-kernel-half', va: 0xc0000000n, vaEnd: 0xc0000fffn }]);
      expect(r.findings[0]!.message).toContain(`at or above 0x80000000, the split pagewalk assumes for ${mode} paging`);
    }
  });
});

describe('lint: through shared tables', () => {
  it('reports a PDPT shared by the identity map and the higher half at both addresses', () => {
    const { pt, run } = setup('4-level');
    pt.map(0n, 0, 2 << 20, { user: true, nx: true }); // user data, identity-mapped
    pt.map(0x40000000n, 0x200000, 2 << 20); // supervisor W+X
    const pdpt = Number(pt.getEntry(0n, 'PML4') & 0xfffff000n);
    pt.linkTable(0xffff800000000000n, 'PML4', pdpt);
    const r = run();
    expect(r.findings.map((f) => [f.code, f.va, f.vaEnd])).toEqual([
      ['shared-table', 0n, 0x7fffffffffn],
      ['wx-kernel', 0x40000000n, 0x401fffffn],
      ['user-in-kernel-half', 0xffff800000000000n, 0xffff8000001fffffn],
      ['wx-kernel', 0xffff800040000000n, 0xffff8000401fffffn],
    ]);
    expect(r.findings[3]!.entryAddress).toBe(r.findings[1]!.entryAddress);
  });
});

describe('lint: nx-above-code', () => {
  it('reports each NX upper-level entry above leaves whose own NX is clear, as an error where RIP is', () => {
    const { pt, run } = setup('4-level', { tables: { nx: true } });
    pt.mapRange(K, 0x200000, 0x3000, 4096, { write: false });
    const warn = of(run(), 'nx-above-code');
    expect(warn.map((f) => [f.level, f.severity, f.count, f.va, f.vaEnd])).toEqual([
      ['PML4', 'warning', 3, 0xffffff8000000000n, 0xffffffffffffffffn],
      ['PDPT', 'warning', 3, 0xffffffff80000000n, 0xffffffffbfffffffn],
      ['PD', 'warning', 3, 0xffffffff80000000n, 0xffffffff801fffffn],
    ]);
    expect(warn[0]!.message).toContain(
      'sets NX, so nothing in 0xffffff8000000000..0xffffffffffffffff can execute (NX at any level forbids fetches), yet 3 leaf entries below it leave NX clear',
    );
    expect(warn[0]!.hint).toContain('clear NX in upper-level entries');
    const err = of(run({ rip: K + 0x1234n }), 'nx-above-code');
    expect(err.map((f) => f.severity)).toEqual(['error', 'error', 'error']);
    expect(err[2]!.message).toContain('RIP 0xffffffff80001234 is in this range: the next instruction fetch faults');
  });

  it('does not report NX above leaves that are all NX themselves', () => {
    const { pt, run } = setup('4-level', { tables: { nx: true } });
    pt.mapRange(K, 0x200000, 0x3000, 4096, { nx: true, write: false });
    expect(run({ rip: K }).findings).toEqual([]);
  });

  it('counts only the leaves meant to be executable, under the one NX entry', () => {
    const { pt, run } = setup('4-level');
    pt.mapRange(0x1000n, 0x1000, 0x2000, 4096, { write: false });
    pt.map(0x3000n, 0x3000, 4096, { nx: true });
    pt.map(K, 0x200000, 4096, { write: false });
    pt.setEntry(0n, 'PML4', pt.getEntry(0n, 'PML4') | (1n << 63n));
    const r = run({ rip: K });
    expect(r.findings).toMatchObject([{ code: 'nx-above-code', level: 'PML4', severity: 'warning', count: 2, va: 0n, vaEnd: 0x7fffffffffn }]);
    expect(r.findings[0]!.message).toContain('yet 2 leaf entries below it leave NX clear');
  });

  it('reports a PAE PD entry with NX above its page table', () => {
    const { pt, run } = setup('PAE', { tables: { nx: true } }); // PDPTEs carry no NX; PD entries do
    pt.map(0xc0000000n, 0x200000, 4096, { write: false });
    const r = run();
    expect(r.findings).toMatchObject([{ code: 'nx-above-code', level: 'PD', count: 1, va: 0xc0000000n, vaEnd: 0xc01fffffn }]);
    expect(r.findings[0]!.message).toContain('yet 1 leaf entry below it leaves NX clear');
  });
});

describe('lint: page-past-ram', () => {
  it('reports a framebuffer once per contiguous run, as info, and nothing when RAM is unknown', () => {
    const { pt, mem, ctx, run } = setup('4-level');
    pt.mapRange(0xffff8000fd000000n, 0xfd000000, 0x10000, 4096, { nx: true, pcd: true });
    pt.map(0xffff8000fd010000n, 0xfe000000, 4096, { nx: true, pcd: true }); // VA continues, PA does not
    const r = run();
    expect(r.findings.map((f) => [f.code, f.severity, f.va, f.vaEnd, f.count])).toEqual([
      ['page-past-ram', 'info', 0xffff8000fd000000n, 0xffff8000fd00ffffn, 16],
      ['page-past-ram', 'info', 0xffff8000fd010000n, 0xffff8000fd010fffn, 1],
    ]);
    expect(r.findings[0]!.message).toContain('16 PT entries from PT[0]');
    expect(r.findings[0]!.message).toContain('to physical 0xfd000000..0xfd00ffff, which is not RAM: right for MMIO');
    expect(lint(mem, ctx()).findings).toEqual([]);
  });

  it('does not report a page that is partly RAM', () => {
    const { pt, run } = setup('4-level');
    pt.map(0n, 0, 2 << 20, { nx: true });
    expect(run({ ram: [{ start: 0n, end: 0x9fc00n }, { start: 0x100000n, end: 0x200000n }] }).findings).toEqual([]);
  });

  it('explains PSE-36 address bits in a 32-bit 4 MiB page that is not RAM', () => {
    const { pt, mem, run } = setup('32-bit');
    mem.write32(pt.root + 4, 0x00402083); // meant: 0x402000; read by the CPU as 0x100400000 (bit 13 = PA bit 32)
    const r = run();
    expect(r.findings).toMatchObject([{ code: 'page-past-ram', level: 'PD', va: 0x400000n, vaEnd: 0x7fffffn }]);
    expect(r.findings[0]!.message).toContain('to physical 0x100400000..0x1007fffff');
    expect(r.findings[0]!.hint).toContain('if 0x402000 was meant, a 4 MiB page');
  });
});
