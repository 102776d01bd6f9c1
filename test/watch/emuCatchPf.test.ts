/**
 * catch-pf and the post-mortem on the bundled emulator, in process. catch-pf starts at the loader's
 * hand-over, where there is no IDT yet: it follows the kernel's LIDT to the #PF handler, and on the
 * scenarios whose #PF reaches a working handler it stops there with the frame, CR2, the error code
 * and the explanation. The post-mortem is held against every scenario that triple-faults.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/emu/scenarios/index.js';
import { openScenarioTarget } from '../../src/target/emuTarget.js';
import { catchPageFaults } from '../../src/watch/catchPf.js';
import { guestRunState } from '../../src/watch/driven.js';
import type { PageFaultEvent, WatchEvent } from '../../src/watch/events.js';
import { postMortem } from '../../src/watch/postMortem.js';

/** The faults that reach a working handler: CR2, error code, the faulting RIP, and the words the explanation must hold. */
const CAUGHT: Record<string, { cr2: bigint; errorCode: number; rip: bigint; cs: number; explanation: string }> = {
  'user-touches-supervisor': { cr2: 0xffffffff80002148n, errorCode: 0x5, rip: 0x400000n, cs: 0x23, explanation: 'The tables agree: user-mode read of a supervisor page (U/S=0 in the PT entry).' },
  'write-to-readonly-wp': { cr2: 0xffffffff80001110n, errorCode: 0x3, rip: 0xffffffff80000101n, cs: 0x08, explanation: 'The tables agree: supervisor write to a read-only page (R/W=0 in the PT entry) with CR0.WP=1.' },
  'huge-page-misaligned': { cr2: 0xffffc00000000000n, errorCode: 0xb, rip: 0xffffffff80000104n, cs: 0x08, explanation: 'low address bits of a 2 MiB page (its base must be 2 MiB aligned) (0x10000)' },
};

describe('catch-pf, in process', () => {
  it.each(Object.entries(CAUGHT))('%s: follows the LIDT, stops at the handler with the fault explained', async (name, want) => {
    const t = openScenarioTarget(name);
    const build = SCENARIOS.find((s) => s.name === name)!.build();
    try {
      const events: WatchEvent[] = [];
      const r = await catchPageFaults(t, { features: await t.cpuFeatures(), count: 1, ram: await t.ram(), onEvent: (e) => void events.push(e) });
      expect(r).toEqual({ end: 'count', faults: 1 });
      const idt = events.filter((e) => e.type === 'idt');
      expect(idt[0]).toMatchObject({ base: 0n, limit: 0, handler: null });
      expect(idt.at(-1)).toMatchObject({ handler: build.symbols.pf_handler, limit: 0xfff });
      const f = events.find((e): e is PageFaultEvent => e.type === 'page-fault')!;
      expect({ cr2: f.cr2, errorCode: f.errorCode, rip: f.frame.rip, cs: f.frame.cs }).toEqual({ cr2: want.cr2, errorCode: want.errorCode, rip: want.rip, cs: want.cs });
      expect(f.handler).toBe(build.symbols.pf_handler);
      expect(f.comparison.agrees).toBe(true);
      expect(f.comparison.explanation).toContain(want.explanation);
      expect(f.walk.fault?.errorCode).toBe(want.errorCode);
      // Only the misaligned huge page has a mistake in the tables to point at.
      expect(f.hints.map((h) => h.kind)).toEqual(name === 'huge-page-misaligned' ? ['misaligned-huge-page'] : []);
      // Stopped at the handler's first instruction, breakpoints gone.
      expect(t.machine.cpu.rip).toBe(build.symbols.pf_handler);
      expect(t.machine.breakpoints()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('user-touches-supervisor: the 64-bit frame holds the user SS:RSP, read from the RSP0 stack', async () => {
    const t = openScenarioTarget('user-touches-supervisor');
    try {
      let f: PageFaultEvent | null = null;
      await catchPageFaults(t, { features: await t.cpuFeatures(), count: 1, onEvent: (e) => void (e.type === 'page-fault' && (f = e)) });
      expect(f!.frame).toMatchObject({ rsp: 0x7ffffffff000n, ss: 0x1b, rflags: 0x10002n });
      expect(f!.decoded.user).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('a scenario that triple-faults ends the catch with its post-mortem', async () => {
    const t = openScenarioTarget('stack-unmapped');
    try {
      const events: WatchEvent[] = [];
      const r = await catchPageFaults(t, { features: await t.cpuFeatures(), onEvent: (e) => void events.push(e) });
      expect(r).toEqual({ end: 'shutdown', faults: 0 });
      const s = events.find((e) => e.type === 'shutdown');
      expect(s?.type === 'shutdown' && s.postMortem.summary).toContain('the push at RSP-8 0xffff8000003ffff0 faults (PD entry not present)');
    } finally {
      await t.close();
    }
  });
});

/** What the post-mortem of each triple-faulting scenario must say. */
const WHY: Record<string, string> = {
  'pd-index-typo': 'from the state kept, the fetch at RIP 0xffffffff800000e2 faults (PD entry not present)',
  'unshifted-bitfield': 'the fetch at RIP 0xffffffff800000e2 faults (PDPT table outside memory)',
  'stack-unmapped': 'the push at RSP-8 0xffff8000003ffff0 faults (PD entry not present)',
  'nx-everywhere': 'faults (NX in the PML4 entry)',
  'uefi-trampoline-unmapped': 'the fetch at RIP 0x380129 faults (PML4 entry not present)',
  'idt-unmapped': 'It triple-faulted because the instruction at RIP 0xffffffff800000fa (int3) raises #BP, the #BP handler\'s IDT entry at 0xffffffff80003030 is not mapped',
  'kernel-wrong-physical-base': 'the instruction at RIP 0xffffffff800000e3 (add [rax], al) writes 0x400000, which faults (PML4 entry not present)',
  'five-level': 'the fetch at RIP 0xffffffff800000d1 faults (PML4 entry not present)',
};

describe('post-mortem, in process', () => {
  it.each(Object.keys(WHY))('%s: explains the triple fault from the state kept', async (name) => {
    const t = openScenarioTarget(name);
    try {
      expect(t.machine.run({ maxInstructions: 2_000_000 }).reason).toBe('shutdown');
      expect(await guestRunState(t)).toBe('shutdown');
      const pm = await postMortem(t, { features: await t.cpuFeatures(), ram: await t.ram() });
      expect(pm.summary).toContain(WHY[name]!);
      expect(pm.cpu.rip).toBe(t.machine.cpu.rip);
    } finally {
      await t.close();
    }
  });
});
