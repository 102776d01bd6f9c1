/**
 * The memory-dump target (`--dump FILE`): a raw physical memory image (file offset = physical
 * address) or an ELF core from QEMU's `dump-guest-memory`.
 *
 * Nothing is loaded whole: the file stays open and frames are read on demand with positional reads
 * (`fs.readSync` at an offset) into a bounded LRU cache of 4 KiB frames, so a 4 GiB sparse raw
 * image or a multi-GiB core costs only the frames a walk touches. Cached frames are never reused
 * for other data, so a DataView handed out stays valid after it leaves the cache.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type { CpuState } from '../paging/cpu.js';
import { FRAME_SIZE, type FrameData, type PhysMemory } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import { ELF, coreCpuState, parseElfCore, physicalExtents, type CoreFile, type ElfCore, type Extent } from './elfCore.js';
import { TargetError, type RamRange, type Target, type TargetInfo } from './target.js';

/** What a user is told about a raw image's registers (it contains `--cr3`, so the CLI drops it when given). */
export const RAW_IMAGE_NOTE = 'a raw image holds no registers: pass --cr3 (and --cr0/--cr4/--efer) to say how to walk';

/** How many frames the cache keeps (16 MiB). */
const CACHE_FRAMES = 4096;

/** The format of an open dump. */
export type DumpFormat = 'raw' | 'elf';

/** A dump file as a target: registers from its notes (ELF) or none (raw), memory read on demand. */
export class DumpTarget implements Target, PhysMemory {
  readonly info: TargetInfo;
  private readonly cache = new Map<number, DataView>();
  private readonly zero = new DataView(new ArrayBuffer(FRAME_SIZE));
  private fd: number | null;

  /** Use {@link openDump}; this takes an open file descriptor and owns it from then on. */
  constructor(
    fd: number,
    readonly path: string,
    readonly format: DumpFormat,
    private readonly extents: readonly Extent[],
    private readonly cpu: CpuState,
    description: string,
  ) {
    this.fd = fd;
    this.info = { kind: 'dump', description };
  }

  /** The frame at `pa`: file bytes, zeros where a segment stores none, null outside every segment. */
  frame(pa: number): FrameData {
    this.checkOpen();
    if (!Number.isSafeInteger(pa) || pa < 0) return null;
    const hit = this.cache.get(pa);
    if (hit) {
      this.cache.delete(pa);
      this.cache.set(pa, hit);
      return hit;
    }
    const parts = this.overlapping(pa, pa + FRAME_SIZE);
    if (parts.length === 0) return null;
    if (parts.every((e) => e.offset === null)) return this.zero;
    const bytes = new Uint8Array(FRAME_SIZE);
    for (const e of parts) {
      if (e.offset === null) continue;
      const s = Math.max(e.start, pa);
      const end = Math.min(e.end, pa + FRAME_SIZE);
      this.readInto(bytes, s - pa, end - s, e.offset + (s - e.start));
    }
    const view = new DataView(bytes.buffer);
    this.cache.set(pa, view);
    if (this.cache.size > CACHE_FRAMES) this.cache.delete(this.cache.keys().next().value!);
    return view;
  }

  /** The frames at `pas`, in order (read synchronously: a local file answers at once). */
  async frames(pas: readonly number[]): Promise<FrameData[]> {
    return pas.map((p) => this.frame(p));
  }

  /** The first CPU's registers (ELF) or zeros (raw), with notes on what was inferred or is missing. */
  async cpuState(): Promise<CpuState> {
    return structuredClone(this.cpu);
  }

  /** A dump cannot tell MAXPHYADDR or 1 GiB page support: nothing is known. */
  async cpuFeatures(): Promise<CpuFeatures> {
    return {};
  }

  /** The PT_LOAD ranges (ELF) or [0, file size) (raw), adjacent ranges merged. */
  async ram(): Promise<RamRange[]> {
    const out: RamRange[] = [];
    for (const e of this.extents) {
      const last = out[out.length - 1];
      if (last && last.end === BigInt(e.start)) last.end = BigInt(e.end);
      else out.push({ start: BigInt(e.start), end: BigInt(e.end) });
    }
    return out;
  }

  /** `length` bytes at `pa`; throws `TargetError` (E_UNREADABLE) unless every byte lies in a segment. */
  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    this.checkOpen();
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a whole number of bytes, not ${length}`);
    const start = Number(pa);
    const end = start + length;
    const parts = pa < 0n || pa > BigInt(Number.MAX_SAFE_INTEGER) ? [] : this.overlapping(start, end);
    let at = start;
    for (const e of parts) {
      if (e.start > at) break;
      at = Math.max(at, e.end);
    }
    if (length > 0 && at < end) {
      throw new TargetError('E_UNREADABLE', `physical 0x${pa.toString(16)}+0x${length.toString(16)} is outside the dump's memory (${this.rangesText()})`);
    }
    const out = new Uint8Array(length);
    for (const e of parts) {
      if (e.offset === null) continue;
      const s = Math.max(e.start, start);
      const stop = Math.min(e.end, end);
      this.readInto(out, s - start, stop - s, e.offset + (s - e.start));
    }
    return out;
  }

  /** Closes the file; later reads throw `TargetError` (E_LOST). Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    this.cache.clear();
    closeSync(fd);
  }

  /** The extents that overlap [start, end), in order. */
  private overlapping(start: number, end: number): Extent[] {
    const ex = this.extents;
    let lo = 0;
    let hi = ex.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ex[mid]!.end <= start) lo = mid + 1;
      else hi = mid;
    }
    const out: Extent[] = [];
    for (let i = lo; i < ex.length && ex[i]!.start < end; i++) out.push(ex[i]!);
    return out;
  }

  private checkOpen(): void {
    if (this.fd === null) throw new TargetError('E_LOST', `the dump ${this.path} is closed`);
  }

  private readInto(buf: Uint8Array, at: number, length: number, position: number): void {
    this.checkOpen();
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd!, buf, at + done, length - done, position + done);
      } catch (e) {
        throw new TargetError('E_LOST', `reading ${this.path} failed: ${(e as Error).message}`);
      }
      if (n === 0) throw new TargetError('E_LOST', `${this.path} ended at 0x${(position + done).toString(16)}: the file shrank after it was opened`);
      done += n;
    }
  }

  private rangesText(): string {
    const merged: { start: number; end: number }[] = [];
    for (const e of this.extents) {
      const last = merged[merged.length - 1];
      if (last && last.end === e.start) last.end = e.end;
      else merged.push({ start: e.start, end: e.end });
    }
    const parts = merged.slice(0, 4).map((e) => `0x${e.start.toString(16)}-0x${e.end.toString(16)}`);
    return `it holds ${parts.join(', ')}${merged.length > 4 ? ` and ${merged.length - 4} more ranges` : ''}`;
  }
}

/**
 * Opens a dump file: an ELF core when it starts with 7f 45 4c 46, else a raw physical memory image.
 * Throws `TargetError`: E_OPEN when the file cannot be opened, E_FORMAT when its contents are not a
 * dump (an empty file, a malformed or truncated core).
 */
export async function openDump(path: string): Promise<DumpTarget> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new TargetError('E_OPEN', `cannot open dump ${path}: ${why}`);
  }
  try {
    return describeDump(fd, path);
  } catch (e) {
    closeSync(fd);
    if (e instanceof TargetError) throw e;
    throw new TargetError('E_OPEN', `cannot read dump ${path}: ${(e as Error).message}`);
  }
}

function describeDump(fd: number, path: string): DumpTarget {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new TargetError('E_OPEN', `cannot open dump ${path}: not a regular file`);
  const size = st.size;
  if (size === 0) throw new TargetError('E_FORMAT', `${path}: the file is empty, it holds no memory`);
  const file: CoreFile = {
    size,
    read(offset, length) {
      const buf = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      return buf.subarray(0, done);
    },
  };
  const magic = file.read(0, 4);
  const isElf = magic.length === 4 && magic[0] === 0x7f && magic[1] === 0x45 && magic[2] === 0x4c && magic[3] === 0x46;
  const name = basename(path);
  if (!isElf) {
    const cpu: CpuState = { cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, rip: 0n, rsp: 0n, rflags: 0n, gpr: {}, notes: [RAW_IMAGE_NOTE] };
    return new DumpTarget(fd, path, 'raw', [{ start: 0, end: size, offset: 0 }], cpu, `raw image ${name} (${sizeText(size)})`);
  }
  let core: ElfCore;
  let cpu: CpuState;
  try {
    core = parseElfCore(file);
    cpu = coreCpuState(core);
  } catch (e) {
    if (e instanceof TargetError) throw new TargetError(e.code, `${path}: ${e.message}`);
    throw e;
  }
  const extents = physicalExtents(core.loads);
  const bytes = extents.reduce((n, e) => n + (e.end - e.start), 0);
  const arch = core.machine === ELF.EM_X86_64 ? 'x86-64' : 'i386';
  const description = `ELF core ${name} (ELF${core.elfClass} ${arch}, ${sizeText(bytes)} in ${core.loads.length} PT_LOAD${core.loads.length === 1 ? '' : 's'})`;
  return new DumpTarget(fd, path, 'elf', extents, cpu, description);
}

/** 64 MiB, 64.3 MiB, 20 KiB, 100 bytes. */
function sizeText(bytes: number): string {
  for (const [unit, shift] of [['GiB', 30], ['MiB', 20], ['KiB', 10]] as const) {
    const n = bytes / 2 ** shift;
    if (n >= 1) return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
  }
  return `${bytes} bytes`;
}
