/**
 * The paging mode, computed once from CR0/CR4/EFER and passed down (SDM vol. 3, 4.1).
 * The canonical width, the level table and the reserved-bit masks all derive from it.
 */
import { CR0, CR3, CR4, EFER, has, type PagingRegisters } from './registers.js';
import { levelRules, type LevelRule } from './levels.js';

/** The five ways an x86 CPU can translate linear addresses. */
export type PagingMode = 'none' | '32-bit' | 'PAE' | '4-level' | '5-level';

/** Every paging mode, in the order of their introduction. */
export const PAGING_MODES: readonly PagingMode[] = ['none', '32-bit', 'PAE', '4-level', '5-level'];

/** What the CPU model contributes that the registers do not say. */
export interface CpuFeatures {
  /** MAXPHYADDR (CPUID 0x80000008 EAX[7:0]); 36..52. Defaults to 52. */
  maxPhyAddr?: number;
  /** 1 GiB pages (CPUID 0x80000001 EDX[26], "pdpe1gb"). Defaults to true. */
  gbPages?: boolean;
  /** The PKRU register (user protection keys). Defaults to 0: every key allows everything. */
  pkru?: number;
  /** The IA32_PKRS MSR (supervisor protection keys). Defaults to 0. */
  pkrs?: number;
}

/** Everything a walk needs to know about the CPU, derived once. */
export interface PagingContext {
  readonly mode: PagingMode;
  /** The raw CR3 value the walk starts from. */
  readonly cr3: bigint;
  /** Physical address of the top-level table (PML5, PML4, PAE PDPT or 32-bit PD). */
  readonly root: number;
  /** CR3 bits at or above MAXPHYADDR, bit 63 included unless CR4.PCIDE=1 (mov to CR3 would #GP); 0n when none. */
  readonly cr3Reserved: bigint;
  /** Width of a linear address: 32, 48 or 57 (64 without paging in long mode never happens). */
  readonly vaBits: number;
  readonly wp: boolean;
  readonly nxe: boolean;
  readonly pse: boolean;
  readonly smep: boolean;
  readonly smap: boolean;
  readonly pke: boolean;
  readonly pks: boolean;
  readonly pcide: boolean;
  readonly maxPhyAddr: number;
  readonly gbPages: boolean;
  readonly pkru: number;
  readonly pkrs: number;
  /** The levels of this mode, top first. Empty when paging is off. */
  readonly levels: readonly LevelRule[];
}

/** Error raised for registers or features that describe no possible CPU state; `code` is stable. */
export class PagingConfigError extends Error {
  constructor(
    readonly code: 'E_MAXPHYADDR' | 'E_MODE',
    message: string,
  ) {
    super(message);
    this.name = 'PagingConfigError';
  }
}

/** The paging mode the registers select. LMA is taken from EFER, or inferred from LME with PG and PAE. */
export function pagingMode(regs: Pick<PagingRegisters, 'cr0' | 'cr4' | 'efer'>): PagingMode {
  if (!has(regs.cr0, CR0.PG)) return 'none';
  if (!has(regs.cr4, CR4.PAE)) return '32-bit';
  const lma = has(regs.efer, EFER.LMA) || has(regs.efer, EFER.LME);
  if (!lma) return 'PAE';
  return has(regs.cr4, CR4.LA57) ? '5-level' : '4-level';
}

/** Linear-address width of a mode: 32 for the legacy modes, 48 or 57 in long mode. */
export function vaBitsOf(mode: PagingMode): number {
  return mode === '5-level' ? 57 : mode === '4-level' ? 48 : 32;
}

/**
 * Physical address of the top table from a CR3 value: bits 31:12 (32-bit), 31:5 (PAE),
 * MAXPHYADDR-1:12 (long mode). PCID/PWT/PCD and the no-flush bit are not part of it.
 */
export function cr3Root(mode: PagingMode, cr3: bigint, maxPhyAddr = 52): number {
  switch (mode) {
    case 'none':
      return 0;
    case '32-bit':
      return Number(cr3 & 0xfffff000n);
    case 'PAE':
      return Number(cr3 & 0xffffffe0n);
    default:
      return Number(cr3 & ((1n << BigInt(maxPhyAddr)) - 1n) & ~0xfffn);
  }
}

/**
 * Derives the paging context from the registers and CPU features.
 * Throws `PagingConfigError` (E_MAXPHYADDR) for a MAXPHYADDR outside 32..52.
 */
export function pagingContext(regs: PagingRegisters, features: CpuFeatures = {}): PagingContext {
  const maxPhyAddr = features.maxPhyAddr ?? 52;
  if (!Number.isInteger(maxPhyAddr) || maxPhyAddr < 32 || maxPhyAddr > 52) {
    throw new PagingConfigError('E_MAXPHYADDR', `MAXPHYADDR must be a whole number from 32 to 52, not ${maxPhyAddr}`);
  }
  const mode = pagingMode(regs);
  const longMode = mode === '4-level' || mode === '5-level';
  const cr3 = regs.cr3;
  const flags = {
    wp: has(regs.cr0, CR0.WP),
    nxe: has(regs.efer, EFER.NXE) && mode !== '32-bit',
    pse: has(regs.cr4, CR4.PSE),
    smep: has(regs.cr4, CR4.SMEP),
    smap: has(regs.cr4, CR4.SMAP),
    pke: has(regs.cr4, CR4.PKE) && longMode,
    pks: has(regs.cr4, CR4.PKS) && longMode,
    pcide: has(regs.cr4, CR4.PCIDE) && longMode,
  };
  const gbPages = features.gbPages ?? true;
  return {
    mode,
    cr3,
    root: cr3Root(mode, cr3, maxPhyAddr),
    cr3Reserved: cr3ReservedBits(mode, cr3, maxPhyAddr, flags.pcide),
    vaBits: vaBitsOf(mode),
    ...flags,
    maxPhyAddr,
    gbPages,
    pkru: (features.pkru ?? 0) >>> 0,
    pkrs: (features.pkrs ?? 0) >>> 0,
    levels: levelRules(mode, { maxPhyAddr, nxe: flags.nxe, pse: flags.pse, gbPages }),
  };
}

/**
 * The bits of a value moved to CR3 that make the mov raise #GP(0): in long mode, bits 63:MAXPHYADDR,
 * except bit 63 with CR4.PCIDE=1 (the no-flush hint, never stored in CR3). Outside long mode the mov
 * writes only bits 31:0 and none is reserved. 0n when the value is fine.
 */
export function cr3ReservedBits(mode: PagingMode, cr3: bigint, maxPhyAddr: number, pcide: boolean): bigint {
  if (mode !== '4-level' && mode !== '5-level') return 0n;
  const value = pcide ? cr3 & ~CR3.NOFLUSH : cr3;
  return value & ~((1n << BigInt(maxPhyAddr)) - 1n) & ((1n << 64n) - 1n);
}

/** The same context with another CR3 (another address space on the same CPU). */
export function withCr3(ctx: PagingContext, cr3: bigint): PagingContext {
  return {
    ...ctx,
    cr3,
    root: cr3Root(ctx.mode, cr3, ctx.maxPhyAddr),
    cr3Reserved: cr3ReservedBits(ctx.mode, cr3, ctx.maxPhyAddr, ctx.pcide),
  };
}
