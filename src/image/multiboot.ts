/**
 * Multiboot (version 1) kernels as ELF32 files, the form QEMU's `-kernel` loads: it scans the first
 * 8 KiB of the file for the header (magic 0x1BADB002, flags, checksum with magic + flags + checksum
 * = 0), refuses ELF64 ("Cannot load x86-64 image, give a 32bit one"), loads every PT_LOAD at its
 * physical address, and enters at `e_entry` in 32-bit protected mode with paging off, EAX =
 * 0x2BADB002 and EBX = the multiboot information (QEMU puts it at 0x9500, the memory map at 0x9000,
 * and the command line just past the highest segment). Bytes between segments are not specified.
 */
import type { SparseMemory } from './sparseMemory.js';

/** The magic numbers of multiboot 1. */
export const MULTIBOOT = {
  /** The header magic the loader scans for. */
  headerMagic: 0x1badb002,
  /** What the loader leaves in EAX for the kernel. */
  bootMagic: 0x2badb002,
  /** Header flag: align modules on 4 KiB. */
  pageAlign: 1 << 0,
  /** Header flag: pass the memory map. */
  memoryInfo: 1 << 1,
  /** How far into the file the header may start (it is 12 bytes, and QEMU reads 48 from there). */
  searchLimit: 8192 - 48,
} as const;

/** One PT_LOAD segment: `bytes` at physical address `pa`, zero-filled up to `memSize`. */
export interface LoadSegment {
  pa: number;
  bytes: Uint8Array;
  /** The size in memory (default `bytes.length`); the rest is zeros (bss). */
  memSize?: number;
  /** Segment rights for the ELF flags; default read, write and execute. */
  write?: boolean;
  execute?: boolean;
}

/** A kernel to package: where it enters and what it loads. */
export interface MultibootKernel {
  /** Physical address of the 32-bit entry point. */
  entry: number;
  segments: readonly LoadSegment[];
}

/** Stable codes of multiboot image errors. */
export type MultibootErrorCode =
  /** A segment outside 32-bit physical memory, below 1 MiB, or with memSize < its bytes. */
  | 'E_SEGMENT'
  /** Two segments overlap. */
  | 'E_OVERLAP'
  /** The entry point is not inside an executable segment. */
  | 'E_ENTRY'
  /** Too many segments for the header to stay within the first 8 KiB. */
  | 'E_TOO_MANY';

/** An error building a multiboot image; `code` is stable. */
export class MultibootError extends Error {
  constructor(
    readonly code: MultibootErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MultibootError';
  }
}

const EHDR_SIZE = 52;
const PHDR_SIZE = 32;
const PAGE = 0x1000;
const LOW_MEMORY_END = 0x100000;

/**
 * The ELF32 file of `kernel`: ELF header, one PT_LOAD per segment (VA = PA), the multiboot header
 * right after the program headers, then the segments' bytes at page-congruent offsets.
 * Throws MultibootError for segments that overlap, sit below 1 MiB or past 4 GiB, or a stray entry.
 */
export function buildMultibootElf(kernel: MultibootKernel): Uint8Array {
  const segments = checkSegments(kernel);
  const headerAt = align(EHDR_SIZE + PHDR_SIZE * segments.length, 4);
  if (headerAt > MULTIBOOT.searchLimit) {
    throw new MultibootError('E_TOO_MANY', `${segments.length} segments push the multiboot header past the first 8 KiB of the file`);
  }
  // Each segment's file offset is congruent to its address modulo the page size (p_align).
  const offsets: number[] = [];
  let end = headerAt + 12;
  for (const s of segments) {
    const base = align(end, PAGE);
    offsets.push(base + (s.pa % PAGE));
    end = base + (s.pa % PAGE) + s.bytes.length;
  }
  const file = new Uint8Array(end);
  const dv = new DataView(file.buffer);

  file.set([0x7f, 0x45, 0x4c, 0x46, 1 /* ELFCLASS32 */, 1 /* little-endian */, 1 /* EV_CURRENT */], 0);
  dv.setUint16(16, 2, true); // e_type: ET_EXEC
  dv.setUint16(18, 3, true); // e_machine: EM_386
  dv.setUint32(20, 1, true); // e_version
  dv.setUint32(24, kernel.entry >>> 0, true); // e_entry
  dv.setUint32(28, EHDR_SIZE, true); // e_phoff
  dv.setUint32(32, 0, true); // e_shoff: no sections
  dv.setUint32(36, 0, true); // e_flags
  dv.setUint16(40, EHDR_SIZE, true); // e_ehsize
  dv.setUint16(42, PHDR_SIZE, true); // e_phentsize
  dv.setUint16(44, segments.length, true); // e_phnum
  dv.setUint16(46, 40, true); // e_shentsize
  dv.setUint16(48, 0, true); // e_shnum
  dv.setUint16(50, 0, true); // e_shstrndx

  segments.forEach((s, i) => {
    const p = EHDR_SIZE + i * PHDR_SIZE;
    dv.setUint32(p, 1, true); // p_type: PT_LOAD
    dv.setUint32(p + 4, offsets[i]!, true); // p_offset
    dv.setUint32(p + 8, s.pa, true); // p_vaddr
    dv.setUint32(p + 12, s.pa, true); // p_paddr (what QEMU loads by)
    dv.setUint32(p + 16, s.bytes.length, true); // p_filesz
    dv.setUint32(p + 20, s.memSize ?? s.bytes.length, true); // p_memsz
    dv.setUint32(p + 24, 4 | ((s.write ?? true) ? 2 : 0) | ((s.execute ?? true) ? 1 : 0), true); // p_flags: R, W, X
    dv.setUint32(p + 28, PAGE, true); // p_align
    file.set(s.bytes, offsets[i]!);
  });

  const flags = MULTIBOOT.pageAlign | MULTIBOOT.memoryInfo;
  dv.setUint32(headerAt, MULTIBOOT.headerMagic, true);
  dv.setUint32(headerAt + 4, flags, true);
  dv.setUint32(headerAt + 8, (-(MULTIBOOT.headerMagic + flags)) >>> 0, true);
  return file;
}

/** The multiboot header as QEMU finds it: the first 4-aligned magic in the first 8 KiB whose checksum holds. */
export function findMultibootHeader(file: Uint8Array): { offset: number; flags: number } | null {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const limit = Math.min(MULTIBOOT.searchLimit, file.length - 12);
  for (let i = 0; i <= limit; i += 4) {
    if (dv.getUint32(i, true) !== MULTIBOOT.headerMagic) continue;
    const flags = dv.getUint32(i + 4, true);
    if (((MULTIBOOT.headerMagic + flags + dv.getUint32(i + 8, true)) >>> 0) === 0) return { offset: i, flags };
  }
  return null;
}

/** The written frames of `mem` within [from, to), merged into segments where they touch. */
export function segmentsFromMemory(mem: SparseMemory, from = 0, to = Infinity): LoadSegment[] {
  const out: LoadSegment[] = [];
  let start = -1;
  let parts: Uint8Array[] = [];
  const flush = () => {
    if (start < 0) return;
    const bytes = new Uint8Array(parts.length * PAGE);
    parts.forEach((p, i) => bytes.set(p, i * PAGE));
    out.push({ pa: start, bytes });
    start = -1;
    parts = [];
  };
  for (const [pa, frame] of mem.writtenFrames()) {
    if (pa < from || pa >= to) continue;
    if (start < 0 || pa !== start + parts.length * PAGE) {
      flush();
      start = pa;
    }
    parts.push(frame);
  }
  flush();
  return out;
}

function checkSegments(kernel: MultibootKernel): LoadSegment[] {
  const hex = (n: number) => `0x${n.toString(16)}`;
  const segments = [...kernel.segments].sort((a, b) => a.pa - b.pa);
  let prevEnd = 0;
  for (const s of segments) {
    const size = s.memSize ?? s.bytes.length;
    if (!Number.isInteger(s.pa) || size < s.bytes.length) {
      throw new MultibootError('E_SEGMENT', `segment at ${hex(s.pa)}: memSize must be at least its ${s.bytes.length} bytes`);
    }
    if (s.pa < LOW_MEMORY_END) {
      const why = "where the BIOS, option ROMs and QEMU's multiboot information live";
      throw new MultibootError('E_SEGMENT', `segment at ${hex(s.pa)} is below 1 MiB, ${why}`);
    }
    if (s.pa + size > 2 ** 32) throw new MultibootError('E_SEGMENT', `segment at ${hex(s.pa)} (${hex(size)} bytes) ends past 4 GiB`);
    if (s.pa < prevEnd) throw new MultibootError('E_OVERLAP', `segment at ${hex(s.pa)} overlaps the one ending at ${hex(prevEnd)}`);
    prevEnd = s.pa + size;
  }
  const entry = kernel.entry;
  const home = segments.find((s) => entry >= s.pa && entry < s.pa + (s.memSize ?? s.bytes.length));
  if (!home || home.execute === false) throw new MultibootError('E_ENTRY', `the entry point ${hex(entry)} is not inside an executable segment`);
  return segments;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
