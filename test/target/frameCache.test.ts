/**
 * The per-stop cache: frames asked for once per stop (one fetch per batch, duplicates folded),
 * memoised values, a bound on what is kept, and drops that also void fetches still in flight.
 */
import { describe, expect, it } from 'vitest';
import { FrameCache } from '../../src/target/frameCache.js';
import type { FrameData } from '../../src/paging/memory.js';

/** A frame whose first dword says which frame and which fetch it came from. */
function frame(pa: number, fetch: number): DataView {
  const v = new DataView(new ArrayBuffer(4096));
  v.setUint32(0, pa, true);
  v.setUint32(4, fetch, true);
  return v;
}

function counting(nullFrames: readonly number[] = []) {
  const calls: number[][] = [];
  const fetch = async (pas: readonly number[]): Promise<FrameData[]> => {
    calls.push([...pas]);
    return pas.map((pa) => (nullFrames.includes(pa) ? null : frame(pa, calls.length)));
  };
  return { calls, fetch };
}

const tag = (f: FrameData | undefined) => (f ? [f.getUint32(0, true), f.getUint32(4, true)] : null);

describe('FrameCache', () => {
  it('fetches each missing frame once, in one call per batch, and answers in the order asked', async () => {
    const c = new FrameCache();
    const { calls, fetch } = counting([0x5000]);
    expect((await c.frames([0x1000, 0x2000, 0x1000, 0x5000], fetch)).map(tag)).toEqual([[0x1000, 1], [0x2000, 1], [0x1000, 1], null]);
    expect((await c.frames([0x2000, 0x3000, 0x5000], fetch)).map(tag)).toEqual([[0x2000, 1], [0x3000, 2], null]);
    expect(await c.frames([0x1000, 0x5000], fetch)).toHaveLength(2);
    expect(calls).toEqual([[0x1000, 0x2000, 0x5000], [0x3000]]); // a null frame is remembered too
    expect(c.frameCount).toBe(4);
  });

  it('drop() forgets every frame and value, and a fetch in flight at the drop does not refill it', async () => {
    const c = new FrameCache();
    const { calls, fetch } = counting();
    await c.frames([0x1000], fetch);
    let release!: () => void;
    const slow = (pas: readonly number[]) => new Promise<FrameData[]>((r) => (release = () => r(pas.map((pa) => frame(pa, 99)))));
    const pending = c.frames([0x2000], slow);
    c.drop();
    release();
    expect((await pending).map(tag)).toEqual([[0x2000, 99]]); // the caller still gets what it asked for
    expect(c.frameCount).toBe(0);
    await c.frames([0x1000, 0x2000], fetch);
    expect(calls).toEqual([[0x1000], [0x1000, 0x2000]]);
    expect(c.epoch).toBe(1);
  });

  it('keeps at most maxFrames, the oldest going first', async () => {
    const c = new FrameCache(2);
    const { calls, fetch } = counting();
    await c.frames([0x1000, 0x2000, 0x3000], fetch);
    expect(c.frameCount).toBe(2);
    await c.frames([0x2000, 0x3000], fetch);
    await c.frames([0x1000], fetch);
    expect(calls).toEqual([[0x1000, 0x2000, 0x3000], [0x1000]]);
  });

  it('memo() computes a value once per stop, forgets failures, and starts again after a drop', async () => {
    const c = new FrameCache();
    let n = 0;
    const compute = async () => ++n;
    expect([await c.memo('cpu', compute), await c.memo('cpu', compute)]).toEqual([1, 1]);
    c.drop();
    expect(await c.memo('cpu', compute)).toBe(2);
    let fail = true;
    const flaky = async () => {
      if (fail) throw new Error('lost');
      return 'ok';
    };
    await expect(c.memo('x', flaky)).rejects.toThrow('lost');
    fail = false;
    expect(await c.memo('x', flaky)).toBe('ok');
  });
});
