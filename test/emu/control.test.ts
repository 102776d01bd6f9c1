/**
 * Control flow: CALL/RET (RET imm16), indirect JMP/CALL through registers and memory, LOOPcc and
 * JRCXZ, far JMP through memory and RETFQ reloading CS from the GDT (with the SDM's checks), and
 * IRETQ to the same privilege level.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, mem, qword, ref } from '../../src/asm/index.js';
import { rax, rbx, rcx, rdx, rsp } from '../../src/asm/registers.js';
import { L, hh, testMachine } from './fixtures.js';

describe('near calls, jumps and returns', () => {
  it('call pushes the return address, ret pops it, ret imm16 also releases arguments', () => {
    const a = new Assembler(64)
      .push(1).push(2)
      .call('f').label('back')
      .hlt()
      .label('f').mov(rax, qword(rsp)).mov(rbx, qword(rsp, 8)).db(0xc2, 0x10, 0x00); // ret 16
    const { m, code } = testMachine({ asm: a });
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rax')).toBe(code.address('back'));
    expect(m.getRegister('rbx')).toBe(2n);
    expect(m.getRegister('rsp')).toBe(hh(L.stackTop));
  });

  it('jmp and call through a register and through memory', () => {
    const a = new Assembler(64)
      .mov(rax, ref('t1')).jmp(rax).hlt()
      .label('t1').call(qword('slot')).hlt()
      .label('t2').mov(rbx, 0x22).ret()
      .align(8).label('slot').dq(ref('t2'));
    const { m } = testMachine({ asm: a });
    m.run();
    expect(m.getRegister('rbx')).toBe(0x22n);
    expect(m.getRegister('rsp')).toBe(hh(L.stackTop));
  });

  it('loop counts RCX down; loopne stops on ZF; jrcxz branches on RCX=0', () => {
    const a = new Assembler(64)
      .mov(rcx, 5).xor(rax, rax).label('l').inc(rax).db(0xe2, 0xfb) // loop l
      .mov(rcx, 10).mov(rbx, 0).label('m').inc(rbx).cmp(rbx, 3).db(0xe0, 0xf7) // loopne m
      .mov(rdx, rcx).xor(rcx, rcx).db(0xe3, 0x01).hlt().hlt();
    const { m, code } = testMachine({ asm: a });
    m.run();
    expect([m.getRegister('rax'), m.getRegister('rbx'), m.getRegister('rdx')]).toEqual([5n, 3n, 7n]);
    expect(m.getRegister('rip')).toBe(code.end);
  });
});

describe('far transfers and IRETQ', () => {
  it('jmp far [m16:64] and retfq reload CS from the GDT, setting the descriptor’s accessed bit', () => {
    const a = new Assembler(64)
      .jmpFar(mem('ptr'))
      .label('target').push(0x08).push(ref('after')).retf()
      .label('after').hlt()
      .align(8).label('ptr').dq(ref('target')).dw(0x08);
    const { m, code } = testMachine({ asm: a, tweak: (_pt, mem_) => mem_.write64(L.gdt + 8, mem_.read64(L.gdt + 8) & ~(1n << 40n)) });
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rip')).toBe(code.address('after') + 1n);
    expect(m.getRegister('cs')).toBe(0x08n);
    expect((m.readPhysical(L.gdt + 13, 1)[0]! & 1)).toBe(1);
  });

  it('a far jump to a data segment is #GP(selector); to a DPL-3 code segment from CPL 0 too', () => {
    for (const sel of [0x10, 0x23]) {
      const a = new Assembler(64).label('j').jmpFar(mem('ptr')).hlt().label('gp').hlt().align(8).label('ptr').dq(0).dw(sel);
      const { m, code } = testMachine({ asm: a, gates: { 13: { at: 'gp' } } });
      m.run();
      const f = new DataView(m.readVirtual(m.getRegister('rsp'), 16).buffer);
      expect([f.getBigUint64(0, true), f.getBigUint64(8, true)]).toEqual([BigInt(sel & 0xfffc), code.address('j')]);
    }
  });

  it('a far jump into compatibility-mode code stops the machine as unsupported, state untouched', () => {
    const a = new Assembler(64).label('j').jmpFar(mem('ptr')).hlt().align(8).label('ptr').dq(0).dw(0x38);
    const { m, code } = testMachine({
      asm: a,
      cpu: { gdtr: { base: hh(L.gdt), limit: 0x3f } },
      tweak: (_pt, mem_) => mem_.write64(L.gdt + 0x38, 0x00cf9b000000ffffn),
    });
    const stop = m.run();
    expect(stop.reason).toBe('unsupported');
    expect(stop.message).toContain('compatibility mode');
    expect(m.getRegister('rip')).toBe(code.address('j'));
    expect(m.status).toBe('paused');
  });

  it('iretq to the same level restores RIP, CS, RFLAGS, RSP and SS', () => {
    const a = new Assembler(64)
      .mov(rax, rsp).push(0x10).push(rax).push(0x0d7).push(0x08).push(ref('there')).iretq()
      .hlt().label('there').hlt();
    const { m, code } = testMachine({ asm: a });
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('there') + 1n);
    expect(m.getRegister('rsp')).toBe(hh(L.stackTop));
    expect(Number(m.getRegister('eflags')) & 0xfff).toBe(0x0d7);
  });
});
