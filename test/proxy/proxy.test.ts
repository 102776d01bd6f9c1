/**
 * The proxy between fake peers on real sockets: a QEMU-like gdbstub and a raw-RSP GDB, with
 * pagewalk's clients (RspClient over the proxy) in between. What GDB sends reaches QEMU unchanged
 * and in order, and what QEMU answers reaches GDB unchanged; pagewalk's requests go out only while
 * the guest is stopped and GDB waits for nothing; and the edge cases: stray stops, interrupts while
 * pagewalk has requests in flight, GDB leaving mid-request, a second GDB, no-ack mode, PhyMemMode.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/proxy/errors.js';
import { GdbProxy, type ProxyStop } from '../../src/proxy/proxy.js';
import type { TrafficEntry } from '../../src/proxy/traffic.js';
import { RspClient } from '../../src/rsp/client.js';
import { FakeGdb, FakeQemu, type QemuScript } from './fakeQemu.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  qemu: FakeQemu;
  proxy: GdbProxy;
  traffic: TrafficEntry[];
  stops: ProxyStop[];
  problems: string[];
}

async function setup(script?: QemuScript, o: { running?: boolean; offerNoAck?: boolean } = {}): Promise<Setup> {
  const qemu = await FakeQemu.listen(script, o.running ?? false);
  qemu.offerNoAck = o.offerNoAck ?? false;
  cleanups.push(() => qemu.close());
  const proxy = await GdbProxy.start({ gdbstub: qemu.endpoint, listen: '127.0.0.1:0', connectMs: 500 });
  cleanups.push(() => proxy.close());
  const traffic: TrafficEntry[] = [];
  const stops: ProxyStop[] = [];
  const problems: string[] = [];
  proxy.on('traffic', (e) => traffic.push(e));
  proxy.on('stop', (s) => stops.push(s));
  proxy.on('problem', (m) => problems.push(m));
  return { qemu, proxy, traffic, stops, problems };
}

async function gdbOn(s: Setup): Promise<FakeGdb> {
  const gdb = await FakeGdb.connect(s.proxy.addressLabel);
  cleanups.push(() => gdb.close());
  await s.qemu.until(() => s.qemu.connections.length >= 2 && !s.qemu.last.closed, 'the connection for GDB');
  return gdb;
}

async function pagewalkOn(s: Setup): Promise<RspClient> {
  const client = await RspClient.over(s.proxy.connect(), { timeoutMs: 3000 }, 'the proxy');
  cleanups.push(() => client.close());
  return client;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connecting to QEMU', () => {
  it('connects once at start to learn what QEMU offers, then lets go, resuming a guest its connecting stopped', async () => {
    const s = await setup(undefined, { running: true });
    await s.qemu.until(() => s.qemu.connections[0]!.closed, 'the first connection to close');
    expect(s.qemu.connections[0]!.packets).toEqual(['qSupported', 'vCont?', 'qqemu.PhyMemMode', 'D']);
    expect(s.qemu.running).toBe(true);
    expect(s.proxy.holdingQemu).toBe(false);
  });

  it('leaves a stopped guest stopped', async () => {
    const s = await setup();
    await s.qemu.until(() => s.qemu.connections[0]!.closed, 'the first connection to close');
    expect(s.qemu.connections[0]!.packets).toEqual(['qSupported', 'vCont?', 'qqemu.PhyMemMode']);
    expect(s.qemu.running).toBe(false);
  });

  it('fails at start, with E_UPSTREAM, when nothing listens or another client holds the gdbstub', async () => {
    const qemu = await FakeQemu.listen();
    cleanups.push(() => qemu.close());
    const [host, port] = qemu.endpoint.split(':');
    const other = connect(Number(port), host);
    cleanups.push(() => void other.destroy());
    await qemu.until(() => qemu.connections.length === 1, 'the other client');
    const busy = await GdbProxy.start({ gdbstub: qemu.endpoint, listen: '127.0.0.1:0', connectMs: 300 }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ProxyError);
    expect((busy as ProxyError).code).toBe('E_UPSTREAM');
    expect((busy as Error).message).toMatch(/in use by another client/);
    const refused = await GdbProxy.start({ gdbstub: '127.0.0.1:1', listen: '127.0.0.1:0', connectMs: 300 }).catch((e: unknown) => e);
    expect((refused as ProxyError).code).toBe('E_UPSTREAM');
    expect((refused as Error).message).toMatch(/refused/);
  });

  it('rejects addresses it cannot use with E_ADDRESS', async () => {
    const e = await GdbProxy.start({ gdbstub: '127.0.0.1:1234', listen: 'nonsense' }).catch((x: unknown) => x);
    expect((e as ProxyError).code).toBe('E_ADDRESS');
  });
});

describe('GDB sees a faithful stub', () => {
  it('forwards packets and answers unchanged and in order, acknowledging on both sides', async () => {
    const s = await setup((p) => (p === 'qXfer:exec-file:read::0,ffb' ? 'l/a}b#c$d*e' : undefined));
    const gdb = await gdbOn(s);
    const asked = ['qSupported:multiprocess+;swbreak+', '?', 'g', 'mffffffff80101000,8', 'X1000,4:}$#*', 'qXfer:exec-file:read::0,ffb'];
    const answers: string[] = [];
    for (const p of asked) answers.push(await gdb.request(p));
    const conn = s.qemu.last;
    // QEMU got exactly GDB's packets, after the proxy's own handshake.
    expect(conn.packets.slice(3)).toEqual(asked);
    expect(answers).toEqual([
      'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+',
      'T05thread:p01.01;',
      '221100000000000007101080ffffffff460000000000110000000000',
      'cdcdcdcdcdcdcdcd',
      '',
      'l/a}b#c$d*e',
    ]);
    // One '+' to GDB per packet of GDB's; one '+' to QEMU per answer.
    expect(gdb.controls).toEqual(asked.map(() => '+'));
    const acksToQemu = conn.stream.filter((x) => x === '+').length;
    expect(acksToQemu).toBe(conn.packets.length);
  });

  it('expands QEMU\'s run-length encoding and escapes what must be escaped on the way to GDB', async () => {
    const s = await setup();
    s.qemu.runLength = true;
    const gdb = await gdbOn(s);
    expect(await gdb.request('m1000,40')).toBe('cd'.repeat(0x40));
    s.qemu.runLength = false;
    await expect(gdb.request('m1000,40')).resolves.toBe('cd'.repeat(0x40));
  });

  it('passes a monitor command\'s output packets, then its OK, in order', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    gdb.send(`qRcmd,${Buffer.from('info mem').toString('hex')}`);
    await gdb.packetCount(3);
    expect(gdb.packets).toEqual(['O' + Buffer.from('line 1\r\n').toString('hex'), 'O' + Buffer.from('line 2\r\n').toString('hex'), 'OK']);
  });

  it('negotiates no-ack mode on both connections when QEMU offers it', async () => {
    const s = await setup(undefined, { offerNoAck: true });
    const gdb = await gdbOn(s);
    expect(await gdb.request('qSupported:multiprocess+')).toContain('QStartNoAckMode+');
    expect(await gdb.request('QStartNoAckMode')).toBe('OK');
    gdb.ackMode = false;
    const before = { gdb: gdb.controls.length, qemu: s.qemu.last.stream.length };
    expect(await gdb.request('g')).toMatch(/^2211/);
    expect(await gdb.request('mffffffff80101000,8')).toBe('cdcdcdcdcdcdcdcd');
    expect(gdb.controls.length).toBe(before.gdb);
    expect(s.qemu.last.stream.slice(before.qemu)).toEqual(['g', 'mffffffff80101000,8']);
  });

  it('answers a damaged packet from GDB with -, and sends the last answer again when GDB asks with -', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    gdb.raw('$g#00');
    await sleep(50);
    expect(gdb.controls).toEqual(['-']);
    expect(await gdb.request('g')).toMatch(/^2211/);
    gdb.raw('-');
    await gdb.packetCount(2);
    expect(gdb.packets[1]).toBe(gdb.packets[0]);
    expect(s.qemu.last.packets.filter((p) => p === 'g')).toHaveLength(1);
    expect(s.problems.some((m) => /checksum/.test(m))).toBe(true);
  });

  it('gives a stray stop reply to GDB while it waits for nothing, and tells pagewalk\'s clients', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    const pw = await pagewalkOn(s);
    const seen = new Promise((resolve) => pw.once('stop', resolve));
    await gdb.request('?');
    s.qemu.stopsBy('T05thread:p01.01;watch:ffffffff80102018;');
    await gdb.packetCount(2);
    expect(gdb.packets[1]).toBe('T05thread:p01.01;watch:ffffffff80102018;');
    expect(await seen).toMatchObject({ kind: 'stopped', signal: 5, watch: { kind: 'write', address: 0xffffffff80102018n } });
    expect(s.stops.at(-1)).toMatchObject({ cause: 'nobody', toGdb: true, payload: 'T05thread:p01.01;watch:ffffffff80102018;' });
  });

  it('sends again a packet of GDB\'s that QEMU took for Ctrl-C (the guest was resumed behind its back), and GDB gets its answer, not the stop', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    s.qemu.running = true; // a QMP `cont`
    expect(await gdb.request('g')).toMatch(/^2211/);
    expect(s.qemu.last.stream.slice(-5).filter((x) => x !== '+')).toEqual(['g', '(lost)', 'g']);
    expect(gdb.packets).not.toContain('T02thread:p01.01;');
    expect(s.problems.some((m) => /took it for an interrupt/.test(m))).toBe(true);
  });
});

describe('pagewalk slips its requests in', () => {
  it('only while GDB waits for nothing and the guest is stopped', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    const pw = await pagewalkOn(s);
    // GDB's read is held in QEMU: pagewalk's waits.
    s.qemu.holding = true;
    gdb.send('mffffffff80102000,8');
    await s.qemu.received(/^mffffffff80102000/);
    const read = pw.request('g');
    await sleep(50);
    expect(s.qemu.last.packets).not.toContain('g');
    s.qemu.release();
    await expect(read).resolves.toMatch(/^2211/);
    const conn = s.qemu.last;
    expect(conn.packets.indexOf('g')).toBeGreaterThan(conn.packets.indexOf('mffffffff80102000,8'));
    // GDB runs the guest: pagewalk waits until it stops.
    gdb.send('vCont;c:p1.-1');
    await s.qemu.received(/^vCont;c/);
    const during = pw.request('mffffffff80102000,8');
    await sleep(50);
    expect(conn.packets.at(-1)).toBe('vCont;c:p1.-1');
    gdb.interrupt();
    await expect(during).resolves.toBe('cdcdcdcdcdcdcdcd');
    expect(gdb.packets.at(-1)).toBe('T02thread:p01.01;');
    expect(conn.stream.slice(conn.stream.indexOf('vCont;c:p1.-1')).filter((x) => x !== '+')).toEqual(['vCont;c:p1.-1', '^C', 'mffffffff80102000,8']);
    expect(s.stops.at(-1)).toMatchObject({ cause: 'gdb', toGdb: true });
  });

  it('holds GDB\'s run until pagewalk\'s requests in flight are answered, and GDB\'s Ctrl-C behind it', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    const pw = await pagewalkOn(s);
    s.qemu.holding = true;
    const read = pw.request('m110000,8');
    await s.qemu.received(/^m110000/);
    gdb.send('vCont;c:p1.-1');
    gdb.interrupt();
    await sleep(50);
    // Nothing may reach QEMU while the guest runs, not even the '+' for the read's answer: the run
    // waits for that answer, and the Ctrl-C waits behind the run.
    const conn = s.qemu.last;
    expect(conn.stream).not.toContain('vCont;c:p1.-1');
    expect(conn.stream).not.toContain('^C');
    s.qemu.release();
    await expect(read).resolves.toBe('cdcdcdcdcdcdcdcd');
    await gdb.packetCount(2);
    expect(gdb.packets[1]).toBe('T02thread:p01.01;');
    const tail = conn.stream.slice(conn.stream.indexOf('m110000,8'));
    expect(tail.filter((x) => x !== '+')).toEqual(['m110000,8', 'vCont;c:p1.-1', '^C']);
    // The read's answer was acknowledged before the run began.
    expect(tail.indexOf('+')).toBeLessThan(tail.indexOf('vCont;c:p1.-1'));
  });

  it('lets GDB go first: a packet of GDB\'s ends a run of pagewalk\'s with Ctrl-C', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    const pw = await pagewalkOn(s);
    const run = pw.cont();
    await s.qemu.received(/^vCont;c$/);
    expect(await gdb.request('g')).toMatch(/^2211/);
    await expect(run).resolves.toMatchObject({ kind: 'stopped', signal: 2 });
    const conn = s.qemu.last;
    expect(conn.stream.slice(conn.stream.indexOf('vCont;c')).filter((x) => x !== '+')).toEqual(['vCont;c', '^C', 'g']);
    expect(s.stops.at(-1)).toMatchObject({ cause: 'pagewalk', toGdb: false });
  });

  it('survives GDB leaving mid-request: the answer is dropped, pagewalk goes on, and the next GDB takes over', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    const pw = await pagewalkOn(s);
    s.qemu.holding = true;
    gdb.send('mffffffff80102000,8');
    await s.qemu.received(/^mffffffff80102000/);
    gdb.close();
    await sleep(30);
    s.qemu.release();
    await expect(pw.request('mffffffff80102000,8')).resolves.toBe('cdcdcdcdcdcdcdcd');
    expect(s.traffic.some((e) => e.from === 'qemu' && e.for === 'gdb' && e.note === 'dropped')).toBe(true);
    const connections = s.qemu.connections.length;
    const next = await FakeGdb.connect(s.proxy.addressLabel);
    cleanups.push(() => next.close());
    expect(await next.request('?')).toBe('T05thread:p01.01;');
    // pagewalk held the connection; the new GDB took it over.
    expect(s.qemu.connections.length).toBe(connections);
  });

  it('keeps QEMU\'s PhyMemMode GDB\'s for GDB\'s packets, while pagewalk reads physical memory', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    const pw = await pagewalkOn(s);
    expect(await pw.physicalMemoryMode()).toBe(false);
    await pw.setPhysicalMemoryMode(true);
    expect(await pw.physicalMemoryMode()).toBe(true);
    expect(Buffer.from(await pw.readMemory(0x110000n, 4)).toString('hex')).toBe('abababab');
    expect(await gdb.request('qqemu.PhyMemMode')).toBe('0');
    expect(await gdb.request('mffffffff80102000,4')).toBe('cdcdcdcd');
    expect(Buffer.from(await pw.readMemory(0x110000n, 4)).toString('hex')).toBe('abababab');
    // GDB chooses physical mode itself; a client that never chose sees GDB's.
    expect(await gdb.request('Qqemu.PhyMemMode:1')).toBe('OK');
    const other = await pagewalkOn(s);
    expect(await other.physicalMemoryMode()).toBe(true);
    expect(await gdb.request('Qqemu.PhyMemMode:0')).toBe('OK');
    const conn = s.qemu.last;
    conn.packets.forEach((p, i) => {
      if (/^m110000/.test(p)) expect(conn.modes[i]).toBe(true);
      if (/^mffffffff/.test(p)) expect(conn.modes[i]).toBe(false);
    });
    await pw.close();
    await other.close();
    gdb.close();
    await s.qemu.until(() => conn.closed, 'the connection to be let go');
    expect(s.qemu.phyMemMode).toBe(false);
  });

  it('answers pagewalk\'s packets that would change GDB\'s session itself', async () => {
    const s = await setup();
    const gdb = await gdbOn(s);
    await gdb.request('?');
    const pw = await pagewalkOn(s);
    // `?` answers with the last stop (QEMU's own `?` would clear GDB's breakpoints).
    await expect(pw.haltReason()).resolves.toMatchObject({ kind: 'stopped', signal: 5 });
    const answers = [];
    for (const p of ['Hg0', 'Hc-1', 'k', 'QNonStop:1', 'Qqemu.sstep=0', 'vAttach;1', 'D;1']) answers.push(await pw.request(p));
    expect(answers).toEqual(['', '', '', '', '', '', 'OK']);
    expect(s.qemu.last.packets.filter((p) => /^(\?|H|k|QNonStop|Qqemu\.sstep|vAttach|D)/.test(p))).toEqual(['?']);
  });

  it('answers each pagewalk client in its own order, local answers and QEMU\'s interleaved', async () => {
    const s = await setup();
    const pw = await pagewalkOn(s);
    await pw.request('qAttached');
    s.qemu.holding = true;
    const replies = Promise.all([pw.request('mffffffff80102000,2'), pw.request('vCont?'), pw.request('g'), pw.request('Hg0')]);
    await s.qemu.received(/^g$/);
    s.qemu.release();
    const [m, v, g, h] = await replies;
    expect([m, v, g.slice(0, 4), h]).toEqual(['cdcd', 'vCont;c;C;s;S', '2211', '']);
  });
});

describe('GDB sessions', () => {
  it('serves a second GDB only once the first has left', async () => {
    const s = await setup();
    const first = await gdbOn(s);
    expect(await first.request('?')).toBe('T05thread:p01.01;');
    const second = await FakeGdb.connect(s.proxy.addressLabel);
    cleanups.push(() => second.close());
    second.send('?');
    await sleep(100);
    expect(second.packets).toEqual([]);
    first.close();
    await second.packetCount(1);
    expect(second.packets).toEqual(['T05thread:p01.01;']);
  });

  it('opens a new connection for the next GDB after one detached, which stops the guest as QEMU would', async () => {
    const s = await setup();
    const first = await gdbOn(s);
    expect(await first.request('D;1')).toBe('OK');
    expect(s.qemu.running).toBe(true);
    expect(s.proxy.guestRunning).toBe(true);
    const detachedConn = s.qemu.last;
    first.close();
    await s.qemu.until(() => detachedConn.closed, 'the detached connection to close');
    expect(s.qemu.running).toBe(true);
    const second = await FakeGdb.connect(s.proxy.addressLabel);
    cleanups.push(() => second.close());
    await second.packetCount(1);
    expect(second.packets[0]).toBe('T02thread:01;');
    expect(s.qemu.running).toBe(false);
    expect(await second.request('?')).toBe('T05thread:p01.01;');
  });

  it('ends when QEMU goes away, closing GDB\'s connection after passing on W00', async () => {
    const s = await setup((p) => (p === 'k' ? 'W00' : undefined));
    const gdb = await gdbOn(s);
    gdb.send('k');
    await gdb.packetCount(1);
    expect(gdb.packets[0]).toBe('W00');
    s.qemu.hangUp();
    await expect(s.proxy.ended).resolves.toBe('the guest exited (W00)');
    await sleep(20);
    expect(gdb.closed).toBe(true);
  });
});
