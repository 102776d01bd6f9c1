/**
 * Running real qemu-system-x86_64 in tests: find it, skip with a visible notice when it is missing
 * (or fail, when PAGEWALK_REQUIRE_QEMU=1, as CI sets it), start it with a QMP unix socket in a
 * temporary directory, talk QMP (greeting, qmp_capabilities, execute), and stop only the process
 * it started, removing the directory afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

/** True when CI demands the real-QEMU tests run (a missing QEMU is then a failure). */
export const REQUIRE_QEMU = process.env.PAGEWALK_REQUIRE_QEMU === '1';

/** The path of qemu-system-x86_64 on PATH, or null. */
export function findQemu(): string | null {
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(d, 'qemu-system-x86_64');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where QEMU is, found once per test file. */
export const QEMU_BINARY = findQemu();

/**
 * `describe` for tests that need real QEMU. Without QEMU the suite is skipped with a notice on
 * stderr, or, with PAGEWALK_REQUIRE_QEMU=1, replaced by one failing test that says why.
 */
export function describeQemu(name: string, body: (qemu: string) => void): void {
  if (QEMU_BINARY) {
    describe(name, () => body(QEMU_BINARY));
    return;
  }
  if (REQUIRE_QEMU) {
    describe(name, () => {
      it('needs qemu-system-x86_64', () => {
        throw new Error('PAGEWALK_REQUIRE_QEMU=1 but qemu-system-x86_64 is not on PATH: install QEMU (Debian: qemu-system-x86)');
      });
    });
    return;
  }
  console.warn(
    `[pagewalk] SKIPPED "${name}": qemu-system-x86_64 is not installed (install QEMU to run these tests; PAGEWALK_REQUIRE_QEMU=1 makes this an error)`,
  );
  describe.skip(name, () => body('qemu-system-x86_64'));
}

/** An error QMP answered with. */
export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

/** A QMP event as QEMU sends it. */
export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** A minimal QMP client: one JSON object per line, replies matched to requests by id. */
export class QmpClient {
  /** The greeting QEMU sent (`{QMP: {version, capabilities}}`). */
  greeting: unknown = null;
  /** Every event received so far, in order. */
  readonly events: QmpEvent[] = [];
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters: { name: string; resolve(e: QmpEvent): void }[] = [];
  private greeted: ((g: unknown) => void) | null = null;
  private failed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Connects to a QMP unix socket, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const client = new QmpClient(socket);
    try {
      client.greeting = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no QMP greeting in ${timeoutMs} ms`)), timeoutMs);
        client.greeted = (g) => {
          clearTimeout(timer);
          if (g instanceof Error) reject(g);
          else resolve(g);
        };
      });
      await client.execute('qmp_capabilities');
      return client;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** Runs a command and resolves with its `return` value; rejects with QmpError on `error`. */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<unknown> {
    if (this.failed) return Promise.reject(this.failed);
    const id = `pw-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  /** Resolves with the first event named `name` (already received or still to come). */
  waitForEvent(name: string, timeoutMs = 10_000): Promise<QmpEvent> {
    const seen = this.events.find((e) => e.event === name);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP ${name} event in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        name,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.fail(new Error(`QMP sent a line that is not JSON: ${line.slice(0, 200)}`));
        this.socket.destroy();
        return;
      }
      this.onMessage(message);
    }
  }

  private onMessage(m: Record<string, unknown>): void {
    if ('QMP' in m) {
      this.greeted?.(m);
      this.greeted = null;
      return;
    }
    if (typeof m.event === 'string') {
      const e = m as unknown as QmpEvent;
      this.events.push(e);
      for (const w of this.waiters.filter((x) => x.name === e.event)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
      return;
    }
    const p = typeof m.id === 'string' ? this.pending.get(m.id) : undefined;
    if (!p) return;
    this.pending.delete(m.id as string);
    clearTimeout(p.timer);
    const err = m.error as { class?: string; desc?: string } | undefined;
    if (err) p.reject(new QmpError(err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    else p.resolve(m.return);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.greeted?.(e);
    this.greeted = null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
  }
}

/** A QEMU this helper started. */
export interface QemuProcess {
  readonly pid: number;
  /** The temporary directory (QMP socket, and room for the test's own files). */
  readonly dir: string;
  readonly qmp: QmpClient;
  /** What QEMU printed on stderr so far. */
  stderr(): string;
  /** A path inside the temporary directory. */
  file(name: string): string;
  /** Closes QMP, stops this QEMU (SIGTERM, then SIGKILL after 5 s) and removes the directory. */
  stop(): Promise<void>;
}

/**
 * Starts `qemu` with `args` plus `-qmp unix:DIR/qmp.sock,server=on,wait=off` and connects QMP.
 * `args` may use `{dir}` for the temporary directory (e.g. for `-device loader,file={dir}/x`);
 * `prepare(dir)` runs before QEMU starts, to write files there.
 */
export async function startQemu(
  qemu: string,
  args: readonly string[],
  prepare?: (dir: string) => Promise<void> | void,
  timeoutMs = 15_000,
): Promise<QemuProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-qemu-'));
  const sock = join(dir, 'qmp.sock');
  let proc: ChildProcess | null = null;
  let exited: Promise<unknown> = Promise.resolve();
  let done = false;
  let stderr = '';
  try {
    await prepare?.(dir);
    const argv = [...args.map((a) => a.replaceAll('{dir}', dir)), '-qmp', `unix:${sock},server=on,wait=off`];
    const p = spawn(qemu, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = p;
    exited = new Promise((resolve) => p.once('close', resolve)).then(() => (done = true));
    p.once('error', (e) => (stderr += `cannot start ${qemu}: ${e.message}`));
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (d: string) => (stderr += d));
    const qmp = await connectWhenReady(sock, () => (done ? `QEMU exited before QMP came up: ${stderr.trim()}` : null), timeoutMs);
    return {
      pid: p.pid!,
      dir,
      qmp,
      stderr: () => stderr,
      file: (name) => join(dir, name),
      async stop() {
        qmp.close();
        await stopProcess(p, exited, () => done);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (proc) await stopProcess(proc, exited, () => done);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function connectWhenReady(sock: string, gone: () => string | null, timeoutMs: number): Promise<QmpClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = gone();
    if (why) throw new Error(why);
    try {
      return await QmpClient.connect(sock);
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`QMP socket ${sock} not ready after ${timeoutMs} ms: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Waits until QEMU is in the `shutdown` state (a guest kept after its triple fault, with -action
 * shutdown=pause). Asks `query-status` rather than waiting for the SHUTDOWN event: a guest started
 * without -S can shut down before QMP's capabilities are negotiated, and that event is never sent.
 */
export async function untilShutdown(q: QemuProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = (await q.qmp.execute('query-status')) as { status: string };
    if (status === 'shutdown') return;
    if (Date.now() > deadline) throw new Error(`QEMU is still ${status} after ${timeoutMs} ms, not shut down`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops exactly `proc` (by its own pid): SIGTERM, then SIGKILL if it has not exited in 5 s. */
async function stopProcess(proc: ChildProcess, exited: Promise<unknown>, done: () => boolean): Promise<void> {
  if (done() || proc.pid === undefined) return;
  proc.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
  if ((await Promise.race([exited, timer])) === 'timeout' && !done()) {
    proc.kill('SIGKILL');
    await exited;
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; another process could take
 * it before the caller binds it, so prefer unix sockets where the tool allows them).
 */
export async function freeTcpPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port assigned'))));
    });
  });
}

/** Runs an HMP command through QMP (`human-monitor-command`) and resolves with its text output. */
export async function humanMonitor(qmp: QmpClient, command: string): Promise<string> {
  const out = await qmp.execute('human-monitor-command', { 'command-line': command });
  if (typeof out !== 'string') throw new Error(`HMP ${command}: expected text, got ${JSON.stringify(out)}`);
  return out;
}

/**
 * Resolves with the contents of the file at `path` once they contain `text` (a guest's serial
 * output, say), polling every 20 ms; rejects after `timeoutMs` with what the file held by then.
 */
export async function waitForFileText(path: string, text: string, timeoutMs = 10_000): Promise<string> {
  const { readFileSync } = await import('node:fs');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let content = '';
    try {
      content = readFileSync(path, 'latin1');
    } catch {
      // not created yet
    }
    if (content.includes(text)) return content;
    if (Date.now() > deadline) throw new Error(`${JSON.stringify(text)} did not appear in ${path} within ${timeoutMs} ms (it holds ${JSON.stringify(content.slice(-200))})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
