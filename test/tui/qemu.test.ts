/**
 * The TUI on real QEMU: `tui --gdb --qmp` on the test kernel (which reloads CR3 in a loop) shows
 * the live registers, the same as QEMU's own `info registers`, and leaves the guest running when it
 * quits; `launch --tui` starts QEMU, shows the guest's serial console in its pane, stops it on
 * Ctrl-C, runs it under the CR3 watch on `c`, and leaves no QEMU process behind after `q`.
 */
import { afterEach, beforeAll, expect, it } from 'vitest';
import { buildTestKernel, type TestKernel } from '../../src/image/testKernel.js';
import { parseInfoRegisters } from '../../src/qmp/infoRegisters.js';
import { buildDist } from '../helpers/cli.js';
import { describeQemu, humanMonitor } from '../helpers/qemu.js';
import { bootLiveGuest, status, type LiveGuest } from '../qemu/liveGuest.js';
import { TuiTerminal } from './terminal.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const hex = (v: bigint) => `0x${v.toString(16)}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeQemu('the TUI on real QEMU', (qemu) => {
  let k: TestKernel;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(() => {
    buildDist();
    k = buildTestKernel();
  }, 180_000);

  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('shows the live CR3 and RIP of a guest over its gdbstub and QMP, and leaves it running', async () => {
    const g: LiveGuest = await bootLiveGuest(qemu, k);
    cleanup.push(() => g.q.stop());
    const t = TuiTerminal.spawn(['tui', '--gdb', g.gdb, '--qmp', g.qmp]);
    cleanup.push(() => t.dispose());
    const screen = await t.waitFor(/RIP 0x[0-9a-f]+/);
    // Attaching stopped the guest: QEMU's own registers are the ones on screen.
    const regs = parseInfoRegisters(await humanMonitor(g.q.qmp, 'info registers'));
    expect(regs.cr3).toBe(k.manifest.cr3);
    expect(screen).toContain(`CR3 ${hex(regs.cr3)}  table ${hex(regs.cr3)}`);
    expect(screen).toContain(`RIP ${hex(regs.rip)}`);
    expect(screen).toMatch(new RegExp(`${k.manifest.mode} paging\\s+CR0 ${hex(regs.cr0)}`));
    // The path pane walks RIP through the live tables.
    expect(screen).toContain(`${hex(regs.rip)}  supervisor instruction fetch`);
    expect(screen).toContain('a supervisor instruction fetch is allowed');
    t.type('q');
    expect((await t.waitForExit()).exitCode).toBe(0);
    expect(await t.onAlternateScreen()).toBe(false);
    expect(t.cursorVisible).toBe(true);
    // Left as found: the guest runs again.
    expect(await status(g.q)).toBe('running');
  });

  it('launch --tui shows the serial console and the CR3 writes, and quitting leaves no QEMU', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-tui-launch-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'kernel.elf'), k.elf);
    const t = TuiTerminal.spawn(['launch', '--tui', '--', qemu, '-accel', 'tcg', '-cpu', 'max', '-m', '128', '-display', 'none', '-nodefaults', '-kernel', join(dir, 'kernel.elf')], { cols: 130, rows: 45 });
    cleanup.push(() => t.dispose());
    // The guest boots and runs; its serial console shows in the pane.
    let screen = await t.waitFor((s) => s.includes(k.manifest.marker) && s.includes('running'), 30_000);
    expect(screen).toContain('Serial (QEMU console)');
    const pid = Number(/QEMU \(pid (\d+)\)/.exec(screen)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    // Ctrl-C stops it to look: the kernel is in its loop, on its own tables.
    t.type('\x03');
    screen = await t.waitFor(`CR3 ${hex(k.manifest.cr3)}  table`);
    expect(screen).toContain('stopped (interrupted)');
    // c runs it under the CR3 watch, which stops before the loop's next CR3 reload: the test kernel
    // has no IDT, so the reload is at risk (an exception after it could not be delivered).
    t.type('c');
    screen = await t.waitFor(`before the mov cr3 at ${hex(k.manifest.cr3Write)}`);
    expect(screen).toContain('1. AT RISK  stopped before it');
    expect(screen).toContain(`${hex(k.manifest.cr3)} → ${hex(k.manifest.cr3)} at ${hex(k.manifest.cr3Write)}`);
    expect(screen).toContain(`Pre-flight of CR3 ${hex(k.manifest.cr3)}: AT RISK`);
    expect(screen).toContain('gate:#PF');
    t.type('q');
    expect((await t.waitForExit(30_000)).exitCode).toBe(0);
    expect(alive(pid)).toBe(false);
  });
});
