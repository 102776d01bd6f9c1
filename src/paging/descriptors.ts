/**
 * The system structures exception delivery reads (Intel SDM vol. 3, 3.4-3.5, 6.11-6.14, 7.2):
 * segment selectors, GDT descriptors, IDT gates, and the fields of the 32- and 64-bit TSS.
 * Pure decoders of raw values; reading them from linear memory is `virtRead.ts`'s job.
 */
import { hex } from './addr.js';

/** Error for bytes that cannot hold the structure asked for; `code` is stable. */
export class DescriptorError extends Error {
  constructor(
    readonly code: 'E_DESCRIPTOR_SIZE',
    message: string,
  ) {
    super(message);
    this.name = 'DescriptorError';
  }
}

/** A segment selector's fields. */
export interface Selector {
  /** The descriptor's index in its table (selector bits 15:3). */
  readonly index: number;
  /** Table indicator: true for the LDT, false for the GDT. */
  readonly ldt: boolean;
  /** Requested privilege level (bits 1:0). */
  readonly rpl: number;
}

/** Splits a 16-bit selector into index, table indicator and RPL. */
export function decodeSelector(selector: number): Selector {
  return { index: (selector >>> 3) & 0x1fff, ldt: (selector & 4) !== 0, rpl: selector & 3 };
}

/** True for a null selector (index 0 in the GDT, whatever the RPL). */
export function isNullSelector(selector: number): boolean {
  return (selector & 0xfffc) === 0;
}

/** System-descriptor and gate types (S=0), by their 4-bit type field. */
export const SYSTEM_TYPE = {
  /** 16-bit TSS, available (legacy only). */
  TSS16: 0x1,
  /** LDT. */
  LDT: 0x2,
  /** 16-bit TSS, busy (legacy only). */
  TSS16_BUSY: 0x3,
  /** Task gate (legacy only): the selector names a TSS. */
  TASK_GATE: 0x5,
  /** 16-bit interrupt gate (legacy only). */
  INT16: 0x6,
  /** 16-bit trap gate (legacy only). */
  TRAP16: 0x7,
  /** Available TSS (32-bit, or 64-bit in long mode). */
  TSS: 0x9,
  /** Busy TSS (32-bit, or 64-bit in long mode). */
  TSS_BUSY: 0xb,
  /** Call gate (32-bit, or 64-bit in long mode). */
  CALL_GATE: 0xc,
  /** Interrupt gate (32-bit, or 64-bit in long mode): clears IF. */
  INT: 0xe,
  /** Trap gate (32-bit, or 64-bit in long mode): leaves IF alone. */
  TRAP: 0xf,
} as const;

/** A decoded GDT or LDT descriptor (8 bytes; 16 for a long-mode system descriptor). */
export interface SegmentDescriptor {
  readonly raw: bigint;
  /** The segment base (bits 63:32 too for a long-mode system descriptor given its high half). */
  readonly base: bigint;
  /** The last valid offset, in bytes (the 20-bit limit scaled by 4 KiB when G=1). */
  readonly limit: number;
  /** The 4-bit type field. */
  readonly type: number;
  /** S=0: a system descriptor (TSS, LDT, gate) rather than code or data. */
  readonly system: boolean;
  readonly dpl: number;
  readonly present: boolean;
  /** L: a 64-bit code segment (code segments in long mode only). */
  readonly long: boolean;
  /** D/B: 32-bit default operand size (code) or a 32-bit stack (data). */
  readonly big: boolean;
  /** G: the limit counts 4 KiB units. */
  readonly granular: boolean;
  /** A code segment (S=1, type bit 3). */
  readonly code: boolean;
  /** A conforming code segment: runs at the caller's CPL. */
  readonly conforming: boolean;
  /** A writable data segment (S=1, type bit 3 clear, bit 1 set). */
  readonly writable: boolean;
}

/**
 * Decodes an 8-byte descriptor. `high` is the second quadword of a 16-byte long-mode system
 * descriptor (TSS, LDT): its low 32 bits are base bits 63:32.
 */
export function decodeSegmentDescriptor(raw: bigint, high?: bigint): SegmentDescriptor {
  const lo = Number(raw & 0xffffffffn);
  const hi = Number((raw >> 32n) & 0xffffffffn);
  const type = (hi >>> 8) & 0xf;
  const system = (hi & 0x1000) === 0;
  const granular = (hi & 0x800000) !== 0;
  const rawLimit = (lo & 0xffff) | (hi & 0xf0000);
  let base = BigInt(((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0);
  if (high !== undefined && system) base |= (high & 0xffffffffn) << 32n;
  const code = !system && (type & 0x8) !== 0;
  return {
    raw,
    base,
    limit: granular ? rawLimit * 0x1000 + 0xfff : rawLimit,
    type,
    system,
    dpl: (hi >>> 13) & 3,
    present: (hi & 0x8000) !== 0,
    long: (hi & 0x200000) !== 0,
    big: (hi & 0x400000) !== 0,
    granular,
    code,
    conforming: code && (type & 0x4) !== 0,
    writable: !system && !code && (type & 0x2) !== 0,
  };
}

/** What an IDT gate does. */
export type GateKind = 'interrupt' | 'trap' | 'task' | 'invalid';

/** A decoded IDT gate. */
export interface IdtGate {
  readonly kind: GateKind;
  /** The 4-bit type field. */
  readonly type: number;
  /** Width of the frame the gate pushes: 16 or 32 (legacy gates), 64 (long mode); 0 for a task gate or an invalid type. */
  readonly bits: 0 | 16 | 32 | 64;
  readonly present: boolean;
  readonly dpl: number;
  /** The handler's code segment, or the TSS for a task gate. */
  readonly selector: number;
  /** The handler's offset in its code segment (0 for a task gate). */
  readonly offset: bigint;
  /** Interrupt stack table index 1..7, 0 for none (long mode only). */
  readonly ist: number;
}

function gateBytes(bytes: Uint8Array, size: number, what: string): DataView {
  if (bytes.length < size) throw new DescriptorError('E_DESCRIPTOR_SIZE', `${what} needs ${size} bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, size);
}

/** Decodes a 16-byte long-mode IDT gate: only interrupt (0xe) and trap (0xf) gates are valid there. */
export function decodeGate64(bytes: Uint8Array): IdtGate {
  const dv = gateBytes(bytes, 16, 'a 64-bit IDT gate');
  const attr = dv.getUint8(5);
  const type = attr & 0xf;
  const kind: GateKind = type === SYSTEM_TYPE.INT ? 'interrupt' : type === SYSTEM_TYPE.TRAP ? 'trap' : 'invalid';
  // Bit 4 of the attribute byte must be 0 (S=0); a set S makes it a code/data descriptor, not a gate.
  const valid = kind !== 'invalid' && (attr & 0x10) === 0;
  const offset = BigInt(dv.getUint16(0, true)) | (BigInt(dv.getUint16(6, true)) << 16n) | (BigInt(dv.getUint32(8, true)) << 32n);
  return {
    kind: valid ? kind : 'invalid',
    type,
    bits: valid ? 64 : 0,
    present: (attr & 0x80) !== 0,
    dpl: (attr >>> 5) & 3,
    selector: dv.getUint16(2, true),
    offset,
    ist: dv.getUint8(4) & 7,
  };
}

/** Decodes an 8-byte legacy (32-bit or PAE paging) IDT gate: task, 16- or 32-bit interrupt and trap gates. */
export function decodeGate32(bytes: Uint8Array): IdtGate {
  const dv = gateBytes(bytes, 8, 'a 32-bit IDT gate');
  const attr = dv.getUint8(5);
  const type = attr & 0xf;
  const s = (attr & 0x10) !== 0;
  let kind: GateKind = 'invalid';
  let bits: IdtGate['bits'] = 0;
  if (!s) {
    if (type === SYSTEM_TYPE.TASK_GATE) kind = 'task';
    else if (type === SYSTEM_TYPE.INT || type === SYSTEM_TYPE.INT16) kind = 'interrupt';
    else if (type === SYSTEM_TYPE.TRAP || type === SYSTEM_TYPE.TRAP16) kind = 'trap';
    if (kind === 'interrupt' || kind === 'trap') bits = (type & 0x8) !== 0 ? 32 : 16;
  }
  const offset = kind === 'task' ? 0n : BigInt(dv.getUint16(0, true)) | (bits === 32 ? BigInt(dv.getUint16(6, true)) << 16n : 0n);
  return {
    kind,
    type,
    bits,
    present: (attr & 0x80) !== 0,
    dpl: (attr >>> 5) & 3,
    selector: dv.getUint16(2, true),
    offset,
    ist: 0,
  };
}

/** One phrase for a gate type, as a kernel developer would name it. */
export function describeGateType(type: number, long: boolean): string {
  const names: Record<number, string> = long
    ? { 0x2: 'an LDT descriptor', 0x9: 'a TSS descriptor', 0xb: 'a busy TSS descriptor', 0xc: 'a call gate', 0xe: 'an interrupt gate', 0xf: 'a trap gate' }
    : {
        0x1: 'a 16-bit TSS descriptor',
        0x2: 'an LDT descriptor',
        0x3: 'a busy 16-bit TSS descriptor',
        0x4: 'a 16-bit call gate',
        0x5: 'a task gate',
        0x6: 'a 16-bit interrupt gate',
        0x7: 'a 16-bit trap gate',
        0x9: 'a TSS descriptor',
        0xb: 'a busy TSS descriptor',
        0xc: 'a call gate',
        0xe: 'an interrupt gate',
        0xf: 'a trap gate',
      };
  return names[type] ?? `a reserved type (${hex(type)})`;
}

/** Offsets in the 64-bit TSS (SDM vol. 3, 8.7). */
export const TSS64 = {
  /** The size the CPU requires (limit >= 0x67). */
  size: 0x68,
  /** Offset of RSPn, the stack for a switch to CPL n (0..2). */
  rsp: (cpl: number): number => 4 + 8 * cpl,
  /** Offset of ISTn (1..7). */
  ist: (n: number): number => 0x24 + 8 * (n - 1),
} as const;

/** Offsets in the 32-bit TSS (SDM vol. 3, 7.2.1). */
export const TSS32 = {
  /** The size the CPU requires (limit >= 0x67). */
  size: 0x68,
  /** Previous task link (written on a nested task switch). */
  link: 0x00,
  esp0: 0x04,
  ss0: 0x08,
  cr3: 0x1c,
  eip: 0x20,
  eflags: 0x24,
  esp: 0x38,
  cs: 0x4c,
  ss: 0x50,
  /** The first byte a task switch saves the outgoing task's state to (EIP). */
  saveStart: 0x20,
  /** One past the last byte it saves (GS). */
  saveEnd: 0x60,
} as const;

/** The fields of a 32-bit TSS a task switch loads. */
export interface Tss32 {
  readonly link: number;
  readonly esp0: number;
  readonly ss0: number;
  readonly cr3: number;
  readonly eip: number;
  readonly eflags: number;
  readonly esp: number;
  readonly cs: number;
  readonly ss: number;
}

/** Decodes the first 0x68 bytes of a 32-bit TSS. Throws DescriptorError (E_DESCRIPTOR_SIZE) on fewer bytes. */
export function decodeTss32(bytes: Uint8Array): Tss32 {
  const dv = gateBytes(bytes, TSS32.size, 'a 32-bit TSS');
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u16 = (o: number): number => dv.getUint16(o, true);
  return {
    link: u16(TSS32.link),
    esp0: u32(TSS32.esp0),
    ss0: u16(TSS32.ss0),
    cr3: u32(TSS32.cr3),
    eip: u32(TSS32.eip),
    eflags: u32(TSS32.eflags),
    esp: u32(TSS32.esp),
    cs: u16(TSS32.cs),
    ss: u16(TSS32.ss),
  };
}
