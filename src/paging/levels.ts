/**
 * The table of levels for each paging mode, with the per-level rules the walk, the map and the
 * lint share: index bits, entry size, what bit 7 means, page sizes, and the reserved-bit masks.
 *
 * Masks are kept as two uint32 numbers (low and high word of the entry) so the hot loops of the
 * map never touch a BigInt.
 */
import type { PagingMode } from './mode.js';

/** The name of a paging-structure level, top to bottom. */
export type LevelName = 'PML5' | 'PML4' | 'PDPT' | 'PD' | 'PT';

/** What bit 7 (PS) of a present entry means at a level. */
export type PsMeaning =
  /** PS=1 maps a page of `hugeSize` here. */
  | 'page'
  /** PS must be 0 (PML5E, PML4E, PDPTE without 1 GiB pages): setting it is a reserved-bit fault. */
  | 'reserved'
  /** PS is ignored (32-bit PDE with CR4.PSE=0). */
  | 'ignored'
  /** Bit 7 is PAT (PTE): every present entry is a 4 KiB leaf. */
  | 'pat';

/** One level of a paging mode, with the rules of the context it was built for. */
export interface LevelRule {
  readonly name: LevelName;
  /** The lowest linear-address bit of this level's index. */
  readonly shift: number;
  /** How many index bits: 10 (32-bit), 2 (PAE PDPT), 9 otherwise. */
  readonly indexBits: number;
  /** Entry size in bytes. */
  readonly entrySize: 4 | 8;
  readonly ps: PsMeaning;
  /** Size of the page an entry maps when it is a leaf here (4 KiB at the PT). */
  readonly pageSize: number;
  /** R/W and U/S take part in the effective rights (not for PAE PDPTEs). */
  readonly rights: boolean;
  /** Bit 63 is XD here (EFER.NXE=1, 64-bit entries, not a PAE PDPTE). */
  readonly nx: boolean;
  /** Reserved bits of a present entry that references a table (or of a 4 KiB leaf), low word. */
  readonly rsvdLo: number;
  /** The same, high word. */
  readonly rsvdHi: number;
  /** Reserved bits of a present huge-page leaf (PS=1), low word. */
  readonly hugeRsvdLo: number;
  /** The same, high word. */
  readonly hugeRsvdHi: number;
  /** Mask of the low word that holds the address of a leaf's page (4 KiB, 2 MiB, 4 MiB or 1 GiB). */
  readonly leafLoMask: number;
  /** Mask of the high word that holds address bits 51:32 (0 for 32-bit entries). */
  readonly addrHiMask: number;
  /** Leaves here carry a protection key in bits 62:59 (4- and 5-level paging). */
  readonly pk: boolean;
  /** 32-bit 4 MiB pages only: how many PA bits above 31 come from entry bits 13 and up (PSE-36). */
  readonly pse36Bits: number;
}

/** The CPU facts the level rules depend on. */
export interface LevelOptions {
  maxPhyAddr: number;
  nxe: boolean;
  pse: boolean;
  gbPages: boolean;
}

const lo32 = (v: bigint): number => Number(v & 0xffffffffn);
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);
const bits = (high: number, low: number): bigint => ((1n << BigInt(high - low + 1)) - 1n) << BigInt(low);

/** Builds the level rules of `mode` for a CPU with `opts`. Top level first. */
export function levelRules(mode: PagingMode, opts: LevelOptions): LevelRule[] {
  const M = opts.maxPhyAddr;
  const make = (
    name: LevelName,
    shift: number,
    indexBits: number,
    entrySize: 4 | 8,
    ps: PsMeaning,
    rsvd: bigint,
    hugeExtra: bigint,
    extra: { rights?: boolean; nx?: boolean; pse36Bits?: number; pk?: boolean } = {},
  ): LevelRule => {
    const pageSize = 2 ** shift;
    const tableRsvd = ps === 'reserved' ? rsvd | (1n << 7n) : rsvd;
    const hugeRsvd = rsvd | hugeExtra;
    return {
      name,
      shift,
      indexBits,
      entrySize,
      ps,
      pageSize,
      rights: extra.rights ?? true,
      nx: extra.nx ?? (opts.nxe && entrySize === 8),
      rsvdLo: lo32(tableRsvd),
      rsvdHi: hi32(tableRsvd),
      hugeRsvdLo: lo32(hugeRsvd),
      hugeRsvdHi: hi32(hugeRsvd),
      leafLoMask: (0xffffffff - (pageSize - 1)) >>> 0,
      addrHiMask: entrySize === 8 ? 0xfffff : 0,
      pse36Bits: extra.pse36Bits ?? 0,
      pk: extra.pk ?? false,
    };
  };

  if (mode === 'none') return [];

  if (mode === '32-bit') {
    // 4 MiB pages: bits (M32-20):13 hold PA bits (M32-1):32 (PSE-36), bits 21:(M32-19) are reserved.
    const m32 = Math.min(M, 40);
    const huge4m = bits(21, 13 + (m32 - 32));
    return [
      make('PD', 22, 10, 4, opts.pse ? 'page' : 'ignored', 0n, huge4m, { pse36Bits: m32 - 32 }),
      make('PT', 12, 10, 4, 'pat', 0n, 0n),
    ];
  }

  // 64-bit entries: address bits at or above MAXPHYADDR are reserved; bit 63 too without NXE.
  const common = (M < 52 ? bits(51, M) : 0n) | (opts.nxe ? 0n : 1n << 63n);
  if (mode === 'PAE') {
    const pae = common | bits(62, 52);
    // PAE PDPTEs: bits 2:1, 8:6 and 63 are reserved as well; they carry no rights. Bit 5 (A) is
    // reserved by the SDM too, but QEMU's TCG sets it in every PDPTE it walks (observed on 7.2), so
    // a guest's loaded tables always have it: it is no fault here, and the lint reports it
    // (`pae-pdpte-accessed`), since a real CPU or KVM rejects it at mov cr3 if a kernel sets it.
    const pdpte = pae | bits(2, 1) | bits(8, 6) | (1n << 63n);
    return [
      make('PDPT', 30, 2, 8, 'reserved', pdpte, 0n, { rights: false, nx: false }),
      make('PD', 21, 9, 8, 'page', pae, bits(20, 13)),
      make('PT', 12, 9, 8, 'pat', pae, 0n),
    ];
  }

  const pk = { pk: true };
  const lower = [
    make('PDPT', 30, 9, 8, opts.gbPages ? 'page' : 'reserved', common, bits(29, 13), pk),
    make('PD', 21, 9, 8, 'page', common, bits(20, 13), pk),
    make('PT', 12, 9, 8, 'pat', common, 0n, pk),
  ];
  const pml4 = make('PML4', 39, 9, 8, 'reserved', common, 0n, pk);
  if (mode === '4-level') return [pml4, ...lower];
  return [make('PML5', 48, 9, 8, 'reserved', common, 0n, pk), pml4, ...lower];
}

/** The index of `va` at `level`. */
export function levelIndex(level: LevelRule, va: bigint): number {
  return Number((va >> BigInt(level.shift)) & BigInt((1 << level.indexBits) - 1));
}
