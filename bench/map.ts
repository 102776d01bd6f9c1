/**
 * Map benchmark: times pagewalk's `map` over generated address spaces (1M leaves of 4 KiB, 512 of
 * 1 GiB) and, when qemu-system-x86_64 is installed, QEMU's own `info tlb` and `info mem` over the
 * very same tables loaded into a stopped guest, and prints the ratios.
 *
 * Run: `npx tsx bench/map.ts`, or `node --expose-gc --import tsx bench/map.ts` to collect garbage before
 * each image is timed.
 * Environment: PAGEWALK_QEMU (the QEMU binary, default qemu-system-x86_64 on the PATH; "none" skips it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapRanges, type MapSummary } from '../src/paging/map.js';
import type { FrameData, PhysMemory } from '../src/paging/memory.js';
import { pagingContext, type PagingContext } from '../src/paging/mode.js';
import { buildBenchImages, imageBytes, type BenchImage } from './images.js';
import { QemuProcess, Qmp, REG, Rsp, freePort } from './qemu.js';

/** Long mode with NXE and write protection: what the guest is given and what pagewalk assumes. */
const REGS = { cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n } as const;
const MiB = 1 << 20;

/** The median of some numbers. */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** What one timed map run saw. */
interface MapRun {
  ms: number;
  ranges: number;
  summary: MapSummary;
}

/** Memory figures of the map runs (bytes). */
interface Peak {
  rss: number;
  heapUsed: number;
}

/** Memory that samples the process's RSS and heap every `every` frames (the map reads them as it goes). */
function sampling(mem: PhysMemory, peak: Peak, every = 64): PhysMemory {
  let n = 0;
  return {
    frame(pa: number): FrameData {
      if (++n % every === 0) {
        const m = process.memoryUsage();
        peak.rss = Math.max(peak.rss, m.rss);
        peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
      }
      return mem.frame(pa);
    },
  };
}

/** One map of `image`, draining every range as a consumer would (nothing kept). */
function mapOnce(mem: PhysMemory, ctx: PagingContext): MapRun {
  const started = performance.now();
  const it = mapRanges(mem, ctx);
  let ranges = 0;
  for (;;) {
    const r = it.next();
    if (r.done) return { ms: performance.now() - started, ranges, summary: r.value };
    ranges++;
  }
}

/** pagewalk's figures for one image. */
interface PagewalkFigures {
  /** The first map of the image, before the JIT has seen this shape of table. */
  coldMs: number;
  medianMs: number;
  runs: number;
  leaves: number;
  ranges: number;
  peak: Peak;
}

/**
 * Times `runs` maps of `image` after a warm-up (at least 3 runs and 300 ms). Garbage is collected
 * before the cold run, not before the timed series (a forced full GC there costs V8 its optimised
 * code and made a warm 512-leaf map 20x slower). RSS and heap are sampled while the maps run.
 */
function timePagewalk(mem: PhysMemory, image: BenchImage): PagewalkFigures {
  const runs = image.leaves > 10_000 ? 7 : 201;
  const peak: Peak = { rss: 0, heapUsed: 0 };
  const sampled = sampling(mem, peak);
  const ctx = pagingContext({ ...REGS, cr3: image.cr3 });
  gc?.();
  const coldMs = mapOnce(sampled, ctx).ms;
  const warmStart = performance.now();
  for (let i = 0; i < 3 || performance.now() - warmStart < 300; i++) mapOnce(sampled, ctx);
  const times: number[] = [];
  let last: MapRun | null = null;
  for (let i = 0; i < runs; i++) {
    last = mapOnce(sampled, ctx);
    times.push(last.ms);
  }
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  if (last!.summary.leaves !== image.leaves) throw new Error(`${image.name}: the map found ${last!.summary.leaves} leaves, not ${image.leaves}`);
  return { coldMs, medianMs: median(times), runs, leaves: last!.summary.leaves, ranges: last!.ranges, peak };
}

/** QEMU's figures for one image. */
interface QemuFigures {
  tlbMs: number;
  tlbLines: number;
  memMs: number;
  memLines: number;
  runs: number;
}

/** The QEMU binary to compare with, or null when there is none. */
function qemuBinary(): string | null {
  const named = process.env.PAGEWALK_QEMU ?? 'qemu-system-x86_64';
  if (named === 'none') return null;
  try {
    execFileSync(named, ['--version'], { stdio: 'ignore' });
    return named;
  } catch {
    return null;
  }
}

/** Times one HMP command `runs` times through QMP (until the whole reply line is in); returns the median and the text. */
async function timeHmp(qmp: Qmp, command: string, runs: number): Promise<{ ms: number; text: string }> {
  const times: number[] = [];
  let raw = '';
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    raw = await qmp.executeRaw('human-monitor-command', { 'command-line': command });
    times.push(performance.now() - started);
  }
  const reply = JSON.parse(raw) as { return?: string; error?: { desc: string } };
  if (reply.error || typeof reply.return !== 'string') throw new Error(`${command}: ${reply.error?.desc ?? 'no text'}`);
  return { ms: median(times), text: reply.return };
}

const countLines = (text: string): number => text.split('\n').filter((l) => l.trim() !== '').length;

/**
 * Loads the tables into a stopped QEMU guest, switches it to long mode on each image's CR3 through
 * the gdbstub, and times `info tlb` / `info mem` through QMP. QEMU is always stopped and the
 * temporary files removed.
 */
async function timeQemu(binary: string, bytes: Uint8Array, tablesStart: number, images: readonly BenchImage[]): Promise<Map<BenchImage, QemuFigures>> {
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-bench-'));
  const file = join(dir, 'tables.bin');
  const sock = join(dir, 'qmp.sock');
  writeFileSync(file, bytes);
  const port = await freePort();
  const ramMiB = Math.max(64, Math.ceil((tablesStart + bytes.length) / MiB) + 16);
  const qemu = QemuProcess.start(binary, [
    '-accel', 'tcg', '-m', `${ramMiB}M`, '-S', '-display', 'none', '-nodefaults',
    '-qmp', `unix:${sock},server=on,wait=off`,
    '-gdb', `tcp:127.0.0.1:${port}`,
    '-device', `loader,file=${file},addr=0x${tablesStart.toString(16)},force-raw=on`,
  ]);
  // However the benchmark ends (an error, Ctrl-C, kill), the QEMU it started goes with it.
  const onExit = (): void => qemu.killNow();
  const onSignal = (signal: NodeJS.Signals): void => {
    qemu.killNow();
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let qmp: Qmp | null = null;
  let rsp: Rsp | null = null;
  try {
    qmp = await Qmp.open(sock).catch((e: Error) => {
      throw new Error(qemu.startError ?? e.message);
    });
    rsp = await Rsp.open(port);
    await rsp.readTargetXml();
    // CR4.PAE, then EFER (LME|LMA|NXE), then CR3, then CR0.PG: QEMU enters long mode on the CR0 write.
    await rsp.writeRegister(REG.cr4, REGS.cr4);
    await rsp.writeRegister(REG.efer, REGS.efer);
    await rsp.writeRegister(REG.cr3, images[0]!.cr3);
    await rsp.writeRegister(REG.cr0, REGS.cr0);
    const out = new Map<BenchImage, QemuFigures>();
    for (const image of images) {
      await rsp.writeRegister(REG.cr3, image.cr3);
      const cr3 = await rsp.readRegister(REG.cr3);
      if (cr3 !== image.cr3) throw new Error(`CR3 reads back as 0x${cr3.toString(16)}, not 0x${image.cr3.toString(16)}`);
      const runs = image.leaves > 10_000 ? 5 : 21;
      const tlb = await timeHmp(qmp, 'info tlb', runs);
      const mem = await timeHmp(qmp, 'info mem', runs);
      out.set(image, { tlbMs: tlb.ms, tlbLines: countLines(tlb.text), memMs: mem.ms, memLines: countLines(mem.text), runs });
    }
    return out;
  } finally {
    rsp?.close();
    qmp?.close();
    await qemu.stop();
    process.removeListener('exit', onExit);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(3)) + ' ms';
const fmtRate = (perS: number): string => (perS >= 1e6 ? `${(perS / 1e6).toFixed(1)} M/s` : perS >= 1e3 ? `${(perS / 1e3).toFixed(0)} k/s` : `${perS.toFixed(0)} /s`);
const fmtMiB = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;
const fmtRatio = (r: number): string => (r >= 0.1 ? r.toFixed(2) : r.toPrecision(2));

/** Prints rows of cells as aligned columns. */
function table(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
}

async function main(): Promise<void> {
  const built = performance.now();
  const { mem, tablesStart, tablesEnd, images } = buildBenchImages();
  console.log(
    `pagewalk map benchmark: node ${process.version}, ${images.length} images, tables ${fmtMiB(tablesEnd - tablesStart)} ` +
      `built in ${fmtMs(performance.now() - built)}${gc ? '' : ' (node --expose-gc collects garbage before each image)'}`,
  );
  const before = process.memoryUsage();
  const pw = new Map(images.map((im) => [im, timePagewalk(mem, im)] as const));

  const binary = qemuBinary();
  let qemu: Map<BenchImage, QemuFigures> | null = null;
  let qemuNote = '';
  if (binary === null) {
    qemuNote = 'QEMU: not installed (or PAGEWALK_QEMU=none): no comparison';
  } else {
    const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    try {
      qemu = await timeQemu(binary, imageBytes(mem, tablesStart, tablesEnd), tablesStart, images);
      qemuNote = `QEMU: ${version}, TCG, HMP through QMP (time until the whole reply is received)`;
    } catch (err) {
      qemuNote = `QEMU: ${version} failed: ${(err as Error).message}`;
    }
  }

  const rows: string[][] = [
    ['image', 'leaves', 'ranges', 'map (cold)', 'map', 'leaves/s', 'peak rss', 'peak heap', 'info tlb', 'map/tlb', 'info mem', 'map/mem'],
  ];
  for (const im of images) {
    const p = pw.get(im)!;
    const q = qemu?.get(im);
    rows.push([
      im.name,
      String(p.leaves),
      String(p.ranges),
      fmtMs(p.coldMs),
      fmtMs(p.medianMs),
      fmtRate(p.leaves / (p.medianMs / 1000)),
      fmtMiB(p.peak.rss),
      fmtMiB(p.peak.heapUsed),
      q ? fmtMs(q.tlbMs) : '-',
      q ? fmtRatio(p.medianMs / q.tlbMs) : '-',
      q ? fmtMs(q.memMs) : '-',
      q ? fmtRatio(p.medianMs / q.memMs) : '-',
    ]);
  }
  console.log();
  table(rows);
  console.log();
  console.log(
    `map: median of ${[...pw.values()].map((p) => p.runs).join('/')} warm runs (cold: the first run); ` +
      `ratios use the median; rss before the runs ${fmtMiB(before.rss)}, heap ${fmtMiB(before.heapUsed)}`,
  );
  console.log(qemuNote);
  if (qemu) {
    for (const im of images) {
      const q = qemu.get(im)!;
      const ok = q.tlbLines === im.leaves ? 'ok' : `MISMATCH (map: ${im.leaves} leaves)`;
      console.log(`  ${im.name}: info tlb ${q.tlbLines} lines (${ok}), info mem ${q.memLines} lines, median of ${q.runs}`);
    }
  }
  const big = [...pw.values()].find((p) => p.leaves === 1 << 20);
  if (big) {
    const fast = big.medianMs < 1000 ? 'met' : 'MISSED';
    const small = big.peak.rss < 300 * MiB ? 'met' : 'MISSED';
    console.log(`target: 1M-leaf map under 1 s (${fast}) and under 300 MiB RSS (${small})`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
