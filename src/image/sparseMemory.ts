/**
 * Sparse physical memory for generated images: frames are allocated on first write, everything
 * else reads as zeros up to the RAM size, and nothing past it can be read.
 */
import type { FrameData, PhysMemory } from '../paging/memory.js';

const FRAME = 4096;

/** Physical memory of `size` bytes that stores only the frames written to. */
export class SparseMemory implements PhysMemory {
  private readonly frames = new Map<number, Uint8Array>();
  private readonly zero = new DataView(new ArrayBuffer(FRAME));

  /** `size`: the RAM size in bytes; frames at or above it read as unreadable (null). */
  constructor(readonly size: number) {}

  /** The frame at `pa`: its bytes, zeros if never written, null past the RAM size. */
  frame(pa: number): FrameData {
    if (pa < 0 || pa >= this.size) return null;
    const f = this.frames.get(pa);
    return f ? new DataView(f.buffer, f.byteOffset, FRAME) : this.zero;
  }

  /** The written frames, by address, in ascending order. */
  writtenFrames(): [number, Uint8Array][] {
    return [...this.frames.entries()].sort((a, b) => a[0] - b[0]);
  }

  private writable(pa: number): Uint8Array {
    if (pa < 0 || pa >= this.size) throw new RangeError(`physical address 0x${pa.toString(16)} is outside RAM (0x${this.size.toString(16)})`);
    const base = pa - (pa % FRAME);
    let f = this.frames.get(base);
    if (!f) {
      f = new Uint8Array(FRAME);
      this.frames.set(base, f);
    }
    return f;
  }

  /** Writes `bytes` at `pa` (may cross frames). */
  write(pa: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const at = pa + done;
      const f = this.writable(at);
      const off = at % FRAME;
      const n = Math.min(FRAME - off, bytes.length - done);
      f.set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Reads `length` bytes at `pa` (zeros where unwritten; throws past RAM). */
  read(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = pa + done;
      const f = this.frame(at - (at % FRAME));
      if (!f) throw new RangeError(`physical address 0x${at.toString(16)} is outside RAM`);
      const off = at % FRAME;
      const n = Math.min(FRAME - off, length - done);
      out.set(new Uint8Array(f.buffer, f.byteOffset + off, n), done);
      done += n;
    }
    return out;
  }

  /** Writes a little-endian 64-bit value. */
  write64(pa: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(pa, b);
  }

  /** Writes a little-endian 32-bit value. */
  write32(pa: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(pa, b);
  }

  /** Reads a little-endian 64-bit value. */
  read64(pa: number): bigint {
    return new DataView(this.read(pa, 8).buffer).getBigUint64(0, true);
  }

  /** Reads a little-endian 32-bit value. */
  read32(pa: number): number {
    return new DataView(this.read(pa, 4).buffer).getUint32(0, true);
  }
}

/** Hands out zeroed frames from a physical range, in ascending order. */
export class FrameAllocator {
  private next: number;

  constructor(
    start: number,
    private readonly end: number,
  ) {
    this.next = Math.ceil(start / FRAME) * FRAME;
  }

  /** The next free frame; throws when the range is used up. */
  alloc(): number {
    if (this.next + FRAME > this.end) throw new RangeError('frame allocator: out of frames');
    const f = this.next;
    this.next += FRAME;
    return f;
  }

  /** The first address not yet handed out. */
  get used(): number {
    return this.next;
  }
}
