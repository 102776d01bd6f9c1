/**
 * Splitting memory transfers into packets, and running them pipelined: a window of requests in
 * flight, so the stub never waits for the client between packets.
 */

/** One packet's share of a transfer: `length` bytes at `address`, `offset` bytes into the buffer. */
export interface Chunk {
  readonly address: bigint;
  readonly offset: number;
  readonly length: number;
}

/** The largest power of two not above `n` (at least 1). */
export function powerOfTwoAtMost(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/**
 * Splits [address, address + length) at multiples of `size`, so no chunk crosses a `size`
 * boundary (with `size` a power of two up to 4096, no chunk crosses a page either, and an error
 * names one page). Throws RangeError on a negative length or a range beyond 2^64.
 */
export function splitAligned(address: bigint, length: number, size: number): Chunk[] {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, not ${length}`);
  if (address < 0n || address + BigInt(length) > 1n << 64n) {
    throw new RangeError(`0x${address.toString(16)} + 0x${length.toString(16)} is not within the 64-bit address space`);
  }
  const out: Chunk[] = [];
  const step = BigInt(size);
  for (let offset = 0; offset < length; ) {
    const at = address + BigInt(offset);
    const n = Math.min(size - Number(at % step), length - offset);
    out.push({ address: at, offset, length: n });
    offset += n;
  }
  return out;
}

/**
 * Runs `task` on every item with at most `window` running at once, in item order. After a
 * failure no new item starts; once the running ones settle, the failure of the lowest item is thrown.
 */
export async function pipelined<T>(items: readonly T[], window: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const failed: { index: number; error: unknown }[] = [];
  const worker = async (): Promise<void> => {
    while (failed.length === 0 && next < items.length) {
      const index = next++;
      try {
        await task(items[index]!, index);
      } catch (error) {
        failed.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(window, items.length)) }, worker));
  if (failed.length > 0) throw failed.reduce((a, b) => (b.index < a.index ? b : a)).error;
}
