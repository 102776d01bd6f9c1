/**
 * The emulator's QMP monitor, answering like QEMU 7.2 (QEMU-FACTS.md §4): the greeting, capabilities
 * negotiation, `query-status`, `stop`, `cont`, `system_reset`, `set-action`, `human-monitor-command`
 * (the same HMP commands as the gdbstub's `monitor`), `query-cpus-fast`, `qom-get`, `query-version`,
 * `query-commands`, `pmemsave`, `memsave` and `quit`; the events STOP, RESUME, RESET and SHUTDOWN
 * with QEMU's shapes and timestamps, sent once capabilities are negotiated. One client at a time.
 * Replies are written as QEMU writes them (`{"return": {}, "id": 1}`, `": "` and `", "`, CRLF).
 * Malformed input gets QEMU's error answer, never a crash: a line that is not JSON a JSON parse
 * error, a value that is not an object or lacks `execute` a GenericError, an unknown command
 * CommandNotFound. An object split over several lines is put back together first.
 */
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { hex } from './bits.js';
import { HmpMonitor } from './hmpCommands.js';
import { CPU_QOM_PATH, qomGet } from './qomProperties.js';
import { SessionError, type EmuSession, type GuestEvent } from './session.js';
import type { ListenAddress } from '../net/singleClient.js';
import { SingleClientServer } from './singleClientServer.js';

/** A JSON value as QMP carries it. */
export type QmpJson = null | boolean | number | string | QmpJson[] | { [key: string]: QmpJson };

/** An event's timestamp, as QEMU stamps it. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/** Options of {@link QmpServer.listen}. */
export interface QmpServerOptions {
  /** Where event timestamps come from (default: the system clock, to the microsecond). */
  clock?: () => QmpTimestamp;
  /** The `package` string of the greeting and `query-version` (default `pagewalk-emu`). */
  package?: string;
  /** The thread id `query-cpus-fast` and `info cpus` report (default: this process's pid). */
  threadId?: number;
}

/** The QEMU version the emulator answers as: the one whose behaviour it reproduces. */
const VERSION = { micro: 22, minor: 2, major: 7 } as const;

/** How long a client may take to read the last events before its connection is cut, when the emulator ends. */
const DRAIN_MS = 500;

/** The longest a message may grow over several lines before it is dropped as unparseable. */
const MAX_MESSAGE_BYTES = 1 << 20;

/** The system clock, to the microsecond. */
function systemClock(): QmpTimestamp {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** `value` as QEMU's JSON writer spells it: `{"a": 1, "b": [2, 3]}`. */
export function qemuJson(value: QmpJson): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(qemuJson).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${qemuJson(v)}`)
    .join(', ')}}`;
}

/** The QMP monitor of one session. */
export class QmpServer extends SingleClientServer<QmpConnection> {
  /** The human monitor behind `human-monitor-command` (one per QMP monitor, as in QEMU). */
  readonly monitor: HmpMonitor;
  readonly clock: () => QmpTimestamp;
  readonly packageName: string;
  readonly threadId: number;
  private readonly onStop = (): void => this.connection?.event('STOP');
  private readonly onResume = (): void => this.connection?.event('RESUME');
  private readonly onReset = (e: GuestEvent): void => this.connection?.event('RESET', { guest: e.guest, reason: e.reason });
  private readonly onShutdown = (e: GuestEvent): void => this.connection?.event('SHUTDOWN', { guest: e.guest, reason: e.reason });
  private readonly onExit = (): void => void this.shutDown(DRAIN_MS);

  private constructor(
    readonly session: EmuSession,
    options: QmpServerOptions,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.packageName = options.package ?? 'pagewalk-emu';
    this.threadId = options.threadId ?? process.pid;
    this.monitor = new HmpMonitor(session, { threadId: this.threadId });
    session.on('stop', this.onStop);
    session.on('resume', this.onResume);
    session.on('reset', this.onReset);
    session.on('shutdown', this.onShutdown);
    session.on('exit', this.onExit);
  }

  /** Serves `session` on `where` (a unix socket path, or TCP on 127.0.0.1 unless a host is given). Throws ListenError. */
  static async listen(session: EmuSession, where: ListenAddress, options: QmpServerOptions = {}): Promise<QmpServer> {
    const server = new QmpServer(session, options);
    await server.start(where);
    return server;
  }

  protected connect(socket: Socket): QmpConnection {
    return new QmpConnection(socket, this);
  }

  protected opened(conn: QmpConnection): void {
    conn.greet();
  }

  protected detachSession(): void {
    this.session.off('stop', this.onStop);
    this.session.off('resume', this.onResume);
    this.session.off('reset', this.onReset);
    this.session.off('shutdown', this.onShutdown);
    this.session.off('exit', this.onExit);
  }
}

/** An error reply: QEMU's class and description. */
class QmpFailure extends Error {
  constructor(
    readonly errorClass: string,
    desc: string,
  ) {
    super(desc);
  }
}

const generic = (desc: string): QmpFailure => new QmpFailure('GenericError', desc);

/** The arguments of a command, checked: unknown names, missing ones and wrong types are QEMU's GenericErrors. */
class Args {
  private readonly used = new Set<string>();

  constructor(private readonly values: Record<string, QmpJson>) {}

  private take(name: string): QmpJson | undefined {
    this.used.add(name);
    return this.values[name];
  }

  string(name: string, required: true): string;
  string(name: string, required?: false): string | undefined;
  string(name: string, required = false): string | undefined {
    const v = this.take(name);
    if (v === undefined) {
      if (required) throw generic(`Parameter '${name}' is missing`);
      return undefined;
    }
    if (typeof v !== 'string') throw generic(`Invalid parameter type for '${name}', expected: string`);
    return v;
  }

  integer(name: string, required: true): number;
  integer(name: string, required?: false): number | undefined;
  integer(name: string, required = false): number | undefined {
    const v = this.take(name);
    if (v === undefined) {
      if (required) throw generic(`Parameter '${name}' is missing`);
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 2 ** 63) throw generic(`Invalid parameter type for '${name}', expected: integer`);
    return v;
  }

  choice(name: string, allowed: readonly string[]): string | undefined {
    const v = this.string(name);
    if (v !== undefined && !allowed.includes(v)) throw generic(`Parameter '${name}' does not accept value '${v}'`);
    return v;
  }

  list(name: string): QmpJson[] | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw generic(`Invalid parameter type for '${name}', expected: array`);
    return v;
  }

  /** Throws for an argument no getter asked for. */
  done(): void {
    for (const k of Object.keys(this.values)) if (!this.used.has(k)) throw generic(`Parameter '${k}' is unexpected`);
  }
}

type Handler = (server: QmpServer, args: Args) => QmpJson;

const noArgs =
  (fn: (server: QmpServer) => QmpJson): Handler =>
  (server, args) => {
    args.done();
    return fn(server);
  };

const COMMANDS: Record<string, Handler> = {
  'query-status': noArgs((s) => ({ status: s.session.state, singlestep: false, running: s.session.running })),
  stop: noArgs((s) => (s.session.stop('paused'), {})),
  cont: noArgs((s) => {
    try {
      s.session.cont();
    } catch (e) {
      if (e instanceof SessionError) throw generic(e.message);
      throw e;
    }
    return {};
  }),
  system_reset: noArgs((s) => (s.session.systemReset(), {})),
  quit: noArgs((s) => {
    setImmediate(() => s.session.quit('host-qmp-quit'));
    return {};
  }),
  'set-action': (s, args) => {
    const reboot = args.choice('reboot', ['reset', 'shutdown']) as 'reset' | 'shutdown' | undefined;
    const shutdown = args.choice('shutdown', ['poweroff', 'pause']) as 'poweroff' | 'pause' | undefined;
    args.choice('panic', ['pause', 'shutdown', 'exit-failure', 'none']);
    args.choice('watchdog', ['reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none', 'inject-nmi']);
    args.done();
    s.session.setActions({ ...(reboot ? { reboot } : {}), ...(shutdown ? { shutdown } : {}) });
    return {};
  },
  'human-monitor-command': (s, args) => {
    const line = args.string('command-line', true);
    args.integer('cpu-index');
    args.done();
    return s.monitor.execute(line);
  },
  'query-cpus-fast': noArgs((s) => [
    { 'thread-id': s.threadId, props: { 'core-id': 0, 'thread-id': 0, 'socket-id': 0 }, 'qom-path': CPU_QOM_PATH, 'cpu-index': 0, target: 'x86_64' },
  ]),
  'qom-get': (s, args) => {
    const path = args.string('path', true);
    const property = args.string('property', true);
    args.done();
    const r = qomGet(s.session.machine.features, path, property);
    if (!r.ok) throw new QmpFailure(r.errorClass, r.desc);
    return r.value;
  },
  'query-version': noArgs((s) => ({ qemu: { ...VERSION }, package: s.packageName })),
  'query-commands': noArgs(() => ['qmp_capabilities', ...Object.keys(COMMANDS)].map((name) => ({ name }))),
  pmemsave: (s, args) => {
    const val = BigInt.asUintN(64, BigInt(args.integer('val', true)));
    const size = args.integer('size', true);
    const filename = args.string('filename', true);
    args.done();
    const ram = BigInt(s.session.machine.memory.ramSize);
    const bytes = new Uint8Array(size);
    if (val < ram) bytes.set(s.session.machine.readPhysical(val, Math.min(size, Number(ram - val))));
    save(filename, bytes);
    return {};
  },
  memsave: (s, args) => {
    const val = BigInt.asUintN(64, BigInt(args.integer('val', true)));
    const size = args.integer('size', true);
    const filename = args.string('filename', true);
    args.integer('cpu-index');
    args.done();
    let bytes: Uint8Array;
    try {
      bytes = s.session.machine.readVirtual(val, size);
    } catch {
      throw generic(`Invalid addr 0x${hex(val, 16)}/size ${size} specified`);
    }
    save(filename, bytes);
    return {};
  },
};

function save(filename: string, bytes: Uint8Array): void {
  try {
    writeFileSync(filename, bytes);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw generic(`Could not open '${filename}': ${err.code === 'ENOENT' ? 'No such file or directory' : err.code === 'EACCES' ? 'Permission denied' : err.message}`);
  }
}

/** One client: lines in, replies and events out. */
class QmpConnection {
  private negotiated = false;
  /** Text of a message not complete yet. */
  private pending = '';
  /** Dropping input up to the next line end (after an oversized message). */
  private skipping = false;

  constructor(
    private readonly socket: Socket,
    private readonly server: QmpServer,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.onText(text));
  }

  /** Sends the greeting. */
  greet(): void {
    this.write({ QMP: { version: { qemu: { ...VERSION }, package: this.server.packageName }, capabilities: ['oob'] } });
  }

  /** Sends an event, once the client has negotiated capabilities (QEMU sends none before). */
  event(name: string, data?: { [key: string]: QmpJson }): void {
    if (!this.negotiated) return;
    const { seconds, microseconds } = this.server.clock();
    this.write({ timestamp: { seconds, microseconds }, event: name, ...(data ? { data } : {}) });
  }

  private write(value: QmpJson): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(`${qemuJson(value)}\r\n`);
  }

  private onText(text: string): void {
    let at = 0;
    for (let nl = text.indexOf('\n', at); nl >= 0; nl = text.indexOf('\n', at)) {
      if (this.skipping) this.skipping = false;
      else this.onLine(text.slice(at, nl));
      at = nl + 1;
    }
    if (this.skipping) return;
    this.pending += text.slice(at);
    if (this.pending.length > MAX_MESSAGE_BYTES) {
      // Drop the rest of this line too: one error per oversized message.
      this.pending = '';
      this.skipping = true;
      this.reply(undefined, generic('JSON parse error, message too large'));
    }
  }

  private onLine(line: string): void {
    const text = this.pending + line;
    this.pending = '';
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      if (unfinished(text, e) && text.length <= MAX_MESSAGE_BYTES) {
        this.pending = `${text}\n`;
        return;
      }
      this.reply(undefined, generic(`JSON parse error, ${parseProblem(e)}`));
      return;
    }
    this.onMessage(value);
  }

  private onMessage(value: unknown): void {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.reply(undefined, generic('QMP input must be a JSON object'));
      return;
    }
    const m = value as Record<string, QmpJson>;
    const id = 'id' in m ? m.id : undefined;
    try {
      for (const k of Object.keys(m)) if (!['execute', 'arguments', 'id'].includes(k)) throw generic(`QMP input member '${k}' is unexpected`);
      if (!('execute' in m)) throw generic("QMP input lacks member 'execute'");
      if (typeof m.execute !== 'string') throw generic("QMP input member 'execute' must be a string");
      const args = m.arguments ?? {};
      if (args === null || typeof args !== 'object' || Array.isArray(args)) throw generic("QMP input member 'arguments' must be an object");
      this.reply(id, this.execute(m.execute, args));
    } catch (e) {
      if (e instanceof QmpFailure) this.reply(id, e);
      else this.reply(id, generic(`internal error: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private execute(command: string, argValues: { [key: string]: QmpJson }): QmpJson {
    const args = new Args(argValues);
    if (command === 'qmp_capabilities') {
      if (this.negotiated) throw new QmpFailure('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      for (const cap of args.list('enable') ?? []) if (cap !== 'oob') throw generic(`Invalid parameter '${String(cap)}'`);
      args.done();
      this.negotiated = true;
      return {};
    }
    if (!this.negotiated) throw new QmpFailure('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    const handler = COMMANDS[command];
    if (!handler) throw new QmpFailure('CommandNotFound', `The command ${command} has not been found`);
    return handler(this.server, args);
  }

  /** `{"return": R, "id": ID}` or `{"id": ID, "error": {...}}` (QEMU's key orders), without `id` when none was given. */
  private reply(id: QmpJson | undefined, result: QmpJson | QmpFailure): void {
    if (result instanceof QmpFailure) {
      const error = { class: result.errorClass, desc: result.message };
      this.write(id === undefined ? { error } : { id, error });
    } else {
      this.write(id === undefined ? { return: result } : { return: result, id });
    }
  }
}

/**
 * True when more lines may complete `text`: it ends inside a string or an open object or array, and
 * the parser's complaint (`parseError`) is about its end, not about something in the middle.
 */
function unfinished(text: string, parseError: unknown): boolean {
  const why = parseError instanceof Error ? parseError.message : '';
  const at = /position (\d+)/.exec(why);
  if (!/end of JSON input/i.test(why) && !(at && Number(at[1]) >= text.trimEnd().length)) return false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (const c of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    if (depth < 0) return false;
  }
  return inString || depth > 0;
}

/** What JSON.parse disliked, in a few lower-case words. */
function parseProblem(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.charAt(0).toLowerCase() + m.slice(1);
}
