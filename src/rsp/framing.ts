/**
 * GDB Remote Serial Protocol framing, shared by the client and the emulator's server: payloads to
 * `$payload#cs` bytes ({@link encodePacket}), and bytes back to frames ({@link PacketDecoder}), a
 * state machine that keeps partial input across `feed` calls, never throws and never stalls on
 * garbage: a `$` always starts a new packet, whatever came before it.
 */

/** `+`: the previous packet arrived intact (ack mode). */
export const ACK = 0x2b;
/** `-`: the previous packet arrived damaged, send it again (ack mode). */
export const NACK = 0x2d;
/** Ctrl-C, sent outside any packet: stop the running target. */
export const INTERRUPT = 0x03;

const DOLLAR = 0x24;
const HASH = 0x23;
const PERCENT = 0x25;
const ESCAPE = 0x7d;
const STAR = 0x2a;

/** The largest decoded payload a decoder accepts unless told otherwise (bytes). */
export const DEFAULT_MAX_PACKET_SIZE = 1 << 20;

/** Stable codes of framing errors. */
export type FramingErrorCode =
  /** A packet's checksum did not match (or was not two hex digits); the packet was dropped. */
  | 'E_CHECKSUM'
  /** Junk between packets, a packet cut short by a new `$`, a bad escape or run length, or a packet over the maximum size. */
  | 'E_FRAMING';

/** One thing the decoder found in the byte stream. */
export type Frame =
  /** A packet, unescaped and run-length expanded. */
  | { readonly type: 'packet'; readonly payload: Uint8Array }
  /** A `%...#cs` notification (non-stop mode), decoded like a packet. */
  | { readonly type: 'notification'; readonly payload: Uint8Array }
  /** `+` */
  | { readonly type: 'ack' }
  /** `-` */
  | { readonly type: 'nack' }
  /** 0x03 outside a packet. */
  | { readonly type: 'interrupt' }
  /** Damaged input; whatever it belonged to was dropped. */
  | { readonly type: 'error'; readonly code: FramingErrorCode; readonly message: string };

/** The modulo-256 sum of `bytes`, as RSP checksums are. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return sum;
}

/** True for the bytes that must be escaped inside a packet: `$ # } *`. */
function mustEscape(b: number): boolean {
  return b === DOLLAR || b === HASH || b === ESCAPE || b === STAR;
}

/** The bytes of `payload`: a string is taken as latin1 (one byte per character, each below 256). */
export function payloadBytes(payload: string | Uint8Array): Uint8Array {
  if (typeof payload !== 'string') return payload;
  const out = new Uint8Array(payload.length);
  for (let i = 0; i < payload.length; i++) {
    const c = payload.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`RSP payloads are bytes: character ${i} (U+${c.toString(16)}) is not latin1`);
    out[i] = c;
  }
  return out;
}

/** Options of {@link encodePacket}. */
export interface EncodeOptions {
  /** Run-length encode runs of four or more equal bytes (`X*n`), as stubs may do in replies. */
  runLength?: boolean;
}

/** The body of a frame: `payload` escaped (`$ # } *` become `}` and the byte XOR 0x20), optionally run-length encoded. */
export function escapePayload(payload: string | Uint8Array, options: EncodeOptions = {}): Uint8Array {
  const bytes = payloadBytes(payload);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (mustEscape(b)) {
      out.push(ESCAPE, b ^ 0x20);
      i++;
      continue;
    }
    out.push(b);
    let run = 1;
    if (options.runLength) while (run < 98 && i + run < bytes.length && bytes[i + run] === b) run++;
    // `*` and a count character c repeat the byte c - 29 more times; 3..97 fit a printable c, and the
    // counts 6 and 7 would give '#' and '$', so those runs are cut one or two short.
    let extra = options.runLength ? Math.min(run - 1, 97) : 0;
    if (extra === 6 || extra === 7) extra = 5;
    if (extra >= 3) {
      out.push(STAR, extra + 29);
      i += 1 + extra;
    } else {
      i++;
    }
  }
  return Uint8Array.from(out);
}

function frame(start: number, payload: string | Uint8Array, options: EncodeOptions): Uint8Array {
  const body = escapePayload(payload, options);
  const out = new Uint8Array(body.length + 4);
  out[0] = start;
  out.set(body, 1);
  out[body.length + 1] = HASH;
  const cs = checksum(body).toString(16).padStart(2, '0');
  out[body.length + 2] = cs.charCodeAt(0);
  out[body.length + 3] = cs.charCodeAt(1);
  return out;
}

/** `$payload#cs`: a packet ready to send. A string payload is latin1. */
export function encodePacket(payload: string | Uint8Array, options: EncodeOptions = {}): Uint8Array {
  return frame(DOLLAR, payload, options);
}

/** `%payload#cs`: a notification ready to send (non-stop mode). */
export function encodeNotification(payload: string | Uint8Array, options: EncodeOptions = {}): Uint8Array {
  return frame(PERCENT, payload, options);
}

/** Options of {@link PacketDecoder}. */
export interface DecoderOptions {
  /** The largest decoded payload accepted; longer packets are dropped with E_FRAMING. */
  maxPacketSize?: number;
}

const enum State {
  Idle,
  Data,
  Checksum1,
  Checksum2,
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

function describeByte(b: number): string {
  const printable = b >= 0x20 && b < 0x7f ? ` '${String.fromCharCode(b)}'` : '';
  return `0x${b.toString(16).padStart(2, '0')}${printable}`;
}

/**
 * Turns a byte stream into {@link Frame}s. Input may be cut anywhere: a partial packet is kept
 * until the rest arrives. Errors are frames too; after one, decoding carries on with the next byte.
 */
export class PacketDecoder {
  /** The largest decoded payload accepted. */
  readonly maxPacketSize: number;
  private state = State.Idle;
  private kind: 'packet' | 'notification' = 'packet';
  private buf = new Uint8Array(256);
  private len = 0;
  private sum = 0;
  private escaped = false;
  private runLength = false;
  private rawLength = 0;
  private problem: string | null = null;
  private checksumHigh = 0;
  private inJunk = false;

  constructor(options: DecoderOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  }

  /** True when no packet is partly received. */
  get idle(): boolean {
    return this.state === State.Idle;
  }

  /** Decodes `bytes`, continuing whatever the previous call left unfinished. */
  feed(bytes: Uint8Array): Frame[] {
    const out: Frame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      if (this.state === State.Data && !this.escaped && !this.runLength && this.problem === null) i = this.plainRun(bytes, i);
      if (i < bytes.length) this.byte(bytes[i]!, out);
    }
    return out;
  }

  /** Copies the bytes from `i` up to the next special one (`$ # } *`) in bulk; returns where it stopped. */
  private plainRun(bytes: Uint8Array, i: number): number {
    let j = i;
    let sum = this.sum;
    for (; j < bytes.length; j++) {
      const b = bytes[j]!;
      if (b === HASH || b === DOLLAR || b === ESCAPE || b === STAR) break;
      sum += b;
    }
    const n = j - i;
    if (n === 0) return i;
    if (this.len + n > this.maxPacketSize) return i; // byte by byte, to report the overflow
    this.reserve(this.len + n);
    this.buf.set(bytes.subarray(i, j), this.len);
    this.len += n;
    this.rawLength += n;
    this.sum = sum & 0xff;
    return j;
  }

  private reserve(size: number): void {
    if (size <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < size) cap *= 2;
    const bigger = new Uint8Array(Math.min(cap, Math.max(this.maxPacketSize, size)));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  /** Forgets any partial packet. */
  reset(): void {
    this.state = State.Idle;
    this.inJunk = false;
  }

  private byte(b: number, out: Frame[]): void {
    switch (this.state) {
      case State.Idle:
        return this.idleByte(b, out);
      case State.Data:
        return this.dataByte(b, out);
      case State.Checksum1: {
        const v = hexValue(b);
        if (v < 0) return this.badChecksum(b, out);
        this.checksumHigh = v;
        this.state = State.Checksum2;
        return;
      }
      case State.Checksum2: {
        const v = hexValue(b);
        if (v < 0) return this.badChecksum(b, out);
        this.state = State.Idle;
        this.finish((this.checksumHigh << 4) | v, out);
        return;
      }
    }
  }

  private idleByte(b: number, out: Frame[]): void {
    if (b === DOLLAR || b === PERCENT) {
      this.inJunk = false;
      this.start(b === DOLLAR ? 'packet' : 'notification');
    } else if (b === ACK) {
      this.inJunk = false;
      out.push({ type: 'ack' });
    } else if (b === NACK) {
      this.inJunk = false;
      out.push({ type: 'nack' });
    } else if (b === INTERRUPT) {
      this.inJunk = false;
      out.push({ type: 'interrupt' });
    } else if (!this.inJunk) {
      // One error per run of junk, so a flood of garbage costs one frame.
      this.inJunk = true;
      out.push({ type: 'error', code: 'E_FRAMING', message: `unexpected byte ${describeByte(b)} between packets` });
    }
  }

  private start(kind: 'packet' | 'notification'): void {
    this.state = State.Data;
    this.kind = kind;
    this.len = 0;
    this.sum = 0;
    this.rawLength = 0;
    this.escaped = false;
    this.runLength = false;
    this.problem = null;
  }

  private dataByte(b: number, out: Frame[]): void {
    if (b === DOLLAR) {
      out.push({
        type: 'error',
        code: 'E_FRAMING',
        message: `a ${this.kind} was cut short after ${this.rawLength} bytes by a new '$'`,
      });
      this.start('packet');
      return;
    }
    if (b === HASH) {
      if (this.problem === null && (this.escaped || this.runLength)) {
        this.problem = `the ${this.kind} ends inside ${this.escaped ? 'an escape' : 'a run-length sequence'}`;
      }
      this.state = State.Checksum1;
      return;
    }
    this.sum = (this.sum + b) & 0xff;
    this.rawLength++;
    if (this.runLength) {
      this.runLength = false;
      if (b < 0x20 || b > 0x7e) {
        this.problem ??= `bad run-length count ${describeByte(b)}`;
      } else if (this.len === 0) {
        this.problem ??= `run-length encoding with nothing to repeat`;
      } else {
        const last = this.buf[this.len - 1]!;
        for (let n = b - 29; n > 0; n--) this.push(last);
      }
    } else if (this.escaped) {
      this.escaped = false;
      this.push(b ^ 0x20);
    } else if (b === ESCAPE) {
      this.escaped = true;
    } else if (b === STAR) {
      this.runLength = true;
    } else {
      this.push(b);
    }
  }

  private push(b: number): void {
    if (this.problem !== null) return;
    if (this.len >= this.maxPacketSize) {
      this.problem = `the ${this.kind} is longer than the maximum of ${this.maxPacketSize} bytes`;
      return;
    }
    this.reserve(this.len + 1);
    this.buf[this.len++] = b;
  }

  private badChecksum(b: number, out: Frame[]): void {
    this.state = State.Idle;
    if (this.problem !== null) out.push({ type: 'error', code: 'E_FRAMING', message: `${this.problem}; dropped` });
    else out.push({ type: 'error', code: 'E_CHECKSUM', message: `the ${this.kind}'s checksum is not two hex digits (got ${describeByte(b)}); dropped` });
    // The byte may begin the next frame ('$', '+', ...).
    this.idleByte(b, out);
  }

  private finish(received: number, out: Frame[]): void {
    if (this.problem !== null) {
      out.push({ type: 'error', code: 'E_FRAMING', message: `${this.problem}; dropped` });
      return;
    }
    // The checksum covers the bytes as sent; '$', '%' and '#' never count.
    if (received !== this.sum) {
      out.push({
        type: 'error',
        code: 'E_CHECKSUM',
        message: `checksum mismatch: the ${this.kind} says ${received.toString(16).padStart(2, '0')}, its bytes sum to ${this.sum.toString(16).padStart(2, '0')}; dropped`,
      });
      return;
    }
    out.push({ type: this.kind, payload: this.buf.slice(0, this.len) });
  }
}
