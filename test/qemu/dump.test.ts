/**
 * openDump against cores written by real QEMU: page tables built with PageTables are loaded into
 * guest RAM with `-device loader`, QMP `dump-guest-memory` writes the core, and pagewalk must parse
 * it, find the reset state, and walk the tables through it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildElfCore } from '../../src/image/elfCore.js';
import { PageTables } from '../../src/image/pageTables.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { walk } from '../../src/paging/walk.js';
import { openDump, type DumpTarget } from '../../src/target/dump.js';
import { parseElfCore } from '../../src/target/elfCore.js';
import { cli } from '../helpers/cli.js';
import { QmpError, describeQemu, startQemu, type QemuProcess } from '../helpers/qemu.js';

const TABLES = 0x200000;
const TEXT = 0x220000;
const DATA = 0x221000;
const END = 0x222000;

/** The guest's tables and two marked pages, all within [TABLES, END). */
function buildGuest(): { mem: SparseMemory; pt: PageTables } {
  const mem = new SparseMemory(64 << 20);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(TABLES, TEXT));
  pt.map(0xffffffff80000000n, TEXT, 4096, { write: false, global: true });
  pt.map(0xffffffff80001000n, DATA, 4096, { nx: true });
  pt.map(0x200000n, 0x200000, 2 << 20);
  pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true });
  mem.write(TEXT, new TextEncoder().encode('pagewalk text'));
  mem.write(DATA + 0x10, new TextEncoder().encode('pagewalk data'));
  return { mem, pt };
}

describeQemu('dump-guest-memory from real QEMU', (qemu) => {
  const { mem, pt } = buildGuest();
  let q: QemuProcess | undefined;
  let dump: DumpTarget | undefined;
  let corePath = '';

  beforeAll(async () => {
    q = await startQemu(
      qemu,
      ['-accel', 'tcg', '-m', '64', '-S', '-display', 'none', '-nodefaults', '-device', `loader,file={dir}/tables.bin,addr=${TABLES},force-raw=on`],
      async (dir) => {
        const region = new SparseMemory(END - TABLES);
        for (const [pa, bytes] of mem.writtenFrames()) region.write(pa - TABLES, bytes);
        await writeRawImage(region, join(dir, 'tables.bin'));
      },
    );
    corePath = q.file('guest.core');
    await q.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${corePath}` });
    dump = await openDump(corePath);
  });

  afterAll(async () => {
    await dump?.close();
    await q?.stop();
  });

  it('parses the core: RAM at 0 and the BIOS below 4 GiB', async () => {
    const d = dump!;
    expect(d.format).toBe('elf');
    expect(d.info.description).toMatch(/^ELF core guest\.core \(ELF64 i386, /);
    expect(await d.ram()).toEqual([
      { start: 0n, end: 64n << 20n },
      { start: 0xfffc0000n, end: 0x100000000n },
    ]);
    expect((await d.readPhysical(0xfffffff0n, 1))[0]).toBe(0xea); // the reset vector: jmp far
  });

  it('finds the reset state, and says EFER was assumed', async () => {
    const cpu = await dump!.cpuState();
    expect(cpu.rip).toBe(0xfff0n);
    expect(cpu.cr0).toBe(0x60000010n);
    expect([cpu.cr3, cpu.cr4, cpu.efer]).toEqual([0n, 0n, 0n]);
    expect(cpu.cs).toMatchObject({ selector: 0xf000, base: 0xffff0000n, limit: 0xffff });
    expect(cpu.notes).toEqual([expect.stringMatching(/^EFER is not in QEMU's ELF core: assumed 0 .*--efer/)]);
  });

  it('holds the loaded tables byte for byte', () => {
    for (const [pa, bytes] of mem.writtenFrames()) {
      const f = dump!.frame(pa)!;
      expect(Buffer.from(f.buffer, f.byteOffset, 4096).equals(Buffer.from(bytes)), `frame 0x${pa.toString(16)}`).toBe(true);
    }
  });

  it('walks the tables with CR0/CR3/CR4/EFER given on top of the dump', async () => {
    const d = dump!;
    const ctx = pagingContext({ cr0: CR0.PG | CR0.WP | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA | EFER.NXE });
    const expected: [bigint, bigint | null][] = [
      [0xffffffff80000000n, BigInt(TEXT)],
      [0xffffffff80001010n, BigInt(DATA + 0x10)],
      [0x234567n, 0x234567n],
      [0xffff800000221010n, BigInt(DATA + 0x10)],
      [0xffffffff80002000n, null],
    ];
    for (const [va, pa] of expected) {
      const r = walk(d, ctx, va);
      expect(r, `walk 0x${va.toString(16)}`).toEqual(walk(mem, ctx, va));
      expect(r.translation?.pa ?? null).toBe(pa);
    }
    expect(walk(d, ctx, 0xffffffff80002000n).fault?.reason).toBe('not-present');
    expect(new TextDecoder().decode(await d.readPhysical(walk(d, ctx, 0xffffffff80000000n).translation!.pa, 13))).toBe('pagewalk text');
  });

  it('answers the CLI over the real core: regs, walk, map and check', async () => {
    const mode = ['--dump', corePath, '--cr3', `0x${pt.cr3.toString(16)}`, '--mode', '4-level', '--maxphyaddr', '40'];
    const regs = await cli(['regs', '--dump', corePath, '--json']);
    expect(regs.status).toBe(0);
    expect(JSON.parse(regs.stdout)).toMatchObject({ mode: 'none', rip: '0xfff0', cr0: { value: '0x60000010', pg: false } });
    const w = await cli(['walk', ...mode, '--json', '0xffffffff80001010']);
    expect(w.status).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({ mapped: true, pa: `0x${(DATA + 0x10).toString(16)}`, effective: { write: true, execute: false } });
    const m = JSON.parse((await cli(['map', ...mode, '--json'])).stdout);
    expect(m.ranges.map((r: { va: string; pageSize: number }) => [r.va, r.pageSize])).toEqual([
      ['0x200000', 2 << 20],
      ['0xffff800000000000', 1 << 30],
      ['0xffffffff80000000', 4096],
      ['0xffffffff80001000', 4096],
    ]);
    // The reset state has no IDT worth the name: the pre-flight says what it could not check.
    const c = JSON.parse((await cli(['check', ...mode, '--json'])).stdout);
    expect(c.lint.tables).toBeGreaterThan(0);
    expect(c.preflight.checked.length).toBeGreaterThan(0);
  });

  it("matches buildElfCore byte for byte in headers and notes (but e_ehsize, which QEMU 7.2 writes as 8)", async () => {
    const real = readFileSync(corePath);
    const core = parseElfCore({ size: real.length, read: (o, l) => real.subarray(o, o + l) });
    const built = buildElfCore(new SparseMemory(2 ** 32), await dump!.cpuState(), {
      segments: core.loads.map((l) => ({ start: l.paddr, end: l.paddr + l.memsz })),
    });
    expect(built.length).toBe(real.length);
    const memoryAt = core.loads[0]!.offset;
    const head = Buffer.from(real.subarray(0, memoryAt));
    head.writeUInt16LE(64, 0x34);
    expect(built.subarray(0, memoryAt).toString('hex')).toBe(head.toString('hex'));
    expect(built.subarray(-11).equals(real.subarray(-11))).toBe(true);
  });
});

describeQemu('the real-QEMU test helper', (qemu) => {
  describe('startQemu', () => {
    it('talks QMP, turns errors into QmpError, and stops only its own QEMU, leaving nothing behind', async () => {
      const q = await startQemu(qemu, ['-accel', 'tcg', '-m', '16', '-S', '-display', 'none', '-nodefaults']);
      try {
        expect(q.qmp.greeting).toMatchObject({ QMP: { version: { qemu: { major: expect.any(Number) } } } });
        expect(await q.qmp.execute('query-status')).toMatchObject({ status: 'prelaunch', running: false });
        const err = await q.qmp.execute('no-such-command').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(QmpError);
        expect((err as QmpError).errorClass).toBe('CommandNotFound');
      } finally {
        await q.stop();
      }
      expect(() => process.kill(q.pid, 0)).toThrow(/ESRCH/);
      expect(existsSync(q.dir)).toBe(false);
    });

    it("reports QEMU's own complaint when it exits before QMP is up", async () => {
      await expect(startQemu(qemu, ['-no-such-option'])).rejects.toThrow(/QEMU exited before QMP came up: .*no-such-option/);
    });
  });
});
