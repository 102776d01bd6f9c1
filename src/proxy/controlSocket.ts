/**
 * The proxy's second way in, for other pagewalk processes: a unix socket on which the proxy speaks
 * RSP as a stub, scheduling each client's requests around GDB's as it does for clients in its own
 * process. Any number of clients may be connected at once. Other commands use it as a gdbstub:
 * `pagewalk map --gdb unix:PATH`. The TCP address GDB uses is never the way: QEMU, and so the proxy,
 * serves one GDB at a time.
 *
 * By default the socket lives in a new private directory (mode 0700) under the system's temporary
 * directory, removed on close; a path given by the user is created with mode 0600.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bind, clearSocketPath } from '../net/singleClient.js';
import { listening } from './listen.js';
import type { GdbProxy } from './proxy.js';

/** The control socket of a running proxy. */
export class ControlSocket {
  private readonly clients = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    /** The socket's path. */
    readonly path: string,
    /** The private directory created for it, removed on close; null when the user chose the path. */
    private readonly dir: string | null,
    proxy: GdbProxy,
  ) {
    server.on('connection', (s) => {
      this.clients.add(s);
      s.once('close', () => this.clients.delete(s));
      try {
        proxy.attach(s, 'a client of the control socket');
      } catch {
        s.destroy();
      }
    });
  }

  /**
   * Listens at `path`, or in a new private directory when `path` is omitted. A leftover socket at
   * the path is replaced; any other file there is an error. Throws ProxyError (E_LISTEN).
   */
  static async listen(proxy: GdbProxy, path?: string): Promise<ControlSocket> {
    const dir = path === undefined ? mkdtempSync(join(tmpdir(), 'pagewalk-proxy-')) : null;
    const where = path ?? join(dir!, 'control.sock');
    const server = createServer();
    try {
      await listening(() => bind(server, { path: where }));
      chmodSync(where, 0o600);
    } catch (e) {
      server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new ControlSocket(server, where, dir, proxy);
  }

  /** Stops listening, closes the clients' connections and removes the socket (and its directory). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.clients) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    else {
      try {
        clearSocketPath(this.path);
      } catch {
        // not a socket any more: someone else's file now
      }
    }
  }
}
