/**
 * Parser of HMP `info registers` (QEMU's x86_cpu_dump_state with the FPU part). Its layout follows
 * the CPU's mode: `RAX=`..`R15=` with 16-digit RIP when CS is a 64-bit segment, `EAX=`..`ESP=`
 * otherwise; segment bases are 16 digits only with a 64-bit CS, GDT/IDT/CR2/CR3 whenever EFER.LMA
 * is set. Every line is checked: the FPU/SSE lines are recognised and skipped, anything else is an error.
 */
import { HmpError } from './errors.js';
import { checkHmpOutput, hexBig, hexNum, hmpLines, unexpectedLine, type HmpLine } from './hmpText.js';

/** A segment register as `info registers` shows it: selector, hidden base, limit and attribute flags. */
export interface HmpSegment {
  selector: number;
  base: bigint;
  limit: number;
  /** QEMU's packed attributes (descriptor bits 8..23 in place: type, S, DPL, P, AVL, L, D/B, G). */
  flags: number;
}

/** GDTR or IDTR. */
export interface HmpTableRegister {
  base: bigint;
  limit: number;
}

/** The registers of one CPU as `info registers` prints them. */
export interface InfoRegisters {
  /** The CPU index of the `CPU#n` header, or null when the output has none (QEMU before 7.x). */
  cpu: number | null;
  /** `64-bit` for the RAX=.. layout (CS is a 64-bit segment), `32-bit` for EAX=.. (only the low 32 bits shown). */
  layout: '64-bit' | '32-bit';
  /** General registers by QEMU's name in lower case: rax..r15 in the 64-bit layout, eax..esp in the 32-bit one. */
  gprs: Record<string, bigint>;
  rip: bigint;
  rsp: bigint;
  rflags: bigint;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  /** Debug registers dr0..dr3, dr6, dr7. */
  dr: Record<string, bigint>;
  es: HmpSegment;
  cs: HmpSegment;
  ss: HmpSegment;
  ds: HmpSegment;
  fs: HmpSegment;
  gs: HmpSegment;
  ldt: HmpSegment;
  tr: HmpSegment;
  gdt: HmpTableRegister;
  idt: HmpTableRegister;
  /** The current privilege level. */
  cpl: number;
  /** The CPU is halted (HLT=1). */
  halted: boolean;
  /** The CPU is in system-management mode (SMM=1). */
  smm: boolean;
  /** The A20 gate is enabled (A20=1). */
  a20: boolean;
  /** PKRU, when the output shows it (QEMU 7.2 does not). */
  pkru?: number;
}

const GPR64 = ['RAX', 'RBX', 'RCX', 'RDX', 'RSI', 'RDI', 'RBP', 'RSP', ...Array.from({ length: 24 }, (_, i) => `R${i + 8}`)];
const GPR32 = ['EAX', 'EBX', 'ECX', 'EDX', 'ESI', 'EDI', 'EBP', 'ESP'];
const OTHER = ['CR0', 'CR2', 'CR3', 'CR4', 'DR0', 'DR1', 'DR2', 'DR3', 'DR6', 'DR7', 'EFER', 'PKRU'];
const SEGMENTS = { 'ES ': 'es', 'CS ': 'cs', 'SS ': 'ss', 'DS ': 'ds', 'FS ': 'fs', 'GS ': 'gs', LDT: 'ldt', 'TR ': 'tr' } as const;
type SegmentName = (typeof SEGMENTS)[keyof typeof SEGMENTS];

/** `NAME=hex` tokens filling a whole line (`R8 =` has a space before `=`; DR lines end in a space). */
const ASSIGNMENTS = /^(?:[A-Z][A-Z0-9]* ?=[0-9a-f]+ ?)+$/;
const ASSIGNMENT = /([A-Z][A-Z0-9]*) ?=([0-9a-f]+)/g;
const FLAGS_LINE =
  /^(RIP|EIP)=([0-9a-f]{8}|[0-9a-f]{16}) (RFL|EFL)=([0-9a-f]{8}) \[[D-][O-][S-][Z-][A-][P-][C-]\] CPL=([0-3]) II=([01]) A20=([01]) SMM=([01]) HLT=([01])$/;
const SEGMENT_LINE = /^(ES |CS |SS |DS |FS |GS |LDT|TR )=([0-9a-f]{4}) ([0-9a-f]{8}|[0-9a-f]{16}) ([0-9a-f]{8}) ([0-9a-f]{8})(?: DPL=[0-3] (?:(?:CS64|CS32|CS16) \[[C-][R-][A-]\]|(?:DS {2}|DS16) \[[E-][W-][A-]\]|[A-Za-z0-9<>-]+))?$/;
const TABLE_LINE = /^(GDT|IDT)= +([0-9a-f]{8}|[0-9a-f]{16}) ([0-9a-f]{8})$/;
/** Lines recognised and not kept: FPU, SSE/AVX/AVX-512 state, lazy flags, code bytes. */
const SKIPPED = [
  /^FCW=[0-9a-f]{4} FSW=[0-9a-f]{4} \[ST=[0-7]\] FTW=[0-9a-f]{2} MXCSR=[0-9a-f]{8}$/,
  /^(?:FPR[0-7]=[0-9a-f]{16} [0-9a-f]{4} ?)+$/,
  /^(?:XMM[0-9]{2}=[0-9a-f]{16} [0-9a-f]{16} ?)+$/,
  /^YMM[0-9]{2}=(?:[0-9a-f]{16} ){3}[0-9a-f]{16}$/,
  /^ZMM[0-9]{2}=(?:[0-9a-f]{16} ){7}[0-9a-f]{16}$/,
  /^(?:Opmask[0-9]{2}=[0-9a-f]{16} ?)+$/,
  /^CCS=[0-9a-f]+ CCD=[0-9a-f]+ CCO=\S+$/,
  /^Code=(?:(?:<?[0-9a-f?]{2}>?) ?)+$/,
];

/**
 * Parses `info registers` output (one CPU, either layout). Throws HmpError: E_HMP_PARSE with the line
 * number for a line it does not recognise, a register shown twice, or a required line missing;
 * E_HMP_UNKNOWN_COMMAND / E_HMP_USAGE when the monitor refused the command.
 */
export function parseInfoRegisters(text: string): InfoRegisters {
  checkHmpOutput(text, 'info registers');
  const values = new Map<string, bigint>();
  const segments = new Map<SegmentName, HmpSegment>();
  const tables = new Map<'gdt' | 'idt', HmpTableRegister>();
  let cpu: number | null = null;
  let flagsLine: RegExpExecArray | null = null;
  let layout: InfoRegisters['layout'] | null = null;
  let seenAny = false;

  const setLayout = (l: InfoRegisters['layout'], line: HmpLine): void => {
    if (layout && layout !== l) throw unexpectedLine(`info registers: ${l} registers mixed with ${layout} ones`, line);
    layout = l;
  };

  for (const line of hmpLines(text)) {
    const t = line.text;
    if (t.trim() === '') continue;
    const header = /^CPU#(\d+)$/.exec(t);
    if (header) {
      if (cpu !== null || seenAny) {
        throw unexpectedLine('info registers: a second CPU (parse one CPU at a time: use "info registers" without -a)', line);
      }
      cpu = Number(header[1]);
      continue;
    }
    seenAny = true;
    if (ASSIGNMENTS.test(t)) {
      for (const [, name, digits] of t.matchAll(ASSIGNMENT)) {
        const n = name!;
        if (GPR64.includes(n)) setLayout('64-bit', line);
        else if (GPR32.includes(n)) setLayout('32-bit', line);
        else if (!OTHER.includes(n)) throw unexpectedLine(`info registers: unknown register ${n}`, line);
        if (values.has(n)) throw unexpectedLine(`info registers: ${n} shown twice`, line);
        values.set(n, hexBig(digits!));
      }
      continue;
    }
    const flags = FLAGS_LINE.exec(t);
    if (flags) {
      if (flagsLine) throw unexpectedLine('info registers: the RIP/RFL line shown twice', line);
      setLayout(flags[1] === 'RIP' ? '64-bit' : '32-bit', line);
      flagsLine = flags;
      continue;
    }
    const seg = SEGMENT_LINE.exec(t);
    if (seg) {
      const name = SEGMENTS[seg[1] as keyof typeof SEGMENTS];
      if (segments.has(name)) throw unexpectedLine(`info registers: ${name.toUpperCase()} shown twice`, line);
      segments.set(name, { selector: hexNum(seg[2]!), base: hexBig(seg[3]!), limit: hexNum(seg[4]!), flags: hexNum(seg[5]!) });
      continue;
    }
    const table = TABLE_LINE.exec(t);
    if (table) {
      const name = table[1] === 'GDT' ? 'gdt' : 'idt';
      if (tables.has(name)) throw unexpectedLine(`info registers: ${table[1]} shown twice`, line);
      tables.set(name, { base: hexBig(table[2]!), limit: hexNum(table[3]!) });
      continue;
    }
    if (SKIPPED.some((re) => re.test(t))) continue;
    throw unexpectedLine('info registers: unrecognised line', line);
  }

  const missing = (what: string): HmpError =>
    new HmpError('E_HMP_PARSE', `info registers: no ${what} in the output (is this "info registers" output?)`);
  if (!flagsLine || !layout) throw missing('RIP/EIP line');
  const names = layout === '64-bit' ? GPR64.slice(0, 16) : GPR32;
  const gprs: Record<string, bigint> = {};
  for (const n of names) {
    const v = values.get(n);
    if (v === undefined) throw missing(n);
    gprs[n.toLowerCase()] = v;
  }
  for (const n of GPR64.slice(16)) {
    const v = values.get(n);
    if (v !== undefined) gprs[n.toLowerCase()] = v;
  }
  const reg = (n: string): bigint => {
    const v = values.get(n);
    if (v === undefined) throw missing(n);
    return v;
  };
  const segment = (n: SegmentName): HmpSegment => {
    const s = segments.get(n);
    if (!s) throw missing(`${n.toUpperCase()} line`);
    return s;
  };
  const tableReg = (n: 'gdt' | 'idt'): HmpTableRegister => {
    const r = tables.get(n);
    if (!r) throw missing(`${n.toUpperCase()} line`);
    return r;
  };
  const dr: Record<string, bigint> = {};
  for (const n of ['DR0', 'DR1', 'DR2', 'DR3', 'DR6', 'DR7']) dr[n.toLowerCase()] = reg(n);
  const pkru = values.get('PKRU');
  return {
    cpu,
    layout,
    gprs,
    rip: hexBig(flagsLine[2]!),
    rsp: reg(layout === '64-bit' ? 'RSP' : 'ESP'),
    rflags: hexBig(flagsLine[4]!),
    cr0: reg('CR0'),
    cr2: reg('CR2'),
    cr3: reg('CR3'),
    cr4: reg('CR4'),
    efer: reg('EFER'),
    dr,
    es: segment('es'),
    cs: segment('cs'),
    ss: segment('ss'),
    ds: segment('ds'),
    fs: segment('fs'),
    gs: segment('gs'),
    ldt: segment('ldt'),
    tr: segment('tr'),
    gdt: tableReg('gdt'),
    idt: tableReg('idt'),
    cpl: Number(flagsLine[5]),
    halted: flagsLine[9] === '1',
    smm: flagsLine[8] === '1',
    a20: flagsLine[7] === '1',
    ...(pkru === undefined ? {} : { pkru: Number(pkru) }),
  };
}
