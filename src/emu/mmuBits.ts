/**
 * The MMU's vocabulary: how an access is described to it (a small bit set, so the hot path never
 * allocates), the page-fault error-code bits, and the control-register state it translates under.
 * The values are the architectural ones (Intel SDM vol. 3, 2.5 and 4.7); this file is the
 * emulator's own copy, independent of src/paging.
 */
import type { CpuFeatures } from './features.js';

/** A data read. */
export const ACC_READ = 0;
/** A data write. */
export const ACC_WRITE = 1;
/** An instruction fetch. */
export const ACC_EXEC = 2;
/** Mask of the kind bits of an access. */
export const ACC_KIND = 3;
/** A user-mode access: CPL 3 and not an implicit supervisor access. */
export const ACC_USER = 4;
/** An implicit supervisor-mode access (GDT, IDT, TSS reads, event delivery): SMAP applies whatever EFLAGS.AC says. */
export const ACC_IMPLICIT = 8;
/** EFLAGS.AC=1 at the time of the access (lets explicit supervisor accesses to user pages pass SMAP). */
export const ACC_AC = 16;

/** Page-fault error code bits (SDM 4.7). */
export const PFE = {
  P: 0x1,
  W: 0x2,
  U: 0x4,
  RSVD: 0x8,
  ID: 0x10,
  PK: 0x20,
} as const;

/** Names of the paging levels, top first. */
export type LevelName = 'PML5' | 'PML4' | 'PDPT' | 'PD' | 'PT';

/** The control-register state a translation depends on, decoded once per register write. */
export interface PagingControl {
  /** CR0.PG */
  pg: boolean;
  /** CR0.WP */
  wp: boolean;
  /** CR4.PAE */
  pae: boolean;
  /** EFER.LMA */
  lma: boolean;
  /** CR4.LA57 (5-level paging) */
  la57: boolean;
  /** CR4.PGE */
  pge: boolean;
  /** CR4.PCIDE */
  pcide: boolean;
  /** CR4.SMEP */
  smep: boolean;
  /** CR4.SMAP */
  smap: boolean;
  /** CR4.PKE */
  pke: boolean;
  /** CR4.PKS */
  pks: boolean;
  /** EFER.NXE */
  nxe: boolean;
  /** Physical address of the top table (CR3 bits MAXPHYADDR-1:12). */
  root: number;
  /** The current PCID (CR3 bits 11:0 with CR4.PCIDE=1, else 0). */
  pcid: number;
  /** MAXPHYADDR. */
  maxPhyAddr: number;
  /** 1 GiB pages are supported. */
  pdpe1gb: boolean;
}

/** Decodes CR0, CR3, CR4 and EFER for the MMU on a CPU with `features`. */
export function pagingControl(cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint, features: CpuFeatures): PagingControl {
  const c4 = Number(cr4 & 0xffffffffn);
  const pcide = (c4 & (1 << 17)) !== 0;
  const addrMask = (1n << BigInt(features.maxPhyAddr)) - 1n;
  return {
    pg: (cr0 & 0x80000000n) !== 0n,
    wp: (cr0 & 0x10000n) !== 0n,
    pae: (c4 & (1 << 5)) !== 0,
    lma: (efer & 0x400n) !== 0n,
    la57: (c4 & (1 << 12)) !== 0,
    pge: (c4 & (1 << 7)) !== 0,
    pcide,
    smep: (c4 & (1 << 20)) !== 0,
    smap: (c4 & (1 << 21)) !== 0,
    pke: (c4 & (1 << 22)) !== 0,
    pks: (c4 & (1 << 24)) !== 0,
    nxe: (efer & 0x800n) !== 0n,
    root: Number(cr3 & addrMask & ~0xfffn),
    pcid: pcide ? Number(cr3 & 0xfffn) : 0,
    maxPhyAddr: features.maxPhyAddr,
    pdpe1gb: features.pdpe1gb,
  };
}
