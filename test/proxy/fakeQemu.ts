/**
 * Test doubles for the proxy: a gdbstub that behaves like QEMU 7.2's where the proxy depends on it
 * (QEMU-FACTS §2), and a GDB that speaks raw RSP, both on real sockets over the shared framing layer.
 *
 * The fake QEMU serves one connection at a time (a second waits unheard), sends `+` before each
 * answer (until no-ack mode, which it offers only when told), stops a running guest when a client
 * connects (an unsolicited T02), takes any packet that arrives while the guest runs for an interrupt
 * (T02, the packet dropped unacknowledged), keeps one global PhyMemMode, and lets a test hold
 * answers back, answer with run-length encoding, or push packets of its own. Everything received is
 * recorded per connection, packets and control bytes in one ordered stream.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PacketDecoder, encodePacket, payloadBytes } from '../../src/rsp/framing.js';
import { FAKE_ANNEXES } from '../rsp/fakeStub.js';

/** What a test script answers to a packet: a reply, several, null for none (the packet runs the guest), or undefined for the default. */
export type QemuScript = (payload: string, q: FakeQemu) => string | readonly string[] | null | undefined;

/** One connection, as the fake QEMU saw it. */
export interface FakeConnection {
  /** Packets (payloads) and control bytes (`+`, `-`, `^C`) in arrival order. */
  readonly stream: string[];
  /** Only the packets. */
  readonly packets: string[];
  /** The PhyMemMode each packet ran under, by position in `packets`. */
  readonly modes: boolean[];
  closed: boolean;
}

/** The registers `g` answers with: rax, rip, eflags and cr3 of FAKE_ANNEXES's description. */
export const FAKE_REGISTERS = { rax: 0x1122n, rip: 0xffffffff80101007n, eflags: 0x46n, cr3: 0x110000n };

function le(v: bigint, bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++) s += Number((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, '0');
  return s;
}

const REGISTERS_HEX = le(FAKE_REGISTERS.rax, 8) + le(FAKE_REGISTERS.rip, 8) + le(FAKE_REGISTERS.eflags, 4) + le(FAKE_REGISTERS.cr3, 8);

/** A QEMU-like gdbstub on 127.0.0.1. */
export class FakeQemu {
  /** Every connection so far, oldest first. */
  readonly connections: FakeConnection[] = [];
  /** QEMU's global PhyMemMode. */
  phyMemMode = false;
  /** True while the guest runs. */
  running: boolean;
  /** Offer and accept QStartNoAckMode (QEMU 7.2 does not). */
  offerNoAck = false;
  /** Answers are held back (in order) while set; `release()` sends them. */
  holding = false;
  /** Answer `m` with run-length encoding where it shortens the packet. */
  runLength = false;
  private ackMode = true;
  private socket: Socket | null = null;
  private current: FakeConnection | null = null;
  private readonly waiting: Socket[] = [];
  private readonly held: Uint8Array[] = [];
  private decoder = new PacketDecoder();
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];

  private constructor(
    private readonly server: Server,
    private readonly script: QemuScript,
    running: boolean,
  ) {
    this.running = running;
    server.on('connection', (s) => {
      s.setNoDelay(true);
      s.on('error', () => undefined);
      if (this.socket) {
        this.waiting.push(s);
        s.pause();
      } else this.serve(s);
    });
  }

  /** Starts the fake; `running` says whether the guest runs before anyone connects. */
  static async listen(script: QemuScript = () => undefined, running = false): Promise<FakeQemu> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new FakeQemu(server, script, running);
  }

  /** `127.0.0.1:PORT`. */
  get endpoint(): string {
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('not listening');
    return `127.0.0.1:${a.port}`;
  }

  /** The connection being served (or the last one). */
  get last(): FakeConnection {
    const c = this.connections[this.connections.length - 1];
    if (!c) throw new Error('nobody has connected yet');
    return c;
  }

  /** Resolves once `test` holds (checked after everything the fake receives or does). */
  until(test: () => boolean, what = 'a condition'): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the fake QEMU waited in vain for ${what}`)), 5000);
      this.waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Resolves once the current connection has received a packet matching `re`. */
  received(re: RegExp): Promise<void> {
    return this.until(() => this.current !== null && this.current.packets.some((p) => re.test(p)), `a packet matching ${re}`);
  }

  /** Sends a packet of its own (a stop reply nobody asked for, console output), after any answers held back. */
  push(payload: string): void {
    const frame = encodePacket(payload);
    if (this.holding) this.held.push(frame);
    else this.socket?.write(frame);
  }

  /** The guest stops by itself (a breakpoint hit after a QMP `cont`): an unsolicited stop reply. */
  stopsBy(reply = 'T05thread:p01.01;'): void {
    this.running = false;
    this.push(reply);
  }

  /** Sends the answers held back, in order. */
  release(): void {
    this.holding = false;
    for (const f of this.held.splice(0)) this.socket?.write(f);
  }

  /** Closes the client's connection (as QEMU does after W00). */
  hangUp(): void {
    this.socket?.destroy();
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    for (const s of this.waiting) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(s: Socket): void {
    this.socket = s;
    this.ackMode = true;
    this.decoder = new PacketDecoder();
    const conn: FakeConnection = { stream: [], packets: [], modes: [], closed: false };
    this.current = conn;
    this.connections.push(conn);
    s.on('data', (d: Buffer) => this.onData(conn, d));
    s.once('close', () => {
      conn.closed = true;
      if (this.socket === s) this.socket = null;
      const next = this.waiting.shift();
      if (next) this.serve(next);
      this.check();
    });
    // Connecting stops a running guest, and says so before anything else.
    if (this.running) {
      this.running = false;
      s.write(encodePacket('T02thread:01;'));
    }
    s.resume();
    this.check();
  }

  private onData(conn: FakeConnection, d: Buffer): void {
    for (const f of this.decoder.feed(d)) {
      if (f.type === 'ack') conn.stream.push('+');
      else if (f.type === 'nack') conn.stream.push('-');
      else if (f.type === 'interrupt') {
        conn.stream.push('^C');
        if (this.running) this.stopsBy('T02thread:p01.01;');
      } else if (f.type === 'packet') {
        const payload = Buffer.from(f.payload).toString('latin1');
        conn.stream.push(payload);
        if (this.running) {
          // The '$' was taken for Ctrl-C: the packet is lost, unacknowledged.
          conn.stream.push('(lost)');
          this.stopsBy('T02thread:p01.01;');
          continue;
        }
        conn.packets.push(payload);
        conn.modes.push(this.phyMemMode);
        if (this.ackMode) this.socket?.write('+');
        this.answer(payload);
      }
    }
    this.check();
  }

  private answer(payload: string): void {
    const scripted = this.script(payload, this);
    const replies = scripted === undefined ? this.standard(payload) : scripted;
    if (replies === null) return;
    for (const r of typeof replies === 'string' ? [replies] : replies) {
      const frame = encodePacket(payloadBytes(r), { runLength: this.runLength });
      if (this.holding) this.held.push(frame);
      else this.socket?.write(frame);
    }
    if (payload === 'QStartNoAckMode' && this.offerNoAck) this.ackMode = false;
  }

  /** QEMU 7.2's answers to what the proxy and the tests send. */
  private standard(p: string): string | string[] | null {
    if (p.startsWith('qSupported')) return `PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+${this.offerNoAck ? ';QStartNoAckMode+' : ''}`;
    if (p === 'QStartNoAckMode') return this.offerNoAck ? 'OK' : '';
    if (p === 'vCont?') return 'vCont;c;C;s;S';
    if (p === 'qqemu.PhyMemMode') return this.phyMemMode ? '1' : '0';
    const set = /^Qqemu\.PhyMemMode:([0-9a-f]+)$/.exec(p);
    if (set) {
      this.phyMemMode = parseInt(set[1]!, 16) !== 0;
      return 'OK';
    }
    if (p === '?') return 'T05thread:p01.01;';
    if (p === 'g') return REGISTERS_HEX;
    const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(p);
    if (m) {
      // Physical reads give a pattern of the address's low byte; virtual ones a different one.
      const n = parseInt(m[2]!, 16);
      const fill = this.phyMemMode ? 'ab' : 'cd';
      return fill.repeat(n);
    }
    if (p.startsWith('qRcmd,')) return ['O' + Buffer.from('line 1\r\n').toString('hex'), 'O' + Buffer.from('line 2\r\n').toString('hex'), 'OK'];
    if (/^[zZ][0-4],/.test(p) || p.startsWith('P') || p.startsWith('M') || p.startsWith('H')) return 'OK';
    if (p === 'D' || p.startsWith('D;')) {
      this.running = true;
      return 'OK';
    }
    if (p === 's' || p.startsWith('vCont;s')) return 'T05thread:p01.01;';
    if (p === 'c' || p.startsWith('vCont;c')) {
      this.running = true;
      return null;
    }
    const x = /^qXfer:features:read:([^:]+):([0-9a-f]+),([0-9a-f]+)$/.exec(p);
    if (x) {
      const text = FAKE_ANNEXES[x[1]!];
      if (text === undefined) return 'E00';
      const offset = parseInt(x[2]!, 16);
      const chunk = text.slice(offset, offset + parseInt(x[3]!, 16));
      return (offset + chunk.length >= text.length ? 'l' : 'm') + chunk;
    }
    return '';
  }

  private check(): void {
    for (const w of this.waiters.filter((x) => x.test())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

/** A GDB that speaks raw RSP: acknowledges what it receives (in ack mode) and records it. */
export class FakeGdb {
  /** Packets received (payloads), in order. */
  readonly packets: string[] = [];
  /** Acks and nacks received, in order. */
  readonly controls: string[] = [];
  ackMode = true;
  private readonly decoder = new PacketDecoder();
  private readonly waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private closedFlag = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closedFlag = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error('the proxy closed the connection'));
    });
  }

  /** Connects to the proxy at `HOST:PORT`. */
  static async connect(endpoint: string): Promise<FakeGdb> {
    const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(':')), Number(endpoint.slice(endpoint.lastIndexOf(':') + 1))];
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = connect(port, host);
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    s.setNoDelay(true);
    return new FakeGdb(s);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Sends a packet. */
  send(payload: string): void {
    this.socket.write(encodePacket(payload));
  }

  /** Sends Ctrl-C. */
  interrupt(): void {
    this.socket.write(Uint8Array.of(3));
  }

  /** Sends bytes as they are. */
  raw(bytes: string): void {
    this.socket.write(Buffer.from(bytes, 'latin1'));
  }

  /** Resolves once `n` packets in all have been received. */
  packetCount(n: number): Promise<void> {
    if (this.packets.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`GDB waited in vain for packet ${n} (has ${JSON.stringify(this.packets)})`)), 5000);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      });
    });
  }

  /** Sends `payload` and resolves with the next packet received. */
  async request(payload: string): Promise<string> {
    const n = this.packets.length + 1;
    this.send(payload);
    await this.packetCount(n);
    return this.packets[n - 1]!;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    for (const f of this.decoder.feed(d)) {
      if (f.type === 'ack') this.controls.push('+');
      else if (f.type === 'nack') this.controls.push('-');
      else if (f.type === 'packet') {
        this.packets.push(Buffer.from(f.payload).toString('latin1'));
        if (this.ackMode) this.socket.write('+');
      }
    }
    for (const w of this.waiters.filter((x) => this.packets.length >= x.n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}
