/**
 * watch-cr3, catch-pf and the post-mortem on real QEMU (TCG, gdbstub, -action
 * reboot=shutdown,shutdown=pause), on the scenario images built for QEMU by src/image/handover.ts:
 *
 * - every scenario: QEMU is run to the scenario's hand-over (a breakpoint at its first instruction),
 *   then watch-cr3 reports its switch while QEMU still stands on the `mov cr3` (RIP and CR3 asked
 *   of QEMU itself, through QMP, inside the event callback), with the verdict, problem, level and
 *   error code the emulator gives;
 * - the scenarios that triple-fault: continued, QEMU stops with T03 in the `shutdown` state, and the
 *   post-mortem explains why (and shows the chain of QEMU's own `-d int` log);
 * - catch-pf on the scenarios whose #PF reaches a working handler;
 * - a kernel that switches CR3 several times (test/watch/switcher.ts): `stopOn: 'danger'` passes
 *   the safe switches and stops before the dangerous one;
 * - the command line: watch-cr3 --stop-on danger, then regs and post-mortem on the shut-down guest.
 *
 * Each run is short (a scenario boots in well under a second); only QEMUs started here are stopped.
 */
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { SCENARIOS, type Scenario, type ScenarioBuild } from '../../src/emu/scenarios/index.js';
import { buildHandoverElf } from '../../src/image/handover.js';
import { buildTestKernel } from '../../src/image/testKernel.js';
import { hex } from '../../src/paging/addr.js';
import { RspTarget, gdbstubControl } from '../../src/target/rspTarget.js';
import { catchPageFaults } from '../../src/watch/catchPf.js';
import { watchCr3 } from '../../src/watch/cr3Watch.js';
import { guestRunState } from '../../src/watch/driven.js';
import type { Cr3WriteEvent, PageFaultEvent, WatchEvent } from '../../src/watch/events.js';
import { postMortem } from '../../src/watch/postMortem.js';
import { cli } from '../helpers/cli.js';
import { describeQemu, humanMonitor, startQemu, type QemuProcess } from '../helpers/qemu.js';
import { expectScenarioEvent } from '../watch/expectations.js';
import { switcher } from '../watch/switcher.js';

/** RIP and CR3 as QEMU itself reports them (`info registers` through QMP). */
async function qemuRegisters(q: QemuProcess): Promise<{ rip: bigint; cr3: bigint }> {
  const text = await humanMonitor(q.qmp, 'info registers');
  const field = (name: string): bigint => BigInt(`0x${new RegExp(`\\b${name}=([0-9a-f]{16})`).exec(text)![1]}`);
  return { rip: field('RIP'), cr3: field('CR3') };
}

/** Boots a scenario's build in QEMU stopped at -S, attaches, and runs it to the scenario's first instruction. */
async function atHandover(qemu: string, build: ScenarioBuild): Promise<{ q: QemuProcess; t: RspTarget }> {
  const image = buildHandoverElf(build);
  const q = await startQemu(
    qemu,
    [
      ...['-accel', 'tcg', '-cpu', 'max', '-m', String(build.config.ramSize >> 20), '-display', 'none', '-nodefaults'],
      ...['-serial', 'file:{dir}/serial.txt', '-d', 'int,cpu_reset', '-D', '{dir}/qemu.log'],
      ...['-action', 'reboot=shutdown,shutdown=pause', '-kernel', '{dir}/scenario.elf', '-S'],
      ...['-gdb', 'unix:{dir}/gdb.sock,server=on,wait=off'],
    ],
    (dir) => writeFileSync(join(dir, 'scenario.elf'), image.elf),
  );
  try {
    const t = await RspTarget.open(`unix:${q.file('gdb.sock')}`);
    const entry = build.config.cpu.rip;
    await t.client.insertBreakpoint(0, entry, 1);
    await t.cont({ timeoutMs: 10_000 });
    await t.client.removeBreakpoint(0, entry, 1);
    expect((await t.cpuState()).rip).toBe(entry);
    return { q, t };
  } catch (e) {
    await q.stop();
    throw e;
  }
}

/** What the post-mortem must say, for the scenarios that triple-fault (as on the emulator). */
const WHY: Record<string, string> = {
  'pd-index-typo': 'the fetch at RIP 0xffffffff800000e2 faults (PD entry not present)',
  'unshifted-bitfield': 'the fetch at RIP 0xffffffff800000e2 faults (PDPT table outside memory)',
  'stack-unmapped': 'the push at RSP-8 0xffff8000003ffff0 faults (PD entry not present)',
  'nx-everywhere': 'faults (NX in the PML4 entry)',
  'uefi-trampoline-unmapped': 'the fetch at RIP 0x380129 faults (PML4 entry not present)',
  'idt-unmapped': 'the instruction at RIP 0xffffffff800000fa (int3) raises #BP',
  'kernel-wrong-physical-base': 'the instruction at RIP 0xffffffff800000e3 (add [rax], al) writes 0x400000, which faults (PML4 entry not present)',
  'five-level': 'the fetch at RIP 0xffffffff800000d1 faults (PML4 entry not present)',
  'nx-without-nxe': 'the push at RSP-8 0xffffffff80005ff0 faults (reserved bit in the PT entry)',
};

describeQemu('watch-cr3 and the post-mortem on real QEMU, every scenario', (qemu) => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))(
    '%s',
    async (name, s) => {
      const build = s.build();
      const { q, t } = await atHandover(qemu, s.build());
      try {
        const features = await t.cpuFeatures();
        const writes: Cr3WriteEvent[] = [];
        const seen: { rip: bigint; cr3: bigint }[] = [];
        const r = await watchCr3(t, {
          features,
          count: 1,
          ram: await t.ram(),
          onEvent: async (e) => {
            if (e.type !== 'cr3-write') return;
            writes.push(e);
            seen.push(await qemuRegisters(q));
          },
        });
        expect(r.end).toBe('count');
        // QEMU stood on the mov cr3, CR3 not yet written, when the event went out.
        expect(seen).toEqual([{ rip: build.symbols.cr3_write, cr3: build.config.cpu.cr3 }]);
        expectScenarioEvent(s, writes[0]!, build.symbols, { before: build.config.cpu.cr3!, after: build.cr3.kernel! });
        expect(await qemuRegisters(q)).toEqual({ rip: build.symbols.cr3_write, cr3: build.config.cpu.cr3 });

        if (s.outcome.kind !== 'triple-fault') return;
        // On into the triple fault: T03, the shutdown state, and the post-mortem.
        const stop = await gdbstubControl(t).cont();
        expect(stop).toEqual({ cause: 'shutdown', signal: 3 });
        expect(await guestRunState(t)).toBe('shutdown');
        const pm = await postMortem(t, { features, log: createReadStream(q.file('qemu.log')), ram: await t.ram() });
        expect(pm.explained).toBe(true);
        expect(pm.summary).toContain(WHY[name]!);
        expect(pm.log?.end).toBe('triple-fault');
        expect(pm.summary).toContain("QEMU's log shows: ");
      } finally {
        await t.close();
        await q.stop();
      }
    },
    30_000,
  );
});

describeQemu('catch-pf on real QEMU', (qemu) => {
  it.each([
    ['user-touches-supervisor', 0xffffffff80002148n, 0x5, 0x400000n],
    ['write-to-readonly-wp', 0xffffffff80001110n, 0x3, 0xffffffff80000101n],
  ] as const)(
    '%s: the fault at the handler, explained',
    async (name, cr2, errorCode, rip) => {
      const s = SCENARIOS.find((x) => x.name === name)!;
      const { q, t } = await atHandover(qemu, s.build());
      try {
        const events: WatchEvent[] = [];
        const r = await catchPageFaults(t, { features: await t.cpuFeatures(), count: 1, ram: await t.ram(), onEvent: (e) => void events.push(e) });
        expect(r).toEqual({ end: 'count', faults: 1 });
        const f = events.find((e): e is PageFaultEvent => e.type === 'page-fault')!;
        expect({ cr2: f.cr2, errorCode: f.errorCode, rip: f.frame.rip }).toEqual({ cr2, errorCode, rip });
        expect(f.comparison.agrees).toBe(true);
        expect((await qemuRegisters(q)).rip).toBe(s.build().symbols.pf_handler);
      } finally {
        await t.close();
        await q.stop();
      }
    },
    30_000,
  );
});

describeQemu('watch-cr3 on real QEMU through several switches', (qemu) => {
  it("stopOn 'danger' passes the safe switches and stops before the dangerous one; the triple fault after it is explained", async () => {
    const sw = switcher();
    const { q, t } = await atHandover(qemu, sw.build);
    try {
      const writes: Cr3WriteEvent[] = [];
      const seen: { rip: bigint; cr3: bigint }[] = [];
      const r = await watchCr3(t, {
        features: await t.cpuFeatures(),
        stopOn: 'danger',
        onEvent: async (e) => {
          if (e.type !== 'cr3-write') return;
          writes.push(e);
          seen.push(await qemuRegisters(q));
        },
      });
      expect(r).toEqual({ end: 'danger', writes: 4, dangerous: 1 });
      expect(writes.map((w) => [w.rip, w.preflight.verdict, w.write.cr3])).toEqual([
        [sw.safeSite, 'safe', sw.good],
        [sw.safeSite, 'safe', sw.good],
        [sw.safeSite, 'safe', sw.good],
        [sw.badSite, 'triple-fault', sw.bad],
      ]);
      expect(seen).toEqual([...Array(3).fill({ rip: sw.safeSite, cr3: sw.good }), { rip: sw.badSite, cr3: sw.good }]);
      expect(await qemuRegisters(q)).toEqual({ rip: sw.badSite, cr3: sw.good });
      expect(await gdbstubControl(t).cont()).toEqual({ cause: 'shutdown', signal: 3 });
      const pm = await postMortem(t, { features: await t.cpuFeatures(), log: createReadStream(q.file('qemu.log')) });
      expect(pm.explained).toBe(true);
      expect(pm.summary).toContain(`the fetch at RIP 0x${(sw.badSite + 3n).toString(16)} faults (PML4 entry not present)`);
    } finally {
      await t.close();
      await q.stop();
    }
  }, 30_000);
});

describeQemu('watch-cr3 on real QEMU without a site to break on', (qemu) => {
  it('single-steps, measures its pace, and still stops before the dangerous mov cr3', async () => {
    const sw = switcher();
    const { q, t } = await atHandover(qemu, sw.build);
    try {
      const events: WatchEvent[] = [];
      const r = await watchCr3(t, { features: await t.cpuFeatures(), stopOn: 'danger', scanBudget: 0, onEvent: (e) => void events.push(e) });
      expect(r).toEqual({ end: 'danger', writes: 4, dangerous: 1 });
      const writes = events.filter((e): e is Cr3WriteEvent => e.type === 'cr3-write');
      expect(writes.map((w) => [w.rip, w.via])).toEqual([...Array(3).fill([sw.safeSite, 'single-step']), [sw.badSite, 'single-step']]);
      const done = events.filter((e) => e.type === 'single-step-done');
      expect(done).toHaveLength(4);
      expect(done.every((d) => d.type === 'single-step-done' && d.steps > 0 && d.perSecond > 0)).toBe(true);
      expect(await qemuRegisters(q)).toEqual({ rip: sw.badSite, cr3: sw.good });
    } finally {
      await t.close();
      await q.stop();
    }
  }, 30_000);
});

describeQemu('the watch commands on real QEMU', (qemu) => {
  it('watch-cr3 --stop-on danger, then regs and post-mortem --log on the shut-down guest', async () => {
    const s = SCENARIOS.find((x) => x.name === 'stack-unmapped')!;
    const build = s.build();
    const { q, t } = await atHandover(qemu, build);
    await t.close(); // QEMU stays stopped at the hand-over
    try {
      const gdb = `unix:${q.file('gdb.sock')}`;
      const w = await cli(['watch-cr3', '--gdb', gdb, '--stop-on', 'danger', '--json']);
      expect(w.status).toBe(1);
      const events = w.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; verdict?: string; problems?: { what: string }[]; end?: string });
      expect(events.map((e) => e.event)).toEqual(['sites', 'cr3-write', 'stopped']);
      expect(events[1]).toMatchObject({ verdict: 'triple-fault' });
      expect(events[1]!.problems![0]!.what).toBe('stack');
      expect(events[2]).toMatchObject({ end: 'danger' });
      // The command left QEMU on the mov cr3.
      expect(await qemuRegisters(q)).toEqual({ rip: build.symbols.cr3_write, cr3: build.config.cpu.cr3 });

      const t2 = await RspTarget.open(gdb);
      expect(await gdbstubControl(t2).cont()).toEqual({ cause: 'shutdown', signal: 3 });
      await t2.close();
      const regs = await cli(['regs', '--gdb', gdb]);
      expect(regs.stderr).toContain('the guest is shut down after a triple fault');
      const pm = await cli(['post-mortem', '--gdb', gdb, '--log', q.file('qemu.log'), '--json']);
      expect(pm.status).toBe(1);
      const j = JSON.parse(pm.stdout) as { state: string; explained: boolean; summary: string; log: { chain: string } | null };
      expect(j).toMatchObject({ state: 'shutdown', explained: true });
      expect(j.summary).toContain('the push at RSP-8 0xffff8000003ffff0 faults (PD entry not present)');
      expect(j.log?.chain).toContain('triple fault');
    } finally {
      await q.stop();
    }
  }, 30_000);
});

describeQemu('watch-cr3 from reset on real QEMU (-S)', (qemu) => {
  it("catches the entry's mov cr3 with paging off, and, once its mov cr0 turns paging on, the kernel's in the higher half", async () => {
    const k = buildTestKernel();
    const q = await startQemu(
      qemu,
      ['-accel', 'tcg', '-cpu', 'max', '-m', '128', '-display', 'none', '-nodefaults', '-kernel', '{dir}/kernel.elf', '-gdb', 'unix:{dir}/gdb.sock,server=on,wait=off', '-S'],
      (dir) => writeFileSync(join(dir, 'kernel.elf'), k.elf),
    );
    try {
      const w = await cli(['watch-cr3', '--gdb', `unix:${q.file('gdb.sock')}`, '--count', '2', '--json']);
      const events = w.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; rip?: string; old?: string; new?: string; sites?: { kind: string; va: string }[] });
      const sites = events.filter((e) => e.event === 'sites');
      // At reset, paging is off: the kernel's MOVs to CR3 and its MOV to CR0 (the BIOS's below 1 MiB are left alone).
      expect(sites[0]!.sites!.map((s) => s.kind).sort()).toEqual(['mov-cr0', 'mov-cr3', 'mov-cr3']);
      expect(sites[0]!.sites!.every((s) => BigInt(s.va) >= 0x100000n)).toBe(true);
      expect(events.filter((e) => e.event === 'cr3-write').map((e) => [e.rip, e.old, e.new])).toEqual([
        [hex(k.manifest.entry + 0x2d), '0x0', hex(k.manifest.cr3)],
        [hex(k.manifest.cr3Write), hex(k.manifest.cr3), hex(k.manifest.slotCr3)],
      ]);
      expect(sites.at(-1)!.sites!.map((s) => s.va)).toContain(hex(k.manifest.cr3Write)); // found once paging was on
    } finally {
      await q.stop();
    }
  }, 60_000);
});
