/**
 * The machine's physical address space: RAM of a fixed size, stored sparsely in 4 KiB frames that
 * come into being on first write, and nothing else. Reads past RAM return zeros like QEMU's
 * unassigned memory (or all ones, like an open bus, when configured); writes there are dropped.
 */

const FRAME = 4096;

/** What a read of physical memory outside RAM returns. */
export type UnbackedReads = 'zeros' | 'ones';

/** A contiguous piece of a memory image: `bytes` at physical address `pa`. */
export interface MemoryChunk {
  pa: number;
  bytes: Uint8Array;
}

/** Physical memory of `ramSize` bytes, sparse, with little-endian accessors. */
export class PhysicalMemory {
  private frames = new Map<number, Uint8Array>();
  private readonly zero = new Uint8Array(FRAME);
  private readonly ones = new Uint8Array(FRAME).fill(0xff);
  private lastNo = -1;
  private lastFrame: Uint8Array | null = null;

  /** `ramSize` in bytes (a multiple of 4 KiB is not required); `unbacked` says what reads past RAM return. */
  constructor(
    readonly ramSize: number,
    readonly unbacked: UnbackedReads = 'zeros',
  ) {
    if (!Number.isSafeInteger(ramSize) || ramSize < 0) throw new RangeError(`RAM size ${ramSize} is not a byte count`);
  }

  /** True when `pa` is inside RAM. */
  isRam(pa: number): boolean {
    return pa >= 0 && pa < this.ramSize;
  }

  /** The bytes of the frame holding `pa` for reading (a shared zero or ones frame where nothing is stored). */
  private readFrame(pa: number): Uint8Array {
    const no = Math.floor(pa / FRAME);
    if (no === this.lastNo && this.lastFrame) return this.lastFrame;
    const f = this.frames.get(no);
    if (f) {
      this.lastNo = no;
      this.lastFrame = f;
      return f;
    }
    return pa < this.ramSize ? this.zero : this.unbacked === 'ones' ? this.ones : this.zero;
  }

  /** The frame holding `pa` for writing, created on demand; null outside RAM (the write is dropped). */
  private writeFrame(pa: number): Uint8Array | null {
    if (pa < 0 || pa >= this.ramSize) return null;
    const no = Math.floor(pa / FRAME);
    if (no === this.lastNo && this.lastFrame) return this.lastFrame;
    let f = this.frames.get(no);
    if (!f) {
      f = new Uint8Array(FRAME);
      this.frames.set(no, f);
    }
    this.lastNo = no;
    this.lastFrame = f;
    return f;
  }

  /** One byte at `pa`. */
  read8(pa: number): number {
    return this.readFrame(pa)[pa % FRAME]!;
  }

  /** A little-endian 32-bit value at `pa` (may cross frames). */
  read32(pa: number): number {
    const off = pa % FRAME;
    if (off <= FRAME - 4) {
      const f = this.readFrame(pa);
      return (f[off]! | (f[off + 1]! << 8) | (f[off + 2]! << 16) | (f[off + 3]! << 24)) >>> 0;
    }
    return (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0;
  }

  /** A little-endian value of `size` bytes (1 to 8) at `pa`, as a BigInt. */
  readLE(pa: number, size: number): bigint {
    if (size <= 4) {
      if (size === 4) return BigInt(this.read32(pa));
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + this.read8(pa + i);
      return BigInt(v);
    }
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.read8(pa + i));
    return v;
  }

  /** A little-endian 64-bit value at `pa`. */
  read64(pa: number): bigint {
    return BigInt(this.read32(pa)) | (BigInt(this.read32(pa + 4)) << 32n);
  }

  /** One byte at `pa` (dropped outside RAM). */
  write8(pa: number, value: number): void {
    const f = this.writeFrame(pa);
    if (f) f[pa % FRAME] = value & 0xff;
  }

  /** A little-endian 32-bit value at `pa`. */
  write32(pa: number, value: number): void {
    for (let i = 0; i < 4; i++) this.write8(pa + i, (value >>> (8 * i)) & 0xff);
  }

  /** The low `size` bytes of `value`, little-endian, at `pa`. */
  writeLE(pa: number, size: number, value: bigint): void {
    if (size <= 4) {
      let v = Number(value & 0xffffffffn);
      for (let i = 0; i < size; i++) {
        this.write8(pa + i, v & 0xff);
        v >>>= 8;
      }
      return;
    }
    let v = value;
    for (let i = 0; i < size; i++) {
      this.write8(pa + i, Number(v & 0xffn));
      v >>= 8n;
    }
  }

  /** A little-endian 64-bit value at `pa`. */
  write64(pa: number, value: bigint): void {
    this.writeLE(pa, 8, value);
  }

  /** `length` bytes at `pa` (zeros or ones outside RAM, as configured). */
  read(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = pa + done;
      const off = at % FRAME;
      const n = Math.min(FRAME - off, length - done);
      out.set(this.readFrame(at).subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Writes `bytes` at `pa`; the part outside RAM is dropped. */
  write(pa: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const at = pa + done;
      const off = at % FRAME;
      const n = Math.min(FRAME - off, bytes.length - done);
      const f = this.writeFrame(at);
      if (f) f.set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Loads a memory image. */
  load(chunks: Iterable<MemoryChunk>): void {
    for (const c of chunks) this.write(c.pa, c.bytes);
  }

  /** A copy of everything stored, to restore later (machine reset). */
  snapshot(): Map<number, Uint8Array> {
    const copy = new Map<number, Uint8Array>();
    for (const [no, f] of this.frames) copy.set(no, f.slice());
    return copy;
  }

  /** Puts back what `snapshot()` returned (the snapshot itself stays untouched). */
  restore(snapshot: ReadonlyMap<number, Uint8Array>): void {
    this.frames = new Map();
    for (const [no, f] of snapshot) this.frames.set(no, f.slice());
    this.lastNo = -1;
    this.lastFrame = null;
  }

  /** The frames holding data, as memory chunks in address order. */
  chunks(): MemoryChunk[] {
    return [...this.frames.entries()].sort((a, b) => a[0] - b[0]).map(([no, f]) => ({ pa: no * FRAME, bytes: f }));
  }
}
