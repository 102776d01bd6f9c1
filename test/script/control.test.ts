/**
 * Scripts that drive the bundled emulator (`--emu`, in process): steps and breakpoints with the
 * registers refreshed at each stop, the CR3 switch of `good` checked before and after it executes,
 * a failing assert on a scenario that triple-faults, a `cont` into that triple fault (the stop is a
 * shutdown, the registers kept for post-mortem), and JSON lines of the stops.
 */
import { describe, expect, it } from 'vitest';
import { sessionFor } from '../../src/cli/session.js';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { ScriptExecutor } from '../../src/script/executor.js';
import { openScenarioTarget } from '../../src/target/emuTarget.js';
import { jsonLines, runScript } from './runCli.js';

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const good = findScenario('good').build();
const sym = (name: string): string => hex(good.symbols[name]!);
const stack = findScenario('stack-unmapped').build();

describe('on --emu good', () => {
  const script = [
    'set $loader = $cr3',
    `assert $rip == ${sym('_start')}`,
    'step',
    'step 3',
    `assert $rip == ${sym('kmain')} "four instructions to kmain"`,
    `break ${sym('cr3_write')}`,
    'cont',
    `assert $rip == ${sym('cr3_write')} && $cr3 == $loader`,
    'set $new = $rax',
    `assert $new == ${hex(good.cr3.kernel!)}`,
    'assert verdict($new) == "safe" && mapped($rsp)',
    'step',
    `assert $rip == ${sym('after_cr3_write')} && $cr3 == $new`,
    'assert executable($rip) && !writable($rip) && writable($rsp) && !executable($rsp)',
    'delete',
    'echo switched from $loader to $cr3 at $rip',
  ].join('\n');

  it('steps, breaks before the mov cr3, pre-checks it, and steps over it', async () => {
    const r = await runScript(script, ['--emu', 'good']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      `✓ $rip == ${sym('_start')}`,
      `1 step: RIP ${hex(good.symbols._start! + 1n)} <_start+0x1>`,
      `3 steps: RIP ${sym('kmain')} <kmain>`,
      `✓ $rip == ${sym('kmain')}`,
      `breakpoint at ${sym('cr3_write')} <cr3_write>`,
      `stopped (breakpoint): RIP ${sym('cr3_write')} <cr3_write>`,
      `✓ $rip == ${sym('cr3_write')} && $cr3 == $loader`,
      `✓ $new == ${hex(good.cr3.kernel!)}`,
      '✓ verdict($new) == "safe" && mapped($rsp)',
      `1 step: RIP ${sym('after_cr3_write')} <after_cr3_write>`,
      `✓ $rip == ${sym('after_cr3_write')} && $cr3 == $new`,
      '✓ executable($rip) && !writable($rip) && writable($rsp) && !executable($rsp)',
      `deleted the breakpoint at ${sym('cr3_write')}`,
      `switched from ${hex(good.cr3.loader!)} to ${hex(good.cr3.kernel!)} at ${sym('after_cr3_write')}`,
      '',
    ]);
  });

  it('prints each stop as a JSON line', async () => {
    const r = await runScript(script, ['--emu', 'good', '--json']);
    expect(r.status).toBe(0);
    const byLine = new Map(jsonLines(r.stdout).map((l) => [l.line, l]));
    expect(byLine.get(4)).toEqual({ line: 4, command: 'step', result: { steps: 3, stop: { cause: 'step', signal: 5 }, rip: sym('kmain') } });
    expect(byLine.get(6)).toEqual({ line: 6, command: 'break', result: { inserted: [sym('cr3_write')], breakpoints: [sym('cr3_write')] } });
    expect(byLine.get(7)).toEqual({ line: 7, command: 'cont', result: { stop: { cause: 'breakpoint', signal: 5 }, rip: sym('cr3_write') } });
    expect(byLine.get(15)).toEqual({ line: 15, command: 'delete', result: { removed: [sym('cr3_write')], breakpoints: [] } });
  });

  it('deleting a breakpoint that is not set is an error that lists those that are', async () => {
    const r = await runScript(`break ${sym('kmain')}\ndelete ${sym('putc')}\n`, ['--emu', 'good']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`<stdin>:2:8: no breakpoint at ${sym('putc')} (set: ${sym('kmain')})`);
  });
});

describe('watch-cr3 in a script', () => {
  it('stops before the mov cr3 of good (--count 1): the events, then the script goes on from there', async () => {
    const r = await runScript(['watch-cr3 --count 1', `assert $rip == ${sym('cr3_write')} && $cr3 == ${hex(good.cr3.loader!)}`, 'step', `assert $cr3 == ${hex(good.cr3.kernel!)}`].join('\n'), [
      '--emu',
      'good',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const lines = jsonLines(r.stdout);
    const watch = lines.filter((l) => l.line === 1).map((l) => l.result as Record<string, unknown>);
    expect(watch.map((e) => e.event ?? 'result')).toEqual(['sites', 'cr3-write', 'stopped', 'result']);
    expect(watch[1]).toMatchObject({ index: 1, rip: sym('cr3_write'), old: hex(good.cr3.loader!), new: hex(good.cr3.kernel!), verdict: 'safe', problems: [] });
    expect(watch[2]).toMatchObject({ end: 'count', rip: sym('cr3_write') });
    expect(watch[3]).toEqual({ end: 'count', writes: 1, dangerous: 0 });
    expect(lines.slice(-3).map((l) => [l.line, l.command])).toEqual([
      [2, 'assert'],
      [3, 'step'],
      [4, 'assert'],
    ]);
  });

  it('--stop-on danger stands on the write that would triple-fault; text as the CLI prints it', async () => {
    const r = await runScript('watch-cr3 --stop-on danger\nassert verdict($rax) == "triple-fault"\n', ['--emu', 'stack-unmapped']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`CR3 write #1 at ${hex(stack.symbols.cr3_write!)} (mov cr3, rax): ${hex(stack.cr3.loader!)} -> ${hex(stack.cr3.kernel!)}  TRIPLE FAULT`);
    expect(r.stdout).toContain('    3. triple fault');
    expect(r.stdout).toMatch(/^Stopped: stopped before the mov cr3 at 0x[0-9a-f]+: triple-fault; it has not run, the guest stands on it/m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✓ verdict($rax) == "triple-fault"');
  });

  it('on a dump, watch-cr3 is a line-numbered error', async () => {
    const r = await runScript('regs\nwatch-cr3\n', ['--example']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^<stdin>:2:1: watch-cr3 needs a target that runs/);
  });
});

describe('on --emu stack-unmapped', () => {
  const cr3Write = hex(stack.symbols.cr3_write!);

  it('a failing assert stops at the mov cr3 that would triple-fault: exit 1 with the line and the values', async () => {
    const r = await runScript([`break ${cr3Write}`, 'cont', 'assert verdict($rax) == "safe" "the new tables keep the stack"', 'step'].join('\n'), ['--emu', 'stack-unmapped']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`breakpoint at ${cr3Write} <cr3_write>\nstopped (breakpoint): RIP ${cr3Write} <cr3_write>\n`);
    expect(r.stderr).toBe(
      [
        '<stdin>:3: assertion failed: verdict($rax) == "safe" (the new tables keep the stack)',
        '   3 | assert verdict($rax) == "safe" "the new tables keep the stack"',
        '     |        ^^^^^^^^^^^^^^^^^^^^^^^',
        `  $rax = ${hex(stack.cr3.kernel!)}`,
        '  verdict($rax) = "triple-fault"',
        '',
      ].join('\n'),
    );
  });

  it('cont runs into the triple fault: a shutdown stop, with CR3 and CR2 kept for post-mortem', async () => {
    const r = await runScript(['cont', `assert $cr3 == ${hex(stack.cr3.kernel!)}`, 'assert !mapped($rsp) && !mapped($cr2)', 'step'].join('\n'), ['--emu', 'stack-unmapped', '--json']);
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ line: 1, command: 'cont', result: { stop: { cause: 'shutdown', signal: 3 } } });
    expect(lines.slice(1, 3).map((l) => (l.result as { passed: boolean }).passed)).toEqual([true, true]);
    expect(lines[3]).toMatchObject({ line: 4, command: 'step', result: { steps: 1, stop: { cause: 'shutdown', signal: 3 } } });
    expect(r.status).toBe(0);
  });
});

describe('interrupting (Ctrl-C in run, the TUI\'s Ctrl-C)', () => {
  it('stops a cont that would run forever, and ends a long step early; the scope and breakpoints stay', async () => {
    const target = openScenarioTarget('good');
    const x = new ScriptExecutor(await sessionFor(target, {}));
    try {
      await x.executeLine(`break ${sym('putc')}`);
      await x.executeLine(`delete ${sym('putc')}`);
      await x.executeLine('set $start = $rip');
      const running = x.executeLine('cont', 2);
      setTimeout(() => void x.interrupt(), 100);
      const [out] = await running;
      expect(out!.result).toMatchObject({ stop: { cause: 'interrupted' } });
      expect(x.session.cpu.rip).not.toBe(good.symbols._start);
      const stepping = x.executeLine('step 1000000', 3);
      setTimeout(() => void x.interrupt(), 50);
      const [steps] = await stepping;
      const done = (steps!.result as { steps: number }).steps;
      expect(done).toBeGreaterThan(0);
      expect(done).toBeLessThan(1_000_000);
      expect(steps!.text[0]).toMatch(new RegExp(`^stopped \\(step\\) after ${done} steps of 1000000: RIP 0x[0-9a-f]+$`));
      const [echo] = await x.executeLine('echo $start', 4);
      expect(echo!.text).toEqual([sym('_start')]);
    } finally {
      await x.dispose();
      await target.close();
    }
  });

  it('dispose removes the breakpoints the executor inserted', async () => {
    const target = openScenarioTarget('good');
    const x = new ScriptExecutor(await sessionFor(target, {}));
    await x.executeLine(`break ${sym('kmain')} ${sym('cr3_write')}`);
    expect([...x.breakpoints]).toEqual([good.symbols.kmain, good.symbols.cr3_write]);
    await x.dispose();
    expect(x.breakpoints.size).toBe(0);
    // Nothing stops it now: the kernel runs to its end and halts there, until interrupted.
    const running = x.executeLine('cont');
    while (target.machine.status !== 'halted') await new Promise((r) => setTimeout(r, 10));
    await x.interrupt();
    const [out] = await running;
    // `halt: cli; hlt; jmp halt`: a halted CPU stands after its HLT.
    expect(out!.result).toEqual({ stop: { cause: 'interrupted', signal: 2 }, rip: hex(good.symbols.halt! + 2n) });
    await target.close();
  });
});

describe('Ctrl-C during pagewalk run', () => {
  it('interrupts a cont that would run forever; the lines after it do not run: exit 130', async () => {
    const pending = runScript(`cont\necho after\n`, ['--emu', 'good']);
    // Once the script runs, its SIGINT handler is in place: Ctrl-C, as the terminal would send it.
    while (process.listenerCount('SIGINT') === 0) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    process.emit('SIGINT', 'SIGINT');
    const r = await pending;
    expect(r.status).toBe(130);
    expect(r.stdout).toMatch(/^stopped \(interrupted\): RIP 0xffffffff8[0-9a-f]{7} <\w+(\+0x[0-9a-f]+)?>\n$/);
    expect(r.stderr).toBe(['<stdin>:2:1: interrupted (Ctrl-C): the lines from here on did not run', '   2 | echo after', '     | ^^^^', ''].join('\n'));
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});
