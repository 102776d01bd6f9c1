/**
 * The architectural state of the emulated CPU as plain data: general registers, RIP, RFLAGS,
 * segment registers with their hidden parts (QEMU's layout: selector, base, limit, flags = the
 * descriptor's high dword), descriptor-table registers, control registers and MSRs.
 */
import { ACC_IMPLICIT } from './mmuBits.js';

/** Access flag: an implicit supervisor-mode access (descriptor tables, TSS, event delivery). */
export const F_IMPLICIT = ACC_IMPLICIT;
/** Access flag: a stack access, where a non-canonical address raises #SS(0) instead of #GP(0). */
export const F_STACK = 64;

/** Segment register index of ES (QEMU's order: ES, CS, SS, DS, FS, GS). */
export const SEG_ES = 0;
/** Segment register index of CS. */
export const SEG_CS = 1;
/** Segment register index of SS. */
export const SEG_SS = 2;
/** Segment register index of DS. */
export const SEG_DS = 3;
/** Segment register index of FS. */
export const SEG_FS = 4;
/** Segment register index of GS. */
export const SEG_GS = 5;

/** Names of the segment registers, by index. */
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;

/** Names of the general registers, by encoding number. */
export const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

/** A general register name. */
export type GprName = (typeof GPR_NAMES)[number];

/** Register number of RAX (the encoding's order: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15). */
export const RAX = 0;
/** Register number of RCX. */
export const RCX = 1;
/** Register number of RDX. */
export const RDX = 2;
/** Register number of RBX. */
export const RBX = 3;
/** Register number of RSP. */
export const RSP = 4;
/** Register number of RBP. */
export const RBP = 5;
/** Register number of RSI. */
export const RSI = 6;
/** Register number of RDI. */
export const RDI = 7;

/** A segment register with its hidden part. */
export interface SegmentCache {
  selector: number;
  base: bigint;
  /** The limit in bytes (granularity applied). */
  limit: number;
  /** The descriptor's high dword (type, S, DPL, P, AVL, L, D/B, G); P clear for a null selector. */
  flags: number;
}

/** GDTR or IDTR. */
export interface TableRegister {
  base: bigint;
  limit: number;
}

/** RFLAGS bits. */
export const FL = {
  CF: 0x1,
  /** Bit 1 always reads as 1. */
  FIXED: 0x2,
  PF: 0x4,
  AF: 0x10,
  ZF: 0x40,
  SF: 0x80,
  TF: 0x100,
  IF: 0x200,
  DF: 0x400,
  OF: 0x800,
  IOPL: 0x3000,
  NT: 0x4000,
  RF: 0x10000,
  VM: 0x20000,
  AC: 0x40000,
  VIF: 0x80000,
  VIP: 0x100000,
  ID: 0x200000,
} as const;

/** The six status flags arithmetic writes. */
export const STATUS_FLAGS = FL.CF | FL.PF | FL.AF | FL.ZF | FL.SF | FL.OF;

/** Descriptor high-dword bits (QEMU's DESC_*_MASK). */
export const DESC = {
  /** Accessed (data/code) or busy (TSS type 11). */
  A: 1 << 8,
  /** Writable (data) / readable (code). */
  W: 1 << 9,
  /** Expand-down (data) / conforming (code). */
  E: 1 << 10,
  /** Code segment. */
  CS: 1 << 11,
  /** Code or data (S=1) rather than system. */
  S: 1 << 12,
  P: 1 << 15,
  L: 1 << 21,
  B: 1 << 22,
  G: 1 << 23,
} as const;

/** Model-specific registers the emulator implements. */
export const MSR = {
  TSC: 0x10,
  APIC_BASE: 0x1b,
  MISC_ENABLE: 0x1a0,
  PAT: 0x277,
  PKRS: 0x6e1,
  EFER: 0xc0000080,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  FMASK: 0xc0000084,
  FS_BASE: 0xc0000100,
  GS_BASE: 0xc0000101,
  KERNEL_GS_BASE: 0xc0000102,
  TSC_AUX: 0xc0000103,
} as const;

/** The CPU state a log line or a debugger reads. */
export interface CpuRegisters {
  /** RAX..R15 by encoding number, unsigned 64-bit. */
  readonly regs: readonly bigint[];
  readonly rip: bigint;
  readonly rflags: number;
  /** ES, CS, SS, DS, FS, GS. */
  readonly segs: readonly SegmentCache[];
  readonly ldtr: SegmentCache;
  readonly tr: SegmentCache;
  readonly gdtr: TableRegister;
  readonly idtr: TableRegister;
  readonly cr0: bigint;
  readonly cr2: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly cr8: bigint;
  readonly efer: bigint;
  readonly cpl: number;
  readonly halted: boolean;
  /** Interrupts inhibited for one instruction (after STI or MOV SS). */
  readonly inhibitIrq: boolean;
}

/** A segment register as left by a flat 64-bit loader: selector, base 0, 4 GiB limit, the descriptor's flags. */
export function flatSegment(selector: number, flags: number): SegmentCache {
  return { selector, base: 0n, limit: 0xffffffff, flags };
}

/** A null segment register (selector with RPL `rpl` and no descriptor), as 64-bit mode allows for SS/DS/ES/FS/GS. */
export function nullSegment(selector = 0, dpl = 0): SegmentCache {
  return { selector, base: 0n, limit: 0, flags: dpl << 13 };
}
