/**
 * A target as the watches drive it: its controls (its own, or those of the target a `--mem-path`
 * target takes its registers from), RIP read cheaply between single steps, and the guest's run
 * state (`shutdown` after a triple fault kept for post-mortem).
 */
import { linearIp } from '../paging/cpu.js';
import { HmpError } from '../qmp/errors.js';
import { isDebuggee, type DebugControl } from '../target/debuggee.js';
import { EmuTarget } from '../target/emuTarget.js';
import type { QemuMonitor } from '../target/qemuMonitor.js';
import { RspTarget } from '../target/rspTarget.js';
import type { Target } from '../target/target.js';
import { WatchError } from './errors.js';

/** The target underneath a wrapper that reads RAM elsewhere (`--mem-path`), else the target itself. */
export function underneath(target: Target): Target {
  const inner = (target as { inner?: unknown }).inner;
  return inner && typeof inner === 'object' && 'cpuState' in inner ? (inner as Target) : target;
}

/** The controls of `target`, or null for one that cannot be driven (a dump, QMP alone). */
export function controlOf(target: Target): DebugControl | null {
  if (isDebuggee(target)) return target.control;
  const t = underneath(target);
  return isDebuggee(t) ? t.control : null;
}

/** The controls of `target` for `command`; throws WatchError E_NOT_DRIVABLE when it has none (a dump, QMP alone). */
export function requireControl(target: Target, command: string): DebugControl {
  const control = controlOf(target);
  if (!control) {
    throw new WatchError('E_NOT_DRIVABLE', `${target.info.description} cannot be driven (no breakpoints, no steps): ${command} needs --gdb HOST:PORT or --emu SCENARIO`);
  }
  return control;
}

/** Where the guest stands (a linear address, see linearIp), with as little as the target allows: one `g` from a gdbstub, the CPU's field in the emulator. */
export async function quickRip(target: Target): Promise<bigint> {
  const t = underneath(target);
  if (t instanceof EmuTarget) return t.machine.cpu.rip;
  if (t instanceof RspTarget) return t.linearRip();
  return linearIp(await target.cpuState());
}

/** QEMU's run states (`query-status`), and null when the target cannot tell. */
export type GuestRunState = 'running' | 'paused' | 'debug' | 'shutdown' | 'prelaunch' | 'internal-error' | 'other';

/** What `info status` says: `VM status: running`, `VM status: paused (shutdown)`. */
export function parseInfoStatus(text: string): GuestRunState | null {
  const m = /VM status: (\w+)(?: \(([\w-]+)\))?/.exec(text);
  if (!m) return null;
  const word = (m[2] ?? m[1])!.toLowerCase();
  const known: readonly GuestRunState[] = ['running', 'paused', 'debug', 'shutdown', 'prelaunch', 'internal-error'];
  return (known as readonly string[]).includes(word) ? (word as GuestRunState) : 'other';
}

/** The guest's run state, or null when the target cannot tell (a dump, a stub that is not QEMU). */
export async function guestRunState(target: Target): Promise<GuestRunState | null> {
  const t = underneath(target);
  if (t instanceof EmuTarget) {
    const status = t.machine.status;
    return status === 'shutdown' ? 'shutdown' : status === 'paused' ? 'paused' : 'running';
  }
  const monitor = (t as { monitor?: QemuMonitor | null }).monitor;
  if (!monitor) return null;
  try {
    return parseInfoStatus(await monitor.hmp('info status'));
  } catch (e) {
    if (e instanceof HmpError) return null;
    throw e;
  }
}
