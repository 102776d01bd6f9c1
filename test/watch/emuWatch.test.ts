/**
 * watch-cr3 on the bundled emulator, in process: on every scenario it reports the switch while the
 * machine still stands on the `mov cr3` (RIP on it, CR3 unchanged, checked inside the event
 * callback), with the right verdict, problem, level, error code and hint, and leaves the machine
 * there with no breakpoint behind. A machine that switches three times safely and then to empty
 * tables shows `stopOn: 'danger'` passing the safe switches; the same machine with no site found
 * shows single-stepping; a triple fault under the watch brings the post-mortem.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/emu/machine.js';
import { SCENARIOS, type Scenario } from '../../src/emu/scenarios/index.js';
import { EmuTarget, openScenarioTarget } from '../../src/target/emuTarget.js';
import { watchCr3 } from '../../src/watch/cr3Watch.js';
import type { Cr3WriteEvent, WatchEvent } from '../../src/watch/events.js';
import { expectScenarioEvent } from './expectations.js';
import { switcher } from './switcher.js';

/** Runs a watch, recording the events and, at each CR3 write, where the machine stood. */
async function watch(t: EmuTarget, o: Partial<Parameters<typeof watchCr3>[1]> = {}) {
  const events: WatchEvent[] = [];
  const at: { rip: bigint; cr3: bigint }[] = [];
  const r = await watchCr3(t, {
    features: await t.cpuFeatures(),
    ram: await t.ram(),
    ...o,
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'cr3-write') at.push({ rip: t.machine.cpu.rip, cr3: t.machine.cpu.cr3 });
    },
  });
  const writes = events.filter((e): e is Cr3WriteEvent => e.type === 'cr3-write');
  return { r, events, writes, at };
}

describe('watch-cr3 on every scenario, in process', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))('%s: reported before the mov cr3 runs', async (_, s) => {
    const build = s.build();
    const t = openScenarioTarget(s.name);
    try {
      const { r, writes, at, events } = await watch(t, { count: 1 });
      expect(r).toEqual({ end: 'count', writes: 1, dangerous: s.name === 'good' || writes[0]!.preflight.verdict === 'safe' ? 0 : 1 });
      expect(events[0]).toMatchObject({ type: 'sites' });
      // The guest stood on the mov cr3, CR3 not yet written, when the event went out; and stands there still.
      expect(at).toEqual([{ rip: build.symbols.cr3_write, cr3: build.config.cpu.cr3 }]);
      expect(t.machine.cpu.rip).toBe(build.symbols.cr3_write);
      expect(t.machine.cpu.cr3).toBe(build.config.cpu.cr3);
      expect(t.machine.breakpoints()).toEqual([]);
      expectScenarioEvent(s, writes[0]!, build.symbols, { before: build.config.cpu.cr3!, after: build.cr3.kernel! });
      expect(events.at(-1)).toMatchObject({ type: 'stopped', end: 'count', rip: build.symbols.cr3_write });
    } finally {
      await t.close();
    }
  });

  it('good: every switch safe, and the watch runs on until interrupted, leaving no breakpoint', async () => {
    const t = openScenarioTarget('good');
    try {
      const ac = new AbortController();
      const done = watch(t, { signal: ac.signal });
      setTimeout(() => ac.abort(), 400);
      const { r, writes } = await done;
      expect(r).toEqual({ end: 'interrupted', writes: 1, dangerous: 0 });
      expect(writes.map((w) => w.preflight.verdict)).toEqual(['safe']);
      expect(t.machine.breakpoints()).toEqual([]);
      expect(t.control.running).toBe(false);
      expect(t.machine.serialText()).toContain('ok');
    } finally {
      await t.close();
    }
  });

  it('pd-index-typo run on through its switch: the triple fault comes with a post-mortem', async () => {
    const t = openScenarioTarget('pd-index-typo');
    try {
      const { r, events } = await watch(t);
      expect(r).toEqual({ end: 'shutdown', writes: 1, dangerous: 1 });
      const pm = events.find((e) => e.type === 'shutdown');
      expect(pm?.type === 'shutdown' && pm.postMortem.explained).toBe(true);
      expect(pm?.type === 'shutdown' && pm.postMortem.summary).toContain('the fetch at RIP 0xffffffff800000e2 faults (PD entry not present)');
      expect(t.machine.status).toBe('shutdown');
    } finally {
      await t.close();
    }
  });
});

/** The switcher (see switcher.ts) in the emulator. */
function switching(): { t: EmuTarget; safeSite: bigint; badSite: bigint; good: bigint; bad: bigint } {
  const s = switcher();
  return { ...s, t: new EmuTarget(new Machine(s.build.config), 'the switcher') };
}

describe('watch-cr3 through several switches', () => {
  it("stopOn 'danger' passes the safe switches and stops before the dangerous one, the guest on it", async () => {
    const { t, safeSite, badSite, good, bad } = switching();
    const { r, writes, at } = await watch(t, { stopOn: 'danger' });
    expect(r).toEqual({ end: 'danger', writes: 4, dangerous: 1 });
    expect(writes.map((w) => [w.rip, w.preflight.verdict, w.write.cr3])).toEqual([
      [safeSite, 'safe', good],
      [safeSite, 'safe', good],
      [safeSite, 'safe', good],
      [badSite, 'triple-fault', bad],
    ]);
    expect(at.map((x) => x.rip)).toEqual([safeSite, safeSite, safeSite, badSite]);
    expect(t.machine.cpu.rip).toBe(badSite);
    expect(t.machine.cpu.cr3).toBe(good);
    expect(t.machine.breakpoints()).toEqual([]);
    expect(writes[3]!.preflight.problems[0]).toMatchObject({ what: 'next-instruction', when: 'now', fault: { level: 'PML4', reason: 'not-present', errorCode: 0x10 } });
    // Everything the old tables map is lost.
    expect(writes[3]!.lost.map((x) => [x.va, x.size])).toEqual([[0n, 0x400000n]]);
    await t.close();
  });

  it("stopOn 'every' stops at the first; count stops at the Nth", async () => {
    const a = switching();
    expect((await watch(a.t, { stopOn: 'every' })).r).toEqual({ end: 'every', writes: 1, dangerous: 0 });
    expect(a.t.machine.cpu.rip).toBe(a.safeSite);
    const b = switching();
    expect((await watch(b.t, { count: 2 })).r).toEqual({ end: 'count', writes: 2, dangerous: 0 });
    expect(b.t.machine.cpu.rip).toBe(b.safeSite);
    expect(b.t.machine.getRegister('rcx')).toBe(1n);
  });

  it('with no site found it single-steps, says so and what it costs, and still reports before the mov', async () => {
    const { t, safeSite, badSite } = switching();
    const { r, events, writes, at } = await watch(t, { scanBudget: 0, stopOn: 'danger' });
    expect(r.end).toBe('danger');
    expect(writes.map((w) => [w.rip, w.via])).toEqual([
      [safeSite, 'single-step'],
      [safeSite, 'single-step'],
      [safeSite, 'single-step'],
      [badSite, 'single-step'],
    ]);
    expect(at.at(-1)!.rip).toBe(badSite);
    const step = events.find((e) => e.type === 'single-step');
    expect(step).toMatchObject({ reason: 'no mov-to-CR3 site in the executable mappings of the current address space', maxSteps: 200_000 });
    const done = events.filter((e) => e.type === 'single-step-done');
    expect(done.length).toBe(4);
    expect(done[0]).toMatchObject({ steps: 2 });
    expect(done.every((d) => d.type === 'single-step-done' && d.perSecond > 0)).toBe(true);
  });

  it('single-stepping stops at its bound, the guest left where it is', async () => {
    const { t } = switching();
    const { r, events } = await watch(t, { scanBudget: 0, maxSteps: 1 });
    expect(r.end).toBe('step-limit');
    expect(events.at(-1)).toMatchObject({ type: 'stopped', end: 'step-limit' });
  });
});

describe('a watch started where the last one stopped', () => {
  it('reports the mov cr3 again by default, and executes it when told it was reported (a TUI continue)', async () => {
    const t = openScenarioTarget('stack-unmapped');
    try {
      const first = await watch(t, { stopOn: 'danger' });
      expect(first.r.end).toBe('danger');
      const at = first.writes[0]!.rip;
      const again = await watch(t, { stopOn: 'danger' });
      expect([again.r.end, again.writes.map((w) => w.rip)]).toEqual(['danger', [at]]);
      const past = await watch(t, { stopOn: 'danger', reported: at });
      expect(past.writes).toEqual([]); // not reported again: executed, and the stack push after it triple-faults
      expect(past.r.end).toBe('shutdown');
    } finally {
      await t.close();
    }
  });
});
