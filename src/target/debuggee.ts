/**
 * A target that can be driven, not only read: breakpoints, stepping, continuing, interrupting,
 * and the stops that come back. The CR3 watch, #PF catching, the TUI and the APIs drive QEMU's
 * gdbstub and the bundled emulator through this one interface.
 */
import type { Target } from './target.js';

/** Why the guest stopped. */
export type StopCause =
  /** A breakpoint pagewalk (or someone else) inserted. */
  | 'breakpoint'
  /** A single step completed. */
  | 'step'
  /** A watchpoint fired (`watch` says which). */
  | 'watchpoint'
  /** Stopped by an interrupt request, a monitor `stop`, or a new connection (QEMU's T02). */
  | 'interrupted'
  /** The guest shut down and is kept for post-mortem (a triple fault with `-action reboot=shutdown,shutdown=pause`: QEMU's T03). */
  | 'shutdown'
  /** The guest or the emulator is gone (QEMU's W00 / X). */
  | 'exited';

/** A stop, as every driver reports it. */
export interface Stop {
  cause: StopCause;
  /** The signal number of the stop reply (5 for a trap, 2 interrupt, 3 for QEMU's shutdown), where there is one. */
  signal: number | null;
  /** For watchpoints: what kind, and the address as inserted. */
  watch?: { kind: 'write' | 'read' | 'access'; address: bigint };
  /** The exit status, for 'exited'. */
  exitCode?: number;
}

/** The controls of a debuggable target. */
export interface DebugControl {
  /** True while the guest runs (between cont() and the stop it returns). */
  readonly running: boolean;
  /** Inserts an execution breakpoint at a linear address (software where that patches nothing, hardware otherwise). */
  insertBreakpoint(va: bigint): Promise<void>;
  /** Removes it. */
  removeBreakpoint(va: bigint): Promise<void>;
  /** Executes one instruction; resolves with the stop. Implementations retry an empty step (RIP unchanged, QEMU-FACTS §7). */
  step(): Promise<Stop>;
  /** Resumes; resolves with the next stop (breakpoint, interrupt, shutdown, exit). */
  cont(): Promise<Stop>;
  /** Asks a running guest to stop; the pending cont() then resolves with 'interrupted'. */
  interrupt(): Promise<void>;
  /** Writes a register by its target.xml name (rip, rax, cr3 ...). Drops cached state. */
  writeRegister(name: string, value: bigint): Promise<void>;
  /** Calls `listener` for stops nobody asked for (a breakpoint hit after a monitor `cont`, a QMP stop). Returns an unsubscribe function. */
  onUnsolicitedStop(listener: (stop: Stop) => void): () => void;
}

/** A target with controls. */
export interface Debuggee extends Target {
  readonly control: DebugControl;
}

/** True when `t` can be driven. */
export function isDebuggee(t: Target): t is Debuggee {
  return typeof (t as Partial<Debuggee>).control === 'object' && (t as Partial<Debuggee>).control !== null;
}
