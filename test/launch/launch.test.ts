/**
 * `launch` with real QEMU (TCG) running the test kernel: the API attaches a target over the gdbstub
 * and pagewalk's QMP, the guest's serial text comes through the console stream, the log is written,
 * the added post-mortem actions keep a triple-faulted guest stopped with its state, and shutting
 * down leaves no QEMU process and no files. The command line shows the console on stdout and its
 * notes on stderr, leaves the gdbstub and QMP free for other tools, and quits QEMU on SIGINT.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn as spawnPty } from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestKernel, type TestKernel } from '../../src/image/testKernel.js';
import { launchQemu, type LaunchedQemu } from '../../src/launch/launch.js';
import { connectQmp, runState } from '../../src/target/qmpTarget.js';
import { RspTarget } from '../../src/target/rspTarget.js';
import { cli } from '../helpers/cli.js';
import { describeQemu } from '../helpers/qemu.js';

const CLI_MAIN = fileURLToPath(new URL('./cliMain.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `read()` contains `text`; rejects after `ms` with what it held. */
async function until(read: () => string, text: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!read().includes(text)) {
    if (Date.now() > deadline) throw new Error(`${JSON.stringify(text)} did not appear in ${ms} ms; got ${JSON.stringify(read().slice(-400))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function launchDirs(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith('pagewalk-launch-'));
}

describeQemu('launch with real QEMU', (qemu) => {
  let dir: string;
  let good: TestKernel;
  let broken: TestKernel;
  const machine = (kernel: string) => ['-accel', 'tcg', '-cpu', 'max', '-m', '128', '-display', 'none', '-nodefaults', '-kernel', kernel];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pagewalk-launch-test-'));
    good = buildTestKernel();
    // The loop loads a CR3 whose tables map nothing: the next fetch faults, then #DF, then a triple fault.
    broken = buildTestKernel({ spaces: { empty: () => undefined }, slot: 'empty', marker: 'about to triple-fault' });
    writeFileSync(join(dir, 'good.elf'), good.elf);
    writeFileSync(join(dir, 'broken.elf'), broken.elf);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('launchQemu', () => {
    it('attaches, shows the serial console, writes the log, and leaves no process and no files after shutdown', async () => {
      const q: LaunchedQemu = await launchQemu([qemu, ...machine(join(dir, 'good.elf'))]);
      let console = '';
      q.console.on('data', (d: Buffer) => (console += d.toString('latin1')));
      try {
        await until(() => console, good.manifest.marker);
        expect(q.plan.consoleOnStdio).toBe(true);
        const t = q.target!;
        // The guest runs under the target's controls: interrupting ends the run launch started.
        expect(t.control.running).toBe(true);
        await t.control.interrupt();
        await expect(q.run).resolves.toEqual({ cause: 'interrupted', signal: 2 });
        const cpu = await t.cpuState();
        expect(cpu.cr3).toBe(good.manifest.cr3);
        expect(cpu.rip >= good.manifest.loop && cpu.rip < good.manifest.loopEnd).toBe(true);
        expect((await runState(t.qmp)).status).toBe('paused');
        expect(readFileSync(q.logPath!, 'latin1')).toMatch(/CPU Reset/);
      } finally {
        const pid = q.pid;
        const home = dirname(q.plan.control);
        await expect(q.shutdown()).resolves.toEqual({ code: 0, signal: null });
        expect(alive(pid)).toBe(false);
        expect(existsSync(home)).toBe(false);
      }
    });

    it('keeps a triple-faulted guest stopped with its state, thanks to the actions it added', async () => {
      const q = await launchQemu([qemu, ...machine(join(dir, 'broken.elf'))]);
      try {
        await expect(q.run).resolves.toEqual({ cause: 'shutdown', signal: 3 });
        expect((await runState(q.target!.qmp)).status).toBe('shutdown');
        const cpu = await q.target!.cpuState();
        expect(cpu.cr3).toBe(broken.manifest.spaces.empty);
        expect(cpu.rip).toBe(broken.manifest.afterCr3Write);
      } finally {
        await q.shutdown();
      }
    });

    it('fails with E_START, and leaves nothing behind, when QEMU refuses its command line', async () => {
      const before = launchDirs();
      await expect(launchQemu([qemu, '-no-such-option'])).rejects.toMatchObject({ code: 'E_START', message: expect.stringMatching(/-no-such-option: invalid option/) });
      expect(launchDirs()).toEqual(before);
      await expect(launchQemu(['/nonexistent/qemu-system-x86_64'])).rejects.toMatchObject({ code: 'E_START', message: '/nonexistent/qemu-system-x86_64: no such program (or not executable)' });
    });
  });

  describe('pagewalk launch', () => {
    it('prints the console to stdout and its notes to stderr, leaves the gdbstub and QMP to other tools, and quits QEMU on SIGINT', async () => {
      const before = launchDirs();
      const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'launch', '--', qemu, ...machine(join(dir, 'good.elf'))], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
      child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
      try {
        await until(() => out, `${good.manifest.marker}\r\n`);
        await until(() => err, 'Ctrl-C quits QEMU.');
        const pid = Number(/QEMU is running \(pid (\d+)\)/.exec(err)![1]);
        const gdb = /--gdb (\S+) --qmp (\S+)/.exec(err)!;
        expect(err).toMatch(/^ {2}gdb {7}gdb -ex 'target remote \/.*\/gdb\.sock'$/m);
        expect(err).toMatch(/^ {2}added {5}-gdb unix:.*-action reboot=shutdown,shutdown=pause -d int,cpu_reset -D .*qemu\.log -serial mon:stdio$/m);
        expect(alive(pid)).toBe(true);
        // The gdbstub is free: a pagewalk command (here its target) attaches, reads, and detaches.
        const t = await RspTarget.open(gdb[1]!);
        expect((await t.cpuState()).cr3).toBe(good.manifest.cr3);
        await t.close();
        const qmp = await connectQmp(gdb[2]!);
        expect((await runState(qmp)).status).toBe('running');
        await qmp.close();
        child.kill('SIGINT');
        expect(await exited).toBe(0);
        expect(err).toMatch(/note: QEMU has quit \(status 0\)/);
        expect(alive(pid)).toBe(false);
        expect(launchDirs()).toEqual(before);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    it('in a terminal, passes keys to QEMU and takes Ctrl-C as its own: QEMU quits cleanly', async () => {
      const term = spawnPty(process.execPath, ['--import', 'tsx', CLI_MAIN, 'launch', '--', qemu, ...machine(join(dir, 'good.elf'))], { cwd: ROOT, cols: 100, rows: 30, env: { ...process.env } });
      let screen = '';
      term.onData((d) => (screen += d));
      const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      try {
        await until(() => screen, good.manifest.marker);
        await until(() => screen, 'Ctrl-C quits QEMU.');
        const pid = Number(/QEMU is running \(pid (\d+)\)/.exec(screen)![1]);
        // Ctrl-A c reaches QEMU's monitor behind the serial console.
        term.write('\x01c');
        await until(() => screen, '(qemu)');
        term.write('info status\r');
        await until(() => screen, 'VM status: running');
        term.write('\x03');
        expect(await exited).toBe(0);
        expect(screen).toMatch(/QEMU has quit \(status 0\)/);
        expect(alive(pid)).toBe(false);
      } finally {
        term.kill('SIGKILL');
      }
    });

    it('says when the guest triple-faulted, and that QEMU keeps it for a look', async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'launch', '--', qemu, ...machine(join(dir, 'broken.elf'))], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
      try {
        await until(() => err, 'note: the guest reset itself (a triple fault?); QEMU keeps it stopped as it was: look with pagewalk check --gdb unix:');
        expect(err).toMatch(/pagewalk explain-log \/.*qemu\.log$/m);
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    it('exits 2 on a command line it cannot use and 3 when QEMU does not come up', async () => {
      const daemon = await cli(['launch', '--', qemu, '-daemonize']);
      expect(daemon.status).toBe(2);
      expect(daemon.stderr).toMatch(/^pagewalk: -daemonize: /);
      const none = await cli(['launch', '--', qemu, '-gdb', 'stdio']);
      expect(none.status).toBe(2);
      const bad = await cli(['launch', '--', qemu, '-no-such-option']);
      expect(bad.status).toBe(3);
      expect(bad.stderr).toMatch(/QEMU exited before it was ready: .*-no-such-option: invalid option/);
      const missing = await cli(['launch', '--', 'qemu-system-nonexistent']);
      expect(missing.status).toBe(3);
      expect(missing.stderr).toMatch(/qemu-system-nonexistent is not on PATH/);
    });
  });
});
