import { describe, expect, it } from 'vitest';
import { codeDescriptor64, dataDescriptor, gate64, tss64, tssDescriptor64 } from '../../src/image/descriptors.js';
import {
  DescriptorError,
  TSS32,
  TSS64,
  decodeGate32,
  decodeGate64,
  decodeSegmentDescriptor,
  decodeSelector,
  decodeTss32,
  describeGateType,
  isNullSelector,
} from '../../src/paging/descriptors.js';
import { tss32 } from './fixtures/machine.js';

const bytes = (hexText: string): Uint8Array => Uint8Array.from(hexText.split(' ').map((b) => parseInt(b, 16)));

describe('selectors', () => {
  it('splits index, table and RPL', () => {
    expect(decodeSelector(0x2b)).toEqual({ index: 5, ldt: false, rpl: 3 });
    expect(decodeSelector(0x0c)).toEqual({ index: 1, ldt: true, rpl: 0 });
    expect([0, 3, 4, 8].map(isNullSelector)).toEqual([true, true, false, false]);
  });
});

describe('segment descriptors', () => {
  it('decodes a flat 64-bit code segment', () => {
    expect(decodeSegmentDescriptor(0x00af9b000000ffffn)).toEqual({
      raw: 0x00af9b000000ffffn,
      base: 0n,
      limit: 0xffffffff,
      type: 0xb,
      system: false,
      dpl: 0,
      present: true,
      long: true,
      big: false,
      granular: true,
      code: true,
      conforming: false,
      writable: false,
    });
    expect(codeDescriptor64(0)).toBe(0x00af9b000000ffffn);
  });

  it('decodes a ring-3 data segment and a conforming code segment', () => {
    const data = decodeSegmentDescriptor(0x00cff3000000ffffn);
    expect(data).toMatchObject({ dpl: 3, writable: true, code: false, big: true, long: false, present: true });
    expect(dataDescriptor(3)).toBe(0x00cff3000000ffffn);
    expect(decodeSegmentDescriptor(0x00cf9f000000ffffn)).toMatchObject({ code: true, conforming: true, type: 0xf });
  });

  it('decodes base, byte-granular limit and system type', () => {
    // base 0x12345678, limit 0x67, P=1 DPL 0 type 9 (available TSS), G=0
    expect(decodeSegmentDescriptor(0x1200893456780067n)).toMatchObject({
      base: 0x12345678n,
      limit: 0x67,
      system: true,
      type: 9,
      present: true,
      granular: false,
      code: false,
      writable: false,
    });
  });

  it('takes base bits 63:32 from the high half of a long-mode system descriptor', () => {
    const [lo, hi] = tssDescriptor64(0xffffffff80010100n);
    expect(decodeSegmentDescriptor(lo, hi).base).toBe(0xffffffff80010100n);
    expect(decodeSegmentDescriptor(lo).base).toBe(0x80010100n);
    // The high half never applies to code or data descriptors.
    expect(decodeSegmentDescriptor(0x00af9b000000ffffn, 0xffffffffn).base).toBe(0n);
  });

  it('sees a not-present descriptor', () => {
    expect(decodeSegmentDescriptor(0x00af1b000000ffffn).present).toBe(false);
  });
});

describe('IDT gates', () => {
  it('decodes a 64-bit interrupt gate with an IST', () => {
    const b = bytes('00 20 08 00 01 8e 00 80 ff ff ff ff 00 00 00 00');
    expect(decodeGate64(b)).toEqual({ kind: 'interrupt', type: 0xe, bits: 64, present: true, dpl: 0, selector: 0x08, offset: 0xffffffff80002000n, ist: 1 });
    expect(gate64(0xffffffff80002000n, { ist: 1 })).toEqual(b);
  });

  it('decodes trap gates and refuses what a long-mode IDT cannot hold', () => {
    expect(decodeGate64(bytes('00 10 08 00 00 ef 00 00 00 00 00 00 00 00 00 00'))).toMatchObject({ kind: 'trap', dpl: 3, offset: 0x1000n, bits: 64 });
    expect(decodeGate64(bytes('00 10 08 00 00 8c 00 00 00 00 00 00 00 00 00 00'))).toMatchObject({ kind: 'invalid', type: 0xc, bits: 0 });
    // S=1 makes it a code/data descriptor, not a gate.
    expect(decodeGate64(bytes('00 10 08 00 00 9e 00 00 00 00 00 00 00 00 00 00')).kind).toBe('invalid');
    expect(decodeGate64(bytes('00 10 08 00 00 0e 00 00 00 00 00 00 00 00 00 00'))).toMatchObject({ kind: 'interrupt', present: false });
    // Only bits 2:0 of byte 4 are the IST.
    expect(decodeGate64(bytes('00 10 08 00 f9 8e 00 00 00 00 00 00 00 00 00 00')).ist).toBe(1);
  });

  it('decodes legacy gates: 32-bit, 16-bit and task', () => {
    expect(decodeGate32(bytes('00 20 08 00 00 8e 10 c0'))).toEqual({ kind: 'interrupt', type: 0xe, bits: 32, present: true, dpl: 0, selector: 0x08, offset: 0xc0102000n, ist: 0 });
    expect(decodeGate32(bytes('34 12 08 00 00 86 cd ab'))).toMatchObject({ kind: 'interrupt', bits: 16, offset: 0x1234n });
    expect(decodeGate32(bytes('34 12 08 00 00 87 00 00'))).toMatchObject({ kind: 'trap', bits: 16 });
    expect(decodeGate32(bytes('00 00 20 00 00 85 00 00'))).toEqual({ kind: 'task', type: 5, bits: 0, present: true, dpl: 0, selector: 0x20, offset: 0n, ist: 0 });
    expect(decodeGate32(bytes('00 00 08 00 00 8c 00 00'))).toMatchObject({ kind: 'invalid', type: 0xc });
  });

  it('throws DescriptorError on too few bytes', () => {
    expect(() => decodeGate64(new Uint8Array(8))).toThrowError(DescriptorError);
    expect(() => decodeGate32(new Uint8Array(7))).toThrowError(expect.objectContaining({ code: 'E_DESCRIPTOR_SIZE' }));
    expect(() => decodeTss32(new Uint8Array(0x67))).toThrowError(/needs 104 bytes, got 103/);
  });

  it('names gate types per mode', () => {
    expect(describeGateType(0xc, true)).toBe('a call gate');
    expect(describeGateType(0x5, false)).toBe('a task gate');
    expect(describeGateType(0x5, true)).toBe('a reserved type (0x5)');
    expect(describeGateType(0x6, false)).toBe('a 16-bit interrupt gate');
  });
});

describe('TSS fields', () => {
  it('places RSPn and ISTn in the 64-bit TSS', () => {
    expect([TSS64.rsp(0), TSS64.rsp(2), TSS64.ist(1), TSS64.ist(7)]).toEqual([0x04, 0x14, 0x24, 0x54]);
    const t = tss64({ rsp: [0xffffffff80024000n], ist: [0xffffffff80031000n] });
    const dv = new DataView(t.buffer);
    expect(dv.getBigUint64(TSS64.rsp(0), true)).toBe(0xffffffff80024000n);
    expect(dv.getBigUint64(TSS64.ist(1), true)).toBe(0xffffffff80031000n);
  });

  it('decodes the 32-bit TSS fields a task switch loads', () => {
    const t = tss32({ cr3: 0x402000, eip: 0xc0103000, esp: 0xc0131000, cs: 0x08, ss: 0x10, esp0: 0xc0124000, ss0: 0x10, eflags: 0x202 });
    expect(Array.from(t.subarray(0x1c, 0x24), (b) => b.toString(16).padStart(2, '0')).join(' ')).toBe('00 20 40 00 00 30 10 c0');
    expect(decodeTss32(t)).toEqual({ link: 0, esp0: 0xc0124000, ss0: 0x10, cr3: 0x402000, eip: 0xc0103000, eflags: 0x202, esp: 0xc0131000, cs: 0x08, ss: 0x10 });
    expect([TSS32.cr3, TSS32.eip, TSS32.esp, TSS32.cs, TSS32.ss, TSS32.saveStart, TSS32.saveEnd]).toEqual([0x1c, 0x20, 0x38, 0x4c, 0x50, 0x20, 0x60]);
  });
});
