/**
 * Starting QEMU for debugging: in a pseudo-terminal (node-pty), so its console behaves as in the
 * user's own terminal, with the options of {@link planLaunch} added; then attached through its
 * gdbstub and pagewalk's own QMP socket (a {@link LaunchTarget}), and resumed through that target's
 * controls. {@link launchQemu} is the hand-off to the TUI: the target and the run it started, the
 * console stream, the log, and `shutdown()`.
 *
 * Shutting down asks QEMU to `quit` over launch's own QMP socket, waits for it to exit, falls back
 * to SIGTERM and then SIGKILL of its PID (and of nothing else), and removes launch's private
 * directory (sockets, and the log unless the user chose where it goes).
 */
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { spawn as spawnPty, type IPty } from 'node-pty';
import type { QmpClient, QmpEvent } from '../qmp/client.js';
import type { Stop } from '../target/debuggee.js';
import { connectQmp } from '../target/qmpTarget.js';
import { LaunchError } from './errors.js';
import { LaunchTarget } from './launchTarget.js';
import { planLaunch, type LaunchPlan } from './plan.js';

/** Options of {@link launchQemu}. */
export interface LaunchOptions {
  /** Attach a LiveTarget over the gdbstub and pagewalk's QMP socket (default true). Without it the gdbstub stays free for GDB. */
  attach?: boolean;
  /** Where QEMU's `-d` log goes when pagewalk adds `-D` (default: the private directory, removed on shutdown). */
  log?: string;
  /** The terminal size QEMU sees (default 80x24). */
  cols?: number;
  rows?: number;
  /** QEMU's environment (default: this process's). */
  env?: Record<string, string | undefined>;
  /** QEMU's working directory (default: this process's). */
  cwd?: string;
  /** How long QEMU may take to open its sockets (default 15 s). */
  startMs?: number;
}

/** How QEMU ended. */
export interface QemuExit {
  /** Its exit status, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: number | null;
}

/** Events of a {@link LaunchedQemu}. */
export interface LaunchedQemuEvents {
  /** A QMP event on launch's own socket (STOP, RESUME, SHUTDOWN, RESET, ...). */
  qmp: [event: QmpEvent];
  /** QEMU exited. */
  exit: [exit: QemuExit];
}

/** A QEMU started by {@link launchQemu}. */
export interface LaunchedQemu extends EventEmitter<LaunchedQemuEvents> {
  /** QEMU's process id. */
  readonly pid: number;
  /** The command line run and where everything is. */
  readonly plan: LaunchPlan;
  /**
   * The attached target (null with `attach: false`). While `target.control.running` the guest runs
   * and reads are refused: `control.interrupt()` first (the run then ends, see {@link run}).
   */
  readonly target: LaunchTarget | null;
  /** The run launch started once attached (`control.cont()`): resolves with the stop that ends it. Null when not attached, or when the user's `-S` keeps the guest frozen. */
  readonly run: Promise<Stop> | null;
  /** What QEMU writes to its terminal: the serial console (when on stdio) and QEMU's own messages, as bytes. Ends when QEMU exits. */
  readonly console: Readable;
  /** QEMU's `-d` log file, or null when it logs to its console. */
  readonly logPath: string | null;
  /** Resolves when QEMU has exited. */
  readonly exited: Promise<QemuExit>;
  /** Types into QEMU's terminal (the serial console's input, Ctrl-A for QEMU's monitor). */
  write(data: string | Uint8Array): void;
  /** Tells QEMU its terminal changed size. */
  resize(cols: number, rows: number): void;
  /** Quits QEMU (QMP `quit`, then SIGTERM and SIGKILL of its PID), closes the target and removes launch's files. Safe to call twice. */
  shutdown(): Promise<QemuExit>;
}

/** The path of `program`: as given when it has a slash, else found on PATH. Throws LaunchError (E_START). */
export function findProgram(program: string, env: Record<string, string | undefined> = process.env): string {
  const candidates = program.includes('/') ? [program] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, program));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new LaunchError('E_START', program.includes('/') ? `${program}: no such program (or not executable)` : `${program} is not on PATH (install QEMU: Debian's qemu-system-x86)`);
}

const QUIT_MS = 5000;
const TERM_MS = 5000;

class Launched extends EventEmitter<LaunchedQemuEvents> implements LaunchedQemu {
  readonly console = new PassThrough();
  readonly exited: Promise<QemuExit>;
  target: LaunchTarget | null = null;
  run: Promise<Stop> | null = null;
  control: QmpClient | null = null;
  private done = false;
  private ending: Promise<QemuExit> | null = null;
  /** The last bytes QEMU wrote, for error messages. */
  private tail = '';

  constructor(
    private readonly pty: IPty,
    readonly plan: LaunchPlan,
    private readonly dir: string,
  ) {
    super();
    pty.onData((d: string | Buffer) => {
      const bytes = typeof d === 'string' ? Buffer.from(d, 'utf8') : d;
      this.tail = (this.tail + bytes.toString('latin1')).slice(-2000);
      this.console.write(bytes);
    });
    this.exited = new Promise((resolve) =>
      pty.onExit(({ exitCode, signal }) => {
        this.done = true;
        const exit: QemuExit = signal ? { code: null, signal } : { code: exitCode, signal: null };
        this.console.end();
        this.emit('exit', exit);
        resolve(exit);
      }),
    );
  }

  get pid(): number {
    return this.pty.pid;
  }

  get logPath(): string | null {
    return this.plan.log;
  }

  get hasExited(): boolean {
    return this.done;
  }

  /** What QEMU said last, on one line. */
  lastWords(): string {
    return this.tail.replace(/\r/g, '').split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' / ');
  }

  write(data: string | Uint8Array): void {
    if (!this.done) this.pty.write(typeof data === 'string' ? data : Buffer.from(data));
  }

  resize(cols: number, rows: number): void {
    if (!this.done) this.pty.resize(cols, rows);
  }

  shutdown(): Promise<QemuExit> {
    this.ending ??= this.end();
    return this.ending;
  }

  private async end(): Promise<QemuExit> {
    if (!this.done && this.control && !this.control.closed) {
      await Promise.race([this.control.execute('quit').catch(() => undefined), sleep(QUIT_MS)]);
      await Promise.race([this.exited, sleep(QUIT_MS)]);
    }
    if (!this.done) {
      this.pty.kill('SIGTERM');
      if ((await Promise.race([this.exited, sleep(TERM_MS).then(() => 'late' as const)])) === 'late' && !this.done) this.pty.kill('SIGKILL');
    }
    const exit = await this.exited;
    await this.target?.close().catch(() => undefined);
    await this.control?.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
    return exit;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Connects to QMP at `path` once QEMU has created it; rejects when QEMU exits first or `ms` pass. */
async function qmpWhenReady(q: Launched, path: string, ms: number): Promise<QmpClient> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (q.hasExited) throw new LaunchError('E_START', `QEMU exited before it was ready: ${q.lastWords() || 'it said nothing'}`);
    try {
      return await connectQmp(path, { connectMs: 1000 });
    } catch (e) {
      if (Date.now() > deadline) throw new LaunchError('E_START', `QEMU did not open its QMP socket ${path} in ${ms} ms: ${q.lastWords() || (e as Error).message}`);
      await sleep(25);
    }
  }
}

/**
 * Starts `argv` (QEMU's program and its arguments) in a pseudo-terminal with pagewalk's options
 * added (see {@link planLaunch}), connects launch's QMP, and (unless `attach: false`) attaches a
 * LiveTarget and lets the guest run. Throws LaunchError: E_ARGS (a command line that cannot be
 * used), E_START (QEMU missing, or exiting or hanging before it is ready); and TargetError when
 * attaching fails. QEMU is shut down again on any failure.
 */
export async function launchQemu(argv: readonly string[], options: LaunchOptions = {}): Promise<LaunchedQemu> {
  const [program, ...args] = argv;
  if (program === undefined) throw new LaunchError('E_ARGS', 'no QEMU command line: pass it after --, e.g. -- qemu-system-x86_64 -kernel kernel.elf');
  const env = options.env ?? process.env;
  const binary = findProgram(program, env);
  const attach = options.attach !== false;
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-launch-'));
  let plan: LaunchPlan;
  let pty: IPty;
  try {
    plan = planLaunch(args, { dir, log: options.log, attach });
    pty = spawnPty(binary, [...plan.args], {
      name: 'xterm-256color',
      cols: options.cols ?? 80,
      rows: options.rows ?? 24,
      cwd: options.cwd ?? process.cwd(),
      env: { ...env },
      encoding: null,
    } as Parameters<typeof spawnPty>[2]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const q = new Launched(pty, plan, dir);
  try {
    const startMs = options.startMs ?? 15_000;
    q.control = await qmpWhenReady(q, plan.control, startMs);
    q.control.on('event', (e) => q.emit('qmp', e));
    if (attach) {
      const target = await LaunchTarget.attach(plan.gdb, plan.qmp);
      q.target = target;
      if (plan.stopAdded) {
        const run = target.control.cont();
        // A run that ends because QEMU is gone is no one's error.
        run.catch(() => undefined);
        q.run = run;
      }
    }
    return q;
  } catch (e) {
    await q.shutdown();
    throw e;
  }
}
