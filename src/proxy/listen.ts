/**
 * Where the proxy listens for GDB, and the listening socket itself. GDB is served one at a time, as
 * QEMU's gdbstub serves its clients: a second GDB is accepted but hears nothing, and nothing it sends
 * is read, until the first one leaves.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ProxyError } from './errors.js';

/** A TCP address (`port` 0 picks a free one) or a unix socket path. */
export type ListenAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/**
 * Parses `HOST:PORT`, `:PORT` (127.0.0.1), `[::1]:PORT`, `unix:PATH` or a path with a slash. Port 0
 * picks a free port. Throws ProxyError (E_ADDRESS) on anything else.
 */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  if (t.startsWith('unix:')) {
    if (t.length === 5) throw new ProxyError('E_ADDRESS', `'${text}': unix: needs a socket path`);
    return { path: t.slice(5) };
  }
  const m = /^(\[[^\]]+\]|[^:/\s[\]]*):(\d+)$/.exec(t);
  if (m) {
    const port = Number(m[2]);
    if (port > 65535) throw new ProxyError('E_ADDRESS', `'${text}': the port must be 0..65535`);
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port };
  }
  if (t.includes('/')) return { path: t };
  throw new ProxyError('E_ADDRESS', `'${text}' is not an address to listen on: expected HOST:PORT (e.g. 127.0.0.1:1235, port 0 for any free one) or a unix socket path`);
}

/** The address as a user would type it (and as `gdb -ex 'target remote ...'` takes it). */
export function listenLabel(a: ListenAddress): string {
  return 'path' in a ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Removes a leftover unix socket at `path`; refuses to touch anything that is not a socket. */
export function clearSocketPath(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new ProxyError('E_LISTEN', `cannot listen on ${path}: a file that is not a socket is in the way`);
  unlinkSync(path);
}

/** Binds `server` to `where`; resolves with where it ended up. Throws ProxyError (E_LISTEN). */
export async function bind(server: Server, where: ListenAddress): Promise<ListenAddress> {
  if ('path' in where) clearSocketPath(where.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
      reject(new ProxyError('E_LISTEN', `cannot listen on ${listenLabel(where)}: ${why}`, { cause: e }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in where) server.listen(where.path, done);
    else server.listen(where.port, where.host, done);
  });
  if ('path' in where) return where;
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/** A listening socket that hands its clients to `serve` one at a time, in the order they came. */
export class OneAtATime {
  private active: Socket | null = null;
  private readonly waiting: Socket[] = [];
  private closing = false;

  private constructor(
    private readonly server: Server,
    /** Where it listens. */
    readonly address: ListenAddress,
    private readonly serve: (socket: Socket) => void,
  ) {
    server.on('connection', (s) => this.onConnection(s));
  }

  /** Listens on `where`. Throws ProxyError (E_LISTEN). */
  static async listen(where: ListenAddress, serve: (socket: Socket) => void): Promise<OneAtATime> {
    const server = createServer({ pauseOnConnect: true });
    const bound = await bind(server, where);
    return new OneAtATime(server, bound, serve);
  }

  /** How many clients wait for their turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Stops listening and closes every connection, waiting ones too. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const s of [this.active, ...this.waiting]) s?.destroy();
    this.waiting.length = 0;
    this.active = null;
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
    if (this.closing) return void s.destroy();
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
