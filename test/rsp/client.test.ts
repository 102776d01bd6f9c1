/**
 * RspClient against a scripted stub: negotiation, acks and resends, pipelining, timeouts on an
 * injected clock, E_BUSY while running, unsolicited stops, monitor output, memory chunking under
 * PacketSize, registers through target.xml, detach, and connection failures. The same client
 * against real QEMU is in qemu.test.ts.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RspClient, type RspClientOptions } from '../../src/rsp/client.js';
import { parseEndpoint } from '../../src/rsp/endpoint.js';
import { RspError } from '../../src/rsp/errors.js';
import { freeTcpPort } from '../helpers/qemu.js';
import { ManualClock as ManualTimers } from '../helpers/manualClock.js';
import { FakeStub, HANDLED, QEMU_SUPPORTED, standardReply, type StubHandler } from './fakeStub.js';

const open: { stub: FakeStub; client: RspClient | null }[] = [];

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.client?.close();
    await o.stub.close();
  }
});

/** What a test's stub does with a packet: as {@link StubHandler}, or undefined for the standard reply. */
type Script = (payload: string, stub: FakeStub) => ReturnType<StubHandler> | undefined;

/** A stub answering with `script` first and the standard replies after, and a client connected to it. */
async function session(script: Script = () => undefined, options: RspClientOptions = {}, supported = QEMU_SUPPORTED) {
  const stub = await FakeStub.listen((p, s) => {
    const r = script(p, s);
    if (r !== undefined) return r;
    return standardReply(p, supported) ?? '';
  });
  const entry: { stub: FakeStub; client: RspClient | null } = { stub, client: null };
  open.push(entry);
  const client = await RspClient.connect(stub.endpoint, options);
  entry.client = client;
  return { stub, client };
}

async function rejection(p: Promise<unknown>): Promise<RspError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RspError);
  return e as RspError;
}

describe('RspClient handshake', () => {
  it('offers its features, takes PacketSize and multiprocess, and acknowledges every packet', async () => {
    const { stub, client } = await session();
    expect(stub.received).toEqual(['qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+', 'vCont?']);
    expect(client.packetSize).toBe(0x1000);
    expect(client.multiprocess).toBe(true);
    expect(client.ackMode).toBe(true);
    expect(client.features.get('qXfer:features:read')).toBe(true);
    await client.request('qAttached');
    await stub.until(() => stub.controls.length >= 3);
    expect(stub.controls).toEqual(['+', '+', '+']);
  });

  it('does not offer multiprocess when told not to', async () => {
    const { stub, client } = await session(undefined, { multiprocess: false });
    expect(stub.received[0]).toBe('qSupported:swbreak+;hwbreak+;vContSupported+');
    expect(client.multiprocess).toBe(false);
  });

  it('turns acknowledgements off where the stub offers QStartNoAckMode', async () => {
    const { stub, client } = await session(
      (p, s) => {
        if (p !== 'QStartNoAckMode') return undefined;
        s.sendRaw('+');
        s.send('OK');
        s.ackMode = false;
        return HANDLED;
      },
      {},
      'PacketSize=4000;QStartNoAckMode+',
    );
    expect(client.ackMode).toBe(false);
    expect(client.packetSize).toBe(0x4000);
    expect(await Promise.all([client.request('qfThreadInfo'), client.request('qsThreadInfo')])).toEqual(['', '']);
    // Acks for the qSupported reply and the OK only, none for vCont? and later replies.
    expect(stub.controls).toEqual(['+', '+']);
    expect(stub.received).toContain('vCont?');
  });

  it('stays in ack mode when asked to', async () => {
    const { stub, client } = await session(undefined, { noAckMode: false }, 'PacketSize=1000;QStartNoAckMode+');
    expect(client.ackMode).toBe(true);
    expect(stub.received).not.toContain('QStartNoAckMode');
  });

  it('assumes a PacketSize of 0x400 when the stub gives none, and refuses a tiny one', async () => {
    const { client } = await session(undefined, {}, 'qXfer:features:read+');
    expect(client.packetSize).toBe(0x400);
    const stub = await FakeStub.listen((p) => (p.startsWith('qSupported') ? 'PacketSize=10' : ''));
    open.push({ stub, client: null });
    expect(await rejection(RspClient.connect(stub.endpoint))).toMatchObject({ code: 'E_PROTOCOL', message: expect.stringContaining('too small') });
  });

  it('keeps the T02 a stub sends on connect as lastStop, without resending anything', async () => {
    const stub = await FakeStub.listen((p) => standardReply(p) ?? '');
    open.push({ stub, client: null });
    void stub.client().then(() => stub.send('T02thread:01;'));
    const client = await RspClient.connect(stub.endpoint);
    open.at(-1)!.client = client;
    expect(client.lastStop).toMatchObject({ kind: 'stopped', signal: 2, thread: { pid: null, tid: 1 } });
    expect(await client.request('qAttached')).toBe('');
    expect(stub.received.filter((p) => p.startsWith('qSupported'))).toHaveLength(1);
  });
});

describe('RspClient requests', () => {
  it('pipelines requests and matches replies in order, even when the replies arrive in one piece', async () => {
    const { stub, client } = await session((p, s) => {
      if (p !== 'm3,1') return p.startsWith('m') ? null : undefined;
      // Acknowledge and answer all three at once.
      s.sendRaw('+$aa#c2$bb#c4$cc#c6');
      return HANDLED;
    });
    const replies = await Promise.all([client.request('m1,1'), client.request('m2,1'), client.request('m3,1')]);
    expect(replies).toEqual(['aa', 'bb', 'cc']);
    expect(stub.received.slice(-3)).toEqual(['m1,1', 'm2,1', 'm3,1']);
  });

  it("resends a packet the stub answers with '-', and keeps the replies in order", async () => {
    let nacked = false;
    const { stub, client } = await session((p, s) => {
      if (p === 'p0' && !nacked) {
        nacked = true;
        s.sendRaw('-');
        return HANDLED;
      }
      if (p === 'p0') return '0100000000000000';
      if (p === 'p1') return '0200000000000000';
      return undefined;
    });
    const [a, b] = await Promise.all([client.request('p0'), client.request('p1')]);
    expect([a, b]).toEqual(['0100000000000000', '0200000000000000']);
    expect(stub.received.slice(-3)).toEqual(['p0', 'p1', 'p0']);
  });

  it("answers a damaged packet with '-' and takes the stub's resend", async () => {
    const { stub, client } = await session((p, s) => {
      if (p !== 'qC') return undefined;
      s.sendRaw('+$QC01#00'); // wrong checksum (should be c5)
      void s.until(() => s.controls.includes('-')).then(() => s.send('QC01'));
      return HANDLED;
    });
    const errors: RspError[] = [];
    client.on('protocolError', (e) => errors.push(e));
    expect(await client.request('qC')).toBe('QC01');
    expect(stub.controls).toContain('-');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/E_CHECKSUM/);
  });

  it('times out on the injected clock, drops the late reply, and gives the next request its own', async () => {
    const timers = new ManualTimers();
    let late: (() => void) | null = null;
    const { stub, client } = await session(
      (p, s) => {
        if (p !== 'm0,1') return undefined;
        s.sendRaw('+');
        late = () => s.send('11');
        return HANDLED;
      },
      { timers, timeoutMs: 1000 },
    );
    const first = client.request('m0,1');
    await stub.packets(3);
    timers.advance(999);
    timers.advance(1);
    const e = await rejection(first);
    expect(e).toMatchObject({ code: 'E_TIMEOUT', message: expect.stringMatching(/no reply to "m0,1" from 127\.0\.0\.1:\d+ within 1000 ms/) });
    late!();
    expect(await client.request('qC')).toBe('');
    expect(timers.pending).toBe(0);
  });

  it('waits for ever when told to', async () => {
    const timers = new ManualTimers();
    const { client } = await session((p, s) => (p === 'qRcmd,78' ? (setTimeout(() => s.send('OK'), 20), null) : undefined), { timers });
    const reply = client.monitor('x', { timeoutMs: null });
    timers.advance(1e9);
    expect(await reply).toBe('');
  });

  it('refuses a packet larger than PacketSize - 1 (QEMU silently drops those)', async () => {
    const { client } = await session();
    const e = await rejection(client.request(`M0,800:${'00'.repeat(0x800)}`));
    expect(e).toMatchObject({ code: 'E_UNSUPPORTED', message: "a 4103-byte packet exceeds the stub's PacketSize of 4096" });
  });

  it('reports junk and packets nobody asked for as protocol errors, and carries on', async () => {
    const { stub, client } = await session();
    const errors: string[] = [];
    client.on('protocolError', (e) => errors.push(e.message));
    stub.sendRaw('junk');
    stub.send('OK');
    await stub.until(() => stub.controls.length >= 3);
    expect(await client.request('qC')).toBe('');
    expect(errors).toEqual([
      "damaged packet from the stub (E_FRAMING): unexpected byte 0x6a 'j' between packets",
      'a packet no request was waiting for: "OK"',
    ]);
  });
});

describe('RspClient execution', () => {
  it('refuses requests while the target runs (E_BUSY); interrupt() sends 0x03 and returns the stop', async () => {
    const { stub, client } = await session((p) => (p === 'vCont;c' ? null : undefined));
    const running = client.cont();
    await stub.until(() => stub.received.includes('vCont;c'));
    expect(client.running).toBe(true);
    expect(await rejection(client.readRegister('rip'))).toMatchObject({ code: 'E_BUSY' });
    const interrupted = client.interrupt();
    await stub.until(() => stub.controls.includes('\x03'));
    stub.send('T02thread:p01.01;');
    const [a, b] = await Promise.all([running, interrupted]);
    expect(a).toMatchObject({ kind: 'stopped', signal: 2, thread: { pid: 1, tid: 1 } });
    expect(b).toEqual(a);
    expect(client.running).toBe(false);
    expect(await client.interrupt()).toBeNull(); // not running: nothing to wait for
  });

  it('holds a run back until earlier requests are answered (QEMU takes our late + for an interrupt), and an interrupt behind it', async () => {
    const { stub, client } = await session((p) => (p === 'qAttached' || p === 'vCont;c' ? null : undefined));
    const attached = client.request('qAttached');
    const running = client.cont();
    const interrupted = client.interrupt();
    expect(client.running).toBe(true);
    await stub.until(() => stub.received.includes('qAttached'));
    // Nothing goes out behind the unanswered request: no run, no 0x03.
    await new Promise((r) => setTimeout(r, 30));
    expect(stub.received).not.toContain('vCont;c');
    expect(stub.controls).not.toContain('\x03');
    stub.send('1');
    expect(await attached).toBe('1');
    await stub.until(() => stub.received.includes('vCont;c') && stub.controls.includes('\x03'));
    // The + for qAttached's reply went out before the run, the 0x03 after it.
    expect(stub.controls.lastIndexOf('+')).toBeLessThan(stub.controls.indexOf('\x03'));
    stub.send('T02thread:p01.01;');
    expect((await Promise.all([running, interrupted]))[0]).toMatchObject({ kind: 'stopped', signal: 2 });
  });

  it('uses c and s when the stub has no vCont, and vCont;s with the stopped thread when it has', async () => {
    const plain = await session((p) => (p === 'vCont?' ? '' : p === 'c' || p === 's' ? 'T05thread:01;' : undefined));
    expect(await plain.client.cont()).toMatchObject({ signal: 5 });
    expect(await plain.client.step()).toMatchObject({ signal: 5 });
    expect(plain.stub.received.slice(-2)).toEqual(['c', 's']);
    const v = await session((p) => (p.startsWith('vCont;') ? 'T05thread:p01.02;' : undefined));
    await v.client.step();
    await v.client.step();
    expect(v.stub.received.filter((p) => p.startsWith('vCont;'))).toEqual(['vCont;s', 'vCont;s:p1.2']);
  });

  it('emits unsolicited stops and exits, and fails waiting requests with E_CLOSED when the stub hangs up', async () => {
    const { stub, client } = await session((p) => (p === 'm0,1' ? null : undefined));
    const stops: unknown[] = [];
    const exits: unknown[] = [];
    let closed = false;
    client.on('stop', (s) => stops.push(s));
    client.on('exit', (x) => exits.push(x));
    client.on('close', () => (closed = true));
    const waited = client.waitForStop();
    stub.send('T05thread:p01.01;watch:ffffffff80102000;');
    expect(await waited).toMatchObject({ watch: { kind: 'write', address: 0xffffffff80102000n } });
    expect(stops).toHaveLength(1);
    const pending = client.request('m0,1');
    await stub.packets(3);
    stub.send('W00');
    await stub.until(() => stub.controls.length >= 4);
    stub.hangUp();
    const e = await rejection(pending);
    expect(e).toMatchObject({ code: 'E_CLOSED', message: expect.stringContaining('after the target exited (0)') });
    expect(exits).toEqual([{ kind: 'exited', code: 0, pid: null }]);
    expect(closed).toBe(true);
    expect(await rejection(client.request('qC'))).toMatchObject({ code: 'E_CLOSED' });
  });

  it('resends the packet a running stub took for an interrupt (its T02 came instead of a +)', async () => {
    let eaten = false;
    const { stub, client } = await session((p, s) => {
      if (p === 'm10,1' && !eaten) {
        eaten = true;
        s.send('T02thread:p01.01;'); // no '+': QEMU stopped the VM and dropped the packet
        return HANDLED;
      }
      return p === 'm10,1' ? '5a' : undefined;
    });
    const stops: unknown[] = [];
    client.on('stop', (s) => stops.push(s));
    await client.request('qC'); // the stub has answered once: a T02 now cannot be the connect-time one
    expect(await client.request('m10,1')).toBe('5a');
    expect(stub.received.filter((p) => p === 'm10,1')).toHaveLength(2);
    expect(stops).toMatchObject([{ signal: 2 }]);
  });

  it('inserts and removes breakpoints, with clear errors for unsupported types and refusals', async () => {
    const { stub, client } = await session((p) => (p.startsWith('Z3') ? '' : p.startsWith('z0') ? 'E22' : p.startsWith('Z') ? 'OK' : undefined));
    await client.insertBreakpoint(0, 0xffffffff80101007n, 1);
    await client.insertBreakpoint(2, 0x7100n, 8);
    expect(stub.received.slice(-2)).toEqual(['Z0,ffffffff80101007,1', 'Z2,7100,8']);
    expect(await rejection(client.insertBreakpoint(3, 0x1000n, 4))).toMatchObject({
      code: 'E_UNSUPPORTED',
      message: 'inserting a read watchpoint at 0x1000: the stub does not support Z3',
    });
    expect(await rejection(client.removeBreakpoint(0, 0x1000n, 1))).toMatchObject({
      code: 'E_REPLY',
      errno: 0x22,
      message: 'removing a software breakpoint at 0x1000: the stub answered E22 (EINVAL: invalid argument)',
    });
    await expect(client.insertBreakpoint(5 as 0, 0n, 1)).rejects.toThrow(RangeError);
  });

  it('collects monitor output from O packets, or from a hex final reply', async () => {
    const { client } = await session((p) => {
      if (p === `qRcmd,${Buffer.from('info status').toString('hex')}`) return [`O${Buffer.from('VM status: paused\r\n').toString('hex')}`, 'OK'];
      if (p === `qRcmd,${Buffer.from('hex').toString('hex')}`) return Buffer.from('all in one\n').toString('hex');
      if (p === `qRcmd,${Buffer.from('bad').toString('hex')}`) return 'E01';
      if (p.startsWith('qRcmd')) return '';
      return undefined;
    });
    const outputs: string[] = [];
    client.on('output', (o) => outputs.push(o));
    expect(await client.monitor('info status')).toBe('VM status: paused\r\n');
    expect(await client.monitor('hex')).toBe('all in one\n');
    expect(await rejection(client.monitor('bad'))).toMatchObject({ code: 'E_REPLY', errno: 1 });
    expect(await rejection(client.monitor('none'))).toMatchObject({ code: 'E_UNSUPPORTED' });
    expect(outputs).toEqual([]);
  });
});

describe('RspClient memory', () => {
  /** A stub with `packetSize` whose memory holds byte (address & 0xff), refusing [0x3000, 0x4000) with E14. */
  function memoryStub(): Script {
    return (p) => {
      const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(p);
      if (m) {
        const at = parseInt(m[1]!, 16);
        const n = parseInt(m[2]!, 16);
        if (at < 0x4000 && at + n > 0x3000) return 'E14';
        return Array.from({ length: n }, (_, i) => ((at + i) & 0xff).toString(16).padStart(2, '0')).join('');
      }
      const w = /^M([0-9a-f]+),([0-9a-f]+):/.exec(p);
      if (w) {
        const at = parseInt(w[1]!, 16);
        return at < 0x4000 && at + parseInt(w[2]!, 16) > 0x3000 ? 'E14' : 'OK';
      }
      return undefined;
    };
  }

  it('reads in aligned chunks of at most PacketSize / 2 bytes, pipelined', async () => {
    const { stub, client } = await session(memoryStub(), { window: 4 }, 'PacketSize=100');
    const data = await client.readMemory(0x1f0n, 0x190);
    expect(data).toEqual(Uint8Array.from({ length: 0x190 }, (_, i) => (0x1f0 + i) & 0xff));
    expect(stub.received.filter((p) => p.startsWith('m'))).toEqual(['m1f0,10', 'm200,80', 'm280,80', 'm300,80']);
  });

  it('asks again for the rest when the stub sends fewer bytes', async () => {
    const { stub, client } = await session((p) => (p === 'm0,8' ? '00112233' : p === 'm4,4' ? '44556677' : undefined));
    expect(await client.readMemory(0n, 8)).toEqual(Uint8Array.of(0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77));
    expect(stub.received.slice(-2)).toEqual(['m0,8', 'm4,4']);
  });

  it('says which chunk the stub refused', async () => {
    const { client } = await session(memoryStub());
    const e = await rejection(client.readMemory(0x2000n, 0x3000));
    expect(e).toMatchObject({
      code: 'E_REPLY',
      errno: 0x14,
      message:
        'reading 0x800 bytes at 0x3000 (chunk 3 of 6 of the 0x3000 bytes at 0x2000): the stub answered E14 (EFAULT: the address is not mapped, or not readable)',
    });
    expect(await client.readMemory(0x2ffcn, 4)).toEqual(Uint8Array.of(0xfc, 0xfd, 0xfe, 0xff));
  });

  it('rejects malformed and empty memory replies, and ranges beyond 64 bits', async () => {
    const { client } = await session((p) => (p === 'm0,2' ? 'zz00' : p === 'm10,2' ? '' : p === 'm20,2' ? '001122' : undefined));
    expect(await rejection(client.readMemory(0n, 2))).toMatchObject({ code: 'E_PROTOCOL' });
    expect(await rejection(client.readMemory(0x10n, 2))).toMatchObject({ code: 'E_UNSUPPORTED' });
    expect(await rejection(client.readMemory(0x20n, 2))).toMatchObject({ code: 'E_PROTOCOL' });
    await expect(client.readMemory(0xffffffffffffffffn, 2)).rejects.toThrow(RangeError);
    expect(await client.readMemory(0x10n, 0)).toEqual(new Uint8Array(0));
  });

  it('writes in M packets that fit PacketSize - 1, aligned', async () => {
    const { stub, client } = await session(memoryStub(), {}, 'PacketSize=100');
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    await client.writeMemory(0xffffffff80000010n, data);
    const writes = stub.received.filter((p) => p.startsWith('M'));
    expect(writes.map((p) => p.slice(0, p.indexOf(':')))).toEqual([
      'Mffffffff80000010,30',
      'Mffffffff80000040,40',
      'Mffffffff80000080,40',
      'Mffffffff800000c0,40',
      'Mffffffff80000100,3c',
    ]);
    for (const w of writes) expect(w.length).toBeLessThanOrEqual(0x100 - 1);
    expect(Buffer.from(writes.map((w) => w.slice(w.indexOf(':') + 1)).join(''), 'hex')).toEqual(Buffer.from(data));
    const e = await rejection(client.writeMemory(0x3000n, Uint8Array.of(1)));
    expect(e).toMatchObject({ code: 'E_REPLY', message: expect.stringMatching(/^writing 0x1 bytes at 0x3000: the stub answered E14/) });
  });

  it('remembers the PhyMemMode it found, and detach puts it back, removes breakpoints and sends D;pid', async () => {
    let mode = '1';
    const { stub, client } = await session((p) => {
      if (p === 'qqemu.PhyMemMode') return mode;
      if (p.startsWith('Qqemu.PhyMemMode:')) return ((mode = p.slice(-1)), 'OK');
      if (p.startsWith('Z') || p.startsWith('z')) return 'OK';
      if (p === 'D;1') return 'OK';
      return undefined;
    });
    expect(await client.physicalMemoryMode()).toBe(true);
    await client.setPhysicalMemoryMode(false);
    await client.setPhysicalMemoryMode(true);
    await client.setPhysicalMemoryMode(false);
    await client.insertBreakpoint(1, 0x7000n, 1);
    await client.insertBreakpoint(0, 0x7002n, 1);
    await client.removeBreakpoint(0, 0x7002n, 1);
    await client.detach();
    expect(client.isClosed).toBe(true);
    expect(mode).toBe('1');
    // The first set read the old mode; detach writes it back, asks qC for the pid (none seen yet), and detaches.
    expect(stub.received.filter((p) => p === 'qqemu.PhyMemMode')).toHaveLength(2);
    expect(stub.received.slice(-4)).toEqual(['z1,7000,1', 'Qqemu.PhyMemMode:1', 'qC', 'D;1']);
  });
});

describe('RspClient registers', () => {
  it('reads target.xml in chunks through its include, then p/P by name, full width', async () => {
    const { stub, client } = await session((p) => {
      if (p === 'p1') return 'f0ff000000000000';
      if (p === 'p2') return '02000000';
      if (p === 'p3') return 'xxxxxxxxxxxxxxxx';
      if (p === 'p0') return '00';
      if (p.startsWith('P')) return 'OK';
      if (p === 'g') return `${'11'.repeat(8)}f0ff000000000000${'02000000'}${'00'.repeat(4)}`;
      return undefined;
    });
    expect(await client.readRegister('rip')).toBe(0xfff0n);
    expect(await client.readRegister('eflags')).toBe(2n);
    const d = await client.targetDescription();
    expect(d.registers.map((r) => `${r.name}:${r.regnum}`)).toEqual(['rax:0', 'rip:1', 'eflags:2', 'cr3:3']);
    expect(stub.received.filter((p) => p.startsWith('qXfer')).length).toBeGreaterThan(2);
    await client.writeRegister('cr3', 0x110000n);
    await client.writeRegister('eflags', 0x46n);
    expect(stub.received.filter((p) => p.startsWith('P'))).toEqual(['P3=0000110000000000', 'P2=46000000']);
    expect(await client.readRegisters()).toEqual(
      new Map([
        ['rax', 0x1111111111111111n],
        ['rip', 0xfff0n],
        ['eflags', 2n],
      ]),
    );
  });

  it('says what is wrong: unknown register, unavailable value, wrong width, value too large', async () => {
    const { client } = await session((p) => (p === 'p3' ? 'xxxxxxxxxxxxxxxx' : p === 'p0' ? '00' : undefined));
    expect(await rejection(client.readRegister('cr9'))).toMatchObject({
      code: 'E_UNSUPPORTED',
      message: "the target has no register 'cr9' (it has rax, rip, eflags, cr3)",
    });
    expect(await rejection(client.readRegister('cr3'))).toMatchObject({ code: 'E_UNSUPPORTED', message: 'reading register cr3: the stub says its value is unavailable' });
    expect(await rejection(client.readRegister('rax'))).toMatchObject({ code: 'E_PROTOCOL' });
    await expect(client.writeRegister('eflags', 1n << 32n)).rejects.toThrow(RangeError);
  });

  it('fails with E_UNSUPPORTED when the stub has no target description, and tries again later', async () => {
    let offered = false;
    const { client } = await session((p) => (p.startsWith('qXfer') && !offered ? '' : p === 'p1' ? '0100000000000000' : undefined));
    expect(await rejection(client.readRegister('rip'))).toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('qXfer:features:read') });
    offered = true;
    expect(await client.readRegister('rip')).toBe(1n);
  });
});

describe('RspClient connections', () => {
  it('times out on a peer that accepts and never answers', async () => {
    // Reads (so it sees the client hang up) and never writes.
    const server = createServer((s) => s.on('error', () => undefined).resume());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const e = await rejection(RspClient.connect(`127.0.0.1:${port}`, { timeoutMs: 200 }));
      expect(e).toMatchObject({ code: 'E_TIMEOUT', message: `no reply to "qSupported:multiprocess+;swbreak+;hwbrea..." from 127.0.0.1:${port} within 200 ms` });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('fails with E_CLOSED when the connection is refused, or the socket does not exist', async () => {
    const port = await freeTcpPort();
    expect(await rejection(RspClient.connect({ host: '127.0.0.1', port }))).toMatchObject({
      code: 'E_CLOSED',
      message: `cannot connect to 127.0.0.1:${port}: connection refused (is QEMU running with -gdb on that address?)`,
    });
    expect(await rejection(RspClient.connect('unix:/nonexistent/pagewalk-gdb.sock'))).toMatchObject({
      code: 'E_CLOSED',
      message: 'cannot connect to /nonexistent/pagewalk-gdb.sock: no such socket',
    });
  });

  it('parses endpoints', () => {
    expect(parseEndpoint('127.0.0.1:1234')).toEqual({ host: '127.0.0.1', port: 1234 });
    expect(parseEndpoint('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    expect(parseEndpoint(':1234')).toEqual({ host: '127.0.0.1', port: 1234 });
    expect(parseEndpoint('[::1]:1234')).toEqual({ host: '::1', port: 1234 });
    expect(parseEndpoint('unix:/tmp/gdb.sock')).toEqual({ path: '/tmp/gdb.sock' });
    expect(parseEndpoint('/tmp/gdb.sock')).toEqual({ path: '/tmp/gdb.sock' });
    expect(parseEndpoint('./gdb.sock')).toEqual({ path: './gdb.sock' });
    expect(() => parseEndpoint('localhost')).toThrow(/expected HOST:PORT/);
    expect(() => parseEndpoint('h:70000')).toThrow(/1\.\.65535/);
  });
});
