/**
 * The assembler: a typed builder for 16-, 32- and 64-bit x86 code and data, over iced-x86.
 *
 *   const a = new Assembler(64);
 *   a.label('loop').mov(rax, qword('slot')).mov(cr3, rax).inc(qword('count')).jmp('loop');
 *   a.align(8).label('slot').dq(0x110000).label('count').dq(0);
 *   const code = a.assemble(0xffffffff80101000n); // code.bytes, code.address('loop'), code.listing()
 *
 * Every instruction is built and encoded once when it is added (labels read as 0), so a form x86
 * does not have throws an AsmError at the caller's line; the real encoding happens in `assemble`.
 */
import { AsmError } from './errors.js';
import * as form from './forms.js';
import type { AluOp, Bits, Condition, FormContext, ShiftOp, StringOp, UnaryOp } from './forms.js';
import { Encoder, icedReason, type Instruction, withFreed } from './iced.js';
import { concatBytes, place, type DataContext, type Item } from './layout.js';
import { Assembly } from './assembly.js';
import { describe, isExpr, isMem, ref, wholeNumber, type Imm, type Mem, type Operand, type Target, type Value } from './operands.js';
import type { ControlReg, Gpr, OperandSize, SegReg } from './registers.js';

type Rm = Gpr | Mem;

/** Builds a program item by item; `assemble` places it at an origin. Methods chain. */
export class Assembler {
  private readonly items: Item[] = [];
  private current: Bits;

  /** A program whose code starts in `bits`-bit mode. */
  constructor(bits: Bits = 64) {
    this.current = bits;
  }

  /** The mode of the code added next. */
  get mode(): Bits {
    return this.current;
  }

  /** Switches the mode of the code that follows (NASM's `bits N`). */
  bits(bits: Bits): this {
    this.current = bits;
    return this;
  }

  /** Defines `name` as the address of what follows. */
  label(name: string): this {
    if (!name) throw new AsmError('E_UNDEFINED_LABEL', 'a label needs a name');
    this.items.push({ kind: 'label', name });
    return this;
  }

  /** Places the program at `origin`; throws AsmError (undefined labels, values out of range...). */
  assemble(origin: bigint | number): Assembly {
    const at = BigInt(origin);
    const items = [...this.items];
    return new Assembly(at, items, place(items, at));
  }

  // ---- data ----

  /** Bytes: numbers (-128..255), label values, strings (UTF-8) and byte arrays. */
  db(...values: (Value | string | Uint8Array)[]): this {
    const shown = (v: Value | string | Uint8Array) =>
      typeof v === 'string' ? JSON.stringify(v) : v instanceof Uint8Array ? `<${v.length} byte${v.length === 1 ? '' : 's'}>` : describe(v);
    const what = `db ${values.map(shown).join(', ')}`;
    const parts = values.map((v) => (typeof v === 'string' ? new TextEncoder().encode(v) : v));
    for (const p of parts) if (!(p instanceof Uint8Array)) checkData(what, p, 1);
    return this.data(what, (ctx) => {
      const chunks = parts.map((p) => (p instanceof Uint8Array ? p : littleEndian(ctx, p, 1)));
      return concatBytes(chunks);
    });
  }

  /** 16-bit words. */
  dw(...values: Value[]): this {
    return this.words(2, values);
  }

  /** 32-bit doublewords. */
  dd(...values: Value[]): this {
    return this.words(4, values);
  }

  /** 64-bit quadwords. */
  dq(...values: Value[]): this {
    return this.words(8, values);
  }

  /** `count` zero bytes. */
  zero(count: number): this {
    if (!Number.isInteger(count) || count < 0) throw new AsmError('E_RANGE', `zero ${count}: the count must be a whole number of bytes`);
    return this.data(`zero ${count}`, () => new Uint8Array(count));
  }

  /** Pads with `fill` bytes to the next multiple of `boundary` (a power of two). */
  align(boundary: number, fill = 0): this {
    if (!Number.isInteger(boundary) || boundary < 1 || (boundary & (boundary - 1)) !== 0) {
      throw new AsmError('E_RANGE', `align ${boundary}: the boundary must be a power of two`);
    }
    const b = BigInt(boundary);
    return this.data(`align ${boundary}`, (ctx) => new Uint8Array(Number((b - (ctx.at % b)) % b)).fill(fill));
  }

  // ---- moves ----

  /** `mov`: between registers and memory, an immediate (labels too), control and segment registers. */
  mov(dst: Rm | ControlReg | SegReg, src: Rm | Value | ControlReg | SegReg): this {
    return this.ins('mov', [dst, src], (c) => form.mov(c, dst, src));
  }

  /** `lea dst, [m]`. */
  lea(dst: Gpr, src: Mem): this {
    return this.ins('lea', [dst, src], (c) => form.lea(c, dst, src));
  }

  /** `movzx dst, src` (from a byte or a word). */
  movzx(dst: Gpr, src: Rm): this {
    return this.ins('movzx', [dst, src], (c) => form.movzx(c, dst, src));
  }

  /** `push`. */
  push(x: Rm | Value): this {
    return this.ins('push', [x], (c) => form.push(c, x));
  }

  /** `pop`. */
  pop(x: Rm): this {
    return this.ins('pop', [x], (c) => form.pop(c, x));
  }

  // ---- arithmetic and logic ----

  /** `add`. */
  add(dst: Rm, src: Rm | Value): this {
    return this.alu('Add', dst, src);
  }

  /** `or`. */
  or(dst: Rm, src: Rm | Value): this {
    return this.alu('Or', dst, src);
  }

  /** `adc`. */
  adc(dst: Rm, src: Rm | Value): this {
    return this.alu('Adc', dst, src);
  }

  /** `sbb`. */
  sbb(dst: Rm, src: Rm | Value): this {
    return this.alu('Sbb', dst, src);
  }

  /** `and`. */
  and(dst: Rm, src: Rm | Value): this {
    return this.alu('And', dst, src);
  }

  /** `sub`. */
  sub(dst: Rm, src: Rm | Value): this {
    return this.alu('Sub', dst, src);
  }

  /** `xor`. */
  xor(dst: Rm, src: Rm | Value): this {
    return this.alu('Xor', dst, src);
  }

  /** `cmp`. */
  cmp(dst: Rm, src: Rm | Value): this {
    return this.alu('Cmp', dst, src);
  }

  /** `test`. */
  test(dst: Rm, src: Gpr | Value): this {
    return this.ins('test', [dst, src], (c) => form.test(c, dst, src));
  }

  /** `inc`. */
  inc(x: Rm): this {
    return this.unary('Inc', x);
  }

  /** `dec`. */
  dec(x: Rm): this {
    return this.unary('Dec', x);
  }

  /** `neg`. */
  neg(x: Rm): this {
    return this.unary('Neg', x);
  }

  /** `not`. */
  not(x: Rm): this {
    return this.unary('Not', x);
  }

  /** `shl x, count` (an immediate or `cl`). */
  shl(x: Rm, count: Imm | Gpr<1>): this {
    return this.shift('Shl', x, count);
  }

  /** `shr x, count`. */
  shr(x: Rm, count: Imm | Gpr<1>): this {
    return this.shift('Shr', x, count);
  }

  /** `sar x, count`. */
  sar(x: Rm, count: Imm | Gpr<1>): this {
    return this.shift('Sar', x, count);
  }

  /** `rol x, count`. */
  rol(x: Rm, count: Imm | Gpr<1>): this {
    return this.shift('Rol', x, count);
  }

  /** `ror x, count`. */
  ror(x: Rm, count: Imm | Gpr<1>): this {
    return this.shift('Ror', x, count);
  }

  // ---- control flow ----

  /** `jmp` to a label, an expression or an address, or through a register or memory. */
  jmp(target: Target | Rm): this {
    return this.flow('jmp', 'Jmp', target);
  }

  /** `call` to a label, an expression or an address, or through a register or memory. */
  call(target: Target | Rm): this {
    return this.flow('call', 'Call', target);
  }

  /** `jcc` with condition `cc` (iced-x86 spelling: `e`, `ne`, `b`, `ae`, `l`, `ge`...). */
  j(cc: Condition, target: Target): this {
    const to = targetValue(target);
    return this.ins(`j${cc}`, [typeof target === 'string' ? target : to], (c) => form.branch(c, `J${cc}`, to));
  }

  /** `jo`. */
  jo(target: Target): this {
    return this.j('o', target);
  }

  /** `jno`. */
  jno(target: Target): this {
    return this.j('no', target);
  }

  /** `jb` (unsigned below, carry set). */
  jb(target: Target): this {
    return this.j('b', target);
  }

  /** `jc`, the same as `jb`. */
  jc(target: Target): this {
    return this.j('b', target);
  }

  /** `jae` (unsigned above or equal, carry clear). */
  jae(target: Target): this {
    return this.j('ae', target);
  }

  /** `jnc`, the same as `jae`. */
  jnc(target: Target): this {
    return this.j('ae', target);
  }

  /** `je`. */
  je(target: Target): this {
    return this.j('e', target);
  }

  /** `jz`, the same as `je`. */
  jz(target: Target): this {
    return this.j('e', target);
  }

  /** `jne`. */
  jne(target: Target): this {
    return this.j('ne', target);
  }

  /** `jnz`, the same as `jne`. */
  jnz(target: Target): this {
    return this.j('ne', target);
  }

  /** `jbe` (unsigned below or equal). */
  jbe(target: Target): this {
    return this.j('be', target);
  }

  /** `ja` (unsigned above). */
  ja(target: Target): this {
    return this.j('a', target);
  }

  /** `js`. */
  js(target: Target): this {
    return this.j('s', target);
  }

  /** `jns`. */
  jns(target: Target): this {
    return this.j('ns', target);
  }

  /** `jp`. */
  jp(target: Target): this {
    return this.j('p', target);
  }

  /** `jnp`. */
  jnp(target: Target): this {
    return this.j('np', target);
  }

  /** `jl` (signed less). */
  jl(target: Target): this {
    return this.j('l', target);
  }

  /** `jge` (signed greater or equal). */
  jge(target: Target): this {
    return this.j('ge', target);
  }

  /** `jle` (signed less or equal). */
  jle(target: Target): this {
    return this.j('le', target);
  }

  /** `jg` (signed greater). */
  jg(target: Target): this {
    return this.j('g', target);
  }

  /** Far `jmp selector:target` (16/32-bit code), or through a far pointer in memory (any mode). */
  jmpFar(selector: number, target: Target): this;
  jmpFar(pointer: Mem): this;
  jmpFar(a: number | Mem, target?: Target): this {
    if (isMem(a)) return this.ins('jmp far', [a], (c) => form.farJumpMem(c, a));
    const to = targetValue(target ?? 0);
    return this.ins('jmp far', [`0x${a.toString(16)}:${describe(typeof target === 'string' ? target : to)}`], (c) => form.farJump(c, a, to));
  }

  /** Near `ret` at the mode's operand size. */
  ret(): this {
    return this.ins('ret', [], (c) => form.sized(c, 'Retn'));
  }

  /** Far `retf` at the mode's operand size (`retfq` in 64-bit code). */
  retf(): this {
    return this.ins('retf', [], (c) => form.sized(c, 'Retf'));
  }

  /** `iretq` (64-bit code). */
  iretq(): this {
    return this.plain('iretq', 'Iretq');
  }

  /** `iretd` (32-bit code). */
  iretd(): this {
    return this.plain('iretd', 'Iretd');
  }

  /** `int3`. */
  int3(): this {
    return this.plain('int3', 'Int3');
  }

  /** `int n`. */
  int(n: number): this {
    return this.ins('int', [n], (c) => form.interrupt(c, n));
  }

  // ---- system ----

  /** `hlt`. */
  hlt(): this {
    return this.plain('hlt', 'Hlt');
  }

  /** `cli`. */
  cli(): this {
    return this.plain('cli', 'Cli');
  }

  /** `sti`. */
  sti(): this {
    return this.plain('sti', 'Sti');
  }

  /** `cld`. */
  cld(): this {
    return this.plain('cld', 'Cld');
  }

  /** `nop` (one byte, 0x90). */
  nop(): this {
    return this.ins('nop', [], (c) => form.plain(c, c.bits === 16 ? 'Nopw' : 'Nopd'));
  }

  /** `pause`. */
  pause(): this {
    return this.plain('pause', 'Pause');
  }

  /** `ud2`. */
  ud2(): this {
    return this.plain('ud2', 'Ud2');
  }

  /** `cpuid`. */
  cpuid(): this {
    return this.plain('cpuid', 'Cpuid');
  }

  /** `rdmsr` (ECX = MSR, result in EDX:EAX). */
  rdmsr(): this {
    return this.plain('rdmsr', 'Rdmsr');
  }

  /** `wrmsr` (ECX = MSR, value in EDX:EAX). */
  wrmsr(): this {
    return this.plain('wrmsr', 'Wrmsr');
  }

  /** `lgdt [m]` (6-byte pseudo-descriptor, 10 bytes in 64-bit code). */
  lgdt(m: Mem): this {
    return this.ins('lgdt', [m], (c) => form.descriptorTable(c, 'Lgdt', m));
  }

  /** `lidt [m]`. */
  lidt(m: Mem): this {
    return this.ins('lidt', [m], (c) => form.descriptorTable(c, 'Lidt', m));
  }

  /** `ltr` from a register or a word in memory. */
  ltr(x: Rm): this {
    return this.ins('ltr', [x], (c) => form.selectorLoad(c, 'Ltr', x));
  }

  /** `lldt` from a register or a word in memory. */
  lldt(x: Rm): this {
    return this.ins('lldt', [x], (c) => form.selectorLoad(c, 'Lldt', x));
  }

  /** `invlpg [m]`. */
  invlpg(m: Mem): this {
    return this.ins('invlpg', [m], (c) => form.invlpg(c, m));
  }

  /** `out dx, al|ax|eax` or `out imm8, al|ax|eax`. */
  out(port: Gpr | number, src: Gpr): this {
    return this.ins('out', [port, src], (c) => form.out(c, port, src));
  }

  /** `in al|ax|eax, dx` or `in al|ax|eax, imm8`. */
  in(dst: Gpr, port: Gpr | number): this {
    return this.ins('in', [dst, port], (c) => form.input(c, dst, port));
  }

  // ---- string instructions (address size = the mode) ----

  /** `stosb`. */
  stosb(): this {
    return this.string('Stos', 1, false);
  }

  /** `stosq`. */
  stosq(): this {
    return this.string('Stos', 8, false);
  }

  /** `lodsb`. */
  lodsb(): this {
    return this.string('Lods', 1, false);
  }

  /** `rep stosb`. */
  repStosb(): this {
    return this.string('Stos', 1, true);
  }

  /** `rep stosd`. */
  repStosd(): this {
    return this.string('Stos', 4, true);
  }

  /** `rep stosq`. */
  repStosq(): this {
    return this.string('Stos', 8, true);
  }

  /** `rep movsb`. */
  repMovsb(): this {
    return this.string('Movs', 1, true);
  }

  /** `rep movsq`. */
  repMovsq(): this {
    return this.string('Movs', 8, true);
  }

  // ---- plumbing ----

  private alu(op: AluOp, dst: Rm, src: Rm | Value): this {
    return this.ins(op.toLowerCase(), [dst, src], (c) => form.alu(c, op, dst, src));
  }

  private unary(op: UnaryOp, x: Rm): this {
    return this.ins(op.toLowerCase(), [x], (c) => form.unary(c, op, x));
  }

  private shift(op: ShiftOp, x: Rm, count: Imm | Gpr<1>): this {
    return this.ins(op.toLowerCase(), [x, count], (c) => form.shift(c, op, x, count));
  }

  private string(op: StringOp, size: OperandSize, rep: boolean): this {
    const name = `${rep ? 'rep ' : ''}${op.toLowerCase()}${{ 1: 'b', 2: 'w', 4: 'd', 8: 'q' }[size]}`;
    return this.ins(name, [], (c) => form.stringOp(c, op, size, rep));
  }

  private plain(name: string, code: string): this {
    return this.ins(name, [], (c) => form.plain(c, code));
  }

  private flow(name: string, kind: 'Jmp' | 'Call', target: Target | Rm): this {
    if (typeof target === 'object' && !isExpr(target)) return this.ins(name, [target], (c) => form.indirect(c, kind, target));
    const to = targetValue(target);
    return this.ins(name, [typeof target === 'string' ? target : to], (c) => form.branch(c, kind, to));
  }

  private ins(mnemonic: string, operands: readonly (Operand | string)[], make: (ctx: FormContext) => Instruction): this {
    const what = operands.length ? `${mnemonic} ${operands.map(describe).join(', ')}` : mnemonic;
    const bits = this.current;
    tryNow(bits, what, make);
    this.items.push({ kind: 'ins', bits, what, make });
    return this;
  }

  private words(size: 2 | 4 | 8, values: Value[]): this {
    const what = `${{ 2: 'dw', 4: 'dd', 8: 'dq' }[size]} ${values.map(describe).join(', ')}`;
    for (const v of values) checkData(what, v, size);
    return this.data(what, (ctx) => concatBytes(values.map((v) => littleEndian(ctx, v, size))));
  }

  private data(what: string, bytes: (ctx: DataContext) => Uint8Array): this {
    this.items.push({ kind: 'data', what, bytes });
    return this;
  }
}

function targetValue(target: Target): Value {
  return typeof target === 'string' ? ref(target) : target;
}

/**
 * Builds and encodes an instruction with labels at 0, so that bad operands fail where they are
 * written. A direct branch is tried at its own target, since its real address is not known yet.
 */
function tryNow(bits: Bits, what: string, make: (ctx: FormContext) => Instruction): void {
  withFreed((keep) => {
    const ins = keep(make({ bits, what, strict: false, value: (v) => (isExpr(v) ? 0n : wholeNumber(v, what)) }));
    const direct = ins.isJmpShortOrNear || ins.isJccShortOrNear || ins.isCallNear;
    const encoder = keep(new Encoder(bits));
    try {
      encoder.encode(ins, direct ? ins.nearBranchTarget : 0n);
    } catch (e) {
      throw new AsmError('E_ENCODE', `${what} (${bits}-bit code): ${icedReason(e)}`);
    }
  });
}

function dataRange(v: bigint, size: number): boolean {
  const bits = BigInt(size * 8);
  return v >= -(1n << (bits - 1n)) && v < 1n << bits;
}

/** Checks a known-now data value; label values are checked when placed. */
function checkData(what: string, v: Value, size: number): void {
  if (!isExpr(v) && !dataRange(wholeNumber(v, what), size)) throw new AsmError('E_RANGE', `${what}: ${describe(v)} does not fit ${size * 8} bits`);
}

function littleEndian(ctx: DataContext, v: Value, size: number): Uint8Array {
  const n = ctx.value(v);
  if (!dataRange(n, size) && ctx.strict) throw new AsmError('E_RANGE', `${ctx.what}: ${describe(n)} does not fit ${size * 8} bits`);
  const out = new Uint8Array(size);
  let u = BigInt.asUintN(size * 8, n);
  for (let i = 0; i < size; i++, u >>= 8n) out[i] = Number(u & 0xffn);
  return out;
}
