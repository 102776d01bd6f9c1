/**
 * Accessed and dirty bits: the CPU's own accesses set A on every entry of the translation and D
 * on the leaf when writing (a write through a clean cached translation walks again to set it),
 * a faulting access sets nothing, and the debugger's reads and writes never set either.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, qword } from '../../src/asm/index.js';
import { rax, rcx } from '../../src/asm/registers.js';
import type { PageTables } from '../../src/image/pageTables.js';
import { DATA_VA, testMachine } from './fixtures.js';

const LEVELS = ['PML4', 'PDPT', 'PD', 'PT'] as const;

/** The A (0x20) and D (0x40) bits of the entries for `va`, top level first, as read from the machine's memory. */
function ad(m: ReturnType<typeof testMachine>, va: bigint): string[] {
  return LEVELS.map((l) => {
    const at = m.pt.entryAddress(va, l, false)!;
    const v = Number(m.m.readPhysical(at, 1)[0]!);
    return `${v & 0x20 ? 'A' : '-'}${v & 0x40 ? 'D' : '-'}`;
  });
}

const clearAD = (pt: PageTables) => {
  for (const l of LEVELS) pt.setEntry(DATA_VA, l, pt.getEntry(DATA_VA, l) & ~0x60n);
};

describe('A/D bits', () => {
  it('a read sets A on every level, a write then sets D on the leaf (through the clean cached entry)', () => {
    const t = testMachine({ asm: new Assembler(64).mov(rax, qword(DATA_VA)).hlt().mov(qword(DATA_VA), rax).hlt(), tweak: clearAD });
    expect(ad(t, DATA_VA)).toEqual(['--', '--', '--', '--']);
    t.m.run();
    expect(ad(t, DATA_VA)).toEqual(['A-', 'A-', 'A-', 'A-']);
    t.m.setRegister('rip', t.m.getRegister('rip'));
    t.m.run();
    expect(ad(t, DATA_VA)).toEqual(['A-', 'A-', 'A-', 'AD']);
  });

  it('D goes to the leaf of a 2 MiB page', () => {
    const big = 0xffffffffc0000000n;
    const t = testMachine({ asm: new Assembler(64).mov(qword(big + 0x1234n), rax).hlt(), tweak: (pt) => pt.map(big, 0x200000, 0x200000) });
    t.m.run();
    const pde = t.pt.entryAddress(big, 'PD', false)!;
    expect(t.m.readPhysical(pde, 1)[0]! & 0x60).toBe(0x60);
  });

  it('the debugger reads and writes without setting A or D', () => {
    const t = testMachine({ asm: new Assembler(64).hlt(), tweak: clearAD });
    t.m.readVirtual(DATA_VA, 64);
    t.m.writeVirtual(DATA_VA + 8n, new Uint8Array([1, 2, 3]));
    expect(t.m.translate(DATA_VA).ok).toBe(true);
    expect(ad(t, DATA_VA)).toEqual(['--', '--', '--', '--']);
  });

  it('an access that faults sets nothing', () => {
    const va = 0x00007f0000000000n;
    const t = testMachine({
      asm: new Assembler(64).mov(rcx, va).mov(qword(rcx), rax).label('pf').hlt(),
      gates: { 14: { at: 'pf' } },
      tweak: (pt) => pt.map(va, 0x205000, 4096, { write: false }),
    });
    t.m.run();
    expect(t.m.getRegister('cr2')).toBe(va);
    expect(ad(t, va)).toEqual(['--', '--', '--', '--']);
  });
});
