/**
 * The map of an address space: every mapping of a paging context, coalesced into ranges that are
 * contiguous in VA and PA with equal rights, global bit, protection key and page size, in ascending
 * VA order. It is streamed: ranges leave at every table checkpoint of the traversal, so a million
 * leaves never become a million objects at once, and the per-leaf work stays in page numbers and
 * 32-bit words (a BigInt is made only when a range is emitted).
 *
 * What the map lists is what a walk finds: entries with reserved bits map nothing (the CPU faults
 * on them), rights are R/W and U/S ANDed and XD ORed over the levels, and a recursive slot (the top
 * table referencing itself) maps the tables themselves. Loops in garbage tables are followed up to
 * a budget of leaves, then cut and reported.
 */
import { BIT, PK_SHIFT_HI, pageBaseOf } from './entry.js';
import type { LevelName } from './levels.js';
import { FRAME_SIZE, type AsyncPhysMemory, type FrameData, type FrameRequest, type PhysMemory } from './memory.js';
import type { PagingContext } from './mode.js';
import { R_NX, R_USER, R_WRITE, traverseTask, type EntryVisit, type TreeVisitor, type VpnWindow } from './tree.js';

/** One coalesced run of mappings. */
export interface MapRange {
  /** Canonical start (sign-extended in long mode). */
  va: bigint;
  pa: bigint;
  /** Bytes. */
  size: bigint;
  /** 4096, 2097152, 4194304 (32-bit paging) or 1073741824. */
  pageSize: number;
  write: boolean;
  user: boolean;
  execute: boolean;
  global: boolean;
  /** Protection key of the leaves (4- and 5-level paging), else null. */
  protectionKey: number | null;
}

/**
 * Limits of a map. Ranges are clipped to [from, to]; a bound in the non-canonical hole or past the
 * mode's linear addresses moves inward to the nearest address the mode has.
 */
export interface MapOptions {
  /** First linear address to list (canonical). */
  from?: bigint;
  /** Last linear address to list, inclusive (canonical). */
  to?: bigint;
  /** How many leaves to list beneath cyclic references before cutting them off (default 1 << 22). */
  maxCyclicLeaves?: number;
}

/** Where a subtree the map could not list hangs: the entry's address and the table it references. */
export interface MapPlace {
  /** First linear address the referencing entry covers (within the window). */
  va: bigint;
  /** Physical address of the referenced table. */
  table: bigint;
  /** The level that table would have been read as. */
  level: LevelName;
}

/** What a map found besides its ranges. */
export interface MapSummary {
  /** Leaf entries listed. */
  leaves: number;
  /** Ranges emitted. */
  ranges: number;
  /** Subtrees not listed because they are reached through a loop and the budget ran out. */
  truncated: MapPlace[];
  /** Tables referenced but not readable (outside memory). */
  unreadable: MapPlace[];
  /** Present entries skipped because reserved bits are set (they map nothing). */
  reservedEntries: number;
}

/** The default budget of leaves beneath cyclic references. */
export const DEFAULT_MAX_CYCLIC_LEAVES = 1 << 22;

/** Error raised for map options that cannot be honoured; `code` is stable. */
export class MapError extends Error {
  constructor(
    readonly code: 'E_MAP_OPTIONS',
    message: string,
  ) {
    super(message);
    this.name = 'MapError';
  }
}

const NO_FRAMES: readonly FrameData[] = [];
const U64 = (1n << 64n) - 1n;

/**
 * A window over the linear-address space, in "linear index" terms: the address with the sign
 * extension dropped, so that ascending canonical order is ascending index order.
 */
interface Window {
  /** First and last byte, as linear indices. */
  readonly first: bigint;
  readonly last: bigint;
  /** The same as page numbers, for the traversal. */
  readonly pages: VpnWindow;
}

/**
 * The window `opts` asks for, clamped to the addresses the mode has (a bound in the non-canonical
 * hole moves to the nearest canonical address inside the window); null when nothing is left.
 */
function windowOf(ctx: PagingContext, opts: MapOptions): Window | null {
  const width = BigInt(ctx.vaBits);
  const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
  const end = (1n << width) - 1n;
  const half = 1n << (width - 1n);
  const indexOf = (va: bigint, bound: 'from' | 'to'): bigint => {
    if (va < 0n) return bound === 'from' ? 0n : -1n;
    if (va > U64) return end + (bound === 'from' ? 1n : 0n);
    if (!longMode) return va > end ? end + (bound === 'from' ? 1n : 0n) : va;
    if (va < half) return va;
    const highStart = (1n << 64n) - half;
    if (va >= highStart) return va - highStart + half;
    return bound === 'from' ? half : half - 1n;
  };
  const first = opts.from === undefined ? 0n : indexOf(opts.from, 'from');
  const last = opts.to === undefined ? end : indexOf(opts.to, 'to');
  if (first > last) return null;
  return { first, last, pages: { first: Number(first >> 12n), last: Number(last >> 12n) } };
}

/** The canonical address of a linear index. */
function vaOfIndex(index: bigint, vaBits: number): bigint {
  if (vaBits <= 32) return index;
  const half = 1n << BigInt(vaBits - 1);
  return index < half ? index : index - (1n << BigInt(vaBits)) + (1n << 64n);
}

/**
 * Collects leaves into ranges and the summary, as the traversal's visitor. Everything per leaf is a
 * small integer: page numbers, pages per leaf, and an attribute key (rights, G, protection key).
 */
class MapBuilder implements TreeVisitor {
  leaves = 0;
  ranges = 0;
  reservedEntries = 0;
  readonly truncated: MapPlace[] = [];
  readonly unreadableTables: MapPlace[] = [];
  /** Ranges finished and not yet handed out. */
  out: MapRange[] = [];

  private readonly maxCyclicLeaves: number;
  private cyclicLeaves = 0;
  /** underCycle[d]: the table being scanned at depth d was reached through a cyclic reference. */
  private readonly underCycle: boolean[];
  /** Page number of the first high-half page in long mode: ranges never run across the hole. */
  private readonly highHalf: number;
  /** What turns a high-half linear index into its canonical address: 2^64 - 2^vaBits. */
  private readonly highOffset: bigint;
  /** The last truncation, to fold a run of cut edges to the same table into one report. */
  private lastCut: { table: number; depth: number; nextVpn: number } | null = null;

  // The open range: [startVpn, endVpn) mapped to startPpn.., `span` pages per leaf, attributes `key`.
  private open = false;
  private startVpn = 0;
  private endVpn = 0;
  private startPpn = 0;
  private endPpn = 0;
  private span = 0;
  private key = 0;

  constructor(
    private readonly ctx: PagingContext,
    private readonly window: Window,
    opts: MapOptions,
  ) {
    this.maxCyclicLeaves = opts.maxCyclicLeaves ?? DEFAULT_MAX_CYCLIC_LEAVES;
    this.underCycle = new Array<boolean>(ctx.levels.length + 1).fill(false);
    const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
    this.highHalf = longMode ? 2 ** (ctx.vaBits - 13) : -1;
    this.highOffset = (1n << 64n) - (1n << BigInt(ctx.vaBits));
  }

  entry(e: EntryVisit): boolean {
    if (e.rsvdLo !== 0 || e.rsvdHi !== 0) {
      this.reservedEntries++;
      return false;
    }
    const d = e.depth;
    if (e.leaf) {
      this.leaves++;
      if (this.underCycle[d]) this.cyclicLeaves++;
      const pk = e.rule.pk ? ((e.hi >>> PK_SHIFT_HI) & 0xf) + 1 : 0;
      const key = e.rights | ((e.lo & BIT.G) !== 0 ? 8 : 0) | (pk << 4);
      this.addLeaf(e.vpn, e.rule.pageSize / FRAME_SIZE, pageBaseOf(e.lo, e.hi, e.rule) / FRAME_SIZE, key);
      return false;
    }
    if (e.child === null) return false;
    if (e.cycle !== null) {
      if (this.cyclicLeaves >= this.maxCyclicLeaves) {
        this.cut(e);
        return false;
      }
      this.underCycle[d + 1] = true;
    } else {
      this.underCycle[d + 1] = this.underCycle[d]!;
    }
    return true;
  }

  unreadable(e: EntryVisit): void {
    this.unreadableTables.push(this.place(e.vpn, e.child ?? 0, e.depth + 1));
  }

  rootUnreadable(root: number): void {
    this.unreadableTables.push(this.place(0, root, 0));
  }

  /** Closes the open range (at the end of the map). */
  finish(): void {
    if (this.open) this.emit();
  }

  /** The summary so far. */
  summary(): MapSummary {
    return {
      leaves: this.leaves,
      ranges: this.ranges,
      truncated: this.truncated,
      unreadable: this.unreadableTables,
      reservedEntries: this.reservedEntries,
    };
  }

  /** Paging off: one identity range over the 32-bit linear space (as a walk translates it). */
  identity(): void {
    this.open = true;
    this.startVpn = 0;
    this.startPpn = 0;
    this.span = 1;
    this.endVpn = this.endPpn = 2 ** 20;
    this.key = R_WRITE | R_USER;
    this.emit();
  }

  private addLeaf(vpn: number, span: number, ppn: number, key: number): void {
    if (this.open && vpn === this.endVpn && ppn === this.endPpn && key === this.key && span === this.span && vpn !== this.highHalf) {
      this.endVpn += span;
      this.endPpn += span;
      return;
    }
    if (this.open) this.emit();
    this.open = true;
    this.startVpn = vpn;
    this.endVpn = vpn + span;
    this.startPpn = ppn;
    this.endPpn = ppn + span;
    this.span = span;
    this.key = key;
  }

  /**
   * Turns the open range into a MapRange, clipped to the window. Page numbers times 4096 stay exact
   * in a double (the product only shifts the exponent), so only the clipped case needs BigInt math.
   */
  private emit(): void {
    this.open = false;
    const w = this.window;
    let va: bigint;
    let pa: bigint;
    let size: bigint;
    const inside =
      (this.startVpn > w.pages.first || (this.startVpn === w.pages.first && (w.first & 0xfffn) === 0n)) &&
      (this.endVpn - 1 < w.pages.last || (this.endVpn - 1 === w.pages.last && (w.last & 0xfffn) === 0xfffn));
    if (inside) {
      const start = BigInt(this.startVpn * FRAME_SIZE);
      va = this.startVpn < this.highHalf || this.highHalf < 0 ? start : start + this.highOffset;
      pa = BigInt(this.startPpn * FRAME_SIZE);
      size = BigInt((this.endVpn - this.startVpn) * FRAME_SIZE);
    } else {
      let first = BigInt(this.startVpn) << 12n;
      let last = (BigInt(this.endVpn) << 12n) - 1n;
      pa = BigInt(this.startPpn) << 12n;
      if (first < w.first) {
        pa += w.first - first;
        first = w.first;
      }
      if (last > w.last) last = w.last;
      va = vaOfIndex(first, this.ctx.vaBits);
      size = last - first + 1n;
    }
    const key = this.key;
    this.ranges++;
    this.out.push({
      va,
      pa,
      size,
      pageSize: this.span * FRAME_SIZE,
      write: (key & R_WRITE) !== 0,
      user: (key & R_USER) !== 0,
      execute: (key & R_NX) === 0,
      global: (key & 8) !== 0,
      protectionKey: key >>> 4 === 0 ? null : (key >>> 4) - 1,
    });
  }

  /** Records a cyclic reference not followed; a run of them to the same table is one report. */
  private cut(e: EntryVisit): void {
    const span = e.rule.pageSize / FRAME_SIZE;
    const table = e.child ?? 0;
    const last = this.lastCut;
    if (last && last.table === table && last.depth === e.depth + 1 && last.nextVpn === e.vpn) {
      last.nextVpn = e.vpn + span;
      return;
    }
    this.lastCut = { table, depth: e.depth + 1, nextVpn: e.vpn + span };
    this.truncated.push(this.place(e.vpn, table, e.depth + 1));
  }

  private place(vpn: number, table: number, depth: number): MapPlace {
    const index = BigInt(vpn) << 12n;
    const va = vaOfIndex(index < this.window.first ? this.window.first : index, this.ctx.vaBits);
    return { va, table: BigInt(table), level: this.ctx.levels[depth]!.name };
  }
}

/**
 * The map as a task (see `memory.ts`): yields frame requests, which the driver answers, and
 * ranges, in ascending VA order, for which it is resumed with no data. Returns the summary.
 * A CR3 with reserved bits maps nothing (loading it raises #GP), as the walk says. Throws
 * `MapError` (E_MAP_OPTIONS) when `maxCyclicLeaves` is not a whole number ≥ 0.
 */
export function* mapTask(
  ctx: PagingContext,
  opts: MapOptions = {},
): Generator<FrameRequest | MapRange, MapSummary, readonly FrameData[]> {
  const budget = opts.maxCyclicLeaves;
  if (budget !== undefined && !(Number.isSafeInteger(budget) && budget >= 0)) {
    throw new MapError('E_MAP_OPTIONS', `maxCyclicLeaves must be a whole number of leaves, not ${budget}`);
  }
  const window = windowOf(ctx, opts);
  const empty: Window = { first: 0n, last: -1n, pages: { first: 0, last: -1 } };
  const builder = new MapBuilder(ctx, window ?? empty, opts);
  if (window === null || ctx.cr3Reserved !== 0n) return builder.summary();
  if (ctx.mode === 'none') {
    builder.identity();
    yield* builder.out;
    return builder.summary();
  }
  const inner = traverseTask(ctx, builder, window.pages);
  let step = inner.next();
  while (!step.done) {
    if (builder.out.length > 0) {
      const ready = builder.out;
      builder.out = [];
      for (const r of ready) yield r;
    }
    const request = step.value;
    step = inner.next(request.frames.length === 0 ? NO_FRAMES : yield request);
  }
  builder.finish();
  yield* builder.out;
  builder.out = [];
  return builder.summary();
}

/** True when a task's output is a frame request rather than a range. */
function isRequest(v: FrameRequest | MapRange): v is FrameRequest {
  return 'frames' in v;
}

/** Streams the ranges of `ctx` from synchronous memory; returns the summary. See {@link mapTask}. */
export function* mapRanges(mem: PhysMemory, ctx: PagingContext, opts: MapOptions = {}): Generator<MapRange, MapSummary, void> {
  const task = mapTask(ctx, opts);
  try {
    let step = task.next();
    while (!step.done) {
      const v = step.value;
      if (isRequest(v)) {
        step = task.next(v.frames.map((f) => mem.frame(f)));
      } else {
        yield v;
        step = task.next(NO_FRAMES);
      }
    }
    return step.value;
  } finally {
    task.return(undefined as never);
  }
}

/** Streams the ranges of `ctx` from asynchronous memory; returns the summary. See {@link mapTask}. */
export async function* mapRangesAsync(
  mem: AsyncPhysMemory,
  ctx: PagingContext,
  opts: MapOptions = {},
): AsyncGenerator<MapRange, MapSummary, void> {
  const task = mapTask(ctx, opts);
  try {
    let step = task.next();
    while (!step.done) {
      const v = step.value;
      if (isRequest(v)) {
        step = task.next(v.frames.length === 0 ? NO_FRAMES : await mem.frames(v.frames));
      } else {
        yield v;
        step = task.next(NO_FRAMES);
      }
    }
    return step.value;
  } finally {
    task.return(undefined as never);
  }
}
