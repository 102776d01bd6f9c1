/**
 * Every script in examples/ runs as a real `node` process against the built package (each imports
 * 'pagewalk', which resolves to dist/ through package.json's exports), on the bundled emulator or
 * the example machine, and prints what a kernel developer would look for.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDist, type CliResult } from '../helpers/cli.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

/** Runs `node examples/NAME ARGS`. */
function example(name: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EXAMPLES + name, ...args], { cwd: EXAMPLES, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} ${args.join(' ')} did not finish in ${timeoutMs} ms: ${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

beforeAll(() => buildDist(), 180_000);

describe('examples/', () => {
  it('has a test for every script', () => {
    const scripts = readdirSync(EXAMPLES).filter((f) => f.endsWith('.mjs') && f !== 'target.mjs');
    expect(scripts.sort()).toEqual(['cr3-guard.mjs', 'cr3-log.mjs', 'framebuffer-aliases.mjs', 'kernel-half.mjs']);
  });

  it('kernel-half.mjs prints the upper half of the loaded tables, and of tables not loaded yet', async () => {
    const r = await example('kernel-half.mjs', ['--example']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('kernel half of CR3 0x100000 (4-level paging), from 0xffff800000000000:');
    expect(r.stdout).toContain('0xffff800000000000-0xffff8000ffffffff     4G  rw- supervisor  1G pages -> 0x0');
    expect(r.stdout).toContain('0xffffffff80000000-0xffffffff80003fff    16K  r-x supervisor global  4K pages -> 0x200000');
    expect(r.stdout).not.toMatch(/^ +0x0000/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('4 ranges, 4.0G mapped');
    const kernel = await example('kernel-half.mjs', ['--emu', 'good', '--cr3', '0x400000']);
    expect(kernel.status).toBe(0);
    expect(kernel.stdout).toContain('kernel half of CR3 0x400000');
    const bad = await example('kernel-half.mjs', ['--emu', 'nope']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown scenario "nope"/);
  });

  it('cr3-guard.mjs passes on good and fails on stack-unmapped, naming the walk that faults', async () => {
    const good = await example('cr3-guard.mjs', ['--emu', 'good', '--seconds', '2']);
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('CR3 switch #1 at 0xffffffff800000df (mov cr3, rax): 0x310000 -> 0x400000');
    expect(good.stdout).toContain('ok   RSP     0xffffffff80005ff0 (write) -> 0x205ff0');
    expect(good.stdout).toContain('1 CR3 switch checked: RIP, RSP and the IDT stay mapped');
    expect(good.stdout).not.toContain('FAIL');
    const bad = await example('cr3-guard.mjs', ['--emu', 'stack-unmapped', '--seconds', '10']);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('ok   RIP     0xffffffff800000db (exec)');
    expect(bad.stdout).toContain('FAIL RSP     0xffff8000003ffff0 (write): PD[1] at 0x405008 is not present (P=0)');
    expect(bad.stdout).toContain('FAILED: a CR3 switch would leave the CPU without its code, stack or IDT');
  });

  it('cr3-log.mjs logs each switch with what it lost and how the watch ended', async () => {
    const r = await example('cr3-log.mjs', ['--emu', 'stack-unmapped', '--seconds', '10']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('#1 0xffffffff800000d8 mov cr3, rax: CR3 0x310000 -> 0x400000  [triple-fault]');
    expect(r.stdout).toContain('lost 0xffff800000000000-0xffff8000003fffff     4M  rwx supervisor  (was -> 0x0)');
    expect(r.stdout).toMatch(/watch ended: the guest is shut down \(a triple fault\)/);
    const good = await example('cr3-log.mjs', ['--emu', 'good', '--seconds', '1']);
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('#1 0xffffffff800000df mov cr3, rax: CR3 0x310000 -> 0x400000  [safe]\n    lost nothing');
  });

  it('framebuffer-aliases.mjs finds both aliases of the loader, the one of the kernel, and none where it is forgotten', async () => {
    const loader = await example('framebuffer-aliases.mjs', ['--example']);
    expect(loader.status).toBe(0);
    expect(loader.stdout).toBe(
      [
        'framebuffer 0xfd000000-0xfdffffff in CR3 0x100000:',
        '  0x00000000fd000000  -> 0xfd000000    16M  rwx supervisor  in 1G pages',
        '  0xffff8000fd000000  -> 0xfd000000    16M  rw- supervisor  in 1G pages',
        '2 aliases',
        '',
      ].join('\n'),
    );
    const kernel = await example('framebuffer-aliases.mjs', ['--example', '--cr3', '0x140000']);
    expect(kernel.status).toBe(0);
    expect(kernel.stdout).toContain('  0xffff8000fd000000  -> 0xfd000000     2M  rw- supervisor  in 2M pages\n1 alias');
    const none = await example('framebuffer-aliases.mjs', ['--emu', 'good']);
    expect(none.status).toBe(1);
    expect(none.stdout).toContain('not mapped at all');
  });
});
