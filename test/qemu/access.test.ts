/**
 * The access rules pagewalk applies, held against what real QEMU (TCG, -cpu max) raises: the test
 * kernel turns on SMEP, SMAP or PKE (with a PKRU), then, stopped at its `mov cr3`, is told to read
 * or call a user page; its IDT is empty, so the #PF ends in a triple fault that QEMU keeps
 * (-action shutdown=pause). The error code in QEMU's `-d int` log must be the one `walk` predicts
 * for that access, and the post-mortem must explain the same fault.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { buildTestKernel, mapTestKernel } from '../../src/image/testKernel.js';
import { hex } from '../../src/paging/addr.js';
import { CR4 } from '../../src/paging/registers.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { PKRU_UNKNOWN } from '../../src/cli/session.js';
import { cli } from '../helpers/cli.js';
import { describeQemu } from '../helpers/qemu.js';
import { bootLiveGuest, stopAtCr3Write } from './liveGuest.js';

/** A user page (R/W, executable) with protection key 1. */
const USER_PAGE = 0x40000000n;

interface Case {
  name: string;
  cr4: bigint;
  pkru?: number;
  touch: 'read' | 'exec';
  /** The #PF error code QEMU raises, and pagewalk predicts. */
  errorCode: number;
  /** The reason the walk gives. */
  reason: string;
}

const CASES: Case[] = [
  { name: 'SMAP: a supervisor read of a user page', cr4: CR4.SMEP | CR4.SMAP, touch: 'read', errorCode: 0x1, reason: 'smap' },
  { name: 'SMEP: a supervisor fetch from a user page', cr4: CR4.SMEP | CR4.SMAP, touch: 'exec', errorCode: 0x11, reason: 'smep' },
  { name: 'PKRU.AD for key 1: a supervisor read of a user page with key 1', cr4: CR4.PKE, pkru: 0x4, touch: 'read', errorCode: 0x21, reason: 'pk-access-disabled' },
];

describeQemu('access rules on real QEMU: SMEP, SMAP and protection keys', (qemu) => {
  for (const c of CASES) {
    it(c.name, async () => {
      const k = buildTestKernel({
        cr4: c.cr4,
        ...(c.pkru !== undefined && { pkru: c.pkru }),
        tables: (pt) => {
          mapTestKernel(pt);
          pt.map(USER_PAGE, 0x800000, 0x1000, { user: true, pkey: 1 });
        },
      });
      const g = await bootLiveGuest(qemu, k, { extra: ['-action', 'reboot=shutdown,shutdown=pause', '-d', 'int', '-D', '{dir}/qemu.log'] });
      try {
        await stopAtCr3Write(g);
        const t = await RspTarget.open(g.gdb);
        const slots = new Uint8Array(16);
        const v = new DataView(slots.buffer);
        v.setBigUint64(0, USER_PAGE, true);
        v.setBigUint64(8, c.touch === 'exec' ? 2n : 0n, true);
        await t.writePhysical(BigInt(k.manifest.touchSlot.pa), slots);
        expect(await t.control.cont()).toEqual({ cause: 'shutdown', signal: 3 });
        await t.close();

        // What QEMU raised first: the #PF, at the touching instruction.
        const first = /v=0e e=([0-9a-f]{4}) .*pc=([0-9a-f]+)/.exec(readFileSync(g.q.file('qemu.log'), 'utf8'));
        expect(first, 'a #PF in the -d int log').not.toBeNull();
        expect(parseInt(first![1]!, 16)).toBe(c.errorCode);
        expect(BigInt(`0x${first![2]}`)).toBe(c.touch === 'exec' ? USER_PAGE : k.manifest.touch.read);

        // What pagewalk predicts for that access in the state QEMU kept.
        const args = ['walk', '--gdb', g.gdb, '--json', '--access', c.touch, hex(USER_PAGE), ...(c.pkru !== undefined ? ['--pkru', hex(c.pkru)] : [])];
        const w = await cli(args);
        const walk = JSON.parse(w.stdout) as { access: { faults: boolean; errorCode: string | null; reason: string | null } };
        expect(walk.access).toMatchObject({ faults: true, errorCode: hex(c.errorCode), reason: c.reason });

        // QEMU tells PKRU neither through the gdbstub nor `info registers`: without --pkru, pagewalk says so.
        if (c.pkru !== undefined) {
          const blind = await cli(['walk', '--gdb', g.gdb, '--json', '--access', c.touch, hex(USER_PAGE)]);
          expect(blind.stderr).toContain(PKRU_UNKNOWN);
          expect(JSON.parse(blind.stdout)).toMatchObject({ access: { faults: false } });
        }
        const pmRun = await cli(['post-mortem', '--gdb', g.gdb, '--json', ...(c.pkru !== undefined ? ['--pkru', hex(c.pkru)] : [])]);
        expect(pmRun.stdout, pmRun.stderr).not.toBe('');
        const pm = JSON.parse(pmRun.stdout) as { explained: boolean; cr2: string; summary: string };
        expect(pm, pm.summary + pmRun.stderr).toMatchObject({ explained: true, cr2: hex(USER_PAGE) });
      } finally {
        await g.q.stop();
      }
    }, 30_000);
  }
});
