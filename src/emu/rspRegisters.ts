/**
 * The registers the emulator's gdbstub shows, in the layout of QEMU 7.2's x86-64 target
 * description: `target.xml` includes `i386-64bit.xml`, one `org.gnu.gdb.i386.core` feature with
 * rax..r15, rip, eflags (32 bits), the six selectors (32 bits), fs_base, gs_base, k_gs_base, cr0,
 * cr2, cr3, cr4, cr8, efer, the x87 stack and control words, xmm0..15 and mxcsr: 66 registers,
 * 608 bytes in a `g` packet. The segment bases QEMU comments out are commented out here too, so
 * clients that number registers without stripping comments go wrong here as they would on QEMU.
 * The emulator has no FPU or SSE: those registers read as QEMU's reset values and ignore writes.
 */
import type { Machine } from './machine.js';

/** One register of the description. */
export interface GdbRegister {
  name: string;
  bits: number;
  /** The description's type: int64, data_ptr, code_ptr, int32, i387_ext, int, vec128 or a flags type. */
  type: string;
  group?: string;
}

const reg = (name: string, bits: number, type: string, group?: string): GdbRegister => (group ? { name, bits, type, group } : { name, bits, type });

/** Every register in register-number order (`p`/`P` numbers are indices into this list). */
export const GDB_REGISTERS: readonly GdbRegister[] = [
  reg('rax', 64, 'int64'), reg('rbx', 64, 'int64'), reg('rcx', 64, 'int64'), reg('rdx', 64, 'int64'),
  reg('rsi', 64, 'int64'), reg('rdi', 64, 'int64'), reg('rbp', 64, 'data_ptr'), reg('rsp', 64, 'data_ptr'),
  ...['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'].map((n) => reg(n, 64, 'int64')),
  reg('rip', 64, 'code_ptr'), reg('eflags', 32, 'x64_eflags'),
  ...['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((n) => reg(n, 32, 'int32')),
  reg('fs_base', 64, 'int64'), reg('gs_base', 64, 'int64'), reg('k_gs_base', 64, 'int64'),
  reg('cr0', 64, 'x64_cr0'), reg('cr2', 64, 'int64'), reg('cr3', 64, 'x64_cr3'), reg('cr4', 64, 'x64_cr4'),
  reg('cr8', 64, 'int64'), reg('efer', 64, 'x64_efer'),
  ...Array.from({ length: 8 }, (_, i) => reg(`st${i}`, 80, 'i387_ext')),
  ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((n) => reg(n, 32, 'int', 'float')),
  ...Array.from({ length: 16 }, (_, i) => reg(`xmm${i}`, 128, 'vec128')),
  reg('mxcsr', 32, 'x64_mxcsr', 'vector'),
];

/** How many registers the machine itself holds: rax..efer (0x00..0x20); the rest are FPU/SSE. */
const MACHINE_REGISTERS = 0x21;

/** Where each register's bytes start in a `g` packet. */
const OFFSETS: readonly number[] = (() => {
  const out: number[] = [];
  let at = 0;
  for (const r of GDB_REGISTERS) {
    out.push(at);
    at += r.bits / 8;
  }
  return out;
})();

/** The size of a `g` packet's data in bytes (608). */
export const G_PACKET_BYTES = OFFSETS[OFFSETS.length - 1]! + GDB_REGISTERS[GDB_REGISTERS.length - 1]!.bits / 8;

/** The values the registers the emulator lacks read as: QEMU's x87 control word and MXCSR at reset, zeros elsewhere. */
const FPU_RESET: Record<string, bigint> = { fctrl: 0x37fn, mxcsr: 0x1f80n };

/** The bits `P`/`G` may set in a register the machine holds (selectors are 16 bits in a 32-bit slot). */
function writableMask(r: GdbRegister): bigint {
  return ['cs', 'ss', 'ds', 'es', 'fs', 'gs'].includes(r.name) ? 0xffffn : (1n << BigInt(r.bits)) - 1n;
}

/** Little-endian bytes of `value`, `bytes` long. */
function le(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = value;
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The value of little-endian `bytes`. */
function fromLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** Register `regnum`'s bytes as `p` sends them, or null for a number the description does not have. */
export function readGdbRegister(machine: Machine, regnum: number): Uint8Array | null {
  const r = GDB_REGISTERS[regnum];
  if (!r) return null;
  const value = regnum < MACHINE_REGISTERS ? machine.getRegister(r.name) : (FPU_RESET[r.name] ?? 0n);
  return le(value, r.bits / 8);
}

/**
 * Writes register `regnum` from `bytes` as `P` does: the bytes given replace the low bytes of the
 * register (missing ones keep their value, extra ones are ignored). Numbers the description does
 * not have, and the FPU/SSE registers the emulator lacks, are ignored, as QEMU ignores them.
 */
export function writeGdbRegister(machine: Machine, regnum: number, bytes: Uint8Array): void {
  const r = GDB_REGISTERS[regnum];
  if (!r || regnum >= MACHINE_REGISTERS) return;
  const size = r.bits / 8;
  const given = bytes.subarray(0, size);
  const old = le(machine.getRegister(r.name), size);
  old.set(given);
  machine.setRegister(r.name, fromLe(old) & writableMask(r));
}

/** Every register as a `g` packet's data (608 bytes). */
export function readAllRegisters(machine: Machine): Uint8Array {
  const out = new Uint8Array(G_PACKET_BYTES);
  GDB_REGISTERS.forEach((_, i) => out.set(readGdbRegister(machine, i)!, OFFSETS[i]!));
  return out;
}

/** Writes registers from a `G` packet's data, in order, as far as it reaches (a short `G` sets only the first registers). */
export function writeAllRegisters(machine: Machine, bytes: Uint8Array): void {
  for (let i = 0; i < MACHINE_REGISTERS; i++) {
    const start = OFFSETS[i]!;
    if (start >= bytes.length) return;
    writeGdbRegister(machine, i, bytes.subarray(start, start + GDB_REGISTERS[i]!.bits / 8));
  }
}

// ---------------------------------------------------------------- the description

/** A flags type: its size in bytes and its fields as [name, start, end]. */
type FlagsType = { size: number; fields: [string, number, number][] };

const FLAGS: Record<string, FlagsType> = {
  x64_eflags: {
    size: 4,
    fields: [
      ['', 22, 31], ['ID', 21, 21], ['VIP', 20, 20], ['VIF', 19, 19], ['AC', 18, 18], ['VM', 17, 17], ['RF', 16, 16], ['', 15, 15],
      ['NT', 14, 14], ['IOPL', 12, 13], ['OF', 11, 11], ['DF', 10, 10], ['IF', 9, 9], ['TF', 8, 8], ['SF', 7, 7], ['ZF', 6, 6],
      ['', 5, 5], ['AF', 4, 4], ['', 3, 3], ['PF', 2, 2], ['', 1, 1], ['CF', 0, 0],
    ],
  },
  x64_cr0: {
    size: 8,
    fields: [['PG', 31, 31], ['CD', 30, 30], ['NW', 29, 29], ['AM', 18, 18], ['WP', 16, 16], ['NE', 5, 5], ['ET', 4, 4], ['TS', 3, 3], ['EM', 2, 2], ['MP', 1, 1], ['PE', 0, 0]],
  },
  x64_cr3: { size: 8, fields: [['PDBR', 12, 63], ['PCID', 0, 11]] },
  x64_cr4: {
    size: 8,
    fields: [
      ['PKE', 22, 22], ['SMAP', 21, 21], ['SMEP', 20, 20], ['OSXSAVE', 18, 18], ['PCIDE', 17, 17], ['FSGSBASE', 16, 16], ['SMXE', 14, 14],
      ['VMXE', 13, 13], ['LA57', 12, 12], ['UMIP', 11, 11], ['OSXMMEXCPT', 10, 10], ['OSFXSR', 9, 9], ['PCE', 8, 8], ['PGE', 7, 7],
      ['MCE', 6, 6], ['PAE', 5, 5], ['PSE', 4, 4], ['DE', 3, 3], ['TSD', 2, 2], ['PVI', 1, 1], ['VME', 0, 0],
    ],
  },
  x64_efer: {
    size: 8,
    fields: [['TCE', 15, 15], ['FFXSR', 14, 14], ['LMSLE', 13, 13], ['SVME', 12, 12], ['NXE', 11, 11], ['LMA', 10, 10], ['LME', 8, 8], ['SCE', 0, 0]],
  },
  x64_mxcsr: {
    size: 4,
    fields: [
      ['IE', 0, 0], ['DE', 1, 1], ['ZE', 2, 2], ['OE', 3, 3], ['UE', 4, 4], ['PE', 5, 5], ['DAZ', 6, 6], ['IM', 7, 7],
      ['DM', 8, 8], ['ZM', 9, 9], ['OM', 10, 10], ['UM', 11, 11], ['PM', 12, 12], ['FZ', 15, 15],
    ],
  },
};

function flagsXml(id: string): string {
  const f = FLAGS[id]!;
  const fields = f.fields.map(([name, start, end]) => `\t<field name="${name}" start="${start}" end="${end}"/>\n`).join('');
  return `  <flags id="${id}" size="${f.size}">\n${fields}  </flags>\n`;
}

function regXml(r: GdbRegister, first: boolean): string {
  return `  <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}"${r.group ? ` group="${r.group}"` : ''}${first ? ' regnum="0"' : ''}/>\n`;
}

const VECTORS = `  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v16i8" type="int8" count="16"/>
  <vector id="v8i16" type="int16" count="8"/>
  <vector id="v4i32" type="int32" count="4"/>
  <vector id="v2i64" type="int64" count="2"/>
  <union id="vec128">
\t<field name="v4_float" type="v4f"/>
\t<field name="v2_double" type="v2d"/>
\t<field name="v16_int8" type="v16i8"/>
\t<field name="v8_int16" type="v8i16"/>
\t<field name="v4_int32" type="v4i32"/>
\t<field name="v2_int64" type="v2i64"/>
\t<field name="uint128" type="uint128"/>
  </union>
`;

/** `i386-64bit.xml`: the single core feature, in QEMU's order, types defined before use. */
function coreFeatureXml(): string {
  const regs = (from: number, to: number): string =>
    GDB_REGISTERS.slice(from, to)
      .map((r, i) => regXml(r, from + i === 0))
      .join('');
  const idx = (name: string): number => GDB_REGISTERS.findIndex((r) => r.name === name);
  return (
    '<?xml version="1.0"?>\n<!-- x86-64 registers of the pagewalk emulator, in the layout of QEMU 7.2 -->\n\n' +
    '<!DOCTYPE target SYSTEM "gdb-target.dtd">\n\n<feature name="org.gnu.gdb.i386.core">\n' +
    flagsXml('x64_eflags') +
    '\n  <!-- General registers -->\n\n' +
    regs(0, idx('rip')) +
    '\n' +
    regs(idx('rip'), idx('cs')) +
    '\n  <!-- Segment registers -->\n\n' +
    regs(idx('cs'), idx('fs_base')) +
    '\n  <!-- Segment descriptor caches and TLS base MSRs -->\n\n' +
    '  <!--reg name="cs_base" bitsize="64" type="int64"/>\n  <reg name="ss_base" bitsize="64" type="int64"/>\n' +
    '  <reg name="ds_base" bitsize="64" type="int64"/>\n  <reg name="es_base" bitsize="64" type="int64"/-->\n' +
    regs(idx('fs_base'), idx('cr0')) +
    '\n  <!-- Control registers -->\n\n' +
    flagsXml('x64_cr0') +
    '\n' +
    flagsXml('x64_cr3') +
    '\n' +
    flagsXml('x64_cr4') +
    '\n' +
    flagsXml('x64_efer') +
    '\n' +
    regs(idx('cr0'), idx('st0')) +
    '\n  <!-- x87 FPU -->\n\n' +
    regs(idx('st0'), idx('fctrl')) +
    '\n' +
    regs(idx('fctrl'), idx('xmm0')) +
    '\n' +
    VECTORS +
    flagsXml('x64_mxcsr') +
    '\n' +
    regs(idx('xmm0'), idx('mxcsr')) +
    '\n' +
    regs(idx('mxcsr'), GDB_REGISTERS.length) +
    '</feature>\n'
  );
}

/** The annexes `qXfer:features:read` serves, by name. */
export const TARGET_ANNEXES: ReadonlyMap<string, Uint8Array> = new Map([
  [
    'target.xml',
    new TextEncoder().encode(
      '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="i386-64bit.xml"/></target>',
    ),
  ],
  ['i386-64bit.xml', new TextEncoder().encode(coreFeatureXml())],
]);
