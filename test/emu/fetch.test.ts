/**
 * Instruction fetch through the MMU: an instruction that crosses into an unmapped page faults
 * with CR2 at the page boundary and I/D set, one that ends at the boundary does not touch the
 * next page, NX pages are not executable, code rewritten in memory runs as rewritten, and one
 * physical page seen at two linear addresses runs correctly at both.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, byte } from '../../src/asm/index.js';
import { ebx, rax, rbx, rcx } from '../../src/asm/registers.js';
import type { Machine } from '../../src/emu/index.js';
import { CODE_VA, L, testMachine } from './fixtures.js';

const frame = (m: Machine, n: number): bigint[] => {
  const dv = new DataView(m.readVirtual(m.getRegister('rsp'), n * 8).buffer);
  return Array.from({ length: n }, (_, k) => dv.getBigUint64(k * 8, true));
};

describe('instruction fetch', () => {
  const page2 = CODE_VA + 0x1000n;
  /** Code that jumps to `at` (near the end of the first code page) where `bytes` are placed; the next page is unmapped. */
  function crossing(at: bigint, bytes: number[]) {
    const a = new Assembler(64).mov(rax, at).jmp(rax).label('pf').hlt();
    return testMachine({
      asm: a,
      gates: { 14: { at: 'pf' } },
      tweak: (pt, mem) => {
        mem.write(L.code + Number(at - CODE_VA), Uint8Array.from(bytes));
        pt.setEntry(page2, 'PT', 0n);
      },
    });
  }

  it('faults on the next page only when the instruction continues there: CR2 = the boundary, RIP = the instruction', () => {
    const at = page2 - 3n;
    const { m, code } = crossing(at, [0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]); // mov rax, imm64 across the boundary
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('pf') + 1n);
    expect(m.getRegister('cr2')).toBe(page2);
    expect(frame(m, 2)).toEqual([0x10n, at]);
  });

  it('an instruction that ends at the boundary runs; the fault is the next fetch', () => {
    const at = page2 - 3n;
    const { m } = crossing(at, [0x90, 0x90, 0x90]);
    m.run();
    expect(m.getRegister('cr2')).toBe(page2);
    expect(frame(m, 2)).toEqual([0x10n, page2]);
  });

  it('a fetch from an NX page is #PF with P and I/D', () => {
    const a = new Assembler(64).mov(rax, CODE_VA + 0x2000n).jmp(rax).label('pf').hlt();
    const { m } = testMachine({ asm: a, gates: { 14: { at: 'pf' } }, tweak: (pt) => pt.setEntry(CODE_VA + 0x2000n, 'PT', pt.getEntry(CODE_VA + 0x2000n, 'PT') | (1n << 63n)) });
    m.run();
    expect(frame(m, 2)).toEqual([0x11n, CODE_VA + 0x2000n]);
  });

  it('code rewritten in memory runs as rewritten (the decode cache compares bytes)', () => {
    // Run `mov ebx, 1` at `patch`, overwrite its immediate with 2, run it again.
    const a = new Assembler(64)
      .mov(rcx, 2)
      .label('patch').mov(ebx, 1)
      .add(rax, rbx)
      .dec(rcx)
      .jz('done')
      .mov(byte('patch', 1), 2)
      .jmp('patch')
      .label('done').hlt();
    const { m, code } = testMachine({ asm: a });
    expect(m.readVirtual(code.address('patch'), 5)).toEqual(new Uint8Array([0xbb, 1, 0, 0, 0]));
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rax')).toBe(1n + 2n);
  });

  it('the same physical code runs at its identity alias with relative branches resolved from RIP', () => {
    const a = new Assembler(64).mov(rax, BigInt(L.code) + 0x100n).jmp(rax).align(0x100).label('low').mov(rbx, 1).call('sub').hlt().label('sub').mov(rcx, 7).ret();
    const { m, code } = testMachine({ asm: a });
    expect(code.offset('low')).toBe(0x100);
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rip')).toBeLessThan(0x200000n);
    expect([m.getRegister('rbx'), m.getRegister('rcx')]).toEqual([1n, 7n]);
  });
});
