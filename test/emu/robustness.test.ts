/**
 * Random code never breaks the emulator: whatever bytes run, with whatever register values, a
 * run ends in an orderly stop (a handler reached, a fault chain ending in shutdown, the budget,
 * an unsupported stop) and never in a JavaScript exception; RFLAGS bit 1 stays set and RIP
 * stays canonical.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/asm/index.js';
import { GPR_NAMES } from '../../src/emu/index.js';
import { CODE_VA, DATA_VA, testMachine, type TestGate } from './fixtures.js';

describe('random code', () => {
  const gates: Record<number, TestGate> = {};
  for (let v = 0; v < 32; v++) gates[v] = { at: 'handler' };
  const t = testMachine({ asm: new Assembler(64).hlt().align(0x100).label('handler').hlt(), gates });
  const m = t.m;
  const arbValue = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(DATA_VA, DATA_VA + 0x800n, CODE_VA, 0n, 1n));

  it('ends every run in an orderly stop', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 48 }), fc.array(arbValue, { minLength: 16, maxLength: 16 }), fc.nat(0xfff), (code, regs, flags) => {
        m.reset();
        m.writeVirtual(CODE_VA, code);
        GPR_NAMES.forEach((n, k) => {
          if (n !== 'rsp') m.setRegister(n, regs[k]!);
        });
        m.setRegister('eflags', BigInt(flags & 0xcd5));
        const stop = m.run({ maxInstructions: 200 });
        expect(['halted', 'shutdown', 'limit', 'unsupported', 'triple-fault']).toContain(stop.reason);
        expect(Number(m.getRegister('eflags')) & 2).toBe(2);
        expect(m.cpu.canonical(m.getRegister('rip'))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
