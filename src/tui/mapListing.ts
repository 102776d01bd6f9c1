/**
 * Listing an address space for the map pane: the coalesced ranges and, in words, what the map
 * could not list. Long listings let the event loop in now and then (an emulator's frames arrive
 * without a pause), give up as soon as they are no longer wanted, and stop at a bound, so garbage
 * tables cannot fill memory.
 */
import { mapRangesAsync, type MapRange, type MapSummary } from '../paging/map.js';
import type { AsyncPhysMemory } from '../paging/memory.js';
import type { PagingContext } from '../paging/mode.js';

/** The most ranges the pane lists. */
export const MAX_MAP_RANGES = 100_000;

/** Ranges listed between two turns of the event loop. */
const RANGES_PER_TURN = 512;

/** A finished listing. */
export interface MapListing {
  ranges: MapRange[];
  /** What could not be listed, one line each. */
  notes: string[];
}

/** The summary's gaps in words. */
export function summaryNotes(s: MapSummary): string[] {
  const notes: string[] = [];
  if (s.truncated.length > 0) notes.push(`${s.truncated.length} subtree(s) reached through loops were cut off`);
  if (s.unreadable.length > 0) notes.push(`${s.unreadable.length} table(s) lie outside memory`);
  if (s.reservedEntries > 0) notes.push(`${s.reservedEntries} entr${s.reservedEntries === 1 ? 'y has' : 'ies have'} reserved bits set (they map nothing)`);
  return notes;
}

/** Lists the mappings of `ctx`; resolves with null as soon as `wanted()` turns false. */
export async function listMap(mem: AsyncPhysMemory, ctx: PagingContext, wanted: () => boolean, max = MAX_MAP_RANGES): Promise<MapListing | null> {
  const ranges: MapRange[] = [];
  const it = mapRangesAsync(mem, ctx);
  try {
    let r = await it.next();
    while (!r.done) {
      if (!wanted()) return null;
      if (ranges.length === max) return { ranges, notes: [`the listing stopped at ${max} ranges (map --from/--to on the command line lists a part)`] };
      ranges.push(r.value);
      if (ranges.length % RANGES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
      r = await it.next();
    }
    return { ranges, notes: summaryNotes(r.value) };
  } finally {
    await it.return(undefined as never);
  }
}
