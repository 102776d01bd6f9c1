/**
 * Instruction forms: from operands to one iced-x86 `Instruction`. Each function picks the x86 form
 * (the iced `Code`) by the mode, the operand kinds and sizes, and checks what x86 cannot encode.
 * Values that come from labels always get the widest form, so placement never changes a size.
 */
import { AsmError } from './errors.js';
import { codeNamed, Instruction, MemoryOperand, Register, RegisterExt, RepPrefixKind } from './iced.js';
import { describe, isExpr, isMem, isValue, type Imm, type Mem, type Value } from './operands.js';
import type { ControlReg, Gpr, OperandSize, SegReg } from './registers.js';

/** A code mode: 16-, 32- or 64-bit. */
export type Bits = 16 | 32 | 64;

/** What a form needs: the mode, label values, and the source line for messages. */
export interface FormContext {
  readonly bits: Bits;
  /** The instruction as written (`mov rax, qword [slot]`), for messages. */
  readonly what: string;
  /** The value of `v`, labels at their current placement. */
  value(v: Value): bigint;
  /** False while placement settles: label values out of range are then wrapped, not errors. */
  readonly strict: boolean;
}

/** Two-operand arithmetic and logic operations. */
export type AluOp = 'Add' | 'Or' | 'Adc' | 'Sbb' | 'And' | 'Sub' | 'Xor' | 'Cmp';
/** One-operand arithmetic and logic operations. */
export type UnaryOp = 'Inc' | 'Dec' | 'Neg' | 'Not';
/** Shifts and rotates. */
export type ShiftOp = 'Shl' | 'Shr' | 'Sar' | 'Rol' | 'Ror';
/** Condition codes of Jcc, in iced-x86's spelling. */
export type Condition = 'o' | 'no' | 'b' | 'ae' | 'e' | 'ne' | 'be' | 'a' | 's' | 'ns' | 'p' | 'np' | 'l' | 'ge' | 'le' | 'g';
/** Returns whose encoding depends on the operand size of the mode. */
export type SizedReturn = 'Retn' | 'Retf';
/** String instructions. */
export type StringOp = 'Stos' | 'Movs' | 'Lods';

type Rm = Gpr | Mem;

const MODE_SUFFIX: Record<Bits, string> = { 16: 'w', 32: 'd', 64: 'q' };

function fail(ctx: FormContext, why: string): never {
  throw new AsmError('E_OPERANDS', `${ctx.what}: ${why}`);
}

function bitsOf(size: OperandSize): 8 | 16 | 32 | 64 {
  return (size * 8) as 8 | 16 | 32 | 64;
}

function isGpr(x: unknown): x is Gpr {
  return typeof x === 'object' && x !== null && (x as { type?: unknown }).type === 'gpr';
}

/** The operand size of a register/memory pair, checking that they agree. */
function pairSize(ctx: FormContext, a: Rm, b: Rm): OperandSize {
  const sa = a.size;
  const sb = b.size;
  if (sa && sb && sa !== sb) fail(ctx, `operand sizes differ (${describe(a)} is ${sa} bytes, ${describe(b)} is ${sb})`);
  const s = sa ?? sb;
  if (!s) fail(ctx, 'operand size unknown: use byte, word, dword or qword');
  return s;
}

/** The operand size of a register or a sized memory operand. */
function sizeOf(ctx: FormContext, x: Rm): OperandSize {
  const s = x.size;
  if (!s) fail(ctx, `operand size of ${describe(x)} unknown: use byte, word, dword or qword`);
  return s;
}

function rangeError(ctx: FormContext, n: bigint, what: string): never {
  throw new AsmError('E_RANGE', `${ctx.what}: ${n < 0n ? '-' : ''}0x${(n < 0n ? -n : n).toString(16)} does not fit ${what}`);
}

const fitsSigned = (n: bigint, bits: number) => n >= -(1n << BigInt(bits - 1)) && n < 1n << BigInt(bits - 1);

/** True when `n` is a value of a `bits`-bit operand, written signed or unsigned. */
const fitsOperand = (n: bigint, bits: number) => n >= -(1n << BigInt(bits - 1)) && n < 1n << BigInt(bits);

/** A small whole number (a port, a vector, a count, a selector), checked against `max`. */
function small(ctx: FormContext, n: number, max: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new AsmError('E_RANGE', `${ctx.what}: ${Number.isInteger(n) ? `0x${n.toString(16)}` : n} does not fit ${what}`);
  }
  return n;
}

/**
 * The immediate `v` of an operation on `opBits` bits, in a field of `fieldBits` bits that the CPU
 * sign-extends when narrower. Returns the value as a signed `opBits` number.
 */
function immediate(ctx: FormContext, v: Value, opBits: number, fieldBits: number): bigint {
  const n = ctx.value(v);
  const strict = ctx.strict || !isExpr(v);
  if (!fitsOperand(n, opBits) && strict) rangeError(ctx, n, `a ${opBits}-bit operand`);
  const s = BigInt.asIntN(opBits, n);
  if (fieldBits < opBits && !fitsSigned(s, fieldBits) && strict) rangeError(ctx, n, `a sign-extended ${fieldBits}-bit immediate`);
  return s;
}

/** True when a known-now immediate fits the sign-extended imm8 form. */
function shortImmediate(v: Value, opBits: number): boolean {
  if (isExpr(v)) return false;
  const n = BigInt(v);
  return fitsOperand(n, opBits) && fitsSigned(BigInt.asIntN(opBits, n), 8);
}

const u32 = (s: bigint, bits: number) => Number(BigInt.asUintN(bits, s));

/** The iced memory operand for `m`; in 64-bit code a label without registers is RIP-relative. */
export function memoryOperand(ctx: FormContext, m: Mem): MemoryOperand {
  const reg = m.base ?? m.index;
  if (reg && reg.size === 1) fail(ctx, `${reg.name} cannot address memory`);
  if (m.base && m.index && m.base.size !== m.index.size) fail(ctx, `${m.base.name} and ${m.index.name} differ in size`);
  if (ctx.bits !== 64 && reg?.size === 8) fail(ctx, `${reg.name} does not exist in ${ctx.bits}-bit code`);
  if (ctx.bits === 64 && reg?.size === 2) fail(ctx, '16-bit addressing does not exist in 64-bit code');
  const addrBits = reg ? bitsOf(reg.size) : ctx.bits;
  const seg = m.seg?.id ?? Register.None;
  const base = m.base?.id ?? Register.None;
  const index = m.index?.id ?? Register.None;
  const n = ctx.value(m.disp);
  const strict = ctx.strict || !isExpr(m.disp);
  if (!reg && ctx.bits === 64 && isExpr(m.disp)) {
    // RIP-relative: iced takes the target address and BlockEncoder computes the displacement.
    return new MemoryOperand(Register.RIP, Register.None, 1, BigInt.asUintN(64, n), 8, false, seg);
  }
  let disp: bigint;
  if (addrBits === 64) {
    disp = BigInt.asIntN(64, n);
    if ((!fitsOperand(n, 64) || !fitsSigned(disp, 32)) && strict) rangeError(ctx, n, 'a sign-extended 32-bit displacement');
    disp = BigInt.asUintN(64, disp);
  } else {
    if (!fitsOperand(n, addrBits) && strict) rangeError(ctx, n, `a ${addrBits}-bit displacement`);
    disp = BigInt.asUintN(addrBits, n);
  }
  // Labels and absolute addresses get the full-width displacement; known offsets the shortest.
  const displSize = !reg || isExpr(m.disp) ? addrBits / 8 : disp === 0n ? 0 : 1;
  return new MemoryOperand(base, index, m.scale, disp, displSize, false, seg);
}

/** Builds an instruction with a memory operand (iced's create functions take ownership of it). */
function withMem<T>(ctx: FormContext, m: Mem, build: (op: MemoryOperand) => T): T {
  return build(memoryOperand(ctx, m));
}

/** `mov` in all its forms: register, memory, immediate, control and segment registers. */
export function mov(ctx: FormContext, dst: Rm | ControlReg | SegReg, src: Rm | Value | ControlReg | SegReg): Instruction {
  if (dst.type === 'cr' || (!isValue(src) && src.type === 'cr')) return movControl(ctx, dst, src);
  if (dst.type === 'sreg' || (!isValue(src) && src.type === 'sreg')) return movSegment(ctx, dst, src);
  if (isValue(src)) {
    const size = sizeOf(ctx, dst);
    const b = bitsOf(size);
    if (isGpr(dst)) {
      if (b === 64) {
        // A known value that fits the sign-extended imm32 takes the short form; labels take imm64.
        const s = immediate(ctx, src, 64, 64);
        if (!isExpr(src) && fitsSigned(s, 32)) return Instruction.createRegI32(codeNamed('Mov_rm64_imm32', ctx.what), dst.id, Number(s));
        return Instruction.createRegU64(codeNamed('Mov_r64_imm64', ctx.what), dst.id, BigInt.asUintN(64, s));
      }
      return Instruction.createRegU32(codeNamed(`Mov_r${b}_imm${b}`, ctx.what), dst.id, u32(immediate(ctx, src, b, b), b));
    }
    const field = Math.min(b, 32);
    const code = codeNamed(`Mov_rm${b}_imm${field}`, ctx.what);
    const s = immediate(ctx, src, b, field);
    return withMem(ctx, dst, (m) => (b === 64 ? Instruction.createMemI32(code, m, Number(s)) : Instruction.createMemU32(code, m, u32(s, b))));
  }
  return regMem(ctx, 'Mov', dst, src as Rm);
}

function movControl(ctx: FormContext, dst: Rm | ControlReg | SegReg, src: Rm | Value | ControlReg | SegReg): Instruction {
  const want = ctx.bits === 64 ? 8 : 4;
  if (dst.type === 'cr' && isGpr(src) && src.size === want) {
    return Instruction.createRegReg(codeNamed(`Mov_cr_r${want * 8}`, ctx.what), dst.id, src.id);
  }
  if (isGpr(dst) && dst.size === want && !isValue(src) && src.type === 'cr') {
    return Instruction.createRegReg(codeNamed(`Mov_r${want * 8}_cr`, ctx.what), dst.id, src.id);
  }
  fail(ctx, `control registers move only to and from ${want * 8}-bit registers in ${ctx.bits}-bit code`);
}

/**
 * Segment register moves, encoded as NASM does: a load takes no operand-size prefix in 32/64-bit
 * code (a 16-bit source register is named by its 32-bit form, which the CPU reads the same way),
 * and a store to memory writes 16 bits without a prefix.
 */
function movSegment(ctx: FormContext, dst: Rm | ControlReg | SegReg, src: Rm | Value | ControlReg | SegReg): Instruction {
  const wide = ctx.bits !== 16;
  if (dst.type === 'sreg' && !isValue(src) && (isGpr(src) || isMem(src))) {
    if (dst.id === Register.CS) fail(ctx, 'cs cannot be loaded with mov (use a far jump)');
    if (isMem(src)) {
      const code = codeNamed(wide ? 'Mov_Sreg_r32m16' : 'Mov_Sreg_rm16', ctx.what);
      return withMem(ctx, src, (m) => Instruction.createRegMem(code, dst.id, m));
    }
    if (src.size === 1) fail(ctx, 'segment registers load from 16-, 32- or 64-bit registers');
    if (src.size === 8) return Instruction.createRegReg(codeNamed('Mov_Sreg_r64m16', ctx.what), dst.id, src.id);
    if (src.size === 2 && !wide) return Instruction.createRegReg(codeNamed('Mov_Sreg_rm16', ctx.what), dst.id, src.id);
    return Instruction.createRegReg(codeNamed('Mov_Sreg_r32m16', ctx.what), dst.id, RegisterExt.fullRegister32(src.id));
  }
  if ((isGpr(dst) || isMem(dst)) && !isValue(src) && src.type === 'sreg') {
    if (isMem(dst)) {
      const code = codeNamed(wide ? 'Mov_r32m16_Sreg' : 'Mov_rm16_Sreg', ctx.what);
      return withMem(ctx, dst, (m) => Instruction.createMemReg(code, m, src.id));
    }
    const f = dst.size === 2 ? 'rm16' : dst.size === 4 ? 'r32m16' : dst.size === 8 ? 'r64m16' : null;
    if (!f) fail(ctx, 'segment registers store to 16-, 32- or 64-bit registers');
    return Instruction.createRegReg(codeNamed(`Mov_${f}_Sreg`, ctx.what), dst.id, src.id);
  }
  fail(ctx, 'segment registers move only to and from general registers or memory');
}

/** `op r/m, r` or `op r, r/m` (mov, the ALU operations, test). */
function regMem(ctx: FormContext, op: string, dst: Rm, src: Rm): Instruction {
  const b = bitsOf(pairSize(ctx, dst, src));
  if (isGpr(dst) && isGpr(src)) return Instruction.createRegReg(codeNamed(`${op}_rm${b}_r${b}`, ctx.what), dst.id, src.id);
  if (isGpr(dst) && isMem(src)) {
    const code = codeNamed(`${op}_r${b}_rm${b}`, ctx.what);
    return withMem(ctx, src, (m) => Instruction.createRegMem(code, dst.id, m));
  }
  if (isMem(dst) && isGpr(src)) {
    const code = codeNamed(`${op}_rm${b}_r${b}`, ctx.what);
    return withMem(ctx, dst, (m) => Instruction.createMemReg(code, m, src.id));
  }
  fail(ctx, 'x86 has no memory-to-memory form');
}

/** `add/or/adc/sbb/and/sub/xor/cmp dst, src`; immediates use the sign-extended imm8 form when they fit. */
export function alu(ctx: FormContext, op: AluOp, dst: Rm, src: Rm | Value): Instruction {
  if (!isValue(src)) return regMem(ctx, op, dst, src);
  const b = bitsOf(sizeOf(ctx, dst));
  const field = b === 8 || shortImmediate(src, b) ? 8 : Math.min(b, 32);
  const s = immediate(ctx, src, b, field);
  const signed = field < b; // sign-extended forms take a signed immediate
  const code = codeNamed(`${op}_rm${b}_imm${field}`, ctx.what);
  if (isGpr(dst)) return signed ? Instruction.createRegI32(code, dst.id, Number(s)) : Instruction.createRegU32(code, dst.id, u32(s, field));
  return withMem(ctx, dst, (m) => (signed ? Instruction.createMemI32(code, m, Number(s)) : Instruction.createMemU32(code, m, u32(s, field))));
}

/** `test dst, src`. */
export function test(ctx: FormContext, dst: Rm, src: Gpr | Value): Instruction {
  if (!isValue(src)) {
    const b = bitsOf(pairSize(ctx, dst, src));
    const code = codeNamed(`Test_rm${b}_r${b}`, ctx.what);
    return isMem(dst) ? withMem(ctx, dst, (m) => Instruction.createMemReg(code, m, src.id)) : Instruction.createRegReg(code, dst.id, src.id);
  }
  const b = bitsOf(sizeOf(ctx, dst));
  const field = Math.min(b, 32);
  const s = immediate(ctx, src, b, field);
  const code = codeNamed(`Test_rm${b}_imm${field}`, ctx.what);
  const signed = field < b;
  if (isGpr(dst)) return signed ? Instruction.createRegI32(code, dst.id, Number(s)) : Instruction.createRegU32(code, dst.id, u32(s, field));
  return withMem(ctx, dst, (m) => (signed ? Instruction.createMemI32(code, m, Number(s)) : Instruction.createMemU32(code, m, u32(s, field))));
}

/** `inc/dec/neg/not x`. */
export function unary(ctx: FormContext, op: UnaryOp, x: Rm): Instruction {
  const b = bitsOf(sizeOf(ctx, x));
  const code = codeNamed(`${op}_rm${b}`, ctx.what);
  return isMem(x) ? withMem(ctx, x, (m) => Instruction.createMem(code, m)) : Instruction.createReg(code, x.id);
}

/** `shl/shr/sar/rol/ror x, count` with an immediate count or `cl`. */
export function shift(ctx: FormContext, op: ShiftOp, x: Rm, count: Imm | Gpr<1>): Instruction {
  const b = bitsOf(sizeOf(ctx, x));
  if (isGpr(count)) {
    if (count.id !== Register.CL) fail(ctx, 'the shift count register is cl');
    const code = codeNamed(`${op}_rm${b}_CL`, ctx.what);
    return isMem(x) ? withMem(ctx, x, (m) => Instruction.createMemReg(code, m, Register.CL)) : Instruction.createRegReg(code, x.id, Register.CL);
  }
  const n = small(ctx, Number(count), 255, 'a shift count (0..255)');
  const code = codeNamed(n === 1 ? `${op}_rm${b}_1` : `${op}_rm${b}_imm8`, ctx.what);
  return isMem(x) ? withMem(ctx, x, (m) => Instruction.createMemU32(code, m, n)) : Instruction.createRegU32(code, x.id, n);
}

/** `lea dst, [mem]`. */
export function lea(ctx: FormContext, dst: Gpr, src: Mem): Instruction {
  if (dst.size === 1) fail(ctx, 'lea needs a 16-, 32- or 64-bit destination');
  const code = codeNamed(`Lea_r${bitsOf(dst.size)}_m`, ctx.what);
  return withMem(ctx, src, (m) => Instruction.createRegMem(code, dst.id, m));
}

/** `movzx dst, src` from a byte or a word. */
export function movzx(ctx: FormContext, dst: Gpr, src: Rm): Instruction {
  const from = sizeOf(ctx, src);
  if (from > 2 || dst.size <= from) fail(ctx, 'movzx widens a byte or a word into a larger register');
  const code = codeNamed(`Movzx_r${bitsOf(dst.size)}_rm${bitsOf(from)}`, ctx.what);
  return isMem(src) ? withMem(ctx, src, (m) => Instruction.createRegMem(code, dst.id, m)) : Instruction.createRegReg(code, dst.id, src.id);
}

/** `push x`: a register, memory, or an immediate (sign-extended to the stack width). */
export function push(ctx: FormContext, x: Rm | Value): Instruction {
  if (isValue(x)) {
    const b = ctx.bits;
    const short = shortImmediate(x, b);
    const field = short ? 8 : Math.min(b, 32);
    const s = immediate(ctx, x, b, field);
    const names = { 64: ['Pushq_imm8', 'Pushq_imm32'], 32: ['Pushd_imm8', 'Pushd_imm32'], 16: ['Pushw_imm8', 'Push_imm16'] } as const;
    const code = codeNamed(names[b][short ? 0 : 1], ctx.what);
    // imm8 forms and the 64-bit imm32 form are sign-extended; push imm16/imm32 in 16/32-bit code are not.
    return short || b === 64 ? Instruction.createI32(code, Number(s)) : Instruction.createU32(code, u32(s, b));
  }
  return stackOp(ctx, 'Push', x);
}

/** `pop x`. */
export function pop(ctx: FormContext, x: Rm): Instruction {
  return stackOp(ctx, 'Pop', x);
}

function stackOp(ctx: FormContext, op: 'Push' | 'Pop', x: Rm): Instruction {
  if (isGpr(x)) return Instruction.createReg(codeNamed(`${op}_r${bitsOf(x.size)}`, ctx.what), x.id);
  const b = x.size ? bitsOf(x.size) : ctx.bits;
  const code = codeNamed(`${op}_rm${b}`, ctx.what);
  return withMem(ctx, x, (m) => Instruction.createMem(code, m));
}

/** A direct `jmp`, `call` or `jcc` to `target` (near; BlockEncoder shortens it when it can). */
export function branch(ctx: FormContext, kind: 'Jmp' | 'Call' | `J${Condition}`, target: Value): Instruction {
  const form = ctx.bits === 64 ? 'rel32_64' : ctx.bits === 32 ? 'rel32_32' : 'rel16';
  const to = immediate(ctx, target, ctx.bits, ctx.bits);
  return Instruction.createBranch(codeNamed(`${kind}_${form}`, ctx.what), BigInt.asUintN(ctx.bits, to));
}

/** An indirect `jmp` or `call` through a register or memory (iced rejects sizes the mode lacks). */
export function indirect(ctx: FormContext, kind: 'Jmp' | 'Call', x: Rm): Instruction {
  const code = codeNamed(`${kind}_rm${x.size ? bitsOf(x.size) : ctx.bits}`, ctx.what);
  return isMem(x) ? withMem(ctx, x, (m) => Instruction.createMem(code, m)) : Instruction.createReg(code, x.id);
}

/** A far `jmp selector:offset` (16- and 32-bit code). */
export function farJump(ctx: FormContext, selector: number, offset: Value): Instruction {
  if (ctx.bits === 64) fail(ctx, '64-bit code has no direct far jump: use jmpFar through memory, or push the selector and address and retfq');
  small(ctx, selector, 0xffff, 'a 16-bit selector');
  const s = immediate(ctx, offset, ctx.bits, ctx.bits);
  return Instruction.createFarBranch(codeNamed(ctx.bits === 32 ? 'Jmp_ptr1632' : 'Jmp_ptr1616', ctx.what), selector, u32(s, ctx.bits));
}

/** A far `jmp` through a `selector:offset` pointer in memory (`m16:16`, `m16:32` or `m16:64`). */
export function farJumpMem(ctx: FormContext, m: Mem): Instruction {
  const code = codeNamed(`Jmp_m16${ctx.bits}`, ctx.what);
  return withMem(ctx, m, (op) => Instruction.createMem(code, op));
}

/** An instruction without operands (`hlt`, `cpuid`...), by its iced-x86 `Code` name. */
export function plain(ctx: FormContext, name: string): Instruction {
  return Instruction.create(codeNamed(name, ctx.what));
}

/** `ret` or `retf` at the operand size of the mode (`retnq`, `retfd`...). */
export function sized(ctx: FormContext, op: SizedReturn): Instruction {
  return Instruction.create(codeNamed(`${op}${MODE_SUFFIX[ctx.bits]}`, ctx.what));
}

/** `int n`. */
export function interrupt(ctx: FormContext, n: number): Instruction {
  return Instruction.createU32(codeNamed('Int_imm8', ctx.what), small(ctx, n, 255, 'an interrupt vector (0..255)'));
}

/** `lgdt`/`lidt [m]`: a 6-byte pseudo-descriptor in 16/32-bit code, 10 bytes in 64-bit code. */
export function descriptorTable(ctx: FormContext, op: 'Lgdt' | 'Lidt', m: Mem): Instruction {
  const code = codeNamed(ctx.bits === 64 ? `${op}_m1664` : ctx.bits === 32 ? `${op}_m1632` : `${op}_m1632_16`, ctx.what);
  return withMem(ctx, m, (op2) => Instruction.createMem(code, op2));
}

/** `ltr`/`lldt` from a register or a word in memory, without operand-size prefix (as NASM encodes them). */
export function selectorLoad(ctx: FormContext, op: 'Ltr' | 'Lldt', x: Rm): Instruction {
  const wide = ctx.bits !== 16;
  if (isMem(x)) {
    const code = codeNamed(`${op}_${wide ? 'r32m16' : 'rm16'}`, ctx.what);
    return withMem(ctx, x, (m) => Instruction.createMem(code, m));
  }
  if (x.size === 1) fail(ctx, `${op.toLowerCase()} takes a 16-, 32- or 64-bit register`);
  if (x.size === 8) return Instruction.createReg(codeNamed(`${op}_r64m16`, ctx.what), x.id);
  if (x.size === 2 && !wide) return Instruction.createReg(codeNamed(`${op}_rm16`, ctx.what), x.id);
  return Instruction.createReg(codeNamed(`${op}_r32m16`, ctx.what), RegisterExt.fullRegister32(x.id));
}

/** `invlpg [m]`. */
export function invlpg(ctx: FormContext, m: Mem): Instruction {
  return withMem(ctx, m, (op) => Instruction.createMem(codeNamed('Invlpg_m', ctx.what), op));
}

const ACCUMULATOR: Partial<Record<number, string>> = { [Register.AL]: 'AL', [Register.AX]: 'AX', [Register.EAX]: 'EAX' };

/** `out dx, al|ax|eax` or `out imm8, al|ax|eax`. */
export function out(ctx: FormContext, port: Gpr | number, src: Gpr): Instruction {
  const acc = ACCUMULATOR[src.id];
  if (!acc) fail(ctx, 'out writes al, ax or eax');
  if (typeof port === 'number') {
    return Instruction.createU32Reg(codeNamed(`Out_imm8_${acc}`, ctx.what), small(ctx, port, 255, 'an 8-bit port (use dx for larger ports)'), src.id);
  }
  if (port.id !== Register.DX) fail(ctx, 'the port register is dx');
  return Instruction.createRegReg(codeNamed(`Out_DX_${acc}`, ctx.what), Register.DX, src.id);
}

/** `in al|ax|eax, dx` or `in al|ax|eax, imm8`. */
export function input(ctx: FormContext, dst: Gpr, port: Gpr | number): Instruction {
  const acc = ACCUMULATOR[dst.id];
  if (!acc) fail(ctx, 'in reads into al, ax or eax');
  if (typeof port === 'number') {
    return Instruction.createRegU32(codeNamed(`In_${acc}_imm8`, ctx.what), dst.id, small(ctx, port, 255, 'an 8-bit port (use dx for larger ports)'));
  }
  if (port.id !== Register.DX) fail(ctx, 'the port register is dx');
  return Instruction.createRegReg(codeNamed(`In_${acc}_DX`, ctx.what), dst.id, Register.DX);
}

type StringForm = (bits: Bits) => Instruction;
const none = RepPrefixKind.None;
const NO_SEG = Register.None;

const STRING_FORMS: Record<`${StringOp}${'b' | 'w' | 'd' | 'q'}`, { one: StringForm; rep: StringForm }> = {
  Stosb: { one: (a) => Instruction.createStosb(a, none), rep: (a) => Instruction.createRepStosb(a) },
  Stosw: { one: (a) => Instruction.createStosw(a, none), rep: (a) => Instruction.createRepStosw(a) },
  Stosd: { one: (a) => Instruction.createStosd(a, none), rep: (a) => Instruction.createRepStosd(a) },
  Stosq: { one: (a) => Instruction.createStosq(a, none), rep: (a) => Instruction.createRepStosq(a) },
  Movsb: { one: (a) => Instruction.createMovsb(a, NO_SEG, none), rep: (a) => Instruction.createRepMovsb(a) },
  Movsw: { one: (a) => Instruction.createMovsw(a, NO_SEG, none), rep: (a) => Instruction.createRepMovsw(a) },
  Movsd: { one: (a) => Instruction.createMovsd(a, NO_SEG, none), rep: (a) => Instruction.createRepMovsd(a) },
  Movsq: { one: (a) => Instruction.createMovsq(a, NO_SEG, none), rep: (a) => Instruction.createRepMovsq(a) },
  Lodsb: { one: (a) => Instruction.createLodsb(a, NO_SEG, none), rep: (a) => Instruction.createRepLodsb(a) },
  Lodsw: { one: (a) => Instruction.createLodsw(a, NO_SEG, none), rep: (a) => Instruction.createRepLodsw(a) },
  Lodsd: { one: (a) => Instruction.createLodsd(a, NO_SEG, none), rep: (a) => Instruction.createRepLodsd(a) },
  Lodsq: { one: (a) => Instruction.createLodsq(a, NO_SEG, none), rep: (a) => Instruction.createRepLodsq(a) },
};

const STRING_SUFFIX = { 1: 'b', 2: 'w', 4: 'd', 8: 'q' } as const;

/** `stos`, `movs` or `lods` of `size` bytes, with a `rep` prefix when asked (address size = the mode). */
export function stringOp(ctx: FormContext, op: StringOp, size: OperandSize, rep: boolean): Instruction {
  if (size === 8 && ctx.bits !== 64) fail(ctx, 'qword string instructions exist only in 64-bit code');
  const form = STRING_FORMS[`${op}${STRING_SUFFIX[size]}`];
  return rep ? form.rep(ctx.bits) : form.one(ctx.bits);
}
