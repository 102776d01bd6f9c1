/**
 * A throughput figure for the report (never asserted: tests do not assert on time): instructions
 * per second on a tight loop of register arithmetic, a memory increment and a taken branch.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, qword } from '../../src/asm/index.js';
import { rax, rcx } from '../../src/asm/registers.js';
import { DATA_VA, testMachine } from './fixtures.js';

describe('throughput', () => {
  it('runs a tight loop and prints instructions per second', () => {
    const n = 200_000;
    const a = new Assembler(64).mov(rcx, n).label('l').add(rax, 3).inc(qword(DATA_VA)).dec(rcx).jnz('l').hlt();
    const { m } = testMachine({ asm: a });
    const t0 = performance.now();
    expect(m.run({ maxInstructions: 10 * n }).reason).toBe('halted');
    const ms = performance.now() - t0;
    expect(m.getRegister('rax')).toBe(BigInt(3 * n));
    expect(m.instructions).toBe(4 * n + 2);
    console.log(`[pagewalk emu] ${m.instructions} instructions in ${ms.toFixed(0)} ms: ${Math.round(m.instructions / (ms / 1000)).toLocaleString('en')} instructions/s`);
  });
});
