/**
 * Just enough of QEMU for the map benchmark: start a stopped guest with the tables loaded, set the
 * paging registers through the gdbstub (a few RSP packets), and time HMP commands through QMP.
 * Only 127.0.0.1 and unix sockets are used; only the QEMU started here is ever killed, by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';

/** Error raised when QEMU or one of its protocols does not behave; `code` is stable. */
export class BenchQemuError extends Error {
  constructor(
    readonly code: 'E_QEMU_START' | 'E_QEMU_TIMEOUT' | 'E_QEMU_PROTOCOL',
    message: string,
  ) {
    super(message);
    this.name = 'BenchQemuError';
  }
}

/** Resolves after `ms` milliseconds. */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Connects to `target` (a port on 127.0.0.1 or a unix path), retrying while QEMU starts up. */
async function connectRetry(target: number | string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target);
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw new BenchQemuError('E_QEMU_TIMEOUT', `cannot connect to ${target}: ${(err as Error).message}`);
      await sleep(20);
    }
  }
}

/** Lines of a byte stream, without copying the stream over and over (a reply can be tens of MB). */
class LineReader {
  private chunks: Buffer[] = [];
  private lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;

  constructor(sock: Socket) {
    sock.on('data', (d: Buffer) => this.push(d));
    const end = (err?: Error): void => {
      this.closed = err ?? new BenchQemuError('E_QEMU_PROTOCOL', 'connection closed');
      this.wake();
    };
    sock.on('close', () => end());
    sock.on('error', (e) => end(e));
  }

  private push(d: Buffer): void {
    let start = 0;
    for (let nl = d.indexOf(10); nl >= 0; nl = d.indexOf(10, start)) {
      this.chunks.push(d.subarray(start, nl));
      this.lines.push(Buffer.concat(this.chunks).toString('utf8'));
      this.chunks = [];
      start = nl + 1;
    }
    if (start < d.length) this.chunks.push(d.subarray(start));
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next complete line. */
  async next(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchQemuError('E_QEMU_TIMEOUT', 'no reply from QMP');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.lines.shift()!;
  }
}

/**
 * True when a QMP line is the reply with `id`. QEMU writes the keys of a reply in hash order, so
 * the id is either first or last; a long reply (tens of MB of HMP text) is recognised by its two
 * ends without parsing it. Text inside a JSON string cannot fake `"id": N` (its quotes are escaped).
 */
function isReplyTo(line: string, id: number): boolean {
  const tag = new RegExp(`"id": ?${id}[,}]`);
  return tag.test(line.slice(0, 48)) || tag.test(line.slice(-48));
}

/** A QMP session: greeting, capabilities, then commands matched to replies by id (events skipped). */
export class Qmp {
  private nextId = 1;

  private constructor(
    private readonly sock: Socket,
    private readonly lines: LineReader,
  ) {}

  /** Connects to QMP at the unix socket `path` and negotiates capabilities. */
  static async open(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(path)) {
      if (Date.now() > deadline) throw new BenchQemuError('E_QEMU_TIMEOUT', `QMP socket ${path} never appeared`);
      await sleep(20);
    }
    const sock = await connectRetry(path, timeoutMs);
    const q = new Qmp(sock, new LineReader(sock));
    const greeting = JSON.parse(await q.lines.next(timeoutMs)) as { QMP?: unknown };
    if (!greeting.QMP) throw new BenchQemuError('E_QEMU_PROTOCOL', 'QMP greeting expected');
    await q.execute('qmp_capabilities');
    return q;
  }

  /** Runs a QMP command; returns the raw reply line (not parsed: a reply can be tens of MB). */
  async executeRaw(command: string, args?: Record<string, unknown>, timeoutMs = 120_000): Promise<string> {
    const id = this.nextId++;
    this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    for (;;) {
      const line = await this.lines.next(timeoutMs);
      if (isReplyTo(line, id)) return line;
    }
  }

  /** Runs a QMP command and returns its `return` value; throws on a QMP error. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = JSON.parse(await this.executeRaw(command, args)) as { return?: unknown; error?: { desc: string } };
    if (reply.error) throw new BenchQemuError('E_QEMU_PROTOCOL', `${command}: ${reply.error.desc}`);
    return reply.return;
  }

  /** Runs an HMP command through `human-monitor-command`; returns its text. */
  async hmp(commandLine: string): Promise<string> {
    return (await this.execute('human-monitor-command', { 'command-line': commandLine })) as string;
  }

  /** Closes the connection. */
  close(): void {
    this.sock.destroy();
  }
}

/** The RSP checksum of a packet's data: the byte sum modulo 256, two hex digits. */
export function rspChecksum(data: string): string {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data.charCodeAt(i)) & 0xff;
  return sum.toString(16).padStart(2, '0');
}

/** A 64-bit register value as a `P` packet wants it: 16 hex digits, little-endian. */
export function rspRegisterValue(v: bigint): string {
  let out = '';
  for (let i = 0; i < 8; i++) out += Number((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, '0');
  return out;
}

/**
 * A minimal GDB RSP link: one packet at a time, `$data#xx` framing, `+` acks sent for every reply
 * and QEMU's own acks skipped. Unsolicited stop replies are skipped by the caller's `accept`.
 */
export class Rsp {
  private buf = '';
  private waiter: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }

  /** Connects to the gdbstub on 127.0.0.1:`port`. */
  static async open(port: number, timeoutMs = 10_000): Promise<Rsp> {
    return new Rsp(await connectRetry(port, timeoutMs));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next packet's data, acking it. */
  private async packet(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const start = this.buf.indexOf('$');
      const hash = start >= 0 ? this.buf.indexOf('#', start) : -1;
      if (hash >= 0 && this.buf.length >= hash + 3) {
        const data = this.buf.slice(start + 1, hash);
        const sum = this.buf.slice(hash + 1, hash + 3);
        this.buf = this.buf.slice(hash + 3);
        this.sock.write('+');
        if (sum.toLowerCase() !== rspChecksum(data)) throw new BenchQemuError('E_QEMU_PROTOCOL', `bad RSP checksum on ${data.slice(0, 40)}`);
        return data;
      }
      if (this.closed) throw new BenchQemuError('E_QEMU_PROTOCOL', 'gdbstub closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchQemuError('E_QEMU_TIMEOUT', 'no reply from the gdbstub');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Sends one packet and returns the first reply `accept` takes (stop replies in between are skipped). */
  async request(data: string, accept: (reply: string) => boolean, timeoutMs = 10_000): Promise<string> {
    this.sock.write(`$${data}#${rspChecksum(data)}`);
    for (;;) {
      const reply = await this.packet(timeoutMs);
      if (accept(reply)) return reply;
    }
  }

  /** Writes a 64-bit register (`P`); target.xml must have been read on this link. */
  async writeRegister(regnum: number, value: bigint): Promise<void> {
    const reply = await this.request(`P${regnum.toString(16)}=${rspRegisterValue(value)}`, (r) => r === 'OK' || /^E[0-9a-f]{2}$/i.test(r));
    if (reply !== 'OK') throw new BenchQemuError('E_QEMU_PROTOCOL', `P${regnum.toString(16)} answered ${reply}`);
  }

  /** Reads a 64-bit register (`p`). */
  async readRegister(regnum: number): Promise<bigint> {
    const reply = await this.request(`p${regnum.toString(16)}`, (r) => /^[0-9a-f]{16}$/i.test(r) || /^E[0-9a-f]{2}$/i.test(r));
    if (reply.startsWith('E')) throw new BenchQemuError('E_QEMU_PROTOCOL', `p${regnum.toString(16)} answered ${reply}`);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(parseInt(reply.slice(2 * i, 2 * i + 2), 16));
    return v;
  }

  /** Reads target.xml, which QEMU requires before it answers `p`/`P` on a connection. */
  async readTargetXml(): Promise<void> {
    const reply = await this.request('qXfer:features:read:target.xml:0,ffb', (r) => r.startsWith('l') || r.startsWith('m') || /^E/.test(r));
    if (!reply.startsWith('l') && !reply.startsWith('m')) throw new BenchQemuError('E_QEMU_PROTOCOL', `target.xml: ${reply}`);
  }

  /** Closes the connection (the guest stays stopped). */
  close(): void {
    this.sock.destroy();
  }
}

/** Register numbers of QEMU's x86-64 target description (QEMU-FACTS.md §2.2). */
export const REG = { cr0: 0x1b, cr3: 0x1d, cr4: 0x1e, efer: 0x20 } as const;

/** A QEMU process this benchmark started. */
export class QemuProcess {
  private exited = false;

  private constructor(readonly child: ChildProcess) {
    child.once('exit', () => (this.exited = true));
  }

  /** Starts `binary` with `args`, stopped (-S); stderr is kept for error messages. */
  static start(binary: string, args: readonly string[]): QemuProcess {
    const child = spawn(binary, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const q = new QemuProcess(child);
    child.once('error', (e) => {
      q.exited = true;
      q.startError = `${binary}: ${e.message}`;
    });
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) q.startError = `${binary} exited with ${code}: ${err.trim()}`;
    });
    return q;
  }

  /** Why QEMU failed to start, when it did. */
  startError: string | null = null;

  /** Stops the process by its PID: SIGTERM, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const pid = this.child.pid;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    process.kill(pid, 'SIGTERM');
    const t = await Promise.race([gone.then(() => 'gone'), sleep(3000).then(() => 'late')]);
    if (t === 'late' && !this.exited) {
      process.kill(pid, 'SIGKILL');
      await gone;
    }
  }

  /** Kills the process synchronously (for exit handlers). */
  killNow(): void {
    if (!this.exited && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}
