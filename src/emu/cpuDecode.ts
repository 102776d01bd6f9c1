/**
 * Instruction decoding: iced-x86's Decoder turns bytes into an instruction, and this file copies
 * what execution needs into a plain object (operands resolved to register numbers, sizes and
 * immediates, the memory operand, the branch displacement relative to the next RIP) with its
 * handler attached, so a cached instruction runs without touching WebAssembly again. The cache
 * is keyed by physical address and checked against the bytes, so self-modifying code and one
 * physical page seen at several linear addresses both work.
 */
import { Decoder, DecoderError, DecoderOptions, Formatter, FormatterSyntax, MemorySizeExt, OpKind, Register } from 'iced-x86';
import type { Cpu } from './cpu.js';

/** Executes one decoded instruction on the CPU (throws CpuFault for guest exceptions). */
export type Handler = (cpu: Cpu, i: Insn) => void;

/** A general register (of any width). */
export const OP_GPR = 0;
/** An immediate. */
export const OP_IMM = 1;
/** The explicit memory operand (see `Insn.mem`). */
export const OP_MEM = 2;
/** A segment register. */
export const OP_SEG = 3;
/** A control register. */
export const OP_CR = 4;
/** A near branch target (see `Insn.rel`). */
export const OP_BRANCH = 5;
/** The implicit memory operand of a string instruction. */
export const OP_STRING = 6;
/** Anything else (debug registers, far pointers, vector registers...). */
export const OP_OTHER = 7;

/** One operand, resolved. */
export interface Operand {
  kind: number;
  /** OP_GPR: register number 0..15; OP_SEG: segment index (ES, CS, SS, DS, FS, GS); OP_CR: CR number. */
  reg: number;
  /** OP_GPR: AH, CH, DH or BH (bits 15:8 of register 0..3). */
  hi: boolean;
  /** Size in bytes (for OP_MEM the access size, 0 when the instruction has none, as for LEA). */
  size: number;
  /** OP_IMM: the value as iced-x86 extends it (sign-extended immediates are 64-bit two's complement). */
  imm: bigint;
}

/** Register number of RIP as a memory base. */
export const BASE_RIP = 16;

/** The explicit memory operand. */
export interface MemRef {
  /** Base register 0..15, BASE_RIP, or -1. */
  base: number;
  /** Index register 0..15 or -1. */
  index: number;
  scale: bigint;
  /** Displacement; for RIP-relative operands relative to the next instruction. */
  disp: bigint;
  /** Segment whose base is added: 4 (FS), 5 (GS), or -1 (the others have base 0 in 64-bit mode). */
  seg: number;
  /** Address-size prefix: the address is truncated to 32 bits. */
  addr32: boolean;
  /** The effective segment is SS (base RSP or RBP): a non-canonical address raises #SS, not #GP. */
  stack: boolean;
}

/** A decoded instruction. */
export interface Insn {
  /** Length in bytes. */
  len: number;
  /** The instruction's bytes (the cache compares them with memory). */
  bytes: Uint8Array;
  /** iced-x86 Mnemonic. */
  mnemonic: number;
  /** iced-x86 Code (mnemonic plus operand form). */
  code: number;
  ops: Operand[];
  mem: MemRef | null;
  /** Size in bytes of operand 0 (0 when there is none). */
  opSize: number;
  /** iced-x86 ConditionCode (Jcc, SETcc, CMOVcc). */
  cc: number;
  /** Near branch: target minus the next instruction's address. */
  rel: bigint;
  rep: boolean;
  repne: boolean;
  /** Address-size prefix (string instructions use ECX/ESI/EDI). */
  addr32: boolean;
  /** Segment prefix whose base applies: 4 (FS), 5 (GS) or -1 (string instructions' source). */
  seg: number;
  exec: Handler;
}

function gpr(r: number): { reg: number; hi: boolean; size: number } | null {
  if (r >= Register.AL && r <= Register.BL) return { reg: r - Register.AL, hi: false, size: 1 };
  if (r >= Register.AH && r <= Register.BH) return { reg: r - Register.AH, hi: true, size: 1 };
  if (r >= Register.SPL && r <= Register.R15L) return { reg: r - Register.SPL + 4, hi: false, size: 1 };
  if (r >= Register.AX && r <= Register.R15W) return { reg: r - Register.AX, hi: false, size: 2 };
  if (r >= Register.EAX && r <= Register.R15D) return { reg: r - Register.EAX, hi: false, size: 4 };
  if (r >= Register.RAX && r <= Register.R15) return { reg: r - Register.RAX, hi: false, size: 8 };
  return null;
}

/** A base or index register as a register number (-1: none, BASE_RIP; -2: not a general register, e.g. a VSIB index). */
function baseReg(r: number): number {
  if (r === Register.None) return -1;
  if (r === Register.RIP || r === Register.EIP) return BASE_RIP;
  return gpr(r)?.reg ?? -2;
}

function operand(ins: ReturnType<Decoder['decode']>, n: number): Operand {
  const kind = ins.opKind(n);
  const none: Operand = { kind: OP_OTHER, reg: 0, hi: false, size: 0, imm: 0n };
  switch (kind) {
    case OpKind.Register: {
      const r = ins.opRegister(n);
      const g = gpr(r);
      if (g) return { kind: OP_GPR, ...g, imm: 0n };
      if (r >= Register.ES && r <= Register.GS) return { kind: OP_SEG, reg: r - Register.ES, hi: false, size: 2, imm: 0n };
      if (r >= Register.CR0 && r <= Register.CR15) return { kind: OP_CR, reg: r - Register.CR0, hi: false, size: 8, imm: 0n };
      return none;
    }
    case OpKind.Immediate8:
    case OpKind.Immediate8_2nd:
      return { kind: OP_IMM, reg: 0, hi: false, size: 1, imm: ins.immediate(n) };
    case OpKind.Immediate16:
    case OpKind.Immediate8to16:
      return { kind: OP_IMM, reg: 0, hi: false, size: 2, imm: ins.immediate(n) };
    case OpKind.Immediate32:
    case OpKind.Immediate8to32:
      return { kind: OP_IMM, reg: 0, hi: false, size: 4, imm: ins.immediate(n) };
    case OpKind.Immediate64:
    case OpKind.Immediate8to64:
    case OpKind.Immediate32to64:
      return { kind: OP_IMM, reg: 0, hi: false, size: 8, imm: ins.immediate(n) };
    case OpKind.NearBranch16:
    case OpKind.NearBranch32:
    case OpKind.NearBranch64:
      return { ...none, kind: OP_BRANCH };
    case OpKind.Memory:
      return { ...none, kind: OP_MEM, size: MemorySizeExt.size(ins.memorySize) };
    case OpKind.MemorySegSI:
    case OpKind.MemorySegESI:
    case OpKind.MemorySegRSI:
    case OpKind.MemorySegDI:
    case OpKind.MemorySegEDI:
    case OpKind.MemorySegRDI:
    case OpKind.MemoryESDI:
    case OpKind.MemoryESEDI:
    case OpKind.MemoryESRDI:
      return { ...none, kind: OP_STRING, size: MemorySizeExt.size(ins.memorySize) };
    default:
      return none;
  }
}

/** Why bytes did not decode: they end before the instruction does, or they are no valid instruction. */
export type DecodeFailure = 'more' | 'invalid';

/** Decodes the 64-bit instruction at the start of `bytes`, attaching the handler `resolve` picks for it. */
export function decode(bytes: Uint8Array, resolve: (i: Insn) => Handler): Insn | DecodeFailure {
  const d = new Decoder(64, bytes, DecoderOptions.None);
  d.ip = 0n;
  const ins = d.decode();
  try {
    if (ins.isInvalid) return d.lastError === DecoderError.NoMoreBytes ? 'more' : 'invalid';
    const len = ins.length;
    const ops: Operand[] = [];
    for (let n = 0; n < ins.opCount; n++) ops.push(operand(ins, n));
    let mem: MemRef | null = null;
    if (ops.some((o) => o.kind === OP_MEM)) {
      const base = baseReg(ins.memoryBase);
      const index = baseReg(ins.memoryIndex);
      if (base === -2 || index === -2) {
        // Vector-indexed (VSIB) memory: no instruction the emulator implements has it.
        for (const o of ops) if (o.kind === OP_MEM) o.kind = OP_OTHER;
      } else {
        const addr32 =
          (ins.memoryBase >= Register.EAX && ins.memoryBase <= Register.R15D) ||
          (ins.memoryIndex >= Register.EAX && ins.memoryIndex <= Register.R15D) ||
          ins.memoryBase === Register.EIP;
        let disp = ins.memoryDisplacement;
        if (base === BASE_RIP) disp = BigInt.asIntN(64, disp - BigInt(len));
        const seg = ins.segmentPrefix === Register.FS ? 4 : ins.segmentPrefix === Register.GS ? 5 : -1;
        mem = { base, index, scale: BigInt(ins.memoryIndexScale), disp, seg, addr32, stack: ins.memorySegment === Register.SS };
      }
    }
    const branch = ops.some((o) => o.kind === OP_BRANCH);
    const insn: Insn = {
      len,
      bytes: bytes.slice(0, len),
      mnemonic: ins.mnemonic,
      code: ins.code,
      ops,
      mem,
      opSize: ops[0]?.size ?? 0,
      cc: ins.conditionCode,
      rel: branch ? BigInt.asIntN(64, ins.nearBranchTarget - BigInt(len)) : 0n,
      rep: ins.hasRepPrefix || ins.hasRepePrefix,
      repne: ins.hasRepnePrefix,
      addr32: stringAddr32(ins),
      seg: ins.segmentPrefix === Register.FS ? 4 : ins.segmentPrefix === Register.GS ? 5 : -1,
      exec: () => {},
    };
    insn.exec = resolve(insn);
    return insn;
  } finally {
    ins.free();
    d.free();
  }
}

/** True when a string instruction addresses memory through ESI/EDI (address-size prefix). */
function stringAddr32(ins: ReturnType<Decoder['decode']>): boolean {
  for (let n = 0; n < ins.opCount; n++) {
    const k = ins.opKind(n);
    if (k === OpKind.MemorySegESI || k === OpKind.MemorySegEDI || k === OpKind.MemoryESEDI) return true;
  }
  return false;
}

let formatter: Formatter | null = null;

/** Intel-syntax text of the instruction at the start of `bytes` (for logs), or `(bad)`. */
export function disassemble(bytes: Uint8Array, ip = 0n): string {
  const d = new Decoder(64, bytes, DecoderOptions.None);
  d.ip = ip;
  const ins = d.decode();
  try {
    if (ins.isInvalid) return '(bad)';
    formatter ??= new Formatter(FormatterSyntax.Intel);
    return formatter.format(ins);
  } finally {
    ins.free();
    d.free();
  }
}

/** Decoded instructions by the physical address of their first byte. */
export class DecodeCache {
  private readonly byPa = new Map<number, Insn>();

  /** The cached instruction at `pa`, if any (the caller checks its bytes). */
  get(pa: number): Insn | undefined {
    return this.byPa.get(pa);
  }

  /** Caches `insn` at `pa` (dropping everything when the cache grows past 64 Ki instructions). */
  set(pa: number, insn: Insn): void {
    if (this.byPa.size >= 1 << 16) this.byPa.clear();
    this.byPa.set(pa, insn);
  }

  /** Forgets everything (machine reset). */
  clear(): void {
    this.byPa.clear();
  }
}
