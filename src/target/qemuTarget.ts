/**
 * What the live targets (gdbstub, QMP, both) share beyond the Target interface: a QEMU monitor to
 * ask, the memory layout it reports, and the time limits of talking to QEMU.
 */
import type { FlatRange } from './mtree.js';
import type { QemuMonitor } from './qemuMonitor.js';
import type { Target } from './target.js';

/** A target backed by a running QEMU. */
export interface QemuTarget extends Target {
  /** QEMU's human monitor, when this target reaches one. */
  readonly monitor: QemuMonitor | null;
  /** The guest-physical ranges the CPU sees (`info mtree -f`), or null when QEMU cannot be asked. */
  memoryMap(): Promise<FlatRange[] | null>;
}

/** Time limits of a live target. */
export interface LiveTimeouts {
  /**
   * How long connecting may take, and how long an endpoint that accepted the connection may stay
   * silent before it is reported as held by another client (default {@link DEFAULT_CONNECT_MS}).
   */
  connectMs?: number;
  /** How long each request may take (default {@link DEFAULT_REQUEST_MS}). */
  requestMs?: number;
}

/** QEMU answers a new client in well under a millisecond; a queued second client hears nothing at all. */
export const DEFAULT_CONNECT_MS = 2000;

/** Per request: generous, since `info mtree -f` or a large `pmemsave` on a loaded host take a while. */
export const DEFAULT_REQUEST_MS = 15_000;
