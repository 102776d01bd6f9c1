/**
 * The proxy's clients: GDB (one at a time) and pagewalk's clients (any number, in process or on the
 * control socket). A pagewalk client's requests are answered in the order it sent them, whether the
 * proxy answers one itself or QEMU does, since RSP matches answers to requests by order alone.
 */
import { payloadBytes } from '../rsp/framing.js';
import type { Expect } from './packets.js';
import type { StubLink } from './stubLink.js';
import type { Party } from './traffic.js';

/** The GDB being served. */
export class GdbSession {
  /** Requests of GDB's forwarded to QEMU and not answered yet. */
  outstanding = 0;
  /** Set once GDB's `D` was accepted: QEMU lets the guest run and forgets the attachment. */
  detached = false;
  /** Set when the connection is gone. */
  closed = false;

  constructor(readonly link: StubLink) {}
}

/** One request of a pagewalk client. */
export interface PagewalkRequest {
  readonly session: PagewalkSession;
  /** The packet, latin1. */
  readonly payload: string;
  readonly expect: Expect;
  /** The PhyMemMode it must run under: the client's at the time it sent it (null: GDB's). */
  readonly mode: boolean | null;
  /** The proxy's own answer, computed when every earlier request has its answer; null when QEMU answers. */
  readonly local: (() => string) | null;
  /** Runs once the answer has been sent (e.g. ending acks after `QStartNoAckMode`). */
  readonly afterAnswer: (() => void) | null;
  /** QEMU's answer, once it came. */
  answer: Uint8Array | null;
  /** Output (`O` packets) that came before the answer, not yet passed on. */
  readonly progress: Uint8Array[];
}

/** A pagewalk client of the proxy. */
export class PagewalkSession {
  /** Its PhyMemMode (null: it has set none and sees GDB's). */
  mode: boolean | null = null;
  /** Set once its `qSupported` is answered: it may then be told of stops. */
  handshaken = false;
  /** Set when the connection is gone. */
  closed = false;
  private readonly outstanding: PagewalkRequest[] = [];

  constructor(
    /** Its number, from 1. */
    readonly id: number,
    readonly link: StubLink,
    /** Called with each packet sent to the client, for the traffic log. */
    private readonly sent: (payload: Uint8Array) => void,
  ) {}

  /** How it is named in the traffic log. */
  get party(): Party {
    return `pagewalk#${this.id}`;
  }

  /** True while a run of its own (`c`, `s`) is queued or in flight. */
  get resuming(): boolean {
    return this.outstanding.some((r) => r.expect === 'resume');
  }

  /** Records a request in arrival order; answers what can be answered. */
  add(r: PagewalkRequest): void {
    this.outstanding.push(r);
    this.flush();
  }

  /** Forgets a request that will never go out (an interrupted run that was still queued) and answers it with `answer`. */
  settle(r: PagewalkRequest, answer: string): void {
    r.answer = payloadBytes(answer);
    this.flush();
  }

  /** Passes on every answer (and output) whose turn has come. */
  flush(): void {
    while (!this.closed) {
      const r = this.outstanding[0];
      if (!r) return;
      for (const p of r.progress.splice(0)) this.send(p);
      if (r.answer === null && r.local) r.answer = payloadBytes(r.local());
      if (r.answer === null) return;
      this.outstanding.shift();
      this.send(r.answer);
      r.afterAnswer?.();
    }
  }

  /** Sends a packet nobody of its requests waits for (a stop GDB caused). */
  notify(payload: Uint8Array): void {
    this.send(payload);
  }

  private send(payload: Uint8Array): void {
    if (this.link.closed) return;
    this.link.send(payload);
    this.sent(payload);
  }
}
