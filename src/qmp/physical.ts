/**
 * Guest-physical memory through QMP. Small reads use HMP `xp /Ngx` over the 8-byte-aligned cover of
 * the range, parsed and sliced. Bulk reads use `pmemsave` into a private temporary file that
 * is read and deleted, when QEMU shares this host's file system: it is guessed from the endpoint
 * and confirmed by the file appearing; when it does not, reads fall back to `xp` in chunks.
 *
 * The two differ at the edges of RAM, as QEMU does: `xp` answers `Cannot access memory` (here
 * E_UNREADABLE) where nothing is mapped, `pmemsave` writes zeros there. `frames` reads each frame
 * with `xp`, so a frame outside RAM is null, as the paging code expects.
 */
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhysicalReadError } from './errors.js';
import { parseXp } from './hmp.js';
import { isLocalEndpoint, type QmpEndpoint, type QmpValue } from './transport.js';

/** What physical reads need from a QMP connection (a QmpClient has it). */
export interface QmpMonitor {
  readonly endpoint: QmpEndpoint;
  hmp(commandLine: string): Promise<string>;
  execute(command: string, args?: Record<string, QmpValue | undefined>): Promise<unknown>;
}

/** Options of {@link QmpPhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** Reads of at least this many bytes use `pmemsave` when QEMU is local (default 8 KiB; they break even near 4 KiB). */
  bulkThreshold?: number;
  /** Whether QEMU writes files where this process can read them (default: a guess from the endpoint). */
  local?: boolean;
  /** The directory for `pmemsave` files (default: a new private directory under the system's temp dir). */
  tmpDir?: string;
  /** The most bytes one `xp` may dump (default 64 KiB); longer reads are split. */
  xpChunkBytes?: number;
}

/** How a read was served, for callers that report it. */
export type ReadMethod = 'xp' | 'pmemsave';

const FRAME_SIZE = 4096;
const XP_WINDOW = 4;
const U64 = 1n << 64n;

/** Physical memory of the guest behind a QMP monitor. */
export class QmpPhysicalMemory {
  private readonly bulkThreshold: number;
  private readonly xpChunkBytes: number;
  private local: boolean;
  private dir: string | null;
  private readonly ownDir: boolean;
  private files = 0;
  private lastMethod: ReadMethod | null = null;

  constructor(
    private readonly monitor: QmpMonitor,
    options: PhysicalMemoryOptions = {},
  ) {
    this.bulkThreshold = options.bulkThreshold ?? 8192;
    this.xpChunkBytes = Math.max(16, Math.floor((options.xpChunkBytes ?? 65536) / 16) * 16);
    this.local = options.local ?? isLocalEndpoint(monitor.endpoint);
    this.dir = options.tmpDir ?? null;
    this.ownDir = options.tmpDir === undefined;
  }

  /** True while bulk reads go through `pmemsave` (false once QEMU's files turned out not to be visible here). */
  get bulkAvailable(): boolean {
    return this.local;
  }

  /** The directory `pmemsave` files go to: the one given, or its own (created at the first bulk read, removed by {@link close}). */
  get tmpDir(): string | null {
    return this.dir;
  }

  /** How the last read was served (null before the first). */
  get lastReadMethod(): ReadMethod | null {
    return this.lastMethod;
  }

  /**
   * `length` bytes at guest-physical `pa`, by `xp` or, from `bulkThreshold` bytes on, `pmemsave`.
   * Throws PhysicalReadError: E_UNREADABLE (with the address) where `xp` cannot access memory,
   * E_RANGE for a bad request; QmpError from the connection.
   */
  async read(pa: bigint, length: number): Promise<Uint8Array> {
    checkRange(pa, length);
    if (length === 0) return new Uint8Array(0);
    if (this.local && length >= this.bulkThreshold) {
      const bytes = await this.readWithPmemsave(pa, length);
      if (bytes) return bytes;
    }
    return this.readWithXp(pa, length);
  }

  /** Reads with `xp` only, in chunks of at most `xpChunkBytes`; throws like {@link read}. */
  async readWithXp(pa: bigint, length: number): Promise<Uint8Array> {
    checkRange(pa, length);
    const out = new Uint8Array(length);
    const chunks: [offset: number, size: number][] = [];
    for (let off = 0; off < length; off += this.xpChunkBytes) chunks.push([off, Math.min(this.xpChunkBytes, length - off)]);
    for (let i = 0; i < chunks.length; i += XP_WINDOW) {
      const window = chunks.slice(i, i + XP_WINDOW);
      const parts = await Promise.all(window.map(([off, size]) => this.xpOnce(pa + BigInt(off), size)));
      parts.forEach((bytes, j) => out.set(bytes, window[j]![0]));
    }
    this.lastMethod = 'xp';
    return out;
  }

  /**
   * Reads with `pmemsave` into a temporary file, then deletes it. Resolves null, and turns bulk reads
   * off, when QEMU cannot write there or its file does not appear here (QEMU on another host or in a
   * container). Memory QEMU cannot access reads as zeros.
   */
  async readWithPmemsave(pa: bigint, length: number): Promise<Uint8Array | null> {
    checkRange(pa, length);
    const path = join(await this.directory(), `pmem-${process.pid}-${++this.files}.bin`);
    try {
      await this.monitor.execute('pmemsave', { val: int64(pa), size: length, filename: path });
    } catch (e) {
      if ((e as { code?: string }).code !== 'E_QMP') throw e;
      this.local = false; // QEMU cannot write to our directory (another user, another host)
      return null;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      this.local = false; // QEMU wrote the file somewhere we cannot see
      return null;
    }
    await unlink(path).catch(() => undefined);
    if (bytes.length !== length) {
      throw new PhysicalReadError('E_UNREADABLE', `pmemsave wrote ${bytes.length} bytes of the ${length} asked for at ${hex(pa)}`, pa);
    }
    this.lastMethod = 'pmemsave';
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /** The 4 KiB frames at `pas` (AsyncPhysMemory's shape), each read with `xp`; null for a frame QEMU cannot access. */
  async frames(pas: readonly number[]): Promise<(DataView | null)[]> {
    const out: (DataView | null)[] = [];
    for (let i = 0; i < pas.length; i += XP_WINDOW) {
      const window = pas.slice(i, i + XP_WINDOW);
      const got = await Promise.all(
        window.map(async (pa) => {
          try {
            const b = await this.xpOnce(BigInt(pa), FRAME_SIZE);
            return new DataView(b.buffer, b.byteOffset, b.byteLength);
          } catch (e) {
            if (e instanceof PhysicalReadError && e.code === 'E_UNREADABLE') return null;
            throw e;
          }
        }),
      );
      out.push(...got);
    }
    return out;
  }

  /** Removes the temporary directory this reader created (a directory given in the options is left). */
  async close(): Promise<void> {
    if (this.dir && this.ownDir) await rm(this.dir, { recursive: true, force: true });
    if (this.ownDir) this.dir = null;
  }

  /** One `xp` of `length` bytes at `pa`: `/gx` over the 8-byte-aligned cover, sliced (never crosses a page more than asked). */
  private async xpOnce(pa: bigint, length: number): Promise<Uint8Array> {
    const first = pa & ~7n;
    const last = (pa + BigInt(length) + 7n) & ~7n;
    const count = Number((last - first) / 8n);
    const dump = parseXp(await this.monitor.hmp(`xp /${count}gx 0x${first.toString(16)}`));
    if (dump.unreadableAt !== null) {
      const at = dump.unreadableAt > pa ? dump.unreadableAt : pa;
      throw new PhysicalReadError('E_UNREADABLE', `cannot read guest-physical memory at ${hex(at)}: QEMU says "Cannot access memory" (not RAM or ROM)`, at);
    }
    if (dump.start !== first || dump.bytes.length !== count * 8) {
      throw new PhysicalReadError('E_UNREADABLE', `xp at ${hex(first)} returned ${dump.bytes.length} of ${count * 8} bytes`, pa);
    }
    const skip = Number(pa - first);
    return dump.bytes.subarray(skip, skip + length);
  }

  private async directory(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'pagewalk-pmem-'));
    return this.dir;
  }
}

/** `v` as QMP's signed int64 (`pmemsave`/`memsave` take `val` as int: 0xffffffff80000000 is -2147483648). */
export function int64(v: bigint): bigint {
  const u = ((v % U64) + U64) % U64;
  return u >= 1n << 63n ? u - U64 : u;
}

function checkRange(pa: bigint, length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new PhysicalReadError('E_RANGE', `cannot read ${length} bytes: the length must be a whole number of bytes, 0 or more`, pa);
  }
  if (pa < 0n || pa + BigInt(length) > U64) {
    throw new PhysicalReadError('E_RANGE', `cannot read ${length} bytes at ${hex(pa)}: outside the 64-bit address space`, pa);
  }
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}
