/**
 * The JSON shapes of `map`, `diff` and `phys2virt`.
 */
import { hex } from '../paging/addr.js';
import type { DiffEntry } from '../paging/diff.js';
import type { MapRange, MapSummary } from '../paging/map.js';
import type { Alias } from '../paging/phys2virt.js';

/** A map range, as JSON. */
export interface MapRangeJson {
  va: string;
  pa: string;
  size: string;
  pageSize: number;
  write: boolean;
  user: boolean;
  execute: boolean;
  global: boolean;
  protectionKey: number | null;
}

/** What the map could not list, as JSON. */
export interface MapSummaryJson {
  leaves: number;
  ranges: number;
  reservedEntries: number;
  truncated: { va: string; table: string; level: string }[];
  unreadable: { va: string; table: string; level: string }[];
}

/** How many pieces of each kind a diff found. */
export interface DiffCountsJson {
  added: number;
  removed: number;
  changed: number;
}

/** Two address spaces compared, as `diff --json` prints it. */
export interface DiffJson {
  cr3: string;
  against: string;
  mode: string;
  entries: DiffEntryJson[];
  counts: DiffCountsJson;
}

/** Shapes a range. */
export function mapRangeJson(r: MapRange): MapRangeJson {
  return {
    va: hex(r.va),
    pa: hex(r.pa),
    size: hex(r.size),
    pageSize: r.pageSize,
    write: r.write,
    user: r.user,
    execute: r.execute,
    global: r.global,
    protectionKey: r.protectionKey,
  };
}

/** Shapes a map summary. */
export function mapSummaryJson(s: MapSummary): MapSummaryJson {
  const place = (p: { va: bigint; table: bigint; level: string }): { va: string; table: string; level: string } => ({
    va: hex(p.va),
    table: hex(p.table),
    level: p.level,
  });
  return {
    leaves: s.leaves,
    ranges: s.ranges,
    reservedEntries: s.reservedEntries,
    truncated: s.truncated.map(place),
    unreadable: s.unreadable.map(place),
  };
}

/** A diff entry, as JSON. */
export interface DiffEntryJson {
  kind: 'added' | 'removed' | 'changed';
  va: string;
  size: string;
  now: MapRangeJson | null;
  before: MapRangeJson | null;
}

/** Shapes a diff entry. */
export function diffEntryJson(d: DiffEntry): DiffEntryJson {
  return {
    kind: d.kind,
    va: hex(d.va),
    size: hex(d.size),
    now: d.now ? mapRangeJson(d.now) : null,
    before: d.before ? mapRangeJson(d.before) : null,
  };
}

/** An alias, as JSON. */
export interface AliasJson {
  va: string;
  range: MapRangeJson;
}

/** Shapes an alias. */
export function aliasJson(a: Alias): AliasJson {
  return { va: hex(a.va), range: mapRangeJson(a.range) };
}
