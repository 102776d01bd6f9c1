/**
 * The bytes-to-messages layer of QMP: where to connect (a unix socket path or HOST:PORT), how
 * messages are framed (one JSON object per line, CRLF or LF), and a socket wrapper that turns
 * what QEMU sends into `message` events and anything malformed into `protocolError` events with
 * a stable code — never an exception, never silence.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { systemClock, type Clock } from './clock.js';
import { QmpError } from './errors.js';

/** Where a QMP monitor listens: a unix socket (`-qmp unix:PATH,server=on`) or TCP (`-qmp tcp:HOST:PORT,server=on`). */
export type QmpEndpoint = { readonly path: string } | { readonly host: string; readonly port: number };

/** A JSON object QEMU sent: a greeting, a reply (`return`/`error`) or an event. */
export type QmpMessage = Record<string, unknown>;

/** What {@link encodeMessage} can write: JSON values, plus bigint written as an exact integer. */
export type QmpValue = null | boolean | number | bigint | string | readonly QmpValue[] | { readonly [key: string]: QmpValue | undefined };

/** The longest line accepted by default (64 MiB: `info tlb` of a large 4 KiB-page map is tens of MiB). */
export const DEFAULT_MAX_LINE_BYTES = 64 << 20;

/**
 * Reads `PATH`, `unix:PATH`, `HOST:PORT` or `tcp:HOST:PORT` (`[::1]:4444` for IPv6). Anything with a
 * slash, or without a `:PORT` suffix, is a path. Throws QmpError (E_CONNECT) on an empty string or a bad port.
 */
export function parseEndpoint(text: string): QmpEndpoint {
  const t = text.trim();
  if (t.startsWith('unix:')) return { path: t.slice(5) };
  const hostPort = t.startsWith('tcp:') ? t.slice(4) : t;
  const m = /^(\[[^\]]+\]|[^/:[\]]+):(\d+)$/.exec(hostPort);
  if (m) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new QmpError('E_CONNECT', `bad QMP port in "${text}": ${port} is not in 1..65535`);
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  if (t.startsWith('tcp:')) throw new QmpError('E_CONNECT', `bad QMP endpoint "${text}": expected tcp:HOST:PORT`);
  if (t === '') throw new QmpError('E_CONNECT', 'empty QMP endpoint: give a unix socket path or HOST:PORT');
  return { path: t };
}

/** The endpoint as the user would write it (`PATH` or `HOST:PORT`). */
export function describeEndpoint(endpoint: QmpEndpoint): string {
  if ('path' in endpoint) return endpoint.path;
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/**
 * True when QEMU behind `endpoint` most likely shares this host's file system: a unix socket, or TCP
 * to a loopback address. (A guess: `physical.ts` checks that the files QEMU writes really appear.)
 */
export function isLocalEndpoint(endpoint: QmpEndpoint): boolean {
  if ('path' in endpoint) return true;
  const h = endpoint.host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Serialises a command as one line of JSON (without the line end). Bigints are written as exact
 * integers, so 64-bit values (a `memsave` address as a signed int64) survive; `undefined` fields are left out.
 */
export function encodeMessage(value: QmpValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`QMP cannot carry ${value}`);
      return JSON.stringify(value);
    case 'boolean':
    case 'string':
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${(value as readonly QmpValue[]).map(encodeMessage).join(',')}]`;
  const fields: string[] = [];
  for (const [k, v] of Object.entries(value as { readonly [key: string]: QmpValue | undefined })) {
    if (v !== undefined) fields.push(`${JSON.stringify(k)}:${encodeMessage(v)}`);
  }
  return `{${fields.join(',')}}`;
}

/** What {@link QmpDecoder.feed} yields: a message, or a protocol error (E_PROTOCOL) for a line it had to drop. */
export type DecoderOutput = { kind: 'message'; message: QmpMessage } | { kind: 'error'; error: QmpError };

const LF = 0x0a;
const OPEN_BRACE = 0x7b;

/**
 * Splits the byte stream into lines and each line into a JSON object. Partial input is kept across
 * `feed` calls (a line, even a UTF-8 character, may arrive in pieces). A line that is not a JSON
 * object, or grows past `maxLineBytes`, is dropped with an error and decoding resumes at the next
 * line; a line whose first byte is not `{` is reported at once, without waiting for its end.
 */
export class QmpDecoder {
  private parts: Uint8Array[] = [];
  private size = 0;
  /** Dropping input up to the next LF (after an overlong or non-JSON line start). */
  private skipping = false;
  /** The current line has shown a non-blank byte, and it was `{`. */
  private started = false;

  constructor(readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** Bytes of an unfinished line held for the next `feed`. */
  get pendingBytes(): number {
    return this.size;
  }

  /** Consumes `chunk`; returns the messages and errors it completes, in order. */
  feed(chunk: Uint8Array): DecoderOutput[] {
    const out: DecoderOutput[] = [];
    let at = 0;
    while (at < chunk.length) {
      const nl = chunk.indexOf(LF, at);
      const end = nl < 0 ? chunk.length : nl;
      if (this.skipping) {
        if (nl < 0) return out;
        this.skipping = false;
        at = nl + 1;
        continue;
      }
      const piece = chunk.subarray(at, end);
      if (!this.started) {
        const first = piece.findIndex((b) => !isBlank(b));
        if (first >= 0) {
          if (piece[first] !== OPEN_BRACE) {
            const preview = Buffer.concat([...this.parts, piece.subarray(first)]).toString('utf8');
            this.reset();
            out.push({ kind: 'error', error: notJson(preview, 'it does not start with "{"') });
            if (nl < 0) this.skipping = true;
            at = nl < 0 ? chunk.length : nl + 1;
            continue;
          }
          this.started = true;
        }
      }
      if (this.size + piece.length > this.maxLineBytes) {
        this.reset();
        out.push({
          kind: 'error',
          error: new QmpError('E_PROTOCOL', `QMP sent a line longer than ${this.maxLineBytes} bytes; it was dropped`),
        });
        if (nl < 0) this.skipping = true;
        at = nl < 0 ? chunk.length : nl + 1;
        continue;
      }
      if (nl < 0) {
        this.parts.push(piece.slice());
        this.size += piece.length;
        return out;
      }
      const line = this.parts.length === 0 ? Buffer.from(piece) : Buffer.concat([...this.parts, piece]);
      const wasStarted = this.started;
      this.reset();
      at = nl + 1;
      if (!wasStarted) continue; // a blank line
      out.push(decodeLine(line.toString('utf8')));
    }
    return out;
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.started = false;
  }
}

/** Decodes one line (CR or blanks around it allowed) into a JSON object, or an E_PROTOCOL error. */
export function decodeLine(line: string): DecoderOutput {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'error', error: notJson(line, 'invalid JSON') };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'error', error: notJson(line, 'it is not a JSON object') };
  }
  return { kind: 'message', message: value as QmpMessage };
}

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d;
}

function notJson(text: string, why: string): QmpError {
  const t = text.trim();
  const shown = t.length > 120 ? `${t.slice(0, 120)}...` : t;
  return new QmpError('E_PROTOCOL', `QMP sent a line that is not a JSON object (${why}): ${JSON.stringify(shown)}`);
}

/** Options of {@link QmpTransport.open}. */
export interface TransportOptions {
  /** How long connecting may take (default 5000 ms). */
  timeoutMs?: number;
  /** Where timers come from (default: the system clock). */
  clock?: Clock;
  /** The longest line accepted (default {@link DEFAULT_MAX_LINE_BYTES}). */
  maxLineBytes?: number;
}

/** Events of a {@link QmpTransport}. */
export interface TransportEvents {
  /** A JSON object arrived. */
  message: [message: QmpMessage];
  /** A line was dropped as malformed (code E_PROTOCOL); the stream goes on. */
  protocolError: [error: QmpError];
  /** The connection is gone; `error` says why when it was not closed by us or cleanly by the peer. */
  close: [error: QmpError | null];
}

/** A QMP socket: sends commands as lines, emits what arrives as messages. */
export class QmpTransport extends EventEmitter<TransportEvents> {
  private readonly decoder: QmpDecoder;
  private failure: QmpError | null = null;
  private isClosed = false;
  private readonly closed_: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    readonly endpoint: QmpEndpoint,
    maxLineBytes: number,
  ) {
    super();
    this.decoder = new QmpDecoder(maxLineBytes);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.failure ??= new QmpError('E_CLOSED', `QMP connection to ${describeEndpoint(endpoint)} failed: ${e.code ?? e.message}`);
    });
    this.closed_ = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        this.emit('close', this.failure);
        resolve();
      });
    });
  }

  /** Connects to `endpoint` (call {@link start} to read); rejects with QmpError E_CONNECT (unreachable) or E_TIMEOUT. */
  static open(endpoint: QmpEndpoint, options: TransportOptions = {}): Promise<QmpTransport> {
    const clock = options.clock ?? systemClock;
    const timeoutMs = options.timeoutMs ?? 5000;
    const where = describeEndpoint(endpoint);
    return new Promise((resolve, reject) => {
      const socket = 'path' in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
      const timer = clock.setTimeout(() => {
        socket.destroy();
        reject(new QmpError('E_TIMEOUT', `cannot connect to QMP at ${where}: no connection in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clock.clearTimeout(timer);
        socket.destroy();
        reject(new QmpError('E_CONNECT', `cannot connect to QMP at ${where}: ${connectProblem(e, endpoint)}`));
      });
      socket.once('connect', () => {
        clock.clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new QmpTransport(socket, endpoint, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES));
      });
    });
  }

  /** Starts reading: `message` events flow from now on (listeners are attached first, so none is missed). */
  start(): void {
    if (this.socket.listenerCount('data') === 0) this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** True once the socket has closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Writes one message as a line; throws QmpError (E_CLOSED) when the connection is gone. */
  send(message: QmpValue): void {
    if (this.isClosed || this.socket.destroyed) {
      throw new QmpError('E_CLOSED', `QMP connection to ${describeEndpoint(this.endpoint)} is closed`);
    }
    this.socket.write(`${encodeMessage(message)}\n`);
  }

  /** Closes the connection; resolves once it is closed. */
  close(): Promise<void> {
    this.socket.destroy();
    return this.closed_;
  }

  private onData(chunk: Buffer): void {
    for (const o of this.decoder.feed(chunk)) {
      if (o.kind === 'message') this.emit('message', o.message);
      else this.emit('protocolError', o.error);
    }
  }
}

function connectProblem(e: NodeJS.ErrnoException, endpoint: QmpEndpoint): string {
  if ('path' in endpoint) {
    if (e.code === 'ENOENT') return 'no such socket (start QEMU with -qmp unix:PATH,server=on,wait=off)';
    if (e.code === 'ECONNREFUSED') return 'nobody listens on this socket (QEMU has exited?)';
    if (e.code === 'ENOTSOCK') return 'this file is not a socket';
  } else if (e.code === 'ECONNREFUSED') {
    return 'connection refused (start QEMU with -qmp tcp:HOST:PORT,server=on,wait=off)';
  }
  if (e.code === 'EACCES') return 'permission denied';
  return e.code ?? e.message;
}
