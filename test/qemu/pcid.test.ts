/**
 * CR4.PCIDE on real QEMU (TCG, -cpu max): the test kernel turns PCIDs on in long mode and its loop
 * loads the CR3 the slot holds. watch-cr3 reads the PCID and the no-flush bit of each value moved
 * to CR3, regs shows the PCID QEMU keeps, and a walk through a CR3 with a PCID finds the tables.
 * A no-flush write (bit 63) hits a QEMU 7.2 bug: TCG takes bit 63 for an address bit above
 * MAXPHYADDR and the MOV never completes, without an exception. watch-cr3 says so and stops there
 * rather than meeting the same MOV forever; on a QEMU without the bug the write completes.
 */
import { expect, it } from 'vitest';
import { buildTestKernel } from '../../src/image/testKernel.js';
import { hex } from '../../src/paging/addr.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { cli } from '../helpers/cli.js';
import { describeQemu } from '../helpers/qemu.js';
import { bootLiveGuest, stopAtCr3Write, type LiveGuest } from './liveGuest.js';

const NO_FLUSH = 1n << 63n;
const PCID = 5n;

/** Puts `value` in the kernel's CR3 slot (the loop loads it on its next turn). */
async function setSlot(g: LiveGuest, value: bigint): Promise<void> {
  const t = await RspTarget.open(g.gdb);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  await t.writePhysical(BigInt(g.k.manifest.cr3Slot.pa), b);
  await t.close();
}

interface WatchLine {
  event: string;
  old?: string;
  new?: string;
  end?: string;
  expected?: string;
  actual?: string;
  reason?: string;
}

async function watch(g: LiveGuest, args: string[]): Promise<{ status: number; events: WatchLine[]; stderr: string }> {
  const r = await cli(['watch-cr3', '--gdb', g.gdb, '--json', ...args]);
  return { status: r.status, stderr: r.stderr, events: r.stdout.trim().split('\n').map((l) => JSON.parse(l) as WatchLine) };
}

describeQemu('PCIDs on real QEMU', (qemu) => {
  it('reads the PCID of each CR3 write, and QEMU keeps it in CR3', async () => {
    const k = buildTestKernel({ pcid: true });
    const g = await bootLiveGuest(qemu, k);
    try {
      await stopAtCr3Write(g);
      await setSlot(g, k.manifest.cr3 | PCID);
      // The MOV at hand still loads the old value (RAX was read before the stop); the next one the PCID.
      const w = await watch(g, ['--count', '3']);
      expect(w.status, w.stderr).toBe(1); // the test kernel's IDT is empty: every switch is at risk
      const writes = w.events.filter((e) => e.event === 'cr3-write');
      expect(writes.map((e) => [e.old, e.new])).toEqual([
        [hex(k.manifest.cr3), hex(k.manifest.cr3)],
        [hex(k.manifest.cr3), hex(k.manifest.cr3 | PCID)],
        [hex(k.manifest.cr3 | PCID), hex(k.manifest.cr3 | PCID)],
      ]);
      expect(w.events.some((e) => e.event === 'cr3-mismatch')).toBe(false);

      const regs = JSON.parse((await cli(['regs', '--gdb', g.gdb, '--json'])).stdout) as { cr3: { value: string; base: string; pcid: number | null }; cr4: { pcide: boolean } };
      expect(regs).toMatchObject({ cr3: { value: hex(k.manifest.cr3 | PCID), base: hex(k.manifest.cr3), pcid: 5 }, cr4: { pcide: true } });
      const walk = JSON.parse((await cli(['walk', '--gdb', g.gdb, '--json', hex(k.manifest.cr3Write)])).stdout) as { mapped: boolean; cr3: string };
      expect(walk).toMatchObject({ mapped: true });
    } finally {
      await g.q.stop();
    }
  }, 30_000);

  it('a no-flush write (bit 63): QEMU 7.2 never completes the MOV; watch-cr3 says why and stops on it', async () => {
    const k = buildTestKernel({ pcid: true });
    const g = await bootLiveGuest(qemu, k);
    try {
      const version = (g.q.qmp.greeting as { QMP: { version: { qemu: { major: number } } } }).QMP.version.qemu.major;
      await stopAtCr3Write(g);
      await setSlot(g, k.manifest.cr3 | PCID | NO_FLUSH);
      const w = await watch(g, ['--count', '4']);
      const writes = w.events.filter((e) => e.event === 'cr3-write');
      expect(writes[1]).toMatchObject({ old: hex(k.manifest.cr3), new: hex(k.manifest.cr3 | PCID) }); // bit 63 is not stored
      const mismatch = w.events.find((e) => e.event === 'cr3-mismatch');
      if (version === 7) {
        expect(mismatch).toMatchObject({ expected: hex(k.manifest.cr3 | PCID), actual: hex(k.manifest.cr3), reason: expect.stringContaining("QEMU 7.2's TCG takes bit 63") });
        expect(w.events.at(-1)).toMatchObject({ event: 'stopped', end: 'stalled' });
        expect(w.status).toBe(1);
        const regs = JSON.parse((await cli(['regs', '--gdb', g.gdb, '--json'])).stdout) as { rip: string };
        expect(regs.rip).toBe(hex(k.manifest.cr3Write)); // left on the MOV, for a look
      } else {
        expect(mismatch).toBeUndefined(); // a QEMU that accepts the no-flush bit
      }
    } finally {
      await g.q.stop();
    }
  }, 30_000);
});
