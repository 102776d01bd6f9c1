/**
 * The TUI end to end: the built bin/pagewalk in a real pseudo-terminal, its screen rendered by a
 * headless xterm. The demo stops the stack-unmapped kernel before its mov cr3 and shows the
 * registers, the failing walk and the triple-fault warning; stepping moves RIP on screen; a resize
 * re-lays the panes out; the command line runs the `run` language; a lost target is reported;
 * `q` exits 0 and leaves the terminal as it was (normal screen, cursor shown).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/emu/machine.js';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { BIN, buildDist } from '../helpers/cli.js';
import { TuiTerminal } from './terminal.js';

beforeAll(() => buildDist(), 180_000);

const open: TuiTerminal[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const t of open.splice(0)) await t.dispose();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function tui(argv: string[], cols = 120, rows = 40): TuiTerminal {
  const t = TuiTerminal.spawn(argv, { cols, rows });
  open.push(t);
  return t;
}

/** The row holding `text`, or -1. */
function rowOf(lines: string[], text: string): number {
  return lines.findIndex((l) => l.includes(text));
}

/** Quits with `q` and checks the terminal is given back: exit 0, normal screen, cursor visible. */
async function quitsCleanly(t: TuiTerminal): Promise<void> {
  t.type('q');
  const exit = await t.waitForExit();
  expect(exit.exitCode).toBe(0);
  expect(await t.onAlternateScreen()).toBe(false);
  expect(t.cursorVisible).toBe(true);
}

describe('pagewalk demo', () => {
  it('stops the kernel before the mov cr3 that would triple-fault and shows why', async () => {
    const t = tui(['demo'], 130, 45);
    const screen = await t.waitFor((s) => s.includes('TRIPLE FAULT ahead') && s.includes('PD[1]') && s.includes('Map of CR3 0x400000'));
    // The registers, as the CPU stands on the mov cr3 (the loader's tables still loaded).
    expect(screen).toMatch(/4-level paging\s+CR0 0x80010011/);
    expect(screen).toContain('CR3 0x310000');
    expect(screen).toContain('RIP 0xffffffff800000d8 <cr3_write>');
    expect(screen).toContain('RSP 0xffff8000003ffff8');
    // The path that fails: the push below RSP through the new tables stops at PD[1].
    expect(screen).toContain('0xffff8000003ffff0  supervisor write');
    expect(screen).toMatch(/PML4\[256\]\s+@0x400800\s+0x404007\s+present writable user\s+table 0x404000/);
    expect(screen).toMatch(/PD\[1\] ✗\s+@0x405008\s+0x0\s+not present/);
    expect(screen).toContain('#PF, error code 0x2');
    // The warning, the verdict and the chain.
    expect(screen).toContain('TRIPLE FAULT ahead: the mov cr3 at');
    expect(screen).toContain('Pre-flight of CR3 0x400000: TRIPLE FAULT');
    expect(screen).toContain('#PF → #DF → triple fault');
    // The watch log and the guest's serial console.
    expect(screen).toContain('1. TRIPLE FAULT  stopped before it');
    expect(screen).toContain('0x310000 → 0x400000 at 0xffffffff800000d8');
    expect(screen).toContain('kernel: 4-level page tables built, cr3=0x400000');
    await quitsCleanly(t);
  });

  it('executes the mov cr3 and the faulting push when stepped, and shows the #PF from the exception log', async () => {
    const t = tui(['demo'], 130, 45);
    await t.waitFor('TRIPLE FAULT ahead');
    t.type('s');
    await t.waitFor((s) => s.includes('CR3 0x400000  table 0x400000') && s.includes('stopped (stepped)'));
    t.type('s');
    await t.waitFor('RIP 0xffffffff800000e2');
    t.type('s');
    const screen = await t.waitFor('shut down by a triple fault');
    expect(screen).toContain('#PF CR2 0xffff8000003ffff0  error code 0x2');
    expect(screen).toContain('from the exception log');
    expect(screen).toContain('P=0');
    // Tab to the fault pane and page down to the verdict of the tables.
    t.type('\t');
    await t.waitFor(/─ Pre-flight and fault/);
    t.type('\x1b[6~');
    await t.waitFor('The tables agree');
    await quitsCleanly(t);
  });

  it('lists its scenarios, the default marked, as text and JSON', async () => {
    const { cli } = await import('../helpers/cli.js');
    const text = await cli(['demo', '--list']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^stack-unmapped\s+the loader's boot stack is not mapped in the kernel's tables {2}\(the default\)$/m);
    const json = await cli(['demo', '--list', '--json']);
    const list = JSON.parse(json.stdout) as { name: string; default: boolean }[];
    expect(list.filter((s) => s.default).map((s) => s.name)).toEqual(['stack-unmapped']);
    expect(list.map((s) => s.name)).toContain('good');
  });

  it('switches scenarios from the picker', async () => {
    const t = tui(['demo'], 130, 45);
    await t.waitFor('TRIPLE FAULT ahead');
    t.type('p');
    await t.waitFor('Pick a scenario');
    // good is first in the list: up to the top, then Enter.
    for (let i = 0; i < 12; i++) t.type('k');
    t.type('\r');
    const screen = await t.waitFor('emulator: good');
    expect(screen).not.toContain('TRIPLE FAULT ahead');
    await quitsCleanly(t);
  });
});

describe('pagewalk tui --emu', () => {
  it('updates RIP on screen when stepping', async () => {
    // Where one step takes the good scenario, from the emulator in process.
    const m = new Machine(findScenario('good').build().config);
    const start = m.cpu.rip;
    m.step();
    const next = m.cpu.rip;
    expect(next).not.toBe(start);
    const t = tui(['tui', '--emu', 'good']);
    await t.waitFor(`RIP 0x${start.toString(16)}`);
    t.type('s');
    const screen = await t.waitFor(`RIP 0x${next.toString(16)}`);
    expect(screen).toContain('stopped (stepped)');
    // The path pane follows RIP.
    expect(screen).toContain(`0x${next.toString(16)} <_start+0x${(next - start).toString(16)}>  supervisor instruction fetch`);
    await quitsCleanly(t);
  });

  it('re-lays the panes out on a resize', async () => {
    const t = tui(['tui', '--emu', 'good'], 120, 40);
    let lines = (await t.waitFor('─ Map of CR3')).split('\n');
    // Wide: the fault pane is beside the path pane.
    expect(rowOf(lines, '─ Fault')).toBe(rowOf(lines, '─ Path'));
    expect(lines[rowOf(lines, '─ Fault')]!.indexOf('─ Fault')).toBeGreaterThan(60);
    t.resize(90, 40);
    lines = (await t.waitFor((_, l) => rowOf(l, '─ Fault') > rowOf(l, '─ Path'))).split('\n');
    // Narrow: stacked, each pane as wide as the terminal.
    expect(lines[rowOf(lines, '─ Fault')]!.indexOf('─ Fault')).toBeLessThan(5);
    expect(rowOf(lines, '─ Map of CR3')).toBeGreaterThan(rowOf(lines, '─ Fault'));
    expect(lines[1]).toContain('4-level paging');
    t.resize(50, 12);
    await t.waitFor('pagewalk needs 60x16 (this is 50x12)');
    t.resize(120, 40);
    lines = (await t.waitFor((_, l) => rowOf(l, '─ Fault') === rowOf(l, '─ Path') && rowOf(l, '─ Path') > 0)).split('\n');
    expect(lines.join('\n')).toContain('RIP 0xffffffff80000000');
    await quitsCleanly(t);
  });

  it('runs the command line in the `run` language: walk selects, regs prints, errors point at the culprit', async () => {
    const t = tui(['tui', '--emu', 'good']);
    await t.waitFor('RIP 0xffffffff80000000');
    t.type(':');
    await t.waitFor('Enter runs it');
    t.type('walk 0xffff800000001000 --access w\r');
    let screen = await t.waitFor('0xffff800000001000  supervisor write');
    expect(screen).toContain('Path: selected address');
    expect(screen).toContain('= 0x1000  2M page, rwx supervisor');
    t.type(':set $x = $rip + 1\r');
    t.type(':echo x is $x\r');
    screen = await t.waitFor('x is 0xffffffff80000001');
    t.type(':regs\r');
    screen = await t.waitFor('Output (Esc closes)');
    await t.waitFor(/CR3\s+0x310000\s+table 0x310000/);
    t.type(':walk $nope\r');
    screen = await t.waitFor('no variable $nope');
    expect(screen).toContain('command:1:6:');
    await quitsCleanly(t);
  });

  it('filters the map and walks the range under the cursor', async () => {
    const t = tui(['tui', '--emu', 'good']);
    await t.waitFor('5 of 5 ranges');
    t.type('/');
    t.type('rw-');
    let screen = await t.waitFor('filter "rw-"');
    expect(screen).toContain('filter "rw-": 2 of 5 ranges');
    t.type('\r');
    t.type('\x1b[B'); // down: the second match
    t.type('\r');
    screen = await t.waitFor('first address of the range 0xffffffff80005000');
    expect(screen).toMatch(/0xffffffff80005000( <\w+>)?  supervisor read/);
    await quitsCleanly(t);
  });
});

/** Starts `pagewalk emu` on a TCP port (0: any free one) and resolves with where it listens. */
async function serveEmu(scenario: string, port = 0): Promise<{ child: ChildProcess; gdb: string }> {
  const child = spawn(process.execPath, [BIN, 'emu', '--scenario', scenario, '--gdb-port', String(port), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const listening = await new Promise<{ gdb: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as { gdb: string });
    });
    child.once('exit', (code) => reject(new Error(`pagewalk emu exited (${code}) before it listened`)));
  });
  return { child, gdb: listening.gdb };
}

describe('pagewalk tui while the guest runs', () => {
  it('stays responsive under the CR3 watch and stops on Ctrl-C', async () => {
    const t = tui(['tui', '--emu', 'good']);
    await t.waitFor('RIP 0xffffffff80000000');
    t.type('c');
    // The good kernel's own mov cr3 is safe: the watch logs it, steps over it, and the kernel runs on to its halt loop.
    let screen = await t.waitFor((s) => s.includes('1. safe') && s.includes('running'));
    expect(screen).toContain('running, watching every mov to CR3');
    // Keys still work while it runs: the help opens and closes.
    t.type('?');
    await t.waitFor('pagewalk: keys');
    t.type('?');
    await t.waitFor((s) => !s.includes('pagewalk: keys'));
    t.type('\x03');
    screen = await t.waitFor('stopped (interrupted)');
    expect(screen).not.toContain('RIP 0xffffffff80000000 ');
    await quitsCleanly(t);
  });
});

describe('pagewalk tui on a live gdbstub', () => {
  it('reports a lost target, reconnects with r, and quits cleanly', async () => {
    const first = await serveEmu('good');
    const t = tui(['tui', '--gdb', first.gdb]);
    let screen = await t.waitFor('RIP 0xffffffff80000000');
    expect(screen).toContain(`gdb ${first.gdb}`);
    // The emulator dies without a word (no W00): the connection just closes.
    first.child.kill('SIGKILL');
    screen = await t.waitFor('LOST');
    expect(screen).toContain('target lost: r reconnects');
    expect(screen).toContain('The target is lost: the connection to');
    expect(screen).toContain('The screen shows the last stop.');
    // Keys that need the target say so instead of failing.
    t.type('s');
    await t.waitFor('the target is lost');
    // A new emulator on the same port: r reconnects.
    const port = Number(first.gdb.split(':').pop());
    await serveEmu('stack-unmapped', port);
    t.type('r');
    screen = await t.waitFor((s) => s.includes('stopped') && !s.includes('LOST') && s.includes('RIP 0xffffffff80000000'));
    expect(screen).not.toContain('The target is lost');
    await quitsCleanly(t);
  });
});
