/**
 * Finding every MOV to CR3 (or LIDT, or MOV to CR0) an address space can execute, cheaply.
 *
 * The executable ranges of the tables are listed (the map, coalesced), ranked (the range holding
 * RIP first, then supervisor before user, the kernel half before the low half, 4 KiB mappings before
 * huge ones, small before large), and their physical memory is scanned once however many virtual
 * aliases it has (a direct map and a kernel mapping of the same frames), within RAM, up to a byte
 * budget. The scan looks for the opcode bytes 0F 22 with ModRM.reg = 3 (0F 01 /3 with a memory
 * operand for LIDT; a plain `indexOf` over the bytes), then confirms each candidate by decoding it
 * with iced-x86 from its first byte, prefixes (REX in 64-bit code) included. Every virtual address
 * that maps a confirmed instruction executable is a site: a breakpoint there stops before it runs.
 */
import { hex } from '../paging/addr.js';
import { mapRangesAsync, type MapRange } from '../paging/map.js';
import { FRAME_SIZE, type AsyncPhysMemory } from '../paging/memory.js';
import type { PagingContext } from '../paging/mode.js';
import { MAX_INSTRUCTION, decodeInstruction } from './code.js';

/** The instructions a scan looks for: MOVs to CR3, LIDTs, and MOVs to CR0 (which turn paging on). */
export type SiteKind = 'mov-cr3' | 'lidt' | 'mov-cr0';

/** A place where such an instruction sits. */
export interface CodeSite {
  kind: SiteKind;
  va: bigint;
  /** Physical address, when found in guest memory (null for a site from an ELF file). */
  pa: bigint | null;
  length: number;
  /** The instruction: `mov cr3, rax`, `lidt [rip+0x1234]`. */
  text: string;
  /** Where it was found. */
  from: 'memory' | 'elf';
}

/** The end of the legacy firmware area (the BIOS and option ROMs live below 1 MiB). */
export const FIRMWARE_END = 0x100000n;

/**
 * `sites` without the firmware's MOVs to CR0: the BIOS switches modes all the time and never turns
 * paging on, so stopping there would only cost time.
 */
export function withoutFirmwareCr0(sites: readonly CodeSite[]): CodeSite[] {
  return sites.filter((s) => s.kind !== 'mov-cr0' || s.va >= FIRMWARE_END);
}

/** What a scan looked at and what it cost. */
export interface ScanReport {
  /** What was looked for. */
  kinds: SiteKind[];
  /** The sites, the most likely first (the ranking of their ranges). */
  sites: CodeSite[];
  /** Executable ranges in the address space, and their bytes (aliases counted each time). */
  executableRanges: number;
  executableBytes: bigint;
  /** Distinct physical bytes read and scanned. */
  scannedBytes: number;
  /** Physical bytes of executable ranges left out: outside RAM, or past the budget. */
  skippedBytes: bigint;
  /** Byte positions holding 0F 22 /3 (before decoding). */
  candidates: number;
  /** Wall-clock milliseconds. */
  ms: number;
}

/** Options of {@link scanSites}. */
export interface ScanOptions {
  /** What to look for, in one pass over the memory (default: MOVs to CR3). */
  kinds?: readonly SiteKind[];
  /** The code size to decode with (see `codeBits`). */
  bits: 16 | 32 | 64;
  /** RIP: its range is scanned first. */
  rip?: bigint;
  /** Readable physical memory, when the target can tell: nothing outside it is read. */
  ram?: readonly { start: bigint; end: bigint }[] | null;
  /** Physical bytes to read at most (default {@link DEFAULT_SCAN_BUDGET}). */
  budget?: number;
}

/** 64 MiB: a kernel's text many times over, and a few hundred milliseconds of pipelined reads from QEMU. */
export const DEFAULT_SCAN_BUDGET = 64 << 20;

/** Frames read per request. */
const BATCH_FRAMES = 256;
/** Bytes a scanned chunk keeps from the one before (with an instruction's length): prefixes before an opcode that starts a chunk. */
const OVERLAP = 4;
const LEGACY_PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

interface Interval {
  start: bigint;
  end: bigint;
}

/** Ranks a range: lower first. */
function rankOf(r: MapRange, rip: bigint | undefined): number[] {
  const holdsRip = rip !== undefined && rip >= r.va && rip < r.va + r.size ? 0 : 1;
  const kernelHalf = r.va >= 1n << 63n || r.va >= 0x80000000n ? 0 : 1;
  return [holdsRip, r.user ? 1 : 0, kernelHalf, r.pageSize === FRAME_SIZE ? 0 : 1, Number(r.size >> 12n)];
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** `iv` minus the intervals of `taken` (sorted, disjoint). */
function subtract(iv: Interval, taken: readonly Interval[]): Interval[] {
  let pieces: Interval[] = [iv];
  for (const t of taken) {
    const next: Interval[] = [];
    for (const p of pieces) {
      if (t.end <= p.start || t.start >= p.end) {
        next.push(p);
        continue;
      }
      if (t.start > p.start) next.push({ start: p.start, end: t.start });
      if (t.end < p.end) next.push({ start: t.end, end: p.end });
    }
    pieces = next;
  }
  return pieces;
}

/** `iv` cut to readable memory. */
function clipToRam(iv: Interval, ram: ScanOptions['ram']): Interval[] {
  if (!ram) return [iv];
  const out: Interval[] = [];
  for (const r of ram) {
    const start = iv.start > r.start ? iv.start : r.start;
    const end = iv.end < r.end ? iv.end : r.end;
    if (start < end) out.push({ start, end });
  }
  return out;
}

/**
 * The positions in `bytes` where an instruction of `kind` may start: each 0F 22 whose ModRM.reg is
 * 3 (MOV to CR3) or 0 (MOV to CR0), or 0F 01 with ModRM.reg 3 and a memory operand (LIDT), and the
 * prefix bytes before it (a REX right before the opcode in 64-bit code, legacy prefixes before that).
 */
export function candidateStarts(bytes: Uint8Array, bits: 16 | 32 | 64, kind: SiteKind = 'mov-cr3'): { opcode: number; starts: number[] }[] {
  const second = kind === 'lidt' ? 0x01 : 0x22;
  const reg = kind === 'mov-cr0' ? 0 : 3;
  const out: { opcode: number; starts: number[] }[] = [];
  for (let p = bytes.indexOf(0x0f); p >= 0 && p + 2 < bytes.length; p = bytes.indexOf(0x0f, p + 1)) {
    const modrm = bytes[p + 2]!;
    if (bytes[p + 1] !== second || ((modrm >> 3) & 7) !== reg || (kind === 'lidt' && modrm >> 6 === 3)) continue;
    const starts = [p];
    let s = p;
    if (bits === 64 && s > 0 && (bytes[s - 1]! & 0xf0) === 0x40) starts.push(--s);
    while (s > 0 && p - s < 4 && LEGACY_PREFIXES.has(bytes[s - 1]!)) starts.push(--s);
    out.push({ opcode: p, starts });
  }
  return out;
}

/** The instruction of `kind` that starts at `start` of `bytes` (its opcode at `opcode`), or null. */
export function confirmSite(bytes: Uint8Array, start: number, opcode: number, bits: 16 | 32 | 64, kind: SiteKind, ip: bigint): { length: number; text: string } | null {
  const ins = decodeInstruction(bytes.subarray(start, start + MAX_INSTRUCTION), bits, ip);
  if (!ins || ins.length < opcode + 3 - start) return null;
  const right = kind === 'mov-cr3' ? ins.cr3Source !== null : kind === 'mov-cr0' ? ins.cr0Write : ins.lidt;
  if (!right || (kind !== 'lidt' && ins.length !== opcode + 3 - start)) return null;
  return { length: ins.length, text: ins.text };
}

/**
 * Scans the executable mappings of `ctx` for MOVs to CR3 (see the file comment). Ranges past the
 * budget or outside RAM are counted as skipped, never read.
 */
export async function scanSites(mem: AsyncPhysMemory, ctx: PagingContext, opts: ScanOptions): Promise<ScanReport> {
  const t0 = performance.now();
  const budget = opts.budget ?? DEFAULT_SCAN_BUDGET;
  const ranges: MapRange[] = [];
  let executableBytes = 0n;
  for await (const r of mapRangesAsync(mem, ctx)) {
    if (!r.execute || (r.user && ctx.smep)) continue;
    ranges.push(r);
    executableBytes += r.size;
  }
  const ranked = ranges.map((r, i) => ({ r, key: [...rankOf(r, opts.rip), i] })).sort((a, b) => compareRanks(a.key, b.key)).map((x) => x.r);
  // The 2 MiB around RIP before the rest of its range (a large identity map holds RIP somewhere in its middle).
  const holding = opts.rip === undefined ? undefined : ranked.find((r) => opts.rip! >= r.va && opts.rip! < r.va + r.size);
  const near = holding ? aroundRip(holding, opts.rip!) : null;
  const plan = near ? [near, ...ranked] : ranked;

  // The physical memory to scan, each byte once, in the ranges' order, within RAM and the budget.
  const planned: Interval[] = [];
  const over: Interval[] = [];
  let left = BigInt(budget);
  let skipped = 0n;
  for (const r of plan) {
    const inRam = clipToRam({ start: r.pa, end: r.pa + r.size }, opts.ram);
    skipped += r.size - inRam.reduce((n, p) => n + (p.end - p.start), 0n);
    for (const p of inRam.flatMap((iv) => subtract(iv, [...planned, ...over]))) {
      const size = p.end - p.start;
      const take = size <= left ? size : left;
      if (take > 0n) insertSorted(planned, { start: p.start, end: p.start + take });
      if (take < size) {
        insertSorted(over, { start: p.start + take, end: p.end });
        skipped += size - take;
      }
      left -= take;
    }
  }

  // Read and scan: confirmed instructions by physical address.
  const kinds = opts.kinds ?? ['mov-cr3'];
  const found = new Map<string, { kind: SiteKind; pa: bigint; length: number; text: string }>();
  let candidates = 0;
  let scanned = 0;
  for (const iv of planned) {
    let carry = new Uint8Array(0);
    let carryAt = iv.start;
    const first = iv.start - (iv.start % BigInt(FRAME_SIZE));
    for (let at = first; at < iv.end; at += BigInt(BATCH_FRAMES * FRAME_SIZE)) {
      const frames: number[] = [];
      for (let f = at; f < iv.end && frames.length < BATCH_FRAMES; f += BigInt(FRAME_SIZE)) frames.push(Number(f));
      const data = await mem.frames(frames);
      const chunk = new Uint8Array(carry.length + frames.length * FRAME_SIZE);
      chunk.set(carry, 0);
      data.forEach((d, i) => {
        if (d) chunk.set(new Uint8Array(d.buffer, d.byteOffset, FRAME_SIZE), carry.length + i * FRAME_SIZE);
      });
      const base = carry.length > 0 ? carryAt : at;
      scanned += frames.length * FRAME_SIZE;
      for (const kind of kinds) {
        for (const c of candidateStarts(chunk, opts.bits, kind)) {
          candidates++;
          for (const s of c.starts) {
            const pa = base + BigInt(s);
            const key = `${kind}:${pa}`;
            if (pa < iv.start || found.has(key)) continue;
            const ins = confirmSite(chunk, s, c.opcode, opts.bits, kind, 0n);
            if (ins) found.set(key, { kind, pa, ...ins });
          }
        }
      }
      carry = chunk.slice(chunk.length - OVERLAP - MAX_INSTRUCTION);
      carryAt = base + BigInt(chunk.length - OVERLAP - MAX_INSTRUCTION);
    }
  }

  // Every executable alias of each instruction, in the ranges' order.
  const sites: CodeSite[] = [];
  const seen = new Set<string>();
  for (const r of ranked) {
    const here: CodeSite[] = [];
    for (const f of found.values()) {
      if (f.pa < r.pa || f.pa + BigInt(f.length) > r.pa + r.size) continue;
      const va = r.va + (f.pa - r.pa);
      if (seen.has(`${f.kind}:${va}`)) continue;
      seen.add(`${f.kind}:${va}`);
      here.push({ kind: f.kind, va, pa: f.pa, length: f.length, text: f.text, from: 'memory' });
    }
    // In the range holding RIP, the nearest first; elsewhere in address order.
    const key = (va: bigint): bigint => (r === holding ? (va > opts.rip! ? va - opts.rip! : opts.rip! - va) : va);
    sites.push(...here.sort((a, b) => (key(a.va) < key(b.va) ? -1 : key(a.va) > key(b.va) ? 1 : 0)));
  }
  return {
    kinds: [...kinds],
    sites,
    executableRanges: ranges.length,
    executableBytes,
    scannedBytes: Math.min(scanned, Number(planned.reduce((n, p) => n + (p.end - p.start), 0n))),
    skippedBytes: skipped,
    candidates,
    ms: performance.now() - t0,
  };
}

/** The part of `r` in the 2 MiB-aligned window around `rip`, or null when that is all of `r`. */
function aroundRip(r: MapRange, rip: bigint): MapRange | null {
  const WINDOW = 0x200000n;
  const start = (rip & ~(WINDOW - 1n)) > r.va ? rip & ~(WINDOW - 1n) : r.va;
  const end = start + WINDOW < r.va + r.size ? start + WINDOW : r.va + r.size;
  if (start === r.va && end === r.va + r.size) return null;
  return { ...r, va: start, pa: r.pa + (start - r.va), size: end - start };
}

function insertSorted(list: Interval[], iv: Interval): void {
  let i = 0;
  while (i < list.length && list[i]!.start < iv.start) i++;
  list.splice(i, 0, iv);
}

/** One line: how much was scanned, for the user. */
export function describeScan(r: ScanReport): string {
  const mib = (n: bigint | number): string => `${(Number(n) / (1 << 20)).toFixed(Number(n) >= 1 << 20 ? 1 : 2)} MiB`;
  const skipped = r.skippedBytes > 0n ? `, ${mib(r.skippedBytes)} skipped (outside RAM or past the budget)` : '';
  const n = r.sites.length;
  const what = r.kinds.map((k) => (k === 'lidt' ? 'LIDT' : k === 'mov-cr0' ? 'mov-to-CR0' : 'mov-to-CR3')).join(' and ');
  return (
    `${n} ${what} site${n === 1 ? '' : 's'} in ${r.executableRanges} executable range${r.executableRanges === 1 ? '' : 's'} (${mib(r.executableBytes)}): ` +
    `${mib(r.scannedBytes)} of physical memory scanned in ${Math.round(r.ms)} ms${skipped}` +
    (n > 0 ? `; ${r.sites.slice(0, 4).map((s) => `${hex(s.va)} (${s.text})`).join(', ')}${n > 4 ? ' ...' : ''}` : '')
  );
}
