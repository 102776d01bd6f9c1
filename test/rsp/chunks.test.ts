/**
 * Memory transfer chunking (aligned splits) and the pipelining window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pipelined, powerOfTwoAtMost, splitAligned } from '../../src/rsp/chunks.js';

describe('splitAligned', () => {
  it('cuts at multiples of the size', () => {
    expect(splitAligned(0x1f0n, 0x190, 0x80)).toEqual([
      { address: 0x1f0n, offset: 0, length: 0x10 },
      { address: 0x200n, offset: 0x10, length: 0x80 },
      { address: 0x280n, offset: 0x90, length: 0x80 },
      { address: 0x300n, offset: 0x110, length: 0x80 },
    ]);
    expect(splitAligned(0xffffffff80000ffen, 4, 0x800)).toEqual([
      { address: 0xffffffff80000ffen, offset: 0, length: 2 },
      { address: 0xffffffff80001000n, offset: 2, length: 2 },
    ]);
    expect(splitAligned(0n, 0, 0x800)).toEqual([]);
  });

  it('reaches the very top of the address space, and no further', () => {
    expect(splitAligned(0xfffffffffffffff0n, 0x10, 0x800)).toEqual([{ address: 0xfffffffffffffff0n, offset: 0, length: 0x10 }]);
    expect(() => splitAligned(0xfffffffffffffff0n, 0x11, 0x800)).toThrow(RangeError);
    expect(() => splitAligned(0n, -1, 0x800)).toThrow(RangeError);
    expect(() => splitAligned(-1n, 1, 0x800)).toThrow(RangeError);
  });

  it('covers the range exactly, never crossing a boundary', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 40n }), fc.nat(20000), fc.integer({ min: 0, max: 12 }), (address, length, log) => {
        const size = 1 << log;
        const chunks = splitAligned(address, length, size);
        let offset = 0;
        for (const c of chunks) {
          expect(c.offset).toBe(offset);
          expect(c.address).toBe(address + BigInt(offset));
          expect(c.length).toBeGreaterThan(0);
          expect(c.address / BigInt(size)).toBe((c.address + BigInt(c.length) - 1n) / BigInt(size));
          offset += c.length;
        }
        expect(offset).toBe(length);
      }),
    );
  });

  it('powerOfTwoAtMost rounds down', () => {
    expect([1, 2, 3, 114, 0x800, 0x7ff, 0].map(powerOfTwoAtMost)).toEqual([1, 2, 2, 64, 0x800, 0x400, 1]);
  });
});

describe('pipelined', () => {
  const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

  it('keeps at most `window` tasks running, starting them in order', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await pipelined([...Array(20).keys()], 4, async (item) => {
      started.push(item);
      peak = Math.max(peak, ++running);
      await tick();
      running--;
    });
    expect(peak).toBe(4);
    expect(started).toEqual([...Array(20).keys()]);
  });

  it('starts nothing after a failure and throws the failure of the lowest item', async () => {
    const started: number[] = [];
    const p = pipelined([...Array(20).keys()], 3, async (item) => {
      started.push(item);
      await tick();
      if (item === 2) await tick(); // fails after item 4 has failed
      if (item === 2 || item === 4) throw new Error(`item ${item}`);
    });
    await expect(p).rejects.toThrow('item 2');
    expect(Math.max(...started)).toBeLessThan(7);
  });
});
