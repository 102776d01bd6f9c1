/**
 * Segment loads in long mode, minimal but real: descriptors are read from the GDT (or LDT) through
 * the MMU as implicit supervisor accesses, checked the way the SDM's MOV, far JMP, far RET and
 * IRET pseudo-code checks them (#GP, #NP or #SS with the selector as error code), and marked
 * accessed by a write to the table, which faults like any write when the GDT is read-only.
 */
import type { Cpu } from './cpu.js';
import { DESC, F_IMPLICIT, SEG_CS, SEG_FS, SEG_SS, nullSegment, type SegmentCache } from './cpuState.js';
import { CpuFault, VEC } from './exceptions.js';
import { EmuError } from './errors.js';

/** A segment descriptor as read: its low and high dwords and where it is. */
export interface Descriptor {
  lo: number;
  hi: number;
  address: bigint;
}

/** Reads the descriptor `selector` refers to, or returns null when it lies beyond the table's limit. */
export function readDescriptor(cpu: Cpu, selector: number): Descriptor | null {
  const table = selector & 4 ? cpu.ldtr : cpu.gdtr;
  const index = selector & ~7;
  if (index + 7 > table.limit) return null;
  const address = (table.base + BigInt(index)) & 0xffffffffffffffffn;
  const v = cpu.read(address, 8, F_IMPLICIT);
  return { lo: Number(v & 0xffffffffn), hi: Number(v >> 32n), address };
}

/** The segment cache a descriptor loads: base, limit with granularity applied, flags = high dword. */
export function segmentFrom(selector: number, d: Descriptor): SegmentCache {
  const base = ((d.lo >>> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000)) >>> 0;
  let limit = (d.lo & 0xffff) | (d.hi & 0xf0000);
  if (d.hi & DESC.G) limit = ((limit << 12) | 0xfff) >>> 0;
  return { selector, base: BigInt(base), limit, flags: d.hi >>> 0 };
}

/** Sets the descriptor's accessed bit if it is clear (an implicit supervisor write). */
export function markAccessed(cpu: Cpu, d: Descriptor): void {
  if (d.hi & DESC.A) return;
  d.hi = (d.hi | DESC.A) >>> 0;
  cpu.write((d.address + 4n) & 0xffffffffffffffffn, 4, BigInt(d.hi), F_IMPLICIT);
}

const dpl = (d: Descriptor): number => (d.hi >>> 13) & 3;
const isCode = (d: Descriptor): boolean => (d.hi & DESC.S) !== 0 && (d.hi & DESC.CS) !== 0;
const isWritableData = (d: Descriptor): boolean => (d.hi & DESC.S) !== 0 && (d.hi & DESC.CS) === 0 && (d.hi & DESC.W) !== 0;
const present = (d: Descriptor): boolean => (d.hi & DESC.P) !== 0;

/** `selector` with RPL cleared, the form selector error codes take. */
const selErr = (selector: number): number => selector & 0xfffc;

/**
 * MOV/POP to DS, ES, FS, GS or SS in 64-bit mode. Null selectors are allowed except in SS at
 * CPL 3 (or with RPL != CPL); a null FS/GS also clears its base, as Intel CPUs do.
 */
export function loadDataSegment(cpu: Cpu, seg: number, selector: number): void {
  selector &= 0xffff;
  if (seg === SEG_CS) throw new CpuFault(VEC.UD);
  if ((selector & 0xfffc) === 0) {
    if (seg === SEG_SS && (cpu.cpl === 3 || (selector & 3) !== cpu.cpl)) throw new CpuFault(VEC.GP, 0);
    cpu.segs[seg] = nullSegment(selector, seg === SEG_SS ? cpu.cpl : 0);
    return;
  }
  const d = readDescriptor(cpu, selector);
  if (!d) throw new CpuFault(VEC.GP, selErr(selector));
  const rpl = selector & 3;
  if (seg === SEG_SS) {
    if (rpl !== cpu.cpl || !isWritableData(d) || dpl(d) !== cpu.cpl) throw new CpuFault(VEC.GP, selErr(selector));
    if (!present(d)) throw new CpuFault(VEC.SS, selErr(selector));
  } else {
    if ((d.hi & DESC.S) === 0 || (isCode(d) && (d.hi & DESC.W) === 0)) throw new CpuFault(VEC.GP, selErr(selector));
    const conformingCode = isCode(d) && (d.hi & DESC.E) !== 0;
    if (!conformingCode && (rpl > dpl(d) || cpu.cpl > dpl(d))) throw new CpuFault(VEC.GP, selErr(selector));
    if (!present(d)) throw new CpuFault(VEC.NP, selErr(selector));
  }
  markAccessed(cpu, d);
  cpu.segs[seg] = segmentFrom(selector, d);
}

/**
 * Checks a code-segment selector for a far JMP/RET or IRET to privilege `rplCheck` rules and returns
 * its descriptor. `ret`: RET/IRET rules (RPL >= CPL, DPL == RPL for non-conforming); otherwise
 * JMP rules (RPL <= CPL, DPL == CPL). Only 64-bit code segments can be executed by this emulator.
 */
export function checkCodeSegment(cpu: Cpu, selector: number, ret: boolean): Descriptor {
  if ((selector & 0xfffc) === 0) throw new CpuFault(VEC.GP, 0);
  const d = readDescriptor(cpu, selector);
  if (!d) throw new CpuFault(VEC.GP, selErr(selector));
  const rpl = selector & 3;
  if ((d.hi & DESC.S) === 0) {
    throw new EmuError('E_UNSUPPORTED', `far transfer through system descriptor 0x${selector.toString(16)} (call gate or TSS) is not emulated`);
  }
  if (!isCode(d)) throw new CpuFault(VEC.GP, selErr(selector));
  const conforming = (d.hi & DESC.E) !== 0;
  if (ret) {
    if (rpl < cpu.cpl) throw new CpuFault(VEC.GP, selErr(selector));
    if (conforming ? dpl(d) > rpl : dpl(d) !== rpl) throw new CpuFault(VEC.GP, selErr(selector));
  } else if (conforming ? dpl(d) > cpu.cpl : rpl > cpu.cpl || dpl(d) !== cpu.cpl) {
    throw new CpuFault(VEC.GP, selErr(selector));
  }
  if (!present(d)) throw new CpuFault(VEC.NP, selErr(selector));
  if ((d.hi & DESC.L) === 0) {
    throw new EmuError('E_UNSUPPORTED', `code segment 0x${selector.toString(16)} is not a 64-bit segment: compatibility mode is not emulated`);
  }
  return d;
}

/** Checks the SS selector an IRET or outer-privilege far RET loads for privilege `newCpl`. Null: allowed below CPL 3. */
export function checkStackSegment(cpu: Cpu, selector: number, newCpl: number): Descriptor | null {
  if ((selector & 0xfffc) === 0) {
    if (newCpl === 3) throw new CpuFault(VEC.GP, 0);
    return null;
  }
  const d = readDescriptor(cpu, selector);
  if (!d) throw new CpuFault(VEC.GP, selErr(selector));
  if ((selector & 3) !== newCpl || !isWritableData(d) || dpl(d) !== newCpl) throw new CpuFault(VEC.GP, selErr(selector));
  if (!present(d)) throw new CpuFault(VEC.SS, selErr(selector));
  return d;
}

/** After a return to an outer privilege level: data segments the new CPL may not use become null. */
export function nullInaccessibleSegments(cpu: Cpu): void {
  for (const seg of [0, 3, 4, 5]) {
    const s = cpu.segs[seg]!;
    const conformingCode = (s.flags & DESC.S) !== 0 && (s.flags & DESC.CS) !== 0 && (s.flags & DESC.E) !== 0;
    if ((s.flags & DESC.P) !== 0 && !conformingCode && ((s.flags >>> 13) & 3) < cpu.cpl) {
      cpu.segs[seg] = { ...nullSegment(0), base: seg >= SEG_FS ? s.base : 0n };
    }
  }
}
