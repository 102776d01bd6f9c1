/**
 * Builds page tables in a {@link SparseMemory}, the way a kernel or a loader would: map pages of
 * any size the mode allows, and reach any entry to corrupt it on purpose (tests, scenarios,
 * benchmarks, the demo image).
 */
import { levelIndex, levelRules, type LevelName, type LevelRule } from '../paging/levels.js';
import type { PagingMode } from '../paging/mode.js';
import type { FrameAllocator, SparseMemory } from './sparseMemory.js';

/** Rights and attributes of a mapping. Defaults: writable, supervisor, executable, not global. */
export interface MapFlags {
  write?: boolean;
  user?: boolean;
  nx?: boolean;
  global?: boolean;
  pwt?: boolean;
  pcd?: boolean;
  pat?: boolean;
  accessed?: boolean;
  dirty?: boolean;
  /** Protection key (4- and 5-level paging). */
  pkey?: number;
  /** Raw bits ORed into the leaf entry as they are (to set reserved or ignored bits). */
  extra?: bigint;
}

/** Flags of the non-leaf entries the builder creates. Default: present, writable, user, executable. */
export interface TableFlags {
  write?: boolean;
  user?: boolean;
  nx?: boolean;
}

/** Page tables of one address space under construction. */
export class PageTables {
  /** The levels of the mode, top first. */
  readonly levels: readonly LevelRule[];
  /** Physical address of the top table. */
  readonly root: number;

  constructor(
    readonly mem: SparseMemory,
    readonly mode: Exclude<PagingMode, 'none'>,
    private readonly alloc: FrameAllocator,
    private readonly tableFlags: TableFlags = {},
    root?: number,
  ) {
    this.levels = levelRules(mode, { maxPhyAddr: 52, nxe: true, pse: true, gbPages: true });
    this.root = root ?? alloc.alloc();
  }

  /** The CR3 value that loads these tables (no PCID, PWT or PCD). */
  get cr3(): bigint {
    return BigInt(this.root);
  }

  /** Maps one page of `size` bytes (4 KiB, 2 MiB, 4 MiB in 32-bit paging, or 1 GiB) at `va` to `pa`. */
  map(va: bigint, pa: bigint | number, size: number, flags: MapFlags = {}): void {
    const depth = this.levels.findIndex((l) => l.pageSize === size && l.ps !== 'reserved');
    if (depth < 0) throw new RangeError(`${this.mode} paging has no ${size}-byte pages`);
    const rule = this.levels[depth]!;
    const paNum = BigInt(pa);
    if (va % BigInt(size) !== 0n || paNum % BigInt(size) !== 0n) {
      throw new RangeError(`va 0x${va.toString(16)} and pa 0x${paNum.toString(16)} must be ${size}-byte aligned`);
    }
    if (rule.entrySize === 4) {
      // 32-bit entries hold 32 address bits; a 4 MiB page reaches 40 bits through PSE-36.
      const limit = rule.ps === 'page' && rule.pse36Bits > 0 ? 1n << 40n : 1n << 32n;
      if (paNum >= limit) throw new RangeError(`pa 0x${paNum.toString(16)} does not fit a 32-bit paging entry of this size`);
    }
    const entry = this.entrySlot(va, depth, true)!;
    this.writeEntry(entry, rule, this.leafValue(paNum, rule, flags));
  }

  /** Maps `length` bytes at `va` to `pa` in pages of `pageSize`. */
  mapRange(va: bigint, pa: bigint | number, length: number, pageSize: number, flags: MapFlags = {}): void {
    const step = BigInt(pageSize);
    for (let off = 0n; off < BigInt(length); off += step) this.map(va + off, BigInt(pa) + off, pageSize, flags);
  }

  /** Physical address of the entry for `va` at `level`, creating the tables above it; null if a huge page is in the way. */
  entryAddress(va: bigint, level: LevelName, create = true): number | null {
    const depth = this.levels.findIndex((l) => l.name === level);
    if (depth < 0) throw new RangeError(`${this.mode} paging has no ${level} level`);
    return this.entrySlot(va, depth, create);
  }

  /** Reads the raw entry for `va` at `level` (0n when the tables above do not exist). */
  getEntry(va: bigint, level: LevelName): bigint {
    const at = this.entryAddress(va, level, false);
    if (at === null) return 0n;
    const rule = this.rule(level);
    return rule.entrySize === 8 ? this.mem.read64(at) : BigInt(this.mem.read32(at));
  }

  /** Overwrites the raw entry for `va` at `level` (creating the tables above it). */
  setEntry(va: bigint, level: LevelName, raw: bigint): void {
    const at = this.entryAddress(va, level, true);
    if (at === null) throw new RangeError(`a huge page above ${level} maps 0x${va.toString(16)}`);
    this.writeEntry(at, this.rule(level), raw);
  }

  /** Makes the entry for `va` at `level` point at the table at `table` (sharing or looping tables). */
  linkTable(va: bigint, level: LevelName, table: number): void {
    this.setEntry(va, level, BigInt(table) | this.tableBits(this.rule(level)));
  }

  /** The rule of `level` in this mode. */
  rule(level: LevelName): LevelRule {
    const r = this.levels.find((l) => l.name === level);
    if (!r) throw new RangeError(`${this.mode} paging has no ${level} level`);
    return r;
  }

  private entrySlot(va: bigint, depth: number, create: boolean): number | null {
    let table = this.root;
    for (let d = 0; d < depth; d++) {
      const rule = this.levels[d]!;
      const at = table + levelIndex(rule, va) * rule.entrySize;
      const raw = rule.entrySize === 8 ? this.mem.read64(at) : BigInt(this.mem.read32(at));
      if ((raw & 1n) === 0n) {
        if (!create) return null;
        const t = this.alloc.alloc();
        this.writeEntry(at, rule, BigInt(t) | this.tableBits(rule));
        table = t;
      } else {
        if (rule.ps === 'page' && (raw & 0x80n) !== 0n) return null;
        table = Number(raw & 0x000ffffffffff000n);
      }
    }
    return table + levelIndex(this.levels[depth]!, va) * this.levels[depth]!.entrySize;
  }

  private tableBits(rule: LevelRule): bigint {
    if (!rule.rights) return 1n; // PAE PDPTE: P only
    const f = this.tableFlags;
    let v = 1n;
    if (f.write ?? true) v |= 2n;
    if (f.user ?? true) v |= 4n;
    if (f.nx && rule.entrySize === 8) v |= 1n << 63n;
    return v;
  }

  private leafValue(pa: bigint, rule: LevelRule, f: MapFlags): bigint {
    let v = 1n;
    if (f.write ?? true) v |= 2n;
    if (f.user) v |= 4n;
    if (f.pwt) v |= 8n;
    if (f.pcd) v |= 0x10n;
    if (f.accessed) v |= 0x20n;
    if (f.dirty) v |= 0x40n;
    if (f.global) v |= 0x100n;
    const huge = rule.ps === 'page';
    if (huge) v |= 0x80n;
    if (f.pat) v |= huge ? 0x1000n : 0x80n;
    if (f.nx) {
      if (rule.entrySize !== 8) throw new RangeError('32-bit paging has no NX bit');
      v |= 1n << 63n;
    }
    if (f.pkey !== undefined) v |= BigInt(f.pkey & 0xf) << 59n;
    if (rule.pse36Bits > 0 && huge) {
      // 32-bit 4 MiB page: PA bits 39:32 go to entry bits 20:13 (PSE-36).
      v |= (pa & 0xffc00000n) | ((pa >> 32n) << 13n);
    } else {
      v |= pa;
    }
    return v | (f.extra ?? 0n);
  }

  private writeEntry(at: number, rule: LevelRule, raw: bigint): void {
    if (rule.entrySize === 8) this.mem.write64(at, raw);
    else this.mem.write32(at, Number(raw & 0xffffffffn));
  }
}
