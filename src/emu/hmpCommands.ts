/**
 * The emulator's human monitor: the HMP commands pagewalk and people use, answering in QEMU 7.2's
 * exact formats (so src/qmp/hmp.ts parses them as it parses QEMU's): `info registers`, `info tlb`,
 * `info mem`, `info status`, `info cpus`, `info mtree [-f]`, `xp` and `x` (formats x d u o c, sizes
 * b h w g, QEMU's remembered defaults), `gva2gpa`, `qom-get`, `stop`, `cont`/`c`, `system_reset`,
 * `quit`/`q`, `help`. Addresses are QEMU monitor expressions (`0x1000+0x10`, `$rsp`, `(1<<12)`...).
 * Translations use the emulator's own MMU debug path. Refusals read as QEMU's do:
 * `unknown command: 'x'`, or a complaint followed by `Try "help x" for more information`.
 */
import { hex } from './bits.js';
import { formatCpuState } from './qemuLog.js';
import { infoMem, infoTlb } from './hmpPaging.js';
import { qomGet } from './qomProperties.js';
import { SessionError, type EmuSession } from './session.js';

/** A complaint about a command's arguments; the monitor adds `Try "help CMD" ...`. */
class UsageProblem extends Error {}

/** One command: its argument synopsis and help text, as `help` shows them, and what it does. */
interface Command {
  args: string;
  help: string;
  run(m: HmpMonitor, rest: string): string[];
}

const INFO: Record<string, Command> = {
  cpus: { args: '', help: 'show infos for each CPU', run: (m) => [`* CPU #0: thread_id=${m.threadId}`] },
  mem: { args: '', help: 'show the active virtual memory mappings', run: (m) => infoMem(m.session.machine) },
  mtree: { args: '[-f][-d][-o][-D]', help: 'show memory tree (-f: dump flat view for address spaces)', run: (m, rest) => m.mtree(rest) },
  registers: { args: '[-a]', help: 'show the cpu registers (-a: all - show register info for all cpus)', run: (m) => m.registers() },
  status: { args: '', help: 'show the current VM status (running|paused)', run: (m) => [m.statusLine()] },
  tlb: { args: '', help: 'show virtual to physical memory mappings', run: (m) => infoTlb(m.session.machine) },
};

const COMMANDS: Record<string, Command> = {
  c: { args: '', help: 'resume emulation', run: (m) => m.cont() },
  cont: { args: '', help: 'resume emulation', run: (m) => m.cont() },
  gva2gpa: { args: 'addr', help: 'print the guest physical address corresponding to a guest virtual address', run: (m, rest) => m.gva2gpa(rest) },
  help: { args: '[cmd]', help: 'show the help', run: (_m, rest) => help(rest.trim()) },
  info: { args: '[subcommand]', help: 'show various information about the system state', run: () => help('info') },
  q: { args: '', help: 'quit the emulator', run: (m) => m.quit() },
  quit: { args: '', help: 'quit the emulator', run: (m) => m.quit() },
  'qom-get': { args: 'path property', help: 'print QOM property', run: (m, rest) => m.qomGet(rest) },
  stop: { args: '', help: 'stop emulation', run: (m) => (m.session.stop('paused'), []) },
  system_reset: { args: '', help: 'reset the system', run: (m) => (m.session.systemReset(), []) },
  x: { args: '/fmt addr', help: 'virtual memory dump starting at \'addr\'', run: (m, rest) => m.memoryDump(rest, false) },
  xp: { args: '/fmt addr', help: 'physical memory dump starting at \'addr\'', run: (m, rest) => m.memoryDump(rest, true) },
};

function help(topic: string): string[] {
  const line = (name: string, c: Command): string => `${name} ${c.args} -- ${c.help}`;
  if (topic === 'info') return Object.entries(INFO).map(([n, c]) => line(`info ${n}`, c));
  if (topic !== '') {
    const c = COMMANDS[topic];
    return c ? [line(topic, c)] : [`unknown command: '${topic}'`];
  }
  return Object.entries(COMMANDS).map(([n, c]) => line(n, c));
}

/** Options of {@link HmpMonitor}. */
export interface HmpMonitorOptions {
  /** The thread id `info cpus` reports (default: this process's pid). */
  threadId?: number;
}

/** One monitor (QEMU keeps one per QMP or gdbstub connection point), with its remembered `x` format. */
export class HmpMonitor {
  /** The thread id `info cpus` shows. */
  readonly threadId: number;
  private lastFormat = 'x';
  private lastSize = 4;

  constructor(
    readonly session: EmuSession,
    options: HmpMonitorOptions = {},
  ) {
    this.threadId = options.threadId ?? process.pid;
  }

  /** Runs `commandLine` and returns its output as QEMU prints it (CRLF line ends; empty for a silent command). */
  execute(commandLine: string): string {
    const lines = this.lines(commandLine);
    return lines.map((l) => `${l}\r\n`).join('');
  }

  private lines(commandLine: string): string[] {
    const line = commandLine.trim();
    if (line === '') return [];
    const [name, rest] = splitWord(line);
    let cmd = COMMANDS[name];
    let args = rest;
    let shown = name;
    if (name === 'info') {
      const [sub, subRest] = splitWord(rest);
      if (sub === '') return help('info');
      cmd = INFO[sub];
      args = subRest;
      shown = `info ${sub}`;
    }
    if (!cmd) return [`unknown command: '${shown}'`];
    try {
      return cmd.run(this, args);
    } catch (e) {
      if (e instanceof UsageProblem) return [e.message, `Try "help ${shown}" for more information`];
      if (e instanceof SessionError) return [`Error: ${e.message}`];
      throw e;
    }
  }

  // ---------------------------------------------------------------- commands

  /** `info registers`: a blank line, `CPU#0`, then QEMU's register dump with the FPU part (no lazy-flags line). */
  registers(): string[] {
    const dump = formatCpuState(this.session.machine.state(), { fpu: true }).filter((l) => !l.startsWith('CCS='));
    return ['', 'CPU#0', ...dump];
  }

  /** `info status`: `VM status: running`, `VM status: paused`, or `VM status: paused (STATE)`. */
  statusLine(): string {
    const s = this.session.state;
    if (s === 'running') return 'VM status: running';
    return s === 'paused' ? 'VM status: paused' : `VM status: paused (${s})`;
  }

  /** `cont`: runs the VM, or says why it cannot. */
  cont(): string[] {
    this.session.cont();
    return [];
  }

  /** `quit`: ends the emulator once the reply is out. */
  quit(): string[] {
    setImmediate(() => this.session.quit('host-qmp-quit'));
    return [];
  }

  /** `info mtree [-f]`: RAM as one region, `pc.ram`, in the tree or flat-view layout. */
  mtree(rest: string): string[] {
    const ram = this.session.machine.memory.ramSize;
    const range = ram > 0 ? `${hex(0, 16)}-${hex(ram - 1, 16)} (prio 0, ram): pc.ram` : null;
    if (rest.split(/\s+/).includes('-f')) {
      return ['FlatView #0', ' AS "memory", root: system', ' AS "cpu-memory-0", root: system', ' Root memory region: system', ...(range ? [`  ${range}`] : []), ''];
    }
    return ['address-space: memory', `  ${hex(0, 16)}-${hex(0xffffffffffffffffn, 16)} (prio 0, i/o): system`, ...(range ? [`    ${range}`] : []), ''];
  }

  /** `gva2gpa ADDR`: `gpa: 0x...` (C's `%#x`, so a zero is `gpa: 0`) or `Unmapped`. */
  gva2gpa(rest: string): string[] {
    const va = BigInt.asUintN(64, expression(this, rest));
    const t = this.session.machine.translate(va & ~0xfffn);
    if (!t.ok) return ['Unmapped'];
    const gpa = BigInt(t.pa) + (va & 0xfffn);
    return [`gpa: ${gpa === 0n ? '0' : `0x${gpa.toString(16)}`}`];
  }

  /** `qom-get PATH PROPERTY`: the value as JSON, or `Error: ...`. */
  qomGet(rest: string): string[] {
    const [path, afterPath] = splitWord(rest);
    const [property, extra] = splitWord(afterPath);
    if (path === '' || property === '') throw new UsageProblem('Parameter \'property\' is missing');
    if (extra !== '') throw new UsageProblem('qom-get: extraneous characters at the end of line');
    const r = qomGet(this.session.machine.features, path, property);
    return [r.ok ? JSON.stringify(r.value) : `Error: ${r.desc}`];
  }

  /** `x`/`xp [/NFU] ADDR`: QEMU's memory_dump, a line per 16 bytes (8 for bytes), `Cannot access memory` where a line cannot be read. */
  memoryDump(rest: string, physical: boolean): string[] {
    let text = rest.trimStart();
    let count = 1;
    let format = this.lastFormat;
    let size = this.lastSize;
    if (text.startsWith('/')) {
      const m = /^\/(\d*)([a-zA-Z]*)/.exec(text)!;
      if (m[1] !== '') count = Number(m[1]);
      let fmt: string | null = null;
      let sz: number | null = null;
      for (const ch of m[2]!) {
        if ('oduxci'.includes(ch)) fmt = ch;
        else if (ch === 'b') sz = 1;
        else if (ch === 'h') sz = 2;
        else if (ch === 'w') sz = 4;
        else if (ch === 'g' || ch === 'L') sz = 8;
        else throw new UsageProblem(`invalid char in format: '${ch}'`);
      }
      text = text.slice(m[0].length);
      if (text !== '' && !/^\s/.test(text)) throw new UsageProblem(`invalid char in format: '${text[0]}'`);
      if (fmt === 'i') throw new UsageProblem("format 'i' (disassembly) is not available in the pagewalk emulator's monitor");
      format = fmt ?? format;
      size = sz ?? size;
      this.lastFormat = format;
      this.lastSize = size;
    }
    const address = BigInt.asUintN(64, expression(this, text));
    return dump(this.session, address, count, format, size, physical);
  }
}

/** QEMU's memory_dump for formats x, d, u, o and c. */
function dump(session: EmuSession, start: bigint, count: number, format: string, size: number, physical: boolean): string[] {
  const machine = session.machine;
  let len = size * count;
  const lineSize = size === 1 ? 8 : 16;
  const wsize = format === 'c' ? 1 : size;
  const digits = format === 'o' ? Math.ceil((wsize * 8) / 3) : format === 'u' || format === 'd' ? Math.ceil((wsize * 80) / 33) : wsize * 2;
  const lines: string[] = [];
  let addr = start;
  while (len > 0) {
    const n = Math.min(len, lineSize);
    const head = `${hex(addr, 16)}:`;
    let bytes: Uint8Array | null = null;
    if (physical) {
      if (addr + BigInt(n) <= BigInt(machine.memory.ramSize)) bytes = machine.readPhysical(addr, n);
    } else {
      bytes = safeRead(() => machine.readVirtual(addr, n));
    }
    if (!bytes) {
      lines.push(`${head} Cannot access memory`);
      break;
    }
    let out = head;
    for (let i = 0; i < n; i += wsize) {
      let v = 0n;
      for (let k = wsize - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[i + k] ?? 0);
      out += ` ${formatValue(v, format, wsize, digits)}`;
    }
    lines.push(out);
    addr = BigInt.asUintN(64, addr + BigInt(n));
    len -= n;
  }
  return lines;
}

function safeRead(read: () => Uint8Array): Uint8Array | null {
  try {
    return read();
  } catch {
    return null;
  }
}

function formatValue(v: bigint, format: string, size: number, digits: number): string {
  switch (format) {
    case 'x':
      return `0x${hex(v, digits)}`;
    case 'u':
      return v.toString().padStart(digits);
    case 'd':
      return BigInt.asIntN(size * 8, v).toString().padStart(digits);
    case 'o':
      return (v === 0n ? '0' : `0${v.toString(8)}`).padStart(digits);
    default:
      return quoteChar(Number(v));
  }
}

/** QEMU's monitor_printc. */
function quoteChar(c: number): string {
  const inner = c === 0x27 ? "\\'" : c === 0x5c ? '\\\\' : c === 0x0a ? '\\n' : c === 0x0d ? '\\r' : c >= 32 && c <= 126 ? String.fromCharCode(c) : `\\x${hex(c, 2)}`;
  return `'${inner}'`;
}

/** The first word of `text` and the rest after it (leading blanks removed). */
function splitWord(text: string): [string, string] {
  const t = text.trimStart();
  const m = /^(\S*)\s*([\s\S]*)$/.exec(t)!;
  return [m[1]!, m[2]!];
}

/**
 * Evaluates a QEMU monitor expression: numbers (0x hex, leading-0 octal, decimal), `$register`
 * (`$pc` is RIP), unary + - ~, * / %, & | ^, + -, parentheses; 64-bit wrap-around. Throws
 * UsageProblem with QEMU's wording.
 */
function expression(m: HmpMonitor, text: string): bigint {
  let at = 0;
  const skip = (): void => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const peek = (): string => text[at] ?? '';
  const wrap = (v: bigint): bigint => BigInt.asIntN(64, v);
  const unary = (): bigint => {
    skip();
    const c = peek();
    if (c === '+' || c === '-' || c === '~') {
      at++;
      const v = unary();
      return c === '+' ? v : c === '-' ? wrap(-v) : wrap(~v);
    }
    if (c === '(') {
      at++;
      const v = sum();
      skip();
      if (peek() !== ')') throw new UsageProblem("')' expected");
      at++;
      return v;
    }
    if (c === '$') {
      const r = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(at));
      if (!r) throw new UsageProblem('unknown register');
      at += r[0].length;
      const name = r[1]!.toLowerCase() === 'pc' ? 'rip' : r[1]!;
      try {
        return wrap(m.session.machine.getRegister(name));
      } catch {
        throw new UsageProblem('unknown register');
      }
    }
    if (c === '') throw new UsageProblem('unexpected end of expression');
    const n = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text.slice(at));
    if (!n) throw new UsageProblem(`invalid char '${c}' in expression`);
    at += n[0].length;
    const digits = n[0];
    const value = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits[0] === '0' ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
    if (value >= 1n << 64n) throw new UsageProblem('number too large');
    return wrap(value);
  };
  const binary = (next: () => bigint, ops: string, apply: (op: string, a: bigint, b: bigint) => bigint) => (): bigint => {
    let v = next();
    for (;;) {
      skip();
      const op = peek();
      if (op === '' || !ops.includes(op)) return v;
      at++;
      v = wrap(apply(op, v, next()));
    }
  };
  const prod = binary(unary, '*/%', (op, a, b) => {
    if (op === '*') return a * b;
    if (b === 0n) throw new UsageProblem('division by zero');
    return op === '/' ? a / b : a % b;
  });
  const logic = binary(prod, '&|^', (op, a, b) => (op === '&' ? a & b : op === '|' ? a | b : a ^ b));
  const sum = binary(logic, '+-', (op, a, b) => (op === '+' ? a + b : a - b));
  const v = sum();
  skip();
  if (at < text.length) throw new UsageProblem(`invalid char '${text[at]}' in expression`);
  return v;
}
