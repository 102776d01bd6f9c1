/**
 * Register operands: the general-purpose registers of every size, the control registers and the
 * segment registers. Each is a frozen value that carries its iced-x86 id, its name and its size.
 */
import { Register } from './iced.js';

/** Operand size in bytes. */
export type OperandSize = 1 | 2 | 4 | 8;

/** A general-purpose register of `S` bytes. */
export interface Gpr<S extends OperandSize = OperandSize> {
  readonly type: 'gpr';
  readonly name: string;
  readonly size: S;
  readonly id: Register;
}

/** A control register (CR0, CR2, CR3, CR4, CR8). */
export interface ControlReg {
  readonly type: 'cr';
  readonly name: string;
  readonly id: Register;
}

/** A segment register. */
export interface SegReg {
  readonly type: 'sreg';
  readonly name: string;
  readonly id: Register;
}

/** Any register operand. */
export type Reg = Gpr | ControlReg | SegReg;

function gpr<S extends OperandSize>(name: string, size: S, id: Register): Gpr<S> {
  return Object.freeze({ type: 'gpr', name, size, id });
}

function cr(name: string, id: Register): ControlReg {
  return Object.freeze({ type: 'cr', name, id });
}

function sreg(name: string, id: Register): SegReg {
  return Object.freeze({ type: 'sreg', name, id });
}

/** The 64-bit general-purpose registers. */
export const
  rax = gpr('rax', 8, Register.RAX),
  rcx = gpr('rcx', 8, Register.RCX),
  rdx = gpr('rdx', 8, Register.RDX),
  rbx = gpr('rbx', 8, Register.RBX),
  rsp = gpr('rsp', 8, Register.RSP),
  rbp = gpr('rbp', 8, Register.RBP),
  rsi = gpr('rsi', 8, Register.RSI),
  rdi = gpr('rdi', 8, Register.RDI),
  r8 = gpr('r8', 8, Register.R8),
  r9 = gpr('r9', 8, Register.R9),
  r10 = gpr('r10', 8, Register.R10),
  r11 = gpr('r11', 8, Register.R11),
  r12 = gpr('r12', 8, Register.R12),
  r13 = gpr('r13', 8, Register.R13),
  r14 = gpr('r14', 8, Register.R14),
  r15 = gpr('r15', 8, Register.R15);

/** The 32-bit general-purpose registers. */
export const
  eax = gpr('eax', 4, Register.EAX),
  ecx = gpr('ecx', 4, Register.ECX),
  edx = gpr('edx', 4, Register.EDX),
  ebx = gpr('ebx', 4, Register.EBX),
  esp = gpr('esp', 4, Register.ESP),
  ebp = gpr('ebp', 4, Register.EBP),
  esi = gpr('esi', 4, Register.ESI),
  edi = gpr('edi', 4, Register.EDI),
  r8d = gpr('r8d', 4, Register.R8D),
  r9d = gpr('r9d', 4, Register.R9D),
  r10d = gpr('r10d', 4, Register.R10D),
  r11d = gpr('r11d', 4, Register.R11D),
  r12d = gpr('r12d', 4, Register.R12D),
  r13d = gpr('r13d', 4, Register.R13D),
  r14d = gpr('r14d', 4, Register.R14D),
  r15d = gpr('r15d', 4, Register.R15D);

/** The 16-bit general-purpose registers. */
export const
  ax = gpr('ax', 2, Register.AX),
  cx = gpr('cx', 2, Register.CX),
  dx = gpr('dx', 2, Register.DX),
  bx = gpr('bx', 2, Register.BX),
  sp = gpr('sp', 2, Register.SP),
  bp = gpr('bp', 2, Register.BP),
  si = gpr('si', 2, Register.SI),
  di = gpr('di', 2, Register.DI),
  r8w = gpr('r8w', 2, Register.R8W),
  r9w = gpr('r9w', 2, Register.R9W),
  r10w = gpr('r10w', 2, Register.R10W),
  r11w = gpr('r11w', 2, Register.R11W),
  r12w = gpr('r12w', 2, Register.R12W),
  r13w = gpr('r13w', 2, Register.R13W),
  r14w = gpr('r14w', 2, Register.R14W),
  r15w = gpr('r15w', 2, Register.R15W);

/** The 8-bit general-purpose registers (AH..BH cannot be used with a REX prefix). */
export const
  al = gpr('al', 1, Register.AL),
  cl = gpr('cl', 1, Register.CL),
  dl = gpr('dl', 1, Register.DL),
  bl = gpr('bl', 1, Register.BL),
  ah = gpr('ah', 1, Register.AH),
  ch = gpr('ch', 1, Register.CH),
  dh = gpr('dh', 1, Register.DH),
  bh = gpr('bh', 1, Register.BH),
  spl = gpr('spl', 1, Register.SPL),
  bpl = gpr('bpl', 1, Register.BPL),
  sil = gpr('sil', 1, Register.SIL),
  dil = gpr('dil', 1, Register.DIL),
  r8b = gpr('r8b', 1, Register.R8L),
  r9b = gpr('r9b', 1, Register.R9L),
  r10b = gpr('r10b', 1, Register.R10L),
  r11b = gpr('r11b', 1, Register.R11L),
  r12b = gpr('r12b', 1, Register.R12L),
  r13b = gpr('r13b', 1, Register.R13L),
  r14b = gpr('r14b', 1, Register.R14L),
  r15b = gpr('r15b', 1, Register.R15L);

/** The control registers. */
export const
  cr0 = cr('cr0', Register.CR0),
  cr2 = cr('cr2', Register.CR2),
  cr3 = cr('cr3', Register.CR3),
  cr4 = cr('cr4', Register.CR4),
  cr8 = cr('cr8', Register.CR8);

/** The segment registers. */
export const
  es = sreg('es', Register.ES),
  cs = sreg('cs', Register.CS),
  ss = sreg('ss', Register.SS),
  ds = sreg('ds', Register.DS),
  fs = sreg('fs', Register.FS),
  gs = sreg('gs', Register.GS);
