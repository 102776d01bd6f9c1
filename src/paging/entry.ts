/**
 * Paging-structure entries: their bits, and decoding an entry at a level into plain data.
 * An entry stays its raw value; every decode is a pure function of (raw, level rule).
 *
 * The `*Of` helpers work on the entry's two 32-bit halves (`lo` = bits 31:0, `hi` = bits 63:32)
 * so that the map's inner loop stays in small integers. Physical addresses fit a JS number
 * exactly (they have at most 52 bits).
 */
import type { LevelName, LevelRule } from './levels.js';

/** Entry bits in the low word. */
export const BIT = {
  /** Present. */
  P: 0x1,
  /** Read/write: 0 makes the region read-only (for user accesses, and supervisor ones when CR0.WP=1). */
  RW: 0x2,
  /** User/supervisor: 1 lets CPL 3 access the region. */
  US: 0x4,
  /** Page-level write-through. */
  PWT: 0x8,
  /** Page-level cache disable. */
  PCD: 0x10,
  /** Accessed: set by the CPU when the entry is used (never by a pagewalk walk). */
  A: 0x20,
  /** Dirty: leaf only; set by the CPU on a write to the page. Ignored in non-leaf entries. */
  D: 0x40,
  /** Page size in a PDPTE or PDE (a huge page); reserved in PML5E/PML4E; PAT in a PTE. */
  PS: 0x80,
  /** Global: leaf only, with CR4.PGE; kept in the TLB across CR3 loads. Ignored in non-leaf entries. */
  G: 0x100,
  /** PAT for a huge page (bit 12); in a PTE, PAT is bit 7. */
  PAT_HUGE: 0x1000,
} as const;

/** Bit 63 (XD / NX) in the high word. */
export const XD_HI = 0x80000000;
/** Protection key, bits 62:59 of a leaf, in the high word. */
export const PK_SHIFT_HI = 27;

/** The flag names pagewalk prints, in bit order. */
export type EntryFlag = 'P' | 'RW' | 'US' | 'PWT' | 'PCD' | 'A' | 'D' | 'PS' | 'G' | 'PAT' | 'NX';

/** A decoded paging-structure entry. */
export interface DecodedEntry {
  readonly level: LevelName;
  readonly raw: bigint;
  readonly present: boolean;
  /** Present and mapping a page here (a PTE, or PS=1 where PS means a page). */
  readonly leaf: boolean;
  /** The page size when `leaf`, else null. */
  readonly pageSize: number | null;
  /** The next table's address, or the page's base when `leaf`. Decoded even when not present. */
  readonly address: bigint;
  /** The meaningful flags that are set, in bit order. */
  readonly flags: readonly EntryFlag[];
  /** Reserved bits that are set (always 0n for a non-present entry: the CPU checks none there). */
  readonly reserved: bigint;
  /** Protection key (bits 62:59) of a present 4- or 5-level leaf (used with CR4.PKE/PKS), else null. */
  readonly protectionKey: number | null;
}

/** True when a present entry with low word `lo` is a leaf at `rule`. */
export function isLeafOf(lo: number, rule: LevelRule): boolean {
  return rule.ps === 'pat' || (rule.ps === 'page' && (lo & BIT.PS) !== 0);
}

/** Reserved bits set in a present entry, low word. */
export function reservedLoOf(lo: number, rule: LevelRule, leaf: boolean): number {
  return (lo & (leaf && rule.ps === 'page' ? rule.hugeRsvdLo : rule.rsvdLo)) >>> 0;
}

/** Reserved bits set in a present entry, high word. */
export function reservedHiOf(hi: number, rule: LevelRule, leaf: boolean): number {
  return (hi & (leaf && rule.ps === 'page' ? rule.hugeRsvdHi : rule.rsvdHi)) >>> 0;
}

/** Physical address of the next table an entry references. */
export function tableAddressOf(lo: number, hi: number, rule: LevelRule): number {
  return (hi & rule.addrHiMask) * 0x100000000 + ((lo & 0xfffff000) >>> 0);
}

/** Physical base of the page a leaf entry maps (PSE-36 included for 32-bit 4 MiB pages). */
export function pageBaseOf(lo: number, hi: number, rule: LevelRule): number {
  const low = (lo & rule.leafLoMask) >>> 0;
  if (rule.pse36Bits > 0 && rule.ps === 'page') {
    return ((lo >>> 13) & ((1 << rule.pse36Bits) - 1)) * 0x100000000 + low;
  }
  return (hi & rule.addrHiMask) * 0x100000000 + low;
}

/** Splits a raw entry into its low and high 32-bit words. */
export function splitEntry(raw: bigint): [lo: number, hi: number] {
  return [Number(raw & 0xffffffffn), Number((raw >> 32n) & 0xffffffffn)];
}

/** Decodes `raw` as an entry at the level `rule` describes. */
export function decodeEntry(raw: bigint, rule: LevelRule): DecodedEntry {
  const [lo, hi] = splitEntry(raw);
  const present = (lo & BIT.P) !== 0;
  const leafShape = isLeafOf(lo, rule);
  const leaf = present && leafShape;
  const reserved = present
    ? (BigInt(reservedHiOf(hi, rule, leafShape)) << 32n) | BigInt(reservedLoOf(lo, rule, leafShape))
    : 0n;
  const flags: EntryFlag[] = [];
  const rsvdLo = leafShape && rule.ps === 'page' ? rule.hugeRsvdLo : rule.rsvdLo;
  const named = (bit: number, name: EntryFlag): void => {
    if ((lo & bit) !== 0 && (rsvdLo & bit) === 0) flags.push(name);
  };
  named(BIT.P, 'P');
  named(BIT.RW, 'RW');
  named(BIT.US, 'US');
  named(BIT.PWT, 'PWT');
  named(BIT.PCD, 'PCD');
  named(BIT.A, 'A');
  if (leafShape) named(BIT.D, 'D');
  if (rule.ps === 'pat') named(BIT.PS, 'PAT');
  else if (rule.ps !== 'ignored' && (lo & BIT.PS) !== 0) flags.push('PS');
  if (leafShape) named(BIT.G, 'G');
  if (leafShape && rule.ps === 'page') named(BIT.PAT_HUGE, 'PAT');
  if (rule.nx && (hi & XD_HI) !== 0) flags.push('NX');
  const address = leafShape ? pageBaseOf(lo, hi, rule) : tableAddressOf(lo, hi, rule);
  return {
    level: rule.name,
    raw,
    present,
    leaf,
    pageSize: leaf ? rule.pageSize : null,
    address: BigInt(address),
    flags,
    reserved,
    protectionKey: leaf && rule.pk ? (hi >>> PK_SHIFT_HI) & 0xf : null,
  };
}
