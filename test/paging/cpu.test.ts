/**
 * What src/paging/cpu.ts derives from a CPU state: the privilege level, and the linear address of
 * the next instruction (real mode: CS × 16 + IP, where the BIOS runs at CS 0xf000).
 */
import { describe, expect, it } from 'vitest';
import { cpl, linearIp } from '../../src/paging/cpu.js';

describe('linearIp', () => {
  it('is CS × 16 + IP in real mode, whatever the upper bits of RIP hold', () => {
    expect(linearIp({ cr0: 0x10n, rip: 0x7009n, cs: { selector: 0xf000 } })).toBe(0xf7009n);
    expect(linearIp({ cr0: 0n, rip: 0x1_0000_7c00n, cs: { selector: 0 } })).toBe(0x7c00n);
    expect(linearIp({ cr0: 0n, rip: 0xfff0n, cs: { selector: 0xffff } })).toBe(0x10ffe0n); // past 1 MiB with A20 on
    // At reset CS.base is 0xffff0000 whatever the selector says: the base wins when the target gives it.
    expect(linearIp({ cr0: 0x60000010n, rip: 0xfff0n, cs: { selector: 0xf000, base: 0xffff0000n } })).toBe(0xfffffff0n);
  });

  it('is RIP in protected and long mode (flat code segments)', () => {
    expect(linearIp({ cr0: 0x11n, rip: 0x100048n, cs: { selector: 0x08 } })).toBe(0x100048n);
    expect(linearIp({ cr0: 0x80010011n, rip: 0xffffffff80101007n, cs: { selector: 0x18 } })).toBe(0xffffffff80101007n);
  });

  it('leaves CPL to the selector', () => {
    expect(cpl({ cs: { selector: 0x23 } })).toBe(3);
  });
});
