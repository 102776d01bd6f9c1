/**
 * A GDB RSP client session over a socket, built for QEMU's gdbstub (see QEMU-FACTS.md) without
 * assuming it: it negotiates `qSupported` (PacketSize, multiprocess) and `QStartNoAckMode` where
 * offered, and otherwise stays in ack mode, acknowledging every packet and resending on `-`.
 *
 * Requests are pipelined: each is written at once and replies are matched to requests in order,
 * each with its own timeout. A request that timed out keeps its place, so a late reply is dropped
 * instead of being taken for the next one's. While a `c`/`s` is outstanding the stub takes any
 * packet for an interrupt, so requests then fail with E_BUSY; `interrupt()` is the way to stop.
 * Stops nobody asked for (the T02 of connecting to a running VM, breakpoints hit after a QMP
 * `cont`) are `stop` events; `W`/`X` are `exit` events.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { pipelined, powerOfTwoAtMost, splitAligned, type Chunk } from './chunks.js';
import {
  GdbSignal,
  bytesToHex,
  decodeRegister,
  encodeRegister,
  formatThreadId,
  hexToBytes,
  hexToText,
  isStopReply,
  latin1,
  parseErrorReply,
  parseOutputPacket,
  parseStopReply,
  parseSupported,
  parseThreadId,
  parseVContActions,
  parseXferChunk,
  preview,
  supportedPacketSize,
  textToHex,
  type ExitedReply,
  type StopReply,
  type StoppedReply,
  type SupportedFeatures,
} from './codec.js';
import { endpointLabel, openSocket, parseEndpoint, type RspEndpoint } from './endpoint.js';
import { RspError } from './errors.js';
import { ACK, INTERRUPT, NACK, PacketDecoder, encodePacket, payloadBytes, type Frame } from './framing.js';
import { resolveTargetDescription, type RegisterInfo, type TargetDescription } from './targetXml.js';
import { systemTimers, type RspTimers } from './timers.js';

/** Breakpoint and watchpoint kinds, as `Z`/`z` number them. */
export const BreakpointType = {
  SOFTWARE: 0,
  HARDWARE: 1,
  WRITE_WATCH: 2,
  READ_WATCH: 3,
  ACCESS_WATCH: 4,
} as const;

/** A `Z`/`z` type: 0 software breakpoint, 1 hardware breakpoint, 2 write, 3 read, 4 access watchpoint. */
export type BreakpointType = (typeof BreakpointType)[keyof typeof BreakpointType];

const BREAKPOINT_NAMES = ['software breakpoint', 'hardware breakpoint', 'write watchpoint', 'read watchpoint', 'access watchpoint'];

/** Options of {@link RspClient.connect}. */
export interface RspClientOptions {
  /** Time allowed to connect and for each request (default 5000 ms). */
  timeoutMs?: number;
  /** Requests kept in flight by `readMemory`/`writeMemory` (default 64). */
  window?: number;
  /** Largest `m`/`M` data per packet, in bytes (default 0x800, QEMU's limit); PacketSize may lower it. */
  maxMemoryChunk?: number;
  /** Use `QStartNoAckMode` when the stub offers it (default true). */
  noAckMode?: boolean;
  /** Offer `multiprocess+` (default true). */
  multiprocess?: boolean;
  /** Largest packet accepted from the stub (default 1 MiB). */
  maxPacketSize?: number;
  /** The clock for timeouts (default: the real one). */
  timers?: RspTimers;
}

/** Per-call options of requests that may take long. */
export interface RequestOptions {
  /** Overrides the client's timeout for this call; null waits for ever. */
  timeoutMs?: number | null;
}

/** Events of {@link RspClient}. */
export interface RspClientEvents {
  /** The target stopped without a request of ours waiting for it (or after that request timed out). */
  stop: [StoppedReply];
  /** The target exited (`W`) or was killed (`X`); the stub closes the connection next. */
  exit: [ExitedReply];
  /** Console output (`O` packets) that did not belong to a monitor command. */
  output: [string];
  /** The stub sent something damaged or out of place; it was dropped (code E_PROTOCOL). */
  protocolError: [RspError];
  /** The connection is closed; every waiting request has failed with E_CLOSED. */
  close: [];
}

/** What a packet's sender waits for. */
type Expect =
  /** One reply packet. */
  | 'reply'
  /** A stop reply, the target not running meanwhile (`?`). */
  | 'stop'
  /** A stop reply after the target runs (`c`, `s`, `vCont`). */
  | 'resume'
  /** `O` packets, then a final reply (`qRcmd`). */
  | 'monitor';

interface Pending {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly expect: Expect;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (e: RspError) => void;
  timer: unknown;
  abandoned: boolean;
  output: string;
}

interface Reply {
  /** The reply's payload, unescaped. */
  readonly payload: Uint8Array;
  /** Text of the `O` packets that came before it (monitor commands). */
  readonly output: string;
}

/** PacketSize assumed when the stub does not say. */
const DEFAULT_PACKET_SIZE = 0x400;
/** The most bytes read from one `qXfer` object. */
const MAX_XFER_SIZE = 16 << 20;

/** A session with a gdbstub. Create it with {@link RspClient.connect}. */
export class RspClient extends EventEmitter<RspClientEvents> {
  private negotiated = {
    features: new Map() as SupportedFeatures,
    packetSize: DEFAULT_PACKET_SIZE,
    ackMode: true,
    multiprocess: false,
  };
  private lastStopReply: StopReply | null = null;
  private readonly decoder: PacketDecoder;
  private readonly timers: RspTimers;
  private readonly timeoutMs: number;
  private readonly window: number;
  private readonly maxMemoryChunk: number;
  /** Requests in the order their replies will come. */
  private readonly queue: Pending[] = [];
  /**
   * A `c`/`s` held back until every earlier request is answered: QEMU takes any byte that arrives
   * while the guest runs, our own `+` for a late reply included, as an interrupt.
   */
  private held: Pending | null = null;
  /** An interrupt() asked for while the run was held: sent right after it. */
  private interruptHeld = false;
  /** How many requests at the head of `queue` the stub has acknowledged. */
  private acked = 0;
  /** Replies received so far (a stop before the first cannot be one our packet caused). */
  private repliesReceived = 0;
  /** Acknowledgements owed, written together before anything else goes out. */
  private acksOwed = 0;
  private closedError: RspError | null = null;
  private socketError: Error | null = null;
  private readonly stopWaiters = new Set<{ resolve(s: StopReply): void; reject(e: RspError): void }>();
  private description: Promise<TargetDescription> | null = null;
  /** What `vCont?` answered (asked during the handshake, so `cont`/`step` send at once). */
  private vContActions: ReadonlySet<string> = new Set();
  private phyMemOriginal: boolean | null = null;
  private sawProcessIds = false;
  private readonly breakpoints = new Map<string, { type: BreakpointType; address: bigint; kind: number }>();
  private readonly closed: Promise<void>;

  private constructor(
    private readonly stream: Duplex,
    /** The endpoint, for messages. */
    readonly endpoint: string,
    private readonly options: RspClientOptions,
  ) {
    super();
    this.decoder = new PacketDecoder({ maxPacketSize: options.maxPacketSize });
    this.timers = options.timers ?? systemTimers;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.window = Math.max(1, options.window ?? 64);
    this.maxMemoryChunk = Math.max(1, options.maxMemoryChunk ?? 0x800);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (e) => (this.socketError ??= e));
    this.closed = new Promise((resolve) => stream.once('close', () => resolve()));
    void this.closed.then(() => this.onClose());
  }

  /**
   * Connects to a gdbstub and negotiates. Rejects with E_CLOSED when the connection is refused,
   * E_TIMEOUT when the stub does not answer in time, E_PROTOCOL on a malformed handshake.
   */
  static async connect(endpoint: RspEndpoint, options: RspClientOptions = {}): Promise<RspClient> {
    const where = parseEndpoint(endpoint);
    const socket = await openSocket(where, options.timeoutMs ?? 5000, options.timers ?? systemTimers);
    socket.setNoDelay(true);
    return RspClient.over(socket, options, endpointLabel(where));
  }

  /** Negotiates over an already open stream (a socket, or an in-process pipe to a server). */
  static async over(stream: Duplex, options: RspClientOptions = {}, label = 'the stub'): Promise<RspClient> {
    const client = new RspClient(stream, label, options);
    try {
      await client.handshake();
      return client;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  /** What the stub answered to `qSupported`. */
  get features(): SupportedFeatures {
    return this.negotiated.features;
  }

  /** The largest packet payload the stub accepts: its PacketSize, or 0x400 if it gave none. */
  get packetSize(): number {
    return this.negotiated.packetSize;
  }

  /** True while packets are acknowledged with `+`/`-` (until `QStartNoAckMode` succeeds). */
  get ackMode(): boolean {
    return this.negotiated.ackMode;
  }

  /** True when both sides agreed on `multiprocess+`. */
  get multiprocess(): boolean {
    return this.negotiated.multiprocess;
  }

  /** The last stop reply seen, solicited or not (the T02 of connecting to a running VM, for one). */
  get lastStop(): StopReply | null {
    return this.lastStopReply;
  }

  /** True while a `c`/`s` is outstanding: the target runs and only `interrupt()` may be sent. */
  get running(): boolean {
    return this.held !== null || this.queue.some((p) => p.expect === 'resume');
  }

  /** True once the connection is closed. */
  get isClosed(): boolean {
    return this.closedError !== null;
  }

  /**
   * Sends one packet and resolves with the reply's payload (as latin1 text), `Exx` included.
   * Rejects with E_BUSY while the target runs, E_TIMEOUT, E_CLOSED, or E_UNSUPPORTED when the
   * packet exceeds the stub's PacketSize.
   */
  async request(payload: string, options: RequestOptions = {}): Promise<string> {
    return latin1((await this.send(payload, 'reply', options.timeoutMs)).payload);
  }

  // ---- registers ----

  /** The target's registers (read from target.xml once, on first use). Rejects with E_UNSUPPORTED without a target description. */
  targetDescription(): Promise<TargetDescription> {
    if (!this.description) {
      this.description = resolveTargetDescription(async (annex) => new TextDecoder().decode(await this.readXfer('features', annex)));
      this.description.catch(() => (this.description = null));
    }
    return this.description;
  }

  /** The register called `name`; E_UNSUPPORTED when the target has none. */
  async register(name: string): Promise<RegisterInfo> {
    const d = await this.targetDescription();
    const reg = d.byName.get(name) ?? d.byName.get(name.toLowerCase());
    if (!reg) {
      throw new RspError('E_UNSUPPORTED', `the target has no register '${name}' (it has ${d.registers.map((r) => r.name).join(', ')})`);
    }
    return reg;
  }

  /** The value of register `name` (`p`), full width. E_UNSUPPORTED when unknown or unavailable, E_REPLY on `Exx`. */
  async readRegister(name: string): Promise<bigint> {
    const reg = await this.register(name);
    const what = `reading register ${reg.name}`;
    const reply = this.checkReply(what, await this.request(`p${reg.regnum.toString(16)}`));
    if (reply.length !== reg.bitsize / 4) {
      throw new RspError('E_PROTOCOL', `${what}: expected ${reg.bitsize / 4} hex digits, got ${preview(reply)}`);
    }
    const value = decodeRegister(reply);
    if (value === null) throw new RspError('E_UNSUPPORTED', `${what}: the stub says its value is unavailable`);
    return value;
  }

  /** Writes register `name` (`P`, full width, little-endian). RangeError if `value` does not fit; E_REPLY on `Exx`. */
  async writeRegister(name: string, value: bigint): Promise<void> {
    const reg = await this.register(name);
    const hex = encodeRegister(value, reg.bitsize);
    this.expectOk(`writing register ${reg.name}`, await this.request(`P${reg.regnum.toString(16)}=${hex}`));
  }

  /** Every register the `g` packet carries, by name (registers the stub marks unavailable are left out). */
  async readRegisters(): Promise<Map<string, bigint>> {
    const d = await this.targetDescription();
    const reply = this.checkReply('reading all registers', await this.request('g'));
    if (!/^[0-9a-fA-FxX]*$/.test(reply) || reply.length % 2 !== 0) {
      throw new RspError('E_PROTOCOL', `reading all registers: the g reply is not hex: ${preview(reply)}`);
    }
    const out = new Map<string, bigint>();
    for (const reg of d.registers) {
      const end = (reg.offset + reg.bitsize / 8) * 2;
      if (end > reply.length) break;
      const value = decodeRegister(reply.slice(reg.offset * 2, end));
      if (value !== null) out.set(reg.name, value);
    }
    return out;
  }

  // ---- memory ----

  /**
   * `length` bytes at `address` (virtual through the current CR3, or physical in QEMU's
   * PhyMemMode), read in aligned `m` packets with up to `window` in flight. Rejects with E_REPLY
   * naming the chunk the stub refused (E14: not mapped), E_UNSUPPORTED if `m` is not answered.
   */
  async readMemory(address: bigint, length: number, options: { window?: number } = {}): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const size = powerOfTwoAtMost(Math.min(this.maxMemoryChunk, Math.floor(this.packetSize / 2)));
    const chunks = splitAligned(address, length, size);
    await pipelined(chunks, options.window ?? this.window, async (chunk, i) => {
      let done = 0;
      while (done < chunk.length) {
        const at = chunk.address + BigInt(done);
        const n = chunk.length - done;
        const what = `reading ${hexNum(n)} bytes at ${hexNum(at)}${whichChunk(chunks, i, address, length)}`;
        // The reply stays bytes: a MiB read is 2 MiB of hex, too much to turn into strings.
        const reply = (await this.send(`m${at.toString(16)},${n.toString(16)}`, 'reply')).payload;
        if (reply.length === 3) this.checkReply(what, latin1(reply));
        if (reply.length === 0) throw new RspError('E_UNSUPPORTED', `${what}: the stub sent no data`);
        const bytes = hexToBytes(reply);
        if (bytes.length > n) throw new RspError('E_PROTOCOL', `${what}: the stub sent ${bytes.length} bytes`);
        out.set(bytes, chunk.offset + done);
        done += bytes.length;
      }
    });
    return out;
  }

  /** Writes `data` at `address` in `M` packets under PacketSize, pipelined. Rejects with E_REPLY naming the chunk refused. */
  async writeMemory(address: bigint, data: Uint8Array, options: { window?: number } = {}): Promise<void> {
    // `M<16 digits>,<len>:` then two digits a byte, within PacketSize - 1 (QEMU drops a packet of PacketSize).
    const header = 1 + 16 + 1 + 8 + 1;
    const size = powerOfTwoAtMost(Math.min(this.maxMemoryChunk, Math.floor((this.packetSize - 1 - header) / 2)));
    const chunks = splitAligned(address, data.length, size);
    await pipelined(chunks, options.window ?? this.window, async (chunk, i) => {
      const what = `writing ${hexNum(chunk.length)} bytes at ${hexNum(chunk.address)}${whichChunk(chunks, i, address, data.length)}`;
      const hex = bytesToHex(data.subarray(chunk.offset, chunk.offset + chunk.length));
      this.expectOk(what, await this.request(`M${chunk.address.toString(16)},${chunk.length.toString(16)}:${hex}`));
    });
  }

  /** Whether QEMU's gdbstub reads and writes physical memory (`qqemu.PhyMemMode`). E_UNSUPPORTED on other stubs. */
  async physicalMemoryMode(): Promise<boolean> {
    const reply = this.checkReply('reading qqemu.PhyMemMode', await this.request('qqemu.PhyMemMode'));
    if (reply === '') throw new RspError('E_UNSUPPORTED', 'the stub has no qqemu.PhyMemMode (it is not QEMU)');
    if (reply !== '0' && reply !== '1') throw new RspError('E_PROTOCOL', `qqemu.PhyMemMode answered ${preview(reply)}`);
    return reply === '1';
  }

  /**
   * Makes `m`/`M` physical (true) or virtual (false). The mode is global to QEMU and outlives the
   * connection, so the first call remembers the old mode and `detach()` puts it back.
   */
  async setPhysicalMemoryMode(physical: boolean): Promise<void> {
    if (this.phyMemOriginal === null) this.phyMemOriginal = await this.physicalMemoryMode();
    const reply = await this.request(`Qqemu.PhyMemMode:${physical ? 1 : 0}`);
    if (reply === '') throw new RspError('E_UNSUPPORTED', 'the stub has no Qqemu.PhyMemMode (it is not QEMU)');
    this.expectOk('setting Qqemu.PhyMemMode', reply);
  }

  // ---- execution ----

  /** Inserts a breakpoint or watchpoint (`Z`); `kind` is its length (watchpoints) or instruction kind. */
  async insertBreakpoint(type: BreakpointType, address: bigint, kind: number): Promise<void> {
    await this.breakpoint('Z', type, address, kind);
    this.breakpoints.set(`${type},${address},${kind}`, { type, address, kind });
  }

  /** Removes a breakpoint or watchpoint (`z`); E_REPLY when there is none there. */
  async removeBreakpoint(type: BreakpointType, address: bigint, kind: number): Promise<void> {
    await this.breakpoint('z', type, address, kind);
    this.breakpoints.delete(`${type},${address},${kind}`);
  }

  /** Why the target is stopped (`?`). */
  async haltReason(): Promise<StopReply> {
    return this.stopReply('?', latin1((await this.send('?', 'stop')).payload));
  }

  /**
   * Resumes the target (`vCont;c` when supported, else `c`) and resolves with the stop reply. No
   * timeout unless given. The packet goes out before this returns: `running` is true at once.
   */
  async cont(options: RequestOptions = {}): Promise<StopReply> {
    const packet = this.vContActions.has('c') ? 'vCont;c' : 'c';
    return this.stopReply(packet, latin1((await this.send(packet, 'resume', options.timeoutMs ?? null)).payload));
  }

  /**
   * Executes one instruction (`vCont;s:THREAD` when supported, else `s`) and resolves with the stop
   * reply. QEMU rarely answers a step without executing: callers that must advance check RIP.
   */
  async step(options: RequestOptions = {}): Promise<StopReply> {
    let packet = 's';
    if (this.vContActions.has('s')) {
      const thread = this.lastStop?.kind === 'stopped' ? this.lastStop.thread : null;
      packet = thread && thread.tid > 0 ? `vCont;s:${formatThreadId(thread)}` : 'vCont;s';
    }
    return this.stopReply(packet, latin1((await this.send(packet, 'resume', options.timeoutMs)).payload));
  }

  /**
   * Sends Ctrl-C (0x03). While a `c`/`s` is outstanding, resolves with the stop reply that ends it
   * (E_TIMEOUT if none comes); otherwise resolves with null at once (a stub that was running
   * behind the client's back answers with a `stop` event; see {@link waitForStop}).
   */
  async interrupt(options: RequestOptions = {}): Promise<StopReply | null> {
    this.checkOpen('interrupt');
    const wasRunning = this.running;
    const stop = wasRunning ? this.waitForStop(options) : null;
    if (this.held) this.interruptHeld = true;
    else this.write(Uint8Array.of(INTERRUPT));
    return stop;
  }

  /** Resolves with the next stop reply, solicited or not; E_TIMEOUT, E_CLOSED. */
  waitForStop(options: RequestOptions = {}): Promise<StopReply> {
    this.checkOpen('wait for a stop');
    const ms = options.timeoutMs === undefined ? this.timeoutMs : options.timeoutMs;
    return new Promise((resolve, reject) => {
      let timer: unknown = null;
      const settle = (): void => {
        if (timer !== null) this.timers.clearTimeout(timer);
        this.stopWaiters.delete(waiter);
      };
      const waiter = {
        resolve: (s: StopReply): void => (settle(), resolve(s)),
        reject: (e: RspError): void => (settle(), reject(e)),
      };
      if (ms !== null) {
        timer = this.timers.setTimeout(() => waiter.reject(new RspError('E_TIMEOUT', `the target did not stop within ${ms} ms`)), ms);
      }
      this.stopWaiters.add(waiter);
    });
  }

  /** Runs a monitor command (`qRcmd`) and resolves with its output; QEMU reports errors in the text. */
  async monitor(command: string, options: RequestOptions = {}): Promise<string> {
    const what = `monitor command ${JSON.stringify(command)}`;
    const reply = await this.send(`qRcmd,${textToHex(command)}`, 'monitor', options.timeoutMs);
    const text = this.checkReply(what, latin1(reply.payload));
    if (text === '') throw new RspError('E_UNSUPPORTED', `${what}: the stub does not support qRcmd`);
    if (text === 'OK') return reply.output;
    // The final reply may itself carry (hex) output instead of OK.
    if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) return reply.output + hexToText(text);
    throw new RspError('E_PROTOCOL', `${what}: unexpected reply ${preview(text)}`);
  }

  /**
   * Leaves the target as it was found: removes the breakpoints this client inserted, restores
   * PhyMemMode, detaches (`D`, or `D;PID` under multiprocess), which resumes the guest, and closes.
   * A running target is interrupted first.
   */
  async detach(): Promise<void> {
    if (this.running) await this.interrupt();
    for (const bp of [...this.breakpoints.values()]) {
      await this.removeBreakpoint(bp.type, bp.address, bp.kind).catch((e: unknown) => {
        if (!(e instanceof RspError && e.code === 'E_REPLY')) throw e;
      });
    }
    if (this.phyMemOriginal !== null) {
      await this.setPhysicalMemoryMode(this.phyMemOriginal);
      this.phyMemOriginal = null;
    }
    let reply = await this.request(this.multiprocess || this.sawProcessIds ? `D;${(await this.processId()).toString(16)}` : 'D');
    // Once any client has negotiated multiprocess, QEMU wants the pid even from one that has not.
    if (parseErrorReply(reply)?.errno === 0x22 && !this.multiprocess && !this.sawProcessIds) reply = await this.request('D;1');
    this.expectOk('detaching', reply);
    await this.close();
  }

  /** Closes the connection without detaching (QEMU leaves the VM stopped). */
  async close(): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    await this.closed;
  }

  // ---- internals ----

  private async handshake(): Promise<void> {
    const offer = ['swbreak+', 'hwbreak+', 'vContSupported+'];
    if (this.options.multiprocess !== false) offer.unshift('multiprocess+');
    const reply = this.checkReply('qSupported', await this.request(`qSupported:${offer.join(';')}`));
    const features = parseSupported(reply);
    const size = supportedPacketSize(features);
    if (size !== null && size < 64) throw new RspError('E_PROTOCOL', `the stub's PacketSize of ${size} bytes is too small to use`);
    this.negotiated = {
      features,
      packetSize: size ?? DEFAULT_PACKET_SIZE,
      ackMode: true,
      multiprocess: this.options.multiprocess !== false && features.get('multiprocess') === true,
    };
    if (this.options.noAckMode !== false && this.features.get('QStartNoAckMode') === true) {
      if ((await this.request('QStartNoAckMode')) === 'OK') {
        // Our '+' for the OK went out when it arrived; from here on neither side acknowledges.
        this.negotiated.ackMode = false;
        this.acked = this.queue.length;
      }
    }
    const actions = await this.request('vCont?');
    this.vContActions = parseVContActions(parseErrorReply(actions) ? '' : actions);
  }

  private async send(payload: string, expect: Expect, timeoutMs: number | null | undefined = this.timeoutMs): Promise<Reply> {
    this.checkOpen(payload);
    if (this.running) {
      throw new RspError('E_BUSY', `cannot send ${preview(payload.slice(0, 40))} while the target runs: interrupt() it or wait for it to stop`);
    }
    const bytes = encodePacket(payloadBytes(payload));
    if (bytes.length - 4 > this.packetSize - 1) {
      throw new RspError('E_UNSUPPORTED', `a ${bytes.length - 4}-byte packet exceeds the stub's PacketSize of ${this.packetSize}`);
    }
    return new Promise<Reply>((resolve, reject) => {
      const label = payload.length > 40 ? `${payload.slice(0, 40)}...` : payload;
      const pending: Pending = { label, bytes, expect, resolve, reject, timer: null, abandoned: false, output: '' };
      if (timeoutMs !== null) pending.timer = this.timers.setTimeout(() => this.onTimeout(pending, timeoutMs), timeoutMs);
      if (expect === 'resume' && this.queue.length > 0) this.held = pending;
      else this.transmit(pending);
    });
  }

  private transmit(pending: Pending): void {
    this.queue.push(pending);
    if (!this.ackMode) this.acked = this.queue.length;
    this.write(pending.bytes);
  }

  /** Sends the held run once nothing else is outstanding, and an interrupt queued behind it. */
  private releaseHeld(): void {
    if (!this.held || this.queue.length > 0) return;
    const run = this.held;
    this.held = null;
    this.transmit(run);
    if (this.interruptHeld) {
      this.interruptHeld = false;
      this.write(Uint8Array.of(INTERRUPT));
    }
  }

  private onTimeout(p: Pending, ms: number): void {
    p.timer = null;
    p.abandoned = true;
    p.reject(new RspError('E_TIMEOUT', `no reply to ${preview(p.label)} from ${this.endpoint} within ${ms} ms`));
  }

  private onData(chunk: Uint8Array): void {
    for (const frame of this.decoder.feed(chunk)) this.onFrame(frame);
    this.flushAcks();
  }

  /** Writes `bytes` after the acknowledgements owed, keeping the order the stub must see. */
  private write(bytes: Uint8Array): void {
    this.flushAcks();
    if (!this.stream.destroyed) this.stream.write(bytes);
  }

  private flushAcks(): void {
    if (this.acksOwed === 0) return;
    const acks = new Uint8Array(this.acksOwed).fill(ACK);
    this.acksOwed = 0;
    if (!this.stream.destroyed) this.stream.write(acks);
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'ack':
        if (this.acked < this.queue.length) this.acked++;
        return;
      case 'nack':
        if (!this.resendFirstUnacked()) this.protocolError('the stub sent - but no packet of ours is waiting for an acknowledgement');
        return;
      case 'packet':
        if (this.ackMode) this.acksOwed++;
        this.onPacket(frame.payload);
        return;
      case 'notification':
        this.protocolError(`unexpected notification (non-stop mode was not asked for): ${preview(latin1(frame.payload))}`);
        return;
      case 'interrupt':
        this.protocolError('the stub sent an interrupt byte (0x03)');
        return;
      case 'error':
        if (frame.code === 'E_CHECKSUM' && this.ackMode) this.write(Uint8Array.of(NACK));
        this.protocolError(`damaged packet from the stub (${frame.code}): ${frame.message}`);
        return;
    }
  }

  /** Sends the oldest unacknowledged packet again; its reply now comes after those already acknowledged. */
  private resendFirstUnacked(): boolean {
    if (this.acked >= this.queue.length) return false;
    const [p] = this.queue.splice(this.acked, 1);
    this.queue.push(p!);
    this.write(p!.bytes);
    return true;
  }

  private onPacket(payload: Uint8Array): void {
    const head = this.queue[0];
    // Only stop replies (S T W X) and console output (O) need looking into; other replies go to
    // their request as bytes.
    const first = payload[0];
    const text = first === 0x53 || first === 0x54 || first === 0x57 || first === 0x58 || first === 0x4f ? latin1(payload) : '';
    if (isStopReply(text)) {
      let stop: StopReply;
      try {
        stop = parseStopReply(text);
      } catch (e) {
        if (head && (head.expect === 'stop' || head.expect === 'resume')) this.complete({ payload, output: '' });
        else this.protocolError((e as Error).message);
        return;
      }
      this.noteStop(stop);
      if (head && (head.expect === 'stop' || head.expect === 'resume')) {
        const abandoned = head.abandoned;
        this.complete({ payload, output: '' });
        if (abandoned && stop.kind === 'stopped') this.emit('stop', stop);
      } else {
        this.unsolicited(stop);
      }
      if (stop.kind !== 'stopped') this.emit('exit', stop);
      for (const w of [...this.stopWaiters]) w.resolve(stop);
      return;
    }
    if (text.startsWith('O') && text !== 'OK' && /^O(?:[0-9a-fA-F]{2})*$/.test(text)) {
      const output = parseOutputPacket(text)!;
      if (head?.expect === 'monitor') head.output += output;
      else this.emit('output', output);
      return;
    }
    if (!head) {
      this.protocolError(`a packet no request was waiting for: ${preview(latin1(payload.subarray(0, 100)))}`);
      return;
    }
    this.complete({ payload, output: head.output });
  }

  private noteStop(stop: StopReply): void {
    this.lastStopReply = stop;
    if (stop.kind === 'stopped' && stop.thread?.pid !== null && stop.thread?.pid !== undefined) this.sawProcessIds = true;
  }

  private unsolicited(stop: StopReply): void {
    if (stop.kind === 'stopped') {
      // QEMU takes a packet that arrives while the VM runs (resumed behind our back by QMP) as
      // an interrupt: it answers T02 and drops the packet unacknowledged, so send it again. The
      // T02 of connecting to a running VM comes before the stub has heard from us: nothing to resend.
      if (this.ackMode && this.repliesReceived > 0 && stop.signal === GdbSignal.INT) this.resendFirstUnacked();
      this.emit('stop', stop);
    }
  }

  private complete(reply: Reply): void {
    const p = this.queue.shift()!;
    this.repliesReceived++;
    if (this.acked > 0) this.acked--;
    if (p.timer !== null) this.timers.clearTimeout(p.timer);
    if (!p.abandoned) p.resolve(reply);
    this.releaseHeld();
  }

  private onClose(): void {
    const cause = this.socketError;
    const exit = this.lastStop && this.lastStop.kind !== 'stopped' ? ` after the target ${this.lastStop.kind} (${this.lastStop.code})` : '';
    this.closedError = new RspError('E_CLOSED', `the connection to ${this.endpoint} is closed${exit}${cause ? `: ${cause.message}` : ''}`, null, {
      cause,
    });
    const held = this.held ? [this.held] : [];
    this.held = null;
    this.interruptHeld = false;
    for (const p of [...this.queue.splice(0), ...held]) {
      if (p.timer !== null) this.timers.clearTimeout(p.timer);
      if (!p.abandoned) p.reject(this.closedError);
    }
    this.acked = 0;
    for (const w of [...this.stopWaiters]) w.reject(this.closedError);
    this.emit('close');
  }

  private checkOpen(what: string): void {
    if (this.closedError) throw new RspError('E_CLOSED', `cannot ${what.length > 40 ? 'send a request' : `send ${what}`}: ${this.closedError.message}`);
  }

  private protocolError(message: string): void {
    this.emit('protocolError', new RspError('E_PROTOCOL', message));
  }

  /** Throws E_REPLY on `Exx`; returns the reply otherwise. */
  private checkReply(what: string, reply: string): string {
    const err = parseErrorReply(reply);
    if (!err) return reply;
    const detail = err.errno === null ? `E.${err.text}` : `E${err.errno.toString(16).padStart(2, '0')}${describeErrno(err.errno)}`;
    throw new RspError('E_REPLY', `${what}: the stub answered ${detail}`, err.errno);
  }

  /** Throws unless the reply is `OK` (E_REPLY, E_UNSUPPORTED for an empty reply, E_PROTOCOL). */
  private expectOk(what: string, reply: string): void {
    const r = this.checkReply(what, reply);
    if (r === 'OK') return;
    if (r === '') throw new RspError('E_UNSUPPORTED', `${what}: the stub does not support it (empty reply)`);
    throw new RspError('E_PROTOCOL', `${what}: expected OK, got ${preview(r)}`);
  }

  private stopReply(what: string, reply: string): StopReply {
    const r = this.checkReply(what, reply);
    if (r === '') throw new RspError('E_UNSUPPORTED', `${what}: the stub does not support it (empty reply)`);
    return parseStopReply(r);
  }

  private async breakpoint(op: 'Z' | 'z', type: BreakpointType, address: bigint, kind: number): Promise<void> {
    if (!Number.isInteger(type) || type < 0 || type > 4) throw new RangeError(`breakpoint type must be 0..4, not ${type}`);
    if (!Number.isSafeInteger(kind) || kind < 0) throw new RangeError(`breakpoint kind must be a non-negative integer, not ${kind}`);
    if (address < 0n || address >= 1n << 64n) throw new RangeError(`${hexNum(address)} is not a 64-bit address`);
    const what = `${op === 'Z' ? 'inserting' : 'removing'} a ${BREAKPOINT_NAMES[type]} at ${hexNum(address)}`;
    const reply = await this.request(`${op}${type},${address.toString(16)},${kind.toString(16)}`);
    if (reply === '') throw new RspError('E_UNSUPPORTED', `${what}: the stub does not support ${op}${type}`);
    this.expectOk(what, reply);
  }

  /** The process id for `D;PID`: from the last stop's thread id, else `qC`, else 1. */
  private async processId(): Promise<number> {
    const fromStop = this.lastStop?.kind === 'stopped' ? this.lastStop.thread?.pid : null;
    if (fromStop) return fromStop;
    const reply = await this.request('qC');
    if (reply.startsWith('QC')) {
      try {
        return parseThreadId(reply.slice(2)).pid ?? 1;
      } catch {
        return 1;
      }
    }
    return 1;
  }

  /** Reads a whole `qXfer:OBJECT:read:ANNEX` in chunks. */
  private async readXfer(object: string, annex: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let offset = 0;
    const ask = Math.max(1, this.packetSize - 5);
    for (;;) {
      const what = `reading ${object} ${annex} at offset ${offset}`;
      const reply = this.checkReply(what, await this.request(`qXfer:${object}:read:${annex}:${offset.toString(16)},${ask.toString(16)}`));
      if (reply === '') throw new RspError('E_UNSUPPORTED', `${what}: the stub does not offer qXfer:${object}:read`);
      const chunk = parseXferChunk(payloadBytes(reply));
      parts.push(chunk.data);
      offset += chunk.data.length;
      if (chunk.last) break;
      if (chunk.data.length === 0) throw new RspError('E_PROTOCOL', `${what}: the stub sent an empty chunk that is not the last`);
      if (offset > MAX_XFER_SIZE) throw new RspError('E_PROTOCOL', `${what}: more than ${MAX_XFER_SIZE} bytes`);
    }
    const out = new Uint8Array(offset);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function hexNum(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

function whichChunk(chunks: readonly Chunk[], i: number, address: bigint, length: number): string {
  return chunks.length > 1 ? ` (chunk ${i + 1} of ${chunks.length} of the ${hexNum(length)} bytes at ${hexNum(address)})` : '';
}

/** What QEMU's error replies mean: it writes the decimal errno's digits (E14 is EFAULT, E22 EINVAL). */
function describeErrno(errno: number): string {
  switch (errno) {
    case 0x14:
      return ' (EFAULT: the address is not mapped, or not readable)';
    case 0x22:
      return ' (EINVAL: invalid argument)';
    default:
      return '';
  }
}
