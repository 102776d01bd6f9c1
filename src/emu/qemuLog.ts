/**
 * The emulator's log in QEMU's exact formats, so a `-d int,cpu_reset` log of the emulator reads
 * (and parses) like one from QEMU: `check_exception old: 0x.. new 0x..` (tcg/excp_helper.c), the
 * `v=0e e=0010 i=0 cpl=0 IP=... pc=... SP=... CR2=...` line (tcg/seg_helper.c do_interrupt_all)
 * with the register dump of x86_cpu_dump_state (cpu-dump.c), `Triple fault`, and `CPU Reset
 * (CPU 0)` with its dump. The values are the emulator's own: where it follows the SDM and QEMU 7.2
 * does not (P=1 with RSVD, EXT in selector error codes, RF in the pushed RFLAGS), the log shows
 * what the emulator did. Lines of the `unimp` category say what the emulator does not model.
 */
import { hex } from './bits.js';
import { DESC, FL, SEG_CS, SEG_SS, type CpuRegisters, type SegmentCache } from './cpuState.js';

/** Log categories, named as QEMU's `-d` options. */
export type LogCategory = 'int' | 'cpu_reset' | 'unimp';

/** Debug registers as the emulator holds them (reset values: it does not emulate hardware breakpoints). */
const DR6 = 0xffff0ff0n;
const DR7 = 0x400n;

const SYS_TYPES_64 = [
  '<hiword>', 'Reserved', 'LDT', 'Reserved', 'Reserved', 'Reserved', 'Reserved', 'Reserved',
  'Reserved', 'TSS64-avl', 'Reserved', 'TSS64-busy', 'CallGate64', 'Reserved', 'IntGate64', 'TrapGate64',
];

const h16 = (v: bigint): string => hex(BigInt.asUintN(64, v), 16);

/** One segment line of the dump: `CS =0008 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]`. */
export function formatSegment(name: string, s: SegmentCache, protectedMode: boolean, longMode: boolean): string {
  const flags = s.flags >>> 0;
  let line = `${name.padEnd(3)}=${hex(s.selector, 4)} ${h16(s.base)} ${hex(s.limit >>> 0, 8)} ${hex((flags & 0x00ffff00) >>> 0, 8)}`;
  if (!protectedMode || (flags & DESC.P) === 0) return line;
  line += ` DPL=${(flags >>> 13) & 3} `;
  if (flags & DESC.S) {
    if (flags & DESC.CS) {
      line += flags & DESC.L ? 'CS64' : flags & DESC.B ? 'CS32' : 'CS16';
      line += ` [${flags & DESC.E ? 'C' : '-'}${flags & DESC.W ? 'R' : '-'}`;
    } else {
      line += flags & DESC.B || longMode ? 'DS  ' : 'DS16';
      line += ` [${flags & DESC.E ? 'E' : '-'}${flags & DESC.W ? 'W' : '-'}`;
    }
    line += `${flags & DESC.A ? 'A' : '-'}]`;
  } else {
    line += SYS_TYPES_64[(flags >>> 8) & 0xf];
  }
  return line;
}

/**
 * The register dump QEMU prints after a `v=` line (CPU_DUMP_CCOP) and on a CPU reset
 * (CPU_DUMP_FPU too), in its 64-bit form. The emulator computes flags eagerly, so the lazy-flags
 * line shows `CCS=<the status flags> CCD=0 CCO=EFLAGS`; FPU and SSE state is the reset state,
 * as the emulator has none.
 */
export function formatCpuState(cpu: CpuRegisters, opts: { fpu?: boolean } = {}): string[] {
  const r = cpu.regs.map((v) => h16(v));
  const fl = cpu.rflags | FL.FIXED;
  const c = (bit: number, ch: string): string => (fl & bit ? ch : '-');
  const pe = (cpu.cr0 & 1n) !== 0n;
  const lma = (cpu.efer & 0x400n) !== 0n;
  const names = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'];
  const lines = [
    `RAX=${r[0]} RBX=${r[3]} RCX=${r[1]} RDX=${r[2]}`,
    `RSI=${r[6]} RDI=${r[7]} RBP=${r[5]} RSP=${r[4]}`,
    `R8 =${r[8]} R9 =${r[9]} R10=${r[10]} R11=${r[11]}`,
    `R12=${r[12]} R13=${r[13]} R14=${r[14]} R15=${r[15]}`,
    `RIP=${h16(cpu.rip)} RFL=${hex(fl >>> 0, 8)} [${c(FL.DF, 'D')}${c(FL.OF, 'O')}${c(FL.SF, 'S')}${c(FL.ZF, 'Z')}${c(FL.AF, 'A')}${c(FL.PF, 'P')}${c(FL.CF, 'C')}] CPL=${cpu.cpl} II=${cpu.inhibitIrq ? 1 : 0} A20=1 SMM=0 HLT=${cpu.halted ? 1 : 0}`,
    ...cpu.segs.map((s, i) => formatSegment(names[i]!, s, pe, lma)),
    formatSegment('LDT', cpu.ldtr, pe, lma),
    formatSegment('TR', cpu.tr, pe, lma),
    `GDT=     ${h16(cpu.gdtr.base)} ${hex(cpu.gdtr.limit >>> 0, 8)}`,
    `IDT=     ${h16(cpu.idtr.base)} ${hex(cpu.idtr.limit >>> 0, 8)}`,
    `CR0=${hex(cpu.cr0 & 0xffffffffn, 8)} CR2=${h16(cpu.cr2)} CR3=${h16(cpu.cr3)} CR4=${hex(cpu.cr4 & 0xffffffffn, 8)}`,
    `DR0=${h16(0n)} DR1=${h16(0n)} DR2=${h16(0n)} DR3=${h16(0n)} `,
    `DR6=${h16(DR6)} DR7=${h16(DR7)}`,
    `CCS=${h16(BigInt(fl & 0x8d5))} CCD=${h16(0n)} CCO=EFLAGS`,
    `EFER=${h16(cpu.efer)}`,
  ];
  if (opts.fpu) {
    lines.push('FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80');
    for (let i = 0; i < 8; i += 2) lines.push(`FPR${i}=${h16(0n)} 0000 FPR${i + 1}=${h16(0n)} 0000`);
    for (let i = 0; i < 16; i += 2) {
      const x = (n: number): string => `XMM${String(n).padStart(2, '0')}=${h16(0n)} ${h16(0n)}`;
      lines.push(`${x(i)} ${x(i + 1)}`);
    }
  }
  return lines;
}

/**
 * The `v=` line of do_interrupt_all for interrupt number `count` of the run: vector, error code,
 * software-interrupt flag, CPL, CS:RIP, pc, SS:RSP, then CR2 for #PF or RAX otherwise.
 */
export function formatInterruptLine(count: number, vector: number, errorCode: number, isInt: boolean, cpu: CpuRegisters): string {
  const cs = cpu.segs[SEG_CS]!;
  const ss = cpu.segs[SEG_SS]!;
  const pc = BigInt.asUintN(64, BigInt.asIntN(32, cs.base) + cpu.rip);
  const tail = vector === 0x0e ? ` CR2=${h16(cpu.cr2)}` : ` env->regs[R_EAX]=${h16(cpu.regs[0]!)}`;
  return (
    `${String(count).padStart(6)}: v=${hex(vector, 2)} e=${hex(errorCode >>> 0, 4)} i=${isInt ? 1 : 0} cpl=${cpu.cpl} ` +
    `IP=${hex(cs.selector, 4)}:${h16(cpu.rip)} pc=${h16(pc)} SP=${hex(ss.selector, 4)}:${h16(cpu.regs[4]!)}${tail}`
  );
}

/** Where log lines go, by category, with QEMU's interrupt counter. */
export class EmuLog {
  /** The lines logged so far (the oldest are dropped past `maxLines`). */
  readonly lines: string[] = [];
  private count = 0;

  constructor(
    /** The categories logged (`-d int,cpu_reset` is `['int', 'cpu_reset']`). */
    readonly categories: ReadonlySet<LogCategory> = new Set<LogCategory>(['int', 'cpu_reset', 'unimp']),
    /** Called with every line as it is logged. */
    private readonly sink: ((line: string, category: LogCategory) => void) | null = null,
    private readonly maxLines = 200_000,
  ) {}

  private emit(category: LogCategory, lines: string[]): void {
    if (!this.categories.has(category)) return;
    for (const l of lines) {
      this.lines.push(l);
      this.sink?.(l, category);
    }
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
  }

  /** `check_exception old: 0x.. new 0x..`: an exception raised while `old` (-1: none) was being delivered. */
  checkException(old: number, next: number): void {
    this.emit('int', [`check_exception old: 0x${(old >>> 0).toString(16)} new 0x${next.toString(16)}`]);
  }

  /** The `v=` line and register dump logged before an interrupt or exception is delivered (QEMU counts logged ones only). */
  interrupt(cpu: CpuRegisters, vector: number, errorCode: number, isInt: boolean): void {
    if (!this.categories.has('int')) return;
    this.emit('int', [formatInterruptLine(this.count, vector, errorCode, isInt, cpu), ...formatCpuState(cpu)]);
    this.count++;
  }

  /** `Triple fault` (QEMU's `-d cpu_reset`). */
  tripleFault(): void {
    this.emit('cpu_reset', ['Triple fault']);
  }

  /** `CPU Reset (CPU 0)` and the state being reset. */
  cpuReset(cpu: CpuRegisters): void {
    this.emit('cpu_reset', ['CPU Reset (CPU 0)', ...formatCpuState(cpu, { fpu: true })]);
  }

  /** A line saying what the emulator does not model (an instruction it raised #UD for, ...). */
  unimp(text: string): void {
    this.emit('unimp', [text]);
  }

  /** The log as text, one line each, newline-terminated. */
  text(): string {
    return this.lines.length === 0 ? '' : `${this.lines.join('\n')}\n`;
  }
}
