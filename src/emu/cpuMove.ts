/**
 * Data movement: MOV in all its forms (registers, memory, immediates, moffs, segment registers),
 * MOVZX, MOVSX, MOVSXD, LEA, XCHG, CMOVcc, SETcc, the sign-extension family (CBW..CQO), BSWAP,
 * LAHF/SAHF and the NOPs.
 */
import { MASK, signExtend } from './bits.js';
import type { Handler } from './cpuDecode.js';
import { OP_GPR, OP_SEG } from './cpuDecode.js';
import { loadDataSegment } from './cpuSegments.js';
import { FL, RAX, RDX, SEG_SS } from './cpuState.js';

/** MOV between registers, memory and immediates. */
export const MOV: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, cpu.readOp(i, 1));
};

/** MOV from a segment register: the selector, zero-extended into a register or stored as 16 bits. */
export const MOV_FROM_SREG: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, BigInt(cpu.segs[i.ops[1]!.reg]!.selector));
};

/** MOV to DS, ES, FS, GS or SS: a real descriptor load; MOV SS inhibits interrupts for one instruction. */
export const MOV_TO_SREG: Handler = (cpu, i) => {
  const seg = i.ops[0]!.reg;
  loadDataSegment(cpu, seg, Number(cpu.readOp(i, 1) & 0xffffn));
  if (seg === SEG_SS) cpu.inhibitIrq = true;
};

/** MOVZX: zero-extension is what reading a narrower operand gives. */
export const MOVZX: Handler = MOV;

/** MOVSX and MOVSXD: sign-extend the source to the destination's size. */
export const MOVSX: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, signExtend(cpu.readOp(i, 1), i.ops[1]!.size) & MASK[i.opSize]!);
};

/** LEA: the effective address (no segment base), truncated to the destination's size. */
export const LEA: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, cpu.ea(i, true) & MASK[i.opSize]!);
};

/** XCHG of two registers or a register and memory (a read-modify-write of the memory side). */
export const XCHG: Handler = (cpu, i) => {
  const a = cpu.readDest(i);
  const b = cpu.readOp(i, 1);
  cpu.writeDest(i, b);
  cpu.writeOp(i, 1, a);
};

/** CMOVcc: the source is read (and may fault) whatever the condition; a 32-bit destination is zero-extended either way. */
export const CMOVCC: Handler = (cpu, i) => {
  const v = cpu.readOp(i, 1);
  cpu.writeOp(i, 0, cpu.cond(i.cc) ? v : cpu.readOp(i, 0));
};

/** SETcc: 1 or 0 into a byte. */
export const SETCC: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, cpu.cond(i.cc) ? 1n : 0n);
};

/** CBW (2), CWDE (4), CDQE (8): sign-extend the lower half of rAX into `size` bytes of it. */
export function signExtendAccumulator(size: 2 | 4 | 8): Handler {
  return (cpu) => {
    const v = signExtend(cpu.regs[RAX]! & MASK[size / 2]!, size / 2) & MASK[size]!;
    cpu.setReg({ kind: OP_GPR, reg: RAX, hi: false, size, imm: 0n }, v);
  };
}

/** CWD (2), CDQ (4), CQO (8): fill `size` bytes of rDX with the sign of rAX. */
export function signFillDx(size: 2 | 4 | 8): Handler {
  return (cpu) => {
    const negative = (cpu.regs[RAX]! >> BigInt(size * 8 - 1)) & 1n;
    cpu.setReg({ kind: OP_GPR, reg: RDX, hi: false, size, imm: 0n }, negative ? MASK[size]! : 0n);
  };
}

/** BSWAP of a 32- or 64-bit register. */
export const BSWAP: Handler = (cpu, i) => {
  const size = i.opSize;
  let v = cpu.readOp(i, 0);
  let r = 0n;
  for (let k = 0; k < size; k++) {
    r = (r << 8n) | (v & 0xffn);
    v >>= 8n;
  }
  cpu.writeOp(i, 0, r);
};

/** LAHF: AH = SF:ZF:0:AF:0:PF:1:CF. */
export const LAHF: Handler = (cpu) => {
  const ah = (cpu.rflags & (FL.SF | FL.ZF | FL.AF | FL.PF | FL.CF)) | FL.FIXED;
  cpu.regs[RAX] = (cpu.regs[RAX]! & ~0xff00n) | (BigInt(ah) << 8n);
};

/** SAHF: SF, ZF, AF, PF and CF from AH. */
export const SAHF: Handler = (cpu) => {
  const ah = Number((cpu.regs[RAX]! >> 8n) & 0xffn);
  const m = FL.SF | FL.ZF | FL.AF | FL.PF | FL.CF;
  cpu.rflags = (cpu.rflags & ~m) | (ah & m);
};

/** NOP in all its forms (one-byte, multi-byte with a memory operand that is never accessed, PAUSE, ENDBR64). */
export const NOP: Handler = () => {};

/** True when operand 0 (or 1) of an instruction is a segment register (MOV Sreg forms). */
export function isSregMove(ops: readonly { kind: number }[]): 'to' | 'from' | null {
  if (ops[0]?.kind === OP_SEG) return 'to';
  if (ops[1]?.kind === OP_SEG) return 'from';
  return null;
}
