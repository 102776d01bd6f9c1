/**
 * Where a gdbstub listens (`HOST:PORT`, a unix socket path, or an object saying which) and
 * opening the socket, with errors that say what went wrong in one line.
 */
import { connect, type Socket } from 'node:net';
import { RspError } from './errors.js';
import type { RspTimers } from './timers.js';

/** A gdbstub address: `"127.0.0.1:1234"`, `"unix:/tmp/gdb.sock"`, `"/tmp/gdb.sock"`, or the parsed forms. */
export type RspEndpoint = string | { readonly host: string; readonly port: number } | { readonly path: string };

/** A TCP or a unix-socket endpoint, parsed. */
export type ParsedEndpoint = { readonly host: string; readonly port: number } | { readonly path: string };

/**
 * Parses an endpoint. A string with a `unix:` prefix or a `/` (and no `:PORT` at its end) is a
 * socket path; otherwise `HOST:PORT` (`[::1]:1234` for IPv6). Throws RangeError on anything else.
 */
export function parseEndpoint(endpoint: RspEndpoint): ParsedEndpoint {
  if (typeof endpoint !== 'string') {
    if ('path' in endpoint) return { path: endpoint.path };
    checkPort(endpoint.port, `${endpoint.host}:${endpoint.port}`);
    return { host: endpoint.host, port: endpoint.port };
  }
  if (endpoint.startsWith('unix:')) return { path: endpoint.slice(5) };
  const m = /^(\[[^\]]+\]|[^:/\s]*):(\d+)$/.exec(endpoint);
  if (m) {
    const port = Number(m[2]);
    checkPort(port, endpoint);
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    return { host, port };
  }
  if (endpoint.includes('/')) return { path: endpoint };
  throw new RangeError(`'${endpoint}' is not a gdbstub address: expected HOST:PORT (e.g. 127.0.0.1:1234) or a unix socket path`);
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`'${what}': the port must be 1..65535`);
}

/** An endpoint as the user would write it. */
export function endpointLabel(e: ParsedEndpoint): string {
  return 'path' in e ? e.path : e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function socketProblem(e: NodeJS.ErrnoException, where: ParsedEndpoint): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is QEMU running with -gdb on that address?)';
    case 'ENOENT':
      return 'no such socket';
    case 'EACCES':
      return 'permission denied';
    case 'ENOTFOUND':
      return `unknown host ${'host' in where ? where.host : ''}`.trim();
    default:
      return e.message;
  }
}

/**
 * Opens a socket to `endpoint`. Rejects with E_CLOSED when the connection is refused or fails,
 * and with E_TIMEOUT when it is not made in `timeoutMs`.
 */
export function openSocket(endpoint: ParsedEndpoint, timeoutMs: number, timers: RspTimers): Promise<Socket> {
  const label = endpointLabel(endpoint);
  return new Promise((resolve, reject) => {
    const socket = 'path' in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    const timer = timers.setTimeout(() => {
      socket.destroy();
      reject(new RspError('E_TIMEOUT', `cannot connect to ${label}: no connection in ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: NodeJS.ErrnoException): void => {
      timers.clearTimeout(timer);
      reject(new RspError('E_CLOSED', `cannot connect to ${label}: ${socketProblem(e, endpoint)}`, null, { cause: e }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      timers.clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
