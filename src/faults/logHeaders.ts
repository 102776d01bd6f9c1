/**
 * The one-line records of QEMU's `-d int` and `-d cpu_reset` logs, as QEMU 6 to 9 print them:
 *
 * - `%6d: v=%02x e=%04x i=%d cpl=%d IP=%04x:%016lx pc=%016lx SP=%04x:%016lx` then ` CR2=%016lx`
 *   for a #PF or ` env->regs[R_EAX]=%016lx` otherwise (` EAX=` before QEMU 2); 8-digit fields from
 *   qemu-system-i386 (do_interrupt_all, target/i386/tcg/seg_helper.c; logged in protected mode only);
 * - `check_exception old: 0x%x new 0x%x` (check_exception, tcg/excp_helper.c; old is -1, printed
 *   0xffffffff, when no exception was being delivered);
 * - `Triple fault` (the same function, `-d cpu_reset`);
 * - `CPU Reset (CPU %d)` (cpu_common_reset_hold, hw/core/cpu-common.c), then a register dump;
 * - `SMM: enter` and `SMM: after RSM` (tcg/system/smm_helper.c), each with a register dump;
 * - `Servicing hardware INT=0x%02x` and `Servicing virtual hardware INT=0x%02x` (x86_cpu_exec_interrupt).
 *
 * A header may follow other text on the same line (guest output without its newline, when the log
 * goes to stderr with the serial port); matching finds it anywhere and says where it starts.
 */

/** A `v=` line: an interrupt or exception QEMU is about to deliver. */
export interface InterruptHeader {
  kind: 'interrupt';
  /** QEMU's running count of logged interrupts. */
  count: number;
  vector: number;
  /** The error code as printed (QEMU prints one for every vector, 0 where none is pushed). */
  errorCode: number;
  /** `i=1`: raised by an instruction (int n, int3, into), not by the CPU or a device. */
  softwareInt: boolean;
  cpl: number;
  cs: number;
  ip: bigint;
  /** CS base + IP, as QEMU computed it. */
  pc: bigint;
  ss: number;
  sp: bigint;
  /** CR2 for a #PF (the address that faulted). */
  cr2?: bigint;
  /** EAX/RAX for every other vector. */
  eax?: bigint;
}

/** `check_exception old: 0x.. new 0x..`: an exception raised, while `old` was being delivered (null: none was). */
export interface CheckExceptionHeader {
  kind: 'check-exception';
  old: number | null;
  next: number;
}

/** Every one-line record a log holds. */
export type Header =
  | InterruptHeader
  | CheckExceptionHeader
  | { kind: 'triple-fault' }
  | { kind: 'cpu-reset'; cpu: number }
  | { kind: 'smm-enter' }
  | { kind: 'smm-exit' }
  | { kind: 'hardware-interrupt'; vector: number; virtual: boolean };

/** A header found in a line: what it is, and where it starts and ends in the line. */
export interface HeaderMatch {
  header: Header;
  start: number;
  end: number;
}

const H = '[0-9a-f]+';
const INTERRUPT = new RegExp(
  `(-?\\d+): v=(${H}) e=(${H}) i=(\\d+) cpl=(\\d+) IP=(${H}):(${H}) pc=(${H}) SP=(${H}):(${H})(?: (CR2|EAX|env->regs\\[R_EAX\\])=(${H}))?`,
);
const CHECK = new RegExp(`check_exception old: 0x(${H}) new 0x(${H})`);
const TRIPLE = /Triple fault/;
const RESET = /CPU Reset \(CPU (\d+)\)/;
const SMM_ENTER = /SMM: enter/;
const SMM_EXIT = /SMM: after RSM/;
const HARDWARE = new RegExp(`Servicing (virtual )?hardware INT=0x(${H})`);

const big = (h: string): bigint => BigInt(`0x${h}`);
const num = (h: string): number => Number.parseInt(h, 16);

type Matcher = { re: RegExp; make(m: RegExpExecArray): Header | null; fixedText: boolean };

const MATCHERS: Matcher[] = [
  {
    re: INTERRUPT,
    fixedText: false,
    make(m) {
      const [, count, v, e, i, cpl, cs, ip, pc, ss, sp, tailName, tail] = m;
      const vector = num(v!);
      const errorCode = num(e!);
      if (vector > 0xff || errorCode > 0xffffffff) return null;
      const h: InterruptHeader = {
        kind: 'interrupt',
        count: Number(count),
        vector,
        errorCode,
        softwareInt: i !== '0',
        cpl: Number(cpl),
        cs: num(cs!),
        ip: big(ip!),
        pc: big(pc!),
        ss: num(ss!),
        sp: big(sp!),
      };
      if (tailName === 'CR2') h.cr2 = big(tail!);
      else if (tailName !== undefined) h.eax = big(tail!);
      return h;
    },
  },
  {
    re: CHECK,
    fixedText: false,
    make(m) {
      const old = num(m[1]!);
      return { kind: 'check-exception', old: old === 0xffffffff || old > 0xff ? null : old, next: num(m[2]!) };
    },
  },
  { re: TRIPLE, fixedText: true, make: () => ({ kind: 'triple-fault' }) },
  { re: RESET, fixedText: true, make: (m) => ({ kind: 'cpu-reset', cpu: Number(m[1]) }) },
  { re: SMM_ENTER, fixedText: true, make: () => ({ kind: 'smm-enter' }) },
  { re: SMM_EXIT, fixedText: true, make: () => ({ kind: 'smm-exit' }) },
  { re: HARDWARE, fixedText: false, make: (m) => ({ kind: 'hardware-interrupt', vector: num(m[2]!), virtual: m[1] !== undefined }) },
];

/**
 * Finds the first header in `text`. With `wholeOnly` (a line the input ended inside), only headers
 * of fixed text count: a number at the end of a cut line may itself be cut.
 */
export function matchHeader(text: string, wholeOnly = false): HeaderMatch | null {
  let best: HeaderMatch | null = null;
  for (const m of MATCHERS) {
    if (wholeOnly && !m.fixedText) continue;
    const r = m.re.exec(text);
    if (!r || (best && r.index >= best.start)) continue;
    const header = m.make(r);
    if (!header) continue;
    // The count of a v= line is printed with %6d: the spaces before it belong to it.
    let start = r.index;
    if (header.kind === 'interrupt') while (start > 0 && text[start - 1] === ' ') start--;
    best = { header, start, end: r.index + r[0].length };
  }
  return best;
}

const FIXED_TEXTS = ['Triple fault', 'CPU Reset (CPU ', 'SMM: enter', 'SMM: after RSM', 'Servicing hardware INT=0x', 'Servicing virtual hardware INT=0x', 'check_exception old: 0x'];
const CUT_INTERRUPT = /^ *-?\d+(?::(?: (?:v(?:=.*)?)?)?)?$/;
const CUT_CHECK = /^check_exception old: 0x[0-9a-f]*(?: (?:n(?:e(?:w(?: (?:0(?:x[0-9a-f]*)?)?)?)?)?)?)?$/;
const GLUED = /check_exception|\d: v=[0-9a-f]/;
const DUMP_KEY = /^(?:[RE]AX|[RE]SI|R8|R12|R16|R20|R24|R28|[RE]IP|ES|CS|SS|DS|FS|GS|LDT|TR|GDT|IDT|CR0|DR0|DR6|CCS|EFER|FCW|FPR\d|(?:XMM|YMM|ZMM|Opmask)\d\d|Code) ?$/;
const DUMP_STARTS = ['RAX', 'EAX', 'RSI', 'ESI', 'R8 ', 'R12', 'R16', 'R20', 'R24', 'R28', 'RIP', 'EIP', 'ES ', 'CS ', 'SS ', 'DS ', 'FS ', 'GS ', 'LDT', 'TR ', 'GDT', 'IDT', 'CR0', 'DR0', 'DR6', 'CCS', 'EFER', 'FCW', 'FPR', 'XMM', 'YMM', 'ZMM', 'Opmask', 'Code'];

/** A dump line cut short: a register name QEMU prints first on a line, whole (with its `=`) or cut. */
function cutDumpLine(text: string): boolean {
  const eq = text.indexOf('=');
  return eq >= 0 ? DUMP_KEY.test(text.slice(0, eq)) : DUMP_STARTS.some((k) => k.startsWith(text));
}

/**
 * True when `text`, a last line the log ended inside, may be the start of a record or dump line
 * QEMU was writing (and not guest output that simply has no newline yet, such as a prompt).
 */
export function couldBeCutRecord(text: string): boolean {
  if (text === '') return false;
  if (FIXED_TEXTS.some((t) => t.startsWith(text) || text.startsWith(t))) return true;
  return CUT_INTERRUPT.test(text) || CUT_CHECK.test(text) || cutDumpLine(text) || GLUED.test(text);
}
