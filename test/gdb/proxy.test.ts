/**
 * The proxy with the real GDB 13 and real QEMU (TCG) running the test kernel: GDB breaks, steps,
 * reads registers (`info registers`) and memory (`x/4gx`), is interrupted, while pagewalk maps the
 * page tables through the same gdbstub between GDB's commands. Then GDB's own log of the remote
 * protocol is held against the proxy's log of both connections: GDB sent exactly what reached QEMU
 * on its behalf, in order, and received exactly QEMU's answers to its packets; no packet of
 * pagewalk's went out while GDB waited for an answer or the guest ran; and QEMU's PhyMemMode is
 * GDB's again afterwards. Skipped with a notice when QEMU or GDB is missing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestKernel, type TestKernel } from '../../src/image/testKernel.js';
import { mapRanges, mapRangesAsync, type MapRange } from '../../src/paging/map.js';
import { pagingContext } from '../../src/paging/mode.js';
import { expectFor } from '../../src/proxy/packets.js';
import { GdbProxy, type ProxyStop } from '../../src/proxy/proxy.js';
import { ProxyTarget } from '../../src/proxy/proxyTarget.js';
import type { TrafficEntry } from '../../src/proxy/traffic.js';
import { parseInfoRegisters } from '../../src/qmp/hmp.js';
import { RspClient } from '../../src/rsp/client.js';
import { describeQemu, humanMonitor } from '../helpers/qemu.js';
import { bootLiveGuest, stopAtCr3Write, xpBytes, type LiveGuest } from '../qemu/liveGuest.js';
import { GdbMi, describeGdb, remotePackets } from '../proxy/gdbMi.js';

const hex = (v: bigint) => `0x${v.toString(16)}`;

async function mapThrough(t: ProxyTarget): Promise<{ ranges: MapRange[]; expected: MapRange[] }> {
  const cpu = await t.cpuState();
  const ctx = pagingContext(cpu, await t.cpuFeatures());
  const ranges: MapRange[] = [];
  for await (const r of mapRangesAsync(t, ctx)) ranges.push(r);
  return { ranges, expected: [...mapRanges(kernel.mem, ctx)] };
}

let kernel: TestKernel;

describeQemu('the proxy with real QEMU', (qemu) => {
  describeGdb('GDB 13 and pagewalk share one gdbstub', (gdbPath) => {
    let g: LiveGuest;
    let proxy: GdbProxy;
    let target: ProxyTarget;
    let gdb: GdbMi;
    const traffic: TrafficEntry[] = [];
    const stops: ProxyStop[] = [];
    /** Where in the traffic log each of GDB's commands began, by name. */
    const marks = new Map<string, number>();
    const mark = (name: string) => marks.set(name, traffic.length);

    beforeAll(async () => {
      kernel = buildTestKernel();
      g = await bootLiveGuest(qemu, kernel);
      await stopAtCr3Write(g);
      proxy = await GdbProxy.start({ gdbstub: g.gdb, listen: '127.0.0.1:0' });
      proxy.on('traffic', (e) => traffic.push(e));
      proxy.on('stop', (s) => stops.push(s));
      target = await ProxyTarget.inProcess(proxy);
      gdb = new GdbMi(gdbPath);
      // Commands (-exec-interrupt) are taken while the guest runs.
      await gdb.command('-gdb-set mi-async on');
      await gdb.console('set debug remote 1');
      await gdb.console('set debug remote-packet-max-chars unlimited');
      await gdb.command(`-target-select remote ${proxy.addressLabel}`);
    });

    afterAll(async () => {
      await gdb?.exit();
      await target?.close();
      await proxy?.close();
      await g?.q.stop();
    });

    it('GDB breaks, steps, reads registers and memory and is interrupted, while pagewalk maps the tables between its commands', async () => {
      const m = kernel.manifest;
      mark('map-0');
      const first = await mapThrough(target);
      expect(first.ranges).toEqual(first.expected);

      mark('break');
      await gdb.command(`-break-insert *${hex(m.loop)}`);
      const from = gdb.lines.length;
      await gdb.command('-exec-continue');
      const hit = await gdb.waitFor((l) => l.startsWith('*stopped'), 20_000, from, 'the breakpoint');
      expect(hit).toContain('reason="breakpoint-hit"');
      expect(hit).toContain(`addr="${hex(m.loop)}"`);
      // The stop GDB caused reached pagewalk, whose next reads see the new stop.
      expect(stops.at(-1)).toMatchObject({ cause: 'gdb', toGdb: true });
      mark('map-1');
      const second = await mapThrough(target);
      expect(second.ranges).toEqual(second.expected);
      expect((await target.cpuState()).rip).toBe(m.loop);

      mark('stepi');
      const stepFrom = gdb.lines.length;
      await gdb.command('-exec-step-instruction');
      const stepped = await gdb.waitFor((l) => l.startsWith('*stopped'), 20_000, stepFrom, 'the step');
      expect(stepped).toContain('reason="end-stepping-range"');
      expect(stepped).toContain(`addr="${hex(m.cr3Write)}"`);
      expect((await target.cpuState()).rip).toBe(m.cr3Write);

      mark('info registers');
      const regs = await gdb.console('info registers');
      const qemuRegs = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
      expect(regs).toMatch(new RegExp(`^rip\\s+${hex(m.cr3Write)}\\s`, 'm'));
      expect(regs).toMatch(new RegExp(`^cr3\\s+${hex(m.cr3)}\\s`, 'm'));
      expect(qemuRegs.rip).toBe(m.cr3Write);
      expect(regs).toMatch(new RegExp(`^rsp\\s+${hex(qemuRegs.rsp)}\\s`, 'm'));

      mark('map-2');
      const third = await mapThrough(target);
      expect(third.ranges).toEqual(third.expected);

      mark('x/4gx');
      const x = await gdb.console(`x/4gx ${hex(m.bootInfo.va)}`);
      // Lines of `ADDRESS:\tVALUE\tVALUE`.
      const words = x
        .split('\n')
        .flatMap((line) => line.split(':').slice(1).join(':').trim().split(/\s+/))
        .filter(Boolean)
        .map((w) => BigInt(w));
      const bytes = await xpBytes(g.q, BigInt(m.bootInfo.pa), 32);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(words).toEqual([0, 8, 16, 24].map((o) => view.getBigUint64(o, true)));
      expect(words[2]).toBe(m.cr3);

      mark('PhyMemMode');
      expect(await gdb.console('maint packet qqemu.PhyMemMode')).toContain('received: "0"');

      mark('interrupt');
      await gdb.command('-break-delete');
      const runFrom = gdb.lines.length;
      await gdb.command('-exec-continue');
      await gdb.waitFor((l) => l.startsWith('*running'), 20_000, runFrom, 'the run');
      await new Promise((r) => setTimeout(r, 100));
      await gdb.command('-exec-interrupt');
      const interrupted = await gdb.waitFor((l) => l.startsWith('*stopped'), 20_000, runFrom, 'the interrupt');
      expect(interrupted).toContain('signal-name="SIGINT"');
      mark('map-3');
      const fourth = await mapThrough(target);
      expect(fourth.ranges).toEqual(fourth.expected);
    });

    it('GDB saw exactly QEMU\'s answers to its own packets, and QEMU got exactly GDB\'s packets, in order', () => {
      const { packets, ignored } = remotePackets(gdb.logLines());
      expect(ignored).toBe(0);
      const gdbSent = packets.filter((p) => p.dir === 'sent').map((p) => p.payload);
      const gdbReceived = packets.filter((p) => p.dir === 'received').map((p) => p.payload);
      // What reached QEMU on GDB's behalf, and what QEMU sent that the proxy passed to GDB.
      const toQemu = traffic.filter((e) => e.to === 'qemu' && e.from === 'gdb' && e.kind === 'packet' && e.note !== 'resent').map((e) => e.payload);
      const fromQemu: string[] = [];
      traffic.forEach((e, i) => {
        if (e.from !== 'qemu') return;
        if (e.for === 'gdb' && e.note !== 'dropped') fromQemu.push(e.payload);
        else if (e.for === 'nobody' && traffic[i + 1]?.to === 'gdb' && traffic[i + 1]?.payload === e.payload) fromQemu.push(e.payload);
      });
      const toGdb = traffic.filter((e) => e.to === 'gdb').map((e) => e.payload);
      expect(gdbSent.length).toBeGreaterThan(40);
      expect(toQemu).toEqual(gdbSent);
      expect(toGdb).toEqual(fromQemu);
      expect(gdbReceived).toEqual(toGdb);
    });

    it('sent pagewalk\'s packets between GDB\'s commands, never while GDB waited for an answer or the guest ran', () => {
      let gdbWaiting = 0;
      let running = false;
      let pagewalkSent = 0;
      for (const e of traffic) {
        if (e.from === 'gdb' && e.to === 'qemu' && e.kind === 'packet' && e.note !== 'resent') {
          const expect_ = expectFor(e.payload);
          if (expect_ !== 'none') gdbWaiting++;
          if (expect_ === 'resume') running = true;
        } else if (e.from === 'qemu' && e.for === 'gdb' && e.note !== 'progress') {
          gdbWaiting--;
          running = false;
        } else if (e.from.startsWith('pagewalk') && e.to === 'qemu') {
          pagewalkSent++;
          expect({ at: e.seq, gdbWaiting, running }).toEqual({ at: e.seq, gdbWaiting: 0, running: false });
        }
      }
      expect(pagewalkSent).toBeGreaterThan(20);
      // Each map of pagewalk's (after the first) ran between two of GDB's commands.
      for (const name of ['map-1', 'map-2', 'map-3']) {
        const start = marks.get(name);
        expect(start, name).toBeDefined();
        const mine = traffic.slice(start).find((e) => e.from.startsWith('pagewalk') && e.to === 'qemu');
        expect(mine, name).toBeDefined();
      }
    });

    it('leaves QEMU\'s PhyMemMode as GDB had it once everyone is gone', async () => {
      await gdb.exit();
      await target.close();
      await proxy.close();
      const direct = await RspClient.connect(g.gdb);
      try {
        expect(await direct.physicalMemoryMode()).toBe(false);
      } finally {
        await direct.close();
      }
    });
  });
});
