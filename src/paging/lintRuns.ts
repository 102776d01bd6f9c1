/**
 * Coalesced runs of pages for the lint's grouped findings (W+X kernel pages, user pages in the
 * kernel half), and the per-table summaries that let a shared table be linted once and its
 * results replayed at every other address it is mapped at.
 */
import type { Where } from './lintFinding.js';

/** Pages [start, end] (page numbers, inclusive) made of `count` leaf entries, the first being `first`. */
export interface Run {
  start: number;
  end: number;
  count: number;
  readonly first: Where;
}

/** Runs in ascending order; a page that continues the last run extends it. */
export class RunList {
  readonly runs: Run[] = [];

  /** `breakAt`: a page number no run may continue across (the start of the kernel half). */
  constructor(private readonly breakAt: number) {}

  /** Adds `pages` pages at `start` made of `count` entries; `first` is asked only for a new run. */
  add(start: number, pages: number, count: number, first: () => Where): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last.end + 1 === start && start !== this.breakAt) {
      last.end = start + pages - 1;
      last.count += count;
      return;
    }
    this.runs.push({ start, end: start + pages - 1, count, first: first() });
  }
}

/** What a table's subtree contributes to the grouped findings, relative to the table's first page. */
export interface Summary {
  readonly wx: readonly Run[];
  readonly user: readonly Run[];
  /** Leaves whose own NX is clear (meant to be executable). */
  readonly exec: number;
}

/** Collects the summary of one table while the traversal is inside it. */
export class Collector {
  readonly wx: RunList;
  readonly user: RunList;
  exec = 0;

  /**
   * `base`: the table's first page number (runs are kept relative to it); `key`: where to keep the
   * summary once the table is done (null for the top table).
   */
  constructor(
    readonly base: number,
    readonly key: string | null,
    breakAt: number,
  ) {
    this.wx = new RunList(breakAt - base);
    this.user = new RunList(breakAt - base);
  }

  /** The summary so far. */
  summary(): Summary {
    return { wx: this.wx.runs, user: this.user.runs, exec: this.exec };
  }
}
