/**
 * The watches driving the emulator over the GDB protocol, as they drive QEMU: each scenario served
 * by the emulator's own RSP server (`pagewalk emu`), pagewalk attached as a gdbstub client. At the
 * CR3 write the served machine stands on the `mov cr3`; a triple fault comes back as T03 and is
 * explained; a shut-down guest is recognised by `info status` (and `regs`, `check` and `post-mortem`
 * on the command line say so); with the monitor saying KVM, breakpoints are hardware ones and the
 * control lifts the one at RIP to step.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../../src/emu/machine.js';
import { RspServer } from '../../src/emu/rspServer.js';
import { SCENARIOS, findScenario, type Scenario } from '../../src/emu/scenarios/index.js';
import { EmuSession } from '../../src/emu/session.js';
import { BreakpointType } from '../../src/rsp/client.js';
import type { StopReply } from '../../src/rsp/codec.js';
import { rspMonitor } from '../../src/target/qemuMonitor.js';
import { RspTarget, connectGdbstub, gdbstubControl } from '../../src/target/rspTarget.js';
import { catchPageFaults } from '../../src/watch/catchPf.js';
import { watchCr3 } from '../../src/watch/cr3Watch.js';
import { guestRunState } from '../../src/watch/driven.js';
import type { Cr3WriteEvent, WatchEvent } from '../../src/watch/events.js';
import { cli } from '../helpers/cli.js';
import { expectScenarioEvent } from './expectations.js';

interface Served {
  machine: Machine;
  session: EmuSession;
  rsp: RspServer;
}

const served: Served[] = [];

async function serve(name: string): Promise<Served> {
  const machine = new Machine(findScenario(name).build().config);
  const session = new EmuSession(machine);
  const rsp = await RspServer.listen(session, { port: 0 });
  const s = { machine, session, rsp };
  served.push(s);
  return s;
}

afterEach(async () => {
  for (const s of served.splice(0)) {
    s.session.quit('host-signal');
    await s.rsp.close();
  }
});

/** Runs the served machine until it shuts down (a triple fault). */
async function runToShutdown(s: Served): Promise<void> {
  const down = new Promise<void>((resolve) => s.session.on('stop', (e) => e.state === 'shutdown' && resolve()));
  s.session.cont();
  await down;
}

const BUDGET = 2 << 20;

describe('watch-cr3 over RSP to the emulator', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))('%s: reported while the served machine stands on the mov cr3', async (name, s) => {
    const build = s.build();
    const srv = await serve(name);
    const t = await RspTarget.open(srv.rsp.label);
    try {
      const at: { rip: bigint; cr3: bigint }[] = [];
      const writes: Cr3WriteEvent[] = [];
      const r = await watchCr3(t, {
        features: await t.cpuFeatures(),
        count: 1,
        scanBudget: BUDGET,
        ram: await t.ram(),
        onEvent: (e) => {
          if (e.type !== 'cr3-write') return;
          writes.push(e);
          at.push({ rip: srv.machine.cpu.rip, cr3: srv.machine.cpu.cr3 });
        },
      });
      expect(r.end).toBe('count');
      expect(at).toEqual([{ rip: build.symbols.cr3_write, cr3: build.config.cpu.cr3 }]);
      expectScenarioEvent(s, writes[0]!, build.symbols, { before: build.config.cpu.cr3!, after: build.cr3.kernel! });
      expect(srv.machine.breakpoints()).toEqual([]);
      expect(srv.session.state).toBe('debug');
    } finally {
      await t.close();
    }
  });

  it('pd-index-typo run on: T03 after the switch, and the post-mortem', async () => {
    const srv = await serve('pd-index-typo');
    const t = await RspTarget.open(srv.rsp.label);
    try {
      const events: WatchEvent[] = [];
      const r = await watchCr3(t, { features: await t.cpuFeatures(), scanBudget: BUDGET, onEvent: (e) => void events.push(e) });
      expect(r).toEqual({ end: 'shutdown', writes: 1, dangerous: 1 });
      const pm = events.find((e) => e.type === 'shutdown');
      expect(pm?.type === 'shutdown' && pm.postMortem.summary).toContain('the fetch at RIP 0xffffffff800000e2 faults (PD entry not present)');
      expect(srv.session.state).toBe('shutdown');
    } finally {
      await t.close();
    }
  });

  it('with the monitor saying KVM: hardware breakpoints, lifted at RIP to step', async () => {
    const srv = await serve('good');
    const client = await connectGdbstub(srv.rsp.label);
    const inner = rspMonitor(client);
    const t = new RspTarget(client, { monitor: { ...inner, hmp: async (line) => (line === 'info kvm' ? 'kvm support: enabled\n' : inner.hmp(line)) } });
    const types: number[] = [];
    const insert = client.insertBreakpoint.bind(client);
    client.insertBreakpoint = async (type, address, kind) => {
      types.push(type);
      return insert(type, address, kind);
    };
    try {
      expect(await gdbstubControl(t).breakpointKind()).toBe('hardware');
      const r = await watchCr3(t, { features: await t.cpuFeatures(), count: 2, scanBudget: BUDGET, stopOn: null, signal: AbortSignal.timeout(2000), onEvent: () => undefined });
      // good has one switch: the watch steps over it (lifting and putting back the breakpoint at RIP) and runs on.
      expect(r.writes).toBe(1);
      expect(types.length).toBeGreaterThan(0);
      expect(new Set(types)).toEqual(new Set([BreakpointType.HARDWARE]));
      expect(srv.machine.breakpoints()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe('the gdbstub control', () => {
  it("steps again when the stub answers a step without moving RIP (QEMU's rare empty step)", async () => {
    const srv = await serve('good');
    const client = await connectGdbstub(srv.rsp.label);
    let empty = 2;
    let steps = 0;
    /** A gdbstub whose first two steps come back at once, nothing executed. */
    class Flaky extends RspTarget {
      override async step(): Promise<StopReply> {
        steps++;
        if (empty-- > 0) return { kind: 'stopped', signal: 5, thread: null, core: null, watch: null, breakpoint: null, registers: new Map(), fields: new Map() };
        return super.step();
      }
    }
    const t = new Flaky(client);
    try {
      const start = srv.machine.cpu.rip;
      expect(await gdbstubControl(t).step()).toEqual({ cause: 'step', signal: 5 });
      expect(steps).toBe(3);
      expect(srv.machine.cpu.rip).not.toBe(start);
      expect(srv.machine.instructions).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('runs off a breakpoint of its own at RIP, and stops at the next one', async () => {
    const srv = await serve('good');
    const t = await RspTarget.open(srv.rsp.label);
    const c = gdbstubControl(t);
    try {
      const entry = srv.machine.cpu.rip;
      const site = findScenario('good').build().symbols.cr3_write!;
      await c.insertBreakpoint(entry);
      await c.insertBreakpoint(site);
      expect(await c.cont()).toEqual({ cause: 'breakpoint', signal: 5 });
      expect(srv.machine.cpu.rip).toBe(site);
      await c.removeBreakpoint(entry);
      await c.removeBreakpoint(site);
      expect(srv.machine.breakpoints()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe('catch-pf over RSP to the emulator', () => {
  it('write-to-readonly-wp: the fault at the handler', async () => {
    const srv = await serve('write-to-readonly-wp');
    const t = await RspTarget.open(srv.rsp.label);
    try {
      const events: WatchEvent[] = [];
      const r = await catchPageFaults(t, { features: await t.cpuFeatures(), count: 1, scanBudget: BUDGET, onEvent: (e) => void events.push(e) });
      expect(r).toEqual({ end: 'count', faults: 1 });
      const f = events.find((e) => e.type === 'page-fault');
      expect(f).toMatchObject({ cr2: 0xffffffff80001110n, errorCode: 0x3, frame: { rip: 0xffffffff80000101n } });
      expect(srv.machine.cpu.rip).toBe(findScenario('write-to-readonly-wp').build().symbols.pf_handler);
    } finally {
      await t.close();
    }
  });
});

describe('a shut-down guest over RSP', () => {
  it('is recognised, and regs, check and post-mortem say so', async () => {
    const srv = await serve('stack-unmapped');
    await runToShutdown(srv);
    const t = await RspTarget.open(srv.rsp.label);
    expect(await guestRunState(t)).toBe('shutdown');
    await t.close();

    const note = 'the guest is shut down after a triple fault (QEMU kept its state): `pagewalk post-mortem` explains why';
    const regs = await cli(['regs', '--gdb', srv.rsp.label]);
    expect(regs.stderr).toContain(note);
    const check = await cli(['check', '--gdb', srv.rsp.label]);
    expect(check.stderr).toContain(note);
    const pm = await cli(['post-mortem', '--gdb', srv.rsp.label, '--json']);
    expect(pm.status).toBe(1);
    const j = JSON.parse(pm.stdout) as { state: string; explained: boolean; summary: string; hints: { kind: string }[] };
    expect(j.state).toBe('shutdown');
    expect(j.explained).toBe(true);
    expect(j.summary).toContain('the push at RSP-8 0xffff8000003ffff0 faults (PD entry not present)');
    expect(j.hints.map((h) => h.kind)).toContain('stack-unmapped');
    const text = await cli(['post-mortem', '--gdb', srv.rsp.label]);
    expect(text.stdout).toContain('Triple fault (post-mortem of the state kept): RIP 0xffffffff800000e2');
    const watch = await cli(['watch-cr3', '--gdb', srv.rsp.label, '--json']);
    expect(watch.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['shutdown', 'stopped']);
    expect(watch.status).toBe(1);
  });
});
