import { describe, expect, it } from 'vitest';
import { AddressError, hex, hexPad, isCanonical, phys, tryVirt, virt, virtTruncate } from '../../src/paging/addr.js';

describe('isCanonical', () => {
  it('accepts the two halves of a 48-bit address space and rejects the hole', () => {
    expect(isCanonical(0x0000_7fff_ffff_ffffn, 48)).toBe(true);
    expect(isCanonical(0xffff_8000_0000_0000n, 48)).toBe(true);
    expect(isCanonical(0x0000_8000_0000_0000n, 48)).toBe(false);
    expect(isCanonical(0xffff_7fff_ffff_ffffn, 48)).toBe(false);
    expect(isCanonical(0x0001_0000_0000_0000n, 48)).toBe(false);
  });

  it('widens to bits 63:56 with 57-bit addresses (LA57)', () => {
    // Canonical at 57 bits, not at 48: bit 47 set, bits 63:48 clear.
    expect(isCanonical(0x0000_8000_0000_0000n, 57)).toBe(true);
    expect(isCanonical(0x00ff_ffff_ffff_ffffn, 57)).toBe(true);
    expect(isCanonical(0xff00_0000_0000_0000n, 57)).toBe(true);
    expect(isCanonical(0x0100_0000_0000_0000n, 57)).toBe(false);
    expect(isCanonical(0xfeff_ffff_ffff_ffffn, 57)).toBe(false);
  });

  it('treats every 64-bit value as canonical at width 64', () => {
    expect(isCanonical(0x8000_0000_0000_0000n, 64)).toBe(true);
  });
});

describe('virtTruncate', () => {
  it('sign-extends bit 47 or bit 56', () => {
    expect(virtTruncate(0x0000_8000_0000_1000n, 48)).toBe(0xffff_8000_0000_1000n);
    expect(virtTruncate(0x1234_7fff_ffff_f000n, 48)).toBe(0x0000_7fff_ffff_f000n);
    expect(virtTruncate(0x0200_0000_0000_0000n, 57)).toBe(0x0000_0000_0000_0000n);
    expect(virtTruncate(0x0100_0000_0000_0000n, 57)).toBe(0xff00_0000_0000_0000n);
    expect(virtTruncate(0x0080_0000_0000_0000n, 57)).toBe(0x0080_0000_0000_0000n);
  });
});

describe('virt / tryVirt', () => {
  it('returns canonical addresses unchanged', () => {
    expect(virt(0xffff_ffff_8000_0000n)).toBe(0xffff_ffff_8000_0000n);
    expect(virt(0x0000_8000_0000_0000n, 57)).toBe(0x0000_8000_0000_0000n);
  });

  it('throws AddressError E_NON_CANONICAL for a non-canonical address', () => {
    expect(() => virt(0x0000_8000_0000_0000n)).toThrow(AddressError);
    const r = tryVirt(0x0000_8000_0000_0000n, 48);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('E_NON_CANONICAL');
      expect(r.error.message).toBe('0x800000000000 is not canonical: bits 63..47 must all equal bit 47');
    }
  });

  it('rejects values outside 64 bits with E_ADDRESS_RANGE', () => {
    const neg = tryVirt(-1n);
    const big = tryVirt(1n << 64n);
    expect(!neg.ok && neg.error.code).toBe('E_ADDRESS_RANGE');
    expect(!big.ok && big.error.code).toBe('E_ADDRESS_RANGE');
  });
});

describe('phys', () => {
  it('accepts 52-bit physical addresses and rejects more', () => {
    expect(phys(0xf_ffff_ffff_ffffn)).toBe(0xf_ffff_ffff_ffffn);
    expect(phys(0x1000)).toBe(0x1000n);
    expect(() => phys(1n << 52n)).toThrow(/52 bits at most/);
    try {
      phys(-1);
    } catch (e) {
      expect((e as AddressError).code).toBe('E_ADDRESS_RANGE');
    }
    expect.assertions(4);
  });
});

describe('hex', () => {
  it('writes lower-case hex with 0x, as the JSON shapes want', () => {
    expect(hex(0xffff_ffff_8000_2d9dn)).toBe('0xffffffff80002d9d');
    expect(hex(0)).toBe('0x0');
    expect(hex(0xABCn)).toBe('0xabc');
    expect(hex(-16)).toBe('-0x10');
    expect(hexPad(0x52000n)).toBe('0x0000000000052000');
    expect(hexPad(0x3, 4)).toBe('0x0003');
  });
});
