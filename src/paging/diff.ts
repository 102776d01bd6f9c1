/**
 * The difference between two address spaces: a merge of their two ascending map streams, split
 * wherever either side's ranges begin or end. `now` is the address space inspected, `before` the
 * baseline. Pieces that map identically on both sides are left out; the rest are `added` (only
 * `now` maps them), `removed` (only `before` does) or `changed` (both map, but the PA, the rights,
 * the global bit, the protection key or the page size differ).
 */
import type { AsyncPhysMemory, PhysMemory } from './memory.js';
import { mapRanges, mapRangesAsync, type MapOptions, type MapRange } from './map.js';
import type { PagingContext } from './mode.js';

/**
 * One difference over [va, va + size). `now` and `before` describe what each side maps over exactly
 * that span (clipped to it), or are null where that side maps nothing.
 */
export interface DiffEntry {
  kind: 'added' | 'removed' | 'changed';
  va: bigint;
  size: bigint;
  now: MapRange | null;
  before: MapRange | null;
}

/** A range and how far the merge has consumed it. */
interface Cursor {
  readonly range: MapRange;
  /** The next unconsumed byte. */
  pos: bigint;
  /** One past the last byte. */
  readonly end: bigint;
}

/** True when two ranges give the same rights, attributes and page size. */
function sameAttributes(a: MapRange, b: MapRange): boolean {
  return (
    a.write === b.write &&
    a.user === b.user &&
    a.execute === b.execute &&
    a.global === b.global &&
    a.protectionKey === b.protectionKey &&
    a.pageSize === b.pageSize
  );
}

/** The part of `c`'s range over [from, to). */
function clip(c: Cursor, from: bigint, to: bigint): MapRange {
  const r = c.range;
  if (from === r.va && to - from === r.size) return r;
  return { ...r, va: from, pa: r.pa + (from - r.va), size: to - from };
}

/** True when `b` continues `a` without a seam: the next VA and PA, the same attributes. */
function continues(a: MapRange | null, b: MapRange | null): boolean {
  if (a === null || b === null) return a === b;
  return a.va + a.size === b.va && a.pa + a.size === b.pa && sameAttributes(a, b);
}

/** `a` extended by `b` (which continues it). */
function join(a: MapRange | null, b: MapRange | null): MapRange | null {
  return a === null || b === null ? null : { ...a, size: a.size + b.size };
}

/**
 * The merge itself, fed one range at a time from each side: the drivers ask `wants*` which side
 * needs its next range, feed it (null at the end of a stream), then call `step` for the next entry.
 * Adjacent pieces of the same kind are folded into one entry when each side continues seamlessly
 * (next VA and PA, same attributes), so an entry's `now` and `before` stay exact single ranges.
 */
class Differ {
  private now: Cursor | null = null;
  private before: Cursor | null = null;
  private nowDone = false;
  private beforeDone = false;
  private pending: DiffEntry | null = null;

  /** The `now` side needs its next range. */
  get wantsNow(): boolean {
    return this.now === null && !this.nowDone;
  }

  /** The `before` side needs its next range. */
  get wantsBefore(): boolean {
    return this.before === null && !this.beforeDone;
  }

  /** Both streams are consumed and the last entry handed out. */
  get done(): boolean {
    return this.now === null && this.before === null && this.nowDone && this.beforeDone && this.pending === null;
  }

  feedNow(r: MapRange | null): void {
    if (r === null) this.nowDone = true;
    else this.now = { range: r, pos: r.va, end: r.va + r.size };
  }

  feedBefore(r: MapRange | null): void {
    if (r === null) this.beforeDone = true;
    else this.before = { range: r, pos: r.va, end: r.va + r.size };
  }

  /** Consumes the next piece; returns an entry when one is complete (coalescing may hold it back). */
  step(): DiffEntry | null {
    const a = this.now;
    const b = this.before;
    if (a === null && b === null) {
      const last = this.pending;
      this.pending = null;
      return last;
    }
    if (a !== null && (b === null || a.pos < b.pos)) {
      const to = b !== null && b.pos < a.end ? b.pos : a.end;
      return this.piece('added', a.pos, to, clip(a, a.pos, to), null);
    }
    if (b !== null && (a === null || b.pos < a.pos)) {
      const to = a !== null && a.pos < b.end ? a.pos : b.end;
      return this.piece('removed', b.pos, to, null, clip(b, b.pos, to));
    }
    // Both sides map from the same address.
    const x = a!;
    const y = b!;
    const from = x.pos;
    const to = x.end < y.end ? x.end : y.end;
    const nowPart = clip(x, from, to);
    const beforePart = clip(y, from, to);
    if (nowPart.pa === beforePart.pa && sameAttributes(nowPart, beforePart)) {
      this.advance(from, to);
      const held = this.pending;
      this.pending = null;
      return held;
    }
    return this.piece('changed', from, to, nowPart, beforePart);
  }

  /** Records a piece: folds it into the pending entry, or hands the pending one out. */
  private piece(kind: DiffEntry['kind'], from: bigint, to: bigint, now: MapRange | null, before: MapRange | null): DiffEntry | null {
    this.advance(from, to);
    const p = this.pending;
    if (p !== null && p.kind === kind && p.va + p.size === from && continues(p.now, now) && continues(p.before, before)) {
      p.size += to - from;
      p.now = join(p.now, now);
      p.before = join(p.before, before);
      return null;
    }
    this.pending = { kind, va: from, size: to - from, now, before };
    return p;
  }

  /** Moves the cursors that start at `from` to `to`, dropping those used up. */
  private advance(from: bigint, to: bigint): void {
    if (this.now !== null && this.now.pos === from) {
      this.now.pos = to;
      if (to === this.now.end) this.now = null;
    }
    if (this.before !== null && this.before.pos === from) {
      this.before.pos = to;
      if (to === this.before.end) this.before = null;
    }
  }
}

/**
 * Streams the differences between two ascending, non-overlapping range streams (maps of two
 * address spaces, or of the same CR3 in two memory snapshots), in ascending VA order.
 */
export function* diffStreams(now: Iterator<MapRange, unknown>, before: Iterator<MapRange, unknown>): Generator<DiffEntry, void, void> {
  const d = new Differ();
  while (!d.done) {
    if (d.wantsNow) {
      const r = now.next();
      d.feedNow(r.done ? null : r.value);
    }
    if (d.wantsBefore) {
      const r = before.next();
      d.feedBefore(r.done ? null : r.value);
    }
    const entry = d.step();
    if (entry !== null) yield entry;
  }
}

/** {@link diffStreams} over asynchronous range streams. */
export async function* diffStreamsAsync(
  now: AsyncIterator<MapRange, unknown>,
  before: AsyncIterator<MapRange, unknown>,
): AsyncGenerator<DiffEntry, void, void> {
  const d = new Differ();
  while (!d.done) {
    if (d.wantsNow) {
      const r = await now.next();
      d.feedNow(r.done ? null : r.value);
    }
    if (d.wantsBefore) {
      const r = await before.next();
      d.feedBefore(r.done ? null : r.value);
    }
    const entry = d.step();
    if (entry !== null) yield entry;
  }
}

/**
 * Streams the differences between the address spaces `now` and `before` in the same memory (two
 * CR3 values, say), in ascending VA order. `opts` applies to both maps.
 */
export function diffRanges(
  mem: PhysMemory,
  now: PagingContext,
  before: PagingContext,
  opts: MapOptions = {},
): Generator<DiffEntry, void, void> {
  return diffStreams(mapRanges(mem, now, opts), mapRanges(mem, before, opts));
}

/** {@link diffRanges} over asynchronous memory. */
export function diffRangesAsync(
  mem: AsyncPhysMemory,
  now: PagingContext,
  before: PagingContext,
  opts: MapOptions = {},
): AsyncGenerator<DiffEntry, void, void> {
  return diffStreamsAsync(mapRangesAsync(mem, now, opts), mapRangesAsync(mem, before, opts));
}
