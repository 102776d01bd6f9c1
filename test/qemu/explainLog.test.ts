/**
 * explain-log on logs real QEMU writes (skipped with a notice where qemu-system-x86_64 is missing):
 * the test kernel switches its CR3 loop to tables that break it, QEMU runs it with
 * `-d int,cpu_reset -D FILE`, and explain-log must give the chain QEMU actually took: the vectors
 * and error codes of the v= lines, CR2 and the outcome, checked against the raw log read with plain
 * regular expressions and against the CPU state QEMU keeps after the triple fault
 * (`-action reboot=shutdown,shutdown=pause`). A memory dump of the stopped guest then lets
 * explain-log walk CR2 in the tables QEMU used; with the default reboot action, a reset loop.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageTables } from '../../src/image/pageTables.js';
import { TEST_KERNEL, buildTestKernel, mapTestKernel, type TablesBuilder, type TestKernel } from '../../src/image/testKernel.js';
import { cli } from '../helpers/cli.js';
import { describeQemu, humanMonitor, startQemu, untilShutdown, waitForFileText, type QemuProcess } from '../helpers/qemu.js';

const HH = (pa: number) => TEST_KERNEL.higherHalf + BigInt(pa);
const readOnlyData: TablesBuilder = (pt: PageTables) => {
  mapTestKernel(pt, { higherHalf: 'none' });
  pt.map(HH(TEST_KERNEL.codePa), TEST_KERNEL.codePa, 0x1000, { write: false, global: true });
  pt.map(HH(TEST_KERNEL.dataPa), TEST_KERNEL.dataPa, 0x1000, { nx: true, global: true, write: false });
  pt.map(HH(TEST_KERNEL.stackPa), TEST_KERNEL.stackPa, 0x1000, { nx: true, global: true });
};
const forgetsKernel: TablesBuilder = (pt) => mapTestKernel(pt, { higherHalf: 'none' });

const BASE = ['-accel', 'tcg', '-m', '128', '-display', 'none', '-nodefaults', '-kernel', '{dir}/kernel.elf', '-d', 'int,cpu_reset', '-D', '{dir}/qemu.log'];

async function boot(qemu: string, k: TestKernel, extra: string[]): Promise<QemuProcess> {
  return startQemu(qemu, [...BASE, ...extra], (dir) => writeFileSync(`${dir}/kernel.elf`, k.elf));
}

/** What the raw log says, read without pagewalk: each v= line's vector, error code and CR2. */
function rawInterrupts(log: string): { v: number; e: number; cr2: bigint | null }[] {
  return [...log.matchAll(/^ *\d+: v=([0-9a-f]{2}) e=([0-9a-f]{4}) .*?(?: CR2=([0-9a-f]{16}))?$/gm)].map((m) => ({
    v: Number.parseInt(m[1]!, 16),
    e: Number.parseInt(m[2]!, 16),
    cr2: m[3] ? BigInt(`0x${m[3]}`) : null,
  }));
}

interface ExplainJson {
  events: { vector: number; name: string; rawErrorCode: string; cr2: string | null; cr3: string | null; rip: string; tables: { agrees: boolean } | null }[];
  chains: { oneLine: string; end: string; occurrences: number; resetAfter: boolean }[];
  outcome: string;
  danger: boolean;
}

async function explainJson(path: string, ...more: string[]): Promise<{ status: number; json: ExplainJson }> {
  const r = await cli(['explain-log', '--json', path, ...more]);
  return { status: r.status, json: JSON.parse(r.stdout) as ExplainJson };
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

describeQemu('explain-log on logs of real QEMU', (qemu) => {
  for (const scenario of [
    { name: 'a write to read-only data', space: readOnlyData, errorCode: 0x3, cr2: (k: TestKernel) => k.manifest.loopCount.va },
    { name: 'a fetch after the kernel was unmapped', space: forgetsKernel, errorCode: 0x10, cr2: (k: TestKernel) => k.manifest.afterCr3Write },
  ]) {
    describe(`${scenario.name}, stopped at the triple fault`, () => {
      const k = buildTestKernel({ spaces: { broken: scenario.space }, slot: 'broken' });
      let q: QemuProcess | undefined;
      let log = '';
      let regs: Record<string, bigint> = {};
      let logPath = '';
      let corePath = '';

      beforeAll(async () => {
        q = await boot(qemu, k, ['-action', 'reboot=shutdown,shutdown=pause']);
        await untilShutdown(q);
        log = await waitForFileText(q.file('qemu.log'), 'Triple fault\n');
        const info = await humanMonitor(q.qmp, 'info registers');
        regs = Object.fromEntries([...info.matchAll(/\b(RIP|CR2|CR3)=([0-9a-f]+)/g)].map((m) => [m[1]!, BigInt(`0x${m[2]}`)]));
        logPath = q.file('qemu.log');
        corePath = q.file('core.elf');
        await q.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${corePath}` });
      });
      afterAll(async () => {
        await q?.stop();
      });

      it('gives the chain QEMU took: its v= lines, in order, with their error codes and CR2', async () => {
        const { status, json } = await explainJson(logPath);
        expect([status, json.outcome, json.danger]).toEqual([1, 'triple-fault', true]);
        const raw = rawInterrupts(log);
        expect(raw.map((r) => [r.v, r.e])).toEqual([
          [0x0e, scenario.errorCode],
          [0x08, 0],
        ]);
        expect(json.events.map((e) => [e.vector, e.rawErrorCode, e.cr2])).toEqual(raw.map((r) => [r.v, hex(r.e), r.cr2 === null ? null : hex(r.cr2)]));
        expect(json.events.map((e) => e.name)).toEqual(['#PF', '#DF']);
        expect(json.chains).toEqual([expect.objectContaining({ end: 'triple-fault', occurrences: 1, resetAfter: false })]);
      });

      it('agrees with the state QEMU kept at the triple fault (RIP, CR2, CR3) and with the kernel built', async () => {
        const { json } = await explainJson(logPath);
        const pf = json.events[0]!;
        expect([pf.rip, pf.cr2, pf.cr3]).toEqual([hex(regs.RIP!), hex(regs.CR2!), hex(regs.CR3!)]);
        expect([pf.rip, pf.cr2, pf.cr3]).toEqual([hex(k.manifest.afterCr3Write), hex(scenario.cr2(k)), hex(k.manifest.spaces.broken!)]);
      });

      it("walks CR2 in the tables of QEMU's memory dump, and the tables agree", async () => {
        const { json } = await explainJson(logPath, '--dump', corePath, '--maxphyaddr', '40');
        expect(json.events.map((e) => e.tables?.agrees ?? null)).toEqual([true, null]);
        const text = await cli(['explain-log', logPath, '--dump', corePath, '--maxphyaddr', '40']);
        expect(text.stdout).toContain('     ✓ The tables agree: ');
      });
    });
  }

  describe('the default reboot action', () => {
    const k = buildTestKernel({ spaces: { broken: forgetsKernel }, slot: 'broken' });
    let log = '';
    let logPath = '';
    let q: QemuProcess | undefined;

    beforeAll(async () => {
      q = await boot(qemu, k, []);
      const deadline = Date.now() + 20_000;
      while ((log.match(/^Triple fault$/gm) ?? []).length < 6 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        log = readFileSync(q.file('qemu.log'), 'latin1');
      }
      await q.qmp.execute('stop');
      log = readFileSync(q.file('qemu.log'), 'latin1');
      logPath = q.file('qemu.log');
    });
    afterAll(async () => {
      await q?.stop();
    });

    it('is a reset loop, each kind of cycle given once with its count', async () => {
      const { status, json } = await explainJson(logPath);
      expect([status, json.outcome]).toEqual([1, 'reset-loop']);
      const triples = (log.match(/^Triple fault$/gm) ?? []).length;
      expect(triples).toBeGreaterThanOrEqual(6);
      const kernel = json.chains.find((c) => c.oneLine.startsWith('#PF 0x10 '));
      expect(kernel).toMatchObject({ end: 'triple-fault', resetAfter: true });
      expect(kernel!.oneLine).toBe(`#PF 0x10 at ${hex(k.manifest.afterCr3Write)}, CR2 ${hex(k.manifest.afterCr3Write)} -> #DF -> triple fault`);
      // Every triple fault is in one of the chains, counted.
      expect(json.chains.filter((c) => c.end === 'triple-fault').reduce((n, c) => n + c.occurrences, 0)).toBe(triples);
    });
  });
});
