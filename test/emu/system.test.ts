/**
 * System instructions: control-register writes and their #GP rules, MSRs and EFER, CPUID as the
 * machine is configured, descriptor-table loads and stores, LTR's busy bit, segment loads that
 * set accessed bits (and fault on a read-only GDT, as on real hardware), port I/O to the 16550
 * and its privilege check, flag instructions, SWAPGS, PKRU, RDTSC and HLT.
 */
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/asm/index.js';
import { al, ax, ds, dx, rax, rbx, rsi, ss } from '../../src/asm/registers.js';
import { DATA_VA, L, hh, testMachine } from './fixtures.js';
import { Harness, decodesAs, le } from './harness.js';

/** Runs `hex` on a harness whose #GP, #UD and #PF handlers halt; returns the vector taken ('ok' when none). */
function outcome(h: Harness, hex: string, init: Parameters<Harness['exec']>[1] = {}): string {
  const stop = h.exec(hex, init);
  const rip = h.reg('rip');
  if (rip === HANDLERS + 0n) return '#GP';
  if (rip === HANDLERS + 0x10n) return '#UD';
  if (rip === HANDLERS + 0x20n) return '#PF';
  expect(stop.reason).toBe('step');
  return 'ok';
}
const HANDLERS = hh(0x180000);
const gates = { 13: { at: HANDLERS }, 6: { at: HANDLERS + 0x10n }, 14: { at: HANDLERS + 0x20n } };

describe('control registers', () => {
  const h = new Harness({ gates });

  it('CR0: #GP for clearing PG in long mode, NW without CD, bits 63:32; WP may change', () => {
    expect(decodesAs('0f 22 c0')).toBe('mov cr0, rax');
    expect(outcome(h, '0f 22 c0', { regs: { rax: 0x00010011n } })).toBe('#GP');
    expect(outcome(h, '0f 22 c0', { regs: { rax: 0xa0010011n } })).toBe('#GP');
    expect(outcome(h, '0f 22 c0', { regs: { rax: 0x1_80010011n } })).toBe('#GP');
    expect(outcome(h, '0f 22 c0', { regs: { rax: 0x80000011n } })).toBe('ok');
    expect(h.reg('cr0')).toBe(0x80000011n);
    expect(outcome(h, '0f 22 c0', { regs: { rax: 0x80010001n } })).toBe('ok');
    expect(h.reg('cr0')).toBe(0x80010011n);
  });

  it('CR4: #GP for LA57 or clearing PAE in long mode, unsupported bits, PCIDE with a PCID in CR3', () => {
    expect(outcome(h, '0f 22 e0', { regs: { rax: 0xa0n | (1n << 12n) } })).toBe('#GP');
    expect(outcome(h, '0f 22 e0', { regs: { rax: 0x80n } })).toBe('#GP');
    expect(outcome(h, '0f 22 e0', { regs: { rax: 0xa0n | (1n << 13n) } })).toBe('#GP');
    expect(outcome(h, '0f 22 e0', { regs: { rax: 0xa0n | (1n << 20n) | (1n << 21n) | (1n << 22n) } })).toBe('ok');
    expect(h.reg('cr4')).toBe(0x7000a0n);
    h.m.setRegister('cr4', 0xa0n);
    const cr3 = h.reg('cr3');
    h.m.setRegister('cr3', cr3 | 1n);
    expect(outcome(h, '0f 22 e0', { regs: { rax: 0xa0n | (1n << 17n) } })).toBe('#GP');
    h.m.setRegister('cr3', cr3);
  });

  it('CR8 holds 4 bits; CR1 does not exist (#UD); CR2 is writable', () => {
    expect(outcome(h, '44 0f 22 c0', { regs: { rax: 5n } })).toBe('ok');
    expect(decodesAs('44 0f 22 c0')).toBe('mov cr8, rax');
    expect(h.reg('cr8')).toBe(5n);
    expect(outcome(h, '44 0f 22 c0', { regs: { rax: 16n } })).toBe('#GP');
    expect(outcome(h, '0f 20 c8')).toBe('#UD');
    expect(outcome(h, '0f 22 d0', { regs: { rax: 0x1234n } })).toBe('ok');
    expect(h.reg('cr2')).toBe(0x1234n);
  });
});

describe('MSRs and CPUID', () => {
  const h = new Harness({ gates });

  it('EFER reads back LME|LMA|NXE; unknown MSRs and unsupported EFER bits are #GP', () => {
    expect(outcome(h, '0f 32', { regs: { rcx: 0xc0000080n } })).toBe('ok');
    expect([h.reg('rax'), h.reg('rdx')]).toEqual([0xd00n, 0n]);
    expect(outcome(h, '0f 30', { regs: { rcx: 0xc0000080n, rax: 0x1d00n } })).toBe('#GP');
    expect(outcome(h, '0f 32', { regs: { rcx: 0x1234n } })).toBe('#GP');
    expect(outcome(h, '0f 30', { regs: { rcx: 0xc0000080n, rax: 0x500n } })).toBe('ok');
    expect(h.reg('efer')).toBe(0x500n);
    h.m.setRegister('efer', 0xd00n);
  });

  it('FS/GS bases through WRMSR (canonical only), SWAPGS exchanges GS with KERNEL_GS_BASE', () => {
    expect(outcome(h, '0f 30', { regs: { rcx: 0xc0000101n, rax: 0x1000n, rdx: 0xffff8000n } })).toBe('ok');
    expect(h.reg('gs_base')).toBe(0xffff800000001000n);
    expect(outcome(h, '0f 30', { regs: { rcx: 0xc0000100n, rdx: 0x8000n } })).toBe('#GP');
    h.m.setRegister('k_gs_base', 0x5000n);
    expect(outcome(h, '0f 01 f8', { gsBase: 0x7000n })).toBe('ok');
    expect([h.reg('gs_base'), h.reg('k_gs_base')]).toEqual([0x5000n, 0x7000n]);
  });

  it('CPUID says GenuineIntel, MAXPHYADDR and the linear width, NX, 1 GiB pages, LA57, SMEP/SMAP/PKU as configured', () => {
    outcome(h, '0f a2', { regs: { rax: 0n } });
    const text = [h.reg('rbx'), h.reg('rdx'), h.reg('rcx')].map((v) => Buffer.from(le(v, 4)).toString('latin1')).join('');
    expect(text).toBe('GenuineIntel');
    outcome(h, '0f a2', { regs: { rax: 0x80000008n } });
    expect(h.reg('rax')).toBe(0x3028n);
    outcome(h, '0f a2', { regs: { rax: 0x80000001n } });
    expect(Number(h.reg('rdx')) & ((1 << 20) | (1 << 26) | (1 << 29))).toBe((1 << 20) | (1 << 26) | (1 << 29));
    outcome(h, '0f a2', { regs: { rax: 7n, rcx: 0n } });
    expect(Number(h.reg('rbx')) & ((1 << 7) | (1 << 20))).toBe((1 << 7) | (1 << 20));
    expect(Number(h.reg('rcx')) & (1 << 16)).toBe(0);
    const other = new Harness({ features: { maxPhyAddr: 52, la57: true, pdpe1gb: false, smap: false } });
    other.exec('0f a2', { regs: { rax: 0x80000008n } });
    expect(other.reg('rax')).toBe(0x3934n);
    other.exec('0f a2', { regs: { rax: 0x80000001n } });
    expect(Number(other.reg('rdx')) & (1 << 26)).toBe(0);
    other.exec('0f a2', { regs: { rax: 7n, rcx: 0n } });
    expect(Number(other.reg('rcx')) & (1 << 16)).toBe(1 << 16);
    expect(Number(other.reg('rbx')) & (1 << 20)).toBe(0);
  });
});

describe('descriptor tables and segments', () => {
  it('lgdt/sgdt and lidt/sidt round-trip; a non-canonical base is #GP', () => {
    const h = new Harness({ gates });
    expect(outcome(h, '0f 01 13', { regs: { rbx: DATA_VA }, data: [[0, new Uint8Array([0x37, 0, ...le(hh(L.gdt))])]] })).toBe('ok');
    expect(outcome(h, '0f 01 03', { regs: { rbx: DATA_VA + 0x20n } })).toBe('ok');
    expect(decodesAs('0f 01 03')).toBe('sgdt [rbx]');
    expect(h.data(0x20, 2)).toBe(0x37n);
    expect(h.data(0x22, 8)).toBe(hh(L.gdt));
    expect(outcome(h, '0f 01 1b', { regs: { rbx: DATA_VA }, data: [[0, new Uint8Array([0xff, 0x0f, ...le(0x0000800000000000n)])]] })).toBe('#GP');
    expect(outcome(h, '0f 01 0b', { regs: { rbx: DATA_VA } })).toBe('ok');
    expect(h.data(0, 2)).toBe(0xfffn);
  });

  it('ltr loads TR from a 16-byte TSS descriptor and marks it busy; loading a busy TSS is #GP(selector)', () => {
    const a = new Assembler(64).mov(ax, 0x28).db(0x0f, 0x00, 0xd8).db(0x0f, 0x00, 0xc8).label('again').db(0x0f, 0x00, 0xd8).label('gp').hlt();
    const { m, code } = testMachine({ asm: a, gates: { 13: { at: 'gp' } }, cpu: { tr: 0 } });
    m.run();
    expect(m.state().tr).toEqual({ selector: 0x28, base: BigInt(L.tss), limit: 0x67, flags: 0x8b00 });
    expect(m.readPhysical(L.gdt + 0x2d, 1)[0]).toBe(0x8b);
    expect(m.getRegister('rax') & 0xffffn).toBe(0x28n);
    const frame = new DataView(m.readVirtual(m.getRegister('rsp'), 16).buffer);
    expect([frame.getBigUint64(0, true), frame.getBigUint64(8, true)]).toEqual([0x28n, code.address('again')]);
  });

  it('mov ds/ss load descriptors and set their accessed bit; a read-only GDT page then faults with W=1, as on hardware', () => {
    const clearA = (_pt: unknown, mem_: { read64(p: number): bigint; write64(p: number, v: bigint): void }) => mem_.write64(L.gdt + 0x10, mem_.read64(L.gdt + 0x10) & ~(1n << 40n));
    const a = new Assembler(64).mov(ax, 0x10).mov(ds, ax).mov(ss, ax).hlt().label('pf').hlt();
    const ok = testMachine({ asm: a, tweak: clearA });
    expect(ok.m.run().reason).toBe('halted');
    expect(ok.m.readPhysical(L.gdt + 0x15, 1)[0]).toBe(0x93);
    const ro = testMachine({
      asm: a,
      gates: { 14: { at: 'pf' } },
      tweak: (pt, mem_) => {
        clearA(pt, mem_);
        pt.setEntry(hh(L.gdt), 'PT', pt.getEntry(hh(L.gdt), 'PT') & ~2n);
      },
    });
    ro.m.run();
    expect(ro.m.getRegister('cr2')).toBe(hh(L.gdt) + 0x14n);
    expect(new DataView(ro.m.readVirtual(ro.m.getRegister('rsp'), 8).buffer).getBigUint64(0, true)).toBe(3n);
  });

  it('SS: a selector whose RPL differs from CPL is #GP(selector); a null SS is allowed at CPL 0', () => {
    const h = new Harness({ gates });
    expect(outcome(h, '8e d0', { regs: { rax: 0x13n } })).toBe('#GP');
    expect(outcome(h, '8e d0', { regs: { rax: 0n } })).toBe('ok');
    expect(h.reg('ss')).toBe(0n);
    expect(outcome(h, '8e d8', { regs: { rax: 0x08n } })).toBe('ok');
  });
});

describe('port I/O and the serial port', () => {
  it('OUT to COM1 is collected line by line; LSR says ready; other ports read all ones', () => {
    const a = new Assembler(64)
      .mov(rbx, 0)
      .mov(rsi, DATA_VA)
      .label('next').mov(dx, 0x3fd)
      .label('wait').in(al, dx).test(al, 0x20).jz('wait')
      .db(0x8a, 0x04, 0x1e) // mov al, [rsi+rbx]
      .mov(dx, 0x3f8).out(dx, al)
      .add(rbx, 1).cmp(rbx, 7).jne('next')
      .in(al, 0x60).hlt();
    const { m } = testMachine({ asm: a });
    m.writeVirtual(DATA_VA, new TextEncoder().encode('hi\r\nyo\n'));
    const lines: string[] = [];
    m.on('serial-line', (l) => lines.push(l));
    expect(m.run().reason).toBe('halted');
    expect(m.serialText()).toBe('hi\r\nyo\n');
    expect(lines).toEqual(['hi', 'yo']);
    expect(m.getRegister('rax') & 0xffn).toBe(0xffn);
  });

  it('above IOPL, OUT needs the TSS I/O bitmap (here beyond the TSS limit): #GP(0)', () => {
    const a = new Assembler(64).push(0x1b).push(rax).push(0x002).push(0x23).push(rbx).iretq().label('user').db(0xe6, 0x80).label('gp').hlt();
    const { m, code } = testMachine({ asm: a, flags: { user: true }, gates: { 13: { at: 'gp' } }, cpu: { regs: { rax: hh(0x380000) } } });
    m.setRegister('rbx', code.address('user'));
    m.run();
    expect(new DataView(m.readVirtual(m.getRegister('rsp'), 16).buffer).getBigUint64(8, true)).toBe(code.address('user'));
  });
});

describe('flags, PKRU, TSC and HLT', () => {
  const h = new Harness({ gates, cpu: { cr4: 0xa0n | (1n << 22n) | (1n << 21n) } });

  it('cli/sti, cld/std, clc/stc/cmc, clac/stac', () => {
    for (const [hex, before, after] of [
      ['fa', 0x202, 0x2], ['fb', 0x2, 0x202], ['fc', 0x402, 0x2], ['fd', 0x2, 0x402],
      ['f8', 0x3, 0x2], ['f9', 0x2, 0x3], ['f5', 0x3, 0x2], ['0f 01 cb', 0x2, 0x40002], ['0f 01 ca', 0x40002, 0x2],
    ] as const) {
      expect(outcome(h, hex, { rflags: before })).toBe('ok');
      expect(Number(h.reg('eflags'))).toBe(after);
    }
  });

  it('SMAP through the CPU: a kernel read of a user page faults unless EFLAGS.AC (set by STAC) allows it', () => {
    const u = new Harness({ gates, cpu: { cr4: 0xa0n | (1n << 21n) }, tweak: (pt) => pt.setEntry(DATA_VA, 'PT', pt.getEntry(DATA_VA, 'PT') | 4n) });
    expect(outcome(u, '48 8b 03', { regs: { rbx: DATA_VA } })).toBe('#PF');
    expect(u.m.getRegister('cr2')).toBe(DATA_VA);
    expect(outcome(u, '48 8b 03', { regs: { rbx: DATA_VA }, rflags: 0x40002 })).toBe('ok');
  });

  it('wrpkru/rdpkru with CR4.PKE; #UD without it', () => {
    expect(outcome(h, '0f 01 ef', { regs: { rax: 0x55555554n } })).toBe('ok');
    expect(outcome(h, '0f 01 ee', { regs: { rax: 0n } })).toBe('ok');
    expect(h.reg('rax')).toBe(0x55555554n);
    expect(h.reg('pkru')).toBe(0x55555554n);
    expect(outcome(h, '0f 01 ef', { regs: { rcx: 1n } })).toBe('#GP');
    expect(outcome(new Harness({ gates }), '0f 01 ee')).toBe('#UD');
  });

  it('rdtsc counts instructions; hlt halts the machine', () => {
    const a = new Assembler(64).db(0x0f, 0x31).mov(rbx, rax).nop().nop().db(0x0f, 0x31).hlt();
    const { m } = testMachine({ asm: a });
    expect(m.run().reason).toBe('halted');
    expect(m.getRegister('rax') - m.getRegister('rbx')).toBe(4n);
    expect(m.status).toBe('halted');
    expect(m.state().halted).toBe(true);
  });

  it('invlpg, wbinvd, pause and the multi-byte nops execute without effect', () => {
    const x = new Harness();
    for (const hex of ['0f 01 38', '0f 09', 'f3 90', '66 0f 1f 84 00 00 00 00 00', 'f3 0f 1e fa']) {
      expect(x.exec(hex, { regs: { rax: DATA_VA } }).reason).toBe('step');
    }
  });
});
