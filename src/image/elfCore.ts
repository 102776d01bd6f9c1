/**
 * Writing an ELF core in the layout QEMU 7.2's `dump-guest-memory` writes (paging=false), for tests,
 * the demo and bug reports:
 *
 *   ELF header | section headers (NULL, .shstrtab) | PT_NOTE | PT_LOAD... | notes | memory | .shstrtab
 *
 * The notes are, per QEMU's target/i386/arch_dump.c, one "CORE" NT_PRSTATUS per CPU, then one
 * "QEMU" QEMUCPUState (version 1, 440 bytes with kernel_gs_base) per CPU. This writer is kept
 * independent of the reader in src/target/elfCore.ts on purpose: tests hold each against the other
 * and both against real QEMU. One deliberate difference from QEMU 7.2: e_ehsize is the real header
 * size (QEMU 7.2 writes 8 there).
 */
import { open } from 'node:fs/promises';
import type { CpuState, Segment } from '../paging/cpu.js';
import { EFER } from '../paging/registers.js';
import type { SparseMemory } from './sparseMemory.js';

/** A PT_LOAD by physical address: [start, end), of which [start, fileEnd) is stored (default: all of it). */
export interface CoreSegment {
  start: number;
  end: number;
  /** Bytes from here to `end` are not stored (p_filesz < p_memsz): they read as zeros. */
  fileEnd?: number;
}

/** Options of {@link buildElfCore}. */
export interface CoreOptions {
  /** ELFCLASS64 or ELFCLASS32; by default what QEMU picks (64 in long mode or with memory above 4 GiB). */
  class?: 64 | 32;
  /** Every CPU of the core, in order (default `[cpu]`); the first decides EM_X86_64 vs EM_386, as in QEMU. */
  cpus?: CpuState[];
  /** The PT_LOADs by physical address; default `[0, mem.size)`. */
  segments?: CoreSegment[];
}

const EM_386 = 3;
const EM_X86_64 = 62;
const STRTAB = new Uint8Array([0, ...new TextEncoder().encode('.shstrtab'), 0]);

/** Where everything of a core goes. */
interface CoreLayout {
  /** ELF header, section headers, program headers and notes: the file's first bytes. */
  head: Uint8Array;
  loads: { start: number; fileEnd: number; offset: number }[];
  /** The section string table and where it goes (the file's last bytes). */
  strtab: { bytes: Uint8Array; offset: number };
  size: number;
}

/**
 * The core of `mem` and `cpu` as bytes. Throws RangeError for options QEMU could not produce
 * (ELFCLASS32 in long mode or above 4 GiB, segments outside `mem`).
 */
export function buildElfCore(mem: SparseMemory, cpu: CpuState, opts: CoreOptions = {}): Buffer {
  const layout = layoutCore(mem, cpu, opts);
  const out = Buffer.alloc(layout.size);
  out.set(layout.head, 0);
  for (const l of layout.loads) {
    for (const [pa, bytes] of framesIn(mem, l.start, l.fileEnd)) out.set(bytes, l.offset + (pa - l.start));
  }
  out.set(layout.strtab.bytes, layout.strtab.offset);
  return out;
}

/** Writes the core of `mem` and `cpu` to `path` (replacing it), leaving unwritten memory as file holes. */
export async function writeElfCore(mem: SparseMemory, cpu: CpuState, path: string, opts: CoreOptions = {}): Promise<void> {
  const layout = layoutCore(mem, cpu, opts);
  const fh = await open(path, 'w');
  try {
    await fh.write(layout.head, 0, layout.head.length, 0);
    for (const l of layout.loads) {
      for (const [pa, bytes] of framesIn(mem, l.start, l.fileEnd)) await fh.write(bytes, 0, bytes.length, l.offset + (pa - l.start));
    }
    await fh.write(layout.strtab.bytes, 0, layout.strtab.bytes.length, layout.strtab.offset);
    await fh.truncate(layout.size);
  } finally {
    await fh.close();
  }
}

/** The written bytes of `mem` within [start, end), as (physical address, bytes) pieces. */
function* framesIn(mem: SparseMemory, start: number, end: number): Generator<[number, Uint8Array]> {
  for (const [fpa, bytes] of mem.writtenFrames()) {
    const s = Math.max(fpa, start);
    const e = Math.min(fpa + bytes.length, end);
    if (s < e) yield [s, bytes.subarray(s - fpa, e - fpa)];
  }
}

function layoutCore(mem: SparseMemory, cpu: CpuState, opts: CoreOptions): CoreLayout {
  const cpus = opts.cpus ?? [cpu];
  const first = cpus[0];
  if (!first) throw new RangeError('an ELF core needs at least one CPU');
  const segments = opts.segments ?? [{ start: 0, end: mem.size }];
  for (const s of segments) {
    const fileEnd = s.fileEnd ?? s.end;
    const ok = Number.isSafeInteger(s.start) && Number.isSafeInteger(s.end) && Number.isSafeInteger(fileEnd);
    if (!ok || s.start < 0 || s.end <= s.start || s.end > mem.size || fileEnd < s.start || fileEnd > s.end) {
      throw new RangeError(`segment 0x${s.start.toString(16)}-0x${s.end.toString(16)} (stored up to 0x${fileEnd.toString(16)}) is not within the memory's 0x${mem.size.toString(16)} bytes`);
    }
  }
  // QEMU: EM_X86_64 and ELFCLASS64 when the first CPU is in long mode; otherwise EM_386, and
  // ELFCLASS64 only when some memory ends above 4 GiB - 1.
  const longMode = (first.efer & EFER.LMA) !== 0n;
  const above4g = segments.some((s) => s.end > 0xffffffff);
  const cls = opts.class ?? (longMode || above4g ? 64 : 32);
  if (cls === 32 && longMode) throw new RangeError('QEMU writes a long-mode CPU as ELFCLASS64 (EM_X86_64), never ELFCLASS32');
  if (cls === 32 && above4g) throw new RangeError('ELFCLASS32 cannot hold memory above 4 GiB');
  const machine = longMode ? EM_X86_64 : EM_386;

  const notes = [
    ...cpus.map((c, i) => note('CORE', 1, machine === EM_X86_64 ? prstatus64(c, i + 1) : prstatus32(c, i + 1))),
    ...cpus.map((c) => note('QEMU', 0, qemuCpuState(c))),
  ];
  const notesSize = notes.reduce((n, b) => n + b.length, 0);
  const phnum = 1 + segments.length;
  const ehSize = cls === 64 ? 64 : 52;
  const shSize = cls === 64 ? 64 : 40;
  const phSize = cls === 64 ? 56 : 32;
  const shoff = ehSize;
  const phoff = shoff + 2 * shSize;
  const notesOffset = phoff + phnum * phSize;
  let offset = notesOffset + notesSize;
  const loads = segments.map((s) => {
    const fileEnd = s.fileEnd ?? s.end;
    const l = { start: s.start, end: s.end, fileEnd, offset };
    offset += fileEnd - s.start;
    return l;
  });
  const strtabOffset = offset;
  const size = strtabOffset + STRTAB.length;
  if (cls === 32 && size > 0xffffffff) throw new RangeError('ELFCLASS32 cannot describe a file over 4 GiB');

  const head = new Uint8Array(notesOffset + notesSize);
  const v = new DataView(head.buffer);
  const put = cls === 64 ? (at: number, x: number | bigint) => v.setBigUint64(at, BigInt(x), true) : (at: number, x: number | bigint) => v.setUint32(at, Number(x), true);
  const W = cls === 64 ? 8 : 4;
  // ELF header.
  head.set([0x7f, 0x45, 0x4c, 0x46, cls === 64 ? 2 : 1, 1, 1], 0);
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, machine, true);
  v.setUint32(20, 1, true); // EV_CURRENT
  put(24 + W, phoff);
  put(24 + 2 * W, shoff);
  const f = 24 + 3 * W + 4; // after e_flags
  v.setUint16(f, ehSize, true);
  v.setUint16(f + 2, phSize, true);
  v.setUint16(f + 4, Math.min(phnum, 0xffff), true); // PN_XNUM: the count goes to section 0's sh_info
  v.setUint16(f + 6, shSize, true);
  v.setUint16(f + 8, 2, true);
  v.setUint16(f + 10, 1, true); // e_shstrndx
  // Section 0 (NULL; sh_info = the real program header count when it does not fit e_phnum).
  if (phnum >= 0xffff) v.setUint32(shoff + (cls === 64 ? 44 : 28), phnum, true);
  // Section 1: .shstrtab.
  const s1 = shoff + shSize;
  v.setUint32(s1, 1, true); // sh_name: ".shstrtab" at 1
  v.setUint32(s1 + 4, 3, true); // SHT_STRTAB
  put(s1 + 8 + 2 * W, strtabOffset);
  put(s1 + 8 + 3 * W, STRTAB.length);
  // Program headers: PT_NOTE, then one PT_LOAD per segment (p_vaddr = p_paddr, as QEMU 7.2 writes it).
  const phdr = (i: number, type: number, off: number, paddr: number, filesz: number, memsz: number): void => {
    const p = phoff + i * phSize;
    v.setUint32(p, type, true);
    if (cls === 64) {
      put(p + 8, off);
      put(p + 16, paddr);
      put(p + 24, paddr);
      put(p + 32, filesz);
      put(p + 40, memsz);
    } else {
      put(p + 4, off);
      put(p + 8, paddr);
      put(p + 12, paddr);
      put(p + 16, filesz);
      put(p + 20, memsz);
    }
  };
  phdr(0, 4, notesOffset, 0, notesSize, notesSize);
  loads.forEach((l, i) => phdr(i + 1, 1, l.offset, l.start, l.fileEnd - l.start, l.end - l.start));
  let at = notesOffset;
  for (const n of notes) {
    head.set(n, at);
    at += n.length;
  }
  return { head, loads, strtab: { bytes: STRTAB, offset: strtabOffset }, size };
}

/** An ELF note: 12-byte header, NUL-terminated name and descriptor, each padded to 4 bytes. */
function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(`${name}\0`);
  const pad = (n: number): number => Math.ceil(n / 4) * 4;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + pad(nameBytes.length));
  return out;
}

function gpr(cpu: CpuState, name: string): bigint {
  return name === 'rsp' ? cpu.rsp : (cpu.gpr[name] ?? 0n);
}

const u64 = (x: bigint): bigint => BigInt.asUintN(64, x);

/** x86_64_elf_prstatus: pad1[32], pid, pad2[76], user_regs_struct (27 u64), pad3[8]. */
function prstatus64(cpu: CpuState, pid: number): Uint8Array {
  const out = new Uint8Array(336);
  const v = new DataView(out.buffer);
  v.setUint32(32, pid, true);
  const sel = (s: Segment | undefined): bigint => BigInt(s?.selector ?? 0);
  const regs = [
    gpr(cpu, 'r15'), gpr(cpu, 'r14'), gpr(cpu, 'r13'), gpr(cpu, 'r12'), gpr(cpu, 'rbp'), gpr(cpu, 'rbx'),
    gpr(cpu, 'r11'), gpr(cpu, 'r10'), gpr(cpu, 'r9'), gpr(cpu, 'r8'), gpr(cpu, 'rax'), gpr(cpu, 'rcx'),
    gpr(cpu, 'rdx'), gpr(cpu, 'rsi'), gpr(cpu, 'rdi'), 0n /* orig_rax */, cpu.rip, sel(cpu.cs), cpu.rflags,
    cpu.rsp, sel(cpu.ss), cpu.fs?.base ?? 0n, cpu.gs?.base ?? 0n, sel(cpu.ds), sel(cpu.es), sel(cpu.fs), sel(cpu.gs),
  ];
  regs.forEach((r, i) => v.setBigUint64(112 + i * 8, u64(r), true));
  return out;
}

/** x86_elf_prstatus: pad1[24], pid, pad2[44], the 32-bit user_regs_struct (68 bytes), pad3[4]. */
function prstatus32(cpu: CpuState, pid: number): Uint8Array {
  const out = new Uint8Array(144);
  const v = new DataView(out.buffer);
  v.setUint32(24, pid, true);
  const r = 72;
  const d = (at: number, x: bigint): void => v.setUint32(r + at, Number(x & 0xffffffffn), true);
  const w = (at: number, s: Segment | undefined): void => v.setUint16(r + at, (s?.selector ?? 0) & 0xffff, true);
  d(0, gpr(cpu, 'rbx'));
  d(4, gpr(cpu, 'rcx'));
  d(8, gpr(cpu, 'rdx'));
  d(12, gpr(cpu, 'rsi'));
  d(16, gpr(cpu, 'rdi'));
  d(20, gpr(cpu, 'rbp'));
  d(24, gpr(cpu, 'rax'));
  w(28, cpu.ds);
  w(32, cpu.es);
  w(36, cpu.fs);
  w(40, cpu.gs);
  // 44: orig_eax stays 0
  d(48, cpu.rip);
  w(52, cpu.cs);
  d(56, cpu.rflags);
  d(60, cpu.rsp);
  w(64, cpu.ss);
  return out;
}

/** QEMUCPUState version 1 as QEMU 7.2 writes it: 440 bytes, kernel_gs_base (unknown here) 0. */
function qemuCpuState(cpu: CpuState): Uint8Array {
  const out = new Uint8Array(440);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, out.length, true);
  const names = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
  names.forEach((n, i) => v.setBigUint64(8 + i * 8, u64(gpr(cpu, n)), true));
  v.setBigUint64(136, u64(cpu.rip), true);
  v.setBigUint64(144, u64(cpu.rflags), true);
  const table = (t: { base: bigint; limit: number } | undefined): Segment | undefined => t && { selector: 0, base: t.base, limit: t.limit, flags: 0 };
  const segs = [cpu.cs, cpu.ds, cpu.es, cpu.fs, cpu.gs, cpu.ss, cpu.ldtr, cpu.tr, table(cpu.gdtr), table(cpu.idtr)];
  segs.forEach((s, i) => {
    const at = 152 + i * 24;
    v.setUint32(at, s?.selector ?? 0, true);
    v.setUint32(at + 4, s?.limit ?? 0, true);
    v.setUint32(at + 8, s?.flags ?? 0, true);
    v.setBigUint64(at + 16, u64(s?.base ?? 0n), true);
  });
  [cpu.cr0, 0n, cpu.cr2, cpu.cr3, cpu.cr4].forEach((c, i) => v.setBigUint64(392 + i * 8, u64(c), true));
  return out;
}
