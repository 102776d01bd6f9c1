/**
 * The walk, mode by mode: golden traces built with the PageTables builder, huge pages at every level
 * that has them, CR3 (PCID, PWT/PCD, no-flush, MAXPHYADDR), canonical checks, memory it cannot read,
 * the frames it asks for, and that it never writes.
 */
import { describe, expect, it } from 'vitest';
import { AddressError } from '../../src/paging/addr.js';
import { asyncMemory, runAsync, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4 } from '../../src/paging/registers.js';
import { walk, walkTask, type WalkResult } from '../../src/paging/walk.js';
import { ctxOf, machine, runRecording } from './coreFixtures.js';

const KERNEL_VA = 0xffff_ffff_8000_2d9dn;

/** The 4-level tables of the golden walk: PML4 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000. */
function kernelMachine(): ReturnType<typeof machine> {
  const m = machine('4-level');
  m.pt.map(0xffff_ffff_8000_2000n, 0xbff3_4000, 4096);
  return m;
}

describe('4-level paging', () => {
  it('walks a 4 KiB kernel page: the golden trace', () => {
    const { mem, pt } = kernelMachine();
    const r = walk(mem, ctxOf('4-level', pt.cr3), KERNEL_VA);
    expect(r).toEqual({
      va: KERNEL_VA,
      mode: '4-level',
      cr3: 0x10000n,
      access: { kind: 'read', user: false },
      steps: [
        { level: 'PML4', index: 511, entryAddress: 0x10ff8n, raw: 0x11007n, present: true, flags: ['P', 'RW', 'US'], reserved: 0n, next: 0x11000n, leaf: false, pageSize: null, protectionKey: null },
        { level: 'PDPT', index: 510, entryAddress: 0x11ff0n, raw: 0x12007n, present: true, flags: ['P', 'RW', 'US'], reserved: 0n, next: 0x12000n, leaf: false, pageSize: null, protectionKey: null },
        { level: 'PD', index: 0, entryAddress: 0x12000n, raw: 0x13007n, present: true, flags: ['P', 'RW', 'US'], reserved: 0n, next: 0x13000n, leaf: false, pageSize: null, protectionKey: null },
        { level: 'PT', index: 2, entryAddress: 0x13010n, raw: 0xbff3_4003n, present: true, flags: ['P', 'RW'], reserved: 0n, next: 0xbff3_4000n, leaf: true, pageSize: 4096, protectionKey: 0 },
      ],
      translation: {
        pa: 0xbff3_4d9dn,
        pageBase: 0xbff3_4000n,
        pageSize: 4096,
        rights: { write: true, user: false, execute: true },
        global: false,
        protectionKey: 0,
        leafLevel: 'PT',
      },
      fault: null,
    } satisfies WalkResult);
  });

  it('stops at the first not-present entry with P=0 in the error code', () => {
    const { mem, pt } = kernelMachine();
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0xffff_ffff_c000_0000n, { kind: 'write', user: true });
    expect(r.steps.map((s) => [s.level, s.index, s.raw])).toEqual([
      ['PML4', 511, 0x11007n],
      ['PDPT', 511, 0n],
    ]);
    expect(r.steps[1]!.next).toBeNull();
    expect(r.translation).toBeNull();
    expect(r.fault).toEqual({
      level: 'PDPT',
      reason: 'not-present',
      vector: 14,
      errorCode: 0x6,
      denials: [],
      explanation: 'PDPT[511] at 0x11ff8 is not present (P=0): 0xffffffffc0000000 is not mapped',
    });
  });

  it('reports I/D for a fetch from a not-present page with NXE=1 (0x10, not an NX fault)', () => {
    const { mem, pt } = kernelMachine();
    expect(walk(mem, ctxOf('4-level', pt.cr3), 0x40_0000n, { kind: 'exec', user: false }).fault?.errorCode).toBe(0x10);
  });

  it('maps a 2 MiB page in a PD entry', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0xffff_8000_0020_0000n, 0x4060_0000, 0x20_0000, { global: true });
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0xffff_8000_002a_bcden);
    expect(r.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT', 'PD']);
    expect(r.steps[2]).toMatchObject({ raw: 0x4060_0183n, leaf: true, pageSize: 0x20_0000, flags: ['P', 'RW', 'PS', 'G'] });
    expect(r.translation).toMatchObject({ pa: 0x406a_bcden, pageBase: 0x4060_0000n, pageSize: 0x20_0000, global: true, leafLevel: 'PD' });
    expect(r.fault).toBeNull();
  });

  it('maps a 1 GiB page in a PDPT entry', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0xffff_8880_0000_0000n, 0x1_c000_0000n, 0x4000_0000);
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0xffff_8880_1234_5678n);
    expect(r.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT']);
    expect(r.steps[1]).toMatchObject({ raw: 0x1_c000_0083n, leaf: true, pageSize: 0x4000_0000 });
    expect(r.translation).toMatchObject({ pa: 0x1_d234_5678n, pageSize: 0x4000_0000, leafLevel: 'PDPT' });
  });

  it('keeps PAT out of the address: bit 7 in a PTE, bit 12 in 2 MiB and 1 GiB leaves', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x1000n, 0x9000, 4096, { pat: true, pcd: true });
    pt.map(0x20_0000n, 0x60_0000, 0x20_0000, { pat: true });
    pt.map(0x4000_0000n, 0x8000_0000, 0x4000_0000, { pat: true, pwt: true });
    const ctx = ctxOf('4-level', pt.cr3);
    const small = walk(mem, ctx, 0x1234n);
    expect(small.steps[3]).toMatchObject({ raw: 0x9093n, flags: ['P', 'RW', 'PCD', 'PAT'] });
    expect(small.translation?.pa).toBe(0x9234n);
    const two = walk(mem, ctx, 0x20_1234n);
    expect(two.steps[2]).toMatchObject({ raw: 0x60_1083n, flags: ['P', 'RW', 'PS', 'PAT'] });
    expect(two.translation?.pa).toBe(0x60_1234n);
    const gig = walk(mem, ctx, 0x4000_1234n);
    expect(gig.steps[1]).toMatchObject({ raw: 0x8000_108bn, flags: ['P', 'RW', 'PWT', 'PS', 'PAT'] });
    expect(gig.translation?.pa).toBe(0x8000_1234n);
  });

  it('decodes the protection key of the leaf into the step and the translation', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x7000_0000n, 0x30_0000, 4096, { user: true, pkey: 11 });
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x7000_0010n);
    expect(r.steps[3]).toMatchObject({ raw: 0x5800_0000_0030_0007n, protectionKey: 11 });
    expect(r.steps.slice(0, 3).map((s) => s.protectionKey)).toEqual([null, null, null]);
    expect(r.translation?.protectionKey).toBe(11);
  });

  it('ANDs R/W and U/S and ORs XD over the levels into the translation rights', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x40_0000n, 0x5000, 4096, { user: true });
    pt.setEntry(0x40_0000n, 'PD', pt.getEntry(0x40_0000n, 'PD') & ~0x2n);
    pt.setEntry(0x40_0000n, 'PML4', pt.getEntry(0x40_0000n, 'PML4') | (1n << 63n));
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x40_0000n);
    expect(r.translation?.rights).toEqual({ write: false, user: true, execute: false });
    expect(r.steps[0]!.flags).toEqual(['P', 'RW', 'US', 'NX']);
  });
});

describe('5-level paging', () => {
  const VA = 0x0001_0100_c080_5678n; // PML5 1, PML4 2, PDPT 3, PD 4, PT 5

  it('walks five levels', () => {
    const { mem, pt } = machine('5-level');
    pt.map(VA & ~0xfffn, 0x77000, 4096);
    const r = walk(mem, ctxOf('5-level', pt.cr3), VA);
    expect(r.steps.map((s) => [s.level, s.index, s.entryAddress, s.raw])).toEqual([
      ['PML5', 1, 0x10008n, 0x11007n],
      ['PML4', 2, 0x11010n, 0x12007n],
      ['PDPT', 3, 0x12018n, 0x13007n],
      ['PD', 4, 0x13020n, 0x14007n],
      ['PT', 5, 0x14028n, 0x77003n],
    ]);
    expect(r.translation?.pa).toBe(0x77678n);
  });

  it('checks canonical addresses at 57 bits: canonical there but not at 48', () => {
    const va = 0x0000_8000_0000_0000n;
    const five = machine('5-level');
    five.pt.map(va, 0x5000, 4096);
    const r5 = walk(five.mem, ctxOf('5-level', five.pt.cr3), va + 0x10n);
    expect(r5.fault).toBeNull();
    expect(r5.steps.map((s) => s.index)).toEqual([0, 256, 0, 0, 0]);
    expect(r5.translation?.pa).toBe(0x5010n);

    const four = machine('4-level');
    const r4 = walk(four.mem, ctxOf('4-level', four.pt.cr3), va + 0x10n);
    expect(r4.steps).toEqual([]);
    expect(r4.translation).toBeNull();
    expect(r4.fault).toEqual({
      level: null,
      reason: 'non-canonical',
      vector: 13,
      errorCode: 0,
      denials: [],
      explanation:
        '0x800000000010 is not canonical: bits 63:47 must all equal bit 47 in 4-level paging, so the CPU raises #GP(0) (#SS for a stack access), not #PF',
    });
  });

  it('raises #GP for an address that is not canonical even at 57 bits', () => {
    const { mem, pt } = machine('5-level');
    const r = walk(mem, ctxOf('5-level', pt.cr3), 0x0100_0000_0000_0000n);
    expect(r.fault).toMatchObject({ level: null, reason: 'non-canonical', vector: 13, errorCode: 0 });
    expect(r.fault?.explanation).toContain('bits 63:56 must all equal bit 56');
  });
});

describe('PAE paging', () => {
  it('walks the 4-entry PDPT (P only), then a PD and a PT of 64-bit entries with NX', () => {
    const { mem, pt } = machine('PAE');
    pt.map(0xc080_1000n, 0x5000, 4096, { nx: true });
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0xc080_1234n);
    expect(r.steps.map((s) => [s.level, s.index, s.entryAddress, s.raw, s.flags])).toEqual([
      ['PDPT', 3, 0x10018n, 0x11001n, ['P']],
      ['PD', 4, 0x11020n, 0x12007n, ['P', 'RW', 'US']],
      ['PT', 1, 0x12008n, 0x8000_0000_0000_5003n, ['P', 'RW', 'NX']],
    ]);
    expect(r.translation).toMatchObject({ pa: 0x5234n, rights: { write: true, user: false, execute: false }, protectionKey: null });
  });

  it('takes the PDPT from CR3 bits 31:5 (32-byte aligned)', () => {
    const { mem, pt } = machine('PAE');
    pt.map(0x1000n, 0x5000, 4096);
    // Copy the four PDPTEs to 0x20fe0 and point CR3 there (with PWT|PCD set, which are not address).
    for (let i = 0; i < 4; i++) mem.write64(0x20fe0 + 8 * i, mem.read64(pt.root + 8 * i));
    const r = walk(mem, ctxOf('PAE', 0x20fe0n | 0x18n), 0x1000n);
    expect(r.steps[0]!.entryAddress).toBe(0x20fe0n);
    expect(r.translation?.pa).toBe(0x5000n);
  });

  it('maps a 2 MiB page in a PAE PD entry', () => {
    const { mem, pt } = machine('PAE');
    pt.map(0x4020_0000n, 0x1_0040_0000n, 0x20_0000);
    const r = walk(mem, ctxOf('PAE', pt.cr3), 0x4021_2345n);
    expect(r.steps[1]).toMatchObject({ level: 'PD', raw: 0x1_0040_0083n, leaf: true, pageSize: 0x20_0000 });
    expect(r.translation).toMatchObject({ pa: 0x1_0041_2345n, leafLevel: 'PD' });
  });

  it('throws AddressError for a linear address above 4 GiB', () => {
    const { mem, pt } = machine('PAE');
    expect(() => walk(mem, ctxOf('PAE', pt.cr3), 0x1_0000_0000n)).toThrow(AddressError);
  });
});

describe('32-bit paging', () => {
  it('walks a PD and a PT of 4-byte entries, without NX or protection keys', () => {
    const { mem, pt } = machine('32-bit');
    pt.map(0xc000_1000n, 0x7000, 4096, { user: true });
    const r = walk(mem, ctxOf('32-bit', pt.cr3), 0xc000_1234n);
    expect(r.steps.map((s) => [s.level, s.index, s.entryAddress, s.raw, s.protectionKey])).toEqual([
      ['PD', 768, 0x10c00n, 0x11007n, null],
      ['PT', 1, 0x11004n, 0x7007n, null],
    ]);
    expect(r.translation).toMatchObject({ pa: 0x7234n, rights: { write: true, user: true, execute: true } });
  });

  it('maps a 4 MiB page with CR4.PSE, PSE-36 bits 20:13 giving physical-address bits 39:32', () => {
    const { mem, pt } = machine('32-bit');
    pt.map(0x8000_0000n, 0x12_3440_0000n, 0x40_0000);
    const r = walk(mem, ctxOf('32-bit', pt.cr3), 0x8012_3456n);
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ level: 'PD', index: 512, raw: 0x3442_4083n, leaf: true, pageSize: 0x40_0000, next: 0x12_3440_0000n });
    expect(r.translation).toMatchObject({ pa: 0x12_3452_3456n, pageSize: 0x40_0000, leafLevel: 'PD' });
  });

  it('ignores PS in a PDE when CR4.PSE=0: the PDE references a page table', () => {
    const { mem, pt } = machine('32-bit');
    pt.map(0x40_1000n, 0x9000, 4096);
    pt.setEntry(0x40_1000n, 'PD', pt.getEntry(0x40_1000n, 'PD') | 0x80n);
    const noPse = walk(mem, ctxOf('32-bit', pt.cr3, { clear: { cr4: CR4.PSE } }), 0x40_1abcn);
    expect(noPse.steps.map((s) => [s.level, s.raw, s.leaf])).toEqual([
      ['PD', 0x11087n, false],
      ['PT', 0x9003n, true],
    ]);
    expect(noPse.translation?.pa).toBe(0x9abcn);
    // The same PDE with CR4.PSE=1 maps a 4 MiB page at 0x0 (bit 16 of 0x11087 is PA bit 35).
    const pse = walk(mem, ctxOf('32-bit', pt.cr3), 0x40_1abcn);
    expect(pse.translation).toMatchObject({ pageSize: 0x40_0000, pa: 0x8_0000_1abcn });
  });

  it('sets no I/D without NXE and SMEP (32-bit paging has no XD)', () => {
    const { mem, pt } = machine('32-bit');
    expect(walk(mem, ctxOf('32-bit', pt.cr3), 0x1000n, { kind: 'exec', user: true }).fault?.errorCode).toBe(0x4);
  });

  it('throws AddressError for a linear address above 4 GiB', () => {
    const { mem, pt } = machine('32-bit');
    try {
      walk(mem, ctxOf('32-bit', pt.cr3), 0x1_0000_0000n);
    } catch (e) {
      expect(e).toBeInstanceOf(AddressError);
      expect((e as AddressError).code).toBe('E_ADDRESS_RANGE');
      expect((e as Error).message).toBe('0x100000000 does not fit the 32-bit linear addresses of 32-bit mode');
    }
    expect.assertions(3);
  });
});

describe('paging off', () => {
  it('translates identically, with no steps', () => {
    const { mem } = machine('4-level');
    const ctx = pagingContext({ cr0: CR0.PE, cr3: 0n, cr4: 0n, efer: 0n });
    expect(walk(mem, ctx, 0xb8123n)).toMatchObject({
      mode: 'none',
      steps: [],
      translation: { pa: 0xb8123n, pageBase: 0xb8000n, pageSize: 4096, leafLevel: null },
      fault: null,
    });
  });
});

describe('CR3', () => {
  it('ignores PCID bits 11:0 with CR4.PCIDE=1', () => {
    const { mem } = kernelMachine();
    const ctx = ctxOf('4-level', 0x10000n | 0xabcn, { set: { cr4: CR4.PCIDE } });
    expect(ctx.root).toBe(0x10000);
    expect(walk(mem, ctx, KERNEL_VA).translation?.pa).toBe(0xbff3_4d9dn);
  });

  it('ignores PWT/PCD (bits 3 and 4) with CR4.PCIDE=0', () => {
    const { mem } = kernelMachine();
    expect(walk(mem, ctxOf('4-level', 0x10018n), KERNEL_VA).translation?.pa).toBe(0xbff3_4d9dn);
  });

  it('treats bit 63 as the no-flush hint with PCIDE=1, never as address', () => {
    const { mem } = kernelMachine();
    const ctx = ctxOf('4-level', 0x8000_0000_0001_0001n, { set: { cr4: CR4.PCIDE } });
    const r = walk(mem, ctx, KERNEL_VA);
    expect(r.fault).toBeNull();
    expect(r.steps[0]!.entryAddress).toBe(0x10ff8n);
  });

  it('raises #GP for bit 63 without PCIDE (bits 63:MAXPHYADDR are reserved; KVM checks the same)', () => {
    const { mem } = kernelMachine();
    const r = walk(mem, ctxOf('4-level', 0x8000_0000_0001_0000n), KERNEL_VA);
    expect(r.steps).toEqual([]);
    expect(r.fault).toEqual({
      level: 'CR3',
      reason: 'reserved-bit',
      vector: 13,
      errorCode: 0,
      denials: [],
      explanation:
        'CR3 0x8000000000010000 has reserved bits set (0x8000000000000000): bit 63 (the no-flush hint) is reserved unless CR4.PCIDE=1, so mov to CR3 raises #GP(0)',
    });
  });

  it('raises #GP for CR3 bits at or above MAXPHYADDR', () => {
    const { mem } = kernelMachine();
    const r = walk(mem, ctxOf('4-level', 0x100_0001_0000n, { features: { maxPhyAddr: 36 } }), KERNEL_VA);
    expect(r.fault).toMatchObject({ level: 'CR3', reason: 'reserved-bit', vector: 13, errorCode: 0 });
    expect(r.fault?.explanation).toBe(
      'CR3 0x10000010000 has reserved bits set (0x10000000000): bits 63:36 are reserved with MAXPHYADDR=36, so mov to CR3 raises #GP(0)',
    );
    // The same value is fine with 52 physical-address bits (and walks a table at 0x100_0001_0000, outside RAM).
    const wide = walk(mem, ctxOf('4-level', 0x100_0001_0000n), KERNEL_VA);
    expect(wide.fault?.reason).toBe('outside-memory');
  });
});

describe('memory the walk cannot read', () => {
  it("reports 'outside-memory' at the level whose table lies past the end of RAM", () => {
    const { mem, pt } = machine('4-level', { ram: 0x10_0000 });
    pt.map(0x20_0000n, 0x5000, 4096);
    pt.setEntry(0x20_0000n, 'PDPT', 0x4000_0000n | 0x7n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x20_0000n, { kind: 'write', user: true });
    expect(r.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT']);
    expect(r.fault).toEqual({
      level: 'PD',
      reason: 'outside-memory',
      vector: 14,
      errorCode: 0x6,
      denials: [],
      explanation:
        'the PD at 0x40000000 lies outside readable physical memory; QEMU reads such addresses as zeros, so the CPU sees a not-present PD entry',
    });
  });

  it('reports the top level when CR3 itself points past RAM', () => {
    const { mem } = machine('4-level', { ram: 0x10_0000 });
    const r = walk(mem, ctxOf('4-level', 0x20_0000n), 0x1000n);
    expect(r.steps).toEqual([]);
    expect(r.fault).toMatchObject({ level: 'PML4', reason: 'outside-memory', errorCode: 0 });
  });

  it('treats a frame shorter than the entry (a truncated dump) as unreadable, not as an exception', () => {
    const short: PhysMemory = { frame: (pa) => (pa === 0 ? new DataView(new ArrayBuffer(16)) : null) };
    const ctx = ctxOf('4-level', 0n);
    expect(walk(short, ctx, 0xffff_ff80_0000_0000n).fault).toMatchObject({ level: 'PML4', reason: 'outside-memory' });
    expect(walk(short, ctx, 0x1000n).fault).toMatchObject({ level: 'PML4', reason: 'not-present' });
  });
});

describe('walkTask', () => {
  it('asks for one frame per level, top down', () => {
    const { mem, pt } = kernelMachine();
    const { value, requests } = runRecording(walkTask(ctxOf('4-level', pt.cr3), KERNEL_VA), mem);
    expect(requests).toEqual([[0x10000], [0x11000], [0x12000], [0x13000]]);
    expect(value.translation?.pa).toBe(0xbff3_4d9dn);
  });

  it('asks for no frame when the address is non-canonical or CR3 is bad, and for none without paging', () => {
    const { mem, pt } = kernelMachine();
    expect(runRecording(walkTask(ctxOf('4-level', pt.cr3), 0x8000_0000_0000n), mem).requests).toEqual([]);
    expect(runRecording(walkTask(ctxOf('4-level', 1n << 63n), KERNEL_VA), mem).requests).toEqual([]);
  });

  it('asks for the PAE PDPT frame at CR3 bits 31:5 and stops asking at a huge page', () => {
    const { mem, pt } = machine('PAE');
    pt.map(0x20_0000n, 0x40_0000, 0x20_0000);
    expect(runRecording(walkTask(ctxOf('PAE', pt.cr3), 0x20_0000n), mem).requests).toEqual([[0x10000], [0x11000]]);
  });

  it('gives the same result through the asynchronous driver', async () => {
    const { mem, pt } = kernelMachine();
    const ctx = ctxOf('4-level', pt.cr3);
    for (const va of [KERNEL_VA, 0x1000n, 0xffff_ffff_c000_0000n]) {
      expect(await runAsync(walkTask(ctx, va), asyncMemory(mem))).toEqual(walk(mem, ctx, va));
    }
  });
});

describe('a walk never writes', () => {
  it('leaves memory byte for byte as it was, A and D bits included, whatever the access', () => {
    const snapshot = (frames: [number, Uint8Array][]): string =>
      frames.map(([pa, bytes]) => `${pa}:${Buffer.from(bytes).toString('hex')}`).join('|');
    for (const mode of ['32-bit', 'PAE', '4-level', '5-level'] as const) {
      const { mem, pt } = machine(mode);
      pt.map(0x40_0000n, 0x9000, 4096, { user: true });
      const before = snapshot(mem.writtenFrames());
      const ctx = ctxOf(mode, pt.cr3);
      const results: WalkResult[] = [];
      for (const kind of ['read', 'write', 'exec'] as const) {
        for (const user of [false, true]) results.push(walk(mem, ctx, 0x40_0123n, { kind, user }));
      }
      expect(results.every((r) => r.fault === null)).toBe(true);
      expect(snapshot(mem.writtenFrames())).toBe(before);
      expect(pt.getEntry(0x40_0000n, 'PT') & 0x60n).toBe(0n);
    }
  });
});
