/**
 * The CLI and the bundled emulator: `--emu SCENARIO` as a target for regs, walk and map (the
 * scenario at its hand-over), the same answers through `pagewalk emu`'s gdbstub and QMP (served in
 * process, read back with --gdb/--qmp), `emu --list`, bad input, and the real process ending on
 * SIGINT/SIGTERM with exit 0, after QEMU's goodbyes (SHUTDOWN host-signal, W00).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { SCENARIOS, findScenario } from '../../src/emu/scenarios/index.js';
import { QmpClient } from '../../src/qmp/client.js';
import { RspClient } from '../../src/rsp/client.js';
import { cli } from '../helpers/cli.js';
import { spawnEmu } from '../helpers/emuProcess.js';

const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pagewalk-cli-emu-'));
  dirs.push(d);
  return d;
}

/** `pagewalk emu ...` running in this process; resolves with where it listens (its --json line). */
async function serveInProcess(argv: string[]): Promise<{ gdb: string; qmp: string | null; done: Promise<number>; stdout: () => string; stderr: () => string }> {
  let stdout = '';
  let stderr = '';
  const done = run(['emu', ...argv, '--json'], {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
  });
  const deadline = Date.now() + 10_000;
  while (!stdout.includes('\n')) {
    if (Date.now() > deadline) throw new Error(`pagewalk emu did not say where it listens: ${stdout} ${stderr}`);
    const early = await Promise.race([done, new Promise((r) => setTimeout(r, 10)).then(() => null)]);
    if (early !== null) throw new Error(`pagewalk emu ended with ${early}: ${stderr}`);
  }
  const line = JSON.parse(stdout.split('\n')[0]!) as { gdb: string; qmp: string | null };
  return { ...line, done, stdout: () => stdout, stderr: () => stderr };
}

describe('--emu SCENARIO as a target', () => {
  it('regs shows the scenario at its hand-over', async () => {
    const good = findScenario('good').build().config.cpu;
    const r = await cli(['regs', '--emu', 'good', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { cr3: { value: string }; rip: string; cr0: { value: string } };
    expect(j.cr3.value).toBe(`0x${good.cr3.toString(16)}`);
    expect(j.rip).toBe(`0x${good.rip.toString(16)}`);
    expect(r.stderr).toBe('');
  });

  it('walk and map read the scenario\'s tables: the kernel entry maps and executes', async () => {
    const rip = findScenario('good').build().config.cpu.rip;
    const w = await cli(['walk', '--emu', 'good', '--access', 'exec', `0x${rip.toString(16)}`, '--json']);
    expect(w.status).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({ mapped: true, access: { kind: 'exec', faults: false } });
    const m = await cli(['map', '--emu', 'good', '--json']);
    expect(m.status).toBe(0);
    const ranges = (JSON.parse(m.stdout) as { ranges: { va: string; execute: boolean }[] }).ranges;
    expect(ranges.some((x) => BigInt(x.va) <= rip && x.execute)).toBe(true);
  });

  it('an unknown scenario, or two targets, is bad input (exit 2) in one line that names the valid scenarios', async () => {
    const r = await cli(['regs', '--emu', 'god']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^pagewalk: --emu: unknown scenario "god": did you mean "good"\? valid scenarios are good, /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const both = await cli(['regs', '--emu', 'good', '--example']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('pass one target, not --example and --emu SCENARIO');
  });
});

describe('pagewalk emu', () => {
  it('--list names every scenario with its title; --list --json gives name, title and description', async () => {
    const text = await cli(['emu', '--list']);
    expect(text.status).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(SCENARIOS.length);
    SCENARIOS.forEach((s, i) => expect(lines[i]).toMatch(new RegExp(`^${s.name} +${s.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)));
    const json = await cli(['emu', '--list', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(SCENARIOS.map((s) => ({ name: s.name, title: s.title, description: s.description })));
  });

  it('refuses a bad scenario name, a missing or bad port, with exit 2 and one line', async () => {
    const bad = await cli(['emu', '--scenario', 'nope', '--gdb-port', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`valid scenarios are ${SCENARIOS.map((s) => s.name).join(', ')}`);
    for (const argv of [['--scenario', 'good'], ['--gdb-port', '0'], ['--scenario', 'good', '--gdb-port', '70000'], ['--scenario', 'good', '--gdb-port', '0', '--gdb-socket', '/tmp/x']]) {
      const r = await cli(['emu', ...argv]);
      expect(r.status, argv.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), argv.join(' ')).toHaveLength(1);
    }
  });

  it('refuses a port in use with exit 2', async () => {
    const first = await serveInProcess(['--scenario', 'good', '--gdb-port', '0']);
    const port = first.gdb.split(':')[1]!;
    const second = await cli(['emu', '--scenario', 'good', '--gdb-port', port]);
    expect(second.status).toBe(2);
    expect(second.stderr).toBe(`pagewalk: cannot listen on 127.0.0.1:${port}: the address is in use\n`);
    const c = await RspClient.connect(first.gdb);
    c.request('k').catch(() => undefined);
    expect(await first.done).toBe(0);
  });

  it('serves on a unix socket, and --run starts the guest at once: connecting stops it (T02)', async () => {
    const path = join(tempDir(), 'gdb.sock');
    const served = await serveInProcess(['--scenario', 'good', '--gdb-socket', path, '--run']);
    expect(served.gdb).toBe(path);
    expect(JSON.parse(served.stdout().split('\n')[0]!)).toMatchObject({ scenario: 'good', state: 'running' });
    // The guest prints on its serial port as it runs; it ends up halted, which is still running.
    const deadline = Date.now() + 10_000;
    while (!served.stderr().includes('[serial] ok\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(served.stderr()).toContain('[serial] pagewalk scenario good: kernel started\n');
    const c = await RspClient.connect(path);
    expect(c.lastStop).toMatchObject({ kind: 'stopped', signal: 2 });
    expect(await c.readRegister('cr3')).toBe(findScenario('good').build().cr3.kernel);
    c.request('k').catch(() => undefined);
    expect(await served.done).toBe(0);
  });

  it('serves the scenario: regs, walk and map through --gdb and --qmp give the answers --emu gives', async () => {
    const dir = tempDir();
    const served = await serveInProcess(['--scenario', 'good', '--gdb-port', '0', '--qmp', join(dir, 'qmp.sock')]);
    expect(served.qmp).toBe(join(dir, 'qmp.sock'));
    const rip = `0x${findScenario('good').build().config.cpu.rip.toString(16)}`;
    for (const argv of [['regs'], ['walk', rip, '0xffff800000001000', '--access', 'exec'], ['map'], ['check']]) {
      const local = await cli([...argv, '--emu', 'good', '--json']);
      const viaGdb = await cli([...argv, '--gdb', served.gdb, '--json']);
      const viaBoth = await cli([...argv, '--gdb', served.gdb, '--qmp', served.qmp!, '--json']);
      const viaQmp = await cli([...argv, '--qmp', served.qmp!, '--json']);
      expect(local.stdout, argv.join(' ')).toMatch(/"0x310000"|"cr3": "0x310000"/);
      expect(viaGdb.stdout, argv.join(' ')).toBe(local.stdout);
      expect(viaBoth.stdout, argv.join(' ')).toBe(local.stdout);
      expect(viaQmp.stdout, argv.join(' ')).toBe(local.stdout);
      expect([viaGdb.status, viaBoth.status, viaQmp.status]).toEqual([local.status, local.status, local.status]);
    }
    const q = await QmpClient.connect(served.qmp!);
    await q.execute('quit');
    expect(await served.done).toBe(0);
    await q.close();
  });
});

describe('the real process', () => {

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} closes the sockets (SHUTDOWN host-signal on QMP, W00 on the gdbstub) and exits 0`, async () => {
      const dir = tempDir();
      const emu = await spawnEmu(['--scenario', 'good', '--gdb-port', '0', '--qmp', join(dir, 'q.sock')]);
      try {
        const q = await QmpClient.connect(emu.info.qmp!);
        const gdb = await RspClient.connect(emu.info.gdb);
        const exit = new Promise((resolve) => gdb.once('exit', resolve));
        const shutdown = q.waitForEvent('SHUTDOWN', 10_000);
        emu.child.kill(signal);
        expect((await shutdown).data).toEqual({ guest: false, reason: 'host-signal' });
        expect(await exit).toMatchObject({ kind: 'exited', code: 0 });
        expect(await emu.exited).toBe(0);
        await q.close();
      } finally {
        if (emu.child.exitCode === null) emu.child.kill('SIGKILL');
      }
    }, 60_000);
  }
});
