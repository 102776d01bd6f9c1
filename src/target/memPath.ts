/**
 * `--mem-path FILE`: guest RAM read straight from the file QEMU maps it from, for a QEMU started with
 *
 *   -object memory-backend-file,id=ram,size=1G,mem-path=FILE,share=on -machine memory-backend=ram -m 1G
 *
 * (QEMU 7.2 syntax). QEMU is asked which backend uses FILE (`info memdev`, then `qom-get` of each
 * backend's `mem-path`, matched by device and inode), that it shares its writes with the file
 * (`share`), and which guest-physical ranges the backend covers at which offsets (`info mtree -f`:
 * below 4 GiB, then the rest above 4 GiB). Frames in those ranges are positional reads of the file;
 * everything else (ROM, MMIO, other backends) goes to the target underneath. Registers, features
 * and the RAM list come from that target too.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import type { CpuState } from '../paging/cpu.js';
import { FRAME_SIZE, type FrameData } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import { HmpError } from '../qmp/errors.js';
import { liveError } from './liveErrors.js';
import type { FlatRange } from './mtree.js';
import { memoryBackends, qomGet } from './qemuMonitor.js';
import type { QemuTarget } from './qemuTarget.js';
import { TargetError, type RamRange, type Target, type TargetInfo } from './target.js';

/** Guest-physical [start, end) stored in the file from `offset` on. */
export interface FileWindow {
  start: bigint;
  end: bigint;
  offset: bigint;
}

/** The windows of `backend` in a flat view, in address order (its RAM and ROM ranges alike). */
export function fileWindows(ranges: readonly FlatRange[], backend: string): FileWindow[] {
  return ranges
    .filter((r) => r.region === backend && r.kind !== 'i/o')
    .map((r) => ({ start: r.start, end: r.end, offset: r.offset }))
    .sort((a, b) => (a.start < b.start ? -1 : 1));
}

/** A target whose RAM is read from QEMU's backing file and everything else from `inner`. */
export class MemPathTarget implements Target {
  readonly info: TargetInfo;
  private fd: number | null;

  /**
   * Opens `path` and finds out how QEMU behind `inner` maps it. Throws TargetError: E_OPEN when the
   * file cannot be opened, no backend of this QEMU uses it, the backend does not share its writes
   * (`share=off`) or covers no guest memory, or QEMU cannot be asked; E_FORMAT when the file is
   * shorter than the ranges it backs.
   */
  static async open(inner: QemuTarget, path: string): Promise<MemPathTarget> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'it is a directory' : err.message;
      throw new TargetError('E_OPEN', `cannot open --mem-path ${path}: ${why}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new TargetError('E_OPEN', `--mem-path ${path} is not a regular file`);
      const backend = await findBackend(inner, path, st.dev, st.ino);
      const map = await inner.memoryMap();
      const windows = map ? fileWindows(map, backend) : [];
      if (windows.length === 0) throw new TargetError('E_OPEN', `QEMU maps no guest memory from the backend "${backend}" that uses ${path}`);
      const needed = windows.reduce((n, w) => (w.offset + (w.end - w.start) > n ? w.offset + (w.end - w.start) : n), 0n);
      if (BigInt(st.size) < needed) {
        throw new TargetError('E_FORMAT', `--mem-path ${path} holds ${st.size} bytes, but QEMU maps 0x${needed.toString(16)} bytes of guest memory from it`);
      }
      return new MemPathTarget(inner, fd, path, backend, windows);
    } catch (e) {
      closeSync(fd);
      throw liveError(e, inner.monitor?.label ?? 'QEMU', 'open');
    }
  }

  /** Wraps `inner` with an open file descriptor (owned from then on) and the windows it backs. */
  constructor(
    readonly inner: QemuTarget,
    fd: number,
    readonly path: string,
    /** The id of the memory backend that maps the file. */
    readonly backend: string,
    readonly windows: readonly FileWindow[],
  ) {
    this.fd = fd;
    this.info = { kind: inner.info.kind, description: `${inner.info.description}, RAM read from ${path}` };
  }

  cpuState(): Promise<CpuState> {
    return this.inner.cpuState();
  }

  cpuFeatures(): Promise<CpuFeatures> {
    return this.inner.cpuFeatures();
  }

  ram(): Promise<RamRange[] | null> {
    return this.inner.ram();
  }

  /** Frames in the file's windows from the file; the others from the target underneath, in one batch. */
  async frames(pas: readonly number[]): Promise<FrameData[]> {
    const out: FrameData[] = pas.map(() => null);
    const others: number[] = [];
    const where: number[] = [];
    pas.forEach((pa, i) => {
      const at = this.fileOffset(BigInt(pa), FRAME_SIZE);
      if (at === null) {
        others.push(pa);
        where.push(i);
        return;
      }
      const bytes = new Uint8Array(FRAME_SIZE);
      this.readInto(bytes, at);
      out[i] = new DataView(bytes.buffer);
    });
    if (others.length > 0) {
      const got = await this.inner.frames(others);
      where.forEach((i, j) => (out[i] = got[j] ?? null));
    }
    return out;
  }

  /** From the file when the bytes lie in one of its windows, else from the target underneath. */
  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    const at = this.fileOffset(pa, length);
    if (at === null) return this.inner.readPhysical(pa, length);
    const bytes = new Uint8Array(length);
    this.readInto(bytes, at);
    return bytes;
  }

  /** Closes the file, then the target underneath (which leaves the guest as it found it). */
  async close(): Promise<void> {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      closeSync(fd);
    }
    await this.inner.close();
  }

  /** The file offset of [pa, pa + length) when one window holds all of it, else null. */
  private fileOffset(pa: bigint, length: number): number | null {
    const end = pa + BigInt(length);
    for (const w of this.windows) {
      if (pa >= w.start && end <= w.end) return Number(w.offset + (pa - w.start));
    }
    return null;
  }

  private readInto(buf: Uint8Array, position: number): void {
    if (this.fd === null) throw new TargetError('E_LOST', `--mem-path ${this.path} is closed`);
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        n = readSync(this.fd, buf, done, buf.length - done, position + done);
      } catch (e) {
        throw new TargetError('E_LOST', `reading ${this.path} failed: ${(e as Error).message}`);
      }
      if (n === 0) throw new TargetError('E_LOST', `${this.path} ended at 0x${(position + done).toString(16)}: the file shrank (did QEMU exit?)`);
      done += n;
    }
  }
}

/** The id of the memory backend whose `mem-path` is the file with device `dev` and inode `ino`. */
async function findBackend(inner: QemuTarget, path: string, dev: number, ino: number): Promise<string> {
  const monitor = inner.monitor;
  if (!monitor) throw new TargetError('E_OPEN', `--mem-path needs a QEMU monitor to ask which backend uses ${path}, and ${inner.info.description} has none`);
  let ids: string[];
  try {
    ids = await memoryBackends(monitor);
  } catch (e) {
    if (e instanceof HmpError) throw new TargetError('E_OPEN', `cannot list QEMU's memory backends through ${monitor.label}: ${e.message}`);
    throw e;
  }
  const seen: string[] = [];
  for (const id of ids) {
    const file = await qomGet(monitor, `/objects/${id}`, 'mem-path');
    if (typeof file !== 'string') {
      seen.push(`${id} (not file-backed)`);
      continue;
    }
    seen.push(`${id} (${file})`);
    if (!sameFile(file, path, dev, ino)) continue;
    if ((await qomGet(monitor, `/objects/${id}`, 'share')) !== true) {
      throw new TargetError(
        'E_OPEN',
        `QEMU's memory backend "${id}" maps ${path} with share=off: the guest's writes never reach the file (start QEMU with memory-backend-file,...,share=on)`,
      );
    }
    return id;
  }
  const have = seen.length > 0 ? `its backends: ${seen.join(', ')}` : 'it has no memory backends';
  throw new TargetError(
    'E_OPEN',
    `no memory backend of this QEMU uses ${path} (${have}); start QEMU with -object memory-backend-file,id=ram,size=...,mem-path=${path},share=on -machine memory-backend=ram`,
  );
}

function sameFile(qemuPath: string, path: string, dev: number, ino: number): boolean {
  if (qemuPath === path) return true;
  try {
    const st = statSync(qemuPath);
    return st.dev === dev && st.ino === ino;
  } catch {
    return false;
  }
}
