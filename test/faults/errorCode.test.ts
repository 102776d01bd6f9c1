import { describe, expect, it } from 'vitest';
import { decodeErrorCode, ErrorCodeError } from '../../src/faults/errorCode.js';

describe('decodeErrorCode', () => {
  it('reads 0x10 as an instruction fetch from a not-present page, and warns it is not NX', () => {
    const d = decodeErrorCode(0x10);
    expect(d).toMatchObject({ present: false, write: false, user: false, reserved: false, fetch: true, access: 'exec' });
    expect(d.summary).toBe('supervisor instruction fetch that found no mapping (an entry with P=0)');
    expect(d.pitfalls[0]).toContain('not an NX fault');
    expect(d.pitfalls[0]).toContain('0x11');
  });

  it('reads 0x3 as a supervisor write to a present page, and warns it is not "not present"', () => {
    const d = decodeErrorCode(0x3);
    expect(d).toMatchObject({ present: true, write: true, user: false, access: 'write' });
    expect(d.summary).toContain('supervisor write that was refused by the page protections');
    expect(d.pitfalls.join(' ')).toContain('is not "not present"');
  });

  it('reads 0x15 as a user fetch refused by protections (NX or SMEP)', () => {
    const d = decodeErrorCode(0x15);
    expect(d).toMatchObject({ present: true, user: true, fetch: true, access: 'exec' });
    expect(d.pitfalls).toEqual([]);
  });

  it('decodes RSVD and notes QEMU 7.2 reporting it without P', () => {
    const d = decodeErrorCode(0x8);
    expect(d.reserved).toBe(true);
    expect(d.summary).toContain('reserved bit');
    expect(d.pitfalls.join(' ')).toContain('QEMU 7.2');
  });

  it('decodes PK, SS, HLAT and SGX bits', () => {
    const d = decodeErrorCode(0x80e7);
    expect(d).toMatchObject({ protectionKey: true, shadowStack: true, hlat: true, sgx: true, undefinedBits: 0 });
    expect(d.bits.filter((b) => b.set).map((b) => b.name)).toEqual(['P', 'W/R', 'U/S', 'PK', 'SS', 'HLAT', 'SGX']);
  });

  it('reports bits no CPU defines', () => {
    expect(decodeErrorCode(0x10100).undefinedBits).toBe(0x10100);
  });

  it('rejects values that are not 32-bit codes', () => {
    expect(() => decodeErrorCode(-1)).toThrow(ErrorCodeError);
    expect(() => decodeErrorCode(2 ** 32)).toThrow(/32-bit/);
    expect(() => decodeErrorCode(1.5)).toThrow(ErrorCodeError);
  });
});
