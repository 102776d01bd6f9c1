/**
 * `pagewalk serve` as users run it: bad input exits 2 before anything listens (an open address
 * without --token among it), a real process serves the emulator until SIGTERM (exit 0), a token
 * from the environment guards an address other machines reach, and a lost target ends the server
 * with exit 3 after the clients were told.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { RpcCallError, TestClient } from './wsClient.js';

const CLI_MAIN = fileURLToPath(new URL('../launch/cliMain.ts', import.meta.url));
const children: ChildProcessWithoutNullStreams[] = [];
const clients: TestClient[] = [];

/** Starts `pagewalk ARGS` from the sources; resolves with the child and its first JSON line. */
async function start(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcessWithoutNullStreams; first: Record<string, unknown>; stderr: () => string; exit: Promise<number> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exit = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : -2))));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pagewalk ${args.join(' ')} printed nothing in 30 s: ${stderr}`)), 30_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      resolve(JSON.parse(l) as Record<string, unknown>);
    });
    void exit.then((code) => reject(new Error(`pagewalk ${args.join(' ')} exited ${code}: ${stderr}`)));
  });
  return { child, first, stderr: () => stderr, exit };
}

async function connect(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('pagewalk serve: bad input', () => {
  it('refuses an address other machines reach without --token, with exit 2 and one line', async () => {
    const r = await cli(['serve', '--ws', '0.0.0.0:0', '--emu', 'good']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--token/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('exits 2 for a missing or malformed --ws, and 3 for a target that cannot be opened', async () => {
    const none = await cli(['serve', '--emu', 'good']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--ws HOST:PORT/);
    const bad = await cli(['serve', '--ws', 'localhost:99999', '--example']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/expected HOST:PORT/);
    const typo = await cli(['serve', '--ws', '127.0.0.1:0', '--emu', 'god']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/did you mean "good"/);
    const missing = await cli(['serve', '--ws', '127.0.0.1:0', '--dump', '/nonexistent/guest.core']);
    expect(missing.status).toBe(3);
  });
});

describe('pagewalk serve: a real process', () => {
  it('serves the emulator to a client until SIGTERM, then exits 0', async () => {
    const s = await start(['serve', '--ws', '127.0.0.1:0', '--emu', 'good', '--json']);
    expect(s.first).toMatchObject({ event: 'listening', debuggable: true, allowWrite: false });
    const c = await connect(s.first.url as string);
    expect((await c.call<{ rip: string }>('regs')).rip).toBe('0xffffffff80000000');
    expect((await c.call<{ cause: string }>('step')).cause).toBe('step');
    expect((await c.waitFor('stopped')).params.cause).toBe('step');
    const refused = await c.call('writeRegister', { name: 'rip', value: 0 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcCallError);
    expect((refused as RpcCallError).stable).toBe('E_WRITE_REFUSED');
    const closed = c.closed();
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
    expect(await closed).toBe(1001);
  });

  it('listens on every address with a token from PAGEWALK_TOKEN, refusing clients without it', async () => {
    const token = 'from-the-environment-42';
    const s = await start(['serve', '--ws', '0.0.0.0:0', '--example', '--json'], { PAGEWALK_TOKEN: token });
    const url = (s.first.url as string).replace('0.0.0.0', '127.0.0.1');
    await expect(TestClient.connect(url)).rejects.toMatchObject({ status: 401 });
    const c = await connect(`${url}?token=${token}`);
    expect((await c.call<{ mode: string }>('regs')).mode).toBe('4-level');
    s.child.kill('SIGINT');
    expect(await s.exit).toBe(0);
  });

  it('tells the clients and exits 3 when the target is lost', async () => {
    const emu = await start(['emu', '--scenario', 'good', '--gdb-port', '0', '--json']);
    const s = await start(['serve', '--ws', '127.0.0.1:0', '--gdb', emu.first.gdb as string, '--json']);
    const c = await connect(s.first.url as string);
    expect((await c.call<{ rip: string }>('regs')).rip).toBe('0xffffffff80000000');
    emu.child.kill('SIGTERM');
    await emu.exit;
    // The server hears of it from the gdbstub's goodbye, or at the latest from the next request.
    const e = await c.call('walk', { va: '0xffffffff80000000' }).catch((x: unknown) => x);
    if (e instanceof RpcCallError) expect(e.stable).toBe('E_LOST');
    expect((await c.waitFor('targetLost')).params.message).toBeTruthy();
    expect(await s.exit).toBe(3);
    expect(s.stderr()).toMatch(/target is gone/);
  });
});
