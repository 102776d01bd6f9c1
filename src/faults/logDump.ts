/**
 * The register dump QEMU writes after a `v=` line, on `CPU Reset` and around SMM
 * (x86_cpu_dump_state in target/i386/cpu-dump.c), line by line: the 64-bit form (RAX=, RIP=, R8 =,
 * 16-digit bases) in 64-bit code, the 32-bit form (EAX=, EIP=, EFL=, 8-digit bases) elsewhere, and
 * with qemu-system-i386; the FPU/SSE part of a reset dump is recognised but not kept. Each line
 * has a place in the dump's order, so a dump cut short, or a second dump without its header, is
 * told apart from the continuation of the current one.
 */

/** A segment register line: `CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]`. */
export interface SegmentDump {
  selector: number;
  base: bigint;
  limit: number;
  /** Descriptor bits 8..23 as QEMU keeps them (type, S, DPL, P, AVL, L, D/B, G). */
  flags: number;
  /** What QEMU spelled out after the numbers (`DPL=0 CS64 [-RA]`), empty for a non-present segment. */
  attributes: string;
}

/** GDTR or IDTR. */
export interface TableDump {
  base: bigint;
  limit: number;
}

/** The segment registers of a dump, by lower-case name. */
export type SegmentName = 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs' | 'ldt' | 'tr';

/** What one register dump told (fields absent when their line was not there). */
export interface CpuDump {
  /** 64 for the RAX= form (64-bit code), 32 for the EAX= form. */
  width?: 64 | 32;
  /** General registers by the lower-case name QEMU printed (rax..r15, or eax..esp). */
  gpr: Record<string, bigint>;
  rip?: bigint;
  rflags?: bigint;
  cpl?: number;
  /** Interrupt shadow (mov ss / sti), A20 gate, in SMM, halted. */
  ii?: number;
  a20?: number;
  smm?: number;
  hlt?: number;
  segments: Partial<Record<SegmentName, SegmentDump>>;
  gdt?: TableDump;
  idt?: TableDump;
  cr0?: bigint;
  cr2?: bigint;
  cr3?: bigint;
  cr4?: bigint;
  efer?: bigint;
  /** The lazy-flags operation (CCO=), e.g. `EFLAGS`, `DECL`. */
  ccOp?: string;
  /** True once the EFER line, the last line every dump has, was seen. */
  complete: boolean;
  /** First and last line numbers of the dump in the log. */
  firstLine: number;
  lastLine: number;
}

const HEX = '[0-9a-f]+';
const PAIR = new RegExp(`([A-Z][A-Za-z0-9]*) ?=(${HEX})`, 'g');
const PAIRS_LINE = new RegExp(`^(?:[A-Z][A-Z0-9]* ?=${HEX} ?)+$`);
const RIP_LINE = new RegExp(`^([RE]IP)=(${HEX}) ([RE]FL)=(${HEX}) \\[[-A-Z]{7}\\] CPL=(\\d) II=(\\d) A20=(\\d) SMM=(\\d) HLT=(\\d)\\s*$`);
const SEG_LINE = new RegExp(`^(ES |CS |SS |DS |FS |GS |LDT|TR )=(${HEX}) (${HEX}) (${HEX}) (${HEX})(?: (.*?))?\\s*$`);
const TABLE_LINE = new RegExp(`^(GDT|IDT)= +(${HEX}) (${HEX})\\s*$`);
const CC_LINE = new RegExp(`^CCS=(${HEX}) CCD=(${HEX}) CCO=(\\S+)\\s*$`);
const FCW_LINE = new RegExp(`^FCW=${HEX} FSW=${HEX} \\[ST=\\d\\] FTW=${HEX} MXCSR=${HEX}\\s*$`);
const FPR_LINE = new RegExp(`^FPR(\\d)=${HEX} ${HEX}(?: FPR\\d=${HEX} ${HEX})?\\s*$`);
const VECTOR_LINE = new RegExp(`^(?:XMM|YMM|ZMM)(\\d{2})=${HEX}(?: ${HEX})+(?: (?:XMM|YMM|ZMM)\\d{2}=${HEX}(?: ${HEX})+)?\\s*$`);
const OPMASK_LINE = new RegExp(`^Opmask(\\d{2})=${HEX}(?: Opmask\\d{2}=${HEX})*\\s*$`);
const CODE_LINE = /^Code=[0-9a-f?<> ]+$/;

/** The register-pair lines of a dump: the names each holds, in order, and the line's place in the dump. */
const PAIR_LINES: Record<string, { names: string; order: number }> = {
  RAX: { names: 'RAX RBX RCX RDX', order: 0 },
  EAX: { names: 'EAX EBX ECX EDX', order: 0 },
  RSI: { names: 'RSI RDI RBP RSP', order: 1 },
  ESI: { names: 'ESI EDI EBP ESP', order: 1 },
  R8: { names: 'R8 R9 R10 R11', order: 2 },
  R12: { names: 'R12 R13 R14 R15', order: 3 },
  R16: { names: 'R16 R17 R18 R19', order: 4 },
  R20: { names: 'R20 R21 R22 R23', order: 5 },
  R24: { names: 'R24 R25 R26 R27', order: 6 },
  R28: { names: 'R28 R29 R30 R31', order: 7 },
  CR0: { names: 'CR0 CR2 CR3 CR4', order: 19 },
  DR0: { names: 'DR0 DR1 DR2 DR3', order: 20 },
  DR6: { names: 'DR6 DR7', order: 21 },
  EFER: { names: 'EFER', order: 23 },
};
/** QEMU prints register values with 8 or 16 digits (%08x, %016lx). */
const FULL_WIDTH = /^(?:[0-9a-f]{8}|[0-9a-f]{16})$/;
const SEG_ORDER: Record<string, number> = { ES: 9, CS: 10, SS: 11, DS: 12, FS: 13, GS: 14, LDT: 15, TR: 16 };
const EFER_ORDER = 23;

/** One recognised dump line: its place in the dump and what it sets. */
export interface DumpLine {
  order: number;
  apply(d: CpuDump): void;
}

const big = (h: string): bigint => BigInt(`0x${h}`);

/** Recognises one line of a register dump, or returns null. */
export function parseDumpLine(text: string): DumpLine | null {
  let m: RegExpExecArray | null;
  if (PAIRS_LINE.test(text)) {
    const pairs = [...text.matchAll(PAIR)].map((p) => [p[1]!.toUpperCase(), p[2]!] as const);
    const kind = PAIR_LINES[pairs[0]![0]];
    if (!kind || pairs.map((p) => p[0]).join(' ') !== kind.names || !pairs.every((p) => FULL_WIDTH.test(p[1]))) return null;
    return {
      order: kind.order,
      apply(d) {
        for (const [name, value] of pairs) setRegister(d, name, big(value));
      },
    };
  }
  if ((m = RIP_LINE.exec(text))) {
    const [, ip, ipv, , fl, cpl, ii, a20, smm, hlt] = m;
    return {
      order: 8,
      apply(d) {
        d.width ??= ip === 'RIP' ? 64 : 32;
        d.rip = big(ipv!);
        d.rflags = big(fl!);
        d.cpl = Number(cpl);
        d.ii = Number(ii);
        d.a20 = Number(a20);
        d.smm = Number(smm);
        d.hlt = Number(hlt);
      },
    };
  }
  if ((m = SEG_LINE.exec(text))) {
    const name = m[1]!.trim();
    const seg: SegmentDump = { selector: Number(big(m[2]!)), base: big(m[3]!), limit: Number(big(m[4]!)), flags: Number(big(m[5]!)), attributes: m[6] ?? '' };
    return {
      order: SEG_ORDER[name]!,
      apply(d) {
        d.segments[name.toLowerCase() as SegmentName] = seg;
      },
    };
  }
  if ((m = TABLE_LINE.exec(text))) {
    const table: TableDump = { base: big(m[2]!), limit: Number(big(m[3]!)) };
    const which = m[1] === 'GDT' ? 'gdt' : 'idt';
    return {
      order: which === 'gdt' ? 17 : 18,
      apply(d) {
        d[which] = table;
      },
    };
  }
  if ((m = CC_LINE.exec(text))) {
    const op = m[3]!;
    return {
      order: 22,
      apply(d) {
        d.ccOp = op;
      },
    };
  }
  if (FCW_LINE.test(text)) return { order: 24, apply() {} };
  if ((m = FPR_LINE.exec(text))) return { order: 25 + (Number(m[1]) >> 1), apply() {} };
  if ((m = OPMASK_LINE.exec(text))) return { order: 30 + (Number(m[1]) >> 2), apply() {} };
  if ((m = VECTOR_LINE.exec(text))) return { order: 40 + Number(m[1]), apply() {} };
  if (CODE_LINE.test(text)) return { order: 80, apply() {} };
  return null;
}

function setRegister(d: CpuDump, name: string, value: bigint): void {
  switch (name) {
    case 'CR0':
      d.cr0 = value;
      return;
    case 'CR2':
      d.cr2 = value;
      return;
    case 'CR3':
      d.cr3 = value;
      return;
    case 'CR4':
      d.cr4 = value;
      return;
    case 'EFER':
      d.efer = value;
      d.complete = true;
      return;
    default:
      if (/^DR\d$/.test(name)) return;
      if (name === 'RAX') d.width ??= 64;
      if (name === 'EAX') d.width ??= 32;
      d.gpr[name.toLowerCase()] = value;
  }
}

/** A dump being read: takes lines while they follow each other in QEMU's order. */
export class DumpBuilder {
  readonly dump: CpuDump;
  private last = -1;

  constructor(firstLine: number) {
    this.dump = { gpr: {}, segments: {}, complete: false, firstLine, lastLine: firstLine };
  }

  /** True when `line` can continue this dump (it comes later in QEMU's order than the lines so far). */
  follows(line: DumpLine): boolean {
    return line.order > this.last;
  }

  /** Adds a line that {@link follows}. */
  add(line: DumpLine, number: number): void {
    line.apply(this.dump);
    if (this.last < 0) this.dump.firstLine = number;
    this.last = line.order;
    this.dump.lastLine = number;
  }

  /** True once a line was added. */
  get started(): boolean {
    return this.last >= 0;
  }

  /** True once the EFER line was seen (what follows is the optional FPU/SSE part). */
  get pastEfer(): boolean {
    return this.last >= EFER_ORDER;
  }
}
