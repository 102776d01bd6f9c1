/**
 * Depth-first traversal of a whole paging-structure tree, in ascending linear-address order.
 * The map, the lint and everything that looks at an address space as a whole build on it.
 *
 * It is a task (see `memory.ts`): before scanning a table's entries it requests, in one batch, the
 * frames of every table those entries reference, so an asynchronous target fetches a level's
 * tables in one pipelined round. It needs memory for at most one batch per level.
 *
 * Cycles: the depth is bounded by the number of levels, so the traversal always ends; but a table
 * reached again from below itself can make the tree huge (512 entries that point at their own
 * table map 512^4 pages). Such edges are reported to the visitor as `cycle`, and the visitor
 * decides whether to descend.
 */
import { BIT, XD_HI, isLeafOf, reservedHiOf, reservedLoOf, tableAddressOf } from './entry.js';
import type { LevelRule } from './levels.js';
import { FRAME_SIZE, type FrameData, type PagingTask } from './memory.js';
import type { PagingContext } from './mode.js';

/** Rights bit: writable at every level so far (R/W ANDed). */
export const R_WRITE = 1;
/** Rights bit: user-accessible at every level so far (U/S ANDed). */
export const R_USER = 2;
/** Rights bit: some level so far has XD set (with EFER.NXE; ORed). */
export const R_NX = 4;
/** Rights before the first level: writable, user, executable. */
export const R_ALL = R_WRITE | R_USER;

/** What a table reference is, seen from the path that reaches it. */
export type Cycle =
  /** Not a cycle. */
  | null
  /** The top-level table references itself: the classic recursive (self-map) slot. */
  | 'recursive'
  /** Any other reference to a table already on the path: a loop. */
  | 'loop';

/** One present entry, as the traversal hands it to the visitor. */
export interface EntryVisit {
  readonly rule: LevelRule;
  /** 0 for the top level. */
  readonly depth: number;
  /** Physical address of the table holding the entry. */
  readonly table: number;
  readonly index: number;
  readonly lo: number;
  readonly hi: number;
  /** First 4 KiB page number (linear address >> 12, not sign-extended) this entry covers. */
  readonly vpn: number;
  /** Rights of the levels above, as R_* bits. */
  readonly above: number;
  /** Rights including this entry (R_* bits); equal to `above` where the level carries no rights. */
  readonly rights: number;
  /** True when a leaf maps a page here. */
  readonly leaf: boolean;
  /** Reserved bits set (low and high word); a reserved-bit entry maps nothing and is not descended. */
  readonly rsvdLo: number;
  readonly rsvdHi: number;
  /** For a table reference: its address, and whether following it closes a cycle. */
  readonly child: number | null;
  readonly cycle: Cycle;
  /**
   * Physical addresses of the tables from the root down to (and including) `table`. The traversal
   * reuses this array: it is valid during the visitor call only; copy it to keep it.
   */
  readonly path: readonly number[];
}

/** The visitor's answers. */
export interface TreeVisitor {
  /** Called for each present entry in VA order. Return true to descend into `child`. */
  entry(e: EntryVisit): boolean;
  /** Called when a referenced table cannot be read (outside memory). */
  unreadable?(e: EntryVisit): void;
  /** Called when the top-level table itself cannot be read; nothing else is visited. */
  rootUnreadable?(root: number): void;
  /** Called after a table's entries have all been visited. */
  leaveTable?(table: number, depth: number): void;
}

/** Limits of a traversal to a VA window, as page numbers (inclusive). */
export interface VpnWindow {
  readonly first: number;
  readonly last: number;
}

/** Number of 4 KiB pages one entry covers at each level. */
function pagesPer(rule: LevelRule): number {
  return rule.pageSize / FRAME_SIZE;
}

/**
 * Traverses the tree of `ctx` (or of `root` at `ctx`'s mode), calling `visitor` for every present
 * entry whose range intersects `window`. Yields a checkpoint (an empty request) after each table
 * so a consumer can drain what the visitor produced.
 */
export function* traverseTask(
  ctx: PagingContext,
  visitor: TreeVisitor,
  window: VpnWindow | null = null,
): PagingTask<void> {
  const levels = ctx.levels;
  if (levels.length === 0) return;
  const root = ctx.root;
  const rootFrameAddr = root - (root % FRAME_SIZE);
  const [rootFrame] = yield { frames: [rootFrameAddr] };
  if (!rootFrame) {
    visitor.rootUnreadable?.(root);
    return;
  }
  const path: number[] = [];
  yield* scan(rootFrame, root, 0, 0, R_ALL);

  function* scan(frame: DataView, table: number, depth: number, vpnBase: number, above: number): PagingTask<void> {
    const rule = levels[depth]!;
    const size = rule.entrySize;
    const count = 1 << rule.indexBits;
    const span = pagesPer(rule);
    const offset0 = table % FRAME_SIZE;
    path.push(table);

    // First pass: which entries intersect the window, and which child tables to prefetch.
    let firstIdx = 0;
    let lastIdx = count - 1;
    if (window) {
      firstIdx = Math.max(0, Math.floor((window.first - vpnBase) / span));
      lastIdx = Math.min(count - 1, Math.floor((window.last - vpnBase) / span));
    }
    const childFrames: number[] = [];
    const last = depth === levels.length - 1;
    if (!last) {
      for (let i = firstIdx; i <= lastIdx; i++) {
        const lo = frame.getUint32(offset0 + i * size, true);
        if ((lo & BIT.P) === 0 || isLeafOf(lo, rule)) continue;
        const hi = size === 8 ? frame.getUint32(offset0 + i * size + 4, true) : 0;
        if (reservedLoOf(lo, rule, false) !== 0 || reservedHiOf(hi, rule, false) !== 0) continue;
        const child = tableAddressOf(lo, hi, rule);
        childFrames.push(child - (child % FRAME_SIZE));
      }
    }
    let children: readonly FrameData[] = [];
    let childIndex: Map<number, number> | null = null;
    if (childFrames.length > 0) {
      const unique = [...new Set(childFrames)];
      children = yield { frames: unique };
      childIndex = new Map(unique.map((f, i) => [f, i]));
    }

    for (let i = firstIdx; i <= lastIdx; i++) {
      const lo = frame.getUint32(offset0 + i * size, true);
      if ((lo & BIT.P) === 0) continue;
      const hi = size === 8 ? frame.getUint32(offset0 + i * size + 4, true) : 0;
      const leaf = isLeafOf(lo, rule);
      const rsvdLo = reservedLoOf(lo, rule, leaf);
      const rsvdHi = reservedHiOf(hi, rule, leaf);
      let rights = above;
      if (rule.rights) {
        if ((lo & BIT.RW) === 0) rights &= ~R_WRITE;
        if ((lo & BIT.US) === 0) rights &= ~R_USER;
        if (rule.nx && (hi & XD_HI) !== 0) rights |= R_NX;
      }
      const child = !leaf && !last && rsvdLo === 0 && rsvdHi === 0 ? tableAddressOf(lo, hi, rule) : null;
      const cycle = child === null ? null : cycleOf(child, path);
      const visit: EntryVisit = {
        rule,
        depth,
        table,
        index: i,
        lo,
        hi,
        vpn: vpnBase + i * span,
        above,
        rights,
        leaf,
        rsvdLo,
        rsvdHi,
        child,
        cycle,
        path,
      };
      const descend = visitor.entry(visit);
      if (descend && child !== null) {
        const childFrame = children[childIndex!.get(child - (child % FRAME_SIZE))!] ?? null;
        if (!childFrame) {
          visitor.unreadable?.(visit);
          continue;
        }
        yield* scan(childFrame, child, depth + 1, vpnBase + i * span, rights);
      }
    }
    path.pop();
    visitor.leaveTable?.(table, depth);
    yield { frames: [] };
  }
}

/**
 * Classifies a reference to `child` from the table at the end of `path`: the root referenced
 * from a chain of root tables is a recursive slot; any other table already on the path is a loop.
 */
function cycleOf(child: number, path: readonly number[]): Cycle {
  if (!path.includes(child)) return null;
  return child === path[0] && path.every((t) => t === child) ? 'recursive' : 'loop';
}

/**
 * The linear address of a page number's first byte: sign-extended to a canonical 64-bit address in
 * long mode (48 or 57 bits), zero-extended for the 32-bit linear addresses of 32-bit and PAE paging.
 */
export function vpnToVa(vpn: number, vaBits: number): bigint {
  const va = BigInt(vpn) << 12n;
  if (vaBits <= 32 || vaBits >= 64) return va;
  const sign = 1n << BigInt(vaBits - 1);
  return va & sign ? va | (((1n << 64n) - 1n) ^ ((1n << BigInt(vaBits)) - 1n)) : va;
}

/** The page number of a linear address (bits above the width dropped). */
export function vaToVpn(va: bigint, vaBits: number): number {
  return Number((va & ((1n << BigInt(vaBits)) - 1n)) >> 12n);
}
