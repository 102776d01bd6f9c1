/**
 * The stack and control flow: PUSH/POP (registers, immediates, memory, FS/GS), PUSHF/POPF, CALL,
 * JMP and RET (near relative and indirect, far through memory, RET imm16), Jcc, JRCXZ, LOOPcc,
 * LEAVE, IRET and the software interrupts INT3 and INT n. Branch targets are checked for
 * canonical form before RIP moves (#GP(0) at the branch).
 */
import { M64, MASK } from './bits.js';
import type { Cpu } from './cpu.js';
import { deliver } from './cpuDelivery.js';
import type { Handler, Insn } from './cpuDecode.js';
import { checkCodeSegment, checkStackSegment, loadDataSegment, markAccessed, nullInaccessibleSegments, segmentFrom } from './cpuSegments.js';
import { FL, F_STACK, RBP, RCX, RSP, SEG_CS, SEG_SS, nullSegment } from './cpuState.js';
import { CpuFault, VEC } from './exceptions.js';

/** Sets the instruction's successor to `target`, or raises #GP(0) when it is not canonical. */
export function branchTo(cpu: Cpu, target: bigint): void {
  if (!cpu.canonical(target)) throw new CpuFault(VEC.GP, 0);
  cpu.nextRip = target;
}

const relTarget = (cpu: Cpu, i: Insn): bigint => (cpu.nextRip + i.rel) & M64;

/** PUSH of a register, an immediate or memory (8 bytes, or 2 with an operand-size prefix). */
export const PUSH: Handler = (cpu, i) => {
  cpu.push(cpu.readOp(i, 0), i.opSize);
};

/** POP into a register or memory; a memory destination addressed through RSP sees RSP after the pop. */
export const POP: Handler = (cpu, i) => {
  const v = cpu.pop(i.opSize);
  cpu.writeOp(i, 0, v);
};

/** PUSH FS/GS: the selector, zero-extended. */
export const PUSH_SREG: Handler = (cpu, i) => {
  cpu.push(BigInt(cpu.segs[i.ops[0]!.reg]!.selector), i.opSize === 2 ? 2 : 8);
};

/** POP FS/GS: a descriptor load of the popped selector. */
export const POP_SREG: Handler = (cpu, i) => {
  const sel = cpu.pop(i.opSize === 2 ? 2 : 8);
  loadDataSegment(cpu, i.ops[0]!.reg, Number(sel & 0xffffn));
};

/** PUSHFQ / PUSHFW: RFLAGS with RF and VM cleared. */
export function pushFlags(size: 2 | 8): Handler {
  return (cpu) => cpu.push(BigInt(cpu.rflags & ~(FL.RF | FL.VM)) & MASK[size]!, size);
}

/** The RFLAGS bits POPF/IRET may change at CPL 0 in 64-bit mode. */
const WRITABLE_FLAGS = FL.CF | FL.PF | FL.AF | FL.ZF | FL.SF | FL.TF | FL.IF | FL.DF | FL.OF | FL.IOPL | FL.NT | FL.AC | FL.ID;

/**
 * Loads RFLAGS from `value` as POPF and IRET do: IOPL only at CPL 0, IF only when CPL <= IOPL;
 * bit 1 stays set. IRET (`iret`) also loads RF from the image; POPF clears it.
 */
export function loadFlags(cpu: Cpu, value: number, mask: number, iret = false): void {
  let writable = (WRITABLE_FLAGS | (iret ? FL.RF : 0)) & mask;
  const iopl = (cpu.rflags >>> 12) & 3;
  if (cpu.cpl > 0) writable &= ~FL.IOPL;
  if (cpu.cpl > iopl) writable &= ~FL.IF;
  cpu.rflags = ((cpu.rflags & ~writable & ~FL.RF) | (value & writable) | FL.FIXED) >>> 0;
}

/** POPFQ / POPFW. */
export function popFlags(size: 2 | 8): Handler {
  return (cpu) => {
    const v = Number(cpu.pop(size) & 0xffffffffn);
    loadFlags(cpu, v, size === 2 ? 0xffff : 0xffffffff);
  };
}

/** CALL rel32: push the return address, branch. */
export const CALL_REL: Handler = (cpu, i) => {
  const target = relTarget(cpu, i);
  cpu.push(cpu.nextRip);
  branchTo(cpu, target);
};

/** CALL r/m64 (or r/m16 with an operand-size prefix). */
export const CALL_INDIRECT: Handler = (cpu, i) => {
  const target = cpu.readOp(i, 0);
  cpu.push(cpu.nextRip, i.opSize === 2 ? 2 : 8);
  branchTo(cpu, target);
};

/** JMP rel8/rel32. */
export const JMP_REL: Handler = (cpu, i) => branchTo(cpu, relTarget(cpu, i));

/** JMP r/m64. */
export const JMP_INDIRECT: Handler = (cpu, i) => branchTo(cpu, cpu.readOp(i, 0));

/** Jcc rel8/rel32. */
export const JCC: Handler = (cpu, i) => {
  if (cpu.cond(i.cc)) branchTo(cpu, relTarget(cpu, i));
};

/** JRCXZ (or JECXZ with an address-size prefix). */
export function jumpIfCxZero(size: 4 | 8): Handler {
  return (cpu, i) => {
    if ((cpu.regs[RCX]! & MASK[size]!) === 0n) branchTo(cpu, relTarget(cpu, i));
  };
}

/** LOOP, LOOPE, LOOPNE: decrement RCX (no flags), branch while it is not 0 (and ZF says so). */
export function loop(kind: 'loop' | 'loope' | 'loopne'): Handler {
  return (cpu, i) => {
    const size = i.addr32 ? 4 : 8;
    const rcx = (cpu.regs[RCX]! - 1n) & MASK[size]!; // a 32-bit count (ECX) zero-extends
    cpu.regs[RCX] = rcx;
    const zf = cpu.flag(FL.ZF);
    const go = rcx !== 0n && (kind === 'loop' || (kind === 'loope' ? zf : !zf));
    if (go) branchTo(cpu, relTarget(cpu, i));
  };
}

/** RET and RET imm16 (near). */
export function retNear(size: 2 | 8): Handler {
  return (cpu, i) => {
    const target = cpu.pop(size);
    if (i.ops.length > 0) cpu.regs[RSP] = (cpu.regs[RSP]! + cpu.readOp(i, 0)) & M64;
    branchTo(cpu, target);
  };
}

/** LEAVE: RSP = RBP, then pop RBP. */
export const LEAVE: Handler = (cpu) => {
  const v = cpu.read(cpu.regs[RBP]!, 8, F_STACK);
  cpu.regs[RSP] = (cpu.regs[RBP]! + 8n) & M64;
  cpu.regs[RBP] = v;
};

/** Loads CS from checked descriptor `d` for selector `selector` at privilege `cpl`. */
function loadCs(cpu: Cpu, selector: number, d: ReturnType<typeof checkCodeSegment>, cpl: number): void {
  markAccessed(cpu, d);
  cpu.segs[SEG_CS] = segmentFrom((selector & ~3) | cpl, d);
  cpu.cpl = cpl;
}

/** JMP or CALL far through memory (m16:16, m16:32 or m16:64): same-privilege code segments only. */
export function farJump(offsetSize: 2 | 4 | 8, call: boolean): Handler {
  return (cpu, i) => {
    const va = cpu.ea(i);
    const offset = cpu.read(va, offsetSize);
    const selector = Number(cpu.read((va + BigInt(offsetSize)) & M64, 2));
    const d = checkCodeSegment(cpu, selector, false);
    if (!cpu.canonical(offset)) throw new CpuFault(VEC.GP, 0);
    if (call) {
      const size = offsetSize === 8 ? 8 : offsetSize;
      cpu.push(BigInt(cpu.segs[SEG_CS]!.selector), size);
      cpu.push(cpu.nextRip, size);
    }
    loadCs(cpu, selector, d, cpu.cpl);
    cpu.nextRip = offset;
  };
}

/** RETF [imm16] with `size`-byte stack slots: to the same privilege, or to an outer one (popping RSP and SS too). */
export function retFar(size: 2 | 4 | 8): Handler {
  return (cpu, i) => {
    const imm = i.ops.length > 0 ? cpu.readOp(i, 0) : 0n;
    const rip = cpu.pop(size);
    const selector = Number(cpu.pop(size) & 0xffffn);
    const d = checkCodeSegment(cpu, selector, true);
    if (!cpu.canonical(rip)) throw new CpuFault(VEC.GP, 0);
    const newCpl = selector & 3;
    cpu.regs[RSP] = (cpu.regs[RSP]! + imm) & M64;
    if (newCpl > cpu.cpl) {
      const rsp = cpu.pop(size);
      const ss = Number(cpu.pop(size) & 0xffffn);
      const sd = checkStackSegment(cpu, ss, newCpl);
      loadCs(cpu, selector, d, newCpl);
      cpu.segs[SEG_SS] = sd ? segmentFrom(ss, sd) : nullSegment(ss, newCpl);
      cpu.regs[RSP] = (rsp + imm) & M64;
      nullInaccessibleSegments(cpu);
    } else {
      loadCs(cpu, selector, d, cpu.cpl);
    }
    cpu.nextRip = rip;
  };
}

/**
 * IRETQ (or IRETD/IRETW with `size` 4/2) in 64-bit mode: pops RIP, CS, RFLAGS, RSP and SS, to
 * the same or an outer privilege level, with the SDM's checks on both selectors.
 */
export function iret(size: 2 | 4 | 8): Handler {
  return (cpu) => {
    if (cpu.flag(FL.NT)) throw new CpuFault(VEC.GP, 0);
    const rip = cpu.pop(size);
    const selector = Number(cpu.pop(size) & 0xffffn);
    const flags = Number(cpu.pop(size) & 0xffffffffn);
    const rsp = cpu.pop(size);
    const ss = Number(cpu.pop(size) & 0xffffn);
    const d = checkCodeSegment(cpu, selector, true);
    const newCpl = selector & 3;
    if (!cpu.canonical(rip)) throw new CpuFault(VEC.GP, 0);
    const sd = checkStackSegment(cpu, ss, newCpl);
    const oldCpl = cpu.cpl;
    loadFlags(cpu, flags, size === 2 ? 0xffff : 0xffffffff, true);
    loadCs(cpu, selector, d, newCpl);
    if (sd) markAccessed(cpu, sd);
    cpu.segs[SEG_SS] = sd ? segmentFrom(ss, sd) : nullSegment(ss, newCpl);
    cpu.regs[RSP] = rsp & (size === 8 ? M64 : MASK[size]!);
    if (newCpl > oldCpl) nullInaccessibleSegments(cpu);
    cpu.nextRip = rip & (size === 8 ? M64 : MASK[size]!);
  };
}

/** INT3: the #BP trap, delivered as a software interrupt (gate DPL checked, RIP after it pushed). */
export const INT3: Handler = (cpu) => {
  cpu.nextRip = deliver(cpu, VEC.BP, 0, true, cpu.nextRip);
  cpu.oldException = -1;
};

/** INT imm8. */
export const INT: Handler = (cpu, i) => {
  cpu.nextRip = deliver(cpu, Number(cpu.readOp(i, 0)), 0, true, cpu.nextRip);
  cpu.oldException = -1;
};
