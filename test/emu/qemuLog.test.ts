/**
 * The `-d int,cpu_reset` log in QEMU's exact formats. The formatters against golden lines, and a
 * whole transcript: the test kernel (src/image/testKernel.ts) loading a CR3 that maps nothing, so
 * the next fetch faults, #PF delivery finds an empty IDT (#GP -> #DF) and #DF delivery too
 * (triple fault). QEMU_7_2 below is what qemu-system-x86_64 7.2.22 logged for that kernel
 * (`-kernel k.elf -d int,cpu_reset -no-reboot -m 128`, from the first exception on); the
 * emulator, started where the kernel reaches the higher half with the registers QEMU's loader
 * left (RBX=0x9500, RDI=0x1000), must print the same lines, except the lazy-flags line: QEMU
 * shows its internal CC_OP there, the emulator its computed flags as CCO=EFLAGS.
 */
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/asm/index.js';
import { buildTestKernel } from '../../src/image/testKernel.js';
import { Machine, formatInterruptLine, formatSegment, type TlbModel } from '../../src/emu/index.js';
import { testKernelMachine, testMachine } from './fixtures.js';

const QEMU_7_2 = `
check_exception old: 0xffffffff new 0xe
     0: v=0e e=0010 i=0 cpl=0 IP=0018:ffffffff8010100a pc=ffffffff8010100a SP=0010:ffffffff80104000 CR2=ffffffff8010100a
RAX=0000000000117000 RBX=0000000000009500 RCX=0000000000000000 RDX=00000000000003f8
RSI=ffffffff80102040 RDI=0000000000001000 RBP=0000000000000000 RSP=ffffffff80104000
R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000
R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000
RIP=ffffffff8010100a RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
FS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
GS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy
GDT=     0000000000100078 0000001f
IDT=     0000000000000000 00000000
CR0=80010011 CR2=ffffffff8010100a CR3=0000000000117000 CR4=000000a0
DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 
DR6=00000000ffff0ff0 DR7=0000000000000400
CCS=0000000000000000 CCD=0000000000000000 CCO=DECL
EFER=0000000000000d00
check_exception old: 0xe new 0xd
     1: v=08 e=0000 i=0 cpl=0 IP=0018:ffffffff8010100a pc=ffffffff8010100a SP=0010:ffffffff80104000 env->regs[R_EAX]=0000000000117000
RAX=0000000000117000 RBX=0000000000009500 RCX=0000000000000000 RDX=00000000000003f8
RSI=ffffffff80102040 RDI=0000000000001000 RBP=0000000000000000 RSP=ffffffff80104000
R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000
R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000
RIP=ffffffff8010100a RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
FS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
GS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy
GDT=     0000000000100078 0000001f
IDT=     0000000000000000 00000000
CR0=80010011 CR2=ffffffff8010100a CR3=0000000000117000 CR4=000000a0
DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 
DR6=00000000ffff0ff0 DR7=0000000000000400
CCS=0000000000000000 CCD=0000000000000000 CCO=DECL
EFER=0000000000000d00
check_exception old: 0x8 new 0xd
Triple fault
`.trim().split('\n');

/** The test kernel with its CR3 slot pointing at an empty address space, run to its triple fault. */
function emptyCr3Kernel(tlbModel: TlbModel): Machine {
  const k = buildTestKernel({ spaces: { empty: () => {} }, slot: 'empty' });
  const m = testKernelMachine(k, { tripleFault: 'shutdown', tlbModel });
  expect(m.run({ maxInstructions: 100_000 }).reason).toBe('shutdown');
  expect(m.serialText()).toBe(`${k.manifest.marker}\n`);
  return m;
}

const withoutLazyFlags = (lines: string[]) => lines.map((l) => (l.startsWith('CCS=') ? 'CCS=<lazy flags>' : l));

describe('QEMU log formats', () => {
  it('segment lines: 64-bit code, data, null, TSS, LDT', () => {
    expect(formatSegment('CS', { selector: 0x18, base: 0n, limit: 0xffffffff, flags: 0x00af9b00 }, true, true)).toBe('CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]');
    expect(formatSegment('SS', { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0x00cf9300 }, true, true)).toBe('SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]');
    expect(formatSegment('SS', { selector: 0, base: 0n, limit: 0, flags: 0 }, true, true)).toBe('SS =0000 0000000000000000 00000000 00000000');
    expect(formatSegment('TR', { selector: 0x28, base: 0xffff800000003000n, limit: 0x67, flags: 0x8b00 }, true, true)).toBe('TR =0028 ffff800000003000 00000067 00008b00 DPL=0 TSS64-busy');
    expect(formatSegment('LDT', { selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 }, true, true)).toBe('LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT');
    expect(formatSegment('CS', { selector: 0x23, base: 0n, limit: 0xffffffff, flags: 0x00affb00 }, true, true)).toBe('CS =0023 0000000000000000 ffffffff 00affb00 DPL=3 CS64 [-RA]');
  });

  it('the v= line: the counter right-aligned in 6 columns, CR2 for #PF, RAX otherwise', () => {
    const { m } = testMachine({ asm: new Assembler(64).hlt() });
    const cpu = m.state();
    expect(formatInterruptLine(12, 0x0e, 0x10, false, cpu)).toBe(
      '    12: v=0e e=0010 i=0 cpl=0 IP=0008:ffffffff80100000 pc=ffffffff80100000 SP=0010:ffffffff803ff000 CR2=0000000000000000',
    );
    expect(formatInterruptLine(123456, 0x80, 0, true, cpu)).toBe(
      '123456: v=80 e=0000 i=1 cpl=0 IP=0008:ffffffff80100000 pc=ffffffff80100000 SP=0010:ffffffff803ff000 env->regs[R_EAX]=0000000000000000',
    );
  });

  it('a transcript from #PF to triple fault matches QEMU 7.2 line for line', () => {
    const m = emptyCr3Kernel('qemu-tcg');
    const lines = m.log.lines.slice(m.log.lines.indexOf('check_exception old: 0xffffffff new 0xe'));
    expect(withoutLazyFlags(lines)).toEqual(withoutLazyFlags(QEMU_7_2));
    expect(lines.filter((l) => l.startsWith('CCS='))).toEqual(['CCS=0000000000000044 CCD=0000000000000000 CCO=EFLAGS', 'CCS=0000000000000044 CCD=0000000000000000 CCO=EFLAGS']);
  });

  it("with the hardware TLB model the global code page survives the CR3 load, so the fault comes one instruction later, from the data write", () => {
    const m = emptyCr3Kernel('hardware');
    expect(m.log.lines.find((l) => l.includes(': v=0e'))).toBe(
      '     0: v=0e e=0002 i=0 cpl=0 IP=0018:ffffffff8010100a pc=ffffffff8010100a SP=0010:ffffffff80104000 CR2=ffffffff80102018',
    );
  });
});
