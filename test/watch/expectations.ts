/**
 * What watch-cr3 must say at each scenario's `mov cr3`, wherever the scenario runs (in process,
 * over RSP, in real QEMU): the verdict (test/emu/scenariosPreflight.test.ts holds the pre-flight to it too), and for
 * the dangerous ones the problem that bites first, the level its walk stops at, and the error code
 * of the #PF, which is the scenario's own first exception.
 */
import { expect } from 'vitest';
import type { Scenario } from '../../src/emu/scenarios/index.js';
import type { Verdict } from '../../src/paging/preflight.js';
import type { Cr3WriteEvent } from '../../src/watch/events.js';

/** The verdict at each scenario's `mov cr3`: the switch is fine and the fault comes later, a handler would fail later, or the switch itself triple-faults. */
export const VERDICT: Record<string, Verdict> = {
  good: 'safe',
  'pd-index-typo': 'triple-fault',
  'unshifted-bitfield': 'triple-fault',
  'stack-unmapped': 'triple-fault',
  'nx-everywhere': 'triple-fault',
  'uefi-trampoline-unmapped': 'triple-fault',
  'idt-unmapped': 'at-risk',
  // The pre-flight reads the gates through the new tables: zeros, not present. It cannot know that the code there is zeros too.
  'kernel-wrong-physical-base': 'at-risk',
  'five-level': 'triple-fault',
  'huge-page-misaligned': 'safe',
  'user-touches-supervisor': 'safe',
  'write-to-readonly-wp': 'safe',
  'nx-without-nxe': 'triple-fault',
};

/** The first problem: what, the level its walk stops at (null: not a paging fault), its error code (null: none). */
export const FIRST_PROBLEM: Record<string, { what: string; level: string | null; errorCode: number | null; when: string }> = {
  'pd-index-typo': { what: 'next-instruction', level: 'PD', errorCode: 0x10, when: 'now' },
  'unshifted-bitfield': { what: 'next-instruction', level: 'PDPT', errorCode: 0x10, when: 'now' },
  'stack-unmapped': { what: 'stack', level: 'PD', errorCode: 0x2, when: 'now' },
  'nx-everywhere': { what: 'next-instruction', level: 'PML4', errorCode: 0x11, when: 'now' },
  'uefi-trampoline-unmapped': { what: 'next-instruction', level: 'PML4', errorCode: 0x10, when: 'now' },
  'five-level': { what: 'next-instruction', level: 'PML4', errorCode: 0x10, when: 'now' },
  'idt-unmapped': { what: 'idt', level: 'PT', errorCode: 0x0, when: 'on-exception' },
  'kernel-wrong-physical-base': { what: 'gate:#PF', level: null, errorCode: null, when: 'on-exception' },
  'nx-without-nxe': { what: 'stack', level: 'PT', errorCode: 0xb, when: 'now' },
};

/** The hint each scenario's event must carry (kind and confidence), where one names the mistake. */
export const HINT: Record<string, string> = {
  'pd-index-typo': 'index-typo',
  'unshifted-bitfield': 'unshifted-address',
  'stack-unmapped': 'stack-unmapped',
  'nx-everywhere': 'nx-above-code',
  'uefi-trampoline-unmapped': 'lost-mapping',
  'idt-unmapped': 'lost-mapping',
  'kernel-wrong-physical-base': 'moved-mapping',
  'five-level': 'paging-depth',
  'nx-without-nxe': 'nx-without-nxe',
};

/** Checks the event of scenario `s`'s `mov cr3` against what it must say. */
export function expectScenarioEvent(s: Scenario, e: Cr3WriteEvent, symbols: Record<string, bigint>, cr3: { before: bigint; after: bigint }): void {
  expect(e.rip).toBe(symbols.cr3_write);
  expect(e.instruction).toBe('mov cr3, rax');
  expect(e.old).toBe(cr3.before);
  expect(e.write.cr3).toBe(cr3.after);
  const p = e.preflight;
  expect(p.verdict).toBe(VERDICT[s.name]);
  if (p.verdict === 'safe') {
    expect(p.problems).toEqual([]);
    return;
  }
  const want = FIRST_PROBLEM[s.name]!;
  const first = p.problems[0]!;
  expect({ what: first.what, level: first.fault?.level ?? null, errorCode: first.fault?.errorCode ?? null, when: first.when }).toEqual(want);
  if (p.verdict === 'triple-fault') {
    const o = s.outcome.first!;
    expect(first.va).toBe(o.cr2);
    expect(p.chain[0]).toMatchObject({ vector: o.vector, errorCode: o.errorCode, cr2: o.cr2 });
    expect(p.chain.at(-1)!.name).toBe('triple fault');
  }
  const hints = e.hints.flatMap((g) => g.hints);
  expect(hints.find((h) => h.kind === HINT[s.name])?.confidence).toBe('high');
}
