/**
 * How the errors of the wire layers (RSP, QMP, the monitor's text, reads through the monitor)
 * become the one error type of targets, so the CLI prints one line with the right exit status:
 * an endpoint that cannot be opened or is busy is E_OPEN, a connection that goes away while in use
 * is E_LOST, memory QEMU cannot read is E_UNREADABLE, a peer that does not speak its protocol at
 * all is E_FORMAT.
 */
import { HmpError, PhysicalReadError, QmpError } from '../qmp/errors.js';
import { RspError } from '../rsp/errors.js';
import { TargetError } from './target.js';

/** When an error happened: while opening the target, or while using it. */
export type LivePhase = 'open' | 'use';

/**
 * The TargetError for `e`, an error of the RSP or QMP layer met while talking to `peer` (e.g.
 * "the gdbstub at 127.0.0.1:1234"). A TargetError is returned as it is; anything else that is not
 * an error of those layers (a bug) is returned unchanged, so it is never disguised.
 */
export function liveError(e: unknown, peer: string, phase: LivePhase): unknown {
  if (e instanceof TargetError) return e;
  if (e instanceof RspError) {
    if (phase === 'open') return new TargetError(e.code === 'E_PROTOCOL' ? 'E_FORMAT' : 'E_OPEN', e.message);
    if (e.code === 'E_REPLY') return new TargetError('E_UNREADABLE', `${peer}: ${e.message}`);
    return new TargetError('E_LOST', `lost ${peer}: ${e.message}`);
  }
  if (e instanceof QmpError) {
    if (phase === 'open') return new TargetError(e.code === 'E_PROTOCOL' ? 'E_FORMAT' : 'E_OPEN', e.message);
    return new TargetError('E_LOST', `lost ${peer}: ${e.message}`);
  }
  if (e instanceof PhysicalReadError) {
    return new TargetError(e.code === 'E_UNREADABLE' ? 'E_UNREADABLE' : 'E_FORMAT', e.message);
  }
  if (e instanceof HmpError) return new TargetError('E_FORMAT', `${peer}: ${e.message}`);
  return e;
}

/** True when `e` says the connection is gone (closed, or silent past its timeout). */
export function isConnectionLost(e: unknown): boolean {
  if (e instanceof RspError || e instanceof QmpError) return e.code === 'E_CLOSED' || e.code === 'E_TIMEOUT';
  return e instanceof TargetError && e.code === 'E_LOST';
}
