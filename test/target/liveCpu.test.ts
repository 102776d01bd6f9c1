/**
 * The CPU state of a live QEMU from its gdbstub registers and its monitor's `info registers`: which
 * value comes from where, what is completed from the monitor, and what is said when it is missing.
 */
import { describe, expect, it } from 'vitest';
import { parseInfoRegisters } from '../../src/qmp/hmp.js';
import { LIVE_NOTES, cpuFromGdbRegisters, cpuFromInfoRegisters } from '../../src/target/liveCpu.js';
import { TargetError } from '../../src/target/target.js';

/** QEMU 7.2 `info registers` of the test kernel at its `mov cr3`, with a TSS and an IDT added, FPU lines cut. */
const INFO = [
  '',
  'CPU#0',
  'RAX=0000000000110000 RBX=0000000000009500 RCX=0000000000000000 RDX=00000000000003f8',
  'RSI=ffffffff80102040 RDI=0000000000001000 RBP=0000000000000000 RSP=ffffffff80104000',
  'R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000',
  'R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=000000000000000f',
  'RIP=ffffffff80101007 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  'ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]',
  'SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'FS =0010 0000000000001000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'GS =0010 ffff888000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT',
  'TR =0028 ffffffff80105000 00000067 00008b00 DPL=0 TSS64-busy',
  'GDT=     0000000000100078 0000002f',
  'IDT=     ffffffff80106000 00000fff',
  'CR0=80010011 CR2=ffffffff8010100a CR3=0000000000110000 CR4=000000a0',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000d00',
  'FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80',
  '',
].join('\n');

/** What `g` decodes to for the same stop (QEMU's i386-64bit.xml names). */
const G = new Map<string, bigint>([
  ['rax', 0x110000n],
  ['rbx', 0x9500n],
  ['rsp', 0xffffffff80104000n],
  ['r15', 0xfn],
  ['rip', 0xffffffff80101007n],
  ['eflags', 0x46n],
  ['cs', 0x18n],
  ['ss', 0x10n],
  ['ds', 0x10n],
  ['es', 0x10n],
  ['fs', 0x10n],
  ['gs', 0x10n],
  ['fs_base', 0x1000n],
  ['gs_base', 0xffff888000000000n],
  ['cr0', 0x80010011n],
  ['cr2', 0xffffffff8010100an],
  ['cr3', 0x110000n],
  ['cr4', 0xa0n],
  ['efer', 0xd00n],
]);

/** bigints as hex, for goldens. */
function hexed(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x)));
}

describe('cpuFromGdbRegisters', () => {
  it('takes the registers from g and GDTR, IDTR, TR, LDTR and the hidden parts from info registers, saying so', () => {
    const cpu = cpuFromGdbRegisters(G, parseInfoRegisters(INFO), 'QMP at /tmp/qmp.sock');
    expect(hexed(cpu)).toEqual({
      cr0: '0x80010011',
      cr2: '0xffffffff8010100a',
      cr3: '0x110000',
      cr4: '0xa0',
      efer: '0xd00',
      rip: '0xffffffff80101007',
      rsp: '0xffffffff80104000',
      rflags: '0x46',
      gpr: { rax: '0x110000', rbx: '0x9500', rsp: '0xffffffff80104000', r15: '0xf' },
      cs: { selector: 0x18, base: '0x0', limit: 0xffffffff, flags: 0xaf9b00 },
      ss: { selector: 0x10, base: '0x0', limit: 0xffffffff, flags: 0xcf9300 },
      ds: { selector: 0x10, base: '0x0', limit: 0xffffffff, flags: 0xcf9300 },
      es: { selector: 0x10, base: '0x0', limit: 0xffffffff, flags: 0xcf9300 },
      fs: { selector: 0x10, base: '0x1000', limit: 0xffffffff, flags: 0xcf9300 },
      gs: { selector: 0x10, base: '0xffff888000000000', limit: 0xffffffff, flags: 0xcf9300 },
      tr: { selector: 0x28, base: '0xffffffff80105000', limit: 0x67, flags: 0x8b00 },
      ldtr: { selector: 0, base: '0x0', limit: 0xffff, flags: 0x8200 },
      gdtr: { base: '0x100078', limit: 0x2f },
      idtr: { base: '0xffffffff80106000', limit: 0xfff },
      notes: ['GDTR, IDTR, TR and segment bases: from `info registers` through QMP at /tmp/qmp.sock (the gdbstub lacks them)'],
    });
  });

  it('without a monitor: selectors and fs/gs bases from g, no GDTR/IDTR/TR, and a note that says what to add', () => {
    const cpu = cpuFromGdbRegisters(G, null, null);
    expect(hexed([cpu.cs, cpu.fs, cpu.gs, cpu.tr, cpu.gdtr, cpu.idtr])).toEqual([
      { selector: 0x18 },
      { selector: 0x10, base: '0x1000' },
      { selector: 0x10, base: '0xffff888000000000' },
      null,
      null,
      null,
    ]);
    expect(cpu.notes).toEqual([LIVE_NOTES.noMonitor]);
  });

  it("does not mix in another CPU's descriptor tables: the monitor's RIP or CR3 must be the gdbstub's", () => {
    const otherCpu = new Map(G).set('rip', 0xfff0n);
    const cpu = cpuFromGdbRegisters(otherCpu, parseInfoRegisters(INFO), 'QMP at /tmp/qmp.sock');
    expect([cpu.gdtr, cpu.tr, cpu.cs]).toEqual([undefined, undefined, { selector: 0x18 }]);
    expect(cpu.notes).toEqual([
      'GDTR, IDTR, TR and segment bases are unknown: `info registers` through QMP at /tmp/qmp.sock shows another CPU than the gdbstub (its RIP or CR3 differ)',
    ]);
  });

  it('takes from the monitor what a gdbstub lacks, and refuses when no source has CR3', () => {
    const noControl = new Map([...G].filter(([n]) => !n.startsWith('cr') && n !== 'efer'));
    const cpu = cpuFromGdbRegisters(noControl, parseInfoRegisters(INFO), 'QMP');
    expect(hexed([cpu.cr0, cpu.cr3, cpu.cr4, cpu.efer, cpu.cr2])).toEqual(['0x80010011', '0x110000', '0xa0', '0xd00', '0xffffffff8010100a']);
    let error: unknown;
    try {
      cpuFromGdbRegisters(new Map([['rip', 1n], ['cr0', 0x11n]]), null, null);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TargetError);
    expect((error as TargetError).message).toBe('the gdbstub reports no CR3 register (it has rip, cr0), and no monitor gave it');
  });
});

describe('cpuFromInfoRegisters', () => {
  it('is the whole state from one `info registers`', () => {
    const cpu = cpuFromInfoRegisters(parseInfoRegisters(INFO));
    expect(hexed([cpu.cr3, cpu.efer, cpu.rip, cpu.rflags, cpu.gpr.r15, cpu.tr, cpu.idtr, cpu.notes])).toEqual([
      '0x110000',
      '0xd00',
      '0xffffffff80101007',
      '0x46',
      '0xf',
      { selector: 0x28, base: '0xffffffff80105000', limit: 0x67, flags: 0x8b00 },
      { base: '0xffffffff80106000', limit: 0xfff },
      [],
    ]);
  });

  it('widens the 32-bit layout to the 64-bit names, with a note that only the low halves are known in compatibility mode', () => {
    const text = [
      'EAX=2badb002 EBX=00009500 ECX=00000000 EDX=00000000',
      'ESI=00000000 EDI=00000000 EBP=00000000 ESP=00007000',
      'EIP=00100000 EFL=00000006 [-----P-] CPL=0 II=0 A20=1 SMM=0 HLT=0',
      'ES =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
      'CS =0008 00000000 ffffffff 00cf9a00 DPL=0 CS32 [-R-]',
      'SS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
      'DS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
      'FS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
      'GS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
      'LDT=0000 00000000 0000ffff 00008200 DPL=0 LDT',
      'TR =0000 00000000 0000ffff 00008b00 DPL=0 TSS32-busy',
      'GDT=     000caa60 00000037',
      'IDT=     00000000 000003ff',
      'CR0=00000011 CR2=00000000 CR3=00000000 CR4=00000000',
      'DR0=00000000 DR1=00000000 DR2=00000000 DR3=00000000 ',
      'DR6=ffff0ff0 DR7=00000400',
      'EFER=0000000000000000',
      '',
    ].join('\n');
    const cpu = cpuFromInfoRegisters(parseInfoRegisters(text));
    expect(hexed([cpu.gpr.rax, cpu.gpr.rbx, cpu.rsp, cpu.rip, cpu.cs?.selector])).toEqual(['0x2badb002', '0x9500', '0x7000', '0x100000', 8]);
    expect(cpu.notes).toEqual([]); // EFER.LMA=0: the registers are 32 bits wide, nothing is missing
    const compat = cpuFromInfoRegisters(parseInfoRegisters(text.replace('EFER=0000000000000000', 'EFER=0000000000000500')));
    expect(compat.notes).toEqual([LIVE_NOTES.truncated]); // long mode, 32-bit code: the upper halves are unseen
  });
});
