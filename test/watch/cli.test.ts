/**
 * The watch commands on the command line, in process, against `--emu`: watch-cr3 on every scenario
 * (JSON lines: DESIGN's cr3-write shape, the exit status), --stop-on in text, catch-pf, post-mortem
 * on a guest that is not shut down, and the bad input the commands refuse.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/emu/scenarios/index.js';
import { cli } from '../helpers/cli.js';
import { FIRST_PROBLEM, VERDICT } from './expectations.js';

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('pagewalk watch-cr3 --emu', () => {
  it.each(SCENARIOS.map((s) => [s.name, s.build()] as const))('%s: one JSON line per event, the cr3-write as DESIGN shapes it', async (name, build) => {
    const r = await cli(['watch-cr3', '--emu', name, '--count', '1', '--json']);
    const events = lines(r.stdout);
    expect(events.map((e) => e.event)).toEqual(['sites', 'cr3-write', 'stopped']);
    const w = events[1] as { rip: string; old: string; new: string; verdict: string; problems: { what: string; access: string; va: string; fault: { level: string; errorCode: string } | null; hints: unknown[] }[]; lost: unknown[] };
    expect(w).toMatchObject({ rip: `0x${build.symbols.cr3_write!.toString(16)}`, old: `0x${build.config.cpu.cr3!.toString(16)}`, new: `0x${build.cr3.kernel!.toString(16)}`, verdict: VERDICT[name] });
    expect(Array.isArray(w.lost)).toBe(true);
    const want = FIRST_PROBLEM[name];
    if (want) {
      expect({ what: w.problems[0]!.what, level: w.problems[0]!.fault?.level ?? null, errorCode: w.problems[0]!.fault ? parseInt(w.problems[0]!.fault.errorCode, 16) : null }).toEqual({
        what: want.what,
        level: want.level,
        errorCode: want.errorCode,
      });
    } else {
      expect(w.problems).toEqual([]);
    }
    expect(events[2]).toMatchObject({ event: 'stopped', end: 'count', rip: w.rip });
    expect(r.status).toBe(VERDICT[name] === 'safe' ? 0 : 1);
  });

  it('--stop-on danger, in text: the verdict, the chain, the hint, and where the guest stands', async () => {
    const r = await cli(['watch-cr3', '--emu', 'pd-index-typo', '--stop-on', 'danger']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('CR3 write #1 at 0xffffffff800000df (mov cr3, rax): 0x310000 -> 0x400000  TRIPLE FAULT');
    expect(r.stdout).toContain('1. #PF           error code 0x10  the fetch at RIP 0xffffffff800000e2 faults (PD entry not present)');
    expect(r.stdout).toContain('→ likely: PD[0] at 0x402000 is empty, but PD[510] is present, and 510 is the PDPT index');
    expect(r.stdout).toContain('Stopped: stopped before the mov cr3 at 0xffffffff800000df: triple-fault; it has not run, the guest stands on it');
  });

  it('runs through a safe switch to --timeout, exit 0', async () => {
    const r = await cli(['watch-cr3', '--emu', 'good', '--timeout', '1', '--json']);
    const events = lines(r.stdout);
    expect(events.filter((e) => e.event === 'cr3-write').map((e) => e.verdict)).toEqual(['safe']);
    expect(events.at(-1)).toMatchObject({ event: 'stopped', end: 'interrupted' });
    expect(r.status).toBe(0);
  });

  it('refuses targets it cannot drive and register overrides', async () => {
    const a = await cli(['watch-cr3', '--example']);
    expect(a.status).toBe(2);
    expect(a.stderr).toContain('cannot be driven (no breakpoints, no steps): watch-cr3 needs --gdb HOST:PORT or --emu SCENARIO');
    const b = await cli(['watch-cr3', '--emu', 'good', '--cr3', '0x1000']);
    expect(b.status).toBe(2);
    expect(b.stderr).toContain('watch-cr3 reads the registers from the guest at every stop: --cr3 does not apply');
    const c = await cli(['catch-pf', '--emu', 'good', '--count', '0']);
    expect(c.status).toBe(2);
  });
});

describe('pagewalk catch-pf --emu', () => {
  it('write-to-readonly-wp: the fault, its frame and the verdict of the tables, as JSON', async () => {
    const r = await cli(['catch-pf', '--emu', 'write-to-readonly-wp', '--count', '1', '--json']);
    const events = lines(r.stdout);
    const f = events.find((e) => e.event === 'page-fault') as { cr2: string; errorCode: string; frame: { rip: string }; agrees: boolean; decoded: { summary: string } };
    expect(f).toMatchObject({ cr2: '0xffffffff80001110', errorCode: '0x3', frame: { rip: '0xffffffff80000101' }, agrees: true });
    expect(events.at(-1)).toMatchObject({ event: 'stopped', end: 'count' });
    expect(r.status).toBe(0);
  });

  it('user-touches-supervisor, in text', async () => {
    const r = await cli(['catch-pf', '--emu', 'user-touches-supervisor', '--count', '1']);
    expect(r.stdout).toContain('#1 #PF at CR2 0xffffffff80002148, error code 0x5');
    expect(r.stdout).toContain('RIP 0x400000');
    expect(r.stdout).toContain('The tables agree: user-mode read of a supervisor page (U/S=0 in the PT entry).');
  });
});

describe('pagewalk post-mortem --emu', () => {
  it('on a guest that is not shut down: says so, and holds the state as it is', async () => {
    const r = await cli(['post-mortem', '--emu', 'good', '--json']);
    expect(r.stderr).toContain('the guest is not shut down (it is paused)');
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'paused', explained: false, rip: '0xffffffff80000000' });
    expect(r.status).toBe(0);
    // In text, the headline does not call it a triple fault.
    const text = await cli(['post-mortem', '--emu', 'good']);
    expect(text.stdout.split('\n')[0]).toMatch(/^Post-mortem of the current state \(the guest is not shut down\): RIP 0xffffffff80000000/);
  });
});
