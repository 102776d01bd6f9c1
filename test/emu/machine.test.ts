/**
 * The Machine facade: stepping, running to breakpoints (continuing from one moves on; a run in
 * slices still stops at one on a slice boundary), watchpoints reporting the start address they
 * were inserted with and RIP after the access, status and events, registers by name, debugger
 * access to virtual and physical memory, reset, and the start-state checks.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, qword } from '../../src/asm/index.js';
import { cr3, rax, rbx, rcx, rdi } from '../../src/asm/registers.js';
import { EmuError, Machine, REGISTER_NAMES, type StopEvent } from '../../src/emu/index.js';
import { CODE_VA, DATA_VA, L, hh, testMachine } from './fixtures.js';

const loop = () =>
  new Assembler(64).mov(rcx, 3).label('top').inc(qword(DATA_VA + 0x18n)).label('after_inc').dec(rcx).label('branch').jnz('top').label('end').hlt();

describe('stepping and breakpoints', () => {
  it('step executes one instruction and reports it', () => {
    const { m, code } = testMachine({ asm: loop() });
    expect(m.step()).toEqual({ reason: 'step', rip: code.address('top') });
    expect(m.status).toBe('paused');
    expect(m.instructions).toBe(1);
  });

  it('run stops before a breakpoint, continuing moves on and stops there again next time round', () => {
    const { m, code } = testMachine({ asm: loop() });
    m.addBreakpoint(code.address('top'));
    m.addBreakpoint(code.address('top'));
    const hits: bigint[] = [];
    for (;;) {
      const s = m.run();
      if (s.reason !== 'breakpoint') {
        expect(s.reason).toBe('halted');
        break;
      }
      hits.push(m.readVirtual(DATA_VA + 0x18n, 1)[0] === undefined ? -1n : BigInt(m.readVirtual(DATA_VA + 0x18n, 1)[0]!));
    }
    expect(hits).toEqual([0n, 1n, 2n]);
    expect(m.removeBreakpoint(code.address('top'))).toBe(true);
    expect(m.removeBreakpoint(code.address('top'))).toBe(false);
  });

  it('a run in budget slices still stops at a breakpoint that falls on a slice boundary', () => {
    const { m, code } = testMachine({ asm: loop() });
    m.addBreakpoint(code.address('end'));
    const reasons: string[] = [];
    let s: StopEvent;
    do {
      s = m.run({ maxInstructions: 1 });
      reasons.push(s.reason);
    } while (s.reason === 'limit');
    expect(s).toEqual({ reason: 'breakpoint', rip: code.address('end') });
    expect(reasons.filter((r) => r === 'limit')).toHaveLength(10);
  });

  it('until, requestStop and the budget', () => {
    const { m, code } = testMachine({ asm: loop() });
    expect(m.run({ until: (x) => x.getRegister('rcx') === 1n }).reason).toBe('until');
    expect(m.getRegister('rip')).toBe(code.address('branch'));
    expect(m.run({ maxInstructions: 2 }).reason).toBe('limit');
    expect(m.status).toBe('running');
    m.requestStop();
    expect(m.run().reason).toBe('halted');
  });
});

describe('watchpoints', () => {
  it('a write watch reports the inserted start address, the accessed one, and RIP after the instruction', () => {
    const { m, code } = testMachine({ asm: loop() });
    m.addWatchpoint(DATA_VA, 0x40, 'write');
    const s = m.run();
    expect(s).toEqual({ reason: 'watchpoint', rip: code.address('after_inc'), watch: { kind: 'write', address: DATA_VA, accessed: DATA_VA + 0x18n, write: true } });
    expect(m.status).toBe('paused');
  });

  it('read and access watches; watches are by virtual address (the identity alias does not trigger)', () => {
    const a = new Assembler(64).mov(rax, qword(L.data + 8)).mov(rbx, qword(DATA_VA + 8n)).label('r').mov(qword(DATA_VA + 8n), rbx).label('w').hlt();
    const { m, code } = testMachine({ asm: a });
    m.addWatchpoint(DATA_VA + 8n, 8, 'read');
    m.addWatchpoint(DATA_VA + 12n, 1, 'access');
    expect(m.run()).toMatchObject({ reason: 'watchpoint', rip: code.address('r'), watch: { kind: 'read', address: DATA_VA + 8n } });
    expect(m.removeWatchpoint(DATA_VA + 8n, 8, 'read')).toBe(true);
    expect(m.run()).toMatchObject({ reason: 'watchpoint', rip: code.address('w'), watch: { kind: 'access', address: DATA_VA + 12n, write: true } });
    expect(() => m.addWatchpoint(DATA_VA, 0, 'write')).toThrow(EmuError);
  });
});

describe('status and events', () => {
  it('emits status changes, stops and serial lines; a halted machine resumes once RIP is moved', () => {
    const { m, code } = testMachine({ asm: new Assembler(64).hlt().label('next').hlt() });
    const seen: string[] = [];
    m.on('status', (s) => seen.push(`status ${s}`)).on('stop', (s) => seen.push(`stop ${s.reason}`));
    m.run();
    expect(seen).toEqual(['status running', 'status halted', 'stop halted']);
    expect(m.step().reason).toBe('halted');
    m.setRegister('rip', code.address('next'));
    expect(m.status).toBe('paused');
    expect(m.step().reason).toBe('halted');
  });

  it('reset restores memory and registers and reports a host reset', () => {
    const { m } = testMachine({ asm: loop() });
    const resets: string[] = [];
    m.on('reset', (e) => resets.push(`${e.guest} ${e.reason}`));
    m.run();
    expect(m.readVirtual(DATA_VA + 0x18n, 1)[0]).toBe(3);
    m.reset();
    expect(m.readVirtual(DATA_VA + 0x18n, 1)[0]).toBe(0);
    expect(m.getRegister('rip')).toBe(CODE_VA);
    expect(m.getRegister('rcx')).toBe(0n);
    expect(resets).toEqual(['false host-reset']);
    expect(m.log.lines).toContain('CPU Reset (CPU 0)');
  });
});

describe('registers by name', () => {
  it('reads every name of QEMU’s target.xml layout, and writes them as a debugger does', () => {
    const { m } = testMachine({ asm: loop() });
    const values = Object.fromEntries(REGISTER_NAMES.map((n) => [n, m.getRegister(n)]));
    expect(values).toMatchObject({ rip: CODE_VA, rsp: hh(L.stackTop), cs: 0x08n, ss: 0x10n, ds: 0x10n, fs: 0n, cr0: 0x80010011n, cr4: 0xa0n, efer: 0xd00n, eflags: 2n });
    m.setRegister('R15', 0xffn);
    expect(m.getRegister('r15')).toBe(0xffn);
    expect(() => m.getRegister('xmm0')).toThrow(/no register named 'xmm0'/);
    expect(() => m.setRegister('eflags', 1n << 40n)).toThrow(EmuError);
  });

  it('a CR3 written by the debugger takes effect at once (the TLB is flushed)', () => {
    const a = new Assembler(64).mov(rax, qword(DATA_VA)).mov(rdi, cr3).mov(rbx, qword(DATA_VA)).hlt();
    const { m } = testMachine({ asm: a });
    m.step();
    expect(m.translate(DATA_VA).ok).toBe(true);
    // An empty PML4: nothing is mapped any more, for the debugger and the CPU alike.
    m.setRegister('cr3', 0x7f000n);
    expect(m.translate(DATA_VA)).toEqual({ ok: false, reason: 'not-present', level: 'PML4' });
    expect(() => m.readVirtual(DATA_VA, 8)).toThrow(/does not translate/);
    // The next fetch walks the empty tables too: the cached code translation went with the flush.
    const rip = m.getRegister('rip').toString(16);
    expect(m.run().reason).toBe('shutdown');
    expect(m.log.lines.find((l) => l.includes('v=0e'))).toContain(`IP=0008:${rip} pc=${rip} SP=0010:ffffffff803ff000 CR2=${rip}`);
    // Delivering it read the (now unmapped) IDT: #DF, whose gate read faulted last and left CR2.
    expect(m.getRegister('cr2')).toBe(hh(L.idt + 8 * 16));
  });
});

describe('debugger memory access', () => {
  it('writes through read-only pages, refuses unmapped ones whole, reads past RAM as zeros (or ones)', () => {
    const { m } = testMachine({ asm: loop(), tweak: (pt) => pt.setEntry(DATA_VA, 'PT', pt.getEntry(DATA_VA, 'PT') & ~2n) });
    m.writeVirtual(DATA_VA, new Uint8Array([9, 8, 7]));
    expect(m.readPhysical(L.data, 3)).toEqual(new Uint8Array([9, 8, 7]));
    const err = (() => {
      try {
        m.readVirtual(hh(0x3ffff8), 16);
        return null;
      } catch (e) {
        return e as EmuError;
      }
    })();
    expect(err?.code).toBe('E_UNMAPPED');
    expect(err?.message).toBe('virtual address 0xffffffff80400000 does not translate (not-present)');
    expect(m.readPhysical(0x10_0000_0000n, 4)).toEqual(new Uint8Array(4));
    const ones = new Machine({ ramSize: 1 << 20, unbackedReads: 'ones', cpu: { rip: 0n, cr0: 0x80000011n, cr3: 0n, cr4: 0x20n, efer: 0x500n } });
    expect(ones.readPhysical(0x100000, 2)).toEqual(new Uint8Array([0xff, 0xff]));
    expect(ones.readPhysical(0xffffe, 2)).toEqual(new Uint8Array([0, 0]));
  });
});

describe('start state', () => {
  it('refuses a machine that is not in long mode, or whose CS is not 64-bit code', () => {
    expect(() => new Machine({ ramSize: 1 << 20, cpu: { rip: 0n, cr0: 0x11n, cr3: 0n, cr4: 0n, efer: 0n } })).toThrow(/not in long mode/);
    const bad = () => testMachine({ asm: loop(), cpu: { cs: 0x10 } });
    expect(bad).toThrow(/not a present 64-bit code segment/);
  });
});
