/**
 * The QMP session: greeting, capabilities negotiation, commands matched to replies by `id`, each
 * with its own timeout, events as a typed stream, and human-monitor commands.
 *
 * QEMU serves one QMP client per socket; a second one is accepted but gets no greeting until the
 * first leaves, so a silent socket is reported as busy (E_BUSY), and the queued connection is
 * closed so it can never take the monitor over later.
 */
import { EventEmitter } from 'node:events';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { QmpError } from './errors.js';
import { checkHmpOutput } from './hmpText.js';
import { QmpTransport, describeEndpoint, parseEndpoint, type QmpEndpoint, type QmpMessage, type QmpValue } from './transport.js';

/** What QEMU says first: its version and the capabilities it offers (`oob`). */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

/** An asynchronous event (`STOP`, `RESUME`, `RESET`, `SHUTDOWN`, ...). */
export interface QmpEvent {
  /** The event's name. */
  event: string;
  /** Its data (`{}` when QEMU sends none). */
  data: Record<string, unknown>;
  /** When QEMU emitted it (seconds and microseconds since the epoch; zeros if it sent none). */
  timestamp: { seconds: number; microseconds: number };
  /** Its position in this connection's event stream, from 1 (see {@link QmpClient.eventCount}). */
  seq: number;
}

/** Options of {@link QmpClient.connect}. */
export interface QmpConnectOptions {
  /** How long connecting, and then the greeting, may each take (default 5000 ms). */
  timeoutMs?: number;
  /** The default timeout of each command (default 30000 ms). */
  requestTimeoutMs?: number;
  /** Where timers come from (default: the system clock). */
  clock?: Clock;
  /** Send `qmp_capabilities` after the greeting (default true); false leaves it to {@link QmpClient.negotiate}. */
  negotiate?: boolean;
  /** Prefix of command ids (default `pw`): ids are `${idPrefix}-1`, `${idPrefix}-2`, ... */
  idPrefix?: string;
  /** The longest line accepted from QEMU (default 64 MiB). */
  maxLineBytes?: number;
  /** How many recent events are kept for {@link QmpClient.waitForEvent}'s `since` (default 256). */
  eventHistory?: number;
}

/** Options of a single command. */
export interface ExecuteOptions {
  /** This command's timeout, instead of the client's `requestTimeoutMs`. */
  timeoutMs?: number;
}

/** Options of {@link QmpClient.waitForEvent}. */
export interface WaitForEventOptions {
  /** Also accept events already received after this {@link QmpClient.eventCount} (default: only future events). */
  since?: number;
  /** Accept only events for which this returns true. */
  match?: (event: QmpEvent) => boolean;
}

/** Events of a {@link QmpClient}. */
export interface QmpClientEvents {
  /** An asynchronous QMP event arrived. */
  event: [event: QmpEvent];
  /** QEMU sent a line that is not QMP (E_PROTOCOL); commands waiting at that moment were rejected with it. */
  protocolError: [error: QmpError];
  /** The connection is gone; `error` says why, or null for a clean close. */
  close: [error: QmpError | null];
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: QmpError): void;
  timer: TimerHandle;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** A connection to a QMP monitor. */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  private greetingValue: QmpGreeting | null = null;
  private greetingWaiter: { resolve(g: QmpGreeting): void; reject(e: QmpError): void } | null = null;
  private readonly pending = new Map<string, Pending>();
  private readonly history: QmpEvent[] = [];
  private readonly historySize: number;
  private readonly requestTimeoutMs: number;
  private readonly idPrefix: string;
  private nextId = 1;
  private events = 0;
  private closeError: QmpError | null = null;

  private constructor(
    private readonly transport: QmpTransport,
    private readonly clock: Clock,
    options: QmpConnectOptions,
  ) {
    super();
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.idPrefix = options.idPrefix ?? 'pw';
    this.historySize = options.eventHistory ?? 256;
    transport.on('message', (m) => this.onMessage(m));
    transport.on('protocolError', (e) => this.onProtocolError(e));
    transport.on('close', (e) => this.onClose(e));
  }

  /**
   * Connects to `endpoint` (a socket path or HOST:PORT, or a parsed endpoint), reads the greeting and
   * negotiates capabilities. Rejects with QmpError: E_CONNECT, E_TIMEOUT (no connection), E_BUSY (no
   * greeting: another client holds the socket), E_PROTOCOL (not QMP), E_CLOSED, E_QMP.
   */
  static async connect(endpoint: string | QmpEndpoint, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
    const clock = options.clock ?? systemClock;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const transport = await QmpTransport.open(ep, { timeoutMs, clock, maxLineBytes: options.maxLineBytes });
    const client = new QmpClient(transport, clock, options);
    try {
      await client.readGreeting(timeoutMs);
      if (options.negotiate ?? true) await client.negotiate();
    } catch (e) {
      await client.close();
      throw e;
    }
    return client;
  }

  /** The greeting QEMU sent when the connection was made. */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new QmpError('E_PROTOCOL', 'no QMP greeting yet');
    return this.greetingValue;
  }

  /** Where this client is connected. */
  get endpoint(): QmpEndpoint {
    return this.transport.endpoint;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.transport.closed;
  }

  /** How many events have arrived so far: a mark for {@link waitForEvent}'s `since`. */
  get eventCount(): number {
    return this.events;
  }

  /** Leaves capabilities negotiation mode (`qmp_capabilities`); rejects with QmpError (E_QMP if already done). */
  async negotiate(): Promise<void> {
    await this.execute('qmp_capabilities');
  }

  /**
   * Runs `command` and resolves with its `return` value. Rejects with QmpError: E_QMP (QEMU's error,
   * with `errorClass` and `desc`), E_TIMEOUT, E_CLOSED, E_PROTOCOL.
   */
  execute<T = unknown>(command: string, args?: Record<string, QmpValue | undefined>, options: ExecuteOptions = {}): Promise<T> {
    if (this.transport.closed) return Promise.reject(this.closedError(command));
    const id = `${this.idPrefix}-${this.nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError('E_TIMEOUT', `QMP ${command}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.transport.send(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id });
      } catch (e) {
        this.settle(id);
        reject(e);
      }
    });
  }

  /**
   * Runs a human-monitor command line (`info tlb`, `xp /4gx 0x1000`, ...) and resolves with its output,
   * line ends as LF. Rejects like {@link execute}, and with HmpError E_HMP_UNKNOWN_COMMAND or
   * E_HMP_USAGE when the monitor rejects the command line.
   */
  async hmp(commandLine: string, options: ExecuteOptions = {}): Promise<string> {
    const out = await this.execute<unknown>('human-monitor-command', { 'command-line': commandLine }, options);
    if (typeof out !== 'string') {
      throw new QmpError('E_PROTOCOL', `QMP human-monitor-command returned ${typeof out}, not the command's text`);
    }
    const text = out.replace(/\r\n/g, '\n');
    checkHmpOutput(text, commandLine);
    return text;
  }

  /**
   * Resolves with the next event named `name` (or, with `since`, the first received after that mark).
   * Rejects with QmpError E_TIMEOUT after `timeoutMs`, or E_CLOSED when the connection goes first.
   */
  waitForEvent(name: string, timeoutMs: number, options: WaitForEventOptions = {}): Promise<QmpEvent> {
    const wanted = (e: QmpEvent): boolean => e.event === name && (options.match?.(e) ?? true);
    if (options.since !== undefined) {
      const seen = this.history.find((e) => e.seq > options.since! && wanted(e));
      if (seen) return Promise.resolve(seen);
    }
    if (this.transport.closed) return Promise.reject(this.closedError(`waiting for ${name}`));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.clock.clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (e: QmpEvent): void => {
        if (!wanted(e)) return;
        done();
        resolve(e);
      };
      const onClose = (): void => {
        done();
        reject(this.closedError(`waiting for ${name}`));
      };
      const timer = this.clock.setTimeout(() => {
        done();
        reject(new QmpError('E_TIMEOUT', `no QMP ${name} event in ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Closes the connection; commands still waiting are rejected with E_CLOSED. Resolves once closed. */
  close(): Promise<void> {
    return this.transport.close();
  }

  /** Waits for the greeting, the first message on the socket; a silent socket is busy (E_BUSY). */
  private readGreeting(timeoutMs: number): Promise<QmpGreeting> {
    const where = describeEndpoint(this.transport.endpoint);
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.greetingWaiter = null;
        reject(
          new QmpError(
            'E_BUSY',
            `no QMP greeting from ${where} in ${timeoutMs} ms: the QMP socket is in use by another client (QEMU serves one at a time; close the other one, or give QEMU a second -qmp socket)`,
          ),
        );
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => {
          this.clock.clearTimeout(timer);
          this.greetingWaiter = null;
          resolve(g);
        },
        reject: (e) => {
          this.clock.clearTimeout(timer);
          this.greetingWaiter = null;
          reject(e);
        },
      };
      this.transport.start();
    });
  }

  private onMessage(m: QmpMessage): void {
    if (!this.greetingValue) {
      const g = greetingOf(m);
      if (g) {
        this.greetingValue = g;
        this.greetingWaiter?.resolve(g);
      } else {
        this.greetingWaiter?.reject(this.notQmp(`expected the {"QMP": ...} greeting, got ${preview(m)}`));
      }
      return;
    }
    if (typeof m.event === 'string') {
      this.onEvent(m);
      return;
    }
    if (!('return' in m) && !('error' in m)) {
      this.onProtocolError(new QmpError('E_PROTOCOL', `QMP sent a message that is neither a reply nor an event: ${preview(m)}`));
      return;
    }
    // QMP answers in order; an error without an id (a command QEMU could not parse) belongs to the oldest one.
    const id = typeof m.id === 'string' ? m.id : 'id' in m ? null : this.pending.keys().next().value;
    const p = id === null || id === undefined ? undefined : this.settle(id);
    if (!p) return; // a reply to a command that timed out
    if ('error' in m) p.reject(qmpErrorOf(p.command, m.error));
    else p.resolve(m.return);
  }

  private onEvent(m: QmpMessage): void {
    const ts = m.timestamp as { seconds?: unknown; microseconds?: unknown } | undefined;
    const e: QmpEvent = {
      event: m.event as string,
      data: isObject(m.data) ? m.data : {},
      timestamp: {
        seconds: typeof ts?.seconds === 'number' ? ts.seconds : 0,
        microseconds: typeof ts?.microseconds === 'number' ? ts.microseconds : 0,
      },
      seq: ++this.events,
    };
    this.history.push(e);
    if (this.history.length > this.historySize) this.history.shift();
    this.emit('event', e);
  }

  private onProtocolError(error: QmpError): void {
    if (!this.greetingValue) {
      this.greetingWaiter?.reject(this.notQmp(error.message));
      return;
    }
    // The dropped line may have been any waiting command's reply: fail them all rather than let them hang.
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
    this.emit('protocolError', error);
  }

  private onClose(error: QmpError | null): void {
    this.closeError = error;
    this.greetingWaiter?.reject(
      new QmpError('E_CLOSED', `QMP at ${describeEndpoint(this.transport.endpoint)} closed the connection before its greeting`),
    );
    for (const id of [...this.pending.keys()]) {
      const p = this.settle(id)!;
      p.reject(this.closedError(p.command));
    }
    this.emit('close', error);
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    this.clock.clearTimeout(p.timer);
    return p;
  }

  private notQmp(why: string): QmpError {
    return new QmpError('E_PROTOCOL', `${describeEndpoint(this.transport.endpoint)} is not a QMP socket: ${why}`);
  }

  private closedError(what: string): QmpError {
    const why = this.closeError ? ` (${this.closeError.message})` : '';
    return new QmpError('E_CLOSED', `QMP ${what}: the connection to ${describeEndpoint(this.transport.endpoint)} is closed${why}`);
  }
}

/** The greeting in `m`, or null when `m` is not one. */
function greetingOf(m: QmpMessage): QmpGreeting | null {
  const q = m.QMP;
  if (!isObject(q) || !isObject(q.version) || !isObject(q.version.qemu)) return null;
  const v = q.version.qemu;
  if (typeof v.major !== 'number' || typeof v.minor !== 'number' || typeof v.micro !== 'number') return null;
  return {
    version: { qemu: { major: v.major, minor: v.minor, micro: v.micro }, package: typeof q.version.package === 'string' ? q.version.package : '' },
    capabilities: Array.isArray(q.capabilities) ? q.capabilities.filter((c): c is string => typeof c === 'string') : [],
  };
}

function qmpErrorOf(command: string, error: unknown): QmpError {
  const e = isObject(error) ? error : {};
  const errorClass = typeof e.class === 'string' ? e.class : 'GenericError';
  const desc = typeof e.desc === 'string' ? e.desc : 'no description';
  return new QmpError('E_QMP', `QMP ${command}: ${desc} (${errorClass})`, { errorClass, desc });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function preview(m: QmpMessage): string {
  const t = JSON.stringify(m);
  return t.length > 120 ? `${t.slice(0, 120)}...` : t;
}
