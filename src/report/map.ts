/**
 * `map`, as the CLI and the run language tell it around the listing: the title, the total, and
 * the warnings (a CR3 that maps nothing, entries with reserved bits, tables outside readable
 * memory, loops).
 */
import { humanSize, type Colors } from '../cli/output.js';
import { hex } from '../paging/addr.js';
import type { MapSummary } from '../paging/map.js';
import type { PagingContext } from '../paging/mode.js';

/** The title line: `4-level paging, CR3 0x...`. */
export function mapTitle(c: Colors, ctx: PagingContext): string {
  return c.bold(`${ctx.mode} paging, CR3 ${hex(ctx.cr3)}`);
}

/** The warning for a CR3 with reserved bits set (it maps nothing), or null. */
export function cr3ReservedWarning(ctx: PagingContext): string | null {
  if (ctx.cr3Reserved === 0n) return null;
  return `CR3 ${hex(ctx.cr3)} has reserved bits set (${hex(ctx.cr3Reserved)}): loading it raises #GP, so it maps nothing`;
}

/** The last line: how many ranges and pages, and how much is mapped (`bytes`, the ranges' sizes added up). */
export function mapTotalLine(c: Colors, summary: MapSummary, bytes: bigint): string {
  return c.dim(`${summary.ranges} ranges, ${summary.leaves} pages, ${humanSize(bytes)} mapped`);
}

/**
 * What a finished map warns of: `unlisted`, mappings it could not list (present entries with
 * reserved bits, tables outside readable memory), and `loops`, tables reached from themselves.
 * `check` is how the user runs `check` (which explains the reserved bits).
 */
export function mapWarnings(summary: MapSummary, check: string): { unlisted: string[]; loops: string[] } {
  const unlisted = summary.reservedEntries > 0 ? [`${summary.reservedEntries} present entries have reserved bits set and map nothing (see \`${check}\`)`] : [];
  for (const u of summary.unreadable) unlisted.push(`the ${u.level} table at ${hex(u.table)} (for ${hex(u.va)}) lies outside readable memory: its mappings are not listed`);
  const loops = summary.truncated.map((t) => `tables loop: the ${t.level} table at ${hex(t.table)} is reached from itself (at ${hex(t.va)}); the rest of that subtree is not listed`);
  return { unlisted, loops };
}
