/**
 * `pagewalk proxy` on the command line: bad input exits 2, an unreachable gdbstub 3, and a real
 * process (signals and all) against the fake QEMU: it says where it listens (JSON), serves GDB and
 * the control socket, logs the traffic, and stops cleanly on SIGINT, removing its control socket.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RspTarget } from '../../src/target/rspTarget.js';
import { cli } from '../helpers/cli.js';
import { FakeGdb, FakeQemu } from './fakeQemu.js';

const CLI_MAIN = fileURLToPath(new URL('../launch/cliMain.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('pagewalk proxy', () => {
  it('says what is missing, with exit 2, and exits 3 when the gdbstub cannot be reached', async () => {
    const missing = await cli(['proxy', '--gdb', '127.0.0.1:1234']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/pass --listen HOST:PORT/);
    const bad = await cli(['proxy', '--listen', 'somewhere', '--gdb', '127.0.0.1:1234']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/'somewhere' is not an address to listen on/);
    const refused = await cli(['proxy', '--listen', '127.0.0.1:0', '--gdb', '127.0.0.1:1']);
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/^pagewalk: cannot connect to 127\.0\.0\.1:1: connection refused/);
  });

  it('runs as a process: listens, serves GDB and the control socket, logs both ways, and stops on SIGINT', async () => {
    const qemu = await FakeQemu.listen((p) => (p.startsWith('qRcmd,') ? '' : undefined));
    cleanups.push(() => qemu.close());
    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-proxy-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'traffic.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'proxy', '--listen', '127.0.0.1:0', '--gdb', qemu.endpoint, '--json', '--log', log], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    cleanups.push(() => void (child.exitCode === null && child.kill('SIGKILL')));
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    const first = await new Promise<{ gdb: string; control: string; gdbstub: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line in 20 s: ${out}`)), 20_000);
      child.stdout.on('data', () => {
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as { gdb: string; control: string; gdbstub: string });
        }
      });
    });
    expect(first).toMatchObject({ gdbstub: `the gdbstub at ${qemu.endpoint}` });
    const gdb = await FakeGdb.connect(first.gdb);
    cleanups.push(() => gdb.close());
    expect(await gdb.request('?')).toBe('T05thread:p01.01;');
    const t = await RspTarget.open(`unix:${first.control}`);
    expect(Buffer.from(await t.readPhysical(0x1000n, 2)).toString('hex')).toBe('abab');
    await t.close();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toContain('gdb-connected');
    const traffic = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { from: string; to: string; payload: string });
    expect(traffic).toContainEqual(expect.objectContaining({ from: 'gdb', to: 'qemu', payload: '?' }));
    expect(traffic).toContainEqual(expect.objectContaining({ from: 'qemu', to: 'proxy', payload: 'T05thread:p01.01;' }));
    expect(traffic.some((e) => e.from.startsWith('pagewalk#') && e.to === 'qemu' && e.payload === 'm1000,2')).toBe(true);
    expect(existsSync(dirname(first.control))).toBe(false);
    expect(gdb.closed).toBe(true);
  });
});
