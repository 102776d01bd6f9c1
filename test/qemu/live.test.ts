/**
 * Every live target against real QEMU (TCG, -cpu max, 4 GiB of RAM in a shared file): the test
 * kernel runs on tables with an identity map, a higher half, 2 MiB and 1 GiB pages, NX, user pages,
 * holes, and NX in a PML4 entry above an executable leaf; it is stopped at its `mov cr3` by a
 * breakpoint. pagewalk's answers over --gdb, --qmp, both, and --mem-path are held against QEMU's
 * own (`info registers`, `gva2gpa`, `info mem`, `info tlb`, `xp`) and against each other, in process
 * (Target + walkTask, for speed) and through the CLI. Then: the guest is left as it was found
 * (running, paused, PhyMemMode), and unreachable or busy endpoints fail in one line with exit 3.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageTables } from '../../src/image/pageTables.js';
import { buildTestKernel, mapTestKernel } from '../../src/image/testKernel.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { mapRanges, mapRangesAsync, type MapRange } from '../../src/paging/map.js';
import { runAsync, type FrameData } from '../../src/paging/memory.js';
import { pagingContext, type CpuFeatures, type PagingContext } from '../../src/paging/mode.js';
import { walkTask } from '../../src/paging/walk.js';
import { parseInfoMem, parseInfoRegisters, parseInfoTlb, type InfoRegisters } from '../../src/qmp/hmp.js';
import { RspClient } from '../../src/rsp/client.js';
import { openLiveTarget, type LiveTargetOptions } from '../../src/target/liveTarget.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import type { RamRange, Target } from '../../src/target/target.js';
import { cli } from '../helpers/cli.js';
import { describeQemu, freeTcpPort, humanMonitor } from '../helpers/qemu.js';
import { bootLiveGuest, canonical, gva2gpa, probeAddresses, status, stopAtCr3Write, xpBytes, type LiveGuest } from './liveGuest.js';

/** A user page whose leaf allows execution, under a PML4 entry with XD set: `info tlb` shows no X, the CPU refuses fetches. */
const NX_ABOVE = 0x0000600000000000n;
const XD = 1n << 63n;

function liveTables(pt: PageTables): void {
  mapTestKernel(pt); // identity entry page, higher-half code (RX, global), data and stack (NX)
  pt.mapRange(0x200000n, 0x200000, 4 << 20, 2 << 20, { nx: true }); // identity 2-6 MiB in 2 MiB pages
  pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true, global: true }); // a direct map in 1 GiB pages...
  pt.map(0xffff800040000000n, 0x40000000, 1 << 30, { global: true }); // ...whose second GiB is executable
  pt.map(0x40000000n, 0x800000, 0x1000, { user: true });
  pt.map(0x40002000n, 0x801000, 0x1000, { user: true, write: false, nx: true }); // 0x40001000 is a hole
  pt.mapRange(0x40010000n, 0x810000, 0x8000, 0x1000, { user: true, write: false }); // eight user read-only pages
  pt.map(NX_ABOVE, 0x900000, 0x1000, { user: true });
  pt.setEntry(NX_ABOVE, 'PML4', pt.getEntry(NX_ABOVE, 'PML4') | XD);
}

/** Physical places written before the tests: the end of RAM below 4 GiB, both ends of RAM above it. */
const PATTERN_PAS = [0xbffff000n, 0x100000000n, 0x13ffff000n];

function pattern(pa: bigint): Uint8Array {
  const b = new Uint8Array(4096);
  let x = Number(pa >> 12n) | 1;
  for (let i = 0; i < b.length; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return b;
}

/** What a target answered, collected once per target. */
interface Seen {
  cpu: CpuState;
  features: CpuFeatures;
  ram: RamRange[] | null;
  ctx: PagingContext;
  tables: FrameData[];
  map: MapRange[];
  /** Per probe address: the PA, null when not mapped, 'non-canonical' for #GP. */
  walks: (bigint | null | 'non-canonical')[];
  /** Per probe address that maps: the leaf entry's XD bit and the OR over all levels. */
  nx: Map<bigint, { leaf: boolean; any: boolean; execute: boolean }>;
  reads: Uint8Array[];
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

async function look(t: Target, vas: readonly bigint[], tablePas: readonly number[]): Promise<Seen> {
  const cpu = await t.cpuState();
  const features = await t.cpuFeatures();
  const ctx = pagingContext(cpu, features);
  const map: MapRange[] = [];
  for await (const r of mapRangesAsync(t, ctx)) map.push(r);
  const walks: Seen['walks'] = [];
  const nx: Seen['nx'] = new Map();
  for (const va of vas) {
    const w = await runAsync(walkTask(ctx, va), t);
    if (w.fault?.reason === 'non-canonical') walks.push('non-canonical');
    else walks.push(w.translation ? w.translation.pa : null);
    if (w.translation) {
      const leaf = w.steps[w.steps.length - 1]!;
      nx.set(va, { leaf: (leaf.raw & XD) !== 0n, any: w.steps.some((s) => (s.raw & XD) !== 0n), execute: w.translation.rights.execute });
    }
  }
  const reads = [
    await t.readPhysical(BigInt(tablePas[0]!), 0x1000),
    await t.readPhysical(0x102000n, 0x40),
    ...(await Promise.all(PATTERN_PAS.map((pa) => t.readPhysical(pa, 0x1000)))),
  ];
  return { cpu, features, ram: await t.ram(), ctx, tables: await t.frames(tablePas), map, walks, nx, reads };
}

/** The registers both interfaces report, in one comparable shape. */
function registersOf(c: CpuState) {
  return {
    cr0: c.cr0,
    cr2: c.cr2,
    cr3: c.cr3,
    cr4: c.cr4,
    efer: c.efer,
    rip: c.rip,
    rsp: c.rsp,
    rflags: c.rflags,
    gpr: c.gpr,
    selectors: [c.cs, c.ss, c.ds, c.es, c.fs, c.gs].map((s) => s?.selector),
    gdtr: c.gdtr,
    idtr: c.idtr,
    tr: c.tr && { selector: c.tr.selector, base: c.tr.base, limit: c.tr.limit },
  };
}

function registersOfInfo(i: InfoRegisters) {
  return {
    cr0: i.cr0,
    cr2: i.cr2,
    cr3: i.cr3,
    cr4: i.cr4,
    efer: i.efer,
    rip: i.rip,
    rsp: i.rsp,
    rflags: i.rflags,
    gpr: i.gprs,
    selectors: [i.cs, i.ss, i.ds, i.es, i.fs, i.gs].map((s) => s.selector),
    gdtr: i.gdt,
    idtr: i.idt,
    tr: { selector: i.tr.selector, base: i.tr.base, limit: i.tr.limit },
  };
}

/** pagewalk's ranges merged the way `info mem` merges pages: contiguous in VA, same user/write, whatever the PA, size or NX. */
function mergedLikeInfoMem(map: readonly MapRange[]): string[] {
  const out: { start: bigint; end: bigint; user: boolean; write: boolean }[] = [];
  for (const r of [...map].sort((a, b) => (a.va < b.va ? -1 : 1))) {
    const last = out[out.length - 1];
    if (last && last.end === r.va && last.user === r.user && last.write === r.write) last.end = r.va + r.size;
    else out.push({ start: r.va, end: r.va + r.size, user: r.user, write: r.write });
  }
  return out.map((r) => `${hex(r.start)}-${hex(r.end)} ${r.user ? 'u' : '-'}r${r.write ? 'w' : '-'}`);
}

describeQemu('live targets on real QEMU: stopped at mov cr3', (qemu) => {
  const k = buildTestKernel({ tables: liveTables });
  const tablePas = Array.from({ length: (k.manifest.tableFrames.end - k.manifest.tableFrames.start) / 0x1000 }, (_, i) => k.manifest.tableFrames.start + i * 0x1000);
  const built = [...mapRanges(k.mem, pagingContext({ cr0: k.manifest.cr0, cr3: k.manifest.cr3, cr4: k.manifest.cr4, efer: k.manifest.efer }))];
  const vas = probeAddresses(built);
  let g: LiveGuest;
  let info: InfoRegisters;
  let oracle: (bigint | null)[];
  const seen: Record<'gdb' | 'qmp' | 'both' | 'memPath', Seen> = {} as never;
  const kinds = (): Record<keyof typeof seen, LiveTargetOptions> => ({
    gdb: { gdb: g.gdb },
    qmp: { qmp: g.qmp },
    both: { gdb: g.gdb, qmp: g.qmp },
    memPath: { gdb: g.gdb, memPath: g.memPath! },
  });

  beforeAll(async () => {
    g = await bootLiveGuest(qemu, k, { memPathGiB: 4 });
    await stopAtCr3Write(g);
    const t = await RspTarget.open(g.gdb);
    for (const pa of PATTERN_PAS) await t.writePhysical(pa, pattern(pa));
    await t.close();
    info = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
    oracle = [];
    for (const va of vas) oracle.push(await gva2gpa(g.q, va));
    for (const [kind, options] of Object.entries(kinds()) as [keyof typeof seen, LiveTargetOptions][]) {
      const target = await openLiveTarget(options);
      try {
        seen[kind] = await look(target, vas, tablePas);
      } finally {
        await target.close();
      }
    }
  });

  afterAll(async () => {
    await g?.q.stop();
  });

  const all = () => Object.entries(seen) as [string, Seen][];

  it('is stopped at the breakpoint, and every target reads the registers info registers shows', () => {
    expect(info.rip).toBe(k.manifest.cr3Write);
    for (const [kind, s] of all()) expect(registersOf(s.cpu), kind).toEqual(registersOfInfo(info));
    expect(registersOf(seen.gdb.cpu).tr).toEqual({ selector: 0, base: 0n, limit: 0xffff });
  });

  it('asks QEMU for MAXPHYADDR and 1 GiB pages, and lists RAM below and above 4 GiB', () => {
    for (const [kind, s] of all()) {
      expect(s.features, kind).toEqual({ maxPhyAddr: 40, gbPages: true });
      expect(s.ram?.map((r) => `${hex(r.start)}-${hex(r.end)}`), kind).toEqual(['0x0-0xc0000000', '0xfffc0000-0x140000000']);
    }
  });

  it(`walks ${vas.length} addresses to the physical addresses gva2gpa gives, on every target`, () => {
    expect(vas.length).toBeGreaterThan(300);
    const mapped = oracle.filter((pa) => pa !== null).length;
    expect(mapped).toBeGreaterThan(150);
    for (const [kind, s] of all()) {
      const mismatches = vas.filter((va, i) => (s.walks[i] === 'non-canonical' ? null : s.walks[i]) !== oracle[i]).map(hex);
      expect(mismatches, kind).toEqual([]);
    }
  });

  it('calls non-canonical addresses #GP where gva2gpa says Unmapped', () => {
    const nonCanonical = vas.filter((va) => !canonical(va));
    expect(nonCanonical.length).toBeGreaterThan(15);
    for (const [kind, s] of all()) {
      expect(vas.filter((_, i) => s.walks[i] === 'non-canonical'), kind).toEqual(nonCanonical);
    }
    expect(nonCanonical.map((va) => oracle[vas.indexOf(va)])).toEqual(nonCanonical.map(() => null));
  });

  it('maps what info mem shows, merged the way info mem merges (user and write, by VA)', async () => {
    const mem = parseInfoMem(await humanMonitor(g.q.qmp, 'info mem'));
    const shown = mem.ranges.map((r) => `${hex(r.start)}-${hex(r.end)} ${r.user ? 'u' : '-'}r${r.write ? 'w' : '-'}`);
    expect(shown.length).toBeGreaterThan(5);
    for (const [kind, s] of all()) expect(mergedLikeInfoMem(s.map), kind).toEqual(shown);
  });

  it('maps what info tlb shows: each page, its PA, size, global bit and leaf NX; effective NX is the OR over all levels', async () => {
    const tlb = parseInfoTlb(await humanMonitor(g.q.qmp, 'info tlb')).entries;
    for (const [kind, s] of all()) {
      const pages = s.map.reduce((n, r) => n + r.size / BigInt(r.pageSize), 0n);
      expect(pages, kind).toBe(BigInt(tlb.length));
      for (const e of tlb) {
        const r = s.map.find((x) => e.va >= x.va && e.va < x.va + x.size);
        expect(r, `${kind} ${hex(e.va)}`).toBeDefined();
        expect([r!.pa + (e.va - r!.va), r!.pageSize > 4096, r!.global], `${kind} ${hex(e.va)}`).toEqual([e.pa, e.flags.ps, e.flags.g]);
      }
    }
    // The leaf's XD is what info tlb shows as X; what the CPU enforces is the OR over levels.
    const leafNx = new Map(tlb.map((e) => [e.va, e.flags.nx]));
    for (const [va, nx] of seen.gdb.nx) {
      if (leafNx.has(va)) expect(nx.leaf, hex(va)).toBe(leafNx.get(va));
      expect(nx.execute, hex(va)).toBe(!nx.any);
    }
    const differs = tlb.find((e) => e.va === NX_ABOVE)!;
    expect(differs.flags.nx).toBe(false);
    expect(seen.gdb.map.find((r) => r.va === NX_ABOVE)).toMatchObject({ execute: false, user: true, pageSize: 4096 });
  });

  it('reads physical memory as xp does: a table, kernel data, RAM at the end below 4 GiB and above it', async () => {
    const expected = [
      await xpBytes(g.q, BigInt(tablePas[0]!), 0x1000),
      await xpBytes(g.q, 0x102000n, 0x40),
      ...(await Promise.all(PATTERN_PAS.map((pa) => xpBytes(g.q, pa, 0x1000)))),
    ];
    expect(Buffer.from(expected[2]!).equals(Buffer.from(pattern(PATTERN_PAS[0]!)))).toBe(true);
    for (const [kind, s] of all()) s.reads.forEach((r, i) => expect(Buffer.from(r).equals(Buffer.from(expected[i]!)), `${kind} read ${i}`).toBe(true));
  });

  it('gives identical answers over RSP, QMP, both and --mem-path: registers, every table frame, the whole map', () => {
    const frames = (s: Seen) => s.tables.map((f) => (f ? Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('hex') : null));
    expect(frames(seen.gdb).every((f) => f !== null)).toBe(true);
    for (const kind of ['qmp', 'both', 'memPath'] as const) {
      expect(registersOf(seen[kind].cpu), kind).toEqual(registersOf(seen.gdb.cpu));
      expect(frames(seen[kind]), kind).toEqual(frames(seen.gdb));
      expect(seen[kind].map, kind).toEqual(seen.gdb.map);
      expect(seen[kind].walks, kind).toEqual(seen.gdb.walks);
    }
    expect(seen.gdb.map.map((r) => `${hex(r.va)} ${r.size / 1024n}K ${r.pageSize}`)).toEqual(built.map((r) => `${hex(r.va)} ${r.size / 1024n}K ${r.pageSize}`));
  });

  describe('through the CLI', () => {
    const endpoints = (): Record<string, string[]> => ({
      '--gdb': ['--gdb', g.gdb],
      '--qmp': ['--qmp', g.qmp],
      '--gdb --qmp': ['--gdb', g.gdb, '--qmp', g.qmp],
    });

    it('regs --json equals info registers (CR0, CR2, CR3, CR4, EFER, RIP, RSP, RFLAGS, GDT, IDT, TR)', async () => {
      for (const [name, args] of Object.entries(endpoints())) {
        const r = await cli(['regs', '--json', ...args]);
        expect(r.status, `${name}: ${r.stderr}`).toBe(0);
        const j = JSON.parse(r.stdout) as Record<string, { value?: string; base?: string; limit?: string; selector?: string } & string>;
        expect(
          {
            cr0: j.cr0!.value,
            cr2: j.cr2,
            cr3: j.cr3!.value,
            cr4: j.cr4!.value,
            efer: j.efer!.value,
            rip: j.rip,
            rsp: j.rsp,
            rflags: j.rflags,
            gdtr: j.gdtr,
            idtr: j.idtr,
            tr: j.tr,
          },
          name,
        ).toEqual({
          cr0: hex(info.cr0),
          cr2: hex(info.cr2),
          cr3: hex(info.cr3),
          cr4: hex(info.cr4),
          efer: hex(info.efer),
          rip: hex(info.rip),
          rsp: hex(info.rsp),
          rflags: hex(info.rflags),
          gdtr: { base: hex(info.gdt.base), limit: hex(info.gdt.limit) },
          idtr: { base: hex(info.idt.base), limit: hex(info.idt.limit) },
          tr: { selector: hex(info.tr.selector), base: hex(info.tr.base), limit: hex(info.tr.limit) },
        });
      }
    });

    it('walk --json agrees with gva2gpa, and says non-canonical where QEMU says Unmapped', async () => {
      const some = [k.manifest.cr3Write, 0x40000000n, 0x40001000n, 0xffff80003ffffff8n, 0x200000n, 0x0000800000000000n];
      for (const [name, args] of Object.entries(endpoints())) {
        const r = await cli(['walk', '--json', ...args, ...some.map(hex)]);
        expect(r.status, `${name}: ${r.stderr}`).toBe(1); // two of them fault
        const walks = JSON.parse(r.stdout) as { va: string; pa: string | null; fault: { reason: string } | null }[];
        for (const [i, va] of some.entries()) {
          const pa = await gva2gpa(g.q, va);
          expect(walks[i]!.pa, `${name} ${hex(va)}`).toBe(pa === null ? null : hex(pa));
        }
        expect(walks.map((w) => w.fault?.reason ?? null)).toEqual([null, null, 'not-present', null, null, 'non-canonical']);
      }
    });

    it('map --json is the same over --gdb, --qmp and --gdb --mem-path', async () => {
      const outs: string[] = [];
      for (const args of [['--gdb', g.gdb], ['--qmp', g.qmp], ['--gdb', g.gdb, '--mem-path', g.memPath!]]) {
        const r = await cli(['map', '--json', ...args]);
        expect(r.status, r.stderr).toBe(0);
        outs.push(r.stdout);
      }
      expect(new Set(outs).size).toBe(1);
      expect((JSON.parse(outs[0]!) as { ranges: unknown[] }).ranges).toHaveLength(seen.gdb.map.length);
    });
  });

  describe('leaving the guest as it was found', () => {
    async function phyMemMode(): Promise<boolean> {
      const c = await RspClient.connect(g.gdb);
      try {
        return await c.physicalMemoryMode();
      } finally {
        await c.close();
      }
    }

    it('a running guest runs again after each one-shot command, with PhyMemMode back to 0', async () => {
      await g.q.qmp.execute('cont');
      expect(await status(g.q)).toBe('running');
      for (const argv of [['map', '--gdb', g.gdb], ['walk', '--gdb', g.gdb, '--qmp', g.qmp, '0x40000000'], ['regs', '--qmp', g.qmp], ['map', '--gdb', g.gdb, '--mem-path', g.memPath!]]) {
        const r = await cli(argv);
        expect(r.status, r.stderr).toBe(0);
        expect(await status(g.q), argv.join(' ')).toBe('running');
      }
      const qmpOnly = await cli(['regs', '--qmp', g.qmp]);
      expect(qmpOnly.stderr).toContain('note: the guest is running: QMP reads it without stopping it');
      await g.q.qmp.execute('stop');
      expect(await phyMemMode()).toBe(false);
    });

    it('a paused guest stays paused, and a PhyMemMode another client left on stays on', async () => {
      expect(await status(g.q)).toBe('paused');
      const c = await RspClient.connect(g.gdb);
      await c.setPhysicalMemoryMode(true);
      await c.close(); // without D: the mode is QEMU's, and it stays
      for (const argv of [['map', '--gdb', g.gdb], ['regs', '--gdb', g.gdb, '--qmp', g.qmp]]) {
        expect((await cli(argv)).status).toBe(0);
        expect(await status(g.q), argv.join(' ')).toBe('paused');
      }
      expect(await phyMemMode()).toBe(true);
      const reset = await RspClient.connect(g.gdb);
      expect(await reset.request('Qqemu.PhyMemMode:0')).toBe('OK');
      await reset.close();
      expect(await phyMemMode()).toBe(false);
    });

    it('a bad address is exit 2 in one line, and the guest is left as it was', async () => {
      const r = await cli(['walk', '--gdb', g.gdb, '0xnope']);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n').filter((l) => !l.startsWith('note: '))).toEqual(["pagewalk: VA: expected an address such as 0xffffffff80000000, got '0xnope'", '']);
      expect(await status(g.q)).toBe('paused');
    });
  });

  describe('endpoints that cannot be used', () => {
    it('an unreachable gdbstub or QMP socket is exit 3 in one line', async () => {
      const port = await freeTcpPort();
      const gdb = await cli(['regs', '--gdb', `127.0.0.1:${port}`]);
      expect([gdb.status, gdb.stdout, gdb.stderr]).toEqual([
        3,
        '',
        `pagewalk: cannot connect to 127.0.0.1:${port}: connection refused (is QEMU running with -gdb on that address?)\n`,
      ]);
      const qmp = await cli(['map', '--qmp', g.q.file('nope.sock')]);
      expect([qmp.status, qmp.stderr]).toEqual([3, `pagewalk: cannot connect to QMP at ${g.q.file('nope.sock')}: no such socket (start QEMU with -qmp unix:PATH,server=on,wait=off)\n`]);
    });

    it('a gdbstub held by another client is exit 3 in one line, within the connect timeout', async () => {
      const holder: Socket = connect(g.q.file('gdb.sock'));
      await new Promise((r) => holder.once('connect', r));
      try {
        const started = Date.now();
        const r = await cli(['regs', '--gdb', g.gdb]);
        expect([r.status, r.stderr]).toEqual([
          3,
          `pagewalk: the gdbstub at ${g.q.file('gdb.sock')} is in use by another client (GDB?): it accepted the connection but sent nothing in 2000 ms\n`,
        ]);
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        holder.destroy();
      }
    });

    it('a QMP socket held by another client is exit 3 in one line', async () => {
      const r = await cli(['regs', '--qmp', g.q.file('qmp.sock')]); // the test helper's own QMP connection holds it
      expect(r.status).toBe(3);
      expect(r.stderr).toBe(
        `pagewalk: no QMP greeting from ${g.q.file('qmp.sock')} in 2000 ms: the QMP socket is in use by another client (QEMU serves one at a time; close the other one, or give QEMU a second -qmp socket)\n`,
      );
    });

    it('options that name no target, or two, are exit 2', async () => {
      expect((await cli(['regs', '--mem-path', g.memPath!])).stderr).toMatch(/^pagewalk: --mem-path FILE reads the RAM of a live QEMU: pass --gdb/);
      const two = await cli(['regs', '--example', '--gdb', g.gdb]);
      expect([two.status, two.stderr]).toEqual([
        2,
        'pagewalk: pass one target, not --example and --gdb/--qmp: --dump FILE, --example, --emu SCENARIO, or a live QEMU with --gdb HOST:PORT and/or --qmp PATH\n',
      ]);
      expect((await cli(['regs', '--gdb', 'nowhere'])).stderr).toBe(
        "pagewalk: --gdb: 'nowhere' is not a gdbstub address: expected HOST:PORT (e.g. 127.0.0.1:1234) or a unix socket path\n",
      );
    });
  });
});
