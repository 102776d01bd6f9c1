/**
 * Operands that are not registers: values known only once labels are placed (`ref`, `distance`),
 * memory operands (`mem`, `byte`, `word`, `dword`, `qword`) and branch targets, plus the one-line
 * rendering of every operand that error messages use.
 */
import { AsmError } from './errors.js';
import type { Gpr, OperandSize, Reg, SegReg } from './registers.js';

/** A value fixed when the code is placed: the sum of `plus` label addresses minus `minus` ones, plus `offset`. */
export interface Expr {
  readonly type: 'expr';
  readonly plus: readonly string[];
  readonly minus: readonly string[];
  readonly offset: bigint;
}

/** An immediate known now. */
export type Imm = number | bigint;

/** An immediate known now, or one known once labels are placed. */
export type Value = Imm | Expr;

/** Where a branch goes: a label name, an expression, or an absolute address. */
export type Target = string | Value;

/** Scale of an index register. */
export type Scale = 1 | 2 | 4 | 8;

/** A memory operand. A label displacement without registers is RIP-relative in 64-bit code. */
export interface Mem {
  readonly type: 'mem';
  readonly base: Gpr | null;
  readonly index: Gpr | null;
  readonly scale: Scale;
  readonly disp: Value;
  /** Access size in bytes; null when the other operand (a register) gives it. */
  readonly size: OperandSize | null;
  readonly seg: SegReg | null;
}

/** The parts of a memory operand, each optional. */
export interface MemSpec {
  base?: Gpr;
  index?: Gpr;
  scale?: Scale;
  disp?: Value;
  seg?: SegReg;
}

/** Where a memory operand points: a base register, a label name, a value, or all parts. */
export type Address = Gpr | string | Value | MemSpec;

/** Any operand of an instruction. */
export type Operand = Reg | Mem | Value;

/** The address of `label`, plus `offset`. */
export function ref(label: string, offset: Imm = 0): Expr {
  return { type: 'expr', plus: [label], minus: [], offset: BigInt(offset) };
}

/** The distance from label `from` to label `to` (`to - from`), plus `offset`: sizes and limits. */
export function distance(from: string, to: string, offset: Imm = 0): Expr {
  return { type: 'expr', plus: [to], minus: [from], offset: BigInt(offset) };
}

/** `v` as a bigint; throws AsmError (E_RANGE) for a number that is not a whole number. */
export function wholeNumber(v: Imm, what: string): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw new AsmError('E_RANGE', `${what}: ${v} is not a whole number (use a bigint beyond 2^53)`);
  }
  return BigInt(v);
}

/** True when `v` is an expression over labels. */
export function isExpr(v: unknown): v is Expr {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'expr';
}

/** True when `v` is a memory operand. */
export function isMem(v: unknown): v is Mem {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'mem';
}

/** True when `v` is a register operand. */
export function isReg(v: unknown): v is Reg {
  if (typeof v !== 'object' || v === null) return false;
  const t = (v as { type?: unknown }).type;
  return t === 'gpr' || t === 'cr' || t === 'sreg';
}

/** True when `v` is an immediate or an expression. */
export function isValue(v: unknown): v is Value {
  return typeof v === 'number' || typeof v === 'bigint' || isExpr(v);
}

/** `a + b` for values: numbers add, expressions merge their labels. */
export function addValues(a: Value, b: Value): Value {
  if (!isExpr(a) && !isExpr(b)) return BigInt(a) + BigInt(b);
  const x = toExpr(a);
  const y = toExpr(b);
  return { type: 'expr', plus: [...x.plus, ...y.plus], minus: [...x.minus, ...y.minus], offset: x.offset + y.offset };
}

function toExpr(v: Value): Expr {
  return isExpr(v) ? v : { type: 'expr', plus: [], minus: [], offset: BigInt(v) };
}

/** A memory operand at `at` (plus `disp`), of `size` bytes or sized by the other operand. */
export function mem(at: Address, disp: Value = 0, size: OperandSize | null = null): Mem {
  let spec: MemSpec;
  if (typeof at === 'string') spec = { disp: ref(at) };
  else if (isValue(at)) spec = { disp: at };
  else if (isReg(at)) spec = { base: at };
  else spec = at;
  return {
    type: 'mem',
    base: spec.base ?? null,
    index: spec.index ?? null,
    scale: spec.scale ?? 1,
    disp: addValues(spec.disp ?? 0, disp),
    size,
    seg: spec.seg ?? null,
  };
}

/** A byte memory operand (see {@link mem}). */
export function byte(at: Address, disp: Value = 0): Mem {
  return mem(at, disp, 1);
}

/** A word (16-bit) memory operand. */
export function word(at: Address, disp: Value = 0): Mem {
  return mem(at, disp, 2);
}

/** A dword (32-bit) memory operand. */
export function dword(at: Address, disp: Value = 0): Mem {
  return mem(at, disp, 4);
}

/** A qword (64-bit) memory operand. */
export function qword(at: Address, disp: Value = 0): Mem {
  return mem(at, disp, 8);
}

const SIZE_NAMES: Record<OperandSize, string> = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword' };

/** An operand as NASM would write it (for error messages). */
export function describe(op: Operand | string): string {
  if (typeof op === 'string') return op;
  if (typeof op === 'number' && !Number.isSafeInteger(op)) return String(op);
  if (typeof op === 'number' || typeof op === 'bigint') return hexValue(BigInt(op));
  if (isExpr(op)) return describeExpr(op);
  if (isMem(op)) {
    const parts: string[] = [];
    if (op.base) parts.push(op.base.name);
    if (op.index) parts.push(op.scale === 1 ? op.index.name : `${op.index.name}*${op.scale}`);
    const d = op.disp;
    if (isExpr(d) || BigInt(d) !== 0n || parts.length === 0) parts.push(isExpr(d) ? describeExpr(d) : hexValue(BigInt(d)));
    const body = parts.join('+').replace('+-', '-');
    const seg = op.seg ? `${op.seg.name}:` : '';
    return `${op.size ? `${SIZE_NAMES[op.size]} ` : ''}[${seg}${body}]`;
  }
  return op.name;
}

function describeExpr(e: Expr): string {
  let s = [...e.plus.map((l, i) => (i === 0 ? l : `+${l}`)), ...e.minus.map((l) => `-${l}`)].join('');
  if (e.offset !== 0n || s === '') s += s === '' ? hexValue(e.offset) : e.offset < 0n ? `-${hexValue(-e.offset)}` : `+${hexValue(e.offset)}`;
  return s;
}

function hexValue(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}
