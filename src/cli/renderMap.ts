/**
 * Text rendering of map ranges, diff entries and aliases, in fixed-width columns so a map can be
 * printed as it streams.
 */
import { hexPad } from '../paging/addr.js';
import type { MapRange } from '../paging/map.js';
import { humanSize, pad, rightsLetters, type Colors } from './output.js';

/** The header line of a map listing. */
export function mapHeader(c: Colors): string {
  return c.dim(`${pad('VA start', 18)}  ${pad('VA end', 18)}  ${pad('size', 6, true)}  ${pad('page', 4, true)}  rights       PA`);
}

/** `rwx kern G` style rights of a range (user/kernel, global, protection key). */
export function rangeRights(r: MapRange, c: Colors): string {
  const letters = rightsLetters(r);
  const who = r.user ? 'user' : 'kern';
  const painted = r.write && r.execute ? c.yellow(letters) : letters;
  return `${painted} ${who}${r.global ? ' G' : '  '}${r.protectionKey ? ` k${r.protectionKey}` : ''}`;
}

/** One line of a map listing. */
export function mapLine(r: MapRange, c: Colors): string {
  const end = r.va + r.size - 1n;
  return `${hexPad(r.va)}  ${hexPad(end)}  ${pad(humanSize(r.size), 6, true)}  ${pad(humanSize(r.pageSize), 4, true)}  ${pad(rangeRights(r, c), 11)}  ${hexPad(r.pa, 12)}`;
}
