/**
 * The proxy's one connection to the real stub (QEMU's gdbstub), where it plays the client for
 * everyone: GDB, pagewalk's clients and itself. Packets from all of them go out on one stream in the
 * order they are sent; QEMU answers in that order, so each answer is handed back to the owner of the
 * oldest packet still waiting ({@link Outgoing}).
 *
 * Ack mode (QEMU 7.2 has no other): every packet from QEMU is acknowledged at once, and QEMU's `+`
 * for each of ours is counted. That count is what tells an answer from a stop nobody asked for: QEMU
 * acknowledges a packet and answers it in one go, so a stop reply that arrives while the oldest
 * packet is still unacknowledged came before QEMU read that packet. When such a stop is QEMU's T02
 * (the guest was running behind everyone's back, after a QMP `cont`, and our packet's `$` was taken
 * for an interrupt, see QEMU-FACTS §2.5) the packet was lost, and it is sent again.
 *
 * Since QEMU takes any byte that arrives while the target runs for Ctrl-C, nothing may reach it
 * then, our own `+` included: a `+` for an earlier answer that arrives during a single step turns
 * the step into a T02 (seen with GDB 13 through the proxy). So a packet that runs the target (`c`,
 * `s`, `vCont`) waits until every earlier packet is answered (and that answer acknowledged), and
 * what is sent after it (Ctrl-C) waits behind it.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { GdbSignal, isStopReply, latin1, parseStopReply, type StopReply } from '../rsp/codec.js';
import { ACK, INTERRUPT, NACK, PacketDecoder, encodePacket, payloadBytes } from '../rsp/framing.js';
import type { Expect } from './packets.js';

/** A packet sent to QEMU, and whose it is. */
export interface Outgoing<O> {
  /** Who gets the answer. */
  readonly owner: O;
  /** The request, latin1. */
  readonly payload: string;
  readonly expect: Expect;
  /** Set once QEMU acknowledged it (always, in no-ack mode). */
  acked: boolean;
}

/** Events of an {@link UpstreamLink}. */
export interface UpstreamEvents<O> {
  /** The answer that completes `out` (a stop reply for `resume` packets). */
  answer: [out: Outgoing<O>, payload: Uint8Array];
  /** A packet that belongs to `out` but does not complete it: `O` output, or an `F` request while the target runs. */
  progress: [out: Outgoing<O>, payload: Uint8Array];
  /** A packet no request waits for: a stop (parsed) nobody asked for, console output, or a stray packet (`stop` null). */
  unsolicited: [payload: Uint8Array, stop: StopReply | null];
  /** `out` was sent again: QEMU lost it (`why` says how). */
  resent: [out: Outgoing<O>, why: string];
  /** Damaged or out-of-place input from QEMU; dropped. */
  damaged: [message: string];
  /** The connection is closed; `waiting` lists the packets that will never be answered. */
  close: [waiting: Outgoing<O>[]];
}

/** The stop reply `payload` is, or null when it is none (or malformed). */
export function stopReplyOf(payload: Uint8Array): StopReply | null {
  const first = payload[0];
  if (first !== 0x53 && first !== 0x54 && first !== 0x57 && first !== 0x58) return null;
  const text = latin1(payload);
  if (!isStopReply(text)) return null;
  try {
    return parseStopReply(text);
  } catch {
    return null;
  }
}

function isOutput(payload: Uint8Array): boolean {
  if (payload[0] !== 0x4f || payload.length % 2 !== 1 || (payload.length === 2 && payload[1] === 0x4b)) return false;
  for (let i = 1; i < payload.length; i++) {
    const b = payload[i]!;
    if (!((b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46))) return false;
  }
  return true;
}

/** The connection to the real stub, shared by every owner `O`. */
export class UpstreamLink<O> extends EventEmitter<UpstreamEvents<O>> {
  private readonly decoder = new PacketDecoder();
  private acks = true;
  /** Packets sent and not yet acknowledged, oldest first (ack mode). */
  private readonly unacked: Outgoing<O>[] = [];
  /** Packets waiting for an answer, in the order the answers will come. */
  private readonly waiting: Outgoing<O>[] = [];
  /** A run packet held until everything before it is answered, and what came after it (null: Ctrl-C). */
  private readonly deferred: (Outgoing<O> | null)[] = [];
  private heard = false;
  private connectStop = false;
  private ended = false;
  /** Resolves once the connection is closed. */
  readonly whenClosed: Promise<void>;

  /** Wraps the connected `stream`; `label` names the stub in messages. */
  constructor(
    private readonly stream: Duplex,
    readonly label: string,
  ) {
    super();
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => undefined);
    this.whenClosed = new Promise((resolve) =>
      stream.once('close', () => {
        this.ended = true;
        const left = [...this.waiting.splice(0), ...this.deferred.splice(0).filter((d): d is Outgoing<O> => d !== null && d.expect !== 'none')];
        this.unacked.length = 0;
        this.emit('close', left);
        resolve();
      }),
    );
  }

  /** True while both sides acknowledge packets. */
  get ackMode(): boolean {
    return this.acks;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.ended || this.stream.destroyed;
  }

  /** True once anything at all came from the stub. */
  get heardFrom(): boolean {
    return this.heard;
  }

  /** True when the first thing the stub sent was a stop reply: connecting stopped a running target (QEMU's T02). */
  get stoppedOnConnect(): boolean {
    return this.connectStop;
  }

  /** The packets waiting for an answer (and those held to go after a run packet), oldest first. */
  get pending(): readonly Outgoing<O>[] {
    return [...this.waiting, ...this.deferred.filter((d): d is Outgoing<O> => d !== null && d.expect !== 'none')];
  }

  /** The packet whose stop reply is awaited (the target runs, or is about to, for its owner), or null. */
  get runningFor(): Outgoing<O> | null {
    return this.waiting.find((o) => o.expect === 'resume') ?? this.deferred.find((o) => o?.expect === 'resume') ?? null;
  }

  /**
   * Sends `payload` for `owner`; its answer comes back as an `answer` event (none for `expect:
   * 'none'`). A run packet goes out once every earlier packet is answered.
   */
  send(owner: O, payload: string, expect: Expect): Outgoing<O> {
    const out: Outgoing<O> = { owner, payload, expect, acked: !this.acks };
    if (this.deferred.length > 0 || (expect === 'resume' && this.waiting.length > 0)) this.deferred.push(out);
    else this.transmit(out);
    return out;
  }

  /** Sends Ctrl-C (after a run packet still held). */
  interrupt(): void {
    if (this.deferred.length > 0) this.deferred.push(null);
    else this.write(Uint8Array.of(INTERRUPT));
  }

  private transmit(out: Outgoing<O>): void {
    if (this.acks) this.unacked.push(out);
    if (out.expect !== 'none') this.waiting.push(out);
    this.write(encodePacket(payloadBytes(out.payload)));
  }

  /** Sends what was held, as far as it may go now. */
  private release(): void {
    while (this.deferred.length > 0) {
      const d = this.deferred[0]!;
      if (d !== null && d.expect === 'resume' && this.waiting.length > 0) return;
      this.deferred.shift();
      if (d === null) this.write(Uint8Array.of(INTERRUPT));
      else this.transmit(d);
    }
  }

  /** Stops acknowledging: call when the `OK` to `QStartNoAckMode` arrives (it has been acknowledged by then). */
  endAcks(): void {
    this.acks = false;
    for (const o of this.unacked.splice(0)) o.acked = true;
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
      const first = !this.heard;
      this.heard = true;
      switch (f.type) {
        case 'ack': {
          const o = this.unacked.shift();
          if (o) o.acked = true;
          break;
        }
        case 'nack':
          if (!this.resendOldest(`${this.label} asked for it again (-)`)) this.emit('damaged', `${this.label} sent - but no packet waits for an acknowledgement`);
          break;
        case 'packet':
          if (this.acks) this.write(Uint8Array.of(ACK));
          this.onPacket(f.payload, first);
          break;
        case 'notification':
          this.emit('damaged', `${this.label} sent a notification (non-stop mode was not asked for); dropped`);
          break;
        case 'interrupt':
          this.emit('damaged', `${this.label} sent an interrupt byte (0x03); dropped`);
          break;
        case 'error':
          if (f.code === 'E_CHECKSUM' && this.acks) this.write(Uint8Array.of(NACK));
          this.emit('damaged', `damaged packet from ${this.label} (${f.code}): ${f.message}`);
          break;
      }
    }
  }

  private onPacket(payload: Uint8Array, firstThing: boolean): void {
    const head = this.waiting[0];
    const stop = stopReplyOf(payload);
    if (firstThing && stop) this.connectStop = true;
    if (!head) return void this.emit('unsolicited', payload, stop);
    // In ack mode an acknowledged head is answered next, whatever the answer looks like.
    const certain = this.acks && head.acked;
    switch (head.expect) {
      case 'resume':
        return stop ? this.complete(payload) : void this.emit('progress', head, payload);
      case 'stop':
        if (!stop && isOutput(payload)) return void this.emit('progress', head, payload);
        return this.complete(payload);
      case 'monitor':
        if (isOutput(payload)) return void this.emit('progress', head, payload);
        break;
      default:
        break;
    }
    if (stop && !certain) {
      // A stop before QEMU read `head`. A T02 after we had already heard from QEMU means the target
      // was running and took our packet's '$' for Ctrl-C; the T02 of connecting comes before anything.
      if (this.acks && !firstThing && stop.kind === 'stopped' && stop.signal === GdbSignal.INT) {
        this.resendOldest('the target was running (resumed behind our back) and took it for an interrupt');
      }
      this.emit('unsolicited', payload, stop);
      return;
    }
    this.complete(payload);
  }

  private complete(payload: Uint8Array): void {
    const out = this.waiting.shift()!;
    const i = this.unacked.indexOf(out);
    if (i >= 0) this.unacked.splice(i, 1);
    out.acked = true;
    // The answer's '+' is out already: a run packet held for it may go.
    this.release();
    this.emit('answer', out, payload);
  }

  /** Sends the oldest unacknowledged packet again; its answer now comes after those already acknowledged. */
  private resendOldest(why: string): boolean {
    const out = this.unacked.shift();
    if (!out) return false;
    this.unacked.push(out);
    const w = this.waiting.indexOf(out);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.waiting.push(out);
    }
    this.write(encodePacket(payloadBytes(out.payload)));
    this.emit('resent', out, why);
    return true;
  }
}
