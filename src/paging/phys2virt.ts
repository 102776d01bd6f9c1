/**
 * The reverse map: every linear address that maps a physical address, whatever the page size,
 * found by running the map and keeping the ranges that cover the address.
 */
import { phys } from './addr.js';
import { mapRanges, mapRangesAsync, type MapRange } from './map.js';
import type { AsyncPhysMemory, PhysMemory } from './memory.js';
import type { PagingContext } from './mode.js';

/** A linear address that maps the physical address asked for, and the map range it lies in. */
export interface Alias {
  va: bigint;
  range: MapRange;
}

/** The alias of `pa` in `r`, or null when `r` does not cover it. */
function aliasIn(r: MapRange, pa: bigint): Alias | null {
  const offset = pa - r.pa;
  return offset >= 0n && offset < r.size ? { va: r.va + offset, range: r } : null;
}

/**
 * Every linear address that translates to `pa` in `ctx`, in ascending VA order.
 * Throws `AddressError` (E_ADDRESS_RANGE) when `pa` is negative or above 52 bits.
 */
export function phys2virt(mem: PhysMemory, ctx: PagingContext, pa: bigint): Alias[] {
  const target = phys(pa);
  const out: Alias[] = [];
  for (const r of mapRanges(mem, ctx)) {
    const a = aliasIn(r, target);
    if (a) out.push(a);
  }
  return out;
}

/** {@link phys2virt} over asynchronous memory. */
export async function phys2virtAsync(mem: AsyncPhysMemory, ctx: PagingContext, pa: bigint): Promise<Alias[]> {
  const target = phys(pa);
  const out: Alias[] = [];
  for await (const r of mapRangesAsync(mem, ctx)) {
    const a = aliasIn(r, target);
    if (a) out.push(a);
  }
  return out;
}
