/**
 * `pagewalk proxy --listen HOST:PORT --gdb HOST:PORT`: GDB and pagewalk share one gdbstub. GDB
 * connects to the `--listen` address; other pagewalk commands reach the same QEMU through the
 * control socket, as a gdbstub (`pagewalk map --gdb unix:PATH`), and are served only while the guest
 * is stopped and GDB waits for nothing. It runs until Ctrl-C (SIGINT or SIGTERM: exit 0) or until
 * QEMU goes away (exit 0 when the guest exited, 3 when the connection was lost).
 *
 * The proxy holds QEMU's gdbstub only while GDB or a pagewalk client uses it (see `proxy/proxy.ts`):
 * each GDB that connects meets QEMU as it would directly (connecting stops a running guest), and
 * leaves the guest as it chooses (stopped, or running after `detach`); the next GDB is then served.
 */
import { Command } from 'commander';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ControlSocket } from '../../proxy/controlSocket.js';
import { ProxyError } from '../../proxy/errors.js';
import { GdbProxy, type ProxyStop } from '../../proxy/proxy.js';
import { trafficLine, type TrafficEntry } from '../../proxy/traffic.js';
import { TargetError } from '../../target/target.js';
import type { CliRun } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { Output } from '../output.js';

interface ProxyOptions {
  listen?: string;
  gdb?: string;
  control?: string;
  log?: string;
  verbose?: boolean;
  json?: boolean;
}

/** The proxy's errors as the CLI's: addresses are bad input (2), an unreachable QEMU is exit 3. */
function cliError(e: unknown): unknown {
  if (!(e instanceof ProxyError)) return e;
  if (e.code === 'E_UPSTREAM') return new TargetError('E_OPEN', e.message);
  return new UsageError(e.message);
}

/** What the user is told once the proxy runs. */
function describeStart(out: Output, proxy: GdbProxy, control: ControlSocket): void {
  if (out.json) {
    out.jsonValue({ event: 'listening', gdb: proxy.addressLabel, gdbstub: proxy.gdbstubLabel, control: control.path }, false);
    return;
  }
  out.line(`pagewalk proxy: GDB connects to ${out.c.bold(proxy.addressLabel)}; packets go to ${proxy.gdbstubLabel}`);
  out.line(`  gdb       gdb -ex 'target remote ${proxy.addressLabel}'`);
  out.line(`  pagewalk  pagewalk map --gdb unix:${control.path}    (any command; served while the guest is stopped and GDB waits)`);
  out.line('Ctrl-C stops it.');
}

function describeStop(s: ProxyStop, gdbConnected: boolean): string {
  const run = s.cause === 'gdb' ? ', ending GDB\'s run' : s.cause === 'pagewalk' ? ', ending a run of pagewalk\'s' : '';
  return `the guest stopped (${s.payload})${run}${gdbConnected && !s.toGdb ? ' (GDB was not told)' : ''}`;
}

/** Builds the `proxy` command. */
export function proxyCommand(run: CliRun): Command {
  return new Command('proxy')
    .description('let GDB and pagewalk share one QEMU gdbstub: GDB connects here, pagewalk reads between its commands')
    .option('--listen <host:port>', 'where GDB connects: HOST:PORT (port 0 picks a free one) or a unix socket path')
    .option('--gdb <host:port>', "QEMU's gdbstub (-gdb tcp::1234, or a unix socket path)")
    .option('--control <path>', 'the control socket for other pagewalk commands (default: in a new private temporary directory)')
    .option('--log <file>', 'write every packet both ways, GDB\'s and pagewalk\'s, as JSON lines')
    .option('--verbose', 'say when GDB connects and leaves, and each stop')
    .option('--json', 'print JSON lines: where it listens, then events')
    .action(async (opts: ProxyOptions) => {
      const out = new Output(run.io, opts.json === true);
      if (opts.listen === undefined || opts.gdb === undefined) {
        throw new UsageError('proxy: pass --listen HOST:PORT (where GDB connects, e.g. 127.0.0.1:1235) and --gdb HOST:PORT (QEMU\'s gdbstub, e.g. 127.0.0.1:1234)');
      }
      let proxy: GdbProxy;
      try {
        proxy = await GdbProxy.start({ gdbstub: opts.gdb, listen: opts.listen });
      } catch (e) {
        throw cliError(e);
      }
      let control: ControlSocket;
      try {
        control = await ControlSocket.listen(proxy, opts.control);
      } catch (e) {
        await proxy.close();
        throw cliError(e);
      }
      const log: WriteStream | null = opts.log ? createWriteStream(opts.log, { flags: 'w' }) : null;
      if (log) proxy.on('traffic', (e: TrafficEntry) => void log.write(trafficLine(e) + '\n'));
      const event = (name: string, text: string, extra: Record<string, unknown> = {}): void => {
        if (out.json) out.jsonValue({ event: name, ...extra }, false);
        else if (opts.verbose) out.note(text);
      };
      proxy.on('gdbConnected', (label) => event('gdb-connected', `${label} connected`, { gdb: label }));
      proxy.on('gdbDisconnected', (label, detached) => event('gdb-disconnected', `${label} left${detached ? ' after detaching: the guest runs' : ''}`, { gdb: label, detached }));
      proxy.on('stop', (s) => event('stop', describeStop(s, proxy.gdbConnected), { reply: s.payload, cause: s.cause, toGdb: s.toGdb }));
      proxy.on('problem', (m) => (out.json ? out.jsonValue({ event: 'problem', message: m }, false) : out.warn(m)));
      describeStart(out, proxy, control);
      const onSignal = (): void => void proxy.close();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const reason = await proxy.ended;
        if (reason !== 'closed') {
          if (out.json) out.jsonValue({ event: 'end', reason }, false);
          else out.note(`stopping: ${reason}`);
          if (!reason.startsWith('the guest exited')) run.status = EXIT.TARGET;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await control.close();
        await proxy.close();
        if (log) await new Promise<void>((resolve) => log.end(() => resolve()));
      }
    });
}
