/**
 * QEMU's memory layout from HMP `info mtree -f`: the flattened views of each address space, one
 * line per guest-physical range with the memory region behind it and the offset into that region.
 * The view of the "system" root is what the CPU sees; its `ram`/`rom` ranges are the readable
 * memory, and the ranges of a RAM backend give the offset into the backend's file (`--mem-path`),
 * below-4G and above-4G parts alike:
 *
 *   FlatView #3
 *    AS "memory", root: system
 *    Root memory region: system
 *     0000000000000000-00000000000c2fff (prio 0, ram): ram
 *     0000000000100000-00000000bfffffff (prio 0, ram): ram @0000000000100000
 *     00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
 *     0000000100000000-000000013fffffff (prio 0, ram): ram @00000000c0000000
 */
import { HmpError } from '../qmp/errors.js';
import { checkHmpOutput, hexBig, hmpLines, unexpectedLine } from '../qmp/hmpText.js';
import type { RamRange } from './target.js';

/** What backs a range, as QEMU names it: `ram`, `rom`, `romd` (ROM device), `ramd` (RAM device), `i/o`. */
export type RegionKind = 'ram' | 'rom' | 'romd' | 'ramd' | 'i/o';

/** One guest-physical range of a flat view. */
export interface FlatRange {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  priority: number;
  kind: RegionKind;
  /** Non-volatile memory (`nv-ram`). */
  nonVolatile: boolean;
  /** The memory region's name (`pc.ram`, `ram`, `pc.bios`, `ioapic`, ...). */
  region: string;
  /** Where the range starts within its region (the `@` suffix; 0 when QEMU prints none). */
  offset: bigint;
}

/** One flat view: the address spaces that share it, its root region, and its ranges in address order. */
export interface FlatView {
  addressSpaces: string[];
  /** The root memory region, or null for `(none)`. */
  root: string | null;
  ranges: FlatRange[];
}

const VIEW = /^FlatView #\d+$/;
const ADDRESS_SPACE = /^ AS "([^"]*)", root: (.*)$/;
const ROOT = /^ Root memory region: (.*)$/;
const NONE = /^ {2}No rendered FlatView$/;
const RANGE = /^ {2}([0-9a-f]+)-([0-9a-f]+) \(prio (-?\d+), (nv-)?(ram|rom|romd|ramd|i\/o)\): (.*?)(?: @([0-9a-f]+))?((?: KVM| \[[^\]]*\])*)$/;

/**
 * Parses `info mtree -f` (without `-d`/`-o`). Throws HmpError: E_HMP_PARSE with the line number for
 * a line that is not a view header, an address-space line or a range; E_HMP_UNKNOWN_COMMAND or
 * E_HMP_USAGE when the monitor refused the command.
 */
export function parseMtreeFlat(text: string): FlatView[] {
  checkHmpOutput(text, 'info mtree -f');
  const views: FlatView[] = [];
  let view: FlatView | null = null;
  for (const line of hmpLines(text)) {
    const t = line.text;
    if (t.trim() === '') continue;
    if (VIEW.test(t)) {
      view = { addressSpaces: [], root: null, ranges: [] };
      views.push(view);
      continue;
    }
    if (!view) throw unexpectedLine('info mtree -f: expected "FlatView #N" first', line);
    const as = ADDRESS_SPACE.exec(t);
    if (as) {
      view.addressSpaces.push(as[1]!);
      continue;
    }
    const root = ROOT.exec(t);
    if (root) {
      view.root = root[1] === '(none)' ? null : root[1]!;
      continue;
    }
    if (NONE.test(t)) continue;
    const r = RANGE.exec(t);
    if (!r) throw unexpectedLine('info mtree -f: expected "START-END (prio N, KIND): REGION [@OFFSET]"', line);
    const start = hexBig(r[1]!);
    const last = hexBig(r[2]!);
    if (last < start) throw unexpectedLine(`info mtree -f: the range ends before it starts`, line);
    view.ranges.push({
      start,
      end: last + 1n,
      priority: Number(r[3]),
      kind: r[5] as RegionKind,
      nonVolatile: r[4] !== undefined,
      region: r[6]!,
      offset: r[7] === undefined ? 0n : hexBig(r[7]),
    });
  }
  return views;
}

/**
 * The ranges the CPU sees: the view whose root is `system` (the one the "memory" and
 * "cpu-memory-N" address spaces share). Throws HmpError (E_HMP_PARSE) when there is none.
 */
export function systemMemory(views: readonly FlatView[]): FlatRange[] {
  const v = views.find((x) => x.root === 'system') ?? views.find((x) => x.addressSpaces.includes('memory'));
  if (!v) throw new HmpError('E_HMP_PARSE', 'info mtree -f: no flat view of the "system" memory region (the address space the CPU sees)');
  return v.ranges;
}

/** The readable memory of a view (RAM and ROM of every kind, adjacent ranges merged); I/O is left out. */
export function readableRanges(ranges: readonly FlatRange[]): RamRange[] {
  const out: RamRange[] = [];
  for (const r of [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    if (r.kind === 'i/o') continue;
    const last = out[out.length - 1];
    if (last && last.end === r.start) last.end = r.end;
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** True when [pa, pa + length) lies wholly inside `ranges` (sorted, merged). */
export function covers(ranges: readonly RamRange[], pa: bigint, length: bigint): boolean {
  if (length <= 0n) return true;
  let at = pa;
  const end = pa + length;
  for (const r of ranges) {
    if (r.end <= at) continue;
    if (r.start > at) return false;
    at = r.end;
    if (at >= end) return true;
  }
  return at >= end;
}

/** The first few ranges, for messages: "its memory is 0x0-0x7fffff, 0xfffc0000-0xffffffff". */
export function rangesText(ranges: readonly RamRange[]): string {
  const parts = ranges.slice(0, 4).map((r) => `0x${r.start.toString(16)}-0x${(r.end - 1n).toString(16)}`);
  return `its memory is ${parts.join(', ')}${ranges.length > 4 ? ` and ${ranges.length - 4} more ranges` : ''}`;
}
