/**
 * Exceptions like hardware: the double-fault rules as a table, exception and interrupt frames
 * byte for byte (error code, RIP, CS, RFLAGS with RF, RSP, SS; 16-byte alignment), interrupt
 * versus trap gates, IST stacks, RSP0 on a privilege change, #NP and #GP from bad gates, #DF
 * when #PF delivery faults, canonical #GP/#SS, #UD for what the emulator does not implement,
 * and the triple fault under each action.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, qword } from '../../src/asm/index.js';
import { cr3, rax, rbp, rbx, rcx, rdi, rsi, rsp } from '../../src/asm/registers.js';
import { EmuError, escalate, type Machine } from '../../src/emu/index.js';
import { CODE_VA, L, hh, testMachine } from './fixtures.js';

const UNMAPPED = 0x00007f0000000000n;

/** `n` qwords at `va`, lowest address first. */
function qwords(m: Machine, va: bigint, n: number): bigint[] {
  const b = m.readVirtual(va, n * 8);
  const dv = new DataView(b.buffer);
  return Array.from({ length: n }, (_, k) => dv.getBigUint64(k * 8, true));
}

describe('the double-fault rules (SDM table 6-5)', () => {
  it('classifies every pair of benign, contributory and page-fault exceptions', () => {
    const kind = (a: number, b: number) => escalate(a, b).kind;
    expect(kind(-1, 14)).toBe('deliver');
    expect(kind(14, 14)).toBe('double-fault');
    expect(kind(14, 13)).toBe('double-fault');
    expect(kind(14, 6)).toBe('deliver');
    expect(kind(13, 14)).toBe('deliver');
    expect(kind(13, 11)).toBe('double-fault');
    expect(kind(0, 12)).toBe('double-fault');
    expect(kind(10, 3)).toBe('deliver');
    expect(kind(6, 13)).toBe('deliver');
    expect(kind(8, 6)).toBe('triple-fault');
    expect(kind(8, 14)).toBe('triple-fault');
  });
});

describe('exception frames', () => {
  it('#PF: error code, faulting RIP, CS, RFLAGS with RF, old RSP and SS on a 16-byte aligned stack; IF cleared by an interrupt gate', () => {
    const a = new Assembler(64).mov(rcx, UNMAPPED).label('fault').mov(rbx, qword(rcx)).hlt().label('pf').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 14: { at: 'pf' } }, cpu: { rflags: 0x202, regs: { rsp: hh(L.stackTop) - 8n } } });
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rip')).toBe(code.address('pf') + 1n);
    expect(m.getRegister('cr2')).toBe(UNMAPPED);
    const sp = m.getRegister('rsp');
    expect(sp).toBe(hh(L.stackTop) - 16n - 48n);
    expect(qwords(m, sp, 6)).toEqual([0x0n, code.address('fault'), 0x08n, 0x10202n, hh(L.stackTop) - 8n, 0x10n]);
    expect(Number(m.getRegister('eflags')) & 0x200).toBe(0);
  });

  it('int3 through a trap gate: no error code, RIP after int3, RF clear, IF kept', () => {
    const a = new Assembler(64).label('bp').int3().label('after').hlt().label('h').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 3: { at: 'h', type: 0xf } }, cpu: { rflags: 0x202 } });
    m.run();
    expect(qwords(m, m.getRegister('rsp'), 5)).toEqual([code.address('after'), 0x08n, 0x202n, hh(L.stackTop), 0x10n]);
    expect(Number(m.getRegister('eflags')) & 0x200).toBe(0x200);
    expect(m.log.text()).toContain(`     0: v=03 e=0000 i=1 cpl=0 IP=0008:${code.address('bp').toString(16)}`);
  });

  it('IST: the gate switches to IST1 from the TSS even without a privilege change, SS stays', () => {
    const a = new Assembler(64).int3().hlt().label('h').hlt();
    const { m } = testMachine({ asm: a, gates: { 3: { at: 'h', ist: 1 } } });
    m.run();
    expect(m.getRegister('rsp')).toBe(hh(L.istTop) - 40n);
    expect(m.getRegister('ss')).toBe(0x10n);
    expect(qwords(m, hh(L.istTop) - 16n, 2)).toEqual([hh(L.stackTop), 0x10n]);
  });

  it('CPL 3 to 0: the stack comes from RSP0, SS becomes null, the frame holds the user SS:RSP; user HLT is #GP(0); a DPL-0 gate is #GP(vector*8+2)', () => {
    const userStack = hh(0x380000);
    const a = new Assembler(64)
      .push(0x1b).push(rax).push(0x202).push(0x23).push(rbx).iretq()
      .label('user').int3().label('after_int3').hlt()
      .label('bp').mov(rax, qword(rsp)).push(0x1b).push(rcx).push(0x202).push(0x23).push(rax).iretq()
      .label('gp').hlt();
    const { m, code } = testMachine({
      asm: a,
      flags: { user: true },
      gates: { 3: { at: 'bp', dpl: 3 }, 13: { at: 'gp' } },
      cpu: { regs: { rax: userStack, rcx: userStack } },
    });
    m.setRegister('rbx', code.address('user'));
    // Stop in the #BP handler to look at the frame.
    m.addBreakpoint(code.address('bp'));
    expect(m.run().reason).toBe('breakpoint');
    expect(m.getRegister('cs')).toBe(0x08n);
    expect(m.getRegister('ss')).toBe(0n);
    const sp = m.getRegister('rsp');
    expect(sp).toBe(hh(L.rsp0Top) - 40n);
    expect(qwords(m, sp, 5)).toEqual([code.address('after_int3'), 0x23n, 0x202n, userStack, 0x1bn]);
    // Back to user mode at `after_int3`, whose HLT is privileged.
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rip')).toBe(code.address('gp') + 1n);
    expect(qwords(m, m.getRegister('rsp'), 6)).toEqual([0n, code.address('after_int3'), 0x23n, 0x10202n, userStack, 0x1bn]);
    expect(m.log.text()).toContain('v=0d e=0000 i=0 cpl=3 IP=0023:');
  });

  it('a DPL-0 gate refuses int3 from CPL 3 with #GP(0x1a)', () => {
    const a = new Assembler(64).push(0x1b).push(rax).push(0x202).push(0x23).push(rbx).iretq().label('user').int3().label('gp').hlt();
    const { m, code } = testMachine({ asm: a, flags: { user: true }, gates: { 3: { at: 'gp' }, 13: { at: 'gp' } }, cpu: { regs: { rax: hh(0x380000) } } });
    m.setRegister('rbx', code.address('user'));
    m.run();
    expect(qwords(m, m.getRegister('rsp'), 2)).toEqual([0x1an, code.address('user')]);
  });
});

describe('a handled #PF', () => {
  it('the handler maps the page and returns with IRETQ: RF (set in the frame) is restored and cleared by the retried instruction', () => {
    const va = 0x00007f0000001000n;
    const a = new Assembler(64)
      .mov(rcx, va).label('fault').mov(rax, qword(rcx)).hlt()
      .label('pf').mov(qword(rsi), rdi).add(rsp, 8).iretq();
    let pte = 0;
    const { m, code } = testMachine({
      asm: a,
      gates: { 14: { at: 'pf' } },
      tweak: (pt, mem) => {
        pt.map(va, 0x205000, 4096);
        mem.write64(0x205000, 0x600dn);
        pte = pt.entryAddress(va, 'PT')!;
        pt.setEntry(va, 'PT', 0n);
      },
    });
    m.setRegister('rsi', BigInt(pte));
    m.setRegister('rdi', 0x205003n);
    expect(m.run({ until: (x) => x.getRegister('rip') === code.address('fault') && (Number(x.getRegister('eflags')) & 0x10000) !== 0 }).reason).toBe('until');
    expect(m.step().reason).toBe('step');
    expect(m.getRegister('rax')).toBe(0x600dn);
    expect(Number(m.getRegister('eflags')) & 0x10000).toBe(0);
  });
});

describe('single-step', () => {
  it('TF traps (#DB, vector 1) after each instruction, with RIP after it; the handler runs with TF clear', () => {
    const a = new Assembler(64).push(0x302).db(0x9d).label('first').nop().label('second').nop().hlt().label('db').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 1: { at: 'db' } } });
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('db') + 1n);
    expect(qwords(m, m.getRegister('rsp'), 3)).toEqual([code.address('second'), 0x08n, 0x302n]);
    expect(Number(m.getRegister('eflags')) & 0x100).toBe(0);
    expect(m.log.text()).toContain(`v=01 e=0000 i=0 cpl=0 IP=0008:${code.address('second').toString(16)}`);
  });
});

describe('faults from the gate itself', () => {
  it('#NP for a not-present gate: vector*8+2, plus EXT for an exception', () => {
    const a = new Assembler(64).int3().hlt().label('np').hlt().label('ud').ud2();
    const { m } = testMachine({ asm: a, gates: { 3: { at: 'np', present: false }, 11: { at: 'np' } } });
    m.run();
    expect(qwords(m, m.getRegister('rsp'), 1)).toEqual([0x1an]);
    const b = new Assembler(64).ud2().label('np').hlt();
    const t = testMachine({ asm: b, gates: { 6: { at: 'np', present: false }, 11: { at: 'np' } } });
    t.m.run();
    expect(qwords(t.m, t.m.getRegister('rsp'), 1)).toEqual([0x33n]);
    expect(t.m.log.text()).toContain('check_exception old: 0xffffffff new 0xb');
  });

  it('#GP for a vector past the IDT limit', () => {
    const a = new Assembler(64).int(0x20).hlt().label('gp').hlt();
    const { m } = testMachine({ asm: a, gates: { 13: { at: 'gp' } }, cpu: { idtr: { base: hh(L.idt), limit: 0xff } } });
    m.run();
    expect(qwords(m, m.getRegister('rsp'), 1)).toEqual([0x102n]);
  });
});

describe('canonical addresses', () => {
  const NONCANON = 0x0000800000000000n;
  it('a data access is #GP(0), a stack access #SS(0), a jump target #GP(0) at the jump', () => {
    const a = new Assembler(64).mov(rcx, NONCANON).label('load').mov(rax, qword(rcx)).hlt().label('gp').hlt().label('ss').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 13: { at: 'gp' }, 12: { at: 'ss' } } });
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('gp') + 1n);
    expect(qwords(m, m.getRegister('rsp'), 2)).toEqual([0n, code.address('load')]);

    const b = new Assembler(64).mov(rbp, NONCANON).label('load').mov(rax, qword(rbp, 8)).hlt().label('ss').hlt();
    const s = testMachine({ asm: b, gates: { 12: { at: 'ss' } } });
    s.m.run();
    expect(s.m.getRegister('rip')).toBe(s.code.address('ss') + 1n);

    const c = new Assembler(64).mov(rax, NONCANON).label('jump').jmp(rax).label('gp').hlt();
    const j = testMachine({ asm: c, gates: { 13: { at: 'gp' } } });
    j.m.run();
    expect(qwords(j.m, j.m.getRegister('rsp'), 2)).toEqual([0n, j.code.address('jump')]);
  });
});

describe('#DF and the triple fault', () => {
  /** Code that faults at `fault` with the stack unmapped, so #PF delivery faults too. */
  const program = () => new Assembler(64).mov(rsp, UNMAPPED).label('fault').mov(rax, qword(rsp)).hlt().label('pf').hlt().label('df').hlt();

  it('a #PF while delivering #PF becomes #DF (error code 0), delivered here through IST1', () => {
    const { m, code } = testMachine({ asm: program(), gates: { 14: { at: 'pf' }, 8: { at: 'df', ist: 1 } } });
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rip')).toBe(code.address('df') + 1n);
    expect(m.getRegister('cr2')).toBe(UNMAPPED - 8n);
    expect(qwords(m, m.getRegister('rsp'), 6)).toEqual([0n, code.address('fault'), 0x08n, 0x2n, UNMAPPED, 0x10n]);
    const log = m.log.lines.filter((l) => l.startsWith('check_exception') || l.includes(': v='));
    expect(log.map((l) => l.replace(/ IP=.*/, ''))).toEqual([
      'check_exception old: 0xffffffff new 0xe',
      '     0: v=0e e=0000 i=0 cpl=0',
      'check_exception old: 0xe new 0xe',
      '     1: v=08 e=0000 i=0 cpl=0',
    ]);
  });

  it('shutdown: a fault while delivering #DF stops the machine with the state at the fault; only a reset restarts it', () => {
    const { m, code } = testMachine({ asm: program(), gates: { 14: { at: 'pf' }, 8: { at: 'df' } }, tripleFault: 'shutdown' });
    const events: string[] = [];
    m.on('shutdown', (e) => events.push(`shutdown ${e.reason}`)).on('stop', (e) => events.push(`stop ${e.reason}`));
    expect(m.run().reason).toBe('shutdown');
    expect(m.status).toBe('shutdown');
    expect(events).toEqual(['shutdown guest-reset', 'stop shutdown']);
    expect(m.getRegister('rip')).toBe(code.address('fault'));
    expect(m.getRegister('rsp')).toBe(UNMAPPED);
    expect(m.log.lines.slice(-2)).toEqual(['check_exception old: 0x8 new 0xe', 'Triple fault']);
    expect(() => m.run()).toThrow(EmuError);
    m.reset();
    expect(m.status).toBe('paused');
    expect(m.getRegister('rip')).toBe(CODE_VA);
  });

  it('pause: the machine pauses at the fault and can be looked at and continued (faulting again)', () => {
    const { m, code } = testMachine({ asm: program(), gates: { 14: { at: 'pf' }, 8: { at: 'df' } }, tripleFault: 'pause' });
    expect(m.run().reason).toBe('triple-fault');
    expect(m.status).toBe('paused');
    expect(m.getRegister('rip')).toBe(code.address('fault'));
    expect(m.run().reason).toBe('triple-fault');
    expect(m.log.lines.filter((l) => l === 'Triple fault')).toHaveLength(2);
  });

  it('reset: the machine goes back to its start state (memory too) and keeps running, logging CPU Reset', () => {
    const a = new Assembler(64).inc(qword(CODE_VA + 0x800n)).mov(rax, 0x40000n).mov(cr3, rax).hlt();
    const { m } = testMachine({ asm: a, tripleFault: 'reset', cpu: { idtr: { base: 0n, limit: 0 } } });
    const resets: string[] = [];
    m.on('reset', (e) => resets.push(e.reason));
    expect(m.run({ maxInstructions: 20 }).reason).toBe('limit');
    expect(m.status).toBe('running');
    expect(resets.length).toBeGreaterThanOrEqual(4);
    expect(resets.every((r) => r === 'guest-reset')).toBe(true);
    // The counter the program increments was restored by every reset.
    expect(m.readVirtual(CODE_VA + 0x800n, 1)[0]).toBeLessThanOrEqual(1);
    const i = m.log.lines.indexOf('CPU Reset (CPU 0)');
    expect(m.log.lines[i - 1]).toBe('Triple fault');
    expect(m.log.lines[i + 1]).toMatch(/^RAX=0000000000040000 /);
  });
});

describe('#UD', () => {
  it('an instruction the emulator does not implement raises #UD and is logged, never skipped', () => {
    const a = new Assembler(64).label('sse').db(0x0f, 0x28, 0xc1).hlt().label('ud').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 6: { at: 'ud' } } });
    m.run();
    expect(m.getRegister('rip')).toBe(code.address('ud') + 1n);
    expect(qwords(m, m.getRegister('rsp'), 1)).toEqual([code.address('sse')]);
    expect(m.log.lines).toContain(`pagewalk-emu: unsupported instruction at 0008:${code.address('sse').toString(16)}: movaps xmm0,xmm1 (0f 28 c1), raising #UD`);
  });

  it('an invalid opcode is #UD without an unsupported-instruction line', () => {
    const a = new Assembler(64).db(0x06).hlt().label('ud').hlt();
    const { m } = testMachine({ asm: a, gates: { 6: { at: 'ud' } } });
    m.run();
    expect(m.log.lines.some((l) => l.startsWith('pagewalk-emu'))).toBe(false);
    expect(m.log.text()).toContain('v=06 e=0000');
  });
});
