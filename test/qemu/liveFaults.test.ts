/**
 * Live targets on real QEMU where things are unusual: QEMU killed in the middle of a `map` (exit 3,
 * one line, no hang), and 5-level paging (LA57, -cpu max), where pagewalk's walk and map must agree
 * with `gva2gpa` and `info tlb` over --gdb and --qmp (and never use `info mem`, which prints nothing
 * there).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PageTables } from '../../src/image/pageTables.js';
import { buildTestKernel, mapTestKernel } from '../../src/image/testKernel.js';
import { mapRanges, mapRangesAsync, type MapRange } from '../../src/paging/map.js';
import { runAsync } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { walkTask } from '../../src/paging/walk.js';
import { parseInfoTlb } from '../../src/qmp/hmp.js';
import { openLiveTarget } from '../../src/target/liveTarget.js';
import { cli } from '../helpers/cli.js';
import { describeQemu, humanMonitor } from '../helpers/qemu.js';
import { bootLiveGuest, canonical, gva2gpa, probeAddresses, status, type LiveGuest } from './liveGuest.js';

const KiB4 = 0x1000;
const MiB2 = 0x200000;

/** 1 GiB at `va` in 4 KiB pages (512 page tables): the builder makes each table, then it is filled in one write. */
function map1GiBIn4KiB(pt: PageTables, va: bigint): void {
  const block = new Uint8Array(KiB4);
  const view = new DataView(block.buffer);
  for (let b = 0; b < 512; b++) {
    const blockVa = va + BigInt(b * MiB2);
    pt.map(blockVa, b * MiB2, KiB4, { nx: true });
    const attrs = pt.getEntry(blockVa, 'PT') & ~0x000ffffffffff000n;
    for (let i = 0; i < 512; i++) view.setBigUint64(i * 8, attrs | BigInt(b * MiB2 + i * KiB4), true);
    pt.mem.write(pt.entryAddress(blockVa, 'PT')! & ~0xfff, block);
  }
}

describeQemu('a live map when QEMU dies in the middle of it', (qemu) => {
  const k = buildTestKernel({
    tables: (pt) => {
      mapTestKernel(pt);
      map1GiBIn4KiB(pt, 0xffffc90000000000n);
    },
  });
  let g: LiveGuest;
  let proxy: Server;
  const sockets: Socket[] = [];
  let memoryReads = 0;
  let killed = false;

  beforeAll(async () => {
    g = await bootLiveGuest(qemu, k);
    // Between pagewalk and the gdbstub: counts `m` packets and kills QEMU (by its PID) at the 40th,
    // once the map is well into its 512 page tables.
    proxy = createServer((down) => {
      const up = connect(g.q.file('gdb.sock'));
      sockets.push(down, up);
      down.on('data', (d: Buffer) => {
        memoryReads += d.toString('latin1').split('$m').length - 1;
        if (memoryReads >= 40 && !killed) {
          killed = true;
          process.kill(g.q.pid, 'SIGKILL');
        }
        up.write(d);
      });
      up.on('data', (d: Buffer) => down.write(d));
      up.on('close', () => down.destroy());
      down.on('close', () => up.destroy());
      up.on('error', () => undefined);
      down.on('error', () => undefined);
    });
    await new Promise<void>((r) => proxy.listen(g.q.file('proxy.sock'), r));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => proxy?.close(() => r()));
    await g?.q.stop();
  });

  it('exits with status 3 and one line saying the gdbstub was lost, without hanging', async () => {
    const started = Date.now();
    const r = await cli(['map', '--gdb', g.q.file('proxy.sock')]);
    expect(memoryReads).toBeGreaterThanOrEqual(40);
    expect(r.status).toBe(3);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('pagewalk:'))).toEqual([
      `pagewalk: lost the gdbstub at ${g.q.file('proxy.sock')}: the connection to ${g.q.file('proxy.sock')} is closed`,
    ]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describeQemu('live targets under 5-level paging (LA57)', (qemu) => {
  function la57Tables(pt: PageTables): void {
    mapTestKernel(pt);
    pt.map(0xff10000000000000n, 0x200000, 2 << 20, { nx: true, global: true }); // high in the 57-bit space
    pt.map(0x0010000000000000n, 0x800000, 0x1000, { user: true }); // above what 48 bits can reach
    pt.map(0xff20000000000000n, 0, 1 << 30, { nx: true }); // a 1 GiB page
  }
  const k = buildTestKernel({ mode: '5-level', tables: la57Tables });
  const built: MapRange[] = [...mapRanges(k.mem, pagingContext({ cr0: k.manifest.cr0, cr3: k.manifest.cr3, cr4: k.manifest.cr4, efer: k.manifest.efer }))];
  const vas = probeAddresses(built, 57);
  let g: LiveGuest;
  let oracle: (bigint | null)[];

  beforeAll(async () => {
    g = await bootLiveGuest(qemu, k);
    await g.q.qmp.execute('stop');
    oracle = [];
    for (const va of vas) oracle.push(await gva2gpa(g.q, va));
  });
  afterAll(async () => {
    await g?.q.stop();
  });

  for (const kind of ['gdb', 'qmp'] as const) {
    it(`over --${kind}: walks agree with gva2gpa and the map with info tlb`, async () => {
      const t = await openLiveTarget(kind === 'gdb' ? { gdb: g.gdb } : { qmp: g.qmp });
      try {
        const cpu = await t.cpuState();
        const ctx = pagingContext(cpu, await t.cpuFeatures());
        expect([ctx.mode, ctx.vaBits]).toEqual(['5-level', 57]);
        const walked: (bigint | null)[] = [];
        for (const va of vas) walked.push((await runAsync(walkTask(ctx, va), t)).translation?.pa ?? null);
        expect(vas.filter((va, i) => walked[i] !== oracle[i]).map((va) => `0x${va.toString(16)}`)).toEqual([]);
        expect(vas.some((va) => !canonical(va, 57))).toBe(true);
        const map: MapRange[] = [];
        for await (const r of mapRangesAsync(t, ctx)) map.push(r);
        const tlb = parseInfoTlb(await humanMonitor(g.q.qmp, 'info tlb')).entries;
        expect(map.reduce((n, r) => n + r.size / BigInt(r.pageSize), 0n)).toBe(BigInt(tlb.length));
        for (const e of tlb) {
          const r = map.find((x) => e.va >= x.va && e.va < x.va + x.size);
          expect(r && [r.pa + (e.va - r.va), r.pageSize > 4096, r.global, !r.execute], `0x${e.va.toString(16)}`).toEqual([e.pa, e.flags.ps, e.flags.g, e.flags.nx]);
        }
      } finally {
        await t.close();
      }
      expect(await status(g.q)).toBe('paused');
    });
  }
});
