/**
 * Fixtures for the server tests: small machines of their own (built on the emulator tests'
 * loader-style layout), served by an EmuSession with the RSP server on 127.0.0.1 (a free port)
 * and the QMP server on a unix socket in a private directory; a raw RSP socket for byte-level
 * tests; waiting helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Assembler, qword } from '../../src/asm/index.js';
import { cr3, rax, rbx, rcx } from '../../src/asm/registers.js';
import { QmpServer, type QmpServerOptions } from '../../src/emu/qmpServer.js';
import { RspServer } from '../../src/emu/rspServer.js';
import { EmuSession, type EmuSessionOptions } from '../../src/emu/session.js';
import type { Machine, TripleFaultAction } from '../../src/emu/index.js';
import type { Assembly } from '../../src/asm/index.js';
import { PacketDecoder, encodePacket, type Frame } from '../../src/rsp/framing.js';
import { latin1 } from '../../src/rsp/codec.js';
import { DATA_VA, testMachine } from './fixtures.js';

/** Where the loop program writes (a write watch there fires) and reads. */
export const COUNTER_VA = DATA_VA + 0x18n;
export const READ_VA = DATA_VA + 0x20n;

/**
 * The loop program: `top: inc qword [COUNTER]; after_inc: mov rbx, [READ]; after_read: inc rcx;
 * jmp top`. It never stops by itself.
 */
export function loopProgram(): Assembler {
  return new Assembler(64)
    .mov(rcx, 0)
    .label('top')
    .inc(qword(COUNTER_VA))
    .label('after_inc')
    .mov(rbx, qword(READ_VA))
    .label('after_read')
    .inc(rcx)
    .jmp('top');
}

/** A program that halts after two instructions. */
export function haltProgram(): Assembler {
  return new Assembler(64).mov(rcx, 7).label('before_hlt').hlt().label('after_hlt').hlt();
}

/** A program that loads a CR3 pointing at empty tables: the next fetch faults, and with no IDT that is a triple fault. */
export function tripleFaultProgram(): Assembler {
  return new Assembler(64).mov(rax, 0x123000).label('mov_cr3').mov(cr3, rax).label('after').nop().hlt();
}

/** A served machine. */
export interface Served {
  m: Machine;
  code: Assembly;
  session: EmuSession;
  rsp: RspServer;
  qmp: QmpServer;
  /** `127.0.0.1:PORT` of the gdbstub. */
  gdb: string;
  /** The QMP socket path. */
  qmpPath: string;
  dir: string;
  close(): Promise<void>;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  program?: Assembler;
  tripleFault?: TripleFaultAction;
  session?: EmuSessionOptions;
  qmp?: QmpServerOptions;
}

/** Builds a test machine running `program` (default: the loop) and serves it over RSP and QMP. */
export async function serve(o: ServeOptions = {}): Promise<Served> {
  const { m, code } = testMachine({ asm: o.program ?? loopProgram(), tripleFault: o.tripleFault ?? 'shutdown', log: [] });
  const session = new EmuSession(m, o.session);
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-emu-'));
  const qmpPath = join(dir, 'qmp.sock');
  const rsp = await RspServer.listen(session, { port: 0 });
  const qmp = await QmpServer.listen(session, { path: qmpPath }, o.qmp);
  const gdb = rsp.label;
  return {
    m,
    code,
    session,
    rsp,
    qmp,
    gdb,
    qmpPath,
    dir,
    async close() {
      session.quit('host-signal');
      await rsp.close();
      await qmp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `test` every 5 ms until it holds; rejects after `timeoutMs` naming `what`. */
export async function until(test: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A raw RSP connection: bytes in and out, frames decoded, for tests below the client. */
export class RawRsp {
  /** Everything received, as frames (packets as text, `+`, `-`). */
  readonly frames: string[] = [];
  private readonly decoder = new PacketDecoder({ maxPacketSize: 1 << 20 });
  private closedFlag = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      for (const f of this.decoder.feed(d)) this.frames.push(describe(f));
    });
    socket.on('close', () => (this.closedFlag = true));
    socket.on('error', () => undefined);
  }

  /** Connects to `127.0.0.1:PORT`. */
  static async connect(endpoint: string): Promise<RawRsp> {
    const [host, port] = endpoint.split(':');
    const s = await new Promise<Socket>((resolve, reject) => {
      const sock = connect(Number(port), host!);
      sock.once('connect', () => resolve(sock));
      sock.once('error', reject);
    });
    return new RawRsp(s);
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Writes raw bytes (a string is latin1). */
  write(bytes: string | Uint8Array): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Writes `$payload#cs`. */
  send(payload: string): void {
    this.write(encodePacket(payload));
  }

  /** Waits until `n` frames have arrived in all; returns them all. */
  async waitFrames(n: number, timeoutMs = 5000): Promise<string[]> {
    await until(() => this.frames.length >= n, `${n} frames (have ${JSON.stringify(this.frames)})`, timeoutMs);
    return this.frames;
  }

  /** Sends `payload`, acknowledges, and resolves with the next packet (after the server's `+`). */
  async request(payload: string, timeoutMs = 5000): Promise<string> {
    const start = this.frames.length;
    this.send(payload);
    await until(() => this.frames.slice(start).some((f) => f.startsWith('$')), `a reply to ${payload}`, timeoutMs);
    const got = this.frames.slice(start);
    this.write('+');
    return got.find((f) => f.startsWith('$'))!.slice(1);
  }

  /** Closes the socket. */
  close(): void {
    this.socket.destroy();
  }
}

function describe(f: Frame): string {
  switch (f.type) {
    case 'packet':
      return `$${latin1(f.payload)}`;
    case 'ack':
      return '+';
    case 'nack':
      return '-';
    case 'interrupt':
      return '^C';
    case 'notification':
      return `%${latin1(f.payload)}`;
    case 'error':
      return `!${f.code}`;
  }
}

/** A raw QMP connection: lines in and out, exactly as sent. */
export class RawQmp {
  /** Every line received, without its CRLF. */
  readonly lines: string[] = [];
  private buf = '';
  private closedFlag = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl).replace(/\r$/, ''));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    socket.on('close', () => (this.closedFlag = true));
    socket.on('error', () => undefined);
  }

  /** Connects to the unix socket at `path`. */
  static async connect(path: string): Promise<RawQmp> {
    const s = await new Promise<Socket>((resolve, reject) => {
      const sock = connect(path);
      sock.once('connect', () => resolve(sock));
      sock.once('error', reject);
    });
    return new RawQmp(s);
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Writes `text` as it is. */
  write(text: string | Uint8Array): void {
    this.socket.write(text);
  }

  /** Writes `text` and a newline, and resolves with the lines that arrive until `n` more have come. */
  async send(text: string, n = 1, timeoutMs = 5000): Promise<string[]> {
    const start = this.lines.length;
    this.write(`${text}\n`);
    await until(() => this.lines.length >= start + n, `${n} lines after ${text} (have ${JSON.stringify(this.lines.slice(start))})`, timeoutMs);
    return this.lines.slice(start, start + n);
  }

  /** Waits until `n` lines have arrived in all. */
  async waitLines(n: number, timeoutMs = 5000): Promise<string[]> {
    await until(() => this.lines.length >= n, `${n} lines (have ${JSON.stringify(this.lines)})`, timeoutMs);
    return this.lines;
  }

  /** Closes the socket. */
  close(): void {
    this.socket.destroy();
  }
}
