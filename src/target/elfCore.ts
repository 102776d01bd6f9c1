/**
 * Reading the ELF cores QEMU's `dump-guest-memory` writes (target/i386/arch_dump.c, dump/dump.c):
 * the header, the PT_LOAD segments (guest-physical memory by `p_paddr`), the notes, and the CPU
 * state they carry ("CORE" NT_PRSTATUS and "QEMU" QEMUCPUState). Every malformed input becomes a
 * `TargetError` with code E_FORMAT and a one-line message; nothing here trusts a size it read.
 */
import type { CpuState, Segment } from '../paging/cpu.js';
import { CR0, CR4, EFER, has } from '../paging/registers.js';
import { TargetError } from './target.js';

/** The ELF constants this reader and QEMU's writer share. */
export const ELF = {
  /** ET_CORE. */
  ET_CORE: 4,
  /** EM_386: QEMU writes it when the first CPU is not in long mode. */
  EM_386: 3,
  /** EM_X86_64: QEMU writes it only when the first CPU is in long mode (EFER.LMA). */
  EM_X86_64: 62,
  /** A program header for memory: guest-physical at p_paddr. */
  PT_LOAD: 1,
  /** A program header for the notes. */
  PT_NOTE: 4,
  /** e_phnum when the real count is in section header 0's sh_info. */
  PN_XNUM: 0xffff,
  /** The "CORE" note with the Linux prstatus. */
  NT_PRSTATUS: 1,
  /** The type of the "QEMU" note. */
  NT_QEMU: 0,
} as const;

/** Bytes of an ELF header, by class. */
export const EHDR_SIZE = { 32: 52, 64: 64 } as const;
/** Bytes of a program header, by class. */
export const PHDR_SIZE = { 32: 32, 64: 56 } as const;
/** Bytes of a section header, by class. */
export const SHDR_SIZE = { 32: 40, 64: 64 } as const;

/** Bytes of QEMUCPUState version 1 without the later `kernel_gs_base` (QEMU 7.2 writes 440 with it). */
export const QEMU_CPU_STATE_MIN_SIZE = 432;
/** Bytes of x86_64_elf_prstatus. */
export const PRSTATUS64_SIZE = 336;
/** Bytes of x86_elf_prstatus. */
export const PRSTATUS32_SIZE = 144;

/** The note segments are read whole; more than this is not a QEMU core. */
const MAX_NOTES_BYTES = 64 << 20;
/** The program header table is read whole; more than this is not a QEMU core. */
const MAX_HEADERS_BYTES = 64 << 20;

/** A file the parser reads from: `read` returns fewer bytes than asked only at the end of the file. */
export interface CoreFile {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/** A PT_LOAD: `memsz` bytes of guest-physical memory at `paddr`, the first `filesz` of them at `offset`. */
export interface ElfLoad {
  /** Its index among the program headers (as `readelf -l` counts). */
  index: number;
  paddr: number;
  memsz: number;
  /** File offset of the stored bytes (meaningless, and 0, when `filesz` is 0). */
  offset: number;
  filesz: number;
}

/** One note: its name without the terminating NUL, its type, its descriptor bytes. */
export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

/** What an ELF core holds. */
export interface ElfCore {
  elfClass: 32 | 64;
  machine: number;
  loads: ElfLoad[];
  notes: ElfNote[];
}

/** A readable stretch of physical memory: file bytes from `offset`, or zeros when `offset` is null. */
export interface Extent {
  start: number;
  end: number;
  offset: number | null;
}

/** The registers of a "CORE" NT_PRSTATUS note, by lower-case name (eflags as rflags, 32-bit names widened). */
export interface PrStatus {
  /** QEMU writes the CPU index plus one. */
  pid: number;
  regs: Record<string, bigint>;
}

/** A QEMUCPUSegment. */
export interface QemuSegment {
  selector: number;
  limit: number;
  flags: number;
  base: bigint;
}

/** A decoded "QEMU" note (QEMUCPUState). */
export interface QemuCpuState {
  version: number;
  size: number;
  /** rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15. */
  gpr: Record<string, bigint>;
  rip: bigint;
  rflags: bigint;
  segments: Record<'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'ldt' | 'tr' | 'gdt' | 'idt', QemuSegment>;
  /** CR0..CR4 (CR1 is always 0). */
  cr: [bigint, bigint, bigint, bigint, bigint];
  /** Present when `size` is at least 440 (QEMU 7.2 writes it); undefined in older cores. */
  kernelGsBase?: bigint;
}

/** One CPU of a core: its NT_PRSTATUS and QEMU notes, paired by order. */
export interface CoreCpu {
  prstatus?: PrStatus;
  qemu?: QemuCpuState;
}

function bad(message: string): TargetError {
  return new TargetError('E_FORMAT', message);
}

function h(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

/** Reads exactly `length` bytes or throws E_FORMAT naming `what`. */
function readExact(file: CoreFile, offset: number, length: number, what: string): DataView {
  if (offset + length > file.size) {
    throw bad(`${what} at ${h(offset)} (${length} bytes) runs past the end of the file (${h(file.size)} bytes): the dump is truncated`);
  }
  const b = file.read(offset, length);
  if (b.length < length) throw bad(`${what} at ${h(offset)}: the file ended after ${b.length} of ${length} bytes`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads a 32- or 64-bit word of a header as a safe integer, or throws E_FORMAT. */
function word(v: DataView, at: number, cls: 32 | 64, what: string): number {
  if (cls === 32) return v.getUint32(at, true);
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} is ${h(x)}, beyond any file or physical address`);
  return Number(x);
}

/**
 * Parses an ELF core: header, program headers, notes. Throws `TargetError` (E_FORMAT) for
 * anything that is not a well-formed little-endian x86 core, a truncated file included.
 */
export function parseElfCore(file: CoreFile): ElfCore {
  if (file.size < 16) throw bad(`truncated ELF header: the file has ${file.size} bytes, e_ident alone needs 16`);
  const ident = readExact(file, 0, 16, 'e_ident');
  if (ident.getUint32(0, false) !== 0x7f454c46) throw bad('not an ELF file: the magic is not 7f 45 4c 46');
  const clsByte = ident.getUint8(4);
  if (clsByte !== 1 && clsByte !== 2) throw bad(`unknown ELF class ${clsByte} (1 is ELFCLASS32, 2 is ELFCLASS64)`);
  const cls: 32 | 64 = clsByte === 1 ? 32 : 64;
  if (ident.getUint8(5) !== 1) throw bad(`ELF data encoding ${ident.getUint8(5)}: QEMU's x86 cores are little-endian (1)`);
  if (file.size < EHDR_SIZE[cls]) {
    throw bad(`truncated ELF header: the file has ${file.size} bytes, an ELF${cls} header needs ${EHDR_SIZE[cls]}`);
  }
  const eh = readExact(file, 0, EHDR_SIZE[cls], 'the ELF header');
  const type = eh.getUint16(16, true);
  if (type !== ELF.ET_CORE) {
    throw bad(`not a core file: e_type is ${type}, a core's is ${ELF.ET_CORE} (pass a kernel image with --elf, a memory dump with --dump)`);
  }
  const machine = eh.getUint16(18, true);
  if (machine !== ELF.EM_386 && machine !== ELF.EM_X86_64) {
    throw bad(`not an x86 core: e_machine is ${machine} (EM_386 is 3, EM_X86_64 is 62)`);
  }
  // Field offsets differ by class; e_ehsize is not checked (QEMU 7.2 writes 8 there).
  const phoff = word(eh, cls === 64 ? 32 : 28, cls, 'e_phoff');
  const shoff = word(eh, cls === 64 ? 40 : 32, cls, 'e_shoff');
  const fo = cls === 64 ? 54 : 42;
  const phentsize = eh.getUint16(fo, true);
  let phnum = eh.getUint16(fo + 2, true);
  const shentsize = eh.getUint16(fo + 4, true);
  const shnum = eh.getUint16(fo + 6, true);

  if (shnum > 0 || phnum === ELF.PN_XNUM) checkSections(file, cls, shoff, shentsize, shnum);
  if (phnum === ELF.PN_XNUM) {
    // Extended numbering: the real count is section header 0's sh_info.
    const sh0 = readExact(file, shoff, SHDR_SIZE[cls], 'section header 0 (it holds the program header count)');
    phnum = sh0.getUint32(cls === 64 ? 44 : 28, true);
  }
  if (phnum === 0) throw bad('no program headers: the core holds no memory');
  if (phentsize !== PHDR_SIZE[cls]) throw bad(`e_phentsize is ${phentsize}, ELF${cls} program headers are ${PHDR_SIZE[cls]} bytes`);
  if (phnum * phentsize > MAX_HEADERS_BYTES) throw bad(`${phnum} program headers: more than any QEMU core has (${MAX_HEADERS_BYTES >> 20} MiB of them)`);
  if (phoff + phnum * phentsize > file.size) {
    throw bad(`the ${phnum} program headers at ${h(phoff)} run past the end of the file (${h(file.size)} bytes): the dump is truncated`);
  }
  const ph = readExact(file, phoff, phnum * phentsize, 'the program headers');

  const loads: ElfLoad[] = [];
  const notes: ElfNote[] = [];
  let notesBytes = 0;
  for (let i = 0; i < phnum; i++) {
    const p = i * phentsize;
    const ptype = ph.getUint32(p, true);
    if (ptype !== ELF.PT_LOAD && ptype !== ELF.PT_NOTE) continue;
    const what = `program header ${i} (${ptype === ELF.PT_LOAD ? 'PT_LOAD' : 'PT_NOTE'})`;
    const filesz = word(ph, cls === 64 ? p + 32 : p + 16, cls, `${what}: p_filesz`);
    const memsz = word(ph, cls === 64 ? p + 40 : p + 20, cls, `${what}: p_memsz`);
    // QEMU writes p_offset = -1 with p_filesz = 0 for memory it does not store.
    const offset = filesz === 0 ? 0 : word(ph, cls === 64 ? p + 8 : p + 4, cls, `${what}: p_offset`);
    if (filesz > 0 && offset + filesz > file.size) {
      throw bad(
        `${what} needs file bytes ${h(offset)}-${h(offset + filesz)} but the file ends at ${h(file.size)}: the dump is truncated`,
      );
    }
    if (ptype === ELF.PT_NOTE) {
      notesBytes += filesz;
      if (notesBytes > MAX_NOTES_BYTES) throw bad(`${what}: the notes take over ${MAX_NOTES_BYTES >> 20} MiB, no QEMU core has that many`);
      if (filesz > 0) notes.push(...parseNotes(readExact(file, offset, filesz, what), what));
      continue;
    }
    if (filesz > memsz) throw bad(`${what}: p_filesz ${h(filesz)} is larger than p_memsz ${h(memsz)}`);
    const paddr = word(ph, cls === 64 ? p + 24 : p + 12, cls, `${what}: p_paddr`);
    if (paddr + memsz > 2 ** 52) throw bad(`${what}: physical ${h(paddr)}+${h(memsz)} goes past 52 bits`);
    if (memsz === 0) continue;
    loads.push({ index: i, paddr, memsz, offset, filesz });
  }
  if (loads.length === 0) throw bad('no PT_LOAD segment: the core holds no memory');
  return { elfClass: cls, machine, loads, notes };
}

/**
 * QEMU 7.2 and later put a section string table after the memory, so a section that runs past the
 * end of the file is the surest sign of a truncated dump.
 */
function checkSections(file: CoreFile, cls: 32 | 64, shoff: number, shentsize: number, shnum: number): void {
  if (shentsize !== SHDR_SIZE[cls]) throw bad(`e_shentsize is ${shentsize}, ELF${cls} section headers are ${SHDR_SIZE[cls]} bytes`);
  const count = Math.max(shnum, 1);
  const sh = readExact(file, shoff, count * shentsize, 'the section headers');
  for (let i = 0; i < shnum; i++) {
    const s = i * shentsize;
    const type = sh.getUint32(s + 4, true);
    if (type === 0 || type === 8) continue; // SHT_NULL, SHT_NOBITS: no file bytes
    const off = word(sh, cls === 64 ? s + 24 : s + 16, cls, `section ${i}: sh_offset`);
    const size = word(sh, cls === 64 ? s + 32 : s + 20, cls, `section ${i}: sh_size`);
    if (off + size > file.size) {
      throw bad(`section ${i} needs file bytes ${h(off)}-${h(off + size)} but the file ends at ${h(file.size)}: the dump is truncated`);
    }
  }
}

/** Splits a note segment into notes (12-byte header, name and descriptor each padded to 4 bytes). */
function parseNotes(v: DataView, what: string): ElfNote[] {
  const out: ElfNote[] = [];
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  let at = 0;
  while (at < v.byteLength) {
    if (at + 12 > v.byteLength) throw bad(`${what}: a note header at +${h(at)} is cut off by the end of its segment`);
    const namesz = v.getUint32(at, true);
    const descsz = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + pad4(namesz);
    const next = descAt + pad4(descsz);
    // The padded name and descriptor must lie inside the segment (QEMU pads both).
    if (descAt + descsz > v.byteLength || next > v.byteLength) {
      throw bad(`${what}: the note at +${h(at)} (name ${namesz} bytes, descriptor ${descsz} bytes) runs past the end of its segment`);
    }
    const nameBytes = bytes.subarray(nameAt, nameAt + namesz);
    const nul = nameBytes.indexOf(0);
    const name = LATIN1.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul));
    out.push({ name, type, desc: bytes.slice(descAt, descAt + descsz) });
    at = next;
  }
  return out;
}

const LATIN1 = new TextDecoder('latin1');

function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * The physical memory the PT_LOADs describe, as sorted, disjoint extents. Where segments overlap,
 * stored bytes win over the zero-filled tail (p_memsz beyond p_filesz) of another segment.
 */
export function physicalExtents(loads: readonly ElfLoad[]): Extent[] {
  const files = loads
    .filter((l) => l.filesz > 0)
    .map((l) => ({ start: l.paddr, end: l.paddr + l.filesz, offset: l.offset }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  const stored: Extent[] = [];
  let covered = -1;
  for (const f of files) {
    if (f.end <= covered) continue;
    const s = Math.max(f.start, covered);
    stored.push({ start: s, end: f.end, offset: f.offset + (s - f.start) });
    covered = f.end;
  }
  const zeroRuns = union(loads.filter((l) => l.memsz > l.filesz).map((l) => ({ start: l.paddr + l.filesz, end: l.paddr + l.memsz })));
  const zeros = subtract(zeroRuns, stored).map((r) => ({ ...r, offset: null }));
  const all = [...stored, ...zeros].sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  for (const e of all) {
    const last = out[out.length - 1];
    const continues =
      last !== undefined &&
      last.end === e.start &&
      (last.offset === null ? e.offset === null : e.offset !== null && last.offset + (last.end - last.start) === e.offset);
    if (continues) last.end = e.end;
    else out.push({ ...e });
  }
  return out;
}

function union(ranges: { start: number; end: number }[]): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** `ranges` minus `holes` (both sorted and disjoint). */
function subtract(ranges: { start: number; end: number }[], holes: readonly Extent[]): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let j = 0;
  for (const r of ranges) {
    let s = r.start;
    while (j < holes.length && holes[j]!.end <= s) j++;
    let k = j;
    while (s < r.end) {
      const hole = holes[k];
      if (!hole || hole.start >= r.end) {
        out.push({ start: s, end: r.end });
        break;
      }
      if (hole.start > s) out.push({ start: s, end: hole.start });
      s = Math.max(s, hole.end);
      k++;
    }
  }
  return out;
}

const PRSTATUS64_REGS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax',
  'rip', 'cs', 'rflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

/**
 * Decodes a "CORE" NT_PRSTATUS descriptor: x86_64_elf_prstatus for EM_X86_64, x86_elf_prstatus for
 * EM_386. Throws E_FORMAT when the descriptor is too short.
 */
export function decodePrStatus(machine: number, desc: Uint8Array): PrStatus {
  const v = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const regs: Record<string, bigint> = {};
  if (machine === ELF.EM_X86_64) {
    if (desc.length < PRSTATUS64_SIZE) throw bad(`NT_PRSTATUS note of ${desc.length} bytes: x86_64_elf_prstatus has ${PRSTATUS64_SIZE}`);
    PRSTATUS64_REGS.forEach((name, i) => (regs[name] = v.getBigUint64(112 + i * 8, true)));
    return { pid: v.getUint32(32, true), regs };
  }
  if (desc.length < PRSTATUS32_SIZE) throw bad(`NT_PRSTATUS note of ${desc.length} bytes: x86_elf_prstatus has ${PRSTATUS32_SIZE}`);
  const r = 72;
  const u32 = (at: number): bigint => BigInt(v.getUint32(r + at, true));
  const u16 = (at: number): bigint => BigInt(v.getUint16(r + at, true));
  Object.assign(regs, {
    rbx: u32(0), rcx: u32(4), rdx: u32(8), rsi: u32(12), rdi: u32(16), rbp: u32(20), rax: u32(24),
    ds: u16(28), es: u16(32), fs: u16(36), gs: u16(40), orig_rax: u32(44), rip: u32(48),
    cs: u16(52), rflags: u32(56), rsp: u32(60), ss: u16(64),
  });
  return { pid: v.getUint32(24, true), regs };
}

const QEMU_GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
const QEMU_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr', 'gdt', 'idt'] as const;

/**
 * Decodes a "QEMU" note (QEMUCPUState). Uses its own `size` field, so later versions that append
 * fields still decode. Throws E_FORMAT when the descriptor is shorter than version 1's 432 bytes.
 */
export function decodeQemuCpuState(desc: Uint8Array): QemuCpuState {
  if (desc.length < QEMU_CPU_STATE_MIN_SIZE) throw bad(`QEMU CPU note of ${desc.length} bytes: QEMUCPUState has at least ${QEMU_CPU_STATE_MIN_SIZE}`);
  const v = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const version = v.getUint32(0, true);
  const size = v.getUint32(4, true);
  if (version < 1) throw bad(`QEMU CPU note version ${version}: the first version is 1`);
  if (size < QEMU_CPU_STATE_MIN_SIZE || size > desc.length) {
    throw bad(`QEMU CPU note says it has ${size} bytes, but its descriptor has ${desc.length} (at least ${QEMU_CPU_STATE_MIN_SIZE})`);
  }
  const u64 = (at: number): bigint => v.getBigUint64(at, true);
  const gpr: Record<string, bigint> = {};
  QEMU_GPRS.forEach((n, i) => (gpr[n] = u64(8 + i * 8)));
  const segments = {} as QemuCpuState['segments'];
  QEMU_SEGMENTS.forEach((n, i) => {
    const s = 152 + i * 24;
    segments[n] = { selector: v.getUint32(s, true), limit: v.getUint32(s + 4, true), flags: v.getUint32(s + 8, true), base: u64(s + 16) };
  });
  const cr: QemuCpuState['cr'] = [u64(392), u64(400), u64(408), u64(416), u64(424)];
  const out: QemuCpuState = { version, size, gpr, rip: u64(136), rflags: u64(144), segments, cr };
  if (size >= 440) out.kernelGsBase = u64(432);
  return out;
}

/** The CPUs of a core: the n-th NT_PRSTATUS note with the n-th QEMU note (QEMU writes all of one kind, then the other). */
export function coreCpus(core: ElfCore): CoreCpu[] {
  const pr = core.notes.filter((n) => n.name === 'CORE' && n.type === ELF.NT_PRSTATUS).map((n) => decodePrStatus(core.machine, n.desc));
  const qm = core.notes.filter((n) => n.name === 'QEMU' && n.type === ELF.NT_QEMU).map((n) => decodeQemuCpuState(n.desc));
  return Array.from({ length: Math.max(pr.length, qm.length) }, (_, i) => {
    const cpu: CoreCpu = {};
    const p = pr[i];
    const q = qm[i];
    if (p) cpu.prstatus = p;
    if (q) cpu.qemu = q;
    return cpu;
  });
}

/** What a user is told when EFER had to be inferred (it contains `--efer`, so the CLI drops it when given). */
export const EFER_INFERRED_NOTE =
  "EFER is not in QEMU's ELF core: inferred LME|LMA|NXE from CR0.PG, CR4.PAE and the 64-bit CS; pass --efer to override";

/** The L bit (64-bit code segment) in QEMU's segment flags, which keep the descriptor's high dword layout. */
const DESC_L = 1 << 21;

/**
 * The CPU state of a core's first CPU: registers from the QEMU note (or, without one, from
 * NT_PRSTATUS, with CR* unknown and left 0), EFER inferred, and notes saying what was inferred.
 */
export function coreCpuState(core: ElfCore): CpuState {
  const cpus = coreCpus(core);
  const notes: string[] = [];
  const first = cpus[0];
  if (cpus.length > 1) notes.push(`the core holds ${cpus.length} CPUs: these registers are the first one's`);
  if (first?.qemu) return withQemuNote(first.qemu, core.machine, notes);
  const cpu: CpuState = { cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, rip: 0n, rsp: 0n, rflags: 0n, gpr: {}, notes };
  if (!first?.prstatus) {
    notes.push('the core holds no CPU notes: no registers are known; pass --cr3 (and --cr0/--cr4/--efer) to say how to walk');
    return cpu;
  }
  const r = first.prstatus.regs;
  for (const n of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15']) {
    const x = r[n];
    if (x !== undefined) cpu.gpr[n] = x;
  }
  cpu.rip = r.rip ?? 0n;
  cpu.rsp = r.rsp ?? 0n;
  cpu.rflags = r.rflags ?? 0n;
  for (const s of ['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const) {
    const seg: Segment = { selector: Number(r[s] ?? 0n) & 0xffff };
    const base = r[`${s}_base`];
    if (base !== undefined) seg.base = base;
    cpu[s] = seg;
  }
  notes.push(
    'the core has no QEMU CPU note, so no control registers: CR0, CR3, CR4 and EFER read as 0; pass --cr3 (and --cr0/--cr4/--efer) to say how to walk',
  );
  return cpu;
}

function withQemuNote(q: QemuCpuState, machine: number, notes: string[]): CpuState {
  const seg = (s: QemuSegment): Segment => ({ selector: s.selector & 0xffff, base: s.base, limit: s.limit, flags: s.flags });
  const S = q.segments;
  const [cr0, , cr2, cr3, cr4] = q.cr;
  const paging = has(cr0, CR0.PG) && has(cr4, CR4.PAE);
  const csLong = (S.cs.flags & DESC_L) !== 0;
  let efer = 0n;
  if (paging && csLong) {
    efer = EFER.LME | EFER.LMA | EFER.NXE;
    notes.push(EFER_INFERRED_NOTE);
  } else if (machine === ELF.EM_X86_64) {
    // QEMU writes EM_X86_64 only when the first CPU has EFER.LMA: long mode, in a compatibility-mode CS.
    efer = EFER.LME | EFER.LMA | EFER.NXE;
    notes.push(
      "EFER is not in QEMU's ELF core: inferred LME|LMA|NXE from the core's EM_X86_64 (QEMU writes it only in long mode; the CS flags do not say 64-bit); pass --efer to override",
    );
  } else {
    notes.push(
      "EFER is not in QEMU's ELF core: assumed 0 (not long mode: CR0.PG, CR4.PAE and a 64-bit CS are not all set), so NXE is unknown; pass --efer to override",
    );
  }
  return {
    cr0,
    cr2,
    cr3,
    cr4,
    efer,
    rip: q.rip,
    rsp: q.gpr.rsp ?? 0n,
    rflags: q.rflags,
    gpr: { ...q.gpr },
    cs: seg(S.cs),
    ss: seg(S.ss),
    ds: seg(S.ds),
    es: seg(S.es),
    fs: seg(S.fs),
    gs: seg(S.gs),
    ldtr: seg(S.ldt),
    tr: seg(S.tr),
    gdtr: { base: S.gdt.base, limit: S.gdt.limit },
    idtr: { base: S.idt.base, limit: S.idt.limit },
    notes,
  };
}
