/**
 * --mem-path over a scripted QEMU monitor and a real file: the backend found by the file's inode
 * (through a symlink too), below-4G and above-4G windows read at their offsets, everything else
 * from the target underneath, and one-line refusals (no such backend, share=off, a short file).
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import type { FrameData } from '../../src/paging/memory.js';
import { MemoryTarget } from '../../src/target/memoryTarget.js';
import { MemPathTarget } from '../../src/target/memPath.js';
import { parseMtreeFlat, systemMemory, type FlatRange } from '../../src/target/mtree.js';
import type { QemuMonitor } from '../../src/target/qemuMonitor.js';
import type { QemuTarget } from '../../src/target/qemuTarget.js';
import { TargetError } from '../../src/target/target.js';

const MiB = 0x100000;

/** Guest RAM "ram": 1 MiB below 4 GiB, 1 MiB above it (file offset 1 MiB); the BIOS from another region. */
const MTREE = [
  'FlatView #0',
  ' AS "memory", root: system',
  ' Root memory region: system',
  '  0000000000000000-00000000000fffff (prio 0, ram): ram',
  '  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios',
  '  0000000100000000-00000001000fffff (prio 0, ram): ram @0000000000100000',
  '',
].join('\n');

let dir: string;
let file: string;

/** The file's contents: every dword holds its own file offset. */
function fileBytes(size: number): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  for (let i = 0; i < size; i += 4) v.setUint32(i, i, true);
  return b;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pagewalk-mempath-'));
  file = join(dir, 'ram.img');
  writeFileSync(file, fileBytes(2 * MiB));
  symlinkSync(file, join(dir, 'link.img'));
  writeFileSync(join(dir, 'short.img'), fileBytes(MiB));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A QemuTarget over an in-memory image whose monitor answers `info memdev` and `qom-get` from a table. */
function inner(backends: Record<string, { path?: string; share: boolean }>): QemuTarget & { asked: number[][] } {
  const image = new SparseMemory(0x100000000 + 2 * MiB);
  image.write(0xfffff000, Uint8Array.of(0xea, 0x5b)); // the BIOS's reset vector area, not in the file
  const base = new MemoryTarget(image, { cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, rip: 0n, rsp: 0n, rflags: 0n, gpr: {}, notes: [] });
  const answers: Record<string, string> = {
    'info memdev': Object.keys(backends)
      .map((id) => `memory backend: ${id}\n  size:  2097152\n  share: ${backends[id]!.share}\n`)
      .join(''),
  };
  for (const [id, b] of Object.entries(backends)) {
    answers[`qom-get /objects/${id} mem-path`] = b.path === undefined ? `Error: Property 'memory-backend-ram.mem-path' not found\n` : `${JSON.stringify(b.path)}\n`;
    answers[`qom-get /objects/${id} share`] = `${b.share}\n`;
  }
  const monitor: QemuMonitor = {
    label: 'QMP at /fake',
    hmp: async (line) => answers[line] ?? `unknown command: '${line}'\n`,
    cpuPath: async () => null,
  };
  const asked: number[][] = [];
  return Object.assign(base, {
    monitor,
    asked,
    memoryMap: async (): Promise<FlatRange[]> => systemMemory(parseMtreeFlat(MTREE)),
    frames: async (pas: readonly number[]): Promise<FrameData[]> => {
      asked.push([...pas]);
      return pas.map((p) => image.frame(p));
    },
    info: { kind: 'qmp' as const, description: 'QEMU monitor (QMP) at /fake' },
  });
}

async function refusal(p: Promise<unknown>): Promise<[string, string]> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return [(e as TargetError).code, (e as TargetError).message];
}

describe('MemPathTarget', () => {
  it('reads RAM from the file below and above 4 GiB, and the rest from the target underneath, in one batch', async () => {
    const under = inner({ 'pc.ram': { share: false }, ram: { path: file, share: true } });
    const t = await MemPathTarget.open(under, file);
    expect(t.backend).toBe('ram');
    expect(t.info).toEqual({ kind: 'qmp', description: `QEMU monitor (QMP) at /fake, RAM read from ${file}` });
    const [low, high, bios, past] = await t.frames([0x3000, 0x100002000, 0xfffff000, 0x200000]);
    expect([low?.getUint32(0, true), low?.getUint32(4092, true)]).toEqual([0x3000, 0x3ffc]);
    expect(high?.getUint32(16, true)).toBe(MiB + 0x2010); // file offset 1 MiB + 0x2000
    expect(bios?.getUint16(0, true)).toBe(0x5bea);
    expect(past?.getUint32(0, true)).toBe(0);
    expect(under.asked).toEqual([[0xfffff000, 0x200000]]);
    expect(Array.from(await t.readPhysical(0x1000fffcn, 4))).toEqual([0, 0, 0, 0]); // not RAM: the target underneath
    expect(new DataView((await t.readPhysical(0x1000ffffcn, 4)).buffer).getUint32(0, true)).toBe(2 * MiB - 4);
    await t.close();
  });

  it('finds the backend by the file itself, whatever path names it', async () => {
    const t = await MemPathTarget.open(inner({ ram: { path: file, share: true } }), join(dir, 'link.img'));
    expect(t.backend).toBe('ram');
    await t.close();
  });

  it('refuses a file no backend uses, a backend that does not share its writes, a short file, a missing file', async () => {
    const other = join(dir, 'short.img');
    expect(await refusal(MemPathTarget.open(inner({ 'pc.ram': { share: false }, ram: { path: file, share: true } }), other))).toEqual([
      'E_OPEN',
      `no memory backend of this QEMU uses ${other} (its backends: pc.ram (not file-backed), ram (${file})); start QEMU with -object memory-backend-file,id=ram,size=...,mem-path=${other},share=on -machine memory-backend=ram`,
    ]);
    expect(await refusal(MemPathTarget.open(inner({ ram: { path: file, share: false } }), file))).toEqual([
      'E_OPEN',
      `QEMU's memory backend "ram" maps ${file} with share=off: the guest's writes never reach the file (start QEMU with memory-backend-file,...,share=on)`,
    ]);
    expect(await refusal(MemPathTarget.open(inner({ ram: { path: other, share: true } }), other))).toEqual([
      'E_FORMAT',
      `--mem-path ${other} holds 1048576 bytes, but QEMU maps 0x200000 bytes of guest memory from it`,
    ]);
    expect(await refusal(MemPathTarget.open(inner({}), join(dir, 'nope.img')))).toEqual(['E_OPEN', `cannot open --mem-path ${join(dir, 'nope.img')}: no such file`]);
  });
});
