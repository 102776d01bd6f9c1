/**
 * Pure parsers of the human-monitor commands pagewalk runs through QMP's human-monitor-command:
 * `xp`/`x` memory dumps, `gva2gpa`, `info tlb`, `info mem` (and `info registers`, in its own file).
 * Each checks every line: an unknown or garbled line is an HmpError naming its line number, never
 * dropped; QEMU's `unknown command` answer is an error of its own.
 */
import { HmpError } from './errors.js';
import { checkHmpOutput, hexBig, hmpLines, unexpectedLine } from './hmpText.js';

export { parseInfoRegisters, type HmpSegment, type HmpTableRegister, type InfoRegisters } from './infoRegisters.js';

const U64 = 1n << 64n;

/** A memory dump from `xp /Nx` (physical) or `x /Nx` (virtual). */
export interface XpDump {
  /** The first address shown, or null for an empty dump (`/0x`). */
  start: bigint | null;
  /** The unit size (1, 2, 4 or 8 bytes: `/b`, `/h`, `/w`, `/g`), or null for an empty dump. */
  unit: 1 | 2 | 4 | 8 | null;
  /** The values as shown. */
  values: bigint[];
  /** The same values as little-endian bytes, in address order. */
  bytes: Uint8Array;
  /** Where QEMU said `Cannot access memory` (the dump stops there), or null when it read everything. */
  unreadableAt: bigint | null;
}

const XP_LINE = /^([0-9a-f]+): ((?:0x[0-9a-f]+)(?: 0x[0-9a-f]+)*)$/;
const XP_UNREADABLE = /^([0-9a-f]+): Cannot access memory$/;
const UNIT_OF_DIGITS: Record<number, 1 | 2 | 4 | 8> = { 2: 1, 4: 2, 8: 4, 16: 8 };

/**
 * Parses `xp /N[bhwg]x ADDR` (or `x`) output: lines `ADDR: 0xV 0xV ...`, possibly ending in
 * `ADDR: Cannot access memory`. Only the hex format is accepted. Throws HmpError (E_HMP_PARSE) for
 * another format, mixed unit sizes, a line whose address does not follow the previous one, or text after
 * `Cannot access memory`.
 */
export function parseXp(text: string): XpDump {
  checkHmpOutput(text, 'xp');
  const values: bigint[] = [];
  let start: bigint | null = null;
  let unit: 1 | 2 | 4 | 8 | null = null;
  let next: bigint | null = null;
  let unreadableAt: bigint | null = null;
  for (const line of hmpLines(text)) {
    if (unreadableAt !== null) throw unexpectedLine('xp: output after "Cannot access memory"', line);
    const bad = XP_UNREADABLE.exec(line.text);
    const m = bad ? null : XP_LINE.exec(line.text);
    if (!bad && !m) throw unexpectedLine('xp: expected "ADDRESS: 0x..." (hex format: /Nbx, /Nhx, /Nwx, /Ngx)', line);
    const at = hexBig((bad ?? m)![1]!);
    if (next !== null && at !== next) {
      throw unexpectedLine(`xp: expected the line for 0x${next.toString(16)}`, line);
    }
    start ??= at;
    if (bad) {
      unreadableAt = at;
      continue;
    }
    const shown = m![2]!.split(' ');
    for (const v of shown) {
      const u = UNIT_OF_DIGITS[v.length - 2];
      if (!u) throw unexpectedLine(`xp: ${v} is not a 1-, 2-, 4- or 8-byte value`, line);
      if (unit !== null && u !== unit) throw unexpectedLine(`xp: ${v} is not a ${unit}-byte value like the ones before`, line);
      unit = u;
      values.push(BigInt(v));
    }
    next = (at + BigInt(shown.length * unit!)) % U64;
  }
  const bytes = new Uint8Array(values.length * (unit ?? 0));
  values.forEach((v, i) => {
    for (let b = 0; b < unit!; b++) bytes[i * unit! + b] = Number((v >> BigInt(8 * b)) & 0xffn);
  });
  return { start, unit, values, bytes, unreadableAt };
}

/** What `gva2gpa` answers: the guest-physical address, or that the address is not mapped. */
export type Gva2gpa = { mapped: true; gpa: bigint } | { mapped: false };

/** Parses `gva2gpa ADDR` output (`gpa: 0x101000` or `Unmapped`); throws HmpError for anything else. */
export function parseGva2gpa(text: string): Gva2gpa {
  checkHmpOutput(text, 'gva2gpa');
  const lines = hmpLines(text);
  const only = lines.length === 1 ? lines[0]! : null;
  if (only?.text === 'Unmapped') return { mapped: false };
  // QEMU prints with %#llx, which writes physical 0 as plain `0`.
  const m = only ? /^gpa: (?:0x([0-9a-f]+)|0)$/.exec(only.text) : null;
  if (m) return { mapped: true, gpa: m[1] ? hexBig(m[1]) : 0n };
  if (lines.length === 0) throw new HmpError('E_HMP_PARSE', 'gva2gpa: empty output (expected "gpa: 0x..." or "Unmapped")', 1);
  throw unexpectedLine('gva2gpa: expected "gpa: 0x..." or "Unmapped"', lines.length === 1 ? lines[0]! : lines[1]!);
}

/** The attributes `info tlb` shows for a leaf, its nine flag characters `X G P D A C T U W`. */
export interface TlbFlags {
  /** X: execute-disable in the leaf entry (only the leaf's; the effective NX is the OR over all levels). */
  nx: boolean;
  /** G: global. */
  g: boolean;
  /** P: a large page (PS in a PDE or PDPTE). */
  ps: boolean;
  /** D: dirty. */
  d: boolean;
  /** A: accessed. */
  a: boolean;
  /** C: cache disable (PCD). */
  pcd: boolean;
  /** T: write-through (PWT). */
  pwt: boolean;
  /** U: user-accessible. */
  user: boolean;
  /** W: writable. */
  write: boolean;
}

/** One line of `info tlb`: a leaf mapping (one per page, whatever its size). */
export interface TlbEntry {
  /** The virtual address of the page, canonical (sign-extended). */
  va: bigint;
  /** The physical address of the page (bit 63 cleared: QEMU 7.2 leaks the NX bit into a PAE large page's address). */
  pa: bigint;
  flags: TlbFlags;
}

/** `info tlb` output: `paging` is false when QEMU said `PG disabled` (then there are no entries). */
export interface InfoTlb {
  paging: boolean;
  entries: TlbEntry[];
}

const TLB_LINE = /^([0-9a-f]+): ([0-9a-f]+) ([X-])([G-])([P-])([D-])([A-])([C-])([T-])([U-])([W-])$/;
const PA_MASK = (1n << 63n) - 1n;

/**
 * Parses `info tlb` output: `VADDR: PADDR XGPDACTUW` lines, or `PG disabled`. Throws HmpError
 * (E_HMP_PARSE) with the line number of any other line.
 */
export function parseInfoTlb(text: string): InfoTlb {
  checkHmpOutput(text, 'info tlb');
  const lines = hmpLines(text);
  if (lines.length === 1 && lines[0]!.text === 'PG disabled') return { paging: false, entries: [] };
  const entries = lines.map((line): TlbEntry => {
    const m = TLB_LINE.exec(line.text);
    if (!m) throw unexpectedLine('info tlb: expected "VADDR: PADDR XGPDACTUW"', line);
    const on = (i: number): boolean => m[i] !== '-';
    return {
      va: hexBig(m[1]!),
      pa: hexBig(m[2]!) & PA_MASK,
      flags: { nx: on(3), g: on(4), ps: on(5), d: on(6), a: on(7), pcd: on(8), pwt: on(9), user: on(10), write: on(11) },
    };
  });
  return { paging: true, entries };
}

/** One line of `info mem`: virtually contiguous pages with the same rights, merged. */
export interface MemRange {
  /** The first address, canonical. */
  start: bigint;
  /** The end, exclusive: start + size (2^64 for a range that reaches the top of the address space). */
  end: bigint;
  size: bigint;
  user: boolean;
  /** Always true: `info mem` lists only mapped (readable) pages. */
  read: boolean;
  write: boolean;
}

/** `info mem` output: `paging` is false when QEMU said `PG disabled`. */
export interface InfoMem {
  paging: boolean;
  ranges: MemRange[];
}

const MEM_LINE = /^([0-9a-f]+)-([0-9a-f]+) ([0-9a-f]+) ([u-])(r)([w-])$/;

/**
 * Parses `info mem` output: `START-END SIZE [u-]r[w-]` lines, or `PG disabled`. `info mem` shows no
 * NX and no A/D bits, and QEMU 7.2 prints nothing at all under 5-level paging (CR4.LA57): an empty
 * result there says nothing, use `info tlb`. Throws HmpError (E_HMP_PARSE) with the line number of a
 * line it does not recognise or whose size does not match its bounds.
 */
export function parseInfoMem(text: string): InfoMem {
  checkHmpOutput(text, 'info mem');
  const lines = hmpLines(text);
  if (lines.length === 1 && lines[0]!.text === 'PG disabled') return { paging: false, ranges: [] };
  const ranges = lines.map((line): MemRange => {
    const m = MEM_LINE.exec(line.text);
    if (!m) throw unexpectedLine('info mem: expected "START-END SIZE [u-]r[w-]"', line);
    const start = hexBig(m[1]!);
    const shownEnd = hexBig(m[2]!);
    const size = hexBig(m[3]!);
    const end = start + size;
    // For a range that reaches 2^64, QEMU prints the end without sign extension: 2^48 (or 2^57).
    const topOk = end === U64 && [0n, 1n << 48n, 1n << 57n].includes(shownEnd);
    // For a range that ends at the top of the lower half, it prints the end sign-extended.
    const lowerOk = (end === 1n << 47n && shownEnd === 0xffff800000000000n) || (end === 1n << 56n && shownEnd === 0xff00000000000000n);
    if (size === 0n || end > U64 || (shownEnd !== end && !topOk && !lowerOk)) {
      throw unexpectedLine(`info mem: 0x${m[1]}-0x${m[2]} does not span 0x${m[3]} bytes`, line);
    }
    return { start, end, size, user: m[4] === 'u', read: true, write: m[6] === 'w' };
  });
  return { paging: true, ranges };
}
