/**
 * `pagewalk launch -- qemu-system-x86_64 ARGS...`: starts QEMU ready for debugging (a gdbstub, QMP
 * sockets of pagewalk's own, post-mortem actions and the exception log added where the user gave
 * none; see `launch/plan.ts`) and shows its console: QEMU's terminal goes to stdout, pagewalk's
 * notes (where the gdbstub, QMP and the log are) to stderr. Typing goes to QEMU's terminal (the
 * serial console; Ctrl-A c reaches QEMU's monitor). It runs until QEMU exits, or until Ctrl-C,
 * SIGINT, SIGTERM or SIGHUP, which quit QEMU cleanly (QMP `quit`, its PID killed if that fails)
 * and remove launch's files.
 *
 * The gdbstub is left free for GDB and for pagewalk's other commands (QEMU serves one gdbstub
 * client at a time); the TUI attaches through `launchQemu` instead.
 */
import { Command } from 'commander';
import { StringDecoder } from 'node:string_decoder';
import { LaunchError } from '../../launch/errors.js';
import { launchQemu, type LaunchedQemu, type QemuExit } from '../../launch/launch.js';
import type { QmpEvent } from '../../qmp/client.js';
import { TargetError } from '../../target/target.js';
import type { CliRun } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { Output } from '../output.js';
import { launchTui } from './tui.js';

interface LaunchCliOptions {
  log?: string;
  tui?: boolean;
  json?: boolean;
}

/** Ctrl-C as typed in a raw terminal. */
const CTRL_C = 0x03;

function cliError(e: unknown): unknown {
  if (!(e instanceof LaunchError)) return e;
  return e.code === 'E_ARGS' ? new UsageError(e.message) : new TargetError('E_OPEN', e.message);
}

/** How GDB is told to connect to `endpoint` (`unix:PATH` or `HOST:PORT`). */
function gdbTarget(endpoint: string): string {
  return endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint;
}

function describe(out: Output, q: LaunchedQemu): void {
  const p = q.plan;
  const pagewalk = `pagewalk map --gdb ${p.gdb} --qmp ${p.qmp}`;
  if (out.json) {
    out.io.stderr.write(JSON.stringify({ event: 'launched', pid: q.pid, gdb: p.gdb, qmp: p.qmp, log: p.log, added: p.added, notes: p.notes }) + '\n');
    return;
  }
  const lines = [
    `pagewalk launch: QEMU is running (pid ${q.pid})`,
    `  gdb       gdb -ex 'target remote ${gdbTarget(p.gdb)}'`,
    `  pagewalk  ${pagewalk}`,
    p.log ? `  log       ${p.log}    (pagewalk explain-log ${p.log})` : null,
    `  added     ${p.added.join(' ')}`,
    ...p.notes.map((n) => `note: ${n}`),
    'Ctrl-C quits QEMU.',
  ];
  for (const l of lines) if (l !== null) out.io.stderr.write(l + '\n');
}

/** A note about a QMP event the user should know of, or null. */
function eventNote(e: QmpEvent, q: LaunchedQemu): string | null {
  if (e.event !== 'SHUTDOWN' || e.data.guest !== true) return null;
  const look = `look with pagewalk check --gdb ${q.plan.gdb} --qmp ${q.plan.qmp}${q.plan.log ? `, pagewalk explain-log ${q.plan.log}` : ''}`;
  if (e.data.reason === 'guest-reset') return `the guest reset itself (a triple fault?); QEMU keeps it stopped as it was: ${look}`;
  return `the guest shut down (${String(e.data.reason)}); QEMU keeps it paused`;
}

/** Builds the `launch` command. */
export function launchCommand(run: CliRun): Command {
  return new Command('launch')
    .description('start QEMU ready for debugging (gdbstub, QMP, post-mortem actions, exception log) and show its console')
    .argument('<qemu...>', 'the QEMU command line, after --: -- qemu-system-x86_64 ARGS...')
    .option('--log <file>', "where QEMU's -d log goes when pagewalk adds it (default: a temporary file, removed on exit)")
    .option('--json', 'print pagewalk\'s notes as JSON lines (on stderr: stdout is QEMU\'s console)')
    .option('--tui', "attach and show the terminal UI, QEMU's console in its serial pane (quitting shuts QEMU down)")
    .action(async (argv: string[], opts: LaunchCliOptions) => {
      if (opts.tui) return launchTui(run, argv, opts);
      const out = new Output(run.io, opts.json === true);
      const stdout = run.io.stdout as { columns?: number; rows?: number; on?: (e: 'resize', f: () => void) => void; off?: (e: 'resize', f: () => void) => void };
      let q: LaunchedQemu;
      try {
        q = await launchQemu(argv, { attach: false, log: opts.log, cols: stdout.columns, rows: stdout.rows });
      } catch (e) {
        throw cliError(e);
      }
      const decoder = new StringDecoder('utf8');
      q.console.on('data', (d: Buffer) => void run.io.stdout.write(decoder.write(d)));
      describe(out, q);
      const note = (event: string, text: string, extra: Record<string, unknown> = {}): void => {
        if (out.json) run.io.stderr.write(JSON.stringify({ event, message: text, ...extra }) + '\n');
        else out.note(text);
      };
      q.on('qmp', (e) => {
        const text = eventNote(e, q);
        if (text) note(e.data.reason === 'guest-reset' ? 'guest-reset' : 'guest-shutdown', text);
      });

      // Typing goes to QEMU's terminal; in a raw terminal Ctrl-C is ours.
      const stdin = process.stdin;
      const raw = run.io.stdin === undefined && stdin.isTTY === true;
      let quitting = false;
      const quit = (): void => {
        if (quitting) return;
        quitting = true;
        void q.shutdown();
      };
      const onKeys = (d: Buffer): void => {
        const i = d.indexOf(CTRL_C);
        if (i >= 0) {
          if (i > 0) q.write(d.subarray(0, i));
          quit();
        } else q.write(d);
      };
      if (raw) {
        stdin.setRawMode(true);
        stdin.on('data', onKeys);
        stdin.resume();
      } else if (run.io.stdin) {
        void (async () => {
          for await (const chunk of run.io.stdin!) q.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
        })().catch(() => undefined);
      }
      const onResize = (): void => q.resize(stdout.columns ?? 80, stdout.rows ?? 24);
      stdout.on?.('resize', onResize);
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      for (const s of signals) process.once(s, quit);
      let exit: QemuExit;
      try {
        exit = await q.exited;
        await q.shutdown();
      } finally {
        for (const s of signals) process.off(s, quit);
        stdout.off?.('resize', onResize);
        if (raw) {
          stdin.off('data', onKeys);
          stdin.setRawMode(false);
          stdin.pause();
        }
        const rest = decoder.end();
        if (rest) run.io.stdout.write(rest);
      }
      const how = exit.code !== null ? `status ${exit.code}` : `signal ${exit.signal}`;
      if (quitting) note('exit', `QEMU has quit (${how})`, { code: exit.code, signal: exit.signal });
      else note('exit', `QEMU exited (${how})`, { code: exit.code, signal: exit.signal });
      if (!quitting && exit.code !== 0) run.status = EXIT.TARGET;
    });
}
