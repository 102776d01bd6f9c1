/**
 * The emulator's gdbstub: a GDB Remote Serial Protocol server over TCP or a unix socket that
 * answers like QEMU 7.2's (QEMU-FACTS.md), on the framing layer the client uses (src/rsp/framing).
 *
 * The link stays in ack mode (no `QStartNoAckMode`, as in 7.2); one client is served at a time;
 * connecting stops a running VM (an unsolicited `T02`) and closing does not resume it. Every stop
 * of the VM while a client is connected sends it a stop reply (`T05` for a breakpoint, watchpoint or
 * step, with `watch:ADDR;` as inserted; `T02` for an interrupt or a QMP `stop`; `T03` for a
 * shutdown; `T06` for an internal error; `W00` when the emulator ends). While the VM runs, any byte
 * that is not the acknowledgement of a reply stops it and is dropped, as QEMU's gdb_read_byte does.
 * Packet handling lives in rspPackets.ts.
 */
import type { Socket } from 'node:net';
import { ACK, NACK, PacketDecoder, encodePacket, payloadBytes, type Frame } from '../rsp/framing.js';
import { latin1 } from '../rsp/codec.js';
import { handlePacket, stopReply, type RspServerState } from './rspPackets.js';
import { HmpMonitor } from './hmpCommands.js';
import type { EmuSession, VmStop } from './session.js';
import type { ListenAddress } from '../net/singleClient.js';
import { SingleClientServer } from './singleClientServer.js';

/** The largest payload QEMU 7.2 takes (its 4096-byte line buffer, less one); longer packets are dropped without a word. */
export const MAX_PACKET_PAYLOAD = 4094;

/** How long a client may take to read the goodbye (`W00`) before its connection is cut. */
const DRAIN_MS = 500;

/** The gdbstub of one session. */
export class RspServer extends SingleClientServer<RspConnection> {
  /** State that outlives connections, as QEMU's does: multiprocess once negotiated, PhyMemMode, sstep flags, breakpoints. */
  readonly state: RspServerState;
  private readonly onStop = (s: VmStop): void => this.connection?.sendStop(s);
  private readonly onExit = (): void => void this.exit();

  private constructor(readonly session: EmuSession) {
    super();
    this.state = {
      multiprocess: false,
      physicalMemory: false,
      sstep: 0x7,
      breakpoints: new Map(),
      watchpoints: [],
      monitor: new HmpMonitor(session),
    };
    session.on('stop', this.onStop);
    session.on('exit', this.onExit);
  }

  /** Serves `session` on `where` (TCP, 127.0.0.1 unless a host is given, or a unix socket path). Throws ListenError. */
  static async listen(session: EmuSession, where: ListenAddress): Promise<RspServer> {
    const server = new RspServer(session);
    await server.start(where);
    return server;
  }

  /** True while a client is being served. */
  get connected(): boolean {
    return this.connection !== null;
  }

  protected connect(socket: Socket): RspConnection {
    return new RspConnection(socket, this);
  }

  protected opened(): void {
    // Connecting stops a running VM; the stop reply (T02) goes to this client.
    this.session.stop('paused');
  }

  /** The emulator is ending: `W00` to the client, then close, letting the client read it. */
  private async exit(): Promise<void> {
    this.connection?.send('W00');
    await this.shutDown(DRAIN_MS);
  }

  protected detachSession(): void {
    this.session.off('stop', this.onStop);
    this.session.off('exit', this.onExit);
  }
}

/** One client's link: framing, acknowledgements, and the running-VM rule for incoming bytes. */
class RspConnection {
  private readonly decoder = new PacketDecoder({ maxPacketSize: MAX_PACKET_PAYLOAD });
  /** The client has read a target description on this connection (until then `p`/`P` answer empty). */
  targetXmlRead = false;
  /** The last packet sent, until the client acknowledges it. */
  private unacked: Uint8Array | null = null;

  constructor(
    private readonly socket: Socket,
    readonly server: RspServer,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Sends the stop reply for `s`. */
  sendStop(s: VmStop): void {
    this.send(stopReply(s, this.server.state.multiprocess));
  }

  /** Sends one packet (escaped, never run-length encoded, as QEMU sends them). */
  send(payload: string | Uint8Array): void {
    if (this.socket.destroyed) return;
    const bytes = encodePacket(payloadBytes(payload));
    this.unacked = bytes;
    this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.decoder.feed(chunk)) this.onFrame(frame);
  }

  private get running(): boolean {
    return this.server.session.running;
  }

  /** A byte that arrives while the VM runs stops it (T02) and is lost, unless it acknowledges our last packet. */
  private interruptIfRunning(): boolean {
    if (!this.running) return false;
    this.server.session.stop('paused');
    return true;
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'ack':
        if (this.unacked) this.unacked = null;
        else this.interruptIfRunning();
        return;
      case 'nack':
        if (this.unacked) this.socket.write(this.unacked);
        else this.interruptIfRunning();
        return;
      case 'interrupt':
        if (!this.unacked) this.interruptIfRunning();
        return;
      case 'notification':
        if (!this.unacked) this.interruptIfRunning();
        return;
      case 'error':
        return this.onDamaged(frame.code, frame.message);
      case 'packet':
        this.unacked = null;
        if (this.interruptIfRunning()) return;
        this.socket.write(Uint8Array.of(ACK));
        this.onPacket(latin1(frame.payload));
        return;
    }
  }

  /**
   * Damaged input. Junk between packets is ignored (while a reply awaits its ack) or stops a
   * running VM; an overlong packet is dropped without a word, as QEMU drops it; a packet with a
   * bad checksum or broken framing gets `-` so the client sends it again.
   */
  private onDamaged(code: string, message: string): void {
    const junk = code === 'E_FRAMING' && message.startsWith('unexpected byte');
    if (junk) {
      if (!this.unacked) this.interruptIfRunning();
      return;
    }
    // Only a packet (it began with '$') can be damaged: its '$' counts as the end of waiting for an ack.
    this.unacked = null;
    if (this.interruptIfRunning()) return;
    if (code === 'E_FRAMING' && message.includes('longer than the maximum')) return;
    this.socket.write(Uint8Array.of(NACK));
  }

  /** Answers a packet; a failure inside the emulator answers `E22` rather than ending the server. */
  private onPacket(payload: string): void {
    let answer;
    try {
      answer = handlePacket(payload, this.server.session, this.server.state, this);
    } catch {
      this.send('E22');
      return;
    }
    for (const p of answer.packets) this.send(p);
    try {
      answer.after?.();
    } catch {
      // The session ended meanwhile (its exit closes this connection), or the machine failed: the
      // session has reported that as a stop already.
    }
  }
}
