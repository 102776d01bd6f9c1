/**
 * What the TUI runs on: a way to open the target (and to open it again after it was lost), the
 * command line's register overrides, symbols, and where the guest's console and exception log
 * come from when pagewalk has them (the bundled emulator, or a QEMU that pagewalk started).
 */
import type { TargetOptions } from '../cli/session.js';
import type { Stop } from '../target/debuggee.js';
import type { SymbolTable } from '../target/elfSymbols.js';
import type { Target } from '../target/target.js';
import { underneath } from '../watch/driven.js';

/** The TUI's target and what comes with it. */
export interface TuiSource {
  /** One line naming it, for the status line. */
  label: string;
  /** Opens the target; called again by a reconnect after a loss when `canReconnect`. */
  open(): Promise<Target>;
  /** Whether open() may be called again after the target was lost. */
  canReconnect: boolean;
  /** The command line's register overrides and CPU facts. */
  options: TargetOptions;
  symbols: SymbolTable | null;
  /** The console's name in the pane title ("COM1", "QEMU console"). */
  consoleName?: string;
  /** Subscribes to the guest's console (text as it comes); returns the unsubscribe function. */
  console?: (listener: (text: string) => void) => () => void;
  /** The exception log's text written since the last call (the fault pane takes error codes from it). */
  readLog?: () => Promise<string>;
  /** A run already under way when the TUI takes over (a QEMU `launch` resumed); it resolves with the stop that ends it. */
  running?: Promise<Stop> | null;
  /** Called on quit after the target is closed: shuts down what pagewalk started. */
  shutdown?: () => Promise<void>;
}

/** Something with a connection that can close under us. */
interface Closable {
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

function closables(t: Target): Closable[] {
  const out: Closable[] = [];
  const o = t as { client?: unknown; qmp?: unknown };
  for (const c of [o.client, o.qmp]) {
    if (c && typeof (c as Closable).on === 'function' && typeof (c as Closable).off === 'function') out.push(c as Closable);
  }
  const inner = underneath(t);
  if (inner !== t) out.push(...closables(inner));
  return out;
}

/**
 * Calls `onLost` once when a live target's connection closes (QEMU quit or crashed); targets
 * without a connection never call it. Returns the unsubscribe function.
 */
export function onConnectionLost(target: Target, onLost: () => void): () => void {
  const list = closables(target);
  let fired = false;
  const listener = (): void => {
    if (fired) return;
    fired = true;
    onLost();
  };
  for (const c of list) c.on('close', listener);
  return () => {
    for (const c of list) c.off('close', listener);
  };
}
