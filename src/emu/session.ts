/**
 * One machine served to several endpoints (the RSP and QMP servers, the in-process tools) the way
 * QEMU's main loop serves its VM: a run state (`prelaunch`, `running`, `paused`, `debug`,
 * `shutdown`, `internal-error`), `-action` settings for what a triple fault and a shutdown do, and
 * the state changes every endpoint hears about (stop, resume, reset, shutdown, exit).
 *
 * While the state is `running` the machine runs in slices of a few milliseconds on the event loop,
 * so the servers stay responsive: a byte from GDB or a QMP `stop` lands between two slices.
 */
import { EventEmitter } from 'node:events';
import type { Machine, ResetEvent, StopEvent, WatchKind } from './machine.js';

/** QEMU's run states, as `query-status` names them. */
export type RunState = 'prelaunch' | 'running' | 'paused' | 'debug' | 'shutdown' | 'internal-error';

/** What a guest reset does (QEMU's `-action reboot=`): reset the machine, or treat it as a shutdown. */
export type RebootAction = 'reset' | 'shutdown';

/** What a shutdown does (QEMU's `-action shutdown=`): end the emulator, or stop in the `shutdown` state. */
export type ShutdownAction = 'poweroff' | 'pause';

/** The `-action` settings that apply to a triple fault. */
export interface SessionActions {
  reboot: RebootAction;
  shutdown: ShutdownAction;
}

/** Why the machine stopped, as a GDB stop reply reports it. */
export interface VmStop {
  /** The state the VM is in now. */
  state: Exclude<RunState, 'running' | 'prelaunch'>;
  /** GDB's signal number for the stop: 5 (trap) for a breakpoint, watchpoint or step, 2 for an interrupt or `stop`, 3 for a shutdown, 6 for an internal error. */
  signal: number;
  /** The watchpoint that fired, with its start address as inserted. */
  watch?: { kind: WatchKind; address: bigint };
  /** RIP at the stop. */
  rip: bigint;
  /** What the machine reported (for 'unsupported', what it cannot do). */
  message?: string;
}

/** Why the emulator ends: QMP `quit`, GDB `k`, a signal, or a shutdown with the `poweroff` action. */
export type ExitReason = 'host-qmp-quit' | 'host-gdb-kill' | 'host-signal' | 'guest-shutdown';

/** A QMP-shaped reset or shutdown event: who asked, and QEMU's reason string. */
export interface GuestEvent {
  guest: boolean;
  reason: string;
}

/** The events of an {@link EmuSession}. */
export interface EmuSessionEvents {
  /** The VM went from running to stopped (QEMU's `STOP`, and a GDB stop reply). */
  stop: [VmStop];
  /** The VM started running (QEMU's `RESUME`); a step is a resume and a stop. */
  resume: [];
  /** The machine was reset (QEMU's `RESET`). */
  reset: [GuestEvent];
  /** A shutdown was requested (QEMU's `SHUTDOWN`). */
  shutdown: [GuestEvent];
  /** The emulator is ending: servers say goodbye (`W00`) and close. */
  exit: [ExitReason];
}

/** Stable codes of {@link SessionError}. */
export type SessionErrorCode =
  /** The VM is shut down or failed: only a reset brings it back (QEMU: "Resetting the Virtual Machine is required"). */
  | 'E_NEEDS_RESET'
  /** The session has ended (after quit). */
  | 'E_ENDED';

/** An error from a session operation; `code` is stable. */
export class SessionError extends Error {
  constructor(
    readonly code: SessionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SessionError';
  }
}

/** Options of {@link EmuSession}. */
export interface EmuSessionOptions {
  /** The state to start in (default `prelaunch`, like QEMU's `-S`; `running` starts the machine at once). */
  start?: 'prelaunch' | 'running';
  /** Milliseconds one slice of execution aims at (default 8). */
  sliceMs?: number;
  /** Milliseconds a guest reset takes before the machine runs again (default 40, about QEMU's pace through the BIOS). */
  rebootDelayMs?: number;
  /** Called with the message when the machine throws something it should not (a bug): the VM goes to `internal-error`. */
  onInternalError?: (message: string) => void;
}

/** GDB signal numbers for the states a stop leaves the VM in. */
const SIGNAL_OF: Record<VmStop['state'], number> = { debug: 5, paused: 2, shutdown: 3, 'internal-error': 6 };

/** The machine under a QEMU-like run state, shared by every endpoint. */
export class EmuSession extends EventEmitter<EmuSessionEvents> {
  private stateValue: RunState;
  private actionsValue: SessionActions;
  /** The CPU is halted with nothing to wake it: the VM runs, but no slice is scheduled. */
  private idle = false;
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private budget = 20_000;
  private guestResetInSlice = false;
  private ended = false;
  private readonly sliceMs: number;
  private readonly rebootDelayMs: number;
  private readonly onInternalError: (message: string) => void;
  private readonly onMachineReset = (e: ResetEvent): void => this.machineReset(e);

  /** Serves `machine`; the session owns its execution from now on. */
  constructor(
    readonly machine: Machine,
    options: EmuSessionOptions = {},
  ) {
    super();
    this.sliceMs = options.sliceMs ?? 8;
    this.rebootDelayMs = options.rebootDelayMs ?? 40;
    this.onInternalError = options.onInternalError ?? (() => undefined);
    this.actionsValue =
      machine.tripleFaultAction === 'reset' ? { reboot: 'reset', shutdown: 'poweroff' } : { reboot: 'shutdown', shutdown: 'pause' };
    this.stateValue = machine.status === 'shutdown' ? 'shutdown' : 'prelaunch';
    machine.on('reset', this.onMachineReset);
    if (options.start === 'running') this.cont();
  }

  /** The run state, as `query-status` reports it. */
  get state(): RunState {
    return this.stateValue;
  }

  /** True while the VM runs (including a CPU halted in HLT, which runs but executes nothing). */
  get running(): boolean {
    return this.stateValue === 'running';
  }

  /** True once the session has ended (quit). */
  get hasEnded(): boolean {
    return this.ended;
  }

  /** True when only a reset can make the VM run again (`shutdown`, `internal-error`). */
  get needsReset(): boolean {
    return this.stateValue === 'shutdown' || this.stateValue === 'internal-error';
  }

  /** The current `-action` settings. */
  get actions(): SessionActions {
    return { ...this.actionsValue };
  }

  /** Changes the `-action` settings (QMP `set-action`); what a later triple fault does follows them. */
  setActions(actions: Partial<SessionActions>): void {
    this.actionsValue = { ...this.actionsValue, ...actions };
    // The 'pause' action of a machine config has no QEMU spelling: it stays until reboot= is set.
    if (actions.reboot !== undefined) this.machine.tripleFaultAction = actions.reboot === 'reset' ? 'reset' : 'shutdown';
  }

  /** Runs the VM (QMP `cont`, GDB `c`). A no-op when it runs; throws E_NEEDS_RESET in `shutdown`/`internal-error`. */
  cont(): void {
    this.checkLive();
    if (this.needsReset) throw new SessionError('E_NEEDS_RESET', 'Resetting the Virtual Machine is required');
    if (this.stateValue === 'running') return;
    this.stateValue = 'running';
    this.idle = false;
    this.emit('resume');
    this.schedule(0);
  }

  /**
   * Stops a running VM in `state` (`paused` for QMP `stop`, an interrupt or a new GDB connection,
   * `debug` for a debugger's own stop) and tells every endpoint; a VM that is not running is left
   * as it is. Returns whether it stopped.
   */
  stop(state: 'paused' | 'debug' = 'paused'): boolean {
    if (this.stateValue !== 'running') return false;
    this.unschedule();
    this.machine.pause();
    this.enter({ state, signal: SIGNAL_OF[state], rip: this.machine.cpu.rip });
    return true;
  }

  /**
   * Executes one instruction (GDB `s`): a resume and a stop, as QEMU reports a step. Returns false
   * (doing nothing) when the VM runs or needs a reset.
   */
  step(): boolean {
    this.checkLive();
    if (this.stateValue === 'running' || this.needsReset) return false;
    this.stateValue = 'running';
    this.emit('resume');
    const outcome = this.guard(() => this.machine.step());
    if (outcome) this.afterStop(outcome, true);
    return true;
  }

  /**
   * Resets the VM (QMP `system_reset`). With `reboot=shutdown` this is a shutdown request, as in
   * QEMU: a SHUTDOWN event and the shutdown action, no reset. Otherwise the machine goes back to its
   * start state; a running VM keeps running, a stopped one is left in `prelaunch`.
   */
  systemReset(): void {
    this.checkLive();
    if (this.actionsValue.reboot === 'shutdown') {
      this.shutdownRequested({ guest: false, reason: 'host-qmp-system-reset' });
      return;
    }
    const wasRunning = this.stateValue === 'running';
    this.unschedule();
    this.machine.reset();
    this.idle = false;
    if (wasRunning) this.schedule(0);
    else this.stateValue = 'prelaunch';
  }

  /** Ends the emulator: QMP `quit` and a signal emit SHUTDOWN first, as QEMU does; then `exit`. Idempotent. */
  quit(reason: ExitReason): void {
    if (this.ended) return;
    this.unschedule();
    if (reason === 'host-qmp-quit' || reason === 'host-signal') this.emit('shutdown', { guest: false, reason });
    this.ended = true;
    this.machine.off('reset', this.onMachineReset);
    if (this.stateValue === 'running') this.machine.pause();
    this.emit('exit', reason);
  }

  // ---------------------------------------------------------------- running in slices

  private schedule(delayMs: number): void {
    if (this.scheduled !== null || this.ended) return;
    const tick = (): void => {
      this.scheduled = null;
      this.slice();
    };
    this.scheduled = delayMs > 0 ? setTimeout(tick, delayMs) : setImmediate(tick);
  }

  private unschedule(): void {
    if (this.scheduled === null) return;
    clearTimeout(this.scheduled as NodeJS.Timeout);
    clearImmediate(this.scheduled as NodeJS.Immediate);
    this.scheduled = null;
  }

  /** Runs one slice and decides what comes next. */
  private slice(): void {
    if (this.stateValue !== 'running' || this.idle || this.ended) return;
    const t0 = performance.now();
    this.guestResetInSlice = false;
    const outcome = this.guard(() => this.machine.run({ maxInstructions: this.budget }));
    const ms = performance.now() - t0;
    // Aim each slice at sliceMs, within sane bounds.
    if (ms > 0) this.budget = Math.max(1000, Math.min(2_000_000, Math.round((this.budget * this.sliceMs) / ms)));
    if (outcome) this.afterStop(outcome, false);
  }

  /** Runs `fn`; a throw that is not the machine's way of stopping becomes `internal-error`. */
  private guard(fn: () => StopEvent): StopEvent | null {
    try {
      return fn();
    } catch (e) {
      const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      this.onInternalError(message);
      this.machine.log.unimp(`pagewalk-emu: internal error: ${message}`);
      this.machine.pause();
      this.enter({ state: 'internal-error', signal: SIGNAL_OF['internal-error'], rip: this.machine.cpu.rip, message });
      return null;
    }
  }

  /** Acts on what a step or a slice ended with. */
  private afterStop(s: StopEvent, stepping: boolean): void {
    const stop = (state: VmStop['state'], extra: Partial<VmStop> = {}): void =>
      this.enter({ state, signal: SIGNAL_OF[state], rip: s.rip, ...extra });
    switch (s.reason) {
      case 'limit':
        this.schedule(0);
        return;
      case 'requested':
        // A guest reset asked the slice to end: run on after a reboot's pause (or stop, when stepping).
        if (stepping) stop('debug');
        else this.schedule(this.guestResetInSlice ? this.rebootDelayMs : 0);
        return;
      case 'halted':
        if (stepping) stop('debug');
        else this.idle = true;
        return;
      case 'step':
      case 'breakpoint':
      case 'until':
        stop('debug');
        return;
      case 'watchpoint':
        stop('debug', s.watch ? { watch: { kind: s.watch.kind, address: s.watch.address } } : {});
        return;
      case 'shutdown':
        // The machine's own SHUTDOWN (a triple fault with reboot=shutdown) goes through the shutdown action.
        this.shutdownRequested({ guest: true, reason: 'guest-reset' }, s);
        return;
      case 'triple-fault':
        // The machine config's 'pause' action: stopped at the fault, reported like a shutdown that pauses.
        this.emit('shutdown', { guest: true, reason: 'guest-reset' });
        this.enter({ state: 'paused', signal: SIGNAL_OF.shutdown, rip: s.rip });
        return;
      case 'unsupported':
        stop('internal-error', s.message === undefined ? {} : { message: s.message });
        return;
    }
  }

  /**
   * A shutdown request: the SHUTDOWN event, then the shutdown action: end the emulator, or stop a
   * running VM in `shutdown` (a VM that is not running keeps its state, as vm_stop leaves it).
   */
  private shutdownRequested(e: GuestEvent, at?: StopEvent): void {
    this.emit('shutdown', e);
    if (this.actionsValue.shutdown === 'poweroff') {
      this.quit('guest-shutdown');
      return;
    }
    if (this.stateValue !== 'running') return;
    this.unschedule();
    if (this.machine.status === 'running' || this.machine.status === 'halted') this.machine.pause();
    this.enter({ state: 'shutdown', signal: SIGNAL_OF.shutdown, rip: at?.rip ?? this.machine.cpu.rip });
  }

  /** Enters a stopped state; a running VM tells everyone (QEMU sends STOP only on a running -> stopped change). */
  private enter(stop: VmStop): void {
    const wasRunning = this.stateValue === 'running';
    this.stateValue = stop.state;
    this.idle = false;
    if (wasRunning) this.emit('stop', stop);
  }

  private machineReset(e: ResetEvent): void {
    if (e.guest) {
      // End the slice: a reset loop should not flood the endpoints with thousands of RESET events.
      this.guestResetInSlice = true;
      this.machine.requestStop();
      this.emit('reset', { guest: true, reason: 'guest-reset' });
    } else {
      this.emit('reset', { guest: false, reason: 'host-qmp-system-reset' });
    }
  }

  private checkLive(): void {
    if (this.ended) throw new SessionError('E_ENDED', 'the emulator has quit');
  }
}
