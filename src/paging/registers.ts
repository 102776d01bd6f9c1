/**
 * The control registers and MSRs that steer paging, and their bits (Intel SDM vol. 3, 2.5 and 4.1).
 */

/** The registers the paging mode and the walk depend on. Raw 64-bit values. */
export interface PagingRegisters {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

/** CR0 bits. */
export const CR0 = {
  /** Protection enable. */
  PE: 1n << 0n,
  /** Write protect: supervisor writes honour read-only pages. */
  WP: 1n << 16n,
  /** Alignment mask. */
  AM: 1n << 18n,
  /** Paging. */
  PG: 1n << 31n,
} as const;

/** CR3 bits outside the table address. */
export const CR3 = {
  /** Page-level write-through for the top table (when CR4.PCIDE=0). */
  PWT: 1n << 3n,
  /** Page-level cache disable for the top table (when CR4.PCIDE=0). */
  PCD: 1n << 4n,
  /** In a value moved to CR3 with CR4.PCIDE=1: keep the PCID's TLB entries. Never part of the address. */
  NOFLUSH: 1n << 63n,
} as const;

/** CR4 bits. */
export const CR4 = {
  /** Page size extensions: 4 MiB pages in 32-bit paging. */
  PSE: 1n << 4n,
  /** Physical address extension: PAE or long-mode paging. */
  PAE: 1n << 5n,
  /** Page global enable. */
  PGE: 1n << 7n,
  /** 57-bit linear addresses: 5-level paging. */
  LA57: 1n << 12n,
  /** Process-context identifiers in CR3 bits 11:0. */
  PCIDE: 1n << 17n,
  /** Supervisor-mode execution prevention. */
  SMEP: 1n << 20n,
  /** Supervisor-mode access prevention. */
  SMAP: 1n << 21n,
  /** Protection keys for user pages (PKRU). */
  PKE: 1n << 22n,
  /** Control-flow enforcement (shadow stacks). */
  CET: 1n << 23n,
  /** Protection keys for supervisor pages (IA32_PKRS). */
  PKS: 1n << 24n,
} as const;

/** IA32_EFER bits. */
export const EFER = {
  /** System call extensions. */
  SCE: 1n << 0n,
  /** Long mode enable. */
  LME: 1n << 8n,
  /** Long mode active. */
  LMA: 1n << 10n,
  /** Execute-disable bit enable: bit 63 of entries means XD. */
  NXE: 1n << 11n,
} as const;

/** RFLAGS bits used by access checks and exception delivery. */
export const RFLAGS = {
  /** Interrupts enabled. */
  IF: 1n << 9n,
  /** Alignment check / SMAP override for explicit supervisor accesses. */
  AC: 1n << 18n,
} as const;

/** The names of the set bits of `value` among `bits`, in declaration order. */
export function setBits(value: bigint, bits: Readonly<Record<string, bigint>>): string[] {
  return Object.entries(bits)
    .filter(([, mask]) => (value & mask) !== 0n)
    .map(([name]) => name);
}

/** True when `bit` is set in `value`. */
export function has(value: bigint, bit: bigint): boolean {
  return (value & bit) !== 0n;
}
