/**
 * The target `launch` hands to the TUI: QEMU's gdbstub with pagewalk's own QMP socket (a
 * LiveTarget), with the gdbstub's controls (Debuggee), so the guest launch resumes runs under
 * `control.cont()` and a stop, an interrupt or a triple fault ends that run like any other.
 */
import { liveError } from '../target/liveErrors.js';
import { LiveTarget } from '../target/liveTarget.js';
import { connectQmp, runState } from '../target/qmpTarget.js';
import { connectGdbstub } from '../target/rspTarget.js';
import { describeEndpoint } from '../qmp/transport.js';

/** A launched QEMU as a driveable target. */
export class LaunchTarget extends LiveTarget {
  /** Connects to QMP (reading the run state first) and then the gdbstub. Throws TargetError (E_OPEN, E_FORMAT). */
  static async attach(gdb: string, qmp: string): Promise<LaunchTarget> {
    const q = await connectQmp(qmp);
    try {
      const state = await runState(q);
      return new LaunchTarget(await connectGdbstub(gdb), q, state.running);
    } catch (e) {
      await q.close();
      throw liveError(e, `QMP at ${describeEndpoint(q.endpoint)}`, 'open');
    }
  }
}
