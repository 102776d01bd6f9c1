/**
 * What the emulator's gdbstub and QMP servers share: a socket that serves one client at a time
 * (src/net/singleClient.ts), the connection being served, and closing (letting the client read a
 * last goodbye first). Each server says how a connection starts and what it listens to on its session.
 */
import type { Socket } from 'node:net';
import { SingleClientListener, addressLabel, type BoundAddress, type ListenAddress } from '../net/singleClient.js';

/** A server of one session, one client at a time; `C` is its connection. */
export abstract class SingleClientServer<C> {
  /** The connection being served. */
  protected connection: C | null = null;
  private listener: SingleClientListener | null = null;
  private closing: Promise<void> | null = null;

  /** Where the server listens. */
  get address(): BoundAddress {
    return this.listener!.address;
  }

  /** `HOST:PORT` or the socket path. */
  get label(): string {
    return addressLabel(this.address);
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    await this.shutDown(0);
  }

  /** Listens on `where`; when that fails the server lets go of its session. Throws ListenError. */
  protected async start(where: ListenAddress): Promise<void> {
    try {
      this.listener = await SingleClientListener.listen(where, (s) => this.accept(s));
    } catch (e) {
      this.detachSession();
      throw e;
    }
  }

  /** Closes, letting the client read what was last sent (a goodbye) for at most `drainMs`. */
  protected shutDown(drainMs: number): Promise<void> {
    if (!this.closing) {
      this.detachSession();
      this.connection = null;
      this.closing = this.listener ? this.listener.close(drainMs) : Promise.resolve();
    }
    return this.closing;
  }

  /** The connection for a client that has just got its turn. */
  protected abstract connect(socket: Socket): C;

  /** What happens once `conn` is the connection being served (a greeting, a stop). */
  protected abstract opened(conn: C): void;

  /** Stops listening to the session's events. */
  protected abstract detachSession(): void;

  private accept(socket: Socket): void {
    const conn = this.connect(socket);
    this.connection = conn;
    socket.once('close', () => {
      if (this.connection === conn) this.connection = null;
    });
    this.opened(conn);
  }
}
