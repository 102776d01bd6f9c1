/**
 * pagewalk's side of the proxy as a target: in process (ProxyTarget.inProcess) and from another
 * process through the control socket (RspTarget over `unix:PATH`, ProxyTarget.connect). Physical
 * reads in its own PhyMemMode, the controls (hardware breakpoints, continue, interrupt, steps that
 * retry an empty step), GDB's stops and writes reaching it, and what closing leaves behind.
 */
import { statSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlSocket } from '../../src/proxy/controlSocket.js';
import { GdbProxy } from '../../src/proxy/proxy.js';
import { ProxyTarget } from '../../src/proxy/proxyTarget.js';
import type { Stop } from '../../src/target/debuggee.js';
import { isDebuggee } from '../../src/target/debuggee.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { FakeGdb, FakeQemu } from './fakeQemu.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A QEMU without a monitor (so targets skip `info mtree` and `info registers`), and the proxy on it. */
async function setup(): Promise<{ qemu: FakeQemu; proxy: GdbProxy }> {
  const qemu = await FakeQemu.listen((p) => (p.startsWith('qRcmd,') ? '' : undefined));
  cleanups.push(() => qemu.close());
  const proxy = await GdbProxy.start({ gdbstub: qemu.endpoint, listen: '127.0.0.1:0' });
  cleanups.push(() => proxy.close());
  return { qemu, proxy };
}

describe('ProxyTarget in process', () => {
  it('reads physical memory in its own PhyMemMode and is a Debuggee', async () => {
    const { qemu, proxy } = await setup();
    const t = await ProxyTarget.inProcess(proxy);
    cleanups.push(() => t.close());
    expect(isDebuggee(t)).toBe(true);
    expect(Buffer.from(await t.readPhysical(0x110000n, 4)).toString('hex')).toBe('abababab');
    const [frame] = await t.frames([0x110000]);
    expect(frame?.getUint8(0)).toBe(0xab);
    expect(qemu.last.modes[qemu.last.packets.indexOf('m110000,4')]).toBe(true);
  });

  it('drives the guest: hardware breakpoints, continue to a stop, interrupt, and steps that retry when RIP does not move', async () => {
    const { qemu, proxy } = await setup();
    const t = await ProxyTarget.inProcess(proxy);
    cleanups.push(() => t.close());
    await t.control.insertBreakpoint(0xffffffff80101000n);
    expect(qemu.last.packets).toContain('Z1,ffffffff80101000,1');
    const hit = t.control.cont();
    await qemu.received(/^vCont;c$/);
    expect(t.control.running).toBe(true);
    qemu.stopsBy('T05thread:p01.01;');
    await expect(hit).resolves.toEqual({ cause: 'breakpoint', signal: 5 } satisfies Stop);
    expect(t.control.running).toBe(false);
    const stopped = t.control.cont();
    await qemu.received(/^vCont;c$/);
    await t.control.interrupt();
    await expect(stopped).resolves.toEqual({ cause: 'interrupted', signal: 2 } satisfies Stop);
    // The fake's RIP never moves: the step is tried again three times.
    const steps = qemu.last.packets.filter((p) => p.startsWith('vCont;s')).length;
    await expect(t.control.step()).resolves.toEqual({ cause: 'step', signal: 5 } satisfies Stop);
    expect(qemu.last.packets.filter((p) => p.startsWith('vCont;s')).length - steps).toBe(4);
    await t.control.removeBreakpoint(0xffffffff80101000n);
    expect(qemu.last.packets).toContain('z1,ffffffff80101000,1');
  });

  it('hears of GDB\'s stops, drops what it read when GDB writes, and leaves GDB\'s session alone when closed', async () => {
    const { qemu, proxy } = await setup();
    const t = await ProxyTarget.inProcess(proxy);
    const stops: Stop[] = [];
    t.control.onUnsolicitedStop((s) => stops.push(s));
    await t.frames([0x110000]);
    const gdb = await FakeGdb.connect(proxy.addressLabel);
    cleanups.push(() => gdb.close());
    expect(await gdb.request('vCont;s:p1.1')).toBe('T05thread:p01.01;');
    await new Promise((r) => setTimeout(r, 20));
    expect(stops).toEqual([{ cause: 'breakpoint', signal: 5 }]);
    const reads = () => qemu.last.packets.filter((p) => p.startsWith('m110000')).length;
    await t.frames([0x110000]);
    const before = reads();
    await t.frames([0x110000]);
    expect(reads()).toBe(before);
    expect(await gdb.request('M110000,1:00')).toBe('OK');
    await t.frames([0x110000]);
    expect(reads()).toBe(before + 1);
    await t.control.insertBreakpoint(0x1000n);
    await t.close();
    expect(qemu.last.packets).toContain('z1,1000,1');
    expect(qemu.last.packets.filter((p) => /^D/.test(p))).toEqual([]);
    expect(await gdb.request('?')).toBe('T05thread:p01.01;');
  });
});

describe('the control socket', () => {
  it('serves other processes\' targets as a gdbstub, in a private directory removed on close', async () => {
    const { qemu, proxy } = await setup();
    const control = await ControlSocket.listen(proxy);
    cleanups.push(() => control.close());
    expect(statSync(dirname(control.path)).mode & 0o777).toBe(0o700);
    expect(statSync(control.path).mode & 0o777).toBe(0o600);
    const plain = await RspTarget.open(`unix:${control.path}`);
    expect(Buffer.from(await plain.readPhysical(0x110000n, 4)).toString('hex')).toBe('abababab');
    await plain.close();
    const driven = await ProxyTarget.connect(control.path);
    await driven.control.insertBreakpoint(0x2000n);
    await driven.close();
    expect(qemu.connections.at(-1)!.packets).toEqual(expect.arrayContaining(['m110000,4', 'Z1,2000,1', 'z1,2000,1']));
    await control.close();
    expect(existsSync(dirname(control.path))).toBe(false);
    await expect(ProxyTarget.connect(control.path)).rejects.toThrow(/no such socket/);
  });
});
