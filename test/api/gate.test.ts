/**
 * The gate between reads and what moves the guest: reads share it, an exclusive user waits for
 * them and holds back later reads, in arrival order; releasing twice is harmless.
 */
import { describe, expect, it } from 'vitest';
import { Gate } from '../../src/api/gate.js';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('Gate', () => {
  it('lets reads share, makes an exclusive user wait for them, and holds later reads behind it', async () => {
    const g = new Gate();
    const order: string[] = [];
    const r1 = await g.acquireShared();
    const r2 = await g.acquireShared();
    const x = g.acquireExclusive().then((release) => {
      order.push('exclusive');
      return release;
    });
    const r3 = g.acquireShared().then((release) => {
      order.push('late read');
      return release;
    });
    await tick();
    expect(order).toEqual([]);
    expect(g.exclusiveWaiting).toBe(true);
    r1();
    r1(); // twice: no effect
    await tick();
    expect(order).toEqual([]);
    r2();
    const releaseX = await x;
    await tick();
    expect(order).toEqual(['exclusive']);
    expect(g.exclusiveWaiting).toBe(false);
    releaseX();
    (await r3)();
    expect(order).toEqual(['exclusive', 'late read']);
    expect(g.idle).toBe(true);
  });

  it('admits every read queued behind an exclusive user at once when it leaves', async () => {
    const g = new Gate();
    const releaseX = await g.acquireExclusive();
    let admitted = 0;
    const reads = [g.acquireShared(), g.acquireShared(), g.acquireShared()].map((p) => p.then((r) => (admitted++, r)));
    const x2 = g.acquireExclusive();
    await tick();
    expect(admitted).toBe(0);
    releaseX();
    const released = await Promise.all(reads);
    expect(admitted).toBe(3);
    let second = false;
    void x2.then(() => (second = true));
    await tick();
    expect(second).toBe(false);
    released.forEach((r) => r());
    (await x2)();
    expect(g.idle).toBe(true);
  });

  it('runs withShared and withExclusive around failures, giving the gate back', async () => {
    const g = new Gate();
    await expect(g.withShared(async () => Promise.reject(new Error('read failed')))).rejects.toThrow('read failed');
    await expect(g.withExclusive(async () => Promise.reject(new Error('step failed')))).rejects.toThrow('step failed');
    expect(g.idle).toBe(true);
    expect(await g.withExclusive(async () => 42)).toBe(42);
  });
});
