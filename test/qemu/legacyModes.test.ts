/**
 * 32-bit kernels on real QEMU (TCG), qemu-system-x86_64 and qemu-system-i386 (whose gdbstub has
 * 32-bit registers): the legacy-mode test kernel runs with 32-bit paging (CR4.PSE, 4 MiB pages, a
 * PSE-36 page above 4 GiB) and with PAE (EFER.NXE, 2 MiB pages, NX in a PD entry
 * above an executable leaf), stopped at its `mov cr3`. Through the CLI, over --gdb and --qmp:
 * `regs` reads the mode and registers `info registers` shows, `walk` gives what `gva2gpa` gives for
 * every probe address, `map` is what `info mem` and `info tlb` show (with the NX they do not), and
 * the lint of tables QEMU has walked finds no error. Also pinned here: QEMU's TCG sets bit 5 (A) in
 * PAE PDPTEs as it walks, which the SDM reserves (pagewalk warns rather than failing every walk).
 * Then watch-cr3 on both: it predicts the triple fault of a switch to tables without the kernel's
 * code while QEMU stands on the `mov cr3`; QEMU, let go, triple-faults, and post-mortem explains it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLegacyKernel, largePageSize, mapLegacyKernel, type LegacyKernel, type LegacyMode } from '../../src/image/legacyKernel.js';
import type { PageTables } from '../../src/image/pageTables.js';
import type { PageFaultJson } from '../../src/json/watch.js';
import { hex } from '../../src/paging/addr.js';
import { mapRanges } from '../../src/paging/map.js';
import { pagingContext } from '../../src/paging/mode.js';
import { parseInfoMem, parseInfoRegisters, parseInfoTlb } from '../../src/qmp/hmp.js';
import { cli } from '../helpers/cli.js';
import { describeQemu, humanMonitor, startQemu } from '../helpers/qemu.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { bootLiveGuest, gva2gpa, stopAtCr3Write, xpBytes, type LiveGuest } from './liveGuest.js';

/** A page above 4 GiB through PSE-36 (32-bit paging; QEMU's -cpu max has 40 physical address bits). */
const PSE36_VA = 0x80000000n;
const PSE36_PA = 0x1_0040_0000n;
/** PAE: a user page whose PT entry allows execution, under a PD entry with XD set. */
const NX_ABOVE = 0x60000000n;
const XD = 1n << 63n;

function legacyTables(mode: LegacyMode) {
  return (pt: PageTables): void => {
    const large = largePageSize(mode);
    const nx = mode === 'PAE';
    mapLegacyKernel(pt); // identity entry page, higher-half code (RX, global), data and stack
    pt.map(0x400000n, large, large, { user: true }); // one large user page
    pt.map(0x40000000n, 0x800000, 0x1000, { user: true, write: false, nx }); // then a hole at 0x40001000
    pt.mapRange(0x40002000n, 0x802000, 0x8000, 0x1000, { user: true }); // eight user pages
    pt.mapRange(0xd0000000n, 0, 2 * large, large, { nx, global: true }); // a direct map of the first MiBs
    if (mode === '32-bit') pt.map(PSE36_VA, PSE36_PA, 0x400000);
    if (mode === 'PAE') {
      pt.map(NX_ABOVE, 0x900000, 0x1000, { user: true });
      pt.setEntry(NX_ABOVE, 'PD', pt.getEntry(NX_ABOVE, 'PD') | XD);
    }
  };
}

/** Addresses to walk: both ends of every range, the bytes just outside, the middle, and random 32-bit ones (a fixed LCG). */
function probes(k: LegacyKernel): bigint[] {
  const m = k.manifest;
  const ctx = pagingContext({ cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer }, { maxPhyAddr: 40 });
  const out = new Set<bigint>([0n, 0xffffffffn, 0x7fffffffn]);
  for (const r of mapRanges(k.mem, ctx)) {
    for (const v of [r.va, r.va + 1n, r.va + r.size - 1n, r.va + r.size, r.va - 1n, r.va + r.size / 2n]) if (v >= 0n && v <= 0xffffffffn) out.add(v);
  }
  let x = 0x1234567;
  for (let i = 0; i < 120; i++) out.add(BigInt((x = (Math.imul(x, 1103515245) + 12345) >>> 0)));
  return [...out];
}

interface MapJson {
  mode: string;
  cr3: string;
  ranges: { va: string; pa: string; size: string; pageSize: number; write: boolean; user: boolean; execute: boolean; global: boolean }[];
}

/** Runs a command with --json; `status` is the exit status expected (walk: 1 when any of its accesses faults). */
async function json<T>(argv: string[], status = 0): Promise<T> {
  const r = await cli([...argv, '--json']);
  expect(r.status, r.stderr).toBe(status);
  return JSON.parse(r.stdout) as T;
}

/** The QEMU binary beside `qemu` (qemu-system-x86_64) for `arch`: 32-bit kernels are often run on qemu-system-i386. */
function binaryFor(qemu: string, arch: 'x86_64' | 'i386'): string {
  return arch === 'x86_64' ? qemu : qemu.replace(/x86_64$/, 'i386');
}

const RUNS = [
  ['32-bit', 'x86_64'],
  ['PAE', 'x86_64'],
  ['32-bit', 'i386'], // its gdbstub speaks the i386 target.xml: 32-bit registers, no CR8 or EFER
  ['PAE', 'i386'],
] as const;

for (const [mode, arch] of RUNS) {
  describeQemu(`a ${mode} paging kernel on real qemu-system-${arch}, stopped at mov cr3`, (x86_64) => {
    const qemu = binaryFor(x86_64, arch);
    const k = buildLegacyKernel({ mode, tables: legacyTables(mode) });
    const vas = probes(k);
    let g: LiveGuest<LegacyKernel>;
    let oracle: (bigint | null)[];
    const targets = (): Record<string, string[]> => ({ '--gdb': ['--gdb', g.gdb], '--qmp': ['--qmp', g.qmp] });

    beforeAll(async () => {
      g = await bootLiveGuest(qemu, k);
      await stopAtCr3Write(g);
      oracle = [];
      for (const va of vas) oracle.push(await gva2gpa(g.q, va));
    });

    afterAll(async () => {
      await g?.q.stop();
    });

    it('regs --json reads the mode and the registers info registers shows', async () => {
      const info = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
      for (const [name, t] of Object.entries(targets())) {
        const r = await json<{ mode: string; vaBits: number; cr0: { value: string }; cr3: { value: string }; cr4: { value: string }; efer: { value: string }; rip: string }>(['regs', ...t]);
        expect([r.mode, r.vaBits, r.rip], name).toEqual([mode, 32, hex(k.manifest.cr3Write)]);
        expect([r.cr0.value, r.cr3.value, r.cr4.value, r.efer.value], name).toEqual([hex(info.cr0), hex(info.cr3), hex(info.cr4), hex(info.efer)]);
        expect([BigInt(r.cr4.value), BigInt(r.efer.value)], name).toEqual([k.manifest.cr4, k.manifest.efer]);
      }
    });

    it('walks every probe address to the physical address gva2gpa gives', async () => {
      expect(vas.length).toBeGreaterThan(150);
      expect(oracle.filter((pa) => pa !== null).length).toBeGreaterThan(25);
      for (const [name, t] of Object.entries(targets())) {
        const walks = await json<{ va: string; pa: string | null; mapped: boolean }[]>(['walk', ...t, ...vas.map(hex)], 1);
        const mismatches = walks.filter((w, i) => (w.mapped ? BigInt(w.pa!) : null) !== oracle[i]).map((w) => w.va);
        expect(mismatches, name).toEqual([]);
      }
      if (mode === '32-bit') expect(await gva2gpa(g.q, PSE36_VA + 0x123n)).toBe(PSE36_PA + 0x123n); // PSE-36: above 4 GiB
    });

    it('maps what info mem shows (merged by VA, user and write) and what info tlb shows page by page', async () => {
      const byGdb = await json<MapJson>(['map', ...targets()['--gdb']!]);
      const byQmp = await json<MapJson>(['map', ...targets()['--qmp']!]);
      expect(byQmp).toEqual(byGdb);
      expect(byGdb.mode).toBe(mode);

      const merged: string[] = [];
      type Merged = { start: bigint; end: bigint; user: boolean; write: boolean };
      let last: Merged | null = null;
      const mergedRanges: Merged[] = [];
      for (const r of byGdb.ranges) {
        const va = BigInt(r.va);
        if (last && last.end === va && last.user === r.user && last.write === r.write) last.end = va + BigInt(r.size);
        else mergedRanges.push((last = { start: va, end: va + BigInt(r.size), user: r.user, write: r.write }));
      }
      for (const r of mergedRanges) merged.push(`${hex(r.start)}-${hex(r.end)} ${r.user ? 'u' : '-'}r${r.write ? 'w' : '-'}`);
      const mem = parseInfoMem(await humanMonitor(g.q.qmp, 'info mem'));
      expect(merged).toEqual(mem.ranges.map((r) => `${hex(r.start)}-${hex(r.end)} ${r.user ? 'u' : '-'}r${r.write ? 'w' : '-'}`));

      const tlb = parseInfoTlb(await humanMonitor(g.q.qmp, 'info tlb')).entries;
      const pages = byGdb.ranges.reduce((n, r) => n + BigInt(r.size) / BigInt(r.pageSize), 0n);
      expect(pages).toBe(BigInt(tlb.length));
      for (const e of tlb) {
        const r = byGdb.ranges.find((x) => e.va >= BigInt(x.va) && e.va < BigInt(x.va) + BigInt(x.size));
        expect(r, hex(e.va)).toBeDefined();
        const pa = BigInt(r!.pa) + (e.va - BigInt(r!.va));
        // QEMU 7.2's info tlb cuts a 4 MiB page's address to 32 bits: the PSE-36 bits 39:32 are lost (gva2gpa keeps them).
        const shown = mode === '32-bit' && e.va === PSE36_VA ? pa & 0xffffffffn : pa;
        expect([shown, r!.pageSize > 4096, r!.global, r!.user, r!.write], hex(e.va)).toEqual([e.pa, e.flags.ps, e.flags.g, e.flags.user, e.flags.write]);
        // info tlb shows the leaf's XD; the CPU enforces the OR over the levels (NX_ABOVE: leaf X, PD entry XD).
        if (mode === 'PAE' && e.va !== NX_ABOVE) expect(r!.execute, hex(e.va)).toBe(!e.flags.nx);
      }
      if (mode === 'PAE') {
        expect(tlb.find((e) => e.va === NX_ABOVE)?.flags.nx).toBe(false);
        expect(byGdb.ranges.find((r) => BigInt(r.va) === NX_ABOVE)).toMatchObject({ execute: false, user: true });
      } else {
        expect(byGdb.ranges.every((r) => r.execute)).toBe(true); // no NX in 32-bit paging
        expect(byGdb.ranges.find((r) => BigInt(r.va) === PSE36_VA)).toMatchObject({ pa: hex(PSE36_PA), pageSize: 0x400000 });
      }
    });

    it('lints the tables QEMU has walked without an error', async () => {
      const r = await cli(['check', '--gdb', g.gdb, '--json']);
      const check = JSON.parse(r.stdout) as { lint: { findings: { code: string; severity: string; entryAddress: string }[] } };
      const findings = check.lint.findings;
      expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
      if (mode === 'PAE') {
        // QEMU's TCG set bit 5 in the PDPTEs it walked (the kernel built them as P only): pagewalk says so, as a warning.
        const pdpt = await xpBytes(g.q, k.manifest.cr3, 32);
        const view = new DataView(pdpt.buffer, pdpt.byteOffset, 32);
        const accessed = [0, 1, 2, 3].filter((i) => (view.getUint32(i * 8, true) & 0x20) !== 0);
        expect(accessed).toEqual([0, 3]); // the identity page and the kernel's higher half
        const warned = findings.filter((f) => f.code === 'pae-pdpte-accessed').map((f) => (BigInt(f.entryAddress) - k.manifest.cr3) / 8n);
        expect(warned).toEqual([0n, 3n]);
      } else {
        expect(findings.map((f) => f.code)).not.toContain('pae-pdpte-accessed');
      }
    });
  });
}

for (const mode of ['32-bit', 'PAE'] as const) {
  describeQemu(`watch-cr3 on a ${mode} kernel whose next tables lack its code: predicted, then confirmed by QEMU`, (qemu) => {
    it('reports the switch at hand, then stops before the one that triple-faults; QEMU does, and the post-mortem explains it', async () => {
      const k = buildLegacyKernel({
        mode,
        spaces: {
          'no-code': (pt) => {
            mapLegacyKernel(pt);
            pt.setEntry(k0.manifest.cr3Write, 'PT', 0n); // the code page is gone
          },
        },
      });
      const g = await bootLiveGuest(qemu, k, { extra: ['-action', 'reboot=shutdown,shutdown=pause', '-d', 'int,cpu_reset', '-D', '{dir}/qemu.log'] });
      try {
        await stopAtCr3Write(g);
        // EAX already holds the main tables for the mov cr3 at hand; the next turn loads the slot.
        const t = await RspTarget.open(g.gdb);
        const slot = new Uint8Array(4);
        new DataView(slot.buffer).setUint32(0, Number(k.manifest.spaces['no-code']!), true);
        await t.writePhysical(BigInt(k.manifest.cr3Slot.pa), slot);
        await t.close();

        // --count: the first switch is already 'at-risk', which --stop-on danger would stop at.
        const w = await cli(['watch-cr3', '--gdb', g.gdb, '--count', '2', '--json']);
        expect(w.status, w.stderr).toBe(1);
        const events = w.stdout.trim().split('\n').map(
          (l) => JSON.parse(l) as { event: string; verdict?: string; new?: string; problems?: { what: string; fault?: { level: string } }[]; hints?: { hints: { kind: string }[] }[]; end?: string },
        );
        const writes = events.filter((e) => e.event === 'cr3-write');
        expect(writes.map((e) => [e.new, e.verdict])).toEqual([
          [hex(k.manifest.cr3), 'at-risk'], // the IDT is the BIOS's at 0, which no table maps: any exception would be fatal
          [hex(k.manifest.spaces['no-code']!), 'triple-fault'],
        ]);
        expect(writes[1]!.problems![0]).toMatchObject({ what: 'next-instruction', fault: { level: 'PT' } });
        // Why any exception is fatal here: the kernel never loaded an IDT (IDTR is the BIOS's vector table).
        const hints = writes[0]!.hints!.flatMap((g) => g.hints);
        expect(hints).toContainEqual(expect.objectContaining({ kind: 'no-idt', confidence: 'high' }));
        expect(events.at(-1)).toMatchObject({ event: 'stopped', end: 'count' });
        const before = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
        expect([before.rip, before.cr3]).toEqual([k.manifest.cr3Write, k.manifest.cr3]);

        // Let it go: QEMU triple-faults as predicted and, with shutdown=pause, keeps the state.
        const t2 = await RspTarget.open(g.gdb);
        expect(await t2.control.cont()).toEqual({ cause: 'shutdown', signal: 3 });
        await t2.close();
        const pm = await cli(['post-mortem', '--gdb', g.gdb, '--log', g.q.file('qemu.log'), '--json']);
        expect(pm.status, pm.stderr).toBe(1);
        const j = JSON.parse(pm.stdout) as { state: string; explained: boolean; summary: string; log: { chain: string } | null };
        expect(j).toMatchObject({ state: 'shutdown', explained: true });
        expect(j.summary).toContain(hex(k.manifest.afterCr3Write));
        expect(j.log?.chain).toContain('triple fault');
      } finally {
        await g.q.stop();
      }
    }, 30_000);
  });
}

for (const [mode, arch] of RUNS) {
  describeQemu(`catch-pf on a ${mode} kernel in real qemu-system-${arch}: the 32-bit exception frame`, (x86_64) => {
    it('breaks at the #PF handler, reads CR2, the error code and EIP from the frame, and walks CR2', async () => {
      const k = buildLegacyKernel({ mode, idt: true });
      const g = await bootLiveGuest(binaryFor(x86_64, arch), k);
      try {
        await stopAtCr3Write(g);
        const t = await RspTarget.open(g.gdb);
        const slot = new Uint8Array(4);
        new DataView(slot.buffer).setUint32(0, 0x50000123, true); // mapped by no table
        await t.writePhysical(BigInt(k.manifest.touchSlot.pa), slot);
        await t.close();

        const r = await cli(['catch-pf', '--gdb', g.gdb, '--count', '1', '--json']);
        const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string } & Record<string, unknown>);
        const pf = events.find((e) => e.event === 'page-fault') as unknown as PageFaultJson | undefined;
        expect(pf, r.stdout + r.stderr).toBeDefined();
        expect(pf).toMatchObject({
          handler: hex(k.manifest.excHandler),
          cr2: '0x50000123',
          errorCode: '0x0', // a supervisor read of a page that is not present
          frame: { rip: hex(k.manifest.touch), cs: '0x8', rsp: null, ss: null, at: hex(k.manifest.stackTop - 16n) }, // error code, EIP, CS, EFLAGS
          agrees: true,
          walk: { mapped: false, fault: { reason: 'not-present' } },
        });
        expect(BigInt(pf!.frame.rflags) & 0x2n).toBe(0x2n); // bit 1 of EFLAGS is always set
      } finally {
        await g.q.stop();
      }
    }, 30_000);
  });
}

describeQemu('PAE PDPTEs with R/W and U/S (a long-mode entry template) on real QEMU', (qemu) => {
  it("run under QEMU's TCG, which does not check them; pagewalk says the mov to CR3 raises #GP(0) on a real CPU", async () => {
    const k = buildLegacyKernel({
      mode: 'PAE',
      slot: 'template',
      spaces: {
        template: (pt) => {
          mapLegacyKernel(pt);
          for (const va of [0n, 0xc0000000n]) pt.setEntry(va, 'PDPT', pt.getEntry(va, 'PDPT') | 0x6n);
        },
      },
    });
    const g = await bootLiveGuest(qemu, k, { extra: ['-d', 'int', '-D', '{dir}/qemu.log'] });
    try {
      await g.q.qmp.execute('stop');
      const info = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
      expect(info.cr3).toBe(k.manifest.spaces.template); // loaded, and running on it
      expect(readFileSync(g.q.file('qemu.log'), 'utf8')).not.toMatch(/v=0d/);
      const count = new DataView((await xpBytes(g.q, BigInt(k.manifest.loopCount.pa), 8)).buffer).getUint32(0, true);
      expect(count).toBeGreaterThan(1);

      const w = await json<{ fault: { reason: string; level: string; explanation: string } | null }>(['walk', '--gdb', g.gdb, hex(k.manifest.cr3Write)], 1);
      expect(w.fault).toMatchObject({ reason: 'reserved-bit', level: 'PDPT' });
      expect(w.fault!.explanation).toContain("raises #GP(0) (on a real CPU or KVM: QEMU's TCG does not check these bits and runs on)");
    } finally {
      await g.q.stop();
    }
  }, 30_000);
});

/** A kernel built only for its addresses (they do not depend on the tables). */
const k0 = buildLegacyKernel({ mode: 'PAE' });

describe('the legacy-mode test kernel', () => {
  it('refuses tables that do not map what it runs, and a slot naming no space', () => {
    expect(() => buildLegacyKernel({ mode: 'PAE', tables: () => undefined })).toThrow(/do not let the kernel use the entry page/);
    expect(() => buildLegacyKernel({ mode: '32-bit', slot: 'nope' })).toThrow(/no space named "nope"/);
  });

  it('is the same bytes for the same options, and loads its CR3 from the slot in a loop', () => {
    const a = buildLegacyKernel({ mode: 'PAE' });
    expect(Buffer.from(a.elf).equals(Buffer.from(buildLegacyKernel({ mode: 'PAE' }).elf))).toBe(true);
    expect(a.listing).toMatch(/cr3_write:\n\S+\s+0f22d8\s+mov cr3, eax/);
    expect(a.manifest).toMatchObject({ cr4: 0xa0n, efer: 0x800n, cr3: 0x110000n, slotCr3: 0x110000n });
    expect(buildLegacyKernel({ mode: '32-bit' }).manifest).toMatchObject({ cr4: 0x90n, efer: 0n });
  });
});

describeQemu('catch-pf from reset on real QEMU (-S): through the BIOS, the LIDT and paging turned on', (qemu) => {
  it("finds the kernel's #PF handler once paging is on, and catches the fault of the loop's first turn", async () => {
    const k = buildLegacyKernel({ mode: '32-bit', idt: true, touch: 0x50000123 });
    const q = await startQemu(
      qemu,
      ['-accel', 'tcg', '-cpu', 'max', '-m', '128', '-display', 'none', '-nodefaults', '-kernel', '{dir}/kernel.elf', '-gdb', 'unix:{dir}/gdb.sock,server=on,wait=off', '-S'],
      (dir) => writeFileSync(join(dir, 'kernel.elf'), k.elf),
    );
    try {
      const r = await cli(['catch-pf', '--gdb', `unix:${q.file('gdb.sock')}`, '--count', '1', '--json']);
      const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; handler?: string | null; cr2?: string; frame?: { rip: string } });
      // The BIOS's IDTs first (no handler), then the kernel's, readable once paging is on.
      expect(events.filter((e) => e.event === 'idt').at(-1)).toMatchObject({ handler: hex(k.manifest.excHandler) });
      expect(events.find((e) => e.event === 'page-fault')).toMatchObject({ cr2: '0x50000123', frame: { rip: hex(k.manifest.touch) } });
      expect(r.status).toBe(0);
    } finally {
      await q.stop();
    }
  }, 60_000);
});
