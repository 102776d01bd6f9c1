/**
 * The TUI without a terminal: the controller on the bundled emulator in process. Under the CR3
 * watch the stack-unmapped kernel stops before its mov cr3 with the warning, the failing walk, the
 * predicted #PF and the new tables' map; stepping on executes it and the log's #PF replaces the
 * prediction. A target that cannot be driven says so; the command line runs the `run` language
 * against the stop on screen.
 */
import { describe, expect, it } from 'vitest';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { TuiCommands } from '../../src/tui/commandLine.js';
import { TuiController } from '../../src/tui/controller.js';
import { emuSource, optionsSource } from '../../src/tui/sources.js';
import { cr3Watch } from '../../src/tui/watchRun.js';

/** Strips colour codes. */
const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('the controller on the emulator', () => {
  it('stops the stack-unmapped kernel before the mov cr3 that would triple-fault, and shows why', async () => {
    const c = new TuiController(emuSource(findScenario('stack-unmapped')), { watch: cr3Watch() });
    await c.start();
    const s = c.state;
    expect(s.run).toBe('stopped');
    expect(s.view!.cpu.rip).toBe(0xffffffff80000000n);
    expect(s.watch.status).toBe('on');
    await c.cont();
    await c.settled();
    expect(s.run).toBe('stopped');
    expect(s.stopped).toBe('before the mov cr3 at 0xffffffff800000d8');
    expect(s.view!.cpu.rip).toBe(0xffffffff800000d8n);
    expect(s.view!.cpu.cr3).toBe(0x310000n);
    expect(s.warning).toBe('TRIPLE FAULT ahead: the mov cr3 at 0xffffffff800000d8 would load 0x400000');
    expect(s.watch.entries).toEqual([expect.objectContaining({ rip: 0xffffffff800000d8n, old: 0x310000n, new: 0x400000n, verdict: 'triple-fault', stopped: true })]);
    // The pre-flight, its chain, and the walk that fails: the push below RSP through the new tables.
    expect(s.check!.result.chain.map((l) => l.name)).toEqual(['#PF', '#DF', 'triple fault']);
    expect(s.selection).toMatchObject({ va: 0xffff8000003ffff0n, cr3: 0x400000n, by: 'check' });
    expect(s.walk!.fault).toMatchObject({ level: 'PD', reason: 'not-present', errorCode: 0x2 });
    expect(s.fault).toMatchObject({ origin: 'predicted', cr2: 0xffff8000003ffff0n });
    expect(s.fault!.decoded!.code).toBe(0x2);
    expect(s.fault!.comparison!.agrees).toBe(true);
    // The map shows the tables about to be loaded; the console what the kernel printed.
    expect(s.map!.cr3).toBe(0x400000n);
    expect(s.map!.ranges.some((r) => r.va <= 0xffff8000003ffff0n && 0xffff8000003ffff0n < r.va + r.size)).toBe(false);
    expect(s.console.all()).toContain('kernel: 4-level page tables built, cr3=0x400000');
    await c.close();
  });

  it('executes the mov cr3 and the push on steps, and takes the #PF from the exception log', async () => {
    const c = new TuiController(emuSource(findScenario('stack-unmapped')), { watch: cr3Watch(), run: true });
    await c.start();
    // run: true lets it go under the watch at once; wait for the stop.
    while (c.state.watch.entries.length === 0 || c.state.run !== 'stopped') await new Promise((r) => setTimeout(r, 10));
    await c.step();
    expect(c.state.warning).toBeNull();
    expect(c.state.check!.stale).toBe(true);
    expect(c.state.selection!.by).toBe('rip');
    expect(c.state.view!.cpu.cr3).toBe(0x400000n);
    await c.step();
    await c.step();
    expect(c.state.stopped).toBe('shut down by a triple fault; its state is kept');
    expect(c.state.fault).toMatchObject({ origin: 'log', cr2: 0xffff8000003ffff0n, rip: 0xffffffff800000e2n });
    expect(c.state.fault!.decoded!.code).toBe(0x2);
    // A shut-down machine does not move.
    await c.step();
    expect(c.state.stopped).toBe('shut down by a triple fault; its state is kept');
    await c.close();
  });
});

describe('the controller on a target that cannot be driven', () => {
  it('walks, maps and checks, and says why it cannot step', async () => {
    const m = buildExample();
    const c = new TuiController(optionsSource({ example: true }, null), { watch: cr3Watch() });
    await c.start();
    await c.settled();
    expect(c.state.canDrive).toBe(false);
    expect(c.state.watch.status).toBe('impossible');
    expect(c.state.map!.ranges.length).toBeGreaterThan(0);
    await c.step();
    expect(c.state.notice).toMatchObject({ level: 'warn', text: expect.stringContaining('cannot be driven') });
    await c.check(m.kernelCr3);
    expect(c.state.check!.result.verdict).toBe('triple-fault');
    // Asked for by hand: no "ahead" warning, but the failing access is selected.
    expect(c.state.warning).toBeNull();
    expect(c.state.selection!.by).toBe('check');
    await c.walk(EXAMPLE.rip, { kind: 'exec', user: false });
    expect(c.state.selection).toMatchObject({ va: EXAMPLE.rip, by: 'user' });
    expect(c.state.walk!.fault).toBeNull();
    await c.fault(0xdead000n, 0x10, EXAMPLE.rip);
    expect(c.state.fault).toMatchObject({ origin: 'command', cr2: 0xdead000n });
    expect(c.state.fault!.decoded!.fetch).toBe(true);
    c.setMapFilter('user');
    expect(c.state.map!.filter).toBe('user');
    await c.close();
  });
});

describe('the command line', () => {
  it('runs lines of the `run` language against the stop on screen, one scope for all', async () => {
    const c = new TuiController(emuSource(findScenario('good')), { watch: null });
    const cmd = new TuiCommands(c);
    await c.start();
    await cmd.run('walk 0xffff800000001000 --access w');
    expect(c.state.selection).toMatchObject({ va: 0xffff800000001000n, access: { kind: 'write', user: false }, cr3: null, by: 'user' });
    expect(c.state.walk!.translation!.pa).toBe(0x1000n);
    await cmd.run('set $next = $rip + 1');
    await cmd.run('echo next is $next');
    expect(c.state.output.all().map(plain)).toContain('next is 0xffffffff80000001');
    await cmd.run('step');
    expect(c.state.view!.cpu.rip).not.toBe(0xffffffff80000000n);
    expect(c.state.run).toBe('stopped');
    await cmd.run('walk $nowhere');
    const out = c.state.output.all().map(plain);
    expect(out).toContain('command:1:6: no variable $nowhere: set it first (set $nowhere = ...); set so far: $next');
    expect(c.state.notice!.level).toBe('error');
    await cmd.run('check --cr3 0x310000');
    expect(c.state.check!.result.cr3).toBe(0x310000n);
    await cmd.dispose();
    await c.close();
  });
});
