/**
 * A JSON-RPC client over a real `ws` WebSocket for the tests: calls matched to answers by id, every
 * notification kept in order, `waitFor(method)` with a timeout, and the raw socket for what a
 * misbehaving client does (pausing, sending garbage, vanishing).
 */
import WebSocket from 'ws';

/** A JSON-RPC error answer, as a thrown value. */
export class RpcCallError extends Error {
  constructor(
    readonly rpcCode: number,
    readonly stable: string,
    message: string,
  ) {
    super(message);
    this.name = 'RpcCallError';
  }
}

/** A notification received. */
export interface Note {
  method: string;
  params: Record<string, unknown>;
}

/** One connected test client. */
export class TestClient {
  readonly notes: Note[] = [];
  /** Every message received, parsed, in order. */
  readonly received: unknown[] = [];
  private nextId = 1;
  private readonly pending = new Map<number | string, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const v = JSON.parse(String(data)) as unknown;
      this.received.push(v);
      for (const m of Array.isArray(v) ? v : [v]) this.dispatch(m as Record<string, unknown>);
      for (const w of [...this.waiters]) w();
    });
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
      for (const w of [...this.waiters]) w();
    });
  }

  /** Connects to `url` (with `headers`); rejects with the HTTP status when the server refuses. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => resolve(new TestClient(ws)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body.trim()}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  /** Calls `method`; resolves with the result, rejects with RpcCallError. */
  call<T = Record<string, unknown>>(method: string, params?: unknown): Promise<T> {
    const id = this.nextId++;
    const msg: Record<string, unknown> = { jsonrpc: '2.0', id, method };
    if (params !== undefined) msg.params = params;
    return new Promise<T>((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error('connection closed'));
        return;
      }
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify(msg));
    });
  }

  /** Sends a raw text. */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** The next received message after `count` messages, within `ms`. */
  async nextMessage(count: number, ms = 5000): Promise<unknown> {
    await this.until(() => this.received.length > count, ms, 'a message');
    return this.received[count];
  }

  /** Waits for a notification `method` that satisfies `pred`, within `ms`. */
  async waitFor(method: string, pred: (n: Note) => boolean = () => true, ms = 10_000): Promise<Note> {
    let found: Note | undefined;
    await this.until(() => (found = this.notes.find((n) => n.method === method && pred(n))) !== undefined, ms, `notification ${method}`);
    return found!;
  }

  /** Resolves when the connection is closed, with the close code. */
  closed(): Promise<number> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve(1006);
    return new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
  }

  /** Pauses reading from the socket: the server's sends pile up in its buffer (a client that stopped reading). */
  pauseReading(): void {
    this.socket().pause();
  }

  /** Reads again. */
  resumeReading(): void {
    this.socket().resume();
  }

  /** Closes; a client that does not finish the close handshake in a second is cut off. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const done = this.closed();
    this.resumeReading();
    this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 1000);
    await done;
    clearTimeout(timer);
  }

  private socket(): { pause(): void; resume(): void } {
    // ws keeps its net.Socket private; pausing it is how a test plays a client that stopped reading.
    return (this.ws as unknown as { _socket: { pause(): void; resume(): void } | null })._socket ?? { pause: () => undefined, resume: () => undefined };
  }

  private dispatch(m: Record<string, unknown>): void {
    if ('method' in m) {
      this.notes.push({ method: m.method as string, params: m.params as Record<string, unknown> });
      return;
    }
    const p = this.pending.get(m.id as number);
    if (!p) return;
    this.pending.delete(m.id as number);
    const e = m.error as { code: number; message: string; data: { code: string } } | undefined;
    if (e) p.reject(new RpcCallError(e.code, e.data.code, e.message));
    else p.resolve(m.result);
  }

  private until(ok: () => boolean, ms: number, what: string): Promise<void> {
    if (ok()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ok()) {
          if (this.ws.readyState === WebSocket.CLOSED) finish(new Error(`connection closed while waiting for ${what}`));
          return;
        }
        finish();
      };
      const finish = (e?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`no ${what} in ${ms} ms`)), ms);
      this.waiters.add(check);
    });
  }
}
