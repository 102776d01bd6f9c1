/**
 * The controls of the bundled emulator in process (the Debuggee interface for `--emu`), built on
 * the same {@link EmuSession} the RSP and QMP servers serve: breakpoints by virtual address (they
 * patch nothing), a step is a resume and a stop, `cont` runs the machine in slices on the event loop
 * until a stop, and a triple fault with `-action reboot=shutdown,shutdown=pause` stops it in the
 * `shutdown` state, kept for post-mortem.
 */
import type { Machine } from '../emu/machine.js';
import { EmuSession, type VmStop } from '../emu/session.js';
import type { DebugControl, Stop } from './debuggee.js';
import { TargetError } from './target.js';

/** The Stop a session stop means; `stepping` says whether it ends a single step. */
function stopOf(s: VmStop, stepping: boolean): Stop {
  if (s.signal === 3) return { cause: 'shutdown', signal: 3 };
  if (s.signal === 5) {
    if (s.watch) return { cause: 'watchpoint', signal: 5, watch: { kind: s.watch.kind, address: s.watch.address } };
    return { cause: stepping ? 'step' : 'breakpoint', signal: 5 };
  }
  return { cause: 'interrupted', signal: s.signal };
}

/** DebugControl over an emulated machine. */
export class EmuControl implements DebugControl {
  /** The run state the machine is served under (shared with servers, when there are any). */
  readonly session: EmuSession;
  private waiting: { stepping: boolean; resolve(s: Stop): void } | null = null;
  private readonly listeners = new Set<(stop: Stop) => void>();
  private readonly onStop = (s: VmStop): void => this.stopped(s);
  private readonly onExit = (): void => this.exited();

  /** Drives `machine` through a session of its own, or through `session` when one serves it already. */
  constructor(machine: Machine, session?: EmuSession) {
    this.session = session ?? new EmuSession(machine);
    this.session.on('stop', this.onStop);
    this.session.on('exit', this.onExit);
  }

  get running(): boolean {
    return this.session.running;
  }

  async insertBreakpoint(va: bigint): Promise<void> {
    this.checkLive();
    this.session.machine.addBreakpoint(va);
  }

  async removeBreakpoint(va: bigint): Promise<void> {
    this.checkLive();
    this.session.machine.removeBreakpoint(va);
  }

  /** One instruction. A machine shut down by a triple fault does not move: the stop says 'shutdown'. */
  async step(): Promise<Stop> {
    this.checkLive();
    if (this.session.needsReset) return { cause: 'shutdown', signal: 3 };
    if (this.session.running) throw new TargetError('E_RUNNING', 'cannot step the emulator while it runs: interrupt it first');
    let got = null as Stop | null;
    this.waiting = { stepping: true, resolve: (s) => (got = s) };
    try {
      this.session.step();
    } finally {
      this.waiting = null;
    }
    return got ?? { cause: 'step', signal: 5 };
  }

  /** Runs until a breakpoint, an interrupt, a shutdown or the end of the emulator. */
  cont(): Promise<Stop> {
    this.checkLive();
    if (this.session.needsReset) return Promise.resolve({ cause: 'shutdown', signal: 3 });
    if (this.session.running) return Promise.reject(new TargetError('E_RUNNING', 'the emulator is already running: interrupt it first'));
    return new Promise<Stop>((resolve) => {
      // A guest halted with interrupts off (`cli; hlt`) schedules no more work: keep the event loop
      // alive while someone waits for the stop, as they would wait on QEMU, until an interrupt.
      const keepAlive = setInterval(() => {}, 1 << 30);
      this.waiting = {
        stepping: false,
        resolve: (s) => {
          clearInterval(keepAlive);
          this.waiting = null;
          resolve(s);
        },
      };
      this.session.cont();
    });
  }

  async interrupt(): Promise<void> {
    this.session.stop('paused');
  }

  async writeRegister(name: string, value: bigint): Promise<void> {
    this.checkLive();
    this.session.machine.setRegister(name, value);
  }

  onUnsolicitedStop(listener: (stop: Stop) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops a running machine and lets go of the session (its servers, if any, keep theirs). */
  release(): void {
    this.session.stop('paused');
    this.session.off('stop', this.onStop);
    this.session.off('exit', this.onExit);
  }

  private stopped(s: VmStop): void {
    const w = this.waiting;
    if (w) {
      w.resolve(stopOf(s, w.stepping));
      return;
    }
    for (const l of this.listeners) l(stopOf(s, false));
  }

  private exited(): void {
    const stop: Stop = { cause: 'exited', signal: null, exitCode: 0 };
    const w = this.waiting;
    if (w) w.resolve(stop);
    else for (const l of this.listeners) l(stop);
  }

  private checkLive(): void {
    if (this.session.hasEnded) throw new TargetError('E_LOST', 'the emulator has quit');
  }
}
