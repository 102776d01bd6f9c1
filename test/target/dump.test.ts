import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildElfCore, writeElfCore, type CoreOptions } from '../../src/image/elfCore.js';
import { PageTables } from '../../src/image/pageTables.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { runAsync } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { walk, walkTask } from '../../src/paging/walk.js';
import { DumpTarget, RAW_IMAGE_NOTE, openDump } from '../../src/target/dump.js';
import { EFER_INFERRED_NOTE } from '../../src/target/elfCore.js';
import { TargetError } from '../../src/target/target.js';

const dir = mkdtempSync(join(tmpdir(), 'pagewalk-dump-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (name: string): string => join(dir, `${n++}-${name}`);

/** Opens `path`, runs `fn`, closes whatever happens. */
async function withDump<T>(path: string, fn: (d: DumpTarget) => Promise<T> | T): Promise<T> {
  const d = await openDump(path);
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** The TargetError `p` rejects with, as "CODE: message". */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TargetError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

const bytesOf = (v: DataView | null): string | null => (v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') : null);

/** A kernel in long mode with its tables: identity 2 MiB page, a 4 KiB higher-half text page, a 1 GiB direct map. */
function longModeMachine(): { mem: SparseMemory; cpu: CpuState } {
  const mem = new SparseMemory(0x800000);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(0x100000, 0x120000));
  pt.map(0n, 0, 2 << 20);
  pt.map(0xffffffff80000000n, 0x400000, 4096, { write: false, global: true });
  pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true });
  mem.write(0x400000, new TextEncoder().encode('kernel text'));
  const cpu: CpuState = {
    cr0: CR0.PG | CR0.WP | CR0.PE | 0x10n,
    cr2: 0xffffffff80001000n,
    cr3: pt.cr3,
    cr4: CR4.PAE | CR4.PGE,
    efer: EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE,
    rip: 0xffffffff80000010n,
    rsp: 0xffff800000007f00n,
    rflags: 0x10246n,
    gpr: { rax: 0x11n, rbx: 0x22n, rcx: 0x33n, rdx: 0x44n, rsi: 0x55n, rdi: 0x66n, rsp: 0xffff800000007f00n, rbp: 0x77n, r8: 8n, r9: 9n, r10: 10n, r11: 11n, r12: 12n, r13: 13n, r14: 14n, r15: 15n },
    cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xa09b00 },
    ss: { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xc09300 },
    ds: { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xc09300 },
    es: { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xc09300 },
    fs: { selector: 0, base: 0x7f0000000000n, limit: 0, flags: 0 },
    gs: { selector: 0, base: 0xffff888000001000n, limit: 0, flags: 0 },
    ldtr: { selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 },
    tr: { selector: 0x28, base: 0xffffffff80006100n, limit: 0x67, flags: 0x8b00 },
    gdtr: { base: 0xffffffff80006000n, limit: 0x37 },
    idtr: { base: 0xffffffff80007000n, limit: 0xfff },
    notes: [],
  };
  return { mem, cpu };
}

describe('openDump: ELF cores', () => {
  it('gives back every register of a 64-bit core, with EFER inferred and said so', async () => {
    const { mem, cpu } = longModeMachine();
    const path = tmp('long.core');
    await writeElfCore(mem, cpu, path);
    await withDump(path, async (d) => {
      expect(d.info.kind).toBe('dump');
      expect(d.format).toBe('elf');
      expect(d.info.description).toMatch(/^ELF core .*long\.core \(ELF64 x86-64, 8 MiB in 1 PT_LOAD\)$/);
      const got = await d.cpuState();
      expect(got).toEqual({ ...cpu, efer: EFER.LME | EFER.LMA | EFER.NXE, notes: [EFER_INFERRED_NOTE] });
      expect(await d.cpuFeatures()).toEqual({});
    });
  });

  it('gives back a 32-bit core, EFER assumed 0 with a note that says NXE is unknown', async () => {
    const { mem, cpu } = longModeMachine();
    const pae: CpuState = { ...cpu, efer: 0n, cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xc09b00 }, rip: 0xc0001000n, rsp: 0xc0002000n };
    const path = tmp('pae.core');
    await writeElfCore(mem, pae, path);
    expect(readFileSync(path)[4]).toBe(1); // ELFCLASS32
    await withDump(path, async (d) => {
      const got = await d.cpuState();
      expect(got.efer).toBe(0n);
      expect([got.cr0, got.cr3, got.cr4, got.rip, got.rsp, got.gpr.r15]).toEqual([pae.cr0, pae.cr3, pae.cr4, 0xc0001000n, 0xc0002000n, 15n]);
      expect(got.notes).toHaveLength(1);
      expect(got.notes[0]).toMatch(/^EFER is not in QEMU's ELF core: assumed 0 .*NXE is unknown; pass --efer to override$/);
    });
  });

  it("infers long mode from EM_X86_64 when CS is not a 64-bit segment (compatibility mode, or a CpuState without flags)", async () => {
    const { mem, cpu } = longModeMachine();
    const path = tmp('compat.core');
    await writeElfCore(mem, { ...cpu, cs: { selector: 0x08 } }, path);
    await withDump(path, async (d) => {
      const got = await d.cpuState();
      expect(got.efer).toBe(EFER.LME | EFER.LMA | EFER.NXE);
      expect(got.notes).toEqual([expect.stringMatching(/^EFER is not in QEMU's ELF core: inferred LME\|LMA\|NXE from the core's EM_X86_64 .*--efer/)]);
    });
  });

  it('takes the first of several CPUs and says how many there were', async () => {
    const { mem, cpu } = longModeMachine();
    const path = tmp('smp.core');
    await writeElfCore(mem, cpu, path, { cpus: [cpu, { ...cpu, rip: 0x1000n }] });
    await withDump(path, async (d) => {
      const got = await d.cpuState();
      expect(got.rip).toBe(cpu.rip);
      expect(got.notes).toEqual(["the core holds 2 CPUs: these registers are the first one's", EFER_INFERRED_NOTE]);
    });
  });

  it('reads registers from NT_PRSTATUS when there is no QEMU note, and says CR* are unknown', async () => {
    const { mem, cpu } = longModeMachine();
    const core = buildElfCore(mem, cpu);
    const qemuName = core.indexOf('QEMU\0', 0, 'latin1');
    core.write('XEMU', qemuName, 'latin1'); // no longer a QEMU note
    const path = tmp('prstatus.core');
    writeFileSync(path, core);
    await withDump(path, async (d) => {
      const got = await d.cpuState();
      expect([got.cr0, got.cr3, got.cr4, got.efer]).toEqual([0n, 0n, 0n, 0n]);
      expect([got.rip, got.rsp, got.rflags, got.gpr.rax, got.gpr.r15]).toEqual([cpu.rip, cpu.rsp, cpu.rflags, 0x11n, 15n]);
      expect(got.cs).toEqual({ selector: 0x08 });
      expect(got.fs).toEqual({ selector: 0, base: 0x7f0000000000n });
      expect(got.notes).toEqual([expect.stringMatching(/^the core has no QEMU CPU note, so no control registers: .*pass --cr3/)]);
    });
  });

  it('opens a core without CPU notes, with a note that no registers are known', async () => {
    const { mem, cpu } = longModeMachine();
    const core = buildElfCore(mem, cpu);
    core.write('XEMU', core.indexOf('QEMU\0', 0, 'latin1'), 'latin1');
    core.write('XORE', core.indexOf('CORE\0', 0, 'latin1'), 'latin1');
    const path = tmp('nonotes.core');
    writeFileSync(path, core);
    await withDump(path, async (d) => {
      const got = await d.cpuState();
      expect(got.rip).toBe(0n);
      expect(got.notes).toEqual([expect.stringMatching(/^the core holds no CPU notes/)]);
    });
  });

  it('reads every frame as SparseMemory has it, across segments, holes and zero-filled tails', async () => {
    const mem = new SparseMemory(0x100000);
    for (let pa = 0; pa < 0x100000; pa += 0x3000) mem.write32(pa + 0x10, pa ^ 0xa5a5a5a5);
    mem.write(0x20ffc, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])); // crosses a frame and a segment start
    const opts: CoreOptions = {
      segments: [
        { start: 0, end: 0x20000 },
        { start: 0x20000, end: 0x40000 }, // adjacent: one RAM range
        { start: 0x80000, end: 0xa0000, fileEnd: 0x90000 }, // the last 64 KiB are not stored
        { start: 0xc0800, end: 0xc1800 }, // not frame-aligned
      ],
    };
    for (const cls of [64, 32] as const) {
      const path = tmp(`segments${cls}.core`);
      await writeElfCore(mem, longModeMachine().cpu, path, cls === 32 ? { ...opts, cpus: [{ ...longModeMachine().cpu, efer: 0n }] } : opts);
      await withDump(path, async (d) => {
        expect(await d.ram()).toEqual([
          { start: 0n, end: 0x40000n },
          { start: 0x80000n, end: 0xa0000n },
          { start: 0xc0800n, end: 0xc1800n },
        ]);
        const inRam = (pa: number): boolean => pa < 0x40000 || (pa >= 0x80000 && pa < 0xa0000) || (pa + 0x1000 > 0xc0800 && pa < 0xc1800);
        for (let pa = 0; pa < 0x100000; pa += 0x1000) {
          const f = d.frame(pa);
          if (!inRam(pa)) {
            expect(f, `frame ${pa.toString(16)}`).toBeNull();
            continue;
          }
          let want: Uint8Array = mem.read(pa, 0x1000);
          if (pa >= 0x90000 && pa < 0xa0000) want = new Uint8Array(0x1000); // not stored: zeros
          if (pa === 0xc0000 || pa === 0xc1000) {
            want = new Uint8Array(0x1000);
            const s = Math.max(pa, 0xc0800);
            const e = Math.min(pa + 0x1000, 0xc1800);
            want.set(mem.read(s, e - s), s - pa);
          }
          expect(bytesOf(f), `frame ${pa.toString(16)} (ELF${cls})`).toBe(Buffer.from(want).toString('hex'));
        }
        expect(await d.frames([0x20000, 0x50000, 0x3000])).toEqual([d.frame(0x20000), null, d.frame(0x3000)]);
        expect(Buffer.from(await d.readPhysical(0x20ffcn, 8)).toString('hex')).toBe('0102030405060708');
        expect(Buffer.from(await d.readPhysical(0x3fffcn, 4)).toString('hex')).toBe('00000000');
        expect(await failure(d.readPhysical(0x3fffcn, 8))).toBe(
          "E_UNREADABLE: physical 0x3fffc+0x8 is outside the dump's memory (it holds 0x0-0x40000, 0x80000-0xa0000, 0xc0800-0xc1800)",
        );
        expect(await failure(d.readPhysical(-1n, 1))).toMatch(/^E_UNREADABLE: /);
        expect(await d.readPhysical(0x50000n, 0)).toEqual(new Uint8Array(0));
      });
    }
  });

  it('walks the tables of a core the same way as the memory it was written from', async () => {
    const { mem, cpu } = longModeMachine();
    const path = tmp('walk.core');
    await writeElfCore(mem, cpu, path);
    const ctx = pagingContext(cpu);
    await withDump(path, async (d) => {
      for (const va of [0x1234n, 0xffffffff80000010n, 0xffff800000400000n, 0xffffffff80001000n, 0xffff800040000000n]) {
        const want = walk(mem, ctx, va);
        expect(walk(d, ctx, va), `sync ${va.toString(16)}`).toEqual(want);
        expect(await runAsync(walkTask(ctx, va), d), `async ${va.toString(16)}`).toEqual(want);
      }
      const t = walk(d, ctx, 0xffffffff80000000n).translation!;
      expect(t.pa).toBe(0x400000n);
      expect(new TextDecoder().decode(await d.readPhysical(t.pa, 11))).toBe('kernel text');
    });
  });

  it('keeps handing out the same bytes after a frame leaves the cache', async () => {
    const mem = new SparseMemory(0x2000000);
    for (let pa = 0; pa < mem.size; pa += 0x1000) mem.write32(pa, pa + 1);
    const path = tmp('cache.core');
    await writeElfCore(mem, longModeMachine().cpu, path);
    await withDump(path, (d) => {
      const first = d.frame(0)!;
      for (let pa = 0x1000; pa < mem.size; pa += 0x1000) expect(d.frame(pa)!.getUint32(0, true)).toBe(pa + 1); // 8192 frames: evicts frame 0
      expect(first.getUint32(0, true)).toBe(1);
      expect(d.frame(0)!.getUint32(0, true)).toBe(1);
    });
  });

  it('says E_LOST after close, and when the file shrinks under it', async () => {
    const path = tmp('lost.core');
    await writeElfCore(new SparseMemory(0x10000), longModeMachine().cpu, path);
    const d = await openDump(path);
    truncateSync(path, 0x2000);
    expect(() => d.frame(0x8000)).toThrow(/the file shrank after it was opened/);
    await d.close();
    await d.close();
    expect(() => d.frame(0)).toThrow(TargetError);
    expect(await failure(d.readPhysical(0n, 4))).toMatch(/^E_LOST: the dump .* is closed$/);
  });
});

describe('openDump: raw images', () => {
  it('has no registers and says how to give them', async () => {
    const mem = new SparseMemory(0x5000);
    mem.write64(0x2ff8, 0xfeedfacecafebeefn);
    const path = tmp('small.raw');
    await writeRawImage(mem, path);
    await withDump(path, async (d) => {
      expect(d.format).toBe('raw');
      expect(d.info).toEqual({ kind: 'dump', description: `raw image ${n - 1}-small.raw (20 KiB)` });
      const cpu = await d.cpuState();
      expect(cpu).toEqual({ cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, rip: 0n, rsp: 0n, rflags: 0n, gpr: {}, notes: [RAW_IMAGE_NOTE] });
      expect(RAW_IMAGE_NOTE).toBe('a raw image holds no registers: pass --cr3 (and --cr0/--cr4/--efer) to say how to walk');
      expect(await d.ram()).toEqual([{ start: 0n, end: 0x5000n }]);
      expect(d.frame(0x2000)!.getBigUint64(0xff8, true)).toBe(0xfeedfacecafebeefn);
      expect(d.frame(0x5000)).toBeNull();
      expect(await failure(d.readPhysical(0x4ffcn, 8))).toMatch(/^E_UNREADABLE: physical 0x4ffc\+0x8 is outside the dump's memory \(it holds 0x0-0x5000\)$/);
    });
  });

  it('reads a last frame cut short as zeros beyond the end of the file', async () => {
    const path = tmp('odd.raw');
    writeFileSync(path, Buffer.alloc(0x1800, 0x11));
    await withDump(path, (d) => {
      const f = d.frame(0x1000)!;
      expect([f.getUint8(0x7ff), f.getUint8(0x800)]).toEqual([0x11, 0]);
    });
  });

  it('opens a 4 GiB sparse image and reads its top frame without reading the rest', async () => {
    const mem = new SparseMemory(2 ** 32);
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0xfff00000, 0xfff40000));
    pt.map(0xffffffff80000000n, 0xffe00000, 2 << 20);
    mem.write(0xffe01234, new TextEncoder().encode('up high'));
    const path = tmp('4g.raw');
    await writeRawImage(mem, path);
    await withDump(path, async (d) => {
      expect(await d.ram()).toEqual([{ start: 0n, end: 0x100000000n }]);
      expect(d.info.description).toMatch(/\(4 GiB\)$/);
      const ctx = pagingContext({ cr0: CR0.PG | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA });
      const t = walk(d, ctx, 0xffffffff80001234n).translation!;
      expect(t.pa).toBe(0xffe01234n);
      expect(new TextDecoder().decode(await d.readPhysical(t.pa, 7))).toBe('up high');
      expect(d.frame(2 ** 32)).toBeNull();
    });
  });
});

describe('openDump: bad input', () => {
  it('E_OPEN for a missing file and a directory', async () => {
    expect(await failure(openDump(join(dir, 'missing.core')))).toBe(`E_OPEN: cannot open dump ${join(dir, 'missing.core')}: no such file`);
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect(await failure(openDump(sub))).toBe(`E_OPEN: cannot open dump ${sub}: not a regular file`);
  });

  it('E_FORMAT for an empty file', async () => {
    const path = tmp('empty');
    writeFileSync(path, '');
    expect(await failure(openDump(path))).toBe(`E_FORMAT: ${path}: the file is empty, it holds no memory`);
  });

  it('E_FORMAT, naming the file, for a core cut short anywhere', async () => {
    const full = buildElfCore(new SparseMemory(0x3000), longModeMachine().cpu);
    for (const cut of [4, 17, 0x40, 0xbf, 0x100, 0x131, 0x300, 0x460, 0x1000, full.length - 11, full.length - 1]) {
      const path = tmp(`cut-${cut}.core`);
      writeFileSync(path, full.subarray(0, cut));
      const text = await failure(openDump(path));
      expect(text, `cut at ${cut}`).toMatch(new RegExp(`^E_FORMAT: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      expect(text).not.toContain('\n');
    }
  });

  it('reads a file that is not ELF as a raw image, whatever its first bytes', async () => {
    const path = tmp('not-elf');
    writeFileSync(path, Buffer.from('\x7fELG and more', 'latin1'));
    await withDump(path, (d) => expect(d.format).toBe('raw'));
  });
});
