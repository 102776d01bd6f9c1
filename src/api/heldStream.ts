/**
 * A stream that holds the target's gate until it ends: when it is read to the end, when it fails,
 * or when it is returned, even before it was ever read (which a plain generator's `finally` would
 * miss: a generator never started never runs it).
 */
import type { Release } from './gate.js';

/** An async generator that calls `release` once, however it ends. */
export class HeldStream<T, R> implements AsyncGenerator<T, R, undefined> {
  constructor(
    private readonly inner: AsyncGenerator<T, R, undefined>,
    private readonly release: Release,
  ) {}

  async next(): Promise<IteratorResult<T, R>> {
    try {
      const r = await this.inner.next();
      if (r.done) this.release();
      return r;
    } catch (e) {
      this.release();
      throw e;
    }
  }

  async return(value: R | PromiseLike<R>): Promise<IteratorResult<T, R>> {
    this.release();
    return this.inner.return(value);
  }

  async throw(e: unknown): Promise<IteratorResult<T, R>> {
    this.release();
    return this.inner.throw(e);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
