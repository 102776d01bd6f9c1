/**
 * pagewalk's side of the proxy as a target: an {@link RspTarget} over an RSP connection to the
 * proxy (in process, or the control socket from another process), with the gdbstub's controls
 * (Debuggee), its breakpoints hardware ones (`Z1`) so that they never meet GDB's `Z0`. Every stop
 * GDB causes reaches it as a stop nobody here asked for: its per-stop cache is dropped and
 * `control.onUnsolicitedStop` listeners (the TUI) are called, so they can refresh. Closing removes
 * its breakpoints and ends its session with the proxy; the guest stays as GDB has it.
 */
import { connect as connectUnix, type Socket } from 'node:net';
import { RspClient } from '../rsp/client.js';
import { liveError } from '../target/liveErrors.js';
import { DEFAULT_REQUEST_MS, type LiveTimeouts } from '../target/qemuTarget.js';
import { RspTarget, type RspTargetOptions } from '../target/rspTarget.js';
import { TargetError } from '../target/target.js';
import type { GdbProxy } from './proxy.js';

/** Options of {@link ProxyTarget}. */
export type ProxyTargetOptions = Pick<RspTargetOptions, 'window' | 'cacheFrames' | 'description'> & Pick<LiveTimeouts, 'requestMs'>;

/** The guest behind a {@link GdbProxy}, read and driven by pagewalk while GDB uses it too. */
export class ProxyTarget extends RspTarget {
  /** A target on `proxy`, in this process; its cache also drops when GDB writes registers or memory. */
  static async inProcess(proxy: GdbProxy, options: ProxyTargetOptions = {}): Promise<ProxyTarget> {
    const client = await RspClient.over(proxy.connect(), { timeoutMs: options.requestMs ?? DEFAULT_REQUEST_MS }, 'pagewalk\'s proxy');
    const target = new ProxyTarget(client, { description: `QEMU (${proxy.gdbstubLabel}) through pagewalk's proxy`, ...options });
    const drop = (): void => target.cache.drop();
    proxy.on('changed', drop);
    target.detachers.push(() => proxy.off('changed', drop));
    return target;
  }

  /**
   * A target on the proxy whose control socket is at `path` (from another process). Throws
   * TargetError (E_OPEN) when nothing listens there.
   */
  static async connect(path: string, options: ProxyTargetOptions & Pick<LiveTimeouts, 'connectMs'> = {}): Promise<ProxyTarget> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connectUnix(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new TargetError('E_OPEN', `pagewalk's proxy at ${path} does not answer`));
      }, options.connectMs ?? 2000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new TargetError('E_OPEN', `cannot connect to pagewalk's proxy at ${path}: ${e.code === 'ENOENT' ? 'no such socket (is `pagewalk proxy` running?)' : e.code === 'ECONNREFUSED' ? 'connection refused (the proxy is gone)' : e.message}`));
      });
    });
    try {
      const client = await RspClient.over(socket, { timeoutMs: options.requestMs ?? DEFAULT_REQUEST_MS }, path);
      return new ProxyTarget(client, { description: `QEMU through pagewalk's proxy at ${path}`, ...options });
    } catch (e) {
      throw liveError(e, `pagewalk's proxy at ${path}`, 'open');
    }
  }

  private readonly detachers: (() => void)[] = [];

  /** Wraps a client connected to a proxy; the target owns it. */
  constructor(client: RspClient, options: ProxyTargetOptions = {}) {
    // Closing "detaches": the client removes its breakpoints and restores its PhyMemMode, and the
    // proxy answers the `D` itself, so the guest is left as GDB has it.
    super(client, { ...options, resumeOnClose: true, breakpoints: 'hardware' });
  }

  protected override async release(): Promise<void> {
    for (const d of this.detachers.splice(0)) d();
    await super.release();
  }
}
