/**
 * Text rendering of map ranges, diff entries and aliases, in fixed-width columns so a map can be
 * printed as it streams.
 */
import { hexPad } from '../paging/addr.js';
import type { MapRange } from '../paging/map.js';
import { humanSize, pad, rightsLetters, type Colors } from './output.js';

/** Hex digits of the VA columns for `vaBits`-bit linear addresses: 8 for 32-bit and PAE paging, else 16. */
export function vaDigits(vaBits: number): number {
  return vaBits <= 32 ? 8 : 16;
}

/** The header line of a map listing (`digits`: see {@link vaDigits}). */
export function mapHeader(c: Colors, digits = 16): string {
  return c.dim(`${pad('VA start', digits + 2)}  ${pad('VA end', digits + 2)}  ${pad('size', 6, true)}  ${pad('page', 4, true)}  rights       PA`);
}

/** `rwx kern G` style rights of a range (user/kernel, global, protection key). */
export function rangeRights(r: MapRange, c: Colors): string {
  const letters = rightsLetters(r);
  const who = r.user ? 'user' : 'kern';
  const painted = r.write && r.execute ? c.yellow(letters) : letters;
  return `${painted} ${who}${r.global ? ' G' : '  '}${r.protectionKey ? ` k${r.protectionKey}` : ''}`;
}

/** One line of a map listing (`digits`: see {@link vaDigits}). */
export function mapLine(r: MapRange, c: Colors, digits = 16): string {
  const end = r.va + r.size - 1n;
  return `${hexPad(r.va, digits)}  ${hexPad(end, digits)}  ${pad(humanSize(r.size), 6, true)}  ${pad(humanSize(r.pageSize), 4, true)}  ${pad(rangeRights(r, c), 11)}  ${hexPad(r.pa, 12)}`;
}
