/**
 * The session the servers share: QEMU's run states and the events every endpoint hears, running
 * in slices that leave the event loop free, an idle halted CPU, the -action settings, and what
 * happens when the machine cannot go on (an unmodelled mode, a bug).
 */
import { describe, expect, it } from 'vitest';
import { EmuSession, SessionError, type GuestEvent, type VmStop } from '../../src/emu/session.js';
import { testMachine } from './fixtures.js';
import { COUNTER_VA, haltProgram, loopProgram, sleep, tripleFaultProgram, until } from './serverFixtures.js';

/** A session with every event it emits recorded, in order. */
function recorded(program = loopProgram(), tripleFault: 'shutdown' | 'reset' | 'pause' = 'shutdown') {
  const t = testMachine({ asm: program, tripleFault, log: ['unimp'] });
  const internal: string[] = [];
  const session = new EmuSession(t.m, { onInternalError: (m) => internal.push(m) });
  const events: string[] = [];
  const stops: VmStop[] = [];
  session.on('stop', (s) => (stops.push(s), events.push(`stop:${s.state}:${s.signal}`)));
  session.on('resume', () => events.push('resume'));
  session.on('reset', (e: GuestEvent) => events.push(`reset:${e.guest}:${e.reason}`));
  session.on('shutdown', (e: GuestEvent) => events.push(`shutdown:${e.guest}:${e.reason}`));
  session.on('exit', (r) => events.push(`exit:${r}`));
  return { ...t, session, events, stops, internal };
}

describe('running in slices', () => {
  it('runs while timers keep firing, and stops between two slices', async () => {
    const { session, m, events } = recorded();
    expect(session.state).toBe('prelaunch');
    session.cont();
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await sleep(5);
      ticks++;
    }
    expect(ticks).toBe(5);
    expect(m.instructions).toBeGreaterThan(1000);
    expect(session.stop()).toBe(true);
    expect(session.stop()).toBe(false);
    const n = m.instructions;
    await sleep(20);
    expect(m.instructions).toBe(n);
    expect(session.state).toBe('paused');
    expect(events).toEqual(['resume', 'stop:paused:2']);
  });

  it('a CPU halted in HLT runs without executing: no slices until something stops it', async () => {
    const { session, m, code, events } = recorded(haltProgram());
    let runs = 0;
    const run = m.run.bind(m);
    m.run = (o) => (runs++, run(o));
    session.cont();
    await until(() => m.cpu.halted, 'the hlt');
    const before = runs;
    await sleep(30);
    expect(runs).toBe(before);
    expect(session.state).toBe('running');
    session.stop('debug');
    expect(events).toEqual(['resume', 'stop:debug:5']);
    expect(m.getRegister('rip')).toBe(code.address('after_hlt'));
  });

  it('a step is a resume and a stop in debug', () => {
    const { session, code, events } = recorded();
    expect(session.step()).toBe(true);
    expect(session.machine.getRegister('rip')).toBe(code.address('top'));
    expect(events).toEqual(['resume', 'stop:debug:5']);
  });

  it('breakpoints and watchpoints stop in debug, a watchpoint with what it watched', async () => {
    const { session, m, code, stops } = recorded();
    m.addBreakpoint(code.address('after_read'));
    session.cont();
    await until(() => session.state === 'debug', 'the breakpoint');
    expect(stops[0]).toMatchObject({ state: 'debug', signal: 5, rip: code.address('after_read') });
    m.removeBreakpoint(code.address('after_read'));
    m.addWatchpoint(COUNTER_VA, 8, 'write');
    session.cont();
    await until(() => stops.length === 2, 'the watchpoint');
    expect(stops[1]).toMatchObject({ state: 'debug', signal: 5, watch: { kind: 'write', address: COUNTER_VA }, rip: code.address('after_inc') });
  });

  it('starts running at once when asked', async () => {
    const t = testMachine({ asm: loopProgram(), log: [] });
    const session = new EmuSession(t.m, { start: 'running' });
    expect(session.state).toBe('running');
    await until(() => t.m.instructions > 0, 'instructions');
    session.quit('host-signal');
  });
});

describe('triple faults and the -action settings', () => {
  it('reboot=shutdown,shutdown=pause: SHUTDOWN, then the shutdown state; cont needs a reset', async () => {
    const { session, events } = recorded(tripleFaultProgram());
    expect(session.actions).toEqual({ reboot: 'shutdown', shutdown: 'pause' });
    session.cont();
    await until(() => session.state === 'shutdown', 'the shutdown');
    expect(events).toEqual(['resume', 'shutdown:true:guest-reset', 'stop:shutdown:3']);
    expect(() => session.cont()).toThrow(expect.objectContaining({ code: 'E_NEEDS_RESET' }));
    expect(session.step()).toBe(false);
  });

  it('reboot=reset: guest resets, paced, while the VM keeps running', async () => {
    const { session, events } = recorded(tripleFaultProgram(), 'reset');
    expect(session.actions).toEqual({ reboot: 'reset', shutdown: 'poweroff' });
    session.cont();
    await sleep(250);
    const resets = events.filter((e) => e === 'reset:true:guest-reset').length;
    expect(resets).toBeGreaterThanOrEqual(2);
    expect(resets).toBeLessThan(15);
    expect(session.state).toBe('running');
    session.stop();
  });

  it("the machine config's pause action stops at the fault, reported like a shutdown that pauses", async () => {
    const { session, events, m, code } = recorded(tripleFaultProgram(), 'pause');
    session.cont();
    await until(() => session.state === 'paused', 'the pause');
    expect(events).toEqual(['resume', 'shutdown:true:guest-reset', 'stop:paused:3']);
    expect(m.getRegister('rip')).toBe(code.address('after'));
  });

  it('shutdown=poweroff ends the emulator on a shutdown request', async () => {
    const { session, events } = recorded(tripleFaultProgram());
    session.setActions({ shutdown: 'poweroff' });
    session.cont();
    await until(() => session.hasEnded, 'the end');
    expect(events).toEqual(['resume', 'shutdown:true:guest-reset', 'exit:guest-shutdown']);
  });
});

describe('when the machine cannot go on', () => {
  it('a mode the emulator does not model stops it in internal-error (signal 6); a reset recovers', async () => {
    const { session, m, stops, events } = recorded();
    m.setRegister('cr4', 0n);
    session.cont();
    await until(() => session.state === 'internal-error', 'the internal error');
    expect(stops[0]).toMatchObject({ state: 'internal-error', signal: 6, message: expect.stringContaining('not emulated') });
    expect(() => session.cont()).toThrow(SessionError);
    session.setActions({ reboot: 'reset' });
    session.systemReset();
    expect(session.state).toBe('prelaunch');
    expect(events.at(-1)).toBe('reset:false:host-qmp-system-reset');
  });

  it('an exception from inside the machine becomes internal-error, reported, never a crash', async () => {
    const { session, m, internal, stops } = recorded();
    m.run = () => {
      throw new TypeError('something broke');
    };
    session.cont();
    await until(() => session.state === 'internal-error', 'the internal error');
    expect(internal).toEqual(['TypeError: something broke']);
    expect(stops[0]).toMatchObject({ state: 'internal-error', signal: 6 });
    expect(m.log.lines.at(-1)).toBe('pagewalk-emu: internal error: TypeError: something broke');
  });

  it('quit says SHUTDOWN for host reasons, then exit, once; the session then refuses to run', () => {
    const { session, events } = recorded();
    session.quit('host-qmp-quit');
    session.quit('host-signal');
    expect(events).toEqual(['shutdown:false:host-qmp-quit', 'exit:host-qmp-quit']);
    expect(() => session.cont()).toThrow(expect.objectContaining({ code: 'E_ENDED' }));
    const other = recorded();
    other.session.quit('host-gdb-kill');
    expect(other.events).toEqual(['exit:host-gdb-kill']);
  });
});
