/**
 * Driving the real GDB in tests through its machine interface (`--interpreter=mi3`): commands with
 * tokens matched to their result records, the console output that came with each, asynchronous
 * records such as `*stopped`, and GDB's own log of the remote protocol (`set debug remote 1`),
 * decoded back into the packets GDB sent and received, as GDB saw them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

/** The path of gdb on PATH, or null. */
export function findGdb(): string | null {
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(d, 'gdb');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where GDB is, found once per test file. */
export const GDB_BINARY = findGdb();

/**
 * `describe` for tests that need the real GDB: skipped with a notice on stderr when it is missing,
 * or, with PAGEWALK_REQUIRE_GDB=1, replaced by one failing test that says why.
 */
export function describeGdb(name: string, body: (gdb: string) => void): void {
  if (GDB_BINARY) {
    describe(name, () => body(GDB_BINARY));
    return;
  }
  if (process.env.PAGEWALK_REQUIRE_GDB === '1') {
    describe(name, () => {
      it('needs gdb', () => {
        throw new Error('PAGEWALK_REQUIRE_GDB=1 but gdb is not on PATH: install GDB (Debian: gdb)');
      });
    });
    return;
  }
  console.warn(`[pagewalk] SKIPPED "${name}": gdb is not installed (install GDB to run these tests; PAGEWALK_REQUIRE_GDB=1 makes this an error)`);
  describe.skip(name, () => body('gdb'));
}

/** Undoes GDB's C-string escaping (`\n`, `\"`, `\\`, octal `\ooo`, ...), one layer. */
export function unescapeC(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const n = s[++i]!;
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', e: '\x1b', a: '\x07', '\\': '\\', '"': '"' };
    if (simple[n] !== undefined) out += simple[n];
    else if (/[0-7]/.test(n)) {
      const oct = s.slice(i, i + 3);
      out += String.fromCharCode(parseInt(oct, 8));
      i += oct.length - 1;
    } else out += n;
  }
  return out;
}

/** A packet as GDB's remote log shows it: sent (`Sending packet: $...#cs`) or received (`Packet received: ...`). */
export interface LoggedPacket {
  dir: 'sent' | 'received';
  payload: string;
}

/** Undoes RSP escaping (`}` then the byte XOR 0x20). */
function unescapeRsp(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '}' && i + 1 < body.length) out += String.fromCharCode(body.charCodeAt(++i) ^ 0x20);
    else out += body[i];
  }
  return out;
}

/** The packets in GDB's remote log lines (already MI-unescaped), in order. Lines GDB ignored a packet on are reported by `ignored`. */
export function remotePackets(lines: readonly string[]): { packets: LoggedPacket[]; ignored: number } {
  const packets: LoggedPacket[] = [];
  let ignored = 0;
  for (const line of lines) {
    const sent = /\[remote\] Sending packet: \$(.*)#[0-9a-f]{2}\n?$/s.exec(line);
    if (sent) {
      packets.push({ dir: 'sent', payload: unescapeRsp(unescapeC(sent[1]!)) });
      continue;
    }
    const received = /\[remote\] Packet received: (.*?)\n?$/s.exec(line);
    if (received) {
      packets.push({ dir: 'received', payload: unescapeC(received[1]!) });
      continue;
    }
    if (/Packet instead of Ack, ignoring it/.test(line)) ignored++;
  }
  return { packets, ignored };
}

/** A GDB process driven through MI. */
export class GdbMi {
  /** Every record line GDB printed, in order. */
  readonly lines: string[] = [];
  private buf = '';
  private token = 0;
  private readonly waiters: { test: (line: string) => boolean; from: number; resolve: (line: string) => void }[] = [];
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(gdb: string) {
    this.proc = spawn(gdb, ['--interpreter=mi3', '-nx', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('latin1');
    this.proc.stdout!.on('data', (d: string) => this.onData(d));
    this.proc.stderr!.setEncoding('latin1');
    this.proc.stderr!.on('data', (d: string) => this.onData(d));
    this.exited = new Promise((resolve) => this.proc.once('close', () => resolve()));
  }

  /** Runs an MI command; resolves with its result record (`^done,...`, `^running`, `^connected`) and the console output since it was sent. Rejects on `^error`. */
  async command(cmd: string, timeoutMs = 20_000): Promise<{ result: string; console: string }> {
    const token = ++this.token;
    const from = this.lines.length;
    this.proc.stdin!.write(`${token}${cmd}\n`);
    const result = await this.waitFor((l) => l.startsWith(`${token}^`), timeoutMs, from, `the result of ${cmd}`);
    const console = this.lines
      .slice(from)
      .filter((l) => l.startsWith('~"'))
      .map((l) => unescapeC(l.slice(2, -1)))
      .join('');
    if (result.startsWith(`${token}^error`)) throw new Error(`GDB: ${cmd}: ${result}`);
    return { result: result.slice(String(token).length), console };
  }

  /** A console command (`info registers`, `x/4gx ...`); resolves with its output. */
  async console(cmd: string): Promise<string> {
    return (await this.command(`-interpreter-exec console ${JSON.stringify(cmd)}`)).console;
  }

  /** Resolves with the first record line from position `from` on that passes `test`. */
  waitFor(test: (line: string) => boolean, timeoutMs = 20_000, from = this.lines.length, what = 'a record'): Promise<string> {
    const seen = this.lines.slice(from).find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`GDB did not print ${what} in ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).join('\n')}`)), timeoutMs);
      this.waiters.push({
        test,
        from,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** GDB's log lines (`&"..."`), unescaped. */
  logLines(): string[] {
    return this.lines.filter((l) => l.startsWith('&"')).map((l) => unescapeC(l.slice(2, -1)));
  }

  /** Ends GDB (`-gdb-exit`, then SIGKILL of this process if it lingers). */
  async exit(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.stdin!.write(`${++this.token}-gdb-exit\n`);
    const late = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(late);
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line === '' || line === '(gdb) ') continue;
      this.lines.push(line);
      const at = this.lines.length - 1;
      for (const w of [...this.waiters]) {
        if (at >= w.from && w.test(line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  }
}
