/**
 * Pure RSP message codecs: hex and bytes, little-endian register values, and one small parser per
 * reply the client reads (stop replies, thread ids, `qSupported`, `qXfer` chunks, `Exx` errors,
 * monitor `O` output, `vCont?`). Parsers of malformed replies throw {@link RspError} (E_PROTOCOL).
 */
import { RspError } from './errors.js';

/** GDB's signal numbers as stop replies carry them (they are not the host's). */
export const GdbSignal = {
  /** Interrupted: Ctrl-C, a QMP `stop`, a new connection. */
  INT: 2,
  /** QEMU: the guest shut down and stays paused (`-action shutdown=pause`). */
  QUIT: 3,
  /** Breakpoint, watchpoint or single step. */
  TRAP: 5,
} as const;

/** One character per byte (bytes 0..255 map to U+0000..U+00FF). */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  // `apply` takes a typed array as it is; spreading it would build an argument list byte by byte.
  for (let i = 0; i < bytes.length; i += 0x2000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000) as unknown as number[]);
  }
  return s;
}

const HEX_DIGITS = '0123456789abcdef';

/** Lower-case hex of `bytes`, two digits per byte. */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 15]!;
  return s;
}

/** Hex digit values by character code; -1 for anything else. */
const NIBBLE = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 16; i++) {
    t[HEX_DIGITS.charCodeAt(i)] = i;
    t[HEX_DIGITS.toUpperCase().charCodeAt(i)] = i;
  }
  return t;
})();

/**
 * The bytes that hex digits (either case) spell, from a string or from the raw bytes of a
 * packet. Throws E_PROTOCOL on an odd length or a non-hex digit.
 */
export function hexToBytes(hex: string | Uint8Array): Uint8Array {
  const text = typeof hex === 'string';
  if (hex.length % 2 !== 0) throw new RspError('E_PROTOCOL', `odd-length hex data (${hex.length} digits): ${previewOf(hex)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) {
    const a = text ? hex.charCodeAt(j) : hex[j]!;
    const b = text ? hex.charCodeAt(j + 1) : hex[j + 1]!;
    const hi = a < 256 ? NIBBLE[a]! : -1;
    const lo = b < 256 ? NIBBLE[b]! : -1;
    if ((hi | lo) < 0) throw new RspError('E_PROTOCOL', `not hex data at digit ${hi < 0 ? j : j + 1}: ${previewOf(hex)}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function previewOf(hex: string | Uint8Array): string {
  return preview(typeof hex === 'string' ? hex : latin1(hex.subarray(0, 100)));
}

/** Hex of the UTF-8 bytes of `text` (monitor commands are sent this way). */
export function textToHex(text: string): string {
  return bytesToHex(new TextEncoder().encode(text));
}

/** The UTF-8 text whose bytes `hex` spells; throws E_PROTOCOL on malformed hex. */
export function hexToText(hex: string): string {
  return new TextDecoder().decode(hexToBytes(hex));
}

/** A register value as `p`/`P`/`g` carry it: `bits / 8` bytes, little-endian, in hex. Throws RangeError if it does not fit. */
export function encodeRegister(value: bigint, bits: number): string {
  if (bits <= 0 || bits % 8 !== 0) throw new RangeError(`register width must be a positive multiple of 8 bits, not ${bits}`);
  if (value < 0n || value >> BigInt(bits) !== 0n) {
    throw new RangeError(`value 0x${value.toString(16)} does not fit a ${bits}-bit register`);
  }
  const bytes = new Uint8Array(bits / 8);
  let v = value;
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytesToHex(bytes);
}

/**
 * The value of a little-endian register in hex (any width), or null when the stub marks it
 * unavailable (`xx...`). Throws E_PROTOCOL on anything else that is not hex.
 */
export function decodeRegister(hex: string): bigint | null {
  if (hex.length > 0 && /^x+$/i.test(hex)) return null;
  const bytes = hexToBytes(hex);
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** An `Exx` (or `E.text`) reply, decoded. */
export interface ErrorReply {
  /** The number of `Exx`, or null for the textual form. */
  readonly errno: number | null;
  /** The text of `E.text`, else null. */
  readonly text: string | null;
}

/**
 * The error a reply carries, or null if it is not an error. `Exx` is exactly three characters, so
 * it cannot be confused with hex data (always of even length).
 */
export function parseErrorReply(reply: string): ErrorReply | null {
  const m = /^E([0-9a-fA-F]{2})$/.exec(reply);
  if (m) return { errno: parseInt(m[1]!, 16), text: null };
  if (reply.startsWith('E.')) return { errno: null, text: reply.slice(2) };
  return null;
}

/** A thread id: `tid` (and `pid` in the multiprocess form `pPID.TID`); -1 means all, 0 any. */
export interface ThreadId {
  readonly pid: number | null;
  readonly tid: number;
}

function threadPart(s: string, whole: string): number {
  if (s === '-1') return -1;
  if (!/^[0-9a-fA-F]+$/.test(s)) throw new RspError('E_PROTOCOL', `malformed thread id '${whole}'`);
  return parseInt(s, 16);
}

/** Parses `01`, `-1`, `p01.02`, `p1.-1` or `p01` (all threads of process 1). Throws E_PROTOCOL. */
export function parseThreadId(s: string): ThreadId {
  if (s.startsWith('p')) {
    const dot = s.indexOf('.');
    if (dot < 0) return { pid: threadPart(s.slice(1), s), tid: -1 };
    return { pid: threadPart(s.slice(1, dot), s), tid: threadPart(s.slice(dot + 1), s) };
  }
  return { pid: null, tid: threadPart(s, s) };
}

/** A thread id in RSP form (`p1.1` when it has a pid, else `1`; -1 as `-1`). */
export function formatThreadId(t: ThreadId): string {
  const part = (n: number): string => (n < 0 ? '-1' : n.toString(16));
  return t.pid === null ? part(t.tid) : `p${part(t.pid)}.${part(t.tid)}`;
}

/** What a watchpoint stop reports: the kind and the address as the watchpoint was inserted. */
export interface WatchHit {
  readonly kind: 'write' | 'read' | 'access';
  readonly address: bigint;
}

/** The target stopped (`S` or `T`). */
export interface StoppedReply {
  readonly kind: 'stopped';
  /** GDB signal number (see {@link GdbSignal}). */
  readonly signal: number;
  readonly thread: ThreadId | null;
  readonly core: number | null;
  /** Set when a watchpoint fired (`watch:`, `rwatch:`, `awatch:`). */
  readonly watch: WatchHit | null;
  /** `swbreak`/`hwbreak`, when the stub reports them. */
  readonly breakpoint: 'software' | 'hardware' | null;
  /** Registers sent along (`nn:value`), by register number, as little-endian hex. */
  readonly registers: ReadonlyMap<number, string>;
  /** Every other `name:value` field, as sent. */
  readonly fields: ReadonlyMap<string, string>;
}

/** The process exited (`W`) or was terminated by a signal (`X`). */
export interface ExitedReply {
  readonly kind: 'exited' | 'terminated';
  /** The exit status (`W`) or the signal (`X`). */
  readonly code: number;
  readonly pid: number | null;
}

/** A stop reply: the answer to `?`, `c`, `s`, `vCont`, or an unsolicited stop. */
export type StopReply = StoppedReply | ExitedReply;

const STOP_REPLY = /^(?:[ST][0-9a-fA-F]{2}|[WX][0-9a-fA-F]+(?:;|$))/;

/** True when `reply` has the shape of a stop reply (`Sxx`, `Txx...`, `Wxx`, `Xxx`). No other reply the client reads starts so. */
export function isStopReply(reply: string): boolean {
  return STOP_REPLY.test(reply);
}

const WATCH_KINDS: Record<string, WatchHit['kind']> = { watch: 'write', rwatch: 'read', awatch: 'access' };

/** Parses a stop reply; throws E_PROTOCOL on a malformed one. */
export function parseStopReply(reply: string): StopReply {
  const bad = (why: string): RspError => new RspError('E_PROTOCOL', `malformed stop reply (${why}): ${preview(reply)}`);
  const head = reply[0];
  if (head === 'W' || head === 'X') {
    const [code, ...rest] = reply.slice(1).split(';');
    if (!code || !/^[0-9a-fA-F]+$/.test(code)) throw bad('no status');
    let pid: number | null = null;
    for (const f of rest) {
      const m = /^process:([0-9a-fA-F]+)$/.exec(f);
      if (!m) throw bad(`unknown field '${f}'`);
      pid = parseInt(m[1]!, 16);
    }
    return { kind: head === 'W' ? 'exited' : 'terminated', code: parseInt(code, 16), pid };
  }
  if ((head !== 'S' && head !== 'T') || !/^[0-9a-fA-F]{2}$/.test(reply.slice(1, 3))) throw bad('not S, T, W or X');
  const signal = parseInt(reply.slice(1, 3), 16);
  let thread: ThreadId | null = null;
  let core: number | null = null;
  let watch: WatchHit | null = null;
  let breakpoint: StoppedReply['breakpoint'] = null;
  const registers = new Map<number, string>();
  const fields = new Map<string, string>();
  if (head === 'S') {
    if (reply.length !== 3) throw bad('S takes no fields');
  } else {
    for (const f of reply.slice(3).split(';')) {
      if (f === '') continue;
      const colon = f.indexOf(':');
      if (colon <= 0) throw bad(`field '${f}' has no name`);
      const name = f.slice(0, colon);
      const value = f.slice(colon + 1);
      const watchKind = WATCH_KINDS[name];
      if (name === 'thread') thread = parseThreadId(value);
      else if (name === 'core') {
        if (!/^[0-9a-fA-F]+$/.test(value)) throw bad('core is not hex');
        core = parseInt(value, 16);
      } else if (watchKind) {
        if (!/^[0-9a-fA-F]+$/.test(value)) throw bad(`${name} address is not hex`);
        watch = { kind: watchKind, address: BigInt(`0x${value}`) };
      } else if (name === 'swbreak') breakpoint = 'software';
      else if (name === 'hwbreak') breakpoint = 'hardware';
      else if (/^[0-9a-fA-F]+$/.test(name)) registers.set(parseInt(name, 16), value);
      else fields.set(name, value);
    }
  }
  return { kind: 'stopped', signal, thread, core, watch, breakpoint, registers, fields };
}

/** `qSupported` features: `name+` true, `name-` false, `name?` 'maybe', `name=value` the value. */
export type SupportedFeatures = ReadonlyMap<string, boolean | 'maybe' | string>;

/** Parses a `qSupported` reply (an empty reply gives no features). */
export function parseSupported(reply: string): SupportedFeatures {
  const out = new Map<string, boolean | 'maybe' | string>();
  for (const item of reply.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq > 0) out.set(item.slice(0, eq), item.slice(eq + 1));
    else if (item.endsWith('+')) out.set(item.slice(0, -1), true);
    else if (item.endsWith('-')) out.set(item.slice(0, -1), false);
    else if (item.endsWith('?')) out.set(item.slice(0, -1), 'maybe');
    else throw new RspError('E_PROTOCOL', `malformed qSupported item '${item}'`);
  }
  return out;
}

/** The `PacketSize` a `qSupported` reply announces (hex), or null. Throws E_PROTOCOL if it is not hex. */
export function supportedPacketSize(features: SupportedFeatures): number | null {
  const v = features.get('PacketSize');
  if (v === undefined) return null;
  if (typeof v !== 'string' || !/^[0-9a-fA-F]+$/.test(v)) throw new RspError('E_PROTOCOL', `PacketSize is not hex: ${String(v)}`);
  return parseInt(v, 16);
}

/** A `qXfer` reply chunk: its data and whether it is the last (`l`) or more follows (`m`). */
export interface XferChunk {
  readonly data: Uint8Array;
  readonly last: boolean;
}

/** Parses a `qXfer` reply chunk (binary data after `m` or `l`, already unescaped). Throws E_PROTOCOL. */
export function parseXferChunk(reply: Uint8Array): XferChunk {
  const head = reply[0];
  if (head !== 0x6d && head !== 0x6c) {
    throw new RspError('E_PROTOCOL', `a qXfer reply must start with 'm' or 'l': ${preview(latin1(reply.subarray(0, 40)))}`);
  }
  return { data: reply.slice(1), last: head === 0x6c };
}

/** The text of a console output packet `O<hex>`, or null if `reply` is not one (`OK` is not). Throws E_PROTOCOL on bad hex. */
export function parseOutputPacket(reply: string): string | null {
  if (reply[0] !== 'O' || reply === 'OK') return null;
  return hexToText(reply.slice(1));
}

/** The actions a `vCont?` reply lists (`vCont;c;C;s;S` gives c, C, s, S); empty when unsupported. */
export function parseVContActions(reply: string): ReadonlySet<string> {
  if (reply === '') return new Set();
  if (!reply.startsWith('vCont')) throw new RspError('E_PROTOCOL', `malformed vCont? reply: ${preview(reply)}`);
  return new Set(reply.split(';').slice(1).filter(Boolean));
}

/** At most 80 characters of `s`, for error messages. */
export function preview(s: string): string {
  return s.length > 80 ? `${JSON.stringify(s.slice(0, 80))}... (${s.length} characters)` : JSON.stringify(s);
}
