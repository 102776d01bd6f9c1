/**
 * Which handler executes a decoded instruction: a table by iced-x86 Mnemonic, refined by operand
 * kinds and Code where one mnemonic covers several behaviours (MOV to a control or segment
 * register, string MOVSD versus SSE MOVSD, RET widths). Everything else is unsupported: it logs
 * and raises #UD, never runs as something else.
 */
import { Code, Mnemonic } from 'iced-x86';
import * as alu from './cpuAlu.js';
import { movCr, RDMSR, RDPKRU, WRMSR, WRPKRU } from './cpuControl.js';
import { OP_BRANCH, OP_CR, OP_MEM, OP_SEG, OP_STRING, type Handler, type Insn } from './cpuDecode.js';
import * as mv from './cpuMove.js';
import * as st from './cpuStack.js';
import { stringOp } from './cpuString.js';
import { FL } from './cpuState.js';
import * as sys from './cpuSystem.js';

const UNSUPPORTED: Handler = (cpu, i) => cpu.unsupported(i);

const M = Mnemonic;

/** Handlers that depend on the mnemonic alone. */
const BY_MNEMONIC = new Map<number, Handler>([
  [M.Add, alu.ADD], [M.Adc, alu.ADC], [M.Sub, alu.SUB], [M.Sbb, alu.SBB], [M.Cmp, alu.CMP],
  [M.And, alu.AND], [M.Or, alu.OR], [M.Xor, alu.XOR], [M.Test, alu.TEST],
  [M.Inc, alu.INC], [M.Dec, alu.DEC], [M.Neg, alu.NEG], [M.Not, alu.NOT],
  [M.Imul, alu.IMUL], [M.Mul, alu.MUL], [M.Div, alu.DIV], [M.Idiv, alu.IDIV],
  [M.Shl, alu.SHL], [M.Sal, alu.SHL], [M.Shr, alu.SHR], [M.Sar, alu.SAR],
  [M.Rol, alu.ROL], [M.Ror, alu.ROR], [M.Rcl, alu.RCL], [M.Rcr, alu.RCR],
  [M.Bt, alu.BT], [M.Bts, alu.BTS], [M.Btr, alu.BTR], [M.Btc, alu.BTC], [M.Bsf, alu.BSF], [M.Bsr, alu.BSR],
  [M.Xadd, alu.XADD], [M.Cmpxchg, alu.CMPXCHG],
  [M.Movzx, mv.MOVZX], [M.Movsx, mv.MOVSX], [M.Movsxd, mv.MOVSX], [M.Lea, mv.LEA], [M.Xchg, mv.XCHG],
  [M.Cbw, mv.signExtendAccumulator(2)], [M.Cwde, mv.signExtendAccumulator(4)], [M.Cdqe, mv.signExtendAccumulator(8)],
  [M.Cwd, mv.signFillDx(2)], [M.Cdq, mv.signFillDx(4)], [M.Cqo, mv.signFillDx(8)],
  [M.Bswap, mv.BSWAP], [M.Lahf, mv.LAHF], [M.Sahf, mv.SAHF],
  [M.Nop, mv.NOP], [M.Pause, mv.NOP], [M.Endbr64, mv.NOP], [M.Lfence, mv.NOP], [M.Mfence, mv.NOP], [M.Sfence, mv.NOP],
  [M.Pushfq, st.pushFlags(8)], [M.Pushf, st.pushFlags(2)], [M.Popfq, st.popFlags(8)], [M.Popf, st.popFlags(2)],
  [M.Jmp, st.JMP_REL], [M.Call, st.CALL_REL], [M.Leave, st.LEAVE],
  [M.Jrcxz, st.jumpIfCxZero(8)], [M.Jecxz, st.jumpIfCxZero(4)],
  [M.Loop, st.loop('loop')], [M.Loope, st.loop('loope')], [M.Loopne, st.loop('loopne')],
  [M.Iretq, st.iret(8)], [M.Iretd, st.iret(4)], [M.Iret, st.iret(2)],
  [M.Int3, st.INT3], [M.Int, st.INT],
  [M.Lgdt, sys.loadTable('gdtr')], [M.Lidt, sys.loadTable('idtr')], [M.Sgdt, sys.storeTable('gdtr')], [M.Sidt, sys.storeTable('idtr')],
  [M.Ltr, sys.LTR], [M.Str, sys.STR], [M.Lldt, sys.LLDT], [M.Sldt, sys.SLDT], [M.Invlpg, sys.INVLPG], [M.Hlt, sys.HLT],
  [M.Cli, sys.CLI], [M.Sti, sys.STI],
  [M.Cld, sys.flagOp(FL.DF, 'clear')], [M.Std, sys.flagOp(FL.DF, 'set')],
  [M.Clc, sys.flagOp(FL.CF, 'clear')], [M.Stc, sys.flagOp(FL.CF, 'set')], [M.Cmc, sys.flagOp(FL.CF, 'flip')],
  [M.Clac, sys.acOp(false)], [M.Stac, sys.acOp(true)],
  [M.In, sys.IN], [M.Out, sys.OUT], [M.Cpuid, sys.CPUID], [M.Swapgs, sys.SWAPGS],
  [M.Wbinvd, sys.WBINVD], [M.Invd, sys.WBINVD], [M.Rdtsc, sys.RDTSC], [M.Ud2, sys.UD2], [M.Ud1, sys.UD2], [M.Ud0, sys.UD2],
  [M.Rdmsr, RDMSR], [M.Wrmsr, WRMSR], [M.Rdpkru, RDPKRU], [M.Wrpkru, WRPKRU],
  [M.Stosb, stringOp('stos', 1)], [M.Stosw, stringOp('stos', 2)], [M.Stosd, stringOp('stos', 4)], [M.Stosq, stringOp('stos', 8)],
  [M.Movsb, stringOp('movs', 1)], [M.Movsw, stringOp('movs', 2)], [M.Movsq, stringOp('movs', 8)],
  [M.Lodsb, stringOp('lods', 1)], [M.Lodsw, stringOp('lods', 2)], [M.Lodsd, stringOp('lods', 4)], [M.Lodsq, stringOp('lods', 8)],
  [M.Cmpsb, stringOp('cmps', 1)], [M.Cmpsw, stringOp('cmps', 2)], [M.Cmpsq, stringOp('cmps', 8)],
  [M.Scasb, stringOp('scas', 1)], [M.Scasw, stringOp('scas', 2)], [M.Scasd, stringOp('scas', 4)], [M.Scasq, stringOp('scas', 8)],
]);

const C = Code;

/** Handlers that depend on the exact form. */
const BY_CODE = new Map<number, Handler>([
  [C.Movsd_m32_m32, stringOp('movs', 4)],
  [C.Cmpsd_m32_m32, stringOp('cmps', 4)],
  [C.Retnq, st.retNear(8)], [C.Retnq_imm16, st.retNear(8)], [C.Retnw, st.retNear(2)], [C.Retnw_imm16, st.retNear(2)],
  [C.Retfq, st.retFar(8)], [C.Retfq_imm16, st.retFar(8)], [C.Retfd, st.retFar(4)], [C.Retfd_imm16, st.retFar(4)],
  [C.Retfw, st.retFar(2)], [C.Retfw_imm16, st.retFar(2)],
  [C.Jmp_m1664, st.farJump(8, false)], [C.Jmp_m1632, st.farJump(4, false)], [C.Jmp_m1616, st.farJump(2, false)],
  [C.Call_m1664, st.farJump(8, true)], [C.Call_m1632, st.farJump(4, true)], [C.Call_m1616, st.farJump(2, true)],
  [C.Pushq_FS, st.PUSH_SREG], [C.Pushq_GS, st.PUSH_SREG], [C.Pushw_FS, st.PUSH_SREG], [C.Pushw_GS, st.PUSH_SREG],
  [C.Popq_FS, st.POP_SREG], [C.Popq_GS, st.POP_SREG], [C.Popw_FS, st.POP_SREG], [C.Popw_GS, st.POP_SREG],
]);

/** The handler for `i`. */
export function resolveHandler(i: Insn): Handler {
  const byCode = BY_CODE.get(i.code);
  if (byCode) return byCode;
  const m = i.mnemonic;
  const k0 = i.ops[0]?.kind;
  const k1 = i.ops[1]?.kind;
  switch (m) {
    case M.Mov:
      if (k0 === OP_CR) return movCr(true);
      if (k1 === OP_CR) return movCr(false);
      if (k0 === OP_SEG) return mv.MOV_TO_SREG;
      if (k1 === OP_SEG) return mv.MOV_FROM_SREG;
      if (i.ops.some((o) => o.kind > OP_MEM)) return UNSUPPORTED; // debug and test registers
      return mv.MOV;
    case M.Push:
      return k0 === OP_SEG ? UNSUPPORTED : st.PUSH;
    case M.Pop:
      return k0 === OP_SEG ? UNSUPPORTED : st.POP;
    case M.Call:
      return k0 === OP_BRANCH ? st.CALL_REL : st.CALL_INDIRECT;
    case M.Jmp:
      return k0 === OP_BRANCH ? st.JMP_REL : st.JMP_INDIRECT;
    default:
      break;
  }
  if (i.cc !== 0) {
    const name = Mnemonic[m] ?? '';
    if (name.startsWith('J')) return st.JCC;
    if (name.startsWith('Set')) return mv.SETCC;
    if (name.startsWith('Cmov')) return mv.CMOVCC;
  }
  // The remaining MOVSD/CMPSD forms are SSE instructions.
  if (m === M.Movsd || m === M.Cmpsd) return UNSUPPORTED;
  if ((m === M.Stosd || m === M.Lodsd) && !i.ops.some((o) => o.kind === OP_STRING)) return UNSUPPORTED;
  return BY_MNEMONIC.get(m) ?? UNSUPPORTED;
}
