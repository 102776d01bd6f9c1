/**
 * The proxy's side of a connection where it plays the stub: GDB's socket, and each pagewalk
 * client's. Bytes become packets and interrupts through the shared framing layer; in ack mode every
 * packet is acknowledged with `+` as it arrives (or `-` when damaged, so the client resends it), a
 * `-` from the client resends the last packet sent, and {@link StubLink.endAcks} switches acks off
 * once the `OK` to `QStartNoAckMode` is on its way, as the protocol orders.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ACK, NACK, PacketDecoder, encodePacket } from '../rsp/framing.js';

/** Events of a {@link StubLink}. */
export interface StubLinkEvents {
  /** A packet arrived intact (already acknowledged in ack mode). */
  packet: [payload: Uint8Array];
  /** The client sent Ctrl-C (0x03) outside a packet. */
  interrupt: [];
  /** Damaged or out-of-place input: dropped (and answered with `-` where that makes the client resend). */
  damaged: [message: string];
  /** The connection is closed. */
  close: [];
}

/** A connection on which the proxy answers as a stub. */
export class StubLink extends EventEmitter<StubLinkEvents> {
  private readonly decoder = new PacketDecoder();
  private acks = true;
  private last: Uint8Array | null = null;
  private ended = false;

  /** Wraps `stream`; `label` names the client in messages ("GDB at 127.0.0.1:5123"). */
  constructor(
    private readonly stream: Duplex,
    readonly label: string,
  ) {
    super();
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => undefined);
    stream.once('close', () => {
      this.ended = true;
      this.emit('close');
    });
  }

  /** True while packets are acknowledged with `+`/`-`. */
  get ackMode(): boolean {
    return this.acks;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.ended || this.stream.destroyed;
  }

  /** Sends a packet (escaped, never run-length encoded); a later `-` sends it again. */
  send(payload: Uint8Array): void {
    const frame = encodePacket(payload);
    this.last = frame;
    this.write(frame);
  }

  /** Stops acknowledging: call right after sending the `OK` that accepts `QStartNoAckMode`. */
  endAcks(): void {
    this.acks = false;
  }

  /** Closes the connection. */
  close(): void {
    this.stream.destroy();
  }

  private write(bytes: Uint8Array): void {
    if (!this.stream.destroyed && this.stream.writable) this.stream.write(bytes);
  }

  private onData(chunk: Uint8Array): void {
    for (const f of this.decoder.feed(chunk)) {
      switch (f.type) {
        case 'packet':
          if (this.acks) this.write(Uint8Array.of(ACK));
          this.emit('packet', f.payload);
          break;
        case 'interrupt':
          this.emit('interrupt');
          break;
        case 'nack':
          if (this.last) this.write(this.last);
          break;
        case 'ack':
          break;
        case 'notification':
          this.emit('damaged', `${this.label} sent a notification (%...), which only stubs send; dropped`);
          break;
        case 'error':
          if (f.code === 'E_CHECKSUM' && this.acks) this.write(Uint8Array.of(NACK));
          this.emit('damaged', `${this.label} sent a damaged packet (${f.code}): ${f.message}`);
          break;
      }
    }
  }
}
