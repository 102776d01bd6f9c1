/**
 * Live benchmark: the test kernel in real QEMU (TCG), its tables mapping 1 GiB in 4 KiB pages
 * (262,144 leaves, 512 page tables) besides the kernel, its RAM in a shared file. In one run, with
 * the guest paused, it times pagewalk's `map` over the gdbstub (pipelined and serial), over QMP,
 * and over --mem-path, and the one-shot CLI `map --gdb` from connect to exit, against QEMU's own
 * `info tlb` and `info mem` through QMP, and prints the ratios.
 *
 * Run: `npx tsx bench/live.ts`. Environment: PAGEWALK_QEMU (the QEMU binary, default
 * qemu-system-x86_64 on the PATH). Only the QEMU started here is stopped, by its PID.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../src/cli/main.js';
import type { PageTables } from '../src/image/pageTables.js';
import { buildTestKernel, mapTestKernel } from '../src/image/testKernel.js';
import { mapRangesAsync } from '../src/paging/map.js';
import type { AsyncPhysMemory } from '../src/paging/memory.js';
import { pagingContext, type PagingContext } from '../src/paging/mode.js';
import { MemPathTarget } from '../src/target/memPath.js';
import { QmpTarget, connectQmp, runState } from '../src/target/qmpTarget.js';
import { RspTarget, connectGdbstub } from '../src/target/rspTarget.js';
import { QemuProcess, Qmp } from './qemu.js';

const RUNS = 7;
const WARM_UP = 5;
const KiB4 = 0x1000;
const MiB2 = 0x200000;
const BIG_VA = 0xffffc90000000000n;

/** 1 GiB at `va` in 4 KiB pages: the builder makes each page table, which is then filled in one write. */
function map1GiBIn4KiB(pt: PageTables, va: bigint): void {
  const block = new Uint8Array(KiB4);
  const view = new DataView(block.buffer);
  for (let b = 0; b < 512; b++) {
    const blockVa = va + BigInt(b * MiB2);
    pt.map(blockVa, b * MiB2, KiB4, { nx: true, write: b % 2 === 0 });
    const attrs = pt.getEntry(blockVa, 'PT') & ~0x000ffffffffff000n;
    for (let i = 0; i < 512; i++) view.setBigUint64(i * 8, attrs | BigInt(b * MiB2 + i * KiB4), true);
    pt.mem.write(pt.entryAddress(blockVa, 'PT')! & ~0xfff, block);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `fn` WARM_UP times untimed (the JIT), then RUNS times; returns the median in ms and what the last run returned. */
async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  let value = await fn();
  for (let i = 1; i < WARM_UP; i++) value = await fn();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    value = await fn();
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), value };
}

/** Maps the whole address space; returns the number of leaves. */
async function mapLeaves(mem: AsyncPhysMemory, ctx: PagingContext): Promise<number> {
  const it = mapRangesAsync(mem, ctx);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value.leaves;
  }
}

async function waitFor(path: string, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let content = '';
    try {
      content = readFileSync(path, 'latin1');
    } catch {
      // not yet created
    }
    if (content.includes(text)) return;
    if (Date.now() > deadline) throw new Error(`${JSON.stringify(text)} did not appear in ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const binary = process.env.PAGEWALK_QEMU ?? 'qemu-system-x86_64';
  const k = buildTestKernel({
    tables: (pt) => {
      mapTestKernel(pt);
      map1GiBIn4KiB(pt, BIG_VA);
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-live-bench-'));
  writeFileSync(join(dir, 'kernel.elf'), k.elf);
  const ramFile = join(dir, 'ram.img');
  const q = QemuProcess.start(binary, [
    ...['-accel', 'tcg', '-cpu', 'max', '-m', '1G', '-display', 'none', '-nodefaults'],
    ...['-object', `memory-backend-file,id=ram,size=1G,mem-path=${ramFile},share=on`, '-machine', 'memory-backend=ram'],
    ...['-serial', `file:${join(dir, 'serial.txt')}`, '-kernel', join(dir, 'kernel.elf')],
    ...['-gdb', `unix:${join(dir, 'gdb.sock')},server=on,wait=off`],
    ...['-qmp', `unix:${join(dir, 'oracle.sock')},server=on,wait=off`, '-qmp', `unix:${join(dir, 'pw.sock')},server=on,wait=off`],
  ]);
  const stopAll = () => q.killNow();
  process.once('exit', stopAll);
  try {
    await waitFor(join(dir, 'serial.txt'), k.manifest.marker, 15_000);
    if (q.startError) throw new Error(q.startError);
    const oracle = await Qmp.open(join(dir, 'oracle.sock'));
    await oracle.execute('stop');

    const tlb = await time(() => oracle.executeRaw('human-monitor-command', { 'command-line': 'info tlb' }));
    const tlbLines = (tlb.value.match(/\\r\\n/g) ?? []).length;
    const mem = await time(() => oracle.hmp('info mem'));

    const gdb = `unix:${join(dir, 'gdb.sock')}`;
    const client = await connectGdbstub(gdb);
    client.setMaxListeners(4 * RUNS); // each RspTarget below listens for stops on the one connection
    const first = new RspTarget(client);
    const ctx = pagingContext(await first.cpuState(), await first.cpuFeatures());
    // A new RspTarget per run: an empty per-stop cache over the same connection.
    const pipelined = await time(() => mapLeaves(new RspTarget(client), ctx));
    const serial = await time(() => mapLeaves(new RspTarget(client, { window: 1 }), ctx));
    const memPath = await MemPathTarget.open(first, ramFile);
    const fromFile = await time(() => mapLeaves(memPath, ctx));
    await memPath.close(); // closes `first` and the connection; the guest stays paused

    const qmpClient = await connectQmp(join(dir, 'pw.sock'));
    const state = await runState(qmpClient);
    // pmemsave files of every run go to one directory of this benchmark's, removed at the end.
    const physical = { tmpDir: join(dir, 'pmem') };
    mkdirSync(physical.tmpDir);
    // A fresh target (an empty frame cache) per run, all on one client: each adds an event listener.
    qmpClient.setMaxListeners(0);
    const overQmp = await time(() => mapLeaves(new QmpTarget(qmpClient, state, physical), ctx));
    await qmpClient.close();

    const sink = { write: () => true, isTTY: false };
    const cliMap = await time(async () => {
      const status = await run(['map', '--gdb', gdb], { stdout: sink, stderr: sink, env: {} });
      if (status !== 0) throw new Error(`pagewalk map --gdb exited with ${status}`);
      return status;
    });

    oracle.close();
    const rows: [string, number, number][] = [
      ['QEMU info tlb (QMP)', tlb.ms, tlbLines],
      ['QEMU info mem (QMP)', mem.ms, 0],
      ['pagewalk map over --gdb, pipelined', pipelined.ms, pipelined.value],
      ['pagewalk map over --gdb, serial', serial.ms, serial.value],
      ['pagewalk map over --qmp', overQmp.ms, overQmp.value],
      ['pagewalk map over --gdb --mem-path', fromFile.ms, fromFile.value],
      ['pagewalk map --gdb, one-shot CLI', cliMap.ms, 0],
    ];
    console.log(`test kernel + 1 GiB in 4 KiB pages, QEMU TCG paused, median of ${RUNS} runs`);
    console.log(`${'what'.padEnd(38)}${'median'.padStart(12)}${'/ info tlb'.padStart(12)}${'leaves'.padStart(10)}`);
    for (const [what, ms, leaves] of rows) {
      console.log(`${what.padEnd(38)}${`${ms.toFixed(1)} ms`.padStart(12)}${(ms / tlb.ms).toFixed(3).padStart(12)}${(leaves ? String(leaves) : '').padStart(10)}`);
    }
  } finally {
    await q.stop();
    process.off('exit', stopAll);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench/live: ${(e as Error).message}`);
  process.exitCode = 1;
});
