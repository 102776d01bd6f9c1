/**
 * Arithmetic and logic with flags computed exactly (OF, SF, ZF, AF, PF, CF as the SDM defines
 * them; where it leaves a flag undefined, the value QEMU's TCG produces): ADD, ADC, SUB, SBB, CMP,
 * AND, OR, XOR, TEST, INC, DEC, NEG, NOT, MUL, IMUL (one, two and three operands), DIV, IDIV,
 * shifts and rotates, BT/BTS/BTR/BTC, BSF/BSR, XADD and CMPXCHG.
 */
import { M64, MASK, PARITY, SIGN, toSigned } from './bits.js';
import type { Cpu } from './cpu.js';
import type { Handler, Insn } from './cpuDecode.js';
import { OP_GPR, OP_MEM } from './cpuDecode.js';
import { FL, F_STACK, RAX, RDX } from './cpuState.js';
import { CpuFault, VEC } from './exceptions.js';

/** SF, ZF and PF of `r` as an operand of `size` bytes. */
export function szp(r: bigint, size: number): number {
  let f = PARITY[Number(r & 0xffn)] ? FL.PF : 0;
  if (r === 0n) f |= FL.ZF;
  if (r & SIGN[size]!) f |= FL.SF;
  return f;
}

/** `a + b + carry` in `size` bytes; sets the six status flags and returns the result. */
export function add(cpu: Cpu, a: bigint, b: bigint, carry: bigint, size: number): bigint {
  const mask = MASK[size]!;
  const full = a + b + carry;
  const r = full & mask;
  let f = szp(r, size);
  if (full > mask) f |= FL.CF;
  if ((a ^ r) & (b ^ r) & SIGN[size]!) f |= FL.OF;
  if ((a ^ b ^ r) & 0x10n) f |= FL.AF;
  cpu.setStatus(f);
  return r;
}

/** `a - b - borrow` in `size` bytes; sets the six status flags and returns the result. */
export function sub(cpu: Cpu, a: bigint, b: bigint, borrow: bigint, size: number): bigint {
  const r = (a - b - borrow) & MASK[size]!;
  let f = szp(r, size);
  if (a < b + borrow) f |= FL.CF;
  if ((a ^ b) & (a ^ r) & SIGN[size]!) f |= FL.OF;
  if ((a ^ b ^ r) & 0x10n) f |= FL.AF;
  cpu.setStatus(f);
  return r;
}

/** Flags of a logical result: CF=OF=0, AF=0 (undefined; QEMU clears it), SF/ZF/PF from `r`. */
export function logic(cpu: Cpu, r: bigint, size: number): bigint {
  cpu.setStatus(szp(r, size));
  return r;
}

const carryIn = (cpu: Cpu): bigint => (cpu.rflags & FL.CF ? 1n : 0n);

/** A two-operand ALU instruction: operand 0 op operand 1, written back unless `compareOnly`. */
function binary(op: (cpu: Cpu, a: bigint, b: bigint, size: number) => bigint, compareOnly = false): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const a = compareOnly ? cpu.readOp(i, 0) : cpu.readDest(i);
    const b = cpu.readOp(i, 1);
    const r = op(cpu, a, b, size);
    if (!compareOnly) cpu.writeDest(i, r);
  };
}

/** ADD: destination + source. */
export const ADD = binary((c, a, b, s) => add(c, a, b, 0n, s));
/** ADC: destination + source + CF. */
export const ADC = binary((c, a, b, s) => add(c, a, b, carryIn(c), s));
/** SUB: destination - source. */
export const SUB = binary((c, a, b, s) => sub(c, a, b, 0n, s));
/** SBB: destination - source - CF. */
export const SBB = binary((c, a, b, s) => sub(c, a, b, carryIn(c), s));
/** CMP: flags of destination - source, nothing written. */
export const CMP = binary((c, a, b, s) => sub(c, a, b, 0n, s), true);
/** AND. */
export const AND = binary((c, a, b, s) => logic(c, a & b, s));
/** OR. */
export const OR = binary((c, a, b, s) => logic(c, a | b, s));
/** XOR. */
export const XOR = binary((c, a, b, s) => logic(c, a ^ b, s));
/** TEST: flags of destination AND source, nothing written. */
export const TEST = binary((c, a, b, s) => logic(c, a & b, s), true);

/** INC and DEC: like ADD/SUB 1, but CF is kept. */
function incDec(delta: 1 | -1): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const cf = cpu.rflags & FL.CF;
    const a = cpu.readDest(i);
    const r = delta === 1 ? add(cpu, a, 1n, 0n, size) : sub(cpu, a, 1n, 0n, size);
    cpu.rflags = (cpu.rflags & ~FL.CF) | cf;
    cpu.writeDest(i, r);
  };
}

/** INC: +1, CF kept. */
export const INC = incDec(1);
/** DEC: -1, CF kept. */
export const DEC = incDec(-1);

/** NEG: 0 - operand; CF is set unless the operand was 0. */
export const NEG: Handler = (cpu, i) => {
  const a = cpu.readDest(i);
  cpu.writeDest(i, sub(cpu, 0n, a, 0n, i.opSize));
};

/** NOT: one's complement, no flags. */
export const NOT: Handler = (cpu, i) => {
  cpu.writeDest(i, ~cpu.readDest(i) & MASK[i.opSize]!);
};

/** Flags of a multiplication: CF=OF=`overflow`, SF/ZF/PF from the low half, AF=0 (as QEMU). */
function mulFlags(cpu: Cpu, low: bigint, size: number, overflow: boolean): void {
  cpu.setStatus(szp(low, size) | (overflow ? FL.CF | FL.OF : 0));
}

/** IMUL with two or three operands: dest = src1 * src2, truncated; CF=OF when the signed product does not fit. */
export const IMUL: Handler = (cpu, i) => {
  const size = i.opSize;
  if (i.ops.length === 1) return mulWide(cpu, i, true);
  const a = i.ops.length === 3 ? cpu.readOp(i, 1) : cpu.readOp(i, 0);
  const b = i.ops.length === 3 ? cpu.readOp(i, 2) : cpu.readOp(i, 1);
  const full = toSigned(a, size) * toSigned(b & MASK[size]!, size);
  const r = BigInt.asUintN(size * 8, full);
  mulFlags(cpu, r, size, toSigned(r, size) !== full);
  cpu.writeOp(i, 0, r);
};

/** MUL and one-operand IMUL: rDX:rAX (AX for bytes) = rAX * operand. */
function mulWide(cpu: Cpu, i: Insn, signed: boolean): void {
  const size = i.opSize;
  const bits = BigInt(size * 8);
  const mask = MASK[size]!;
  const src = cpu.readOp(i, 0);
  const acc = cpu.regs[RAX]! & mask;
  const full = signed ? toSigned(acc, size) * toSigned(src, size) : acc * src;
  const low = BigInt.asUintN(size * 8, full);
  const high = BigInt.asUintN(size * 8, full >> bits);
  const overflow = signed ? toSigned(low, size) !== full : high !== 0n;
  if (size === 1) {
    cpu.regs[RAX] = (cpu.regs[RAX]! & ~0xffffn) | (high << 8n) | low;
  } else {
    setSized(cpu, RAX, size, low);
    setSized(cpu, RDX, size, high);
  }
  mulFlags(cpu, low, size, overflow);
}

/** Writes the low `size` bytes of register `reg` (32-bit writes zero the upper half). */
function setSized(cpu: Cpu, reg: number, size: number, v: bigint): void {
  if (size === 8) cpu.regs[reg] = v & M64;
  else if (size === 4) cpu.regs[reg] = v & 0xffffffffn;
  else cpu.regs[reg] = (cpu.regs[reg]! & ~MASK[size]!) | (v & MASK[size]!);
}

/** MUL: unsigned rDX:rAX = rAX * operand. */
export const MUL: Handler = (cpu, i) => mulWide(cpu, i, false);

/** DIV and IDIV: rDX:rAX (AX for bytes) / operand; #DE on division by zero or a quotient that does not fit. Flags unchanged. */
function divide(signed: boolean): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const bits = BigInt(size * 8);
    const mask = MASK[size]!;
    const divisor = cpu.readOp(i, 0);
    if (divisor === 0n) throw new CpuFault(VEC.DE);
    const dividendU = size === 1 ? cpu.regs[RAX]! & 0xffffn : ((cpu.regs[RDX]! & mask) << bits) | (cpu.regs[RAX]! & mask);
    const dividend = signed ? BigInt.asIntN(size * 16, dividendU) : dividendU;
    const d = signed ? toSigned(divisor, size) : divisor;
    const q = dividend / d;
    const r = dividend % d;
    const fits = signed ? q >= -(1n << (bits - 1n)) && q < 1n << (bits - 1n) : q <= mask;
    if (!fits) throw new CpuFault(VEC.DE);
    const qu = BigInt.asUintN(size * 8, q);
    const ru = BigInt.asUintN(size * 8, r);
    if (size === 1) cpu.regs[RAX] = (cpu.regs[RAX]! & ~0xffffn) | (ru << 8n) | qu;
    else {
      setSized(cpu, RAX, size, qu);
      setSized(cpu, RDX, size, ru);
    }
  };
}

/** DIV: unsigned division of rDX:rAX. */
export const DIV = divide(false);
/** IDIV: signed division of rDX:rAX (truncating toward zero). */
export const IDIV = divide(true);

type ShiftKind = 'shl' | 'shr' | 'sar' | 'rol' | 'ror' | 'rcl' | 'rcr';

/** Shifts and rotates by 1, an immediate or CL; the count is masked to 5 bits (6 for 64-bit operands). */
function shift(kind: ShiftKind): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const bits = size * 8;
    const B = BigInt(bits);
    const mask = MASK[size]!;
    const sign = SIGN[size]!;
    const count = Number(cpu.readOp(i, 1) & (size === 8 ? 0x3fn : 0x1fn));
    const a = cpu.readDest(i);
    if (count === 0) {
      cpu.writeDest(i, a);
      return;
    }
    const c = BigInt(count);
    const msb = (v: bigint): number => (v & sign ? 1 : 0);
    let r: bigint;
    let f = cpu.rflags;
    const setCO = (cf: number, of: number): void => {
      f = (f & ~(FL.CF | FL.OF)) | (cf ? FL.CF : 0) | (of ? FL.OF : 0);
    };
    switch (kind) {
      case 'shl': {
        const before = (a << (c - 1n)) & mask;
        r = (a << c) & mask;
        f = szp(r, size);
        setCO(msb(before), msb(before ^ r));
        break;
      }
      case 'shr': {
        const before = a >> (c - 1n);
        r = a >> c;
        f = szp(r, size);
        setCO(Number(before & 1n), msb(before ^ r));
        break;
      }
      case 'sar': {
        const s = toSigned(a, size);
        r = BigInt.asUintN(bits, s >> c);
        f = szp(r, size);
        setCO(Number((s >> (c - 1n)) & 1n), 0);
        break;
      }
      case 'rol': {
        const n = BigInt(count % bits);
        r = ((a << n) | (a >> (B - n))) & mask;
        const cf = Number(r & 1n);
        setCO(cf, msb(r) ^ cf);
        break;
      }
      case 'ror': {
        const n = BigInt(count % bits);
        r = ((a >> n) | (a << (B - n))) & mask;
        setCO(msb(r), msb(r) ^ msb(r << 1n));
        break;
      }
      case 'rcl':
      case 'rcr': {
        const n = BigInt(size <= 2 ? count % (bits + 1) : count);
        if (n === 0n) {
          cpu.writeDest(i, a);
          return;
        }
        const wide = ((cpu.rflags & FL.CF ? 1n : 0n) << B) | a;
        const wmask = (1n << (B + 1n)) - 1n;
        const rot = kind === 'rcl' ? ((wide << n) | (wide >> (B + 1n - n))) & wmask : ((wide >> n) | (wide << (B + 1n - n))) & wmask;
        r = rot & mask;
        const cf = Number(rot >> B);
        setCO(cf, kind === 'rcl' ? msb(r) ^ cf : msb(r) ^ msb(r << 1n));
        break;
      }
    }
    cpu.rflags = (cpu.rflags & ~0x8d5) | (f & 0x8d5);
    cpu.writeDest(i, r);
  };
}

/** SHL/SAL. */
export const SHL = shift('shl');
/** SHR. */
export const SHR = shift('shr');
/** SAR. */
export const SAR = shift('sar');
/** ROL. */
export const ROL = shift('rol');
/** ROR. */
export const ROR = shift('ror');
/** RCL: rotate through CF. */
export const RCL = shift('rcl');
/** RCR: rotate through CF. */
export const RCR = shift('rcr');

type BitOp = 'bt' | 'bts' | 'btr' | 'btc';

/**
 * BT, BTS, BTR, BTC: CF = the selected bit, which BTS/BTR/BTC then set, clear or flip. With a
 * register offset and a memory operand the offset is signed and may reach outside the operand.
 */
function bitTest(op: BitOp): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const bits = BigInt(size * 8);
    const offset = cpu.readOp(i, 1);
    const dest = i.ops[0]!;
    let bit: bigint;
    let value: bigint;
    let memVa = 0n;
    if (dest.kind === OP_MEM && i.ops[1]!.kind === OP_GPR) {
      const soff = toSigned(offset, size);
      const unit = soff >= 0n ? soff / bits : -((-soff + bits - 1n) / bits);
      memVa = (cpu.ea(i) + unit * BigInt(size)) & M64;
      bit = soff - unit * bits;
    } else {
      bit = offset % bits;
      if (dest.kind === OP_MEM) memVa = cpu.ea(i);
    }
    const stack = i.mem?.stack ? F_STACK : 0;
    if (dest.kind === OP_MEM) value = op === 'bt' ? cpu.read(memVa, size, stack) : cpu.rmwRead(memVa, size, stack);
    else value = cpu.getReg(dest);
    const cf = (value >> bit) & 1n;
    cpu.rflags = (cpu.rflags & ~FL.CF) | (cf ? FL.CF : 0);
    if (op === 'bt') return;
    const m = 1n << bit;
    const r = op === 'bts' ? value | m : op === 'btr' ? value & ~m : value ^ m;
    if (dest.kind === OP_MEM) cpu.rmwWrite(memVa, size, r);
    else cpu.setReg(dest, r);
  };
}

/** BT. */
export const BT = bitTest('bt');
/** BTS. */
export const BTS = bitTest('bts');
/** BTR. */
export const BTR = bitTest('btr');
/** BTC. */
export const BTC = bitTest('btc');

/** BSF and BSR: the index of the lowest (highest) set bit; ZF=1 and the destination kept when the source is 0. */
function bitScan(reverse: boolean): Handler {
  return (cpu, i) => {
    const size = i.opSize;
    const src = cpu.readOp(i, 1);
    logic(cpu, src, size);
    if (src === 0n) return;
    let n = 0;
    if (reverse) n = src.toString(2).length - 1;
    else while (((src >> BigInt(n)) & 1n) === 0n) n++;
    cpu.writeOp(i, 0, BigInt(n));
  };
}

/** BSF. */
export const BSF = bitScan(false);
/** BSR. */
export const BSR = bitScan(true);

/** XADD: exchange, then add (flags as ADD). */
export const XADD: Handler = (cpu, i) => {
  const size = i.opSize;
  const a = cpu.readDest(i);
  const b = cpu.readOp(i, 1);
  const r = add(cpu, a, b, 0n, size);
  cpu.writeDest(i, r);
  cpu.writeOp(i, 1, a);
};

/** CMPXCHG: compare rAX with the destination (flags as CMP); equal: store the source, else load rAX. The destination is always written. */
export const CMPXCHG: Handler = (cpu, i) => {
  const size = i.opSize;
  const dest = cpu.readDest(i);
  const acc = cpu.regs[RAX]! & MASK[size]!;
  sub(cpu, acc, dest, 0n, size);
  if (acc === dest) cpu.writeDest(i, cpu.readOp(i, 1));
  else {
    cpu.writeDest(i, dest);
    setSized(cpu, RAX, size, dest);
  }
};
