/**
 * A listening socket that serves one client at a time, as QEMU's gdbstub and QMP sockets do: a
 * second connection is accepted but gets no bytes, and nothing it sends is read, until the first
 * one closes; then it is served. TCP or a unix socket path. The emulator's gdbstub and QMP servers
 * and the GDB side of the proxy listen this way.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Where a server listens: TCP (`port` 0 picks a free one; 127.0.0.1 unless a host is given) or a unix socket path. */
export type ListenAddress = { readonly host?: string; readonly port: number } | { readonly path: string };

/** Where a server ended up listening. */
export type BoundAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/** `HOST:PORT` (IPv6 hosts in brackets) or the socket path, as a user would type it (and `gdb -ex 'target remote ...'` takes it). */
export function addressLabel(a: BoundAddress): string {
  return 'path' in a ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Stable codes of {@link ListenError}. */
export type ListenErrorCode =
  /** The address is in use, not permitted, or otherwise cannot be bound (a file that is not a socket is in the way). */
  'E_LISTEN';

/** The socket could not be opened; the message says where and why in one line. */
export class ListenError extends Error {
  constructor(
    readonly code: ListenErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ListenError';
  }
}

/** Removes a leftover unix socket at `path`; refuses to touch anything that is not a socket (ListenError E_LISTEN). */
export function clearSocketPath(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new ListenError('E_LISTEN', `cannot listen on ${path}: a file that is not a socket is in the way`);
  unlinkSync(path);
}

/** Binds `server` to `where` (a leftover unix socket at the path is replaced); resolves with where it ended up. Throws ListenError (E_LISTEN). */
export async function bind(server: Server, where: ListenAddress): Promise<BoundAddress> {
  const label = 'path' in where ? where.path : addressLabel({ host: where.host ?? '127.0.0.1', port: where.port });
  if ('path' in where) clearSocketPath(where.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
      reject(new ListenError('E_LISTEN', `cannot listen on ${label}: ${why}`, { cause: e }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in where) server.listen(where.path, done);
    else server.listen(where.port, where.host ?? '127.0.0.1', done);
  });
  if ('path' in where) return { path: where.path };
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/** A socket that hands its clients, one at a time and in the order they came, to `serve`. */
export class SingleClientListener {
  private active: Socket | null = null;
  private readonly waiting: Socket[] = [];
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    /** Where it listens. */
    readonly address: BoundAddress,
    private readonly serve: (socket: Socket) => void,
  ) {
    server.on('connection', (s) => this.onConnection(s));
  }

  /** Listens on `where` and calls `serve` with each client in turn, once the one before has gone. Throws ListenError (E_LISTEN). */
  static async listen(where: ListenAddress, serve: (socket: Socket) => void): Promise<SingleClientListener> {
    const server = createServer({ pauseOnConnect: true });
    const bound = await bind(server, where);
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
   * Stops listening, closes every connection (the waiting ones too) and removes its unix socket.
   * `drainMs` lets the client being served read what was last written to it (a goodbye such as
   * `W00`) before its connection is cut, at most that long. Closing twice is harmless.
   */
  close(drainMs = 0): Promise<void> {
    this.closing ??= this.shutDown(drainMs);
    return this.closing;
  }

  private async shutDown(drainMs: number): Promise<void> {
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
    if ('path' in this.address) {
      try {
        clearSocketPath(this.address.path);
      } catch {
        // something else took the path meanwhile: not ours to remove
      }
    }
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
    s.setNoDelay?.(true);
    this.serve(s);
    // After `serve`, so its own close handlers (ending the session) run before the next is served.
    s.once('close', () => {
      if (this.active !== s) return;
      this.active = null;
      let next = this.waiting.shift();
      while (next?.destroyed) next = this.waiting.shift();
      if (next && !this.closing) this.activate(next);
    });
    s.resume();
  }
}
