/**
 * Who may use the target now: reads (walk, map, regs ...) share it; what moves or changes the
 * guest (step, cont, breakpoints, writes) has it alone, after the reads in flight finish, so that
 * no answer mixes two states of the guest. A waiting exclusive user holds back new shared ones, so
 * a stream of reads cannot starve a step.
 */

/** Gives the gate back; calling it twice is harmless. */
export type Release = () => void;

interface Waiter {
  exclusive: boolean;
  grant: () => void;
}

/** A shared/exclusive gate with first-come order. */
export class Gate {
  private shared = 0;
  private exclusive = false;
  private readonly queue: Waiter[] = [];

  /** True while an exclusive user waits for the shared ones to finish (a paused stream should give way). */
  get exclusiveWaiting(): boolean {
    return this.queue.some((w) => w.exclusive);
  }

  /** True while nobody holds the gate and nobody waits. */
  get idle(): boolean {
    return this.shared === 0 && !this.exclusive && this.queue.length === 0;
  }

  /** Waits for shared use (behind any exclusive user holding or waiting). */
  acquireShared(): Promise<Release> {
    if (!this.exclusive && this.queue.length === 0) {
      this.shared++;
      return Promise.resolve(this.releaser(false));
    }
    return this.enqueue(false);
  }

  /** Waits for exclusive use. */
  acquireExclusive(): Promise<Release> {
    if (!this.exclusive && this.shared === 0 && this.queue.length === 0) {
      this.exclusive = true;
      return Promise.resolve(this.releaser(true));
    }
    return this.enqueue(true);
  }

  /** Runs `fn` with shared use. */
  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquireShared();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Runs `fn` with exclusive use. */
  async withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquireExclusive();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private enqueue(exclusive: boolean): Promise<Release> {
    return new Promise((resolve) => {
      this.queue.push({ exclusive, grant: () => resolve(this.releaser(exclusive)) });
    });
  }

  private releaser(exclusive: boolean): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (exclusive) this.exclusive = false;
      else this.shared--;
      this.admit();
    };
  }

  /** Lets the waiters in that can go now: one exclusive, or every shared one up to the next exclusive. */
  private admit(): void {
    while (this.queue.length > 0 && !this.exclusive) {
      const next = this.queue[0]!;
      if (next.exclusive) {
        if (this.shared > 0) return;
        this.queue.shift();
        this.exclusive = true;
        next.grant();
        return;
      }
      this.queue.shift();
      this.shared++;
      next.grant();
    }
  }
}
