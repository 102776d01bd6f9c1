import { describe, expect, it } from 'vitest';
import { decodeEntry, pageBaseOf, splitEntry, tableAddressOf } from '../../src/paging/entry.js';
import { levelRules, type LevelOptions } from '../../src/paging/levels.js';

const OPTS: LevelOptions = { maxPhyAddr: 52, nxe: true, pse: true, gbPages: true };
const [PML4, PDPT, PD, PT] = levelRules('4-level', OPTS) as [never, never, never, never];
const [PML5] = levelRules('5-level', OPTS) as [never];
const [PAE_PDPT, PAE_PD, PAE_PT] = levelRules('PAE', OPTS) as [never, never, never];
const [PD32, PT32] = levelRules('32-bit', OPTS) as [never, never];
const [PD32_NOPSE] = levelRules('32-bit', { ...OPTS, pse: false }) as [never];

describe('decodeEntry: long-mode levels', () => {
  it('decodes a PML4E: P RW US A NX; D, G and bits 11:9 mean nothing in a table reference', () => {
    const e = decodeEntry(0x8000_0000_0005_9f67n, PML4);
    expect(e).toEqual({
      level: 'PML4',
      raw: 0x8000_0000_0005_9f67n,
      present: true,
      leaf: false,
      pageSize: null,
      address: 0x59000n,
      flags: ['P', 'RW', 'US', 'A', 'NX'],
      reserved: 0n,
      protectionKey: null,
    });
  });

  it('names PS in a PML4E and PML5E and reports it as reserved', () => {
    expect(decodeEntry(0x5_9083n, PML4)).toMatchObject({ flags: ['P', 'RW', 'PS'], reserved: 0x80n, leaf: false });
    expect(decodeEntry(0x5_9083n, PML5)).toMatchObject({ level: 'PML5', flags: ['P', 'RW', 'PS'], reserved: 0x80n });
  });

  it('decodes a 1 GiB PDPTE: D, G and PAT at bit 12 are meaningful; the address drops PAT', () => {
    const e = decodeEntry(0x0000_0001_4000_11e3n, PDPT);
    expect(e).toMatchObject({
      leaf: true,
      pageSize: 0x4000_0000,
      address: 0x1_4000_0000n,
      flags: ['P', 'RW', 'A', 'D', 'PS', 'G', 'PAT'],
      reserved: 0n,
      protectionKey: 0,
    });
  });

  it('decodes a 2 MiB PDE with a protection key and NX', () => {
    const e = decodeEntry(0xd800_0000_0020_0085n, PD);
    expect(e).toMatchObject({
      leaf: true,
      pageSize: 0x20_0000,
      address: 0x20_0000n,
      flags: ['P', 'US', 'PS', 'NX'],
      protectionKey: 0xb,
    });
  });

  it('decodes a PTE: bit 7 is PAT, not PS; bit 12 is address', () => {
    const e = decodeEntry(0x0000_0000_bff3_41f9n, PT);
    expect(e).toMatchObject({
      leaf: true,
      pageSize: 4096,
      address: 0xbff3_4000n,
      flags: ['P', 'PWT', 'PCD', 'A', 'D', 'PAT', 'G'],
    });
  });

  it('decodes protection keys 0..15 from bits 62:59 of a leaf only', () => {
    for (let k = 0; k < 16; k++) {
      expect(decodeEntry((BigInt(k) << 59n) | 0x1003n, PT).protectionKey).toBe(k);
    }
    expect(decodeEntry((0xfn << 59n) | 0x1003n, PD).protectionKey).toBeNull();
    expect(decodeEntry((0xfn << 59n) | 0x1002n, PT).protectionKey).toBeNull();
  });

  it('checks no reserved bit in a non-present entry, but still decodes its address', () => {
    const e = decodeEntry(0xffff_ffff_ffff_f080n, PML4);
    expect(e).toMatchObject({ present: false, leaf: false, reserved: 0n, address: 0xf_ffff_ffff_f000n });
  });

  it('reports bit 63 as reserved, not NX, when EFER.NXE=0', () => {
    const [, , , pt] = levelRules('4-level', { ...OPTS, nxe: false });
    expect(decodeEntry(0x8000_0000_0000_1003n, pt!)).toMatchObject({ flags: ['P', 'RW'], reserved: 0x8000_0000_0000_0000n });
  });

  it('reports address bits at or above MAXPHYADDR', () => {
    const [, , pd] = levelRules('4-level', { ...OPTS, maxPhyAddr: 39 });
    expect(decodeEntry(0x0000_01c0_0020_0083n, pd!).reserved).toBe(0x180_0000_0000n);
  });
});

describe('decodeEntry: PAE levels', () => {
  it('decodes a PDPTE: only P, PWT and PCD exist; RW, US and bit 63 are reserved (A is QEMU\'s, see levels.ts)', () => {
    expect(decodeEntry(0x0000_0000_0000_2019n, PAE_PDPT)).toMatchObject({
      flags: ['P', 'PWT', 'PCD'],
      reserved: 0n,
      address: 0x2000n,
      leaf: false,
    });
    expect(decodeEntry(0x8000_0000_0000_2027n, PAE_PDPT)).toMatchObject({
      flags: ['P', 'A'],
      reserved: 0x8000_0000_0000_0006n,
    });
  });

  it('decodes a 2 MiB PAE PDE with NX, and reports bits 62:52', () => {
    expect(decodeEntry(0x8000_0000_0060_00e3n, PAE_PD)).toMatchObject({
      leaf: true,
      pageSize: 0x20_0000,
      address: 0x60_0000n,
      flags: ['P', 'RW', 'A', 'D', 'PS', 'NX'],
      reserved: 0n,
      protectionKey: null,
    });
    expect(decodeEntry(0x0010_0000_0060_0083n, PAE_PD).reserved).toBe(0x0010_0000_0000_0000n);
    expect(decodeEntry(0x4000_0000_0000_5003n, PAE_PT).reserved).toBe(0x4000_0000_0000_0000n);
  });
});

describe('decodeEntry: 32-bit levels', () => {
  it('decodes a 4 MiB PDE with PSE-36: bits 20:13 are physical-address bits 39:32, bit 12 is PAT', () => {
    const e = decodeEntry(0x3442_5083n, PD32);
    expect(e).toMatchObject({
      leaf: true,
      pageSize: 0x40_0000,
      address: 0x12_3440_0000n,
      flags: ['P', 'RW', 'PS', 'PAT'],
      reserved: 0n,
      protectionKey: null,
    });
  });

  it('reports bit 21 of a 4 MiB PDE as reserved', () => {
    expect(decodeEntry(0x0060_0083n, PD32).reserved).toBe(0x20_0000n);
  });

  it('ignores PS in a PDE when CR4.PSE=0: the entry references a page table', () => {
    expect(decodeEntry(0x0001_10e7n, PD32_NOPSE)).toMatchObject({
      leaf: false,
      pageSize: null,
      address: 0x11000n,
      flags: ['P', 'RW', 'US', 'A'],
      reserved: 0n,
    });
  });

  it('decodes a 32-bit PTE: PAT at bit 7, G, no NX and no reserved bits', () => {
    expect(decodeEntry(0xfedc_b1ffn, PT32)).toMatchObject({
      leaf: true,
      address: 0xfedc_b000n,
      flags: ['P', 'RW', 'US', 'PWT', 'PCD', 'A', 'D', 'PAT', 'G'],
      reserved: 0n,
    });
  });
});

describe('entry word helpers', () => {
  it('split an entry and rebuild addresses from the words', () => {
    expect(splitEntry(0x8000_000f_1234_5067n)).toEqual([0x1234_5067, 0x8000_000f]);
    expect(tableAddressOf(0x1234_5067, 0x8000_000f, PML4)).toBe(0xf_1234_5000);
    expect(pageBaseOf(0x1234_5083, 0x0000_000f, PD)).toBe(0xf_1220_0000);
    expect(pageBaseOf(0x3442_5083, 0, PD32)).toBe(0x12_3440_0000);
    expect(tableAddressOf(0x3442_5083, 0xffff_ffff, PD32)).toBe(0x3442_5000);
  });
});
