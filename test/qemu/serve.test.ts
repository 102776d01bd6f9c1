/**
 * The WebSocket API against real QEMU (TCG): the test kernel reloads CR3 in a loop; a real `ws`
 * client drives it through `pagewalk serve`'s server on a live target (--gdb with --qmp). Every
 * method, held against QEMU's own answers where QEMU has one (`gva2gpa`); `stopped` on breakpoints,
 * steps and interrupts, `cr3Write` from the watch, told to two clients; writes refused without
 * --allow-write and, with it, a CR3 slot swapped to tables without the stack, which the watch stops
 * before; a client that vanishes mid-map; the token refusal; and `pagewalk serve` exiting 3 when
 * QEMU goes away.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { attach, type PagewalkSession } from '../../src/api/index.js';
import type { PageTables } from '../../src/image/pageTables.js';
import { buildTestKernel, mapTestKernel, TEST_KERNEL, type TestKernel } from '../../src/image/testKernel.js';
import { WsApiServer } from '../../src/serve/server.js';
import { describeQemu } from '../helpers/qemu.js';
import { RpcCallError, TestClient } from '../serve/wsClient.js';
import { bootLiveGuest, gva2gpa, type LiveGuest } from './liveGuest.js';

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const STACK_PAGE = TEST_KERNEL.higherHalf + BigInt(TEST_KERNEL.stackPa);
const CLI_MAIN = fileURLToPath(new URL('../launch/cliMain.ts', import.meta.url));
const FETCH_TRIPLE_LOG = readFileSync(new URL('../faults/fixtures/qemu-7.2-pf-fetch-triple.log', import.meta.url), 'utf8');

/** The kernel's own tables without the stack page. */
function withoutStack(pt: PageTables): void {
  mapTestKernel(pt);
  pt.setEntry(STACK_PAGE, 'PT', 0n);
}

/** A little-endian qword as the hex bytes writePhysical takes. */
function qwordBytes(v: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b.toString('hex');
}

async function rpcError(p: Promise<unknown>): Promise<RpcCallError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof RpcCallError)) throw new Error(`expected a JSON-RPC error, got ${JSON.stringify(e)}`);
  return e;
}

describeQemu('the WebSocket API on real QEMU', (qemu) => {
  let k: TestKernel;
  let g: LiveGuest;
  let session: PagewalkSession;
  let readOnly: WsApiServer;
  let writable: WsApiServer;
  const clients: TestClient[] = [];
  const client = async (url: string): Promise<TestClient> => {
    const c = await TestClient.connect(url);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    k = buildTestKernel({ spaces: { nostack: withoutStack } });
    g = await bootLiveGuest(qemu, k);
    session = await attach({ gdb: g.gdb, qmp: g.qmp });
    readOnly = await WsApiServer.listen(session, { port: 0 });
    writable = await WsApiServer.listen(session, { port: 0, allowWrite: true });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await readOnly?.close();
    await writable?.close();
    await session?.close();
    await g?.q.stop();
  });

  it('answers every read as QEMU does (info, regs, walk, map, diff, phys2virt, check, fault, explainLog)', async () => {
    const c = await client(readOnly.url);
    const m = k.manifest;
    const info = await c.call<{ debuggable: boolean; target: { kind: string } }>('info');
    expect(info).toMatchObject({ debuggable: true, target: { kind: 'gdb' } });
    const regs = await c.call<{ mode: string; cr3: { value: string }; rip: string; idtr: unknown }>('regs');
    expect(regs.mode).toBe('4-level');
    expect(regs.cr3.value).toBe(hex(m.cr3));
    expect(BigInt(regs.rip) >= m.loop && BigInt(regs.rip) < m.loopEnd).toBe(true);
    for (const va of [m.cr3Write, STACK_PAGE + 0x123n, m.longModeEntry]) {
      const w = await c.call<{ mapped: boolean; pa: string | null }>('walk', { va: hex(va) });
      const qemuPa = await gva2gpa(g.q, va);
      expect(w.pa).toBe(qemuPa === null ? null : hex(qemuPa));
    }
    const whole = await c.call<{ ranges: { va: string; pa: string }[] }>('map', { stream: false });
    const streamed = await c.call<{ streamed: number }>('map', { chunk: 1 });
    expect(streamed.streamed).toBe(whole.ranges.length);
    expect(c.notes.filter((n) => n.method === 'map.ranges').flatMap((n) => n.params.ranges as unknown[])).toEqual(whole.ranges);
    const d = await c.call<{ entries: { kind: string; va: string; size: string }[] }>('diff', { against: hex(m.spaces.nostack!), stream: false });
    expect(d.entries).toEqual([expect.objectContaining({ kind: 'added', va: hex(STACK_PAGE), size: '0x1000' })]);
    const p = await c.call<{ aliases: { va: string }[] }>('phys2virt', { pa: hex(TEST_KERNEL.codePa) });
    expect(p.aliases.map((a) => a.va)).toContain(hex(TEST_KERNEL.higherHalf + BigInt(TEST_KERNEL.codePa)));
    const check = await c.call<{ preflight: { verdict: string; problems: { what: string }[] }; lost: { va: string }[] }>('check', { cr3: hex(m.spaces.nostack!) });
    expect(check.preflight.verdict).toBe('triple-fault');
    expect(check.preflight.problems[0]!.what).toBe('stack');
    expect(check.lost.map((r) => r.va)).toEqual([hex(STACK_PAGE)]);
    const f = await c.call<{ walk: { mapped: boolean; fault: { reason: string } }; decoded: { write: boolean } }>('fault', { errorCode: '0x2', cr2: '0x40000000' });
    expect(f).toMatchObject({ walk: { mapped: false, fault: { reason: 'not-present' } }, decoded: { write: true } });
    const x = await c.call<{ outcome: string }>('explainLog', { text: FETCH_TRIPLE_LOG, tables: false });
    expect(x.outcome).toBe('triple-fault');
  });

  it('breaks, runs, steps and interrupts, telling both clients (breakpoint.set, cont, step, interrupt, stopped)', async () => {
    const a = await client(readOnly.url);
    const b = await client(writable.url);
    const m = k.manifest;
    await a.call('breakpoint.set', { va: hex(m.cr3Write) });
    expect(await a.call('cont')).toEqual({ running: true });
    for (const c of [a, b]) expect((await c.waitFor('stopped')).params).toMatchObject({ cause: 'breakpoint', rip: hex(m.cr3Write) });
    const step = await b.call<{ cause: string; rip: string }>('step');
    expect(step).toMatchObject({ cause: 'step', rip: hex(m.afterCr3Write) });
    expect((await a.waitFor('stopped', (n) => n.params.cause === 'step')).params).toEqual(step);
    await a.call('breakpoint.delete', { va: hex(m.cr3Write) });
    await a.call('cont');
    expect((await rpcError(b.call('walk', { va: hex(m.loop) }))).stable).toBe('E_RUNNING');
    const stop = await b.call<{ cause: string; rip: string }>('interrupt');
    expect(stop.cause).toBe('interrupted');
    expect(BigInt(stop.rip) >= m.loop && BigInt(stop.rip) < m.loopEnd).toBe(true);
    expect((await a.waitFor('stopped', (n) => n.params.cause === 'interrupted')).params).toEqual(stop);
  });

  it('watches the loop reload CR3, telling every client (watchCr3.start, cr3Write)', async () => {
    const a = await client(readOnly.url);
    const b = await client(readOnly.url);
    const m = k.manifest;
    await a.call('watchCr3.start', { count: 3 });
    for (const c of [a, b]) {
      await c.waitFor('cr3Write', (n) => n.params.index === 3, 30_000);
      const writes = c.notes.filter((n) => n.method === 'cr3Write').map((n) => n.params);
      expect(writes).toHaveLength(3);
      // The test kernel sets up no IDT: the next fetch and the stack are fine, exception delivery is not.
      for (const w of writes) {
        expect(w).toMatchObject({ event: 'cr3-write', rip: hex(m.cr3Write), old: hex(m.cr3), new: hex(m.cr3), verdict: 'at-risk', lost: [] });
        expect((w.problems as { what: string }[]).every((p) => p.what.startsWith('gate:'))).toBe(true);
      }
    }
    const stopped = await a.waitFor('stopped', (n) => n.params.reason !== null);
    expect(stopped.params).toMatchObject({ cause: 'breakpoint', rip: hex(m.cr3Write) });
    expect((await b.call<{ rip: string }>('regs')).rip).toBe(hex(m.cr3Write));
  });

  it('refuses writes without --allow-write; with it, the slot swapped to tables without the stack is stopped before it loads', async () => {
    const ro = await client(readOnly.url);
    const rw = await client(writable.url);
    const m = k.manifest;
    const refused = await rpcError(ro.call('writePhysical', { pa: hex(m.cr3Slot.pa), bytes: qwordBytes(m.spaces.nostack!) }));
    expect(refused.stable).toBe('E_WRITE_REFUSED');
    expect((await rpcError(ro.call('writeRegister', { name: 'rax', value: '0x1' }))).stable).toBe('E_WRITE_REFUSED');
    await rw.call('writePhysical', { pa: hex(m.cr3Slot.pa), bytes: qwordBytes(m.spaces.nostack!) });
    try {
      // Back to the top of the loop: the next mov cr3 loads the slot as it is now.
      await rw.call('writeRegister', { name: 'rip', value: hex(m.loop) });
      await rw.call('watchCr3.start', { count: 1 });
      const w = await rw.waitFor('cr3Write', () => true, 30_000);
      expect(w.params).toMatchObject({ rip: hex(m.cr3Write), old: hex(m.cr3), new: hex(m.spaces.nostack!), verdict: 'triple-fault' });
      expect((w.params.problems as { what: string }[])[0]!.what).toBe('stack');
      expect((w.params.lost as { va: string }[]).map((r) => r.va)).toEqual([hex(STACK_PAGE)]);
      await rw.waitFor('stopped', (n) => n.params.reason !== null && String(n.params.reason).includes('has not run'));
      const regs = await ro.call<{ rip: string; cr3: { value: string } }>('regs');
      expect(regs).toMatchObject({ rip: hex(m.cr3Write), cr3: { value: hex(m.cr3) } });
    } finally {
      // Put the good tables back in the slot and in RAX (loaded from the slot already): the guest goes on safely.
      await rw.call('writePhysical', { pa: hex(m.cr3Slot.pa), bytes: qwordBytes(m.cr3) });
      await rw.call('writeRegister', { name: 'rax', value: hex(m.cr3) });
    }
    const back = await ro.call<{ preflight: { verdict: string } }>('check', { cr3: hex(m.cr3) });
    expect(back.preflight.verdict).toBe('at-risk');
  });

  it('carries on when a client vanishes mid-map, and refuses a client without the token', async () => {
    const a = await client(readOnly.url);
    const b = await client(readOnly.url);
    a.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'm', method: 'map', params: { chunk: 1 } }));
    await a.waitFor('map.ranges');
    a.ws.terminate();
    expect((await b.call<{ cause: string }>('step')).cause).toBe('step');
    expect((await b.call<{ ranges: unknown[] }>('map', { stream: false })).ranges.length).toBeGreaterThan(2);
    const guarded = await WsApiServer.listen(session, { port: 0, token: 'qemu-token-0123' });
    try {
      await expect(TestClient.connect(guarded.url)).rejects.toMatchObject({ status: 401 });
      const ok = await client(`${guarded.url}?token=qemu-token-0123`);
      expect((await ok.call<{ mode: string }>('regs')).mode).toBe('4-level');
    } finally {
      await guarded.close();
    }
  });
});

describeQemu('pagewalk serve on real QEMU', (qemu) => {
  it('tells the clients and exits 3 when QEMU goes away', async () => {
    const g = await bootLiveGuest(qemu, buildTestKernel());
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'serve', '--ws', '127.0.0.1:0', '--gdb', g.gdb, '--qmp', g.qmp, '--json'], { env: { ...process.env, NO_COLOR: '1' } });
    try {
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const first = await new Promise<{ url: string }>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l) as { url: string }));
        void exit.then((code) => reject(new Error(`serve exited ${code}`)));
      });
      const c = await TestClient.connect(first.url);
      expect((await c.call<{ mode: string }>('regs')).mode).toBe('4-level');
      await g.q.stop();
      const e = await c.call('regs').catch((x: unknown) => x);
      if (e instanceof RpcCallError) expect(e.stable).toBe('E_LOST');
      expect((await c.waitFor('targetLost')).params.message).toBeTruthy();
      expect(await exit).toBe(3);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await g.q.stop();
    }
  });
});
