/**
 * The per-stop cache of a live target: the frames, and facts such as the registers, read since the
 * guest last stopped. While the guest stands still they cannot change, so a walk of hundreds of
 * addresses reads the upper tables once; the owner drops everything when the guest may have moved
 * or memory may have changed (a resume, a step, any write, a stop it did not cause).
 *
 * Fetches still in flight when the cache is dropped do not fill it afterwards: each fetch belongs to
 * the stop it started in.
 */
import type { FrameData } from '../paging/memory.js';

/** Reads the frames at `pas` (all of them, in order). */
export type FrameFetch = (pas: readonly number[]) => Promise<FrameData[]>;

/** The default bound: 16,384 frames (64 MiB). */
export const DEFAULT_CACHE_FRAMES = 16384;

/** Frames and memoised values of one stop of the guest. */
export class FrameCache {
  private readonly frameMap = new Map<number, FrameData>();
  private readonly memos = new Map<string, Promise<unknown>>();
  private stop = 0;

  /** `maxFrames` bounds the frames kept; the oldest go first (default {@link DEFAULT_CACHE_FRAMES}). */
  constructor(private readonly maxFrames = DEFAULT_CACHE_FRAMES) {}

  /** Counts the drops: a value read under one epoch is stale under the next. */
  get epoch(): number {
    return this.stop;
  }

  /** How many frames are held. */
  get frameCount(): number {
    return this.frameMap.size;
  }

  /**
   * The frames at `pas`, in order: those held, and the others through one call of `fetch` (each
   * missing frame asked for once, however often `pas` names it). Rejects with what `fetch` rejects with.
   */
  async frames(pas: readonly number[], fetch: FrameFetch): Promise<FrameData[]> {
    const missing = [...new Set(pas.filter((pa) => !this.frameMap.has(pa)))];
    if (missing.length === 0) return pas.map((pa) => this.frameMap.get(pa)!);
    const epoch = this.stop;
    const got = await fetch(missing);
    const fresh = new Map<number, FrameData>();
    missing.forEach((pa, i) => fresh.set(pa, got[i] ?? null));
    if (epoch === this.stop) {
      for (const [pa, f] of fresh) this.frameMap.set(pa, f);
      this.trim();
    }
    return pas.map((pa) => (fresh.has(pa) ? fresh.get(pa)! : this.frameMap.get(pa)!));
  }

  /** The value of `key` for this stop, computed once by `compute`; a failed computation is not kept. */
  memo<T>(key: string, compute: () => Promise<T>): Promise<T> {
    const held = this.memos.get(key);
    if (held) return held as Promise<T>;
    const epoch = this.stop;
    const p = compute();
    this.memos.set(key, p);
    p.catch(() => {
      if (epoch === this.stop && this.memos.get(key) === p) this.memos.delete(key);
    });
    return p;
  }

  /** Forgets every frame and value: the guest may have moved. */
  drop(): void {
    this.stop++;
    this.frameMap.clear();
    this.memos.clear();
  }

  private trim(): void {
    for (const pa of this.frameMap.keys()) {
      if (this.frameMap.size <= this.maxFrames) return;
      this.frameMap.delete(pa);
    }
  }
}
