/**
 * The CPU state pagewalk reads from a target: paging registers, where the CPU is, and the
 * descriptor tables exception delivery uses. Fields a target cannot tell are absent, never guessed;
 * `notes` says what was inferred and from what.
 */
import type { PagingRegisters } from './registers.js';

/** A segment register as far as it is known: the selector always, the hidden part when a target has it. */
export interface Segment {
  selector: number;
  base?: bigint;
  limit?: number;
  /** QEMU's packed attribute flags (descriptor bits 8..23 shifted to 8..23, as in its ELF note). */
  flags?: number;
}

/** GDTR or IDTR. */
export interface DescriptorTableRegister {
  base: bigint;
  limit: number;
}

/** Everything pagewalk may know of a CPU. */
export interface CpuState extends PagingRegisters {
  cr2: bigint;
  rip: bigint;
  rsp: bigint;
  rflags: bigint;
  /** General registers by lower-case name (rax..r15), where known. */
  gpr: Record<string, bigint>;
  cs?: Segment;
  ss?: Segment;
  ds?: Segment;
  es?: Segment;
  fs?: Segment;
  gs?: Segment;
  tr?: Segment;
  ldtr?: Segment;
  gdtr?: DescriptorTableRegister;
  idtr?: DescriptorTableRegister;
  /** PKRU, where known. */
  pkru?: number;
  /** Where a value was inferred rather than read (e.g. "EFER inferred: long mode from CR0.PG, CR4.PAE and a 64-bit CS"). */
  notes: string[];
}

/** The current privilege level: CS.RPL (equal to CPL outside of transitions). */
export function cpl(cpu: Pick<CpuState, 'cs'>): number {
  return (cpu.cs?.selector ?? 0) & 3;
}

/**
 * The linear address of the next instruction: in real mode (CR0.PE=0) CS.base + IP, where CS.base
 * is CS × 16 unless the target says otherwise (0xffff0000 at reset); that is where a breakpoint
 * sits and code is read (the BIOS runs at CS 0xf000). RIP otherwise (flat code segments, as every
 * kernel uses them).
 */
export function linearIp(cpu: Pick<CpuState, 'cr0' | 'rip' | 'cs'>): bigint {
  if ((cpu.cr0 & 1n) !== 0n) return cpu.rip;
  return (cpu.cs?.base ?? BigInt(cpu.cs?.selector ?? 0) << 4n) + (cpu.rip & 0xffffn);
}
