/**
 * Test doubles for the QMP client: a scripted QMP server on a unix socket (or TCP on 127.0.0.1)
 * in a temporary directory (the manual clock is test/helpers/manualClock.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The greeting of QEMU 7.2 as it sends it. */
export const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n';

/** A command the fake server received. */
export type Received = { execute: string; arguments?: Record<string, unknown>; id?: unknown };

/** One client connection, as the fake server sees it. */
export class FakeConnection {
  private buf = '';
  private readonly received: Received[] = [];
  private readonly waiting: ((r: Received) => void)[] = [];
  /** Resolves when the client has closed the connection. */
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const r = JSON.parse(line) as Received;
        const w = this.waiting.shift();
        if (w) w(r);
        else this.received.push(r);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** The next command the client sends. */
  next(): Promise<Received> {
    const r = this.received.shift();
    return r ? Promise.resolve(r) : new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Sends raw text (a line end is not added). */
  send(raw: string): void {
    this.socket.write(raw);
  }

  /** Answers `to` with `{"return": value}`. */
  reply(to: Received, value: unknown): void {
    this.send(`${JSON.stringify({ return: value, id: to.id })}\r\n`);
  }

  /** Answers `to` with an error. */
  fail(to: Received, errorClass: string, desc: string): void {
    this.send(`${JSON.stringify({ error: { class: errorClass, desc }, id: to.id })}\r\n`);
  }

  /** Sends an event. */
  event(name: string, data?: Record<string, unknown>): void {
    const ts = { seconds: 1700000000, microseconds: 5 };
    this.send(`${JSON.stringify(data ? { timestamp: ts, event: name, data } : { timestamp: ts, event: name })}\r\n`);
  }

  /** Closes the connection from the server's side. */
  end(): void {
    this.socket.end();
  }
}

/** A scripted QMP server: the test drives every connection. */
export class FakeQmpServer {
  private readonly pending: FakeConnection[] = [];
  private readonly waiting: ((c: FakeConnection) => void)[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly dir: string | null,
    /** The endpoint to give the client: the socket path, or 127.0.0.1:PORT. */
    readonly endpoint: string,
  ) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      const c = new FakeConnection(s);
      const w = this.waiting.shift();
      if (w) w(c);
      else this.pending.push(c);
    });
  }

  /** Starts a server on a unix socket in a new temporary directory, or on TCP 127.0.0.1 with `tcp`. */
  static async start(tcp = false): Promise<FakeQmpServer> {
    const server = createServer();
    if (tcp) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return new FakeQmpServer(server, null, `127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-fakeqmp-'));
    const path = join(dir, 'qmp.sock');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return new FakeQmpServer(server, dir, path);
  }

  /** The next connection a client makes. */
  nextConnection(): Promise<FakeConnection> {
    const c = this.pending.shift();
    return c ? Promise.resolve(c) : new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Stops listening, drops every connection and removes the directory. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once `condition` holds, polling between I/O callbacks (for up to `ms`). */
export async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms: ${condition.toString()}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
