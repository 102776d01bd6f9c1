/**
 * explain-log on the bundled emulator's own -d int,cpu_reset log: the test kernel that QEMU 7.2 ran
 * for fixtures/qemu-7.2-pf-*-triple.log, run again on the emulator from its higher-half entry (with
 * the registers QEMU's multiboot loader left), must give the chain QEMU's log gives: the same
 * exceptions, error codes, RIP, CR2, CR3, delivery failures and outcome; and with the default
 * reboot action, a reset loop.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TripleFaultAction } from '../../src/emu/index.js';
import { explainLog, type LogExplanation } from '../../src/faults/explainLog.js';
import { QemuLogParser } from '../../src/faults/qemuLog.js';
import type { PageTables } from '../../src/image/pageTables.js';
import { TEST_KERNEL, buildTestKernel, mapTestKernel, type TablesBuilder } from '../../src/image/testKernel.js';
import { testKernelMachine } from '../emu/fixtures.js';

const HH = (pa: number) => TEST_KERNEL.higherHalf + BigInt(pa);

function explain(text: string): LogExplanation {
  const p = new QemuLogParser();
  return explainLog([...p.push(text), ...p.end()], p.stats);
}

/** Runs the kernel whose loop switches to `space` on the emulator; returns its log. */
function emulatorLog(space: TablesBuilder, tripleFault: TripleFaultAction, maxInstructions = 100_000): string {
  const machine = testKernelMachine(buildTestKernel({ spaces: { s: space }, slot: 's' }), { tlbModel: 'qemu-tcg', tripleFault });
  machine.run({ maxInstructions });
  return machine.log.text();
}

const readOnlyData = (pt: PageTables) => {
  mapTestKernel(pt, { higherHalf: 'none' });
  pt.map(HH(TEST_KERNEL.codePa), TEST_KERNEL.codePa, 0x1000, { write: false, global: true });
  pt.map(HH(TEST_KERNEL.dataPa), TEST_KERNEL.dataPa, 0x1000, { nx: true, global: true, write: false });
  pt.map(HH(TEST_KERNEL.stackPa), TEST_KERNEL.stackPa, 0x1000, { nx: true, global: true });
};
const forgetsKernel = (pt: PageTables) => mapTestKernel(pt, { higherHalf: 'none' });

/** What must match between two explanations of the same fault. */
function chainFacts(x: LogExplanation): unknown {
  return {
    outcome: x.outcome,
    chains: x.chains.map((c) => ({
      end: c.end,
      oneLine: c.oneLine,
      links: c.links.map((l) => [l.name, l.kind, l.errorCode, l.rip, l.cr2, l.cr3, l.raisedWhileDelivering, l.promotedFrom, l.deliveryFailure?.why ?? null]),
    })),
  };
}

describe("explain-log on the emulator's own log", () => {
  it('gives the chain QEMU took for a write to read-only data', () => {
    const qemu = explain(readFileSync(new URL('./fixtures/qemu-7.2-pf-write-triple.log', import.meta.url), 'latin1'));
    const emu = explain(emulatorLog(readOnlyData, 'shutdown'));
    expect(chainFacts(emu)).toEqual(chainFacts(qemu));
    expect(emu.chains[0]!.oneLine).toBe('#PF 0x3 at 0xffffffff8010100a, CR2 0xffffffff80102018 -> #DF -> triple fault');
  });

  it('gives the chain QEMU took for a fetch after the kernel was unmapped', () => {
    const qemu = explain(readFileSync(new URL('./fixtures/qemu-7.2-pf-fetch-triple.log', import.meta.url), 'latin1'));
    expect(chainFacts(explain(emulatorLog(forgetsKernel, 'shutdown')))).toEqual(chainFacts(qemu));
  });

  it('with the reset action, is a reset loop of one kind of cycle', () => {
    const x = explain(emulatorLog(forgetsKernel, 'reset', 20_000));
    expect(x.outcome).toBe('reset-loop');
    expect(x.chains).toHaveLength(1);
    expect(x.chains[0]).toMatchObject({ end: 'triple-fault', resetAfter: true, oneLine: '#PF 0x10 at 0xffffffff8010100a, CR2 0xffffffff8010100a -> #DF -> triple fault' });
    expect(x.chains[0]!.occurrences).toBe(x.counts.tripleFaults);
    expect(x.counts.tripleFaults).toBeGreaterThan(2);
  });
});
