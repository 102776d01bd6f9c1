/**
 * The combined live target (`--gdb` with `--qmp`): RSP for registers and memory (fast, pipelined),
 * QMP for what RSP lacks: `info registers` for GDTR, IDTR, TR and the segment caches, the CPU's
 * QOM properties, `info mtree -f` for the RAM layout, and the run state (`query-status` before the
 * gdbstub is touched, so pagewalk knows whether connecting stopped the guest; STOP, RESUME and RESET
 * events drop the per-stop cache).
 *
 * {@link openLiveTarget} is what the CLI calls: it picks the target for the endpoints given and
 * adds `--mem-path` on top.
 */
import type { QmpClient, QmpEvent } from '../qmp/client.js';
import { describeEndpoint, type QmpEndpoint } from '../qmp/transport.js';
import type { RspClient } from '../rsp/client.js';
import type { RspEndpoint } from '../rsp/endpoint.js';
import { liveError } from './liveErrors.js';
import { MemPathTarget } from './memPath.js';
import { qmpMonitor } from './qemuMonitor.js';
import type { LiveTimeouts, QemuTarget } from './qemuTarget.js';
import { QmpTarget, connectQmp, runState } from './qmpTarget.js';
import { RspTarget, connectGdbstub, type RspTargetOptions } from './rspTarget.js';
import type { Target } from './target.js';

/** Events after which nothing read before can be trusted. */
const MOVING_EVENTS = new Set(['STOP', 'RESUME', 'RESET', 'SHUTDOWN', 'SUSPEND', 'WAKEUP']);

/** A QEMU reached through both its gdbstub and QMP. */
export class LiveTarget extends RspTarget {
  /**
   * Connects to QMP, reads the run state, then connects to the gdbstub (which stops a running
   * guest; closing resumes it). Throws TargetError as {@link connectQmp} and {@link connectGdbstub}.
   */
  static async connect(gdb: RspEndpoint, qmp: string | QmpEndpoint, options: Omit<RspTargetOptions, 'monitor' | 'resumeOnClose'> & LiveTimeouts = {}): Promise<LiveTarget> {
    const q = await connectQmp(qmp, options);
    try {
      const state = await runState(q);
      const rsp = await connectGdbstub(gdb, options);
      return new LiveTarget(rsp, q, state.running, options);
    } catch (e) {
      await q.close();
      throw liveError(e, `QMP at ${describeEndpoint(q.endpoint)}`, 'open');
    }
  }

  /** Wraps both clients; `wasRunning` is what QMP said before the gdbstub stopped the guest. The target owns both. */
  constructor(
    client: RspClient,
    readonly qmp: QmpClient,
    wasRunning: boolean,
    options: Omit<RspTargetOptions, 'monitor' | 'resumeOnClose'> = {},
  ) {
    super(client, {
      ...options,
      monitor: qmpMonitor(qmp),
      resumeOnClose: wasRunning,
      description: options.description ?? `QEMU gdbstub at ${client.endpoint} with QMP at ${describeEndpoint(qmp.endpoint)}`,
    });
    qmp.on('event', (e: QmpEvent) => {
      if (MOVING_EVENTS.has(e.event)) this.cache.drop();
    });
  }

  protected override async release(): Promise<void> {
    try {
      await super.release();
    } finally {
      await this.qmp.close();
    }
  }
}

/** Where a live QEMU is, and how to read its RAM. */
export interface LiveTargetOptions extends LiveTimeouts {
  /** The gdbstub: `HOST:PORT`, `unix:PATH`. */
  gdb?: RspEndpoint;
  /** The QMP socket: a path or `HOST:PORT`. */
  qmp?: string | QmpEndpoint;
  /** The file behind the guest's RAM (`memory-backend-file,mem-path=FILE,share=on`). */
  memPath?: string;
}

/**
 * Opens the live target the options name: the gdbstub, QMP, or both ({@link LiveTarget}); with
 * `memPath`, RAM is read from that file on top of it. Throws TargetError (E_OPEN, E_FORMAT), and
 * RangeError when neither endpoint is given.
 */
export async function openLiveTarget(o: LiveTargetOptions): Promise<Target> {
  let base: QemuTarget;
  if (o.gdb !== undefined && o.qmp !== undefined) base = await LiveTarget.connect(o.gdb, o.qmp, o);
  else if (o.gdb !== undefined) base = await RspTarget.open(o.gdb, o);
  else if (o.qmp !== undefined) base = await QmpTarget.open(o.qmp, o);
  else throw new RangeError('a live target needs a gdbstub endpoint, a QMP endpoint, or both');
  if (o.memPath === undefined) return base;
  try {
    return await MemPathTarget.open(base, o.memPath);
  } catch (e) {
    await base.close().catch(() => undefined);
    throw e;
  }
}
