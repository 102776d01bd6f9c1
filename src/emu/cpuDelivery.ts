/**
 * Delivering an interrupt or exception in IA-32e mode (Intel SDM vol. 3, 6.14; QEMU's
 * do_interrupt64): read the 16-byte gate from the IDT, check it and its code segment, pick the
 * stack (IST, RSP0..2 from the TSS on a privilege change, else the current one), align it to 16,
 * push SS, RSP, RFLAGS, CS, RIP and the error code, then load CS:RIP and clear TF/NT/RF (and IF
 * for interrupt gates). Every memory access is an implicit supervisor access through the MMU, so
 * an unmapped IDT, GDT, TSS or stack faults here and the CPU's double-fault rules take over.
 */
import { M64 } from './bits.js';
import type { Cpu } from './cpu.js';
import { DESC, FL, F_IMPLICIT, F_STACK, RSP, SEG_CS, SEG_SS, nullSegment } from './cpuState.js';
import { markAccessed, readDescriptor, segmentFrom } from './cpuSegments.js';
import { CpuFault, VEC, hasErrorCode, isFault } from './exceptions.js';

/** Reads RSP0..2 (`level` 0..2) or IST1..7 (`level` 4..10) from the 64-bit TSS. */
function tssStack(cpu: Cpu, level: number, ext: number): bigint {
  const index = 8 * level + 4;
  if (index + 7 > cpu.tr.limit) throw new CpuFault(VEC.TS, (cpu.tr.selector & 0xfffc) | ext);
  const rsp = cpu.read((cpu.tr.base + BigInt(index)) & M64, 8, F_IMPLICIT);
  if (!cpu.canonical(rsp)) throw new CpuFault(VEC.SS, ext);
  return rsp;
}

/**
 * Delivers `vector` through the IDT and returns the handler's address (the new RIP). `isInt`: a
 * software interrupt (INT3, INT n) whose frame holds `nextRip` and which checks the gate's DPL;
 * otherwise an exception whose frame holds the current RIP and, for the vectors that have one,
 * `errorCode`. Throws CpuFault when delivery itself faults, with EXT set in selector error codes
 * for exceptions, as the SDM says (QEMU 7.2 leaves EXT clear).
 */
export function deliver(cpu: Cpu, vector: number, errorCode: number, isInt: boolean, nextRip: bigint): bigint {
  cpu.log.interrupt(cpu, vector, errorCode, isInt);
  const ext = isInt ? 0 : 1;
  const idtError = vector * 8 + 2 + ext;
  if (vector * 16 + 15 > cpu.idtr.limit) throw new CpuFault(VEC.GP, idtError);
  const gate = (cpu.idtr.base + BigInt(vector * 16)) & M64;
  const lo = cpu.read(gate, 8, F_IMPLICIT);
  const hi = cpu.read((gate + 8n) & M64, 8, F_IMPLICIT);
  const e1 = Number(lo & 0xffffffffn);
  const e2 = Number(lo >> 32n);
  const type = (e2 >>> 8) & 0x1f;
  if (type !== 0xe && type !== 0xf) throw new CpuFault(VEC.GP, idtError);
  if (isInt && ((e2 >>> 13) & 3) < cpu.cpl) throw new CpuFault(VEC.GP, idtError);
  if ((e2 & DESC.P) === 0) throw new CpuFault(VEC.NP, idtError);
  const selector = e1 >>> 16;
  const offset = ((hi & 0xffffffffn) << 32n) | BigInt((e2 & 0xffff0000) >>> 0) | BigInt(e1 & 0xffff);
  const ist = e2 & 7;

  if ((selector & 0xfffc) === 0) throw new CpuFault(VEC.GP, ext);
  const d = readDescriptor(cpu, selector);
  const selError = (selector & 0xfffc) | ext;
  if (!d) throw new CpuFault(VEC.GP, selError);
  if ((d.hi & DESC.S) === 0 || (d.hi & DESC.CS) === 0) throw new CpuFault(VEC.GP, selError);
  let dpl = (d.hi >>> 13) & 3;
  if (dpl > cpu.cpl) throw new CpuFault(VEC.GP, selError);
  if ((d.hi & DESC.P) === 0) throw new CpuFault(VEC.NP, selError);
  if ((d.hi & DESC.L) === 0 || (d.hi & DESC.B) !== 0) throw new CpuFault(VEC.GP, selError);
  if (d.hi & DESC.E) dpl = cpu.cpl; // conforming: no privilege change
  if (!cpu.canonical(offset)) throw new CpuFault(VEC.GP, ext);

  const changeCpl = dpl < cpu.cpl;
  let rsp: bigint;
  if (ist !== 0) rsp = tssStack(cpu, ist + 3, ext);
  else if (changeCpl) rsp = tssStack(cpu, dpl, ext);
  else rsp = cpu.regs[RSP]!;
  rsp &= ~0xfn;

  const pushedFlags = (cpu.rflags | FL.FIXED | (!isInt && isFault(vector) ? FL.RF : 0)) >>> 0;
  const frame = [BigInt(cpu.segs[SEG_SS]!.selector), cpu.regs[RSP]!, BigInt(pushedFlags), BigInt(cpu.segs[SEG_CS]!.selector), isInt ? nextRip : cpu.rip];
  if (!isInt && hasErrorCode(vector)) frame.push(BigInt(errorCode >>> 0));
  for (const v of frame) {
    rsp = (rsp - 8n) & M64;
    cpu.write(rsp, 8, v, F_IMPLICIT | F_STACK);
  }
  markAccessed(cpu, d);

  // Commit: nothing above changed a register.
  if (changeCpl) cpu.segs[SEG_SS] = nullSegment(dpl, dpl);
  cpu.segs[SEG_CS] = segmentFrom((selector & ~3) | dpl, d);
  cpu.cpl = dpl;
  cpu.regs[RSP] = rsp;
  cpu.rflags &= ~(FL.TF | FL.NT | FL.RF | FL.VM | (type === 0xe ? FL.IF : 0));
  cpu.halted = false;
  return offset;
}
