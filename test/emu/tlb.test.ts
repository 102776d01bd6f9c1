/**
 * The TLB: a translation is used stale until INVLPG or a CR3 load drops it; global pages survive
 * CR3 loads (not under the 'qemu-tcg' model) until CR4.PGE changes; with PCIDs, translations are
 * kept per PCID and bit 63 of the CR3 value skips the flush. Each program reads a data page,
 * repoints its PTE to another frame, and reads again.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, mem, qword } from '../../src/asm/index.js';
import { cr3, cr4, rax, rbx, rcx, rdi, rdx, rsi } from '../../src/asm/registers.js';
import type { TlbModel } from '../../src/emu/index.js';
import { DATA_VA, L, testMachine } from './fixtures.js';

const OLD = 0x01d01d01d01dn;
const NEW = 0x0e30e30e30e3n;

/** `bts rdx, 63`: sets the no-flush bit of a CR3 value. */
const btsRdx63 = (a: Assembler): Assembler => a.db(0x48, 0x0f, 0xba, 0xea, 0x3f);

/**
 * Reads the data page, repoints its PTE (RSI = its address, RDI = the new entry) to a frame
 * holding NEW, reads again, runs `body`, reads a third time: returns the three values.
 */
function stale(body: (a: Assembler) => Assembler, o: { global?: boolean; cr4?: bigint; tlbModel?: TlbModel } = {}): bigint[] {
  let pte = 0;
  const a = new Assembler(64).mov(rax, qword(DATA_VA)).mov(qword(rsi), rdi).mov(rbx, qword(DATA_VA));
  body(a).mov(rcx, qword(DATA_VA)).hlt();
  const { m } = testMachine({
    asm: a,
    cpu: { cr4: o.cr4 ?? 0xa0n },
    tweak: (pt, mem) => {
      mem.write64(L.data, OLD);
      mem.write64(L.data + 0x1000, NEW);
      pte = pt.entryAddress(DATA_VA, 'PT')!;
      if (o.global) pt.setEntry(DATA_VA, 'PT', pt.getEntry(DATA_VA, 'PT') | 0x100n);
    },
  });
  if (o.tlbModel) m.cpu.tlbModel = o.tlbModel;
  m.setRegister('rsi', BigInt(pte));
  m.setRegister('rdi', BigInt(L.data + 0x1000) | 0x3n | (o.global ? 0x100n : 0n));
  expect(m.run().reason).toBe('halted');
  return [m.getRegister('rax'), m.getRegister('rbx'), m.getRegister('rcx')];
}

describe('stale translations', () => {
  it('are used until INVLPG drops them', () => {
    expect(stale((a) => a.invlpg(mem(DATA_VA)))).toEqual([OLD, OLD, NEW]);
  });

  it('are used until a CR3 load drops them', () => {
    expect(stale((a) => a.mov(rdx, cr3).mov(cr3, rdx))).toEqual([OLD, OLD, NEW]);
  });

  it('survive when nothing drops them', () => {
    expect(stale((a) => a.nop())).toEqual([OLD, OLD, OLD]);
  });
});

describe('global pages', () => {
  it('survive a CR3 load', () => {
    expect(stale((a) => a.mov(rdx, cr3).mov(cr3, rdx), { global: true })).toEqual([OLD, OLD, OLD]);
  });

  it('are dropped by INVLPG and by a CR4.PGE change', () => {
    expect(stale((a) => a.invlpg(mem(DATA_VA)), { global: true })).toEqual([OLD, OLD, NEW]);
    expect(stale((a) => a.mov(rdx, cr4).xor(rdx, 0x80).mov(cr4, rdx).xor(rdx, 0x80).mov(cr4, rdx), { global: true })).toEqual([OLD, OLD, NEW]);
  });

  it("do not survive a CR3 load under the 'qemu-tcg' model, which drops everything like QEMU 7.2", () => {
    expect(stale((a) => a.mov(rdx, cr3).mov(cr3, rdx), { global: true, tlbModel: 'qemu-tcg' })).toEqual([OLD, OLD, NEW]);
  });
});

describe('PCIDs (CR4.PCIDE)', () => {
  const PCIDE = 0xa0n | (1n << 17n);

  it('bit 63 of the value moved to CR3 keeps the PCID’s translations; without it they go', () => {
    expect(stale((a) => btsRdx63(a.mov(rdx, cr3)).mov(cr3, rdx), { cr4: PCIDE })).toEqual([OLD, OLD, OLD]);
    expect(stale((a) => a.mov(rdx, cr3).mov(cr3, rdx), { cr4: PCIDE })).toEqual([OLD, OLD, NEW]);
  });

  it('keeps translations per PCID: switching to PCID 1 and back (no-flush) finds PCID 0’s stale entry', () => {
    const body = (a: Assembler) => btsRdx63(a.mov(rdx, cr3).or(rdx, 1).mov(cr3, rdx).mov(rcx, qword(DATA_VA)).mov(rdx, cr3).and(rdx, -4096)).mov(cr3, rdx);
    expect(stale(body, { cr4: PCIDE })).toEqual([OLD, OLD, OLD]);
  });

  it('MOV to CR3 with bit 63 set and PCIDE off is #GP', () => {
    const a = btsRdx63(new Assembler(64).mov(rdx, cr3)).label('w').mov(cr3, rdx).hlt().label('gp').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 13: { at: 'gp' } } });
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('gp') + 1n);
  });
});
