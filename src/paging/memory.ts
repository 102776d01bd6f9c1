/**
 * How the pure paging code reads physical memory without doing I/O itself.
 *
 * A paging computation is a generator (a "task") that yields a {@link FrameRequest} naming the
 * 4 KiB frames it needs next and receives their contents. Drivers run a task against a
 * synchronous memory ({@link runSync}) or an asynchronous one ({@link runAsync}); the walk, the
 * map and the lint are written once and run on both. Requests batch frames, so an async target
 * can fetch a whole level's tables in one pipelined round.
 */

/** The size of a frame: every paging structure lies within one. */
export const FRAME_SIZE = 4096;

/** A request for the contents of physical frames (addresses are multiples of 4096). */
export interface FrameRequest {
  readonly frames: readonly number[];
}

/** A frame's 4096 bytes, or null where nothing can be read (outside RAM, outside the dump). */
export type FrameData = DataView | null;

/** A pure paging computation: yields frame requests, returns T. */
export type PagingTask<T> = Generator<FrameRequest, T, readonly FrameData[]>;

/** Physical memory that answers at once (a dump in memory, a file read with pread, a cache). */
export interface PhysMemory {
  /** The frame at `pa` (a multiple of 4096), or null when it cannot be read. */
  frame(pa: number): FrameData;
}

/** Physical memory that answers later (a gdbstub, QMP). */
export interface AsyncPhysMemory {
  /** The frames at `pas`, in order; null for each that cannot be read. */
  frames(pas: readonly number[]): Promise<FrameData[]>;
}

/** The frame holding physical address `pa`. */
export function frameOf(pa: number): number {
  return pa - (pa % FRAME_SIZE);
}

/** Runs a task against synchronous memory. */
export function runSync<T>(task: PagingTask<T>, mem: PhysMemory): T {
  let step = task.next();
  while (!step.done) {
    step = task.next(step.value.frames.map((f) => mem.frame(f)));
  }
  return step.value;
}

/** Runs a task against asynchronous memory. */
export async function runAsync<T>(task: PagingTask<T>, mem: AsyncPhysMemory): Promise<T> {
  let step = task.next();
  while (!step.done) {
    step = task.next(await mem.frames(step.value.frames));
  }
  return step.value;
}

/** Reads the 64-bit little-endian entry at byte `offset` of a frame as two 32-bit words. */
export function readEntryWords(frame: DataView, offset: number, size: 4 | 8): [lo: number, hi: number] {
  return size === 8 ? [frame.getUint32(offset, true), frame.getUint32(offset + 4, true)] : [frame.getUint32(offset, true), 0];
}

/** Reassembles an entry from its words. */
export function entryFromWords(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Adapts synchronous memory to the asynchronous interface (for code written against targets).
 */
export function asyncMemory(mem: PhysMemory): AsyncPhysMemory {
  return { frames: async (pas) => pas.map((p) => mem.frame(p)) };
}
