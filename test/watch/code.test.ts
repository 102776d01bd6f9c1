/**
 * The pieces under the watches: decoding one guest instruction (the source of a MOV to CR3, LIDT,
 * HLT, memory operands from the registers of a stop), the code size from CS, reading code across a
 * page boundary, and what a MOV to CR3 writes (PCID, the no-flush bit, 32-bit modes).
 */
import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { runSync } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { codeBits, decodeInstruction, readCodeTask } from '../../src/watch/code.js';
import { cr3Write } from '../../src/watch/cr3Value.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const cpu = (gpr: Record<string, bigint>, rsp = 0x8000n): Pick<CpuState, 'gpr' | 'rip' | 'rsp' | 'fs' | 'gs'> => ({ gpr, rip: 0x1000n, rsp });

describe('decodeInstruction', () => {
  it('finds the source register of a MOV to CR3 and the value it moves', () => {
    expect(decodeInstruction(bytes(0x0f, 0x22, 0xd8), 64, 0x1000n, cpu({ rax: 0x123000n }))).toMatchObject({ length: 3, text: 'mov cr3, rax', cr3Source: 'rax', cr3Value: 0x123000n });
    expect(decodeInstruction(bytes(0x41, 0x0f, 0x22, 0xdf), 64, 0x1000n, cpu({ r15: 0x8000000000005000n }))).toMatchObject({ length: 4, cr3Source: 'r15', cr3Value: 0x8000000000005000n });
    // mod bits are ignored for MOV to a control register: 0F 22 18 is still mov cr3, rax.
    expect(decodeInstruction(bytes(0x0f, 0x22, 0x18), 64, 0n)?.cr3Source).toBe('rax');
    expect(decodeInstruction(bytes(0x0f, 0x22, 0xd8), 32, 0n, cpu({ rax: 0xffffffff00402000n }))).toMatchObject({ cr3Source: 'eax', cr3Value: 0x402000n });
    // MOV to CR4 and to CR11 (REX.R) are not MOVs to CR3.
    expect(decodeInstruction(bytes(0x0f, 0x22, 0xe0), 64, 0n)?.cr3Source).toBeNull();
    expect(decodeInstruction(bytes(0x44, 0x0f, 0x22, 0xd8), 64, 0n)).toBeNull();
  });

  it('names LIDT and HLT, and returns null for a cut instruction', () => {
    expect(decodeInstruction(bytes(0x0f, 0x01, 0x1d, 0x10, 0, 0, 0), 64, 0x1000n)).toMatchObject({ lidt: true, length: 7, text: 'lidt [rel 0x1017]' });
    expect(decodeInstruction(bytes(0xf4), 64, 0n)).toMatchObject({ halts: true, length: 1 });
    expect(decodeInstruction(bytes(0x0f, 0x01, 0x1d, 0x10), 64, 0n)).toBeNull();
    expect(decodeInstruction(bytes(), 64, 0n)).toBeNull();
  });

  it('computes memory accesses from the registers: add [rax], al writes, push writes below RSP, RIP-relative reads', () => {
    const regs = cpu({ rax: 0x400000n, rbx: 0x10n }, 0x9000n);
    expect(decodeInstruction(bytes(0x00, 0x00), 64, 0x1000n, regs)?.memory).toEqual([{ va: 0x400000n, size: 1, access: 'write' }]);
    expect(decodeInstruction(bytes(0x50), 64, 0x1000n, regs)?.memory).toEqual([{ va: 0x8ff8n, size: 8, access: 'write' }]);
    expect(decodeInstruction(bytes(0x48, 0x8b, 0x05, 0x10, 0, 0, 0), 64, 0x1000n, regs)?.memory).toEqual([{ va: 0x1017n, size: 8, access: 'read' }]);
    expect(decodeInstruction(bytes(0x8b, 0x44, 0x98, 0x08), 64, 0x1000n, regs)?.memory).toEqual([{ va: 0x400048n, size: 4, access: 'read' }]);
  });

  it('takes the code size from CS.L and CS.D', () => {
    const long = { cr0: CR0.PE | CR0.PG, efer: EFER.LMA | EFER.LME };
    expect(codeBits({ ...long, cs: { selector: 8, flags: 0x209b00 } })).toBe(64);
    expect(codeBits({ ...long, cs: { selector: 8, flags: 0xc09b00 } })).toBe(32);
    expect(codeBits({ cr0: CR0.PE, efer: 0n, cs: { selector: 8, flags: 0xc09b00 } })).toBe(32);
    expect(codeBits({ cr0: CR0.PE, efer: 0n })).toBe(32);
    expect(codeBits({ cr0: 0n, efer: 0n })).toBe(16);
  });
});

describe('readCodeTask', () => {
  it('reads across a page boundary, and stops where the next page is not mapped', () => {
    const mem = new SparseMemory(1 << 20);
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x20000));
    pt.map(0x400000n, 0x1000, 0x1000);
    pt.map(0x401000n, 0x5000, 0x1000);
    mem.write(0x1ffe, bytes(0x0f, 0x22));
    mem.write(0x5000, bytes(0xd8, 0x90));
    const ctx = pagingContext({ cr0: CR0.PG | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE, efer: EFER.LMA | EFER.LME | EFER.NXE });
    const code = runSync(readCodeTask(ctx, 0x400ffen), mem);
    expect(code.length).toBe(15);
    expect(decodeInstruction(code, 64, 0x400ffen)?.text).toBe('mov cr3, rax');
    expect(runSync(readCodeTask(ctx, 0x401ffen), mem)).toHaveLength(2);
    expect(runSync(readCodeTask(ctx, 0x402000n), mem)).toHaveLength(0);
  });
});

describe('cr3Write', () => {
  const long = { mode: '4-level', pcide: false } as const;
  it('stores the value as is without PCIDE (bit 63 then makes the MOV #GP, which the pre-flight reports)', () => {
    expect(cr3Write(long, 0x400018n)).toEqual({ value: 0x400018n, cr3: 0x400018n, pcid: null, noFlush: false });
    expect(cr3Write(long, 0x8000000000400000n).cr3).toBe(0x8000000000400000n);
  });
  it('with PCIDE: bits 11:0 are the PCID and bit 63 the no-flush hint, never stored', () => {
    expect(cr3Write({ ...long, pcide: true }, 0x8000000000400005n)).toEqual({ value: 0x8000000000400005n, cr3: 0x400005n, pcid: 5, noFlush: true });
    expect(cr3Write({ ...long, pcide: true }, 0x401fffn)).toEqual({ value: 0x401fffn, cr3: 0x401fffn, pcid: 0xfff, noFlush: false });
  });
  it('outside long mode the MOV writes 32 bits', () => {
    expect(cr3Write({ mode: 'PAE', pcide: false }, 0xdead0000_00403020n)).toEqual({ value: 0x403020n, cr3: 0x403020n, pcid: null, noFlush: false });
  });
});
