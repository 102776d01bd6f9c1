/**
 * The emulator's QMP monitor over a real unix socket, byte for byte where QEMU's exact text matters
 * (greeting, key orders, CRLF, event shapes with an injected clock), and through pagewalk's own
 * QmpClient: negotiation, run states, events, set-action and the triple-fault recovery of
 * QEMU-FACTS §2.6, the human monitor, QOM, memory saves, one client at a time, malformed input.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/qmp/client.js';
import { parseInfoRegisters, parseXp } from '../../src/qmp/hmp.js';
import { RspClient } from '../../src/rsp/client.js';
import { CODE_VA, L } from './fixtures.js';
import { COUNTER_VA, RawQmp, haltProgram, serve, sleep, tripleFaultProgram, until, type ServeOptions, type Served } from './serverFixtures.js';

const CLOCK = { seconds: 1700000000, microseconds: 123456 };
const TS = '{"timestamp": {"seconds": 1700000000, "microseconds": 123456}';

let served: Served | null = null;
const open: { close(): unknown }[] = [];

async function start(o: ServeOptions = {}): Promise<Served> {
  served = await serve({ ...o, qmp: { clock: () => CLOCK, threadId: 4242, ...o.qmp } });
  return served;
}

/** A raw connection, greeted and negotiated. */
async function negotiated(s: Served): Promise<RawQmp> {
  const q = await RawQmp.connect(s.qmpPath);
  open.push(q);
  await q.waitLines(1);
  expect(await q.send('{"execute": "qmp_capabilities"}')).toEqual(['{"return": {}}']);
  return q;
}

async function client(s: Served): Promise<QmpClient> {
  const q = await QmpClient.connect(s.qmpPath, { timeoutMs: 2000 });
  open.push(q);
  return q;
}

afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
  await served?.close();
  served = null;
});

describe('greeting and negotiation', () => {
  it("greets in QEMU 7.2's shape and refuses commands until qmp_capabilities", async () => {
    const s = await start();
    const q = await RawQmp.connect(s.qmpPath);
    open.push(q);
    expect(await q.waitLines(1)).toEqual([
      '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "pagewalk-emu"}, "capabilities": ["oob"]}}',
    ]);
    expect(await q.send('{"execute": "query-status"}')).toEqual([
      '{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}',
    ]);
    expect(await q.send('{"execute": "qmp_capabilities", "id": 1}')).toEqual(['{"return": {}, "id": 1}']);
    expect(await q.send('{"execute": "qmp_capabilities", "id": 2}')).toEqual([
      '{"id": 2, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}',
    ]);
    expect(await q.send('{"execute": "query-status", "id": {"a": [1]}}')).toEqual([
      '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": {"a": [1]}}',
    ]);
  });

  it('ends every line with CRLF', async () => {
    const s = await start();
    const q = await RawQmp.connect(s.qmpPath);
    open.push(q);
    const chunks: string[] = [];
    q.socket.on('data', (d) => chunks.push(String(d)));
    await q.send('{"execute": "qmp_capabilities"}', 2);
    expect(chunks.join('')).toMatch(/^\{"QMP": [^\r\n]*\}\r\n\{"return": \{\}\}\r\n$/);
  });
});

describe('malformed input gets QEMU\'s error answer, and the monitor stays usable', () => {
  it('answers JSON errors, non-objects, unknown members and commands, and bad arguments', async () => {
    const s = await start();
    const q = await negotiated(s);
    expect(await q.send('{"execute": }')).toEqual([expect.stringMatching(/^\{"error": \{"class": "GenericError", "desc": "JSON parse error, .+"\}\}$/)]);
    expect(await q.send('[1, 2]')).toEqual(['{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}']);
    expect(await q.send('"text"')).toEqual(['{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}']);
    expect(await q.send('{"foo": 1}')).toEqual(['{"error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}']);
    expect(await q.send('{}')).toEqual(['{"error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}']);
    expect(await q.send('{"execute": 5, "id": 3}')).toEqual(['{"id": 3, "error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}']);
    expect(await q.send('{"execute": "query-status", "arguments": [1]}')).toEqual([
      '{"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}',
    ]);
    expect(await q.send('{"execute": "nonsense"}')).toEqual(['{"error": {"class": "CommandNotFound", "desc": "The command nonsense has not been found"}}']);
    expect(await q.send('{"execute": "query-status", "arguments": {"x": 1}}')).toEqual(['{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}']);
    expect(await q.send('{"execute": "human-monitor-command"}')).toEqual(['{"error": {"class": "GenericError", "desc": "Parameter \'command-line\' is missing"}}']);
    expect(await q.send('{"execute": "human-monitor-command", "arguments": {"command-line": 7}}')).toEqual([
      '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'command-line\', expected: string"}}',
    ]);
    expect(await q.send('{"execute": "set-action", "arguments": {"reboot": "bogus"}}')).toEqual([
      '{"error": {"class": "GenericError", "desc": "Parameter \'reboot\' does not accept value \'bogus\'"}}',
    ]);
    expect(await q.send('{"execute": "query-status", "id": 9}')).toEqual(['{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 9}']);
  });

  it('puts an object split over lines back together, as QEMU does, and drops what can never parse', async () => {
    const s = await start();
    const q = await negotiated(s);
    q.write('{"execute": "query-status",\n');
    await sleep(30);
    expect(q.lines).toHaveLength(2);
    expect(await q.send('"id": 5}')).toEqual(['{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 5}']);
    expect(await q.send('{"execute": "query-status"}}')).toEqual([expect.stringContaining('JSON parse error')]);
    // A truncated object followed by a new one can never parse: an error, not a wait for ever.
    q.write('{"execute": "query-status"\n');
    expect(await q.send('{"execute": "query-status"}')).toEqual([expect.stringContaining('JSON parse error')]);
    expect(await q.send('{"execute": "query-status"}')).toEqual([expect.stringContaining('"status": "prelaunch"')]);
    q.write(Buffer.from([0xff, 0xfe, 0x0a]));
    await q.waitLines(7);
    expect(q.lines[6]).toContain('JSON parse error');
    expect(await q.send(`{"execute": "${'x'.repeat(3 << 20)}"}`)).toEqual(['{"error": {"class": "GenericError", "desc": "JSON parse error, message too large"}}']);
    expect(await q.send('{"execute": "query-status"}')).toEqual([expect.stringContaining('"status": "prelaunch"')]);
  });
});

describe('run states and events', () => {
  it('cont, stop and system_reset move through running, paused and prelaunch with RESUME, STOP and RESET', async () => {
    // QEMU's default actions (reboot=reset): a reset resets.
    const s = await start({ tripleFault: 'reset' });
    const q = await negotiated(s);
    expect(await q.send('{"execute": "cont"}', 2)).toEqual([`${TS}, "event": "RESUME"}`, '{"return": {}}']);
    expect(await q.send('{"execute": "query-status"}')).toEqual(['{"return": {"status": "running", "singlestep": false, "running": true}}']);
    expect(await q.send('{"execute": "cont"}')).toEqual(['{"return": {}}']);
    expect(await q.send('{"execute": "stop"}', 2)).toEqual([`${TS}, "event": "STOP"}`, '{"return": {}}']);
    expect(await q.send('{"execute": "query-status"}')).toEqual(['{"return": {"status": "paused", "singlestep": false, "running": false}}']);
    expect(await q.send('{"execute": "stop"}')).toEqual(['{"return": {}}']);
    expect(await q.send('{"execute": "system_reset"}', 2)).toEqual([
      `${TS}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}`,
      '{"return": {}}',
    ]);
    expect(await q.send('{"execute": "query-status"}')).toEqual(['{"return": {"status": "prelaunch", "singlestep": false, "running": false}}']);
    expect(s.m.getRegister('rip')).toBe(CODE_VA);
    expect(s.m.readVirtual(COUNTER_VA, 1)[0]).toBe(0);
  });

  it('a reset of a running guest keeps it running; with reboot=shutdown it is a shutdown instead', async () => {
    const s = await start({ tripleFault: 'reset' });
    const q = await client(s);
    await q.execute('cont');
    await sleep(20);
    await q.execute('system_reset');
    expect(await q.execute('query-status')).toMatchObject({ status: 'running', running: true });
    await q.execute('set-action', { reboot: 'shutdown', shutdown: 'pause' });
    const mark = q.eventCount;
    await q.execute('system_reset');
    expect((await q.waitForEvent('SHUTDOWN', 2000, { since: mark })).data).toEqual({ guest: false, reason: 'host-qmp-system-reset' });
    expect(await q.execute('query-status')).toMatchObject({ status: 'shutdown', running: false });
  });

  it('a debugger stop is "debug"; every step is a RESUME and a STOP', async () => {
    const s = await start();
    const q = await client(s);
    const gdb = await RspClient.connect(s.gdb);
    open.push({ close: () => gdb.close() });
    const mark = q.eventCount;
    await gdb.step();
    await gdb.step();
    expect(await q.execute('query-status')).toMatchObject({ status: 'debug', running: false });
    await q.waitForEvent('STOP', 2000, { since: mark });
    await until(() => q.eventCount >= mark + 4, 'four events');
    expect(await q.hmp('info status')).toBe('VM status: paused (debug)\n');
  });

  it('QMP works behind GDB: a QMP cont then a breakpoint gives the idle GDB client an unsolicited T05, a QMP stop a T02', async () => {
    const s = await start();
    const q = await client(s);
    const gdb = await RspClient.connect(s.gdb);
    open.push({ close: () => gdb.close() });
    await gdb.insertBreakpoint(0, s.code.address('after_read'), 1);
    const bp = gdb.waitForStop({ timeoutMs: 2000 });
    await q.execute('cont');
    expect(await bp).toMatchObject({ kind: 'stopped', signal: 5 });
    await gdb.removeBreakpoint(0, s.code.address('after_read'), 1);
    const stopped = gdb.waitForStop({ timeoutMs: 2000 });
    await q.execute('cont');
    await sleep(10);
    await q.execute('stop');
    expect(await stopped).toMatchObject({ kind: 'stopped', signal: 2 });
  });

  it('a triple fault with reboot=shutdown,shutdown=pause: SHUTDOWN then STOP, state kept, cont refused; the set-action dance recovers it', async () => {
    const s = await start({ program: tripleFaultProgram() });
    const q = await negotiated(s);
    const lines = await q.send('{"execute": "cont"}', 4);
    expect(lines).toEqual([
      `${TS}, "event": "RESUME"}`,
      '{"return": {}}',
      `${TS}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`,
      `${TS}, "event": "STOP"}`,
    ]);
    expect(await q.send('{"execute": "query-status"}')).toEqual(['{"return": {"status": "shutdown", "singlestep": false, "running": false}}']);
    expect(s.m.getRegister('cr3')).toBe(0x123000n);
    expect(await q.send('{"execute": "cont"}')).toEqual(['{"error": {"class": "GenericError", "desc": "Resetting the Virtual Machine is required"}}']);
    // With reboot=shutdown a reset is a shutdown request: the VM stays down.
    expect(await q.send('{"execute": "system_reset"}', 2)).toEqual([
      `${TS}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-system-reset"}}`,
      '{"return": {}}',
    ]);
    expect(s.session.state).toBe('shutdown');
    expect(await q.send('{"execute": "set-action", "arguments": {"reboot": "reset"}}')).toEqual(['{"return": {}}']);
    expect(await q.send('{"execute": "system_reset"}', 2)).toEqual([
      `${TS}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}`,
      '{"return": {}}',
    ]);
    expect(s.session.state).toBe('prelaunch');
    expect(s.m.getRegister('rip')).toBe(CODE_VA);
    expect(await q.send('{"execute": "set-action", "arguments": {"reboot": "shutdown"}}')).toEqual(['{"return": {}}']);
    await q.send('{"execute": "cont"}', 4);
    expect(s.session.state).toBe('shutdown');
  });

  it('with shutdown=poweroff a triple fault ends the emulator: SHUTDOWN, then EOF on QMP and W00 on the gdbstub', async () => {
    const s = await start({ program: tripleFaultProgram() });
    const q = await negotiated(s);
    const gdb = await RspClient.connect(s.gdb);
    open.push({ close: () => gdb.close() });
    expect(await q.send('{"execute": "set-action", "arguments": {"shutdown": "poweroff"}}')).toEqual(['{"return": {}}']);
    const exit = new Promise((resolve) => gdb.once('exit', resolve));
    const ran = gdb.cont().catch((e: unknown) => e);
    expect(await exit).toMatchObject({ kind: 'exited', code: 0 });
    await ran;
    await until(() => q.closed, 'QMP to close');
    expect(q.lines.at(-1)).toBe(`${TS}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`);
    expect(s.session.hasEnded).toBe(true);
  });

  it('with reboot=reset a triple-faulting guest resets again and again at a reboot\'s pace, each a RESET event', async () => {
    const s = await start({ program: tripleFaultProgram(), tripleFault: 'reset' });
    const q = await client(s);
    const mark = q.eventCount;
    await q.execute('cont');
    await sleep(250);
    const resets = q.eventCount - mark - 1;
    const last = await q.waitForEvent('RESET', 2000, { since: mark });
    expect(last.data).toEqual({ guest: true, reason: 'guest-reset' });
    expect(resets).toBeGreaterThanOrEqual(2);
    expect(resets).toBeLessThan(20);
    expect(await q.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('quit answers, then SHUTDOWN host-qmp-quit, then closes; the gdbstub says W00', async () => {
    const s = await start();
    const q = await negotiated(s);
    const gdb = await RspClient.connect(s.gdb);
    open.push({ close: () => gdb.close() });
    const exit = new Promise((resolve) => gdb.once('exit', resolve));
    expect(await q.send('{"execute": "quit"}', 2)).toEqual(['{"return": {}}', `${TS}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`]);
    await until(() => q.closed, 'QMP to close');
    expect(await exit).toMatchObject({ kind: 'exited', code: 0 });
  });

  it('sends no events before capabilities are negotiated', async () => {
    const s = await start();
    const q = await RawQmp.connect(s.qmpPath);
    open.push(q);
    await q.waitLines(1);
    s.session.cont();
    s.session.stop();
    await sleep(30);
    expect(q.lines).toHaveLength(1);
  });
});

describe('commands', () => {
  it('human-monitor-command runs the HMP commands; info status follows the state', async () => {
    const s = await start({ program: haltProgram() });
    const q = await client(s);
    expect(await q.hmp('info status')).toBe('VM status: paused (prelaunch)\n');
    const regs = parseInfoRegisters(await q.hmp('info registers'));
    expect([regs.rip, regs.rsp, regs.halted]).toEqual([CODE_VA, 0xffffffff803ff000n, false]);
    await q.execute('cont');
    await until(() => s.m.cpu.halted, 'the hlt');
    expect(await q.hmp('info status')).toBe('VM status: running\n');
    expect(parseInfoRegisters(await q.hmp('info registers')).halted).toBe(true);
    await q.execute('stop');
    expect(await q.hmp('info status')).toBe('VM status: paused\n');
    // mov rcx, 7 (48 c7 c1 07 00 00 00), then hlt (f4), as one little-endian quadword.
    expect(parseXp(await q.hmp(`xp /1gx 0x${L.code.toString(16)}`)).values).toEqual([0xf400000007c1c748n]);
    expect(await q.execute('human-monitor-command', { 'command-line': 'stop' })).toBe('');
    expect(await q.execute('human-monitor-command', { 'command-line': 'nonsense' })).toBe("unknown command: 'nonsense'\r\n");
  });

  it('query-cpus-fast, qom-get and query-version answer in QEMU\'s shapes', async () => {
    const s = await start();
    const q = await client(s);
    expect(await q.execute('query-cpus-fast')).toEqual([
      { 'thread-id': 4242, props: { 'core-id': 0, 'thread-id': 0, 'socket-id': 0 }, 'qom-path': '/machine/unattached/device[0]', 'cpu-index': 0, target: 'x86_64' },
    ]);
    expect(await q.execute('qom-get', { path: '/machine/unattached/device[0]', property: 'phys-bits' })).toBe(40);
    expect(await q.execute('qom-get', { path: '/machine/unattached/device[0]', property: 'pdpe1gb' })).toBe(true);
    expect(await q.execute('qom-get', { path: '/machine/unattached/device[0]', property: 'type' })).toBe('max-x86_64-cpu');
    await expect(q.execute('qom-get', { path: '/machine/unattached/device[0]', property: 'nope' })).rejects.toMatchObject({
      errorClass: 'GenericError',
      desc: "Property 'max-x86_64-cpu.nope' not found",
    });
    await expect(q.execute('qom-get', { path: '/nope', property: 'x' })).rejects.toMatchObject({ errorClass: 'DeviceNotFound', desc: "Device '/nope' not found" });
    expect(await q.hmp('qom-get /machine/unattached/device[0] phys-bits')).toBe('40\n');
    expect(await q.hmp('qom-get /nope x')).toBe("Error: Device '/nope' not found\n");
    expect(await q.execute('query-version')).toEqual({ qemu: { micro: 22, minor: 2, major: 7 }, package: 'pagewalk-emu' });
    const names = ((await q.execute('query-commands')) as { name: string }[]).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['qmp_capabilities', 'query-status', 'stop', 'cont', 'system_reset', 'set-action', 'human-monitor-command', 'quit']));
  });

  it('pmemsave writes physical memory (zeros past RAM); memsave virtual memory, refusing an unmapped address', async () => {
    const s = await start();
    const q = await client(s);
    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-qmp-'));
    try {
      await q.execute('pmemsave', { val: L.code + 7, size: 8, filename: join(dir, 'p') });
      expect(readFileSync(join(dir, 'p')).toString('hex')).toBe('48ff042518002080');
      await q.execute('pmemsave', { val: L.ram - 2, size: 4, filename: join(dir, 'edge') });
      expect(readFileSync(join(dir, 'edge')).toString('hex')).toBe('00000000');
      // memsave takes the address as a signed int64, as QEMU does.
      await q.execute('memsave', { val: Number(BigInt.asIntN(64, s.code.address('top'))), size: 8, filename: join(dir, 'v') });
      expect(readFileSync(join(dir, 'v')).toString('hex')).toBe('48ff042518002080');
      await expect(q.execute('memsave', { val: -140737488355328, size: 64, filename: join(dir, 'x') })).rejects.toMatchObject({
        desc: 'Invalid addr 0xffff800000000000/size 64 specified',
      });
      await expect(q.execute('pmemsave', { val: 0, size: 1, filename: join(dir, 'no/such/dir') })).rejects.toMatchObject({
        desc: `Could not open '${join(dir, 'no/such/dir')}': No such file or directory`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('one client at a time', () => {
  it('a second client gets no greeting until the first leaves', async () => {
    const s = await start();
    const first = await client(s);
    await expect(QmpClient.connect(s.qmpPath, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'E_BUSY' });
    const waiting = await RawQmp.connect(s.qmpPath);
    open.push(waiting);
    await sleep(50);
    expect(waiting.lines).toEqual([]);
    await first.close();
    expect((await waiting.waitLines(1))[0]).toMatch(/^\{"QMP": /);
  });
});
