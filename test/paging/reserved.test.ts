/**
 * Every reserved-bit rule of SDM vol. 3 chapter 4, one test each: the walk stops at the entry with
 * reason 'reserved-bit', P=1 and RSVD=1 in the error code (#PF), and the step shows the reserved mask.
 * Where QEMU differs from the SDM the test says so; pagewalk follows the SDM.
 */
import { describe, expect, it } from 'vitest';
import { CR4, EFER } from '../../src/paging/registers.js';
import type { Access } from '../../src/paging/rights.js';
import { walk } from '../../src/paging/walk.js';
import { ctxOf, machine } from './coreFixtures.js';

const VA = 0x7f80_0040_1000n;
const USER_WRITE: Access = { kind: 'write', user: true };

/** A 4-level machine with VA mapped to 0x5000 (user, writable), and a context with `features`. */
function longMachine(mode: '4-level' | '5-level' = '4-level') {
  const m = machine(mode);
  m.pt.map(VA, 0x5000, 4096, { user: true });
  return m;
}

describe('reserved bits in 4- and 5-level paging', () => {
  it('address bits at or above MAXPHYADDR in a table reference (PDE, MAXPHYADDR=40)', () => {
    const { mem, pt } = longMachine();
    pt.setEntry(VA, 'PD', pt.getEntry(VA, 'PD') | (1n << 40n));
    const r = walk(mem, ctxOf('4-level', pt.cr3, { features: { maxPhyAddr: 40 } }), VA);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PD', raw: 0x100_0001_3007n, reserved: 0x100_0000_0000n });
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', vector: 14, errorCode: 0x9 });
    expect(r.fault?.explanation).toBe(
      'PD[2] at 0x12010 (0x10000013007) has reserved bits set: address bits 51:40 at or above MAXPHYADDR=40 (0x10000000000)',
    );
    // With 52 physical-address bits the same entry is valid and points past RAM.
    expect(walk(mem, ctxOf('4-level', pt.cr3), VA).fault?.reason).toBe('outside-memory');
  });

  it('bit 63 when EFER.NXE=0 (and I/D stays clear for a fetch without SMEP)', () => {
    const { mem, pt } = machine('4-level');
    pt.map(VA, 0x5000, 4096, { nx: true });
    const ctx = ctxOf('4-level', pt.cr3, { clear: { efer: EFER.NXE } });
    const r = walk(mem, ctx, VA, { kind: 'exec', user: false });
    expect(r.steps.at(-1)).toMatchObject({ level: 'PT', flags: ['P', 'RW'], reserved: 0x8000_0000_0000_0000n });
    expect(r.fault).toMatchObject({ level: 'PT', reason: 'reserved-bit', errorCode: 0x9 });
    expect(r.fault?.explanation).toContain('bit 63 (XD) while EFER.NXE=0');
    // With SMEP the fetch reports I/D.
    expect(walk(mem, ctxOf('4-level', pt.cr3, { clear: { efer: EFER.NXE }, set: { cr4: CR4.SMEP } }), VA, { kind: 'exec', user: false }).fault?.errorCode).toBe(0x19);
  });

  it('PS in a PML4E', () => {
    const { mem, pt } = longMachine();
    pt.setEntry(VA, 'PML4', pt.getEntry(VA, 'PML4') | 0x80n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, USER_WRITE);
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ level: 'PML4', flags: ['P', 'RW', 'US', 'PS'], reserved: 0x80n, leaf: false });
    expect(r.fault).toMatchObject({ level: 'PML4', reason: 'reserved-bit', vector: 14, errorCode: 0xf });
    expect(r.fault?.explanation).toContain('PS set in a PML4 entry, there are no pages at the PML4 level (0x80)');
  });

  it('PS in a PML5E', () => {
    const { mem, pt } = longMachine('5-level');
    pt.setEntry(VA, 'PML5', pt.getEntry(VA, 'PML5') | 0x80n);
    const r = walk(mem, ctxOf('5-level', pt.cr3), VA);
    expect(r.steps[0]).toMatchObject({ level: 'PML5', reserved: 0x80n });
    expect(r.fault).toMatchObject({ level: 'PML5', reason: 'reserved-bit', errorCode: 0x9 });
  });

  it('PS in a PDPTE on a CPU without 1 GiB pages (QEMU TCG maps a 1 GiB page regardless of pdpe1gb)', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x4000_0000n, 0x4000_0000, 0x4000_0000);
    const r = walk(mem, ctxOf('4-level', pt.cr3, { features: { gbPages: false } }), 0x4000_1000n);
    expect(r.steps[1]).toMatchObject({ level: 'PDPT', raw: 0x4000_0083n, leaf: false, reserved: 0x80n });
    expect(r.fault).toMatchObject({ level: 'PDPT', reason: 'reserved-bit', errorCode: 0x9 });
    expect(r.fault?.explanation).toContain('PS set in a PDPT entry, but this CPU has no 1 GiB pages (pdpe1gb) (0x80)');
    expect(walk(mem, ctxOf('4-level', pt.cr3), 0x4000_1000n).translation?.pa).toBe(0x4000_1000n);
  });

  it('low address bits 20:13 of a 2 MiB page; bit 12 (PAT) is allowed', () => {
    const { mem, pt } = machine('4-level');
    pt.setEntry(0x20_0000n, 'PD', 0x30_0083n); // a full 2 MiB-unaligned address stored in the PDE
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x20_0000n);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PD', reserved: 0x10_0000n });
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', errorCode: 0x9 });
    expect(r.fault?.explanation).toContain('low address bits of a 2 MiB page (its base must be 2 MiB aligned) (0x100000)');
    pt.setEntry(0x20_0000n, 'PD', 0x20_3083n);
    expect(walk(mem, ctxOf('4-level', pt.cr3), 0x20_0000n).steps.at(-1)?.reserved).toBe(0x2000n);
    pt.setEntry(0x20_0000n, 'PD', 0x20_1083n);
    expect(walk(mem, ctxOf('4-level', pt.cr3), 0x20_0000n).translation?.pa).toBe(0x20_0000n);
  });

  it('low address bits 29:13 of a 1 GiB page', () => {
    const { mem, pt } = machine('4-level');
    pt.setEntry(0x4000_0000n, 'PDPT', 0x4020_0083n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x4000_0000n, { kind: 'exec', user: false });
    expect(r.steps.at(-1)).toMatchObject({ level: 'PDPT', reserved: 0x20_0000n });
    expect(r.fault).toMatchObject({ level: 'PDPT', reason: 'reserved-bit', errorCode: 0x19 });
    expect(r.fault?.explanation).toContain('low address bits of a 1 GiB page');
  });

  it('are not checked in a non-present entry', () => {
    const { mem, pt } = longMachine();
    pt.setEntry(VA, 'PD', 0xffff_ffff_ffff_fffen);
    const r = walk(mem, ctxOf('4-level', pt.cr3, { features: { maxPhyAddr: 36 } }), VA);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PD', present: false, reserved: 0n });
    expect(r.fault).toMatchObject({ reason: 'not-present', errorCode: 0 });
  });

  it('stop the walk at the highest level that has them', () => {
    const { mem, pt } = longMachine();
    pt.setEntry(VA, 'PT', pt.getEntry(VA, 'PT') | (1n << 44n));
    pt.setEntry(VA, 'PDPT', pt.getEntry(VA, 'PDPT') | (1n << 45n));
    const r = walk(mem, ctxOf('4-level', pt.cr3, { features: { maxPhyAddr: 40 } }), VA);
    expect(r.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT']);
    expect(r.fault?.level).toBe('PDPT');
  });
});

describe('reserved bits in PAE paging', () => {
  function paeMachine() {
    const m = machine('PAE');
    m.pt.map(0x4000_1000n, 0x5000, 4096, { user: true });
    return m;
  }

  // The CPU loads the four PDPTEs with CR3 and checks them then: a reserved bit makes the
  // mov to CR3 raise #GP(0). QEMU instead checks a PDPTE at each walk and raises #PF with RSVD,
  // and it does not check bits 2:1 and 8:5 at all; pagewalk follows the SDM.
  it('PDPTE bits 2:1 (no R/W or U/S there): #GP(0)', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PDPT', pt.getEntry(0x4000_1000n, 'PDPT') | 0x6n);
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n);
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ level: 'PDPT', raw: 0x11007n, flags: ['P'], reserved: 0x6n });
    expect(r.fault).toMatchObject({ level: 'PDPT', reason: 'reserved-bit', vector: 13, errorCode: 0 });
    expect(r.fault?.explanation).toBe(
      'PDPT[1] at 0x10008 (0x11007) has reserved bits set: bits 2:1 and 8:6, reserved in PAE PDPTEs (no R/W, U/S, D, PS or G there) (0x6); ' +
        "PAE PDPTEs are loaded with CR3, so the mov to CR3 itself raises #GP(0) (on a real CPU or KVM: QEMU's TCG does not check these bits and runs on)",
    );
  });

  it('PDPTE bits 8:6 (D, PS and bit 8)', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PDPT', pt.getEntry(0x4000_1000n, 'PDPT') | 0x1e0n);
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n);
    expect(r.steps[0]).toMatchObject({ reserved: 0x1c0n });
    expect(r.fault).toMatchObject({ level: 'PDPT', reason: 'reserved-bit', vector: 13, errorCode: 0 });
  });

  it('PDPTE bit 5 (A) alone walks on: QEMU\'s TCG sets it in every PDPTE it walks (the lint warns instead)', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PDPT', pt.getEntry(0x4000_1000n, 'PDPT') | 0x20n);
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n);
    expect(r.steps[0]).toMatchObject({ reserved: 0n });
    expect(r.fault).toBeNull();
  });

  it('PDPTE bit 63, even with EFER.NXE=1', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PDPT', pt.getEntry(0x4000_1000n, 'PDPT') | (1n << 63n));
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n);
    expect(r.steps[0]).toMatchObject({ reserved: 0x8000_0000_0000_0000n });
    expect(r.fault).toMatchObject({ vector: 13, errorCode: 0 });
    expect(r.fault?.explanation).toContain('bit 63: XD is reserved in PAE PDPTEs');
  });

  it('bits 62:52 of a PDE or PTE (ignored in 4-level paging, reserved in PAE)', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PT', pt.getEntry(0x4000_1000n, 'PT') | (1n << 52n) | (1n << 62n));
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n, USER_WRITE);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PT', reserved: 0x4010_0000_0000_0000n });
    expect(r.fault).toMatchObject({ level: 'PT', reason: 'reserved-bit', vector: 14, errorCode: 0xf });
    expect(r.fault?.explanation).toContain('bits 62:52, reserved in PAE paging (0x4010000000000000)');

    const long = machine('4-level');
    long.pt.map(0x4000_1000n, 0x5000, 4096, { user: true, extra: (1n << 52n) | (1n << 58n) });
    expect(walk(long.mem, ctxOf('4-level', long.pt.cr3), 0x4000_1000n).fault).toBeNull();
  });

  it('names every kind of reserved bit that is set, in one explanation', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PDPT', 0x8010_0010_0001_1047n);
    const r = walk(mem, ctxOf('PAE', pt.cr3, { features: { maxPhyAddr: 36 } }), 0x4000_1000n);
    expect(r.steps[0]?.reserved).toBe(0x8010_0010_0000_0046n); // bit 6 (0x40): reserved; bit 5 would not be
    expect(r.fault?.explanation).toBe(
      'PDPT[1] at 0x10008 (0x8010001000011047) has reserved bits set: address bits 51:36 at or above MAXPHYADDR=36 (0x1000000000); ' +
        'bit 63: XD is reserved in PAE PDPTEs (0x8000000000000000); ' +
        'bits 2:1 and 8:6, reserved in PAE PDPTEs (no R/W, U/S, D, PS or G there) (0x46); ' +
        'bits 62:52, reserved in PAE paging (0x10000000000000); ' +
        "PAE PDPTEs are loaded with CR3, so the mov to CR3 itself raises #GP(0) (on a real CPU or KVM: QEMU's TCG does not check these bits and runs on)",
    );
  });

  it('address bits at or above MAXPHYADDR in a PDE (MAXPHYADDR=36)', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PD', pt.getEntry(0x4000_1000n, 'PD') | (1n << 36n));
    const r = walk(mem, ctxOf('PAE', pt.cr3, { features: { maxPhyAddr: 36 } }), 0x4000_1000n);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PD', reserved: 0x10_0000_0000n });
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', vector: 14, errorCode: 0x9 });
  });

  it('bit 63 of a PDE when EFER.NXE=0', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x4000_1000n, 'PD', pt.getEntry(0x4000_1000n, 'PD') | (1n << 63n));
    const r = walk(mem, ctxOf('PAE', pt.cr3, { clear: { efer: EFER.NXE } }), 0x4000_1000n);
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', errorCode: 0x9 });
    expect(r.steps.at(-1)?.reserved).toBe(0x8000_0000_0000_0000n);
    expect(walk(mem, ctxOf('PAE', pt.cr3), 0x4000_1000n).translation?.rights.execute).toBe(false);
  });

  it('low address bits 20:13 of a PAE 2 MiB page', () => {
    const { mem, pt } = paeMachine();
    pt.setEntry(0x20_0000n, 'PD', 0x20_4083n);
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x20_0000n);
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', errorCode: 0x9 });
    expect(r.steps.at(-1)?.reserved).toBe(0x4000n);
  });
});

describe('reserved bits in 32-bit paging', () => {
  it('bit 21 of a 4 MiB PDE', () => {
    const { mem, pt } = machine('32-bit');
    pt.setEntry(0x40_0000n, 'PD', 0x60_0083n);
    const r = walk(mem, ctxOf('32-bit', pt.cr3), 0x40_0000n, USER_WRITE);
    expect(r.steps).toEqual([
      expect.objectContaining({ level: 'PD', index: 1, raw: 0x60_0083n, reserved: 0x20_0000n, leaf: true }),
    ]);
    expect(r.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', vector: 14, errorCode: 0xf });
    expect(r.fault?.explanation).toContain('bit 21 of a 4 MiB page entry');
  });

  it('PSE-36 address bits at or above MAXPHYADDR (MAXPHYADDR=36: bits 20:17)', () => {
    const { mem, pt } = machine('32-bit');
    pt.setEntry(0x40_0000n, 'PD', 0x40_0000n | (1n << 17n) | 0x83n);
    const narrow = walk(mem, ctxOf('32-bit', pt.cr3, { features: { maxPhyAddr: 36 } }), 0x40_0000n);
    expect(narrow.steps[0]?.reserved).toBe(0x2_0000n);
    expect(narrow.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', errorCode: 0x9 });
    expect(narrow.fault?.explanation).toContain('PSE-36 address bits 39:36 of a 4 MiB page, at or above MAXPHYADDR=36 (0x20000)');
    // With MAXPHYADDR >= 40 bit 17 is physical-address bit 36.
    expect(walk(mem, ctxOf('32-bit', pt.cr3), 0x40_0000n).translation?.pa).toBe(0x10_0040_0000n);
  });

  it('none in a 4 KiB PTE or a PDE that references a table', () => {
    const { mem, pt } = machine('32-bit');
    pt.map(0x1000n, 0xffff_f000, 4096, { extra: 0xe00n });
    const r = walk(mem, ctxOf('32-bit', pt.cr3, { features: { maxPhyAddr: 32 } }), 0x1000n);
    expect(r.fault).toBeNull();
    expect(r.translation?.pa).toBe(0xffff_f000n);
  });
});
