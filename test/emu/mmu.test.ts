/**
 * The MMU against hand-built tables (src/image's PageTables): every permission rule and every
 * reserved-bit rule with the exact #PF error code, 5-level paging, and the debugger path. The
 * access is described the way the CPU describes it (ACC_* kind plus user / implicit / AC flags).
 */
import { describe, expect, it } from 'vitest';
import { PageTables, type MapFlags } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { ACC_AC, ACC_EXEC, ACC_IMPLICIT, ACC_READ, ACC_USER, ACC_WRITE, CpuFault, Mmu, PhysicalMemory, cpuFeatures, type CpuFeatures } from '../../src/emu/index.js';

const VA = 0x0000_7f00_0040_3000n;
const PA = 0x5000;

interface Setup {
  mode?: '4-level' | '5-level';
  map?: (pt: PageTables) => void;
  cr0?: bigint;
  cr4?: bigint;
  efer?: bigint;
  features?: Partial<CpuFeatures>;
  pkru?: number;
}

/** An MMU over tables built by `s.map` (default: VA -> PA, 4 KiB, writable supervisor page under user-writable tables). */
function mmuFor(s: Setup = {}): { mmu: Mmu; pt: PageTables; mem: PhysicalMemory } {
  const sparse = new SparseMemory(1 << 24);
  const pt = new PageTables(sparse, s.mode ?? '4-level', new FrameAllocator(0x100000, 0x200000));
  (s.map ?? ((p) => p.map(VA, PA, 4096)))(pt);
  const mem = new PhysicalMemory(1 << 24);
  mem.load(sparse.writtenFrames().map(([pa, bytes]) => ({ pa, bytes })));
  const mmu = new Mmu(mem, cpuFeatures(s.features));
  const la57 = s.mode === '5-level' ? 1n << 12n : 0n;
  mmu.setControl(s.cr0 ?? 0x80010011n, pt.cr3, (s.cr4 ?? 0x20n) | la57, s.efer ?? 0xd00n);
  mmu.pkru = s.pkru ?? 0;
  return { mmu, pt, mem };
}

/** The error code of the #PF the access raises, or 'ok:<pa>' when it translates. */
function access(mmu: Mmu, va: bigint, acc: number): string {
  try {
    return `ok:0x${mmu.translate(va, acc).toString(16)}`;
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    expect(e.vector).toBe(14);
    expect(e.address).toBe(va);
    return `#PF 0x${e.errorCode.toString(16)}`;
  }
}

const map = (flags: MapFlags, size = 4096, va = VA, pa = PA) => (pt: PageTables) => pt.map(va, pa, size, flags);

describe('not-present entries', () => {
  for (const level of ['PML4', 'PDPT', 'PD', 'PT'] as const) {
    it(`at the ${level}: P=0 in the error code, W/U/I-D as the access`, () => {
      const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096); pt.setEntry(VA, level, 0n); } });
      expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x0');
      expect(access(mmu, VA, ACC_WRITE)).toBe('#PF 0x2');
      expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('#PF 0x4');
      expect(access(mmu, VA, ACC_EXEC)).toBe('#PF 0x10');
    });
  }

  it('I/D only with NXE or SMEP', () => {
    const nothing = (pt: PageTables) => void pt;
    expect(access(mmuFor({ map: nothing, efer: 0x500n }).mmu, VA, ACC_EXEC)).toBe('#PF 0x0');
    expect(access(mmuFor({ map: nothing, efer: 0x500n, cr4: 0x20n | (1n << 20n) }).mmu, VA, ACC_EXEC)).toBe('#PF 0x10');
  });
});

describe('rights', () => {
  it('R/W is ANDed over the levels: a read-only PDPTE makes the page read-only', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096, { user: true }); pt.setEntry(VA, 'PDPT', pt.getEntry(VA, 'PDPT') & ~2n); } });
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('ok:0x5000');
    expect(access(mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0x7');
    expect(access(mmu, VA, ACC_WRITE)).toBe('#PF 0x3');
  });

  it('CR0.WP=0 lets supervisor writes through read-only pages, not user ones', () => {
    const { mmu } = mmuFor({ map: map({ write: false, user: true }), cr0: 0x80000011n });
    expect(access(mmu, VA, ACC_WRITE)).toBe('ok:0x5000');
    expect(access(mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0x7');
  });

  it('U/S is ANDed: a supervisor PDE hides a user PTE from user mode', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096, { user: true }); pt.setEntry(VA, 'PD', pt.getEntry(VA, 'PD') & ~4n); } });
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('#PF 0x5');
    expect(access(mmu, VA, ACC_READ)).toBe('ok:0x5000');
  });

  it('XD is ORed: XD in the PML4E forbids fetches (with NXE), not reads', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096); pt.setEntry(VA, 'PML4', pt.getEntry(VA, 'PML4') | (1n << 63n)); } });
    expect(access(mmu, VA, ACC_EXEC)).toBe('#PF 0x11');
    expect(access(mmu, VA, ACC_READ)).toBe('ok:0x5000');
  });

  it('SMEP: no supervisor fetch from a user page', () => {
    const smep = 0x20n | (1n << 20n);
    expect(access(mmuFor({ map: map({ user: true }), cr4: smep }).mmu, VA, ACC_EXEC)).toBe('#PF 0x11');
    expect(access(mmuFor({ map: map({ user: true }) }).mmu, VA, ACC_EXEC)).toBe('ok:0x5000');
    expect(access(mmuFor({ map: map({ user: true }), cr4: smep }).mmu, VA, ACC_EXEC | ACC_USER)).toBe('ok:0x5000');
  });

  it('SMAP: no supervisor data access to a user page unless EFLAGS.AC, and never an implicit one', () => {
    const { mmu } = mmuFor({ map: map({ user: true }), cr4: 0x20n | (1n << 21n) });
    expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x1');
    expect(access(mmu, VA, ACC_WRITE)).toBe('#PF 0x3');
    expect(access(mmu, VA, ACC_READ | ACC_AC)).toBe('ok:0x5000');
    expect(access(mmu, VA, ACC_WRITE | ACC_AC)).toBe('ok:0x5000');
    expect(access(mmu, VA, ACC_READ | ACC_AC | ACC_IMPLICIT)).toBe('#PF 0x1');
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('ok:0x5000');
  });

  it('user access to a supervisor page faults with P|U', () => {
    const { mmu } = mmuFor();
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('#PF 0x5');
    expect(access(mmu, VA, ACC_EXEC | ACC_USER)).toBe('#PF 0x15');
  });
});

describe('protection keys (CR4.PKE, PKRU)', () => {
  const pke = 0x20n | (1n << 22n);
  const user3 = map({ user: true, pkey: 3 });
  it('AD forbids data reads and writes of user pages, by user and supervisor alike, and sets PK', () => {
    const { mmu } = mmuFor({ map: user3, cr4: pke, pkru: 1 << 6 });
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('#PF 0x25');
    expect(access(mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0x27');
    expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x21');
    expect(access(mmu, VA, ACC_EXEC | ACC_USER)).toBe('ok:0x5000');
  });

  it('WD forbids user writes, and supervisor writes only with CR0.WP', () => {
    const wd = 1 << 7;
    const { mmu } = mmuFor({ map: user3, cr4: pke, pkru: wd });
    expect(access(mmu, VA, ACC_READ | ACC_USER)).toBe('ok:0x5000');
    expect(access(mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0x27');
    expect(access(mmu, VA, ACC_WRITE)).toBe('#PF 0x23');
    expect(access(mmuFor({ map: user3, cr4: pke, pkru: wd, cr0: 0x80000011n }).mmu, VA, ACC_WRITE)).toBe('ok:0x5000');
  });

  it('PK is set with the other violation when both apply; keys do nothing without CR4.PKE or on supervisor pages', () => {
    expect(access(mmuFor({ map: map({ user: true, write: false, pkey: 3 }), cr4: pke, pkru: 1 << 7 }).mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0x27');
    expect(access(mmuFor({ map: user3, pkru: 1 << 6 }).mmu, VA, ACC_READ | ACC_USER)).toBe('ok:0x5000');
    expect(access(mmuFor({ map: map({ pkey: 3 }), cr4: pke, pkru: 1 << 6 }).mmu, VA, ACC_READ)).toBe('ok:0x5000');
  });
});

describe('reserved bits (RSVD implies P)', () => {
  it('an address bit at or above MAXPHYADDR', () => {
    const bit40 = map({ extra: 1n << 40n });
    expect(access(mmuFor({ map: bit40 }).mmu, VA, ACC_READ)).toBe('#PF 0x9');
    expect(access(mmuFor({ map: bit40 }).mmu, VA, ACC_WRITE | ACC_USER)).toBe('#PF 0xf');
    expect(access(mmuFor({ map: bit40 }).mmu, VA, ACC_EXEC)).toBe('#PF 0x19');
    expect(access(mmuFor({ map: bit40, features: { maxPhyAddr: 52 } }).mmu, VA, ACC_READ)).toBe('ok:0x10000005000');
  });

  it('XD without EFER.NXE, at any level', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096); pt.setEntry(VA, 'PD', pt.getEntry(VA, 'PD') | (1n << 63n)); }, efer: 0x500n });
    expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x9');
    expect(access(mmu, VA, ACC_EXEC)).toBe('#PF 0x9');
  });

  it('PS in a PML4E', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096); pt.setEntry(VA, 'PML4', pt.getEntry(VA, 'PML4') | 0x80n); } });
    expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x9');
  });

  it('1 GiB pages only with pdpe1gb, and with bits 29:13 clear', () => {
    const gb = map({}, 1 << 30, 0x7f0000000000n, 0x40000000);
    const va = 0x7f0000000000n + 0x12345n;
    expect(access(mmuFor({ map: gb }).mmu, va, ACC_READ)).toBe('ok:0x40012345');
    expect(access(mmuFor({ map: gb, features: { pdpe1gb: false } }).mmu, va, ACC_READ)).toBe('#PF 0x9');
    expect(access(mmuFor({ map: map({ extra: 1n << 13n }, 1 << 30, 0x7f0000000000n, 0x40000000) }).mmu, va, ACC_READ)).toBe('#PF 0x9');
  });

  it('2 MiB pages with bits 20:13 clear (bit 12 is PAT)', () => {
    const va = 0x7f0000200000n + 0x1234n;
    expect(access(mmuFor({ map: map({ pat: true }, 1 << 21, 0x7f0000200000n, 0x600000) }).mmu, va, ACC_READ)).toBe('ok:0x601234');
    expect(access(mmuFor({ map: map({ extra: 1n << 20n }, 1 << 21, 0x7f0000200000n, 0x600000) }).mmu, va, ACC_READ)).toBe('#PF 0x9');
  });

  it('a not-present entry is never checked for reserved bits', () => {
    const { mmu } = mmuFor({ map: (pt) => { pt.map(VA, PA, 4096); pt.setEntry(VA, 'PT', 0xfff0000000000000n); } });
    expect(access(mmu, VA, ACC_READ)).toBe('#PF 0x0');
  });
});

describe('5-level paging', () => {
  const va57 = 0x00ff_8000_0000_1000n;
  it('walks five levels; PS in a PML5E is reserved; a missing PML5E is not present', () => {
    const m = mmuFor({ mode: '5-level', map: map({}, 4096, va57, 0x9000), features: { la57: true } });
    expect(m.mmu.linearBits).toBe(57);
    expect(access(m.mmu, va57, ACC_READ)).toBe('ok:0x9000');
    expect(access(m.mmu, va57 ^ (1n << 50n), ACC_READ)).toBe('#PF 0x0');
    const ps = mmuFor({ mode: '5-level', map: (pt) => { pt.map(va57, 0x9000, 4096); pt.setEntry(va57, 'PML5', pt.getEntry(va57, 'PML5') | 0x80n); }, features: { la57: true } });
    expect(access(ps.mmu, va57, ACC_READ)).toBe('#PF 0x9');
  });
});

describe('the debugger path', () => {
  it('translates without faulting, ignores rights, reports why it cannot', () => {
    const { mmu } = mmuFor({ map: map({ write: false }) });
    const t = mmu.debugTranslate(VA + 0x10n);
    expect(t.ok && t.pa).toBe(0x5010);
    expect(mmu.debugWrite(VA, new Uint8Array([1, 2])).ok).toBe(true);
    expect(mmu.debugTranslate(VA + 0x1000n)).toEqual({ ok: false, reason: 'not-present', level: 'PT' });
    expect(mmu.debugTranslate(0x0000_8000_0000_0000n)).toEqual({ ok: false, reason: 'non-canonical', level: null });
    const r = mmu.debugRead(VA + 0xff8n, 16);
    expect(r).toMatchObject({ ok: false, va: VA + 0x1000n, reason: 'not-present' });
  });
});
