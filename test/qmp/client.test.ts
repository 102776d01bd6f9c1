/**
 * QmpClient against a scripted local server (unix socket and TCP): greeting and negotiation,
 * replies matched by id, QMP errors, events, human-monitor commands, and every failure the client
 * must name — timeouts (with a manual clock), a silent (busy) socket, malformed JSON, a peer that
 * is not QMP, a closed connection, an unreachable endpoint.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpClient, type QmpConnectOptions, type QmpEvent } from '../../src/qmp/client.js';
import { HmpError, QmpError } from '../../src/qmp/errors.js';
import { ManualClock } from '../helpers/manualClock.js';
import { FakeQmpServer, GREETING, until, type FakeConnection } from './fakeQmp.js';

let server: FakeQmpServer;
let clock: ManualClock;
const clients: QmpClient[] = [];

beforeEach(async () => {
  server = await FakeQmpServer.start();
  clock = new ManualClock();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.stop();
});

/** Connects a client and plays QEMU's side of the handshake; returns both ends. */
async function connected(options: QmpConnectOptions = {}, on = server): Promise<{ client: QmpClient; conn: FakeConnection }> {
  const connecting = QmpClient.connect(on.endpoint, { clock, ...options });
  const conn = await on.nextConnection();
  conn.send(GREETING);
  if (options.negotiate !== false) {
    const cap = await conn.next();
    expect(cap).toEqual({ execute: 'qmp_capabilities', id: `${options.idPrefix ?? 'pw'}-1` });
    conn.reply(cap, {});
  }
  const client = await connecting;
  clients.push(client);
  return { client, conn };
}

/** The error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<QmpError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(QmpError);
  return e as QmpError;
}

describe('QmpClient: session', () => {
  it('reads the greeting and negotiates capabilities first', async () => {
    const { client } = await connected();
    expect(client.greeting).toEqual({
      version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' },
      capabilities: ['oob'],
    });
    expect(client.endpoint).toEqual({ path: server.endpoint });
    expect(clock.pending).toBe(0);
  });

  it('matches replies to commands by id, whatever their order, and sends arguments exactly', async () => {
    const { client, conn } = await connected({ idPrefix: 't' });
    const a = client.execute('query-status');
    const b = client.execute('pmemsave', { val: 0xffffffffffffn, size: 16, filename: '/x' });
    const ra = await conn.next();
    const rb = await conn.next();
    expect(ra).toEqual({ execute: 'query-status', id: 't-2' });
    expect(rb).toEqual({ execute: 'pmemsave', arguments: { val: 0xffffffffffff, size: 16, filename: '/x' }, id: 't-3' });
    conn.reply(rb, {});
    conn.reply(ra, { status: 'prelaunch', singlestep: false, running: false });
    expect(await a).toEqual({ status: 'prelaunch', singlestep: false, running: false });
    expect(await b).toEqual({});
    expect(clock.pending).toBe(0);
  });

  it("turns an error reply into E_QMP with QEMU's class and description", async () => {
    const { client, conn } = await connected();
    const p = client.execute('cont');
    conn.fail(await conn.next(), 'GenericError', 'Resetting the Virtual Machine is required');
    const e = await rejection(p);
    expect(e.code).toBe('E_QMP');
    expect(e.errorClass).toBe('GenericError');
    expect(e.desc).toBe('Resetting the Virtual Machine is required');
    expect(e.message).toBe('QMP cont: Resetting the Virtual Machine is required (GenericError)');
  });

  it('gives an error reply without an id to the oldest command (QMP answers in order)', async () => {
    const { client, conn } = await connected();
    const first = client.execute('a');
    const second = client.execute('b');
    await conn.next();
    const rb = await conn.next();
    conn.send('{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}}\r\n');
    expect((await rejection(first)).desc).toBe('JSON parse error, invalid keyword');
    conn.reply(rb, 2);
    expect(await second).toBe(2);
  });

  it('can leave negotiation to the caller: a command before it gets QEMU\'s CommandNotFound', async () => {
    const { client, conn } = await connected({ negotiate: false });
    const p = client.execute('query-status');
    conn.fail(await conn.next(), 'CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    expect(await rejection(p)).toMatchObject({ code: 'E_QMP', errorClass: 'CommandNotFound' });
    const n = client.negotiate();
    const cap = await conn.next();
    expect(cap.execute).toBe('qmp_capabilities');
    conn.reply(cap, {});
    await n;
  });

  it('works over TCP too', async () => {
    const tcp = await FakeQmpServer.start(true);
    try {
      const { client, conn } = await connected({}, tcp);
      expect(client.endpoint).toMatchObject({ host: '127.0.0.1' });
      const p = client.execute('query-version');
      conn.reply(await conn.next(), { qemu: { major: 7 } });
      expect(await p).toEqual({ qemu: { major: 7 } });
      await client.close();
    } finally {
      await tcp.stop();
    }
  });
});

describe('QmpClient: events', () => {
  it('emits typed events, with data and timestamp, and numbers them', async () => {
    const { client, conn } = await connected();
    const seen: QmpEvent[] = [];
    client.on('event', (e) => seen.push(e));
    const reset = client.waitForEvent('RESET', 1000);
    conn.event('STOP');
    conn.event('RESET', { guest: false, reason: 'host-qmp-system-reset' });
    expect(await reset).toEqual({
      event: 'RESET',
      data: { guest: false, reason: 'host-qmp-system-reset' },
      timestamp: { seconds: 1700000000, microseconds: 5 },
      seq: 2,
    });
    expect(seen.map((e) => [e.event, e.seq, e.data])).toEqual([
      ['STOP', 1, {}],
      ['RESET', 2, { guest: false, reason: 'host-qmp-system-reset' }],
    ]);
    expect(client.eventCount).toBe(2);
    expect(clock.pending).toBe(0);
  });

  it('waits for future events only, unless given a mark to look back from, and can filter', async () => {
    const { client, conn } = await connected();
    const mark = client.eventCount;
    const stopped = client.waitForEvent('STOP', 1000);
    conn.event('STOP');
    await stopped;
    // The STOP has come and gone: a plain wait would miss it, a wait since the mark finds it.
    expect(await client.waitForEvent('STOP', 1000, { since: mark })).toMatchObject({ event: 'STOP', seq: 1 });
    const guestReset = client.waitForEvent('RESET', 1000, { match: (e) => e.data.guest === true });
    conn.event('RESET', { guest: false, reason: 'host-qmp-system-reset' });
    conn.event('RESET', { guest: true, reason: 'guest-reset' });
    expect((await guestReset).seq).toBe(3);
  });

  it('times out waiting with E_TIMEOUT, and fails the wait with E_CLOSED when the connection goes', async () => {
    const { client, conn } = await connected();
    const never = client.waitForEvent('SHUTDOWN', 250);
    clock.advance(249);
    const gone = client.waitForEvent('RESUME', 1000);
    clock.advance(1);
    expect(await rejection(never)).toMatchObject({ code: 'E_TIMEOUT', message: 'no QMP SHUTDOWN event in 250 ms' });
    conn.end();
    expect((await rejection(gone)).code).toBe('E_CLOSED');
    expect(clock.pending).toBe(0);
  });
});

describe('QmpClient: human monitor', () => {
  it('runs human-monitor-command and returns its text with LF line ends', async () => {
    const { client, conn } = await connected();
    const p = client.hmp('gva2gpa 0xffffffff80101000');
    const cmd = await conn.next();
    expect(cmd.arguments).toEqual({ 'command-line': 'gva2gpa 0xffffffff80101000' });
    conn.reply(cmd, 'gpa: 0x101000\r\n');
    expect(await p).toBe('gpa: 0x101000\n');
  });

  it('turns "unknown command" into HmpError, and a non-text answer into E_PROTOCOL', async () => {
    const { client, conn } = await connected();
    const p = client.hmp('nonsense-command');
    conn.reply(await conn.next(), "unknown command: 'nonsense-command'\r\n");
    await expect(p).rejects.toThrow(new HmpError('E_HMP_UNKNOWN_COMMAND', 'the QEMU monitor has no command "nonsense-command" (in "nonsense-command")'));
    const q = client.hmp('info status');
    conn.reply(await conn.next(), { status: 'odd' });
    expect(await rejection(q)).toMatchObject({ code: 'E_PROTOCOL' });
  });
});

describe('QmpClient: failures', () => {
  it('times a command out with E_TIMEOUT (per command, or the default), ignores the late reply, and carries on', async () => {
    const { client, conn } = await connected({ requestTimeoutMs: 500 });
    const slow = client.execute('dump-guest-memory', { paging: false, protocol: 'file:/x' }, { timeoutMs: 100 });
    const late = await conn.next();
    const other = client.execute('query-status');
    const ro = await conn.next();
    clock.advance(100);
    expect(await rejection(slow)).toMatchObject({ code: 'E_TIMEOUT', message: 'QMP dump-guest-memory: no reply in 100 ms' });
    conn.reply(late, {});
    clock.advance(399);
    conn.reply(ro, { status: 'paused' });
    expect(await other).toEqual({ status: 'paused' });
    const third = client.execute('query-status');
    await conn.next();
    clock.advance(500);
    expect((await rejection(third)).message).toBe('QMP query-status: no reply in 500 ms');
  });

  it('says the socket is busy when it accepts the connection but sends no greeting, and lets go of it', async () => {
    const connecting = QmpClient.connect(server.endpoint, { clock, timeoutMs: 2000 });
    const conn = await server.nextConnection();
    await until(() => clock.created === 2); // connected; now waiting for the greeting
    clock.advance(1999);
    expect(clock.pending).toBe(1);
    clock.advance(1);
    const e = await rejection(connecting);
    expect(e.code).toBe('E_BUSY');
    expect(e.message).toBe(
      `no QMP greeting from ${server.endpoint} in 2000 ms: the QMP socket is in use by another client (QEMU serves one at a time; close the other one, or give QEMU a second -qmp socket)`,
    );
    await conn.closed; // the queued connection is closed, so it cannot take the monitor later
  });

  it('rejects waiting commands with E_PROTOCOL on malformed JSON, reports it, and stays usable', async () => {
    const { client, conn } = await connected();
    const errors: QmpError[] = [];
    client.on('protocolError', (e) => errors.push(e));
    const p = client.execute('query-status');
    const r = await conn.next();
    conn.send('{"return": {"status": "running",\r\n');
    const e = await rejection(p);
    expect(e.code).toBe('E_PROTOCOL');
    expect(e.message).toBe('QMP sent a line that is not a JSON object (invalid JSON): "{\\"return\\": {\\"status\\": \\"running\\","');
    expect(errors).toEqual([e]);
    conn.reply(r, { status: 'running' }); // the real reply, too late: ignored
    conn.send('{"neither": "reply nor event"}\r\n');
    await until(() => errors.length === 2);
    const q = client.execute('query-status');
    conn.reply(await conn.next(), { status: 'paused' });
    expect(await q).toEqual({ status: 'paused' });
    expect(errors.map((x) => x.message)).toEqual([e.message, 'QMP sent a message that is neither a reply nor an event: {"neither":"reply nor event"}']);
  });

  it('says a peer is not QMP when its first line is not the greeting', async () => {
    const gdb = QmpClient.connect(server.endpoint, { clock });
    (await server.nextConnection()).send('+$T02thread:01;#04');
    expect(await rejection(gdb)).toMatchObject({
      code: 'E_PROTOCOL',
      message: `${server.endpoint} is not a QMP socket: QMP sent a line that is not a JSON object (it does not start with "{"): "+$T02thread:01;#04"`,
    });
    const other = QmpClient.connect(server.endpoint, { clock });
    (await server.nextConnection()).send('{"return": {}}\r\n');
    expect((await rejection(other)).message).toBe(`${server.endpoint} is not a QMP socket: expected the {"QMP": ...} greeting, got {"return":{}}`);
    expect(clock.pending).toBe(0);
  });

  it('rejects waiting and later commands with E_CLOSED when QEMU goes away', async () => {
    const { client, conn } = await connected();
    const closes: (QmpError | null)[] = [];
    client.on('close', (e) => closes.push(e));
    const p = client.execute('quit');
    await conn.next();
    conn.end();
    expect(await rejection(p)).toMatchObject({ code: 'E_CLOSED', message: `QMP quit: the connection to ${server.endpoint} is closed` });
    expect(closes).toEqual([null]);
    expect(client.closed).toBe(true);
    expect((await rejection(client.execute('query-status'))).code).toBe('E_CLOSED');
    expect((await rejection(client.waitForEvent('STOP', 10))).code).toBe('E_CLOSED');
    expect(clock.pending).toBe(0);
  });

  it('fails the connect with E_CLOSED when the peer closes before its greeting', async () => {
    const connecting = QmpClient.connect(server.endpoint, { clock });
    (await server.nextConnection()).end();
    expect((await rejection(connecting)).message).toBe(`QMP at ${server.endpoint} closed the connection before its greeting`);
  });

  it('says why an endpoint cannot be reached (E_CONNECT)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-qmp-'));
    try {
      const missing = join(dir, 'none.sock');
      expect(await rejection(QmpClient.connect(missing, { clock }))).toMatchObject({
        code: 'E_CONNECT',
        message: `cannot connect to QMP at ${missing}: no such socket (start QEMU with -qmp unix:PATH,server=on,wait=off)`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const tcp = await FakeQmpServer.start(true);
    const endpoint = tcp.endpoint;
    await tcp.stop();
    expect((await rejection(QmpClient.connect(endpoint, { clock }))).message).toBe(
      `cannot connect to QMP at ${endpoint}: connection refused (start QEMU with -qmp tcp:HOST:PORT,server=on,wait=off)`,
    );
  });

  it('rejects commands still waiting with E_CLOSED when the client closes', async () => {
    const { client, conn } = await connected();
    const p = client.execute('query-status');
    await conn.next();
    await client.close();
    expect((await rejection(p)).code).toBe('E_CLOSED');
    await conn.closed;
  });
});
