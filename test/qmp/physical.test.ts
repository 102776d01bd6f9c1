/**
 * QmpPhysicalMemory against an in-process monitor that answers `xp /Ngx` and `pmemsave` the way
 * QEMU 7.2 does (16 bytes per line, `Cannot access memory` for a line outside RAM and nothing after
 * it; pmemsave writes zeros outside RAM): the choice by size, alignment, chunking, the fallback
 * when QEMU's files are not visible here, and the unreadable cases.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PhysicalReadError, QmpError } from '../../src/qmp/errors.js';
import { QmpPhysicalMemory, int64, type QmpMonitor } from '../../src/qmp/physical.js';
import type { QmpEndpoint, QmpValue } from '../../src/qmp/transport.js';

const RAM_END = 0x10000n;

/** Byte `pa` of the fake guest: a pattern, so misplaced bytes show. */
const byteAt = (pa: bigint): number => Number((pa * 7n + (pa >> 8n)) & 0xffn);

/** A monitor over 64 KiB of RAM at 0, logging the commands it runs. */
class FakeMonitor implements QmpMonitor {
  readonly log: string[] = [];
  /** What pmemsave does: write the file (QEMU on this host), write it elsewhere, or fail. */
  pmemsave: 'write' | 'elsewhere' | 'fail' = 'write';

  constructor(readonly endpoint: QmpEndpoint = { path: '/tmp/fake-qmp.sock' }) {}

  async hmp(commandLine: string): Promise<string> {
    this.log.push(commandLine);
    const m = /^xp \/(\d+)gx 0x([0-9a-f]+)$/.exec(commandLine);
    if (!m) throw new Error(`the fake monitor only does xp /Ngx, not "${commandLine}"`);
    let count = Number(m[1]);
    let at = BigInt(`0x${m[2]}`);
    const lines: string[] = [];
    while (count > 0) {
      const n = Math.min(2, count);
      const addr = at.toString(16).padStart(16, '0');
      if (at + BigInt(n * 8) > RAM_END) {
        lines.push(`${addr}: Cannot access memory`);
        break;
      }
      const values: string[] = [];
      for (let i = 0; i < n; i++) {
        let v = 0n;
        for (let b = 7; b >= 0; b--) v = (v << 8n) | BigInt(byteAt(at + BigInt(i * 8 + b)));
        values.push(`0x${v.toString(16).padStart(16, '0')}`);
      }
      lines.push(`${addr}: ${values.join(' ')}`);
      at += BigInt(n * 8);
      count -= n;
    }
    return lines.map((l) => `${l}\n`).join('');
  }

  async execute(command: string, args?: Record<string, QmpValue | undefined>): Promise<unknown> {
    const a = args as { val: bigint; size: number; filename: string };
    this.log.push(`${command} ${a.val} ${a.size}`);
    if (command !== 'pmemsave') throw new Error(`the fake monitor does not do ${command}`);
    if (this.pmemsave === 'fail') throw new QmpError('E_QMP', `QMP pmemsave: Could not open '${a.filename}': Permission denied (GenericError)`);
    const bytes = new Uint8Array(a.size);
    for (let i = 0; i < a.size; i++) {
      const pa = BigInt(a.val) + BigInt(i);
      bytes[i] = pa < RAM_END ? byteAt(pa) : 0;
    }
    if (this.pmemsave === 'write') writeFileSync(a.filename, bytes);
    return {};
  }
}

const expected = (pa: bigint, length: number): string =>
  Buffer.from(Array.from({ length }, (_, i) => byteAt(pa + BigInt(i)))).toString('hex');
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('QmpPhysicalMemory', () => {
  it('reads small ranges with xp /gx over the aligned cover, unaligned too', async () => {
    const mon = new FakeMonitor();
    const mem = new QmpPhysicalMemory(mon);
    expect(hexOf(await mem.read(0x1000n, 16))).toBe(expected(0x1000n, 16));
    expect(hexOf(await mem.read(0x1003n, 6))).toBe(expected(0x1003n, 6));
    expect(hexOf(await mem.read(0x2ffdn, 7))).toBe(expected(0x2ffdn, 7));
    expect(mon.log).toEqual(['xp /2gx 0x1000', 'xp /2gx 0x1000', 'xp /2gx 0x2ff8']);
    expect(mem.lastReadMethod).toBe('xp');
    expect(await mem.read(0x5n, 0)).toEqual(new Uint8Array(0));
    expect(mon.log).toHaveLength(3);
  });

  it('reads from bulkThreshold bytes on with pmemsave into a private file, deleted after, and removes the directory on close', async () => {
    const mon = new FakeMonitor();
    const mem = new QmpPhysicalMemory(mon, { bulkThreshold: 4096 });
    expect(hexOf(await mem.read(0x3001n, 4096))).toBe(expected(0x3001n, 4096));
    expect(mon.log).toEqual(['pmemsave 12289 4096']);
    expect(mem.lastReadMethod).toBe('pmemsave');
    expect(hexOf(await mem.read(0x3001n, 4095))).toBe(expected(0x3001n, 4095));
    expect(mon.log[1]).toBe('xp /512gx 0x3000');
    const dir = mem.tmpDir!;
    expect(readdirSync(dir)).toEqual([]);
    await mem.close();
    expect(existsSync(dir)).toBe(false);
  });

  it('uses xp, in chunks, when QEMU is not on this host', async () => {
    const mon = new FakeMonitor({ host: '192.0.2.7', port: 4444 });
    const mem = new QmpPhysicalMemory(mon, { bulkThreshold: 16, xpChunkBytes: 0x1000 });
    expect(mem.bulkAvailable).toBe(false);
    expect(hexOf(await mem.read(0x800n, 0x2400))).toBe(expected(0x800n, 0x2400));
    expect(mon.log).toEqual(['xp /512gx 0x800', 'xp /512gx 0x1800', 'xp /128gx 0x2800']);
  });

  it('falls back to xp for good when the pmemsave file does not appear here, or QEMU cannot write it', async () => {
    for (const how of ['elsewhere', 'fail'] as const) {
      const mon = new FakeMonitor();
      mon.pmemsave = how;
      const mem = new QmpPhysicalMemory(mon, { bulkThreshold: 32 });
      expect(hexOf(await mem.read(0x100n, 32)), how).toBe(expected(0x100n, 32));
      expect(mon.log).toEqual(['pmemsave 256 32', 'xp /4gx 0x100']);
      expect(mem.bulkAvailable).toBe(false);
      await mem.read(0x100n, 32);
      expect(mon.log).toHaveLength(3);
      await mem.close();
    }
  });

  it('reports memory QEMU cannot access as E_UNREADABLE with the address; pmemsave reads it as zeros', async () => {
    const mem = new QmpPhysicalMemory(new FakeMonitor(), { bulkThreshold: 1 << 20 });
    const e = await mem.read(RAM_END - 8n, 16).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PhysicalReadError);
    expect(e).toMatchObject({ code: 'E_UNREADABLE', address: RAM_END - 8n });
    expect((e as Error).message).toBe('cannot read guest-physical memory at 0xfff8: QEMU says "Cannot access memory" (not RAM or ROM)');
    await expect(mem.read(0x20000n, 4)).rejects.toMatchObject({ code: 'E_UNREADABLE', address: 0x20000n });
    const bulk = await mem.readWithPmemsave(RAM_END - 4n, 8);
    expect(hexOf(bulk!)).toBe(`${expected(RAM_END - 4n, 4)}00000000`);
    await mem.close();
  });

  it('reads frames for the paging code, null where QEMU cannot access memory', async () => {
    const mon = new FakeMonitor();
    const mem = new QmpPhysicalMemory(mon);
    const frames = await mem.frames([0x1000, 0xf000, 0x10000, 0x7000, 0x200000]);
    expect(frames.map((f) => (f ? f.byteLength : null))).toEqual([4096, 4096, null, 4096, null]);
    expect(frames[3]!.getUint8(0x123)).toBe(byteAt(0x7123n));
    expect(frames[1]!.getUint8(4095)).toBe(byteAt(0xffffn));
    expect(mon.log.every((l) => l.startsWith('xp /512gx '))).toBe(true);
  });

  it('refuses unusable requests with E_RANGE before asking QEMU', async () => {
    const mon = new FakeMonitor();
    const mem = new QmpPhysicalMemory(mon);
    await expect(mem.read(0n, -1)).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(mem.read(0n, 1.5)).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(mem.read(-1n, 1)).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(mem.read((1n << 64n) - 4n, 8)).rejects.toThrow(/outside the 64-bit address space/);
    expect(mon.log).toEqual([]);
  });

  it('keeps a given temporary directory', async () => {
    const mon = new FakeMonitor();
    const first = new QmpPhysicalMemory(mon, { bulkThreshold: 8 });
    await first.read(0n, 8);
    const dir = first.tmpDir!;
    const second = new QmpPhysicalMemory(mon, { bulkThreshold: 8, tmpDir: dir });
    await second.read(0n, 8);
    expect(readdirSync(dir)).toEqual([]);
    await second.close();
    expect(existsSync(dir)).toBe(true);
    await first.close();
    expect(existsSync(dir)).toBe(false);
  });
});

describe('int64', () => {
  it("writes addresses as QMP's signed int64", () => {
    expect(int64(0xffffffff80102000n)).toBe(-2146426880n);
    expect(int64(0x7fffffffffffffffn)).toBe(0x7fffffffffffffffn);
    expect(int64(0x8000000000000000n)).toBe(-(1n << 63n));
    expect(int64(0x1000n)).toBe(0x1000n);
    expect(int64(-1n)).toBe(-1n);
  });
});
