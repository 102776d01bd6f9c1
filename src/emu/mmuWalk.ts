/**
 * The emulator's own page walk for 4- and 5-level paging (Intel SDM vol. 3, 4.5): one loop over a
 * table of levels that reads each entry from physical memory, stops at the first not-present
 * entry or reserved bit, and accumulates R/W and U/S (AND) and XD (OR). It has no side effects:
 * the MMU sets A/D bits afterwards, and the debugger uses it as it is.
 */
import type { LevelName, PagingControl } from './mmuBits.js';
import type { PhysicalMemory } from './physMemory.js';

/** One entry read during a walk: where it is and its raw value as two 32-bit words. */
export interface WalkStep {
  level: LevelName;
  /** Physical address of the entry. */
  address: number;
  lo: number;
  hi: number;
}

/** A walk that reached a leaf. Rights are effective over all levels, before CR0/CR4 rules apply. */
export interface Translation {
  ok: true;
  /** Physical address of the 4 KiB page holding the linear address. */
  frame: number;
  /** Physical address of the byte. */
  pa: number;
  /** Size of the page the leaf maps. */
  pageSize: number;
  /** The level of the leaf entry. */
  level: LevelName;
  /** R/W=1 at every level. */
  write: boolean;
  /** U/S=1 at every level. */
  user: boolean;
  /** XD=1 at some level (it only counts with EFER.NXE=1; without it the bit is reserved). */
  xd: boolean;
  /** The leaf's protection key (bits 62:59). */
  pkey: number;
  /** The leaf's G bit. */
  global: boolean;
  /** The leaf's D bit. */
  dirty: boolean;
  steps: WalkStep[];
}

/** Why a walk stopped before a leaf. */
export type WalkFailureReason = 'not-present' | 'reserved' | 'unsupported-mode';

/** A walk that stopped: at a not-present entry, at a reserved bit, or in a paging mode the emulator does not model. */
export interface WalkFailure {
  ok: false;
  reason: WalkFailureReason;
  /** The level whose entry stopped the walk (the top level for 'unsupported-mode'). */
  level: LevelName;
  steps: WalkStep[];
}

interface Level {
  name: LevelName;
  shift: number;
  /** What PS=1 means here: a page of 2^shift bytes, a reserved bit, or nothing (PT: bit 7 is PAT). */
  ps: 'page' | 'reserved' | 'pat';
}

const LEVELS_5: readonly Level[] = [
  { name: 'PML5', shift: 48, ps: 'reserved' },
  { name: 'PML4', shift: 39, ps: 'reserved' },
  { name: 'PDPT', shift: 30, ps: 'page' },
  { name: 'PD', shift: 21, ps: 'page' },
  { name: 'PT', shift: 12, ps: 'pat' },
];
const LEVELS_4 = LEVELS_5.slice(1);

/** The 9-bit table index of the linear address (as two words) at a level's shift. */
function indexAt(lo: number, hi: number, shift: number): number {
  if (shift >= 32) return (hi >>> (shift - 32)) & 511;
  if (shift === 30) return ((lo >>> 30) | (hi << 2)) & 511;
  return (lo >>> shift) & 511;
}

/** Reserved bits of the high word of any present entry: address bits 51:MAXPHYADDR, and XD without NXE. */
function reservedHigh(ctl: PagingControl): number {
  const m = ctl.maxPhyAddr - 32;
  const addr = m >= 20 ? 0 : (0xfffff >>> m) << m;
  return (addr | (ctl.nxe ? 0 : 0x80000000)) >>> 0;
}

/**
 * Walks the tables under `ctl` for linear address `va` (assumed canonical), reading `mem`.
 * Without paging (CR0.PG=0) the address maps to itself. Modes other than 4- and 5-level paging
 * are reported as 'unsupported-mode'.
 */
export function walk(mem: PhysicalMemory, ctl: PagingControl, va: bigint): Translation | WalkFailure {
  const vaLo = Number(va & 0xffffffffn);
  const vaHi = Number((va >> 32n) & 0xffffffffn);
  if (!ctl.pg) {
    const pa = vaLo;
    return { ok: true, frame: pa - (pa % 4096), pa, pageSize: 4096, level: 'PT', write: true, user: true, xd: false, pkey: 0, global: false, dirty: true, steps: [] };
  }
  const levels = ctl.la57 ? LEVELS_5 : LEVELS_4;
  if (!ctl.pae || !ctl.lma) return { ok: false, reason: 'unsupported-mode', level: levels[0]!.name, steps: [] };

  const rsvdHi = reservedHigh(ctl);
  const steps: WalkStep[] = [];
  let table = ctl.root;
  let write = true;
  let user = true;
  let xd = false;
  for (const level of levels) {
    const address = table + indexAt(vaLo, vaHi, level.shift) * 8;
    const lo = mem.read32(address);
    const hi = mem.read32(address + 4);
    steps.push({ level: level.name, address, lo, hi });
    if ((lo & 1) === 0) return { ok: false, reason: 'not-present', level: level.name, steps };
    const ps = (lo & 0x80) !== 0;
    let rsvdLo = 0;
    if (ps && level.ps === 'reserved') rsvdLo = 0x80;
    else if (ps && level.ps === 'page') {
      if (level.shift === 30 && !ctl.pdpe1gb) rsvdLo = 0x80;
      // The low address bits of a huge page above the PAT bit (12): 29:13 for 1 GiB, 20:13 for 2 MiB.
      else rsvdLo = (2 ** level.shift - 1) & ~0x1fff;
    }
    if ((hi & rsvdHi) !== 0 || (lo & rsvdLo) !== 0) return { ok: false, reason: 'reserved', level: level.name, steps };
    write &&= (lo & 2) !== 0;
    user &&= (lo & 4) !== 0;
    xd ||= (hi & 0x80000000) !== 0;
    const addrHi = (hi & 0xfffff) * 0x100000000;
    if (level.ps === 'pat' || ps) {
      const pageSize = 2 ** level.shift;
      const base = addrHi + ((lo & ~(pageSize - 1) & 0xfffff000) >>> 0);
      const within = level.shift === 12 ? 0 : (vaLo & (pageSize - 1) & 0xfffff000) >>> 0;
      const frame = base + within;
      return {
        ok: true,
        frame,
        pa: frame + (vaLo & 0xfff),
        pageSize,
        level: level.name,
        write,
        user,
        xd,
        pkey: (hi >>> 27) & 0xf,
        global: (lo & 0x100) !== 0,
        dirty: (lo & 0x40) !== 0,
        steps,
      };
    }
    table = addrHi + ((lo & 0xfffff000) >>> 0);
  }
  // Unreachable: the PT level always returns.
  throw new Error('page walk ran past the PT level');
}
