/**
 * What the live-target tests share: the test kernel booted in real QEMU (TCG) with a gdbstub and a
 * second QMP socket for pagewalk (the helper's own QMP client is the oracle), optionally with its
 * RAM in a shared file; stopping it at its `mov cr3`; QEMU's own answers (`gva2gpa`, `xp`,
 * `query-status`); and the addresses a walk is checked on.
 */
import { writeFileSync } from 'node:fs';
import type { TestKernel } from '../../src/image/testKernel.js';
import type { MapRange } from '../../src/paging/map.js';
import { parseGva2gpa, parseXp } from '../../src/qmp/hmp.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { humanMonitor, startQemu, waitForFileText, type QemuProcess } from '../helpers/qemu.js';

/** What a kernel must say of itself to be booted and stopped here (the test kernel, the legacy-mode one). */
export interface BootableKernel {
  elf: Uint8Array;
  manifest: { marker: string; cr3Write: bigint };
}

/** A booted test kernel and where pagewalk reaches it. */
export interface LiveGuest<K extends BootableKernel = TestKernel> {
  q: QemuProcess;
  k: K;
  /** `unix:DIR/gdb.sock`. */
  gdb: string;
  /** pagewalk's own QMP socket (QEMU serves one client per socket; the helper holds the other). */
  qmp: string;
  /** The RAM file, when booted with one. */
  memPath: string | null;
}

/** Options of {@link bootLiveGuest}. */
export interface BootOptions {
  /** Guest RAM in a `memory-backend-file` of this many GiB (share=on), else 128 MiB anonymous. */
  memPathGiB?: number;
  extra?: string[];
}

/** Boots `k` (-cpu max: 1 GiB pages and LA57) and waits for its marker on COM1. */
export async function bootLiveGuest<K extends BootableKernel>(qemu: string, k: K, o: BootOptions = {}): Promise<LiveGuest<K>> {
  const ram = o.memPathGiB
    ? ['-m', `${o.memPathGiB}G`, '-object', `memory-backend-file,id=ram,size=${o.memPathGiB}G,mem-path={dir}/ram.img,share=on`, '-machine', 'memory-backend=ram']
    : ['-m', '128'];
  const q = await startQemu(
    qemu,
    [
      ...['-accel', 'tcg', '-cpu', 'max', ...ram, '-display', 'none', '-nodefaults'],
      ...['-serial', 'file:{dir}/serial.txt', '-kernel', '{dir}/kernel.elf'],
      ...['-gdb', 'unix:{dir}/gdb.sock,server=on,wait=off', '-qmp', 'unix:{dir}/pw.sock,server=on,wait=off'],
      ...(o.extra ?? []),
    ],
    (dir) => writeFileSync(`${dir}/kernel.elf`, k.elf),
  );
  try {
    await waitForFileText(q.file('serial.txt'), `${k.manifest.marker}\n`);
  } catch (e) {
    await q.stop();
    throw e;
  }
  return { q, k, gdb: `unix:${q.file('gdb.sock')}`, qmp: q.file('pw.sock'), memPath: o.memPathGiB ? q.file('ram.img') : null };
}

/** Pauses the guest, runs it to the breakpoint at its `mov cr3`, and leaves it stopped there (QEMU's `debug` state). */
export async function stopAtCr3Write(g: LiveGuest<BootableKernel>): Promise<void> {
  await g.q.qmp.execute('stop');
  const t = await RspTarget.open(g.gdb);
  try {
    await t.client.insertBreakpoint(0, g.k.manifest.cr3Write, 1);
    await t.cont({ timeoutMs: 10_000 });
    await t.client.removeBreakpoint(0, g.k.manifest.cr3Write, 1);
    const rip = (await t.cpuState()).rip;
    if (rip !== g.k.manifest.cr3Write) throw new Error(`stopped at 0x${rip.toString(16)}, not at the mov cr3`);
  } finally {
    await t.close();
  }
}

/** QEMU's `query-status` status. */
export async function status(q: QemuProcess): Promise<string> {
  return ((await q.qmp.execute('query-status')) as { status: string }).status;
}

/** QEMU's own translation (`gva2gpa`): the physical address, or null for `Unmapped`. */
export async function gva2gpa(q: QemuProcess, va: bigint): Promise<bigint | null> {
  const text = await humanMonitor(q.qmp, `gva2gpa 0x${va.toString(16)}`);
  const r = parseGva2gpa(text);
  return r.mapped ? r.gpa : null;
}

/** QEMU's own physical read (`xp /Ngx`, 8-byte aligned lengths). */
export async function xpBytes(q: QemuProcess, pa: bigint, length: number): Promise<Uint8Array> {
  return parseXp(await humanMonitor(q.qmp, `xp /${length / 8}gx 0x${pa.toString(16)}`)).bytes;
}

const U64 = 1n << 64n;

/**
 * Addresses to check a walk on: for each range its first and last bytes, the bytes just outside,
 * its middle and its second page; every page of small runs; random addresses inside ranges and
 * anywhere in both canonical halves (a fixed LCG); and non-canonical addresses.
 */
export function probeAddresses(ranges: readonly MapRange[], vaBits = 48): bigint[] {
  const out = new Set<bigint>();
  const add = (v: bigint) => {
    if (v >= 0n && v < U64) out.add(v);
  };
  for (const r of ranges) {
    const end = r.va + r.size;
    const page = BigInt(r.pageSize);
    for (const v of [r.va, r.va + 1n, end - 1n, end - 8n, r.va - 1n, end, r.va + r.size / 2n, r.va + page, r.va + page - 1n]) add(v);
    if (r.size / page <= 32n) for (let p = r.va; p < end; p += page) add(p + page - 1n);
  }
  let x = 0x2545f491;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 150; i++) {
    const r = ranges[rnd() % ranges.length]!;
    add(r.va + ((BigInt(rnd()) * BigInt(rnd())) % r.size));
  }
  const half = 1n << BigInt(vaBits - 1);
  for (let i = 0; i < 100; i++) {
    const low = ((BigInt(rnd()) << 32n) | BigInt(rnd())) % half;
    add(i % 2 === 0 ? low : U64 - half + low);
  }
  for (let i = 0; i < 16; i++) add(half + ((BigInt(rnd()) << 20n) | BigInt(i)));
  for (const v of [half, U64 - half - 1n, 0x8000000000000000n, 0x7fffffffffffffffn]) add(v);
  return [...out];
}

/** True when `va` is canonical for `vaBits`-bit linear addresses. */
export function canonical(va: bigint, vaBits = 48): boolean {
  const half = 1n << BigInt(vaBits - 1);
  return va < half || va >= U64 - half;
}
