/**
 * A listening socket that serves one client at a time, as QEMU's gdbstub and QMP sockets do: a
 * second connection is accepted but gets no bytes, and nothing it sends is read, until the first
 * one closes; then it is served. TCP (127.0.0.1 by default) or a unix socket path.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Where a server listens: TCP (`port` 0 picks a free one) or a unix socket path. */
export type ListenAddress = { host?: string; port: number } | { path: string };

/** Where a server ended up listening. */
export type BoundAddress = { host: string; port: number } | { path: string };

/** `HOST:PORT` or the socket path, as a user would type it. */
export function addressLabel(a: BoundAddress): string {
  return 'path' in a ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Stable codes of {@link ListenError}. */
export type ListenErrorCode =
  /** The address is in use, not permitted, or otherwise cannot be bound. */
  'E_LISTEN';

/** The socket could not be opened; the message says where and why in one line. */
export class ListenError extends Error {
  constructor(
    readonly code: ListenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

/** A socket that hands its clients, one at a time, to `serve`. */
export class SingleClientListener {
  private active: Socket | null = null;
  private readonly waiting: Socket[] = [];
  private closing = false;

  private constructor(
    private readonly server: Server,
    /** Where it listens. */
    readonly address: BoundAddress,
    private readonly serve: (socket: Socket) => void,
  ) {
    server.on('connection', (s) => this.onConnection(s));
  }

  /**
   * Listens on `where` and calls `serve` with each client in turn, once the one before has gone.
   * A stale unix socket file at the path is replaced. Throws ListenError (E_LISTEN).
   */
  static async listen(where: ListenAddress, serve: (socket: Socket) => void): Promise<SingleClientListener> {
    const server = createServer({ pauseOnConnect: true });
    if ('path' in where) removeStaleSocket(where.path);
    const label = 'path' in where ? where.path : `${where.host ?? '127.0.0.1'}:${where.port}`;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EACCES' ? 'permission denied' : (e.code ?? e.message);
        reject(new ListenError('E_LISTEN', `cannot listen on ${label}: ${why}`));
      });
      if ('path' in where) server.listen(where.path, resolve);
      else server.listen(where.port, where.host ?? '127.0.0.1', resolve);
    });
    const a = server.address();
    const bound: BoundAddress = 'path' in where ? { path: where.path } : { host: (a as AddressInfo).address, port: (a as AddressInfo).port };
    return new SingleClientListener(server, bound, serve);
  }

  /** The client being served, if any. */
  get client(): Socket | null {
    return this.active;
  }

  /** How many clients wait for their turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Stops listening and closes every connection, the waiting ones too. `drainMs` lets the client
   * being served read what was last written to it (a goodbye such as `W00`) before its connection
   * is cut, at most that long.
   */
  async close(drainMs = 0): Promise<void> {
    this.closing = true;
    for (const s of this.waiting) s.destroy();
    this.waiting.length = 0;
    const active = this.active;
    this.active = null;
    if (active && drainMs > 0 && !active.destroyed) {
      active.end();
      setTimeout(() => active.destroy(), drainMs).unref();
    } else {
      active?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(s: Socket): void {
    s.on('error', () => undefined);
    if (this.closing) {
      s.destroy();
      return;
    }
    if (this.active) {
      this.waiting.push(s);
      s.once('close', () => {
        const i = this.waiting.indexOf(s);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    this.activate(s);
  }

  private activate(s: Socket): void {
    this.active = s;
    s.once('close', () => {
      if (this.active !== s) return;
      this.active = null;
      let next = this.waiting.shift();
      while (next?.destroyed) next = this.waiting.shift();
      if (next && !this.closing) this.activate(next);
    });
    s.setNoDelay(true);
    this.serve(s);
    s.resume();
  }
}

/** Removes a leftover unix socket file at `path` (never a regular file). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // nothing there
  }
}
