import { describe, expect, it } from 'vitest';
import { levelIndex, levelRules } from '../../src/paging/levels.js';
import {
  PagingConfigError,
  cr3ReservedBits,
  cr3Root,
  pagingContext,
  pagingMode,
  vaBitsOf,
  withCr3,
} from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

const PG = CR0.PG | CR0.PE;

describe('pagingMode', () => {
  it('selects the mode from CR0.PG, CR4.PAE, EFER.LMA/LME and CR4.LA57', () => {
    expect(pagingMode({ cr0: CR0.PE, cr4: CR4.PAE, efer: EFER.LME })).toBe('none');
    expect(pagingMode({ cr0: PG, cr4: 0n, efer: 0n })).toBe('32-bit');
    expect(pagingMode({ cr0: PG, cr4: CR4.PSE, efer: EFER.NXE })).toBe('32-bit');
    expect(pagingMode({ cr0: PG, cr4: CR4.PAE, efer: EFER.NXE })).toBe('PAE');
    expect(pagingMode({ cr0: PG, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA })).toBe('4-level');
    expect(pagingMode({ cr0: PG, cr4: CR4.PAE | CR4.LA57, efer: EFER.LME | EFER.LMA })).toBe('5-level');
    // LA57 means nothing outside long mode.
    expect(pagingMode({ cr0: PG, cr4: CR4.PAE | CR4.LA57, efer: 0n })).toBe('PAE');
  });

  it('infers LMA from LME with PG and PAE (a target that reports EFER without LMA)', () => {
    expect(pagingMode({ cr0: PG, cr4: CR4.PAE, efer: EFER.LME })).toBe('4-level');
  });

  it('gives the linear-address width of each mode', () => {
    expect(['none', '32-bit', 'PAE', '4-level', '5-level'].map((m) => vaBitsOf(m as never))).toEqual([32, 32, 32, 48, 57]);
  });
});

describe('cr3Root', () => {
  it('takes bits 31:12 in 32-bit paging (PWT/PCD and the rest are not address)', () => {
    expect(cr3Root('32-bit', 0x1234_5fffn)).toBe(0x1234_5000);
  });

  it('takes bits 31:5 in PAE paging (the PDPT is 32-byte aligned)', () => {
    expect(cr3Root('PAE', 0x1234_5fe8n)).toBe(0x1234_5fe0);
    expect(cr3Root('PAE', 0x1_0000_3020n)).toBe(0x3020);
  });

  it('takes bits MAXPHYADDR-1:12 in long mode: no PCID, no PWT/PCD, no no-flush bit', () => {
    expect(cr3Root('4-level', 0x8000_0000_0001_2abcn)).toBe(0x12000);
    expect(cr3Root('5-level', 0x0000_0010_0001_2018n, 36)).toBe(0x12000);
    expect(cr3Root('4-level', 0x0000_0010_0001_2018n, 52)).toBe(0x10_0001_2000);
  });
});

describe('cr3ReservedBits', () => {
  it('allows bit 63 (no-flush) only with CR4.PCIDE=1', () => {
    expect(cr3ReservedBits('4-level', 0x8000_0000_0001_2001n, 52, true)).toBe(0n);
    expect(cr3ReservedBits('4-level', 0x8000_0000_0001_2000n, 52, false)).toBe(0x8000_0000_0000_0000n);
  });

  it('reports bits at or above MAXPHYADDR in long mode', () => {
    expect(cr3ReservedBits('4-level', 0x0000_0010_0001_2000n, 36, false)).toBe(0x10_0000_0000n);
    expect(cr3ReservedBits('5-level', 0x8000_0100_0001_2000n, 40, true)).toBe(0x100_0000_0000n);
    expect(cr3ReservedBits('4-level', 0x0000_000f_ffff_f000n, 36, false)).toBe(0n);
  });

  it('reports nothing outside long mode (the mov writes bits 31:0 only)', () => {
    expect(cr3ReservedBits('PAE', 0xffff_ffff_0000_1000n, 36, false)).toBe(0n);
    expect(cr3ReservedBits('32-bit', 0x8000_0000_0000_1000n, 36, false)).toBe(0n);
  });
});

describe('pagingContext', () => {
  const longRegs = { cr0: PG | CR0.WP, cr3: 0x5_2000n, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA | EFER.NXE };

  it('derives the flags once', () => {
    const ctx = pagingContext(
      { ...longRegs, cr4: CR4.PAE | CR4.SMEP | CR4.SMAP | CR4.PKE | CR4.PKS | CR4.PCIDE | CR4.PSE },
      { maxPhyAddr: 39, gbPages: false, pkru: 0x5555_5554, pkrs: 0xc },
    );
    expect(ctx).toMatchObject({
      mode: '4-level',
      root: 0x52000,
      cr3Reserved: 0n,
      vaBits: 48,
      wp: true,
      nxe: true,
      pse: true,
      smep: true,
      smap: true,
      pke: true,
      pks: true,
      pcide: true,
      maxPhyAddr: 39,
      gbPages: false,
      pkru: 0x5555_5554,
      pkrs: 0xc,
    });
    expect(ctx.levels.map((l) => l.name)).toEqual(['PML4', 'PDPT', 'PD', 'PT']);
    expect(ctx.levels[1]!.ps).toBe('reserved');
  });

  it('defaults to MAXPHYADDR 52, 1 GiB pages and open protection keys', () => {
    const ctx = pagingContext(longRegs);
    expect(ctx).toMatchObject({ maxPhyAddr: 52, gbPages: true, pkru: 0, pkrs: 0, pke: false, pks: false });
    expect(ctx.levels[1]!.ps).toBe('page');
  });

  it('ignores EFER.NXE in 32-bit paging, and PKE/PKS/PCIDE outside long mode', () => {
    const flat = pagingContext({
      cr0: PG,
      cr3: 0x1000n,
      cr4: CR4.PSE | CR4.PKE | CR4.PKS | CR4.PCIDE,
      efer: EFER.NXE,
    });
    expect(flat).toMatchObject({ mode: '32-bit', nxe: false, pke: false, pks: false, pcide: false, vaBits: 32 });
    const pae = pagingContext({ cr0: PG, cr3: 0x1000n, cr4: CR4.PAE | CR4.PKE, efer: EFER.NXE });
    expect(pae).toMatchObject({ mode: 'PAE', nxe: true, pke: false });
  });

  it('strips the no-flush bit from the root with PCIDE, and reports it as reserved without', () => {
    const withPcid = pagingContext({ ...longRegs, cr3: 0x8000_0000_0005_2123n, cr4: CR4.PAE | CR4.PCIDE });
    expect(withPcid).toMatchObject({ root: 0x52000, cr3Reserved: 0n });
    const without = pagingContext({ ...longRegs, cr3: 0x8000_0000_0005_2000n });
    expect(without).toMatchObject({ root: 0x52000, cr3Reserved: 0x8000_0000_0000_0000n });
  });

  it('throws PagingConfigError E_MAXPHYADDR for a MAXPHYADDR no CPU has', () => {
    for (const bad of [31, 53, 36.5]) {
      expect(() => pagingContext(longRegs, { maxPhyAddr: bad })).toThrow(PagingConfigError);
    }
    try {
      pagingContext(longRegs, { maxPhyAddr: 60 });
    } catch (e) {
      expect((e as PagingConfigError).code).toBe('E_MAXPHYADDR');
      expect((e as Error).message).toBe('MAXPHYADDR must be a whole number from 32 to 52, not 60');
    }
    expect.assertions(5);
  });

  it('has no levels without paging', () => {
    expect(pagingContext({ ...longRegs, cr0: CR0.PE }).levels).toEqual([]);
  });
});

describe('withCr3', () => {
  it('recomputes the root and the CR3 reserved bits, keeping the rest', () => {
    const ctx = pagingContext(
      { cr0: PG, cr3: 0x1000n, cr4: CR4.PAE, efer: EFER.LMA | EFER.LME | EFER.NXE },
      { maxPhyAddr: 36 },
    );
    const other = withCr3(ctx, 0x0000_0010_0000_3000n);
    expect(other).toMatchObject({ cr3: 0x10_0000_3000n, root: 0x3000, cr3Reserved: 0x10_0000_0000n, maxPhyAddr: 36 });
    expect(other.levels).toBe(ctx.levels);
    expect(withCr3(ctx, 0x4000n)).toMatchObject({ root: 0x4000, cr3Reserved: 0n });
  });
});

describe('levelRules', () => {
  const opts = { maxPhyAddr: 52, nxe: true, pse: true, gbPages: true };

  it('lays out the levels of each mode: shift, index bits, entry size, what PS means', () => {
    const shape = (mode: Parameters<typeof levelRules>[0]): string[] =>
      levelRules(mode, opts).map((l) => `${l.name}:${l.shift}/${l.indexBits}/${l.entrySize}/${l.ps}`);
    expect(shape('none')).toEqual([]);
    expect(shape('32-bit')).toEqual(['PD:22/10/4/page', 'PT:12/10/4/pat']);
    expect(shape('PAE')).toEqual(['PDPT:30/2/8/reserved', 'PD:21/9/8/page', 'PT:12/9/8/pat']);
    expect(shape('4-level')).toEqual(['PML4:39/9/8/reserved', 'PDPT:30/9/8/page', 'PD:21/9/8/page', 'PT:12/9/8/pat']);
    expect(shape('5-level')).toEqual([
      'PML5:48/9/8/reserved',
      'PML4:39/9/8/reserved',
      'PDPT:30/9/8/page',
      'PD:21/9/8/page',
      'PT:12/9/8/pat',
    ]);
    expect(levelRules('32-bit', { ...opts, pse: false })[0]!.ps).toBe('ignored');
  });

  it('computes each level index from the linear address', () => {
    const [pml5, pml4, pdpt, pd, pt] = levelRules('5-level', opts);
    const va = 0xff12_3456_789a_bcden;
    expect([pml5!, pml4!, pdpt!, pd!, pt!].map((l) => levelIndex(l, va))).toEqual([0x112, 0x68, 0x159, 0x1c4, 0x1ab]);
    const [paePdpt] = levelRules('PAE', opts);
    expect(levelIndex(paePdpt!, 0xc000_0000n)).toBe(3);
    const [pd32] = levelRules('32-bit', opts);
    expect(levelIndex(pd32!, 0xffc0_0000n)).toBe(1023);
  });

  it('builds the 4-level reserved masks: PS in PML4E, 29:13 and 20:13 in huge pages, 51:M, bit 63 without NXE', () => {
    const [pml4, pdpt, pd, pt] = levelRules('4-level', { ...opts, maxPhyAddr: 40, nxe: false });
    expect([pml4!.rsvdLo, pml4!.rsvdHi]).toEqual([0x80, 0x800f_ff00]);
    expect([pdpt!.rsvdLo, pdpt!.rsvdHi, pdpt!.hugeRsvdLo, pdpt!.hugeRsvdHi]).toEqual([0, 0x800f_ff00, 0x3fff_e000, 0x800f_ff00]);
    expect([pd!.rsvdLo, pd!.hugeRsvdLo]).toEqual([0, 0x001f_e000]);
    expect([pt!.rsvdLo, pt!.rsvdHi]).toEqual([0, 0x800f_ff00]);
    expect([pml4!.nx, pt!.nx, pt!.pk]).toEqual([false, false, true]);
  });

  it('makes PS reserved in a PDPTE without 1 GiB pages', () => {
    const pdpt = levelRules('4-level', { ...opts, gbPages: false })[1]!;
    expect([pdpt.ps, pdpt.rsvdLo, pdpt.rsvdHi]).toEqual(['reserved', 0x80, 0]);
  });

  it('builds the PAE masks: PDPTE bits 2:1, 8:6, 63:M; bits 62:M elsewhere; no rights, XD or keys in PDPTEs', () => {
    const [pdpt, pd, pt] = levelRules('PAE', { ...opts, maxPhyAddr: 36 });
    expect([pdpt!.rsvdLo, pdpt!.rsvdHi, pdpt!.rights, pdpt!.nx]).toEqual([0x1c6, 0xffff_fff0, false, false]);
    expect([pd!.rsvdLo, pd!.rsvdHi, pd!.hugeRsvdLo, pd!.hugeRsvdHi]).toEqual([0, 0x7fff_fff0, 0x001f_e000, 0x7fff_fff0]);
    expect([pt!.rsvdHi, pt!.nx, pt!.pk]).toEqual([0x7fff_fff0, true, false]);
  });

  it('builds the 32-bit 4 MiB rule: bit 21 reserved, 20:13 PSE-36 address bits up to MAXPHYADDR (capped at 40)', () => {
    expect(levelRules('32-bit', opts)[0]).toMatchObject({ hugeRsvdLo: 0x20_0000, pse36Bits: 8, leafLoMask: 0xffc0_0000 });
    expect(levelRules('32-bit', { ...opts, maxPhyAddr: 36 })[0]).toMatchObject({ hugeRsvdLo: 0x3e_0000, pse36Bits: 4 });
    expect(levelRules('32-bit', { ...opts, maxPhyAddr: 32 })[0]).toMatchObject({ hugeRsvdLo: 0x3f_e000, pse36Bits: 0 });
    expect(levelRules('32-bit', opts)[1]).toMatchObject({ rsvdLo: 0, rsvdHi: 0, nx: false, pk: false, addrHiMask: 0 });
  });
});
