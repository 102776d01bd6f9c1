/**
 * The real bin/pagewalk, built into dist/ as `npm ci` builds it, in a child process.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, buildDist, spawnCli } from '../helpers/cli.js';

beforeAll(() => buildDist(), 120_000);

describe('bin/pagewalk', () => {
  it('runs under plain node from dist/ and prints the version', async () => {
    const r = await spawnCli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('walks the example and exits 0, or 1 for a faulting access', async () => {
    const ok = await spawnCli(['walk', '--example', '--access', 'exec', '0xffffffff80001234']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('= 0x201234  4K page, r-x supervisor global');
    expect(ok.stdout).not.toContain('\x1b['); // not a TTY: no colour
    const fault = await spawnCli(['walk', '--example', '--access', 'write', '0xffffffff80001234']);
    expect(fault.status).toBe(1);
  });

  it('exits 2 on a typo and 3 on a missing dump, with one line and no stack trace', async () => {
    const typo = await spawnCli(['mpa', '--example']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).not.toMatch(/\n\s+at /);
    const missing = await spawnCli(['regs', '--dump', '/nonexistent/dump.core']);
    expect(missing.status).toBe(3);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });

  it('runs the demo to the triple-fault prediction', async () => {
    const r = await spawnCli(['demo']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('TRIPLE FAULT');
    expect(r.stdout).toContain('safe');
  });

  it('stays quiet when its output pipe closes early (pagewalk ... | head -1)', () => {
    // Enough output (thousands of walks) to overflow the pipe after head has gone.
    const vas = Array.from({ length: 3000 }, (_, i) => `0x${(0xffffffff80000000n + BigInt(i) * 8n).toString(16)}`).join(' ');
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" walk --example ${vas} | head -1`], { encoding: 'utf8' });
    expect(r.stdout).toBe('0xffffffff80000000  4-level, CR3 0x100000, supervisor read\n');
    expect(r.stderr).toBe('');
  });

  it('keeps watching a guest halted with interrupts off until Ctrl-C, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'watch-cr3', '--emu', 'good', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const deadline = Date.now() + 20_000;
    while (!out.includes('"cr3-write"')) {
      if (Date.now() > deadline) throw new Error(`no cr3-write event: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // `good` ends in cli; hlt: nothing more happens, and the watch must still be there to interrupt.
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBeNull();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('"event":"stopped"');
  });
});
