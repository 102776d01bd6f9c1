/**
 * `pagewalk serve --ws HOST:PORT`: the WebSocket JSON-RPC API on one target, shared by every
 * client. Listens on 127.0.0.1 unless told otherwise; any other address needs `--token` (exit 2
 * without). Memory and register writes are refused unless `--allow-write`. Prints where it listens,
 * then runs until SIGINT/SIGTERM (exit 0) or until the target is lost (exit 3, after telling the
 * clients with a `targetLost` notification).
 */
import { Command } from 'commander';
import { ApiError } from '../../api/errors.js';
import { PagewalkSession } from '../../api/session.js';
import { isLoopback, parseListenAddress } from '../../serve/address.js';
import { ServeError } from '../../serve/errors.js';
import { WsApiServer } from '../../serve/server.js';
import { loadElfSymbols } from '../../target/elfSymbols.js';
import { TargetError } from '../../target/target.js';
import { withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { Output } from '../output.js';
import { openTarget, type TargetOptions } from '../session.js';

interface ServeCliOptions extends CommonOptions {
  ws?: string;
  token?: string;
  allowWrite?: boolean;
  origin?: string[];
}

/** The environment variable that may carry the token instead of `--token` (which `ps` shows). */
export const TOKEN_ENV = 'PAGEWALK_TOKEN';

/** The start-up errors of the server as the CLI's: addresses and tokens are bad input (exit 2). */
function cliError(e: unknown): unknown {
  if (e instanceof ServeError) return new UsageError(e.message);
  if (e instanceof ApiError) {
    if (e.code === 'E_BAD_INPUT') return new UsageError(e.message);
    return new TargetError(e.code === 'E_FORMAT' ? 'E_FORMAT' : e.code === 'E_LOST' ? 'E_LOST' : 'E_OPEN', e.message);
  }
  return e;
}

/** The options that say how to read the target (the ones that name it are openTarget's). */
function overrides(o: ServeCliOptions): TargetOptions {
  const rest: ServeCliOptions = { ...o };
  for (const k of ['ws', 'token', 'allowWrite', 'origin', 'json', 'gdb', 'qmp', 'memPath', 'dump', 'emu', 'example'] as const) delete rest[k];
  return rest;
}

/** Builds the `serve` command. */
export function serveCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('serve')
      .description('serve the WebSocket JSON-RPC API on a target: methods mirroring the CLI, notifications on stops and CR3 writes')
      .option('--ws <host:port>', 'where to listen: HOST:PORT (default host 127.0.0.1; port 0 picks a free one)')
      .option('--token <token>', `the token clients send when they connect (?token= or Authorization: Bearer); required off loopback (or set ${TOKEN_ENV})`)
      .option('--allow-write', 'allow the methods that write guest memory and registers (refused otherwise)')
      .option('--origin <url...>', 'web page origins (e.g. http://localhost:5173) allowed to connect without a token'),
  ).action(async (opts: ServeCliOptions) => {
    const out = new Output(run.io, opts.json === true);
    if (opts.ws === undefined) throw new UsageError('serve: pass --ws HOST:PORT, e.g. --ws 127.0.0.1:8765 (port 0 picks a free one)');
    let address;
    try {
      address = parseListenAddress(opts.ws);
    } catch (e) {
      throw cliError(e);
    }
    const token = opts.token ?? run.io.env[TOKEN_ENV];
    // Refuse an open address before touching the target.
    if (!token && !isLoopback(address.host)) {
      throw new UsageError(`--ws ${address.host}: other machines can reach this address, and whoever connects can read and drive the guest: pass --token TOKEN (or set ${TOKEN_ENV}), or listen on 127.0.0.1`);
    }
    const symbols = opts.elf ? await loadElfSymbols(opts.elf) : null;
    const target = await openTarget(opts);
    const session = new PagewalkSession(target, overrides(opts), symbols ?? target.symbols ?? null);
    let server: WsApiServer;
    try {
      const regs = await session.regs();
      for (const n of regs.notes) out.note(n);
      server = await WsApiServer.listen(session, { host: address.host, port: address.port, token, allowWrite: opts.allowWrite === true, origins: opts.origin ?? [] });
    } catch (e) {
      await session.close();
      throw cliError(e);
    }
    if (out.json) {
      out.jsonValue({ event: 'listening', url: server.url, target: session.info.description, debuggable: session.debuggable, allowWrite: opts.allowWrite === true }, false);
    } else {
      out.line(`pagewalk serve: ${out.c.bold(server.url)}  (JSON-RPC 2.0 over WebSocket; ${session.info.description})`);
      if (token) out.line('  clients connect with ?token=TOKEN or Authorization: Bearer TOKEN');
      if (!session.debuggable) out.line(out.c.dim('  this target cannot be driven: step, cont, interrupt and breakpoints answer E_UNSUPPORTED'));
      out.line(out.c.dim('  Ctrl-C stops it.'));
    }
    let onSignal = (): void => undefined;
    const why = await new Promise<'signal' | 'lost'>((resolve) => {
      onSignal = () => resolve('signal');
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      server.once('targetLost', () => resolve('lost'));
    });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (why === 'lost') {
      out.warn('the target is gone: stopping');
      run.status = EXIT.TARGET;
    }
    await server.close();
    await session.close().catch(() => undefined);
  });
}
