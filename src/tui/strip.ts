/**
 * The address-space strip: the whole linear address space in one row of cells, the lower half
 * on the left, the non-canonical hole as one divider, the upper half on the right (32-bit and PAE
 * paging have one half), each cell marked where something is mapped, and a second row with the
 * edges' addresses and a marker under the selected address.
 */
import { hex } from '../paging/addr.js';
import type { MapRange } from '../paging/map.js';
import type { Paint } from './paint.js';

/** One cell of the strip: how much of it is mapped, and whether any of it is user or executable. */
export interface StripCell {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  mapped: bigint;
  user: boolean;
  execute: boolean;
}

/** The cells of a strip: one run of cells per half of the address space. */
export interface Strip {
  halves: StripCell[][];
}

const U64 = 1n << 64n;

/** The halves of the address space of a `vaBits`-bit mode: [start, end) each (sign-extended in long mode). */
export function addressHalves(vaBits: number): [bigint, bigint][] {
  if (vaBits <= 32) return [[0n, 1n << 32n]];
  const half = 1n << BigInt(vaBits - 1);
  return [
    [0n, half],
    [U64 - half, U64],
  ];
}

/** Divides the address space into `cells` cells (split between the halves) and sums what `ranges` (sorted by VA) map in each. */
export function buildStrip(ranges: readonly MapRange[], vaBits: number, cells: number): Strip {
  const halves = addressHalves(vaBits);
  const per = Math.max(1, Math.floor(cells / halves.length));
  const out: StripCell[][] = halves.map(([start, end]) => {
    const size = (end - start + BigInt(per) - 1n) / BigInt(per);
    return Array.from({ length: per }, (_, i) => {
      const s = start + BigInt(i) * size;
      return { start: s, end: s + size > end ? end : s + size, mapped: 0n, user: false, execute: false };
    });
  });
  for (const r of ranges) {
    const rEnd = r.va + r.size;
    for (const half of out) {
      const first = half[0]!;
      const last = half[half.length - 1]!;
      if (rEnd <= first.start || r.va >= last.end) continue;
      const size = first.end - first.start;
      const lo = Number(((r.va > first.start ? r.va : first.start) - first.start) / size);
      const hi = Number(((rEnd < last.end ? rEnd : last.end) - 1n - first.start) / size);
      for (let i = lo; i <= hi && i < half.length; i++) {
        const cell = half[i]!;
        const s = r.va > cell.start ? r.va : cell.start;
        const e = rEnd < cell.end ? rEnd : cell.end;
        if (e <= s) continue;
        cell.mapped += e - s;
        cell.user ||= r.user;
        cell.execute ||= r.execute;
      }
    }
  }
  return { halves: out };
}

/** The strip's two rows for a pane `width` cells wide; `selected` gets a marker underneath. */
export function stripLines(ranges: readonly MapRange[], vaBits: number, width: number, p: Paint, selected: bigint | null): [string, string] {
  const { c, g } = p;
  const halves = vaBits <= 32 ? 1 : 2;
  const strip = buildStrip(ranges, vaBits, Math.max(halves, width - (halves - 1)));
  const glyph = (cell: StripCell): string => {
    if (cell.mapped === 0n) return c.dim(g.empty);
    const mark = cell.mapped === cell.end - cell.start ? g.full : g.some;
    return cell.user ? c.yellow(mark) : cell.execute ? c.green(mark) : c.cyan(mark);
  };
  const top = strip.halves.map((h) => h.map(glyph).join('')).join(c.dim(g.hole));
  // The second row: each half's first address at its left edge, the marker under the selected cell.
  const plainWidth = strip.halves.reduce((n, h) => n + h.length, 0) + (halves - 1);
  const row = Array.from({ length: plainWidth }, () => ' ');
  let offset = 0;
  const put = (at: number, text: string): void => {
    for (let i = 0; i < text.length && at + i < row.length; i++) row[at + i] = text[i]!;
  };
  let marker = -1;
  for (const h of strip.halves) {
    put(offset, hex(h[0]!.start));
    if (selected !== null) {
      const k = h.findIndex((cell) => selected >= cell.start && selected < cell.end);
      if (k >= 0) marker = offset + k;
    }
    offset += h.length + 1;
  }
  let bottom = c.dim(row.join(''));
  if (marker >= 0) {
    const before = row.slice(0, marker).join('');
    const after = row.slice(marker + 1).join('');
    bottom = c.dim(before) + c.bold(c.red(g.here)) + c.dim(after);
  }
  return [top, bottom.trimEnd()];
}
