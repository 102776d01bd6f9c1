/**
 * The emulator against real QEMU (skipped with a notice where qemu-system-x86_64 is missing): the
 * test kernel loads a CR3 that maps nothing and triple-faults; QEMU runs it with
 * `-d int,cpu_reset`, the emulator runs it from the higher-half entry with the registers QEMU's
 * multiboot loader left (read from QEMU's own dump), and the two logs must agree line for line
 * from the first exception to `Triple fault` (except QEMU's lazy-flags line). The emulator uses
 * the 'qemu-tcg' TLB model here: QEMU drops global translations on every CR3 load.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildTestKernel } from '../../src/image/testKernel.js';
import { describeQemu, startQemu, untilShutdown } from '../helpers/qemu.js';
import { testKernelMachine } from './fixtures.js';

const lazy = (lines: string[]) => lines.map((l) => (l.startsWith('CCS=') ? 'CCS=<lazy flags>' : l));

describeQemu('the -d int log against QEMU', (qemu) => {
  it('matches from the first #PF to the triple fault', async () => {
    const k = buildTestKernel({ spaces: { empty: () => {} }, slot: 'empty' });
    const q = await startQemu(
      qemu,
      ['-kernel', '{dir}/k.elf', '-d', 'int,cpu_reset', '-D', '{dir}/q.log', '-display', 'none', '-nodefaults', '-m', '128', '-accel', 'tcg', '-action', 'reboot=shutdown,shutdown=pause'],
      (dir) => writeFileSync(join(dir, 'k.elf'), k.elf),
    );
    let log: string[];
    try {
      await untilShutdown(q);
      log = readFileSync(q.file('q.log'), 'latin1').split('\n');
    } finally {
      await q.stop();
    }
    const first = log.indexOf('check_exception old: 0xffffffff new 0xe');
    expect(first).toBeGreaterThan(0);
    const qemuLines = log.slice(first, log.indexOf('Triple fault', first) + 1);
    const reg = (name: string): bigint => {
      const line = qemuLines.find((l) => l.includes(`${name}=`)) ?? '';
      return BigInt(`0x${new RegExp(`${name}=([0-9a-f]{16})`).exec(line)?.[1] ?? '0'}`);
    };

    const m = testKernelMachine(k, { tlbModel: 'qemu-tcg', rbx: reg('RBX'), rdi: reg('RDI') });
    expect(m.run({ maxInstructions: 100_000 }).reason).toBe('shutdown');
    const emu = m.log.lines.slice(m.log.lines.indexOf('check_exception old: 0xffffffff new 0xe'));
    expect(lazy(emu)).toEqual(lazy(qemuLines));
  });
});
