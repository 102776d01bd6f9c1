/**
 * Readable RAM as the lint sees it: the ranges a target reports, merged, or "unknown".
 * Physical addresses have at most 52 bits, so they are plain numbers here.
 */

/** A range of readable physical memory, [start, end), as `LintOptions.ram` gives it. */
export interface RamSpan {
  readonly start: bigint;
  readonly end: bigint;
}

/** Merged RAM ranges, or unknown RAM (then every RAM test answers true). */
export class RamMap {
  private readonly spans: readonly { start: number; end: number }[] | null;

  /** `ram`: the readable ranges in any order (adjacent and overlapping ones are merged), or null. */
  constructor(ram: readonly RamSpan[] | null | undefined) {
    if (!ram) {
      this.spans = null;
      return;
    }
    const sorted = ram
      .filter((r) => r.end > r.start)
      .map((r) => ({ start: Number(r.start), end: Number(r.end) }))
      .sort((a, b) => a.start - b.start);
    const merged: { start: number; end: number }[] = [];
    for (const r of sorted) {
      const last = merged[merged.length - 1];
      if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
      else merged.push({ ...r });
    }
    this.spans = merged;
  }

  /** True when the ranges are known. */
  get known(): boolean {
    return this.spans !== null;
  }

  /** True when [pa, pa+length) lies inside RAM; true when RAM is unknown. */
  contains(pa: number, length: number): boolean {
    if (!this.spans) return true;
    return this.spans.some((r) => r.start <= pa && pa + length <= r.end);
  }

  /** True when [pa, pa+length) has at least one byte of RAM; true when RAM is unknown. */
  overlaps(pa: number, length: number): boolean {
    if (!this.spans) return true;
    return this.spans.some((r) => r.start < pa + length && pa < r.end);
  }
}
