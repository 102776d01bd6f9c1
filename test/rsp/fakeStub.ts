/**
 * Test doubles for the RSP client: a scripted gdbstub on a real TCP socket (built on the same
 * framing layer the emulator's server uses); the manual clock is test/helpers/manualClock.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { PacketDecoder, encodePacket } from '../../src/rsp/framing.js';

/** Returned by a handler that has acknowledged and answered (or not) by itself. */
export const HANDLED = Symbol('handled');

/**
 * What the stub does with a packet: a reply (or several) to send after its `+`; null to
 * acknowledge and stay silent; HANDLED when the handler took care of everything itself.
 */
export type StubHandler = (payload: string, stub: FakeStub) => string | readonly string[] | null | typeof HANDLED;

/** QEMU 7.2's qSupported reply. */
export const QEMU_SUPPORTED = 'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+';

/** A small target description in QEMU's shape: target.xml includes core.xml. */
export const FAKE_ANNEXES: Record<string, string> = {
  'target.xml': '<?xml version="1.0"?><target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>',
  'core.xml':
    '<feature name="org.gnu.gdb.i386.core"><reg name="rax" bitsize="64" regnum="0"/><reg name="rip" bitsize="64" type="code_ptr"/>' +
    '<reg name="eflags" bitsize="32"/><!--reg name="cs_base" bitsize="64"/--><reg name="cr3" bitsize="64"/></feature>',
};

/** Answers what every session starts with (qSupported, target.xml in 16-byte chunks, vCont?), or returns undefined. */
export function standardReply(payload: string, supported = QEMU_SUPPORTED): string | undefined {
  if (payload.startsWith('qSupported')) return supported;
  if (payload === 'vCont?') return 'vCont;c;C;s;S';
  const x = /^qXfer:features:read:([^:]+):([0-9a-f]+),([0-9a-f]+)$/.exec(payload);
  if (x) {
    const text = FAKE_ANNEXES[x[1]!];
    if (text === undefined) return 'E00';
    const offset = parseInt(x[2]!, 16);
    const chunk = text.slice(offset, offset + Math.min(16, parseInt(x[3]!, 16)));
    return (offset + chunk.length >= text.length ? 'l' : 'm') + chunk;
  }
  return undefined;
}

/** A scripted gdbstub listening on 127.0.0.1 for one client at a time. */
export class FakeStub {
  /** Payloads of the packets received, in order. */
  readonly received: string[] = [];
  /** `+`, `-` and 0x03 bytes received from the client, in order, as characters. */
  readonly controls: string[] = [];
  /** Whether the stub sends `+` for packets (and expects them). */
  ackMode = true;
  private socket: Socket | null = null;
  private readonly decoder = new PacketDecoder();
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];
  private readonly connected: Promise<Socket>;
  private onConnect!: (s: Socket) => void;

  private constructor(
    private readonly server: Server,
    private readonly handler: StubHandler,
  ) {
    this.connected = new Promise((resolve) => (this.onConnect = resolve));
    server.on('connection', (s) => {
      this.socket = s;
      s.setNoDelay(true);
      s.on('data', (d: Buffer) => this.onData(d));
      s.on('error', () => undefined);
      this.onConnect(s);
    });
  }

  /** Starts a stub that answers with `handler`. */
  static async listen(handler: StubHandler = (p) => standardReply(p) ?? ''): Promise<FakeStub> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new FakeStub(server, handler);
  }

  /** `127.0.0.1:PORT`. */
  get endpoint(): string {
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('not listening');
    return `127.0.0.1:${a.port}`;
  }

  /** Resolves once a client has connected. */
  client(): Promise<Socket> {
    return this.connected;
  }

  /** Sends a packet to the client. */
  send(payload: string): void {
    this.socket?.write(encodePacket(payload));
  }

  /** Sends bytes as they are (acks, junk, damaged packets). */
  sendRaw(bytes: string | Uint8Array): void {
    this.socket?.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Resolves once `test` holds (checked after every byte batch received). */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  /** Resolves once `n` packets have been received. */
  packets(n: number): Promise<void> {
    return this.until(() => this.received.length >= n);
  }

  /** Closes the client connection (as QEMU does after W00). */
  hangUp(): void {
    this.socket?.destroy();
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onData(d: Buffer): void {
    for (const f of this.decoder.feed(d)) {
      if (f.type === 'ack') this.controls.push('+');
      else if (f.type === 'nack') this.controls.push('-');
      else if (f.type === 'interrupt') this.controls.push('\x03');
      else if (f.type === 'packet') {
        const payload = Buffer.from(f.payload).toString('latin1');
        this.received.push(payload);
        const reply = this.handler(payload, this);
        if (reply === HANDLED) continue;
        if (this.ackMode) this.sendRaw('+');
        if (reply === null) continue;
        for (const r of typeof reply === 'string' ? [reply] : reply) this.send(r);
      }
    }
    for (const w of this.waiters.filter((x) => x.test())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}
