/**
 * The WebSocket API end to end: a real `ws` client against the server on the bundled emulator
 * (scenario good, in process): every method, notifications on step and stops, write refusal,
 * two clients at once, a client that disconnects mid-map, a client that stops reading, and the
 * refusals at connect (token, origin).
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attach, attachTarget, type PagewalkSession } from '../../src/api/index.js';
import { WsApiServer, type ServeOptions } from '../../src/serve/server.js';
import { RPC_ERROR } from '../../src/serve/rpc.js';
import { manyRangesTarget, MANY_BASE, withControls } from './fixtures.js';
import { RpcCallError, TestClient } from './wsClient.js';

/** The scenario `good` at its hand-over (src/emu/scenarios/good.ts). */
const GOOD = {
  start: '0xffffffff80000000',
  loaderCr3: '0x310000',
  kernelCr3: '0x400000',
  cr3Write: '0xffffffff800000df',
  kmain: '0xffffffff80000013',
};

const FETCH_TRIPLE_LOG = readFileSync(new URL('../faults/fixtures/qemu-7.2-pf-fetch-triple.log', import.meta.url), 'utf8');

let session: PagewalkSession;
let server: WsApiServer;
const clients: TestClient[] = [];

async function serve(s: PagewalkSession, o: ServeOptions = {}): Promise<WsApiServer> {
  session = s;
  server = await WsApiServer.listen(s, { port: 0, ...o });
  return server;
}

async function client(url = server.url, headers: Record<string, string> = {}): Promise<TestClient> {
  const c = await TestClient.connect(url, headers);
  clients.push(c);
  return c;
}

/** The RpcCallError a call rejects with. */
async function failure(p: Promise<unknown>): Promise<RpcCallError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof RpcCallError)) throw new Error(`expected a JSON-RPC error, got ${JSON.stringify(e)}`);
  return e;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  await session?.close();
});

describe('the WebSocket API on the emulator', () => {
  beforeEach(async () => {
    await serve(await attach({ emu: 'good' }));
  });

  it('says what it serves (info) and reads the registers (regs)', async () => {
    const c = await client();
    const info = await c.call<{ server: string; debuggable: boolean; allowWrite: boolean; methods: string[]; target: { kind: string } }>('info');
    expect(info.server).toBe('pagewalk');
    expect(info.debuggable).toBe(true);
    expect(info.allowWrite).toBe(false);
    expect(info.target.kind).toBe('emu');
    expect(info.methods).toEqual(
      expect.arrayContaining(['regs', 'walk', 'map', 'diff', 'check', 'fault', 'explainLog', 'step', 'cont', 'interrupt', 'watchCr3.start', 'watchCr3.stop', 'breakpoint.set', 'breakpoint.delete']),
    );
    const regs = await c.call<{ mode: string; rip: string; cr3: { value: string }; efer: { lma: boolean; nxe: boolean } }>('regs');
    expect(regs.mode).toBe('4-level');
    expect(regs.rip).toBe(GOOD.start);
    expect(regs.cr3.value).toBe(GOOD.loaderCr3);
    expect(regs.efer).toMatchObject({ lma: true, nxe: true });
  });

  it('walks one address, several, and through another CR3 (walk)', async () => {
    const c = await client();
    const w = await c.call<{ va: string; mapped: boolean; pa: string; steps: { level: string }[]; access: { kind: string; faults: boolean } }>('walk', { va: GOOD.start, access: 'exec' });
    expect(w).toMatchObject({ va: GOOD.start, mapped: true, access: { kind: 'exec', faults: false } });
    expect(w.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT', 'PD', 'PT']);
    const many = await c.call<{ va: string }[]>('walk', { va: [GOOD.start, GOOD.kmain] });
    expect(many.map((x) => x.va)).toEqual([GOOD.start, GOOD.kmain]);
    // The kernel's tables are not built yet at the hand-over: its PML4 is empty.
    const k = await c.call<{ cr3: string; mapped: boolean; fault: { level: string; reason: string; errorCode: string } }>('walk', { va: GOOD.start, cr3: GOOD.kernelCr3, access: 'exec' });
    expect(k).toMatchObject({ cr3: GOOD.kernelCr3, mapped: false, fault: { level: 'PML4', reason: 'not-present', errorCode: '0x10' } });
  });

  it('streams map in chunks before its answer, and answers whole with stream: false (map)', async () => {
    const c = await client();
    const whole = await c.call<{ cr3: string; ranges: { va: string }[]; summary: { ranges: number } }>('map', { stream: false });
    expect(whole.cr3).toBe(GOOD.loaderCr3);
    expect(whole.ranges.length).toBe(whole.summary.ranges);
    expect(whole.ranges.length).toBeGreaterThan(2);
    const before = c.received.length;
    const streamed = await c.call<{ cr3: string; streamed: number; summary: { ranges: number } }>('map', { chunk: 2 });
    expect(streamed.streamed).toBe(whole.ranges.length);
    const chunks = c.notes.filter((n) => n.method === 'map.ranges');
    expect(chunks.length).toBe(Math.ceil(whole.ranges.length / 2));
    expect(chunks.every((n) => typeof n.params.id === 'number' && (n.params.ranges as unknown[]).length <= 2)).toBe(true);
    expect(chunks.flatMap((n) => n.params.ranges as { va: string }[])).toEqual(whole.ranges);
    // Every chunk arrived before the answer.
    const answerAt = c.received.findIndex((m, i) => i >= before && (m as { id?: unknown }).id === chunks[0]!.params.id);
    expect(answerAt).toBe(c.received.length - 1);
    const window = await c.call<{ ranges: { va: string }[] }>('map', { stream: false, from: GOOD.start });
    expect(window.ranges.every((r) => BigInt(r.va) >= BigInt(GOOD.start))).toBe(true);
    expect(window.ranges.length).toBeLessThan(whole.ranges.length);
  });

  it('compares address spaces (diff) and finds aliases (phys2virt)', async () => {
    const c = await client();
    const map = await c.call<{ ranges: unknown[] }>('map', { stream: false });
    const d = await c.call<{ cr3: string; against: string; entries: { kind: string }[]; counts: { added: number; removed: number; changed: number } }>('diff', {
      against: GOOD.kernelCr3,
      stream: false,
    });
    expect(d).toMatchObject({ cr3: GOOD.loaderCr3, against: GOOD.kernelCr3, counts: { removed: 0, changed: 0 } });
    expect(d.counts.added).toBeGreaterThanOrEqual(map.ranges.length);
    const streamed = await c.call<{ streamed: number }>('diff', { against: GOOD.kernelCr3, chunk: 1 });
    expect(streamed.streamed).toBe(d.entries.length);
    expect(c.notes.filter((n) => n.method === 'diff.entries')).toHaveLength(d.entries.length);
    const w = await c.call<{ pa: string }>('walk', { va: GOOD.start });
    const p = await c.call<{ pa: string; aliases: { va: string }[] }>('phys2virt', { pa: w.pa });
    expect(p.pa).toBe(w.pa);
    expect(p.aliases.map((a) => a.va)).toContain(GOOD.start);
  });

  it('explains a page fault (fault) and a QEMU log (explainLog)', async () => {
    const c = await client();
    const f = await c.call<{ cr2: string; errorCode: string; decoded: { fetch: boolean; present: boolean }; walk: { mapped: boolean }; agrees: boolean }>('fault', {
      errorCode: '0x10',
      cr2: '0xdead0000000',
      rip: '0xdead0000000',
    });
    expect(f).toMatchObject({ cr2: '0xdead0000000', errorCode: '0x10', decoded: { fetch: true, present: false }, walk: { mapped: false }, agrees: true });
    const x = await c.call<{ outcome: string; danger: boolean; events: { name: string }[] }>('explainLog', { text: FETCH_TRIPLE_LOG, tables: false });
    expect(x.outcome).toBe('triple-fault');
    expect(x.danger).toBe(true);
    expect(x.events.map((e) => e.name)).toContain('#PF');
    const empty = await failure(c.call('explainLog', { text: '' }));
    expect(empty.rpcCode).toBe(RPC_ERROR.INVALID_PARAMS);
    expect(empty.stable).toBe('E_BAD_INPUT');
  });

  it('steps, telling every client (step, stopped)', async () => {
    const a = await client();
    const b = await client();
    const stop = await a.call<{ cause: string; rip: string; cr3: string }>('step');
    expect(stop).toMatchObject({ cause: 'step', cr3: GOOD.loaderCr3 });
    expect(BigInt(stop.rip)).toBeGreaterThan(BigInt(GOOD.start));
    for (const c of [a, b]) expect((await c.waitFor('stopped')).params).toEqual(stop);
    const regs = await b.call<{ rip: string }>('regs');
    expect(regs.rip).toBe(stop.rip);
  });

  it('runs to a breakpoint, pre-flights the mov cr3 there (breakpoint.set, cont, check)', async () => {
    const a = await client();
    const b = await client();
    expect(await a.call('breakpoint.set', { va: GOOD.cr3Write })).toEqual({ va: GOOD.cr3Write });
    expect(await a.call('breakpoint.list')).toEqual({ breakpoints: [GOOD.cr3Write] });
    expect(await a.call('cont')).toEqual({ running: true });
    const stopped = await b.waitFor('stopped');
    expect(stopped.params).toMatchObject({ cause: 'breakpoint', rip: GOOD.cr3Write, cr3: GOOD.loaderCr3 });
    const check = await b.call<{ cr3: string; preflight: { verdict: string }; lint: { findings: unknown[] }; lost: unknown[] }>('check', { cr3: GOOD.kernelCr3 });
    expect(check.cr3).toBe(GOOD.kernelCr3);
    expect(check.preflight.verdict).toBe('safe');
    expect(await a.call('breakpoint.delete', { va: GOOD.cr3Write })).toEqual({ va: GOOD.cr3Write });
    const again = await failure(a.call('breakpoint.delete', { va: GOOD.cr3Write }));
    expect(again.stable).toBe('E_BAD_INPUT');
  });

  it('refuses reads while the guest runs, and interrupts it (cont, interrupt)', async () => {
    const a = await client();
    const b = await client();
    expect(await a.call('cont')).toEqual({ running: true });
    const busy = await failure(b.call('regs'));
    expect(busy.rpcCode).toBe(RPC_ERROR.RUNNING);
    expect(busy.stable).toBe('E_RUNNING');
    expect((await failure(b.call('step'))).stable).toBe('E_RUNNING');
    const stop = await b.call<{ cause: string; rip: string }>('interrupt');
    expect(stop.cause).toBe('interrupted');
    expect((await a.waitFor('stopped', (n) => n.params.cause === 'interrupted')).params).toEqual(stop);
    expect(await a.call('interrupt')).toBeNull();
    const regs = await a.call<{ rip: string }>('regs');
    expect(regs.rip).toBe(stop.rip);
  });

  it('tells every client of each CR3 write, and of the end of the watch (watchCr3.start, cr3Write, watchCr3.stop)', async () => {
    const a = await client();
    const b = await client();
    expect(await a.call('watchCr3.start')).toEqual({ watching: true });
    for (const c of [a, b]) {
      const w = await c.waitFor('cr3Write');
      expect(w.params).toMatchObject({ event: 'cr3-write', index: 1, rip: GOOD.cr3Write, old: GOOD.loaderCr3, new: GOOD.kernelCr3, verdict: 'safe', problems: [], lost: [] });
    }
    expect((await failure(b.call('regs'))).stable).toBe('E_RUNNING');
    expect((await failure(b.call('watchCr3.start'))).stable).toBe('E_RUNNING');
    const end = await b.call<{ end: string; writes: number; dangerous: number }>('watchCr3.stop');
    expect(end).toMatchObject({ end: 'interrupted', writes: 1, dangerous: 0 });
    expect((await a.waitFor('stopped')).params).toMatchObject({ cause: 'interrupted' });
    expect(await a.call('watchCr3.stop')).toBeNull();
    expect((await a.call<{ cr3: { value: string } }>('regs')).cr3.value).toBe(GOOD.kernelCr3);
  });

  it('refuses writes without --allow-write (writeRegister, writePhysical)', async () => {
    const c = await client();
    const reg = await failure(c.call('writeRegister', { name: 'rip', value: GOOD.kmain }));
    expect(reg.rpcCode).toBe(RPC_ERROR.WRITE_REFUSED);
    expect(reg.stable).toBe('E_WRITE_REFUSED');
    expect(reg.message).toContain('--allow-write');
    const mem = await failure(c.call('writePhysical', { pa: '0x1000', bytes: '00' }));
    expect(mem.stable).toBe('E_WRITE_REFUSED');
    expect((await c.call<{ rip: string }>('regs')).rip).toBe(GOOD.start);
  });

  it('answers two clients at once with the same answers', async () => {
    const a = await client();
    const b = await client();
    const [ma, mb, wa, wb] = await Promise.all([
      a.call('map', { stream: false }),
      b.call('map', { stream: false }),
      a.call('walk', { va: GOOD.kmain }),
      b.call('walk', { va: GOOD.kmain }),
    ]);
    expect(ma).toEqual(mb);
    expect(wa).toEqual(wb);
    expect(server.clients).toBe(2);
  });

  it('carries on when a client disconnects mid-map', async () => {
    const a = await client();
    const b = await client();
    a.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'm', method: 'map', params: { chunk: 1 } }));
    await a.waitFor('map.ranges');
    a.ws.terminate();
    const stop = await b.call<{ cause: string }>('step');
    expect(stop.cause).toBe('step');
    const map = await b.call<{ ranges: unknown[] }>('map', { stream: false });
    expect(map.ranges.length).toBeGreaterThan(2);
    await expect.poll(() => server.clients).toBe(1);
  });
});

describe('the WebSocket API on a scenario that triple-faults', () => {
  it('stops before the dangerous mov cr3 and says why (watchCr3.start with stopOn: danger)', async () => {
    await serve(await attach({ emu: 'stack-unmapped' }));
    const c = await client();
    await c.call('watchCr3.start', { stopOn: 'danger' });
    const w = await c.waitFor('cr3Write');
    expect(w.params).toMatchObject({ event: 'cr3-write', old: GOOD.loaderCr3, new: GOOD.kernelCr3, verdict: 'triple-fault' });
    const problems = w.params.problems as { what: string; fault: { level: string; reason: string } }[];
    expect(problems[0]).toMatchObject({ what: 'stack', fault: { reason: 'not-present' } });
    const stopped = await c.waitFor('stopped');
    expect(stopped.params).toMatchObject({ cause: 'breakpoint', rip: w.params.rip, cr3: GOOD.loaderCr3 });
    expect(stopped.params.reason).toMatch(/has not run/);
    const regs = await c.call<{ rip: string; cr3: { value: string } }>('regs');
    expect(regs).toMatchObject({ rip: w.params.rip, cr3: { value: GOOD.loaderCr3 } });
  });
});

describe('the WebSocket API with writes allowed', () => {
  it('writes a register and a table entry (writeRegister, writePhysical)', async () => {
    await serve(await attach({ emu: 'good' }), { allowWrite: true });
    const c = await client();
    expect(await c.call('writeRegister', { name: 'rip', value: GOOD.kmain })).toEqual({ name: 'rip', value: GOOD.kmain });
    expect((await c.call<{ rip: string }>('regs')).rip).toBe(GOOD.kmain);
    const w = await c.call<{ steps: { level: string; entryAddress: string }[] }>('walk', { va: GOOD.start });
    const pml4e = w.steps[0]!.entryAddress;
    expect(await c.call('writePhysical', { pa: pml4e, bytes: '0000000000000000' })).toEqual({ pa: pml4e, length: 8 });
    const gone = await c.call<{ mapped: boolean; fault: { level: string; reason: string } }>('walk', { va: GOOD.start });
    expect(gone).toMatchObject({ mapped: false, fault: { level: 'PML4', reason: 'not-present' } });
    const odd = await failure(c.call('writePhysical', { pa: '0x1000', bytes: 'abc' }));
    expect(odd.rpcCode).toBe(RPC_ERROR.INVALID_PARAMS);
  });
});

describe('slow and vanishing clients', () => {
  it('cuts the stream of a client that stops reading while another waits for the target, and serves the other', async () => {
    const target = withControls(manyRangesTarget(256));
    await serve(await attachTarget(target), { connection: { highWaterBytes: 64 << 10, yieldAfterMs: 100 } });
    const slow = await client();
    const fast = await client();
    slow.pauseReading();
    slow.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'big', method: 'map', params: { chunk: 64 } }));
    // Give the server time to fill the socket's buffers and stall on this client.
    await new Promise((r) => setTimeout(r, 400));
    const walk = await fast.call<{ mapped: boolean }>('walk', { va: `0x${MANY_BASE.toString(16)}` });
    expect(walk.mapped).toBe(true);
    const stop = await fast.call<{ cause: string }>('step');
    expect(stop.cause).toBe('step');
    expect(target.control.steps).toBe(1);
    slow.resumeReading();
    const answer = (await (async () => {
      for (;;) {
        const m = slow.received.find((x) => (x as { id?: unknown }).id === 'big');
        if (m) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
    })()) as { error: { code: number; data: { code: string } } };
    expect(answer.error.code).toBe(RPC_ERROR.SLOW_CLIENT);
    expect(answer.error.data.code).toBe('E_SLOW_CLIENT');
    const streamed = slow.notes.filter((n) => n.method === 'map.ranges').length;
    expect(streamed).toBeGreaterThan(0);
    expect(streamed).toBeLessThan(131072 / 64);
  });

  it('drops a client whose queue passes the bound, keeping the others', async () => {
    const target = withControls(manyRangesTarget(64));
    await serve(await attachTarget(target), { connection: { maxBufferedBytes: 256 << 10 } });
    const slow = await client();
    const other = await client();
    slow.pauseReading();
    // One answer of about 5 MB the paused client does not read, then events it cannot take.
    slow.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'map', params: { stream: false } }));
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 20 && server.clients > 1; i++) {
      await other.call('step');
      await new Promise((r) => setTimeout(r, 20));
    }
    await expect.poll(() => server.clients, { timeout: 5000 }).toBe(1);
    expect((await other.call<{ cause: string }>('step')).cause).toBe('step');
  });

  it('tells every client when the target is lost, then answers E_LOST', async () => {
    const target = withControls(manyRangesTarget(1));
    await serve(await attachTarget(target));
    const a = await client();
    const b = await client();
    target.control.stop({ cause: 'exited', signal: null, exitCode: 0 });
    for (const c of [a, b]) {
      const n = await c.waitFor('targetLost');
      expect(n.params.message).toMatch(/exited/);
    }
    const e = await failure(a.call('regs'));
    expect(e.rpcCode).toBe(RPC_ERROR.TARGET_LOST);
    expect(e.stable).toBe('E_LOST');
  });
});

describe('who may connect', () => {
  const TOKEN = 'correct-horse-battery';

  it('refuses a client without the token, or with a wrong one, and lets the right one in (query or header)', async () => {
    await serve(await attach({ example: true }), { token: TOKEN });
    const none = await TestClient.connect(server.url).catch((e: { status?: number; body?: string }) => e);
    expect(none).toMatchObject({ status: 401 });
    expect((none as { body: string }).body).toContain('token');
    const wrong = await TestClient.connect(`${server.url}?token=nope-nope-nope`).catch((e: { status?: number }) => e);
    expect(wrong).toMatchObject({ status: 401 });
    const byQuery = await client(`${server.url}?token=${TOKEN}`);
    expect((await byQuery.call<{ mode: string }>('regs')).mode).toBe('4-level');
    const byHeader = await client(server.url, { Authorization: `Bearer ${TOKEN}` });
    expect((await byHeader.call<{ server: string }>('info')).server).toBe('pagewalk');
    expect(server.clients).toBe(2);
  });

  it('refuses web pages from other origins unless allowed', async () => {
    await serve(await attach({ example: true }), { origins: ['http://localhost:5173'] });
    const evil = await TestClient.connect(server.url, { Origin: 'https://evil.example' }).catch((e: { status?: number }) => e);
    expect(evil).toMatchObject({ status: 403 });
    const ok = await client(server.url, { Origin: 'http://localhost:5173' });
    expect((await ok.call<{ mode: string }>('regs')).mode).toBe('4-level');
  });

  it('will not listen off loopback without a token', async () => {
    session = await attach({ example: true });
    await expect(WsApiServer.listen(session, { host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'E_TOKEN_REQUIRED' });
  });
});
