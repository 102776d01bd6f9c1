/**
 * Stop replies as the Debuggee interface reports them: why the guest stopped, from the signal and
 * the fields of QEMU's `T`/`S`/`W`/`X` packets (QEMU-FACTS §2.5: 5 for a breakpoint, a step or a
 * watchpoint, 2 for an interrupt or a QMP `stop`, 3 for a shutdown kept for post-mortem).
 */
import { GdbSignal, type StopReply } from '../rsp/codec.js';
import type { Stop } from '../target/debuggee.js';

/** The Stop a stop reply means; `stepping` says whether it ends a single step. */
export function stopFromReply(reply: StopReply, stepping: boolean): Stop {
  if (reply.kind !== 'stopped') {
    return reply.kind === 'exited' ? { cause: 'exited', signal: null, exitCode: reply.code } : { cause: 'exited', signal: reply.code };
  }
  const signal = reply.signal;
  if (signal === GdbSignal.TRAP) {
    if (reply.watch) return { cause: 'watchpoint', signal, watch: { kind: reply.watch.kind, address: reply.watch.address } };
    return { cause: stepping ? 'step' : 'breakpoint', signal };
  }
  if (signal === GdbSignal.QUIT) return { cause: 'shutdown', signal };
  // SIGINT, and what else a stub may report (KVM's internal error comes as SIGABRT): the guest stands still.
  return { cause: 'interrupted', signal };
}
