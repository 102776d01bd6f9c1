/**
 * Where the proxy listens for GDB. GDB is served one at a time, as QEMU's gdbstub serves its
 * clients (the listening socket is src/net/singleClient.ts): a second GDB is accepted but hears
 * nothing, and nothing it sends is read, until the first one leaves.
 */
import { ListenError, type BoundAddress } from '../net/singleClient.js';
import { ProxyError } from './errors.js';

/** A TCP address (`port` 0 picks a free one) or a unix socket path. */
export type ListenAddress = BoundAddress;

/**
 * Parses `HOST:PORT`, `:PORT` (127.0.0.1), `[::1]:PORT`, `unix:PATH` or a path with a slash. Port 0
 * picks a free port. Throws ProxyError (E_ADDRESS) on anything else.
 */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  if (t.startsWith('unix:')) {
    if (t.length === 5) throw new ProxyError('E_ADDRESS', `'${text}': unix: needs a socket path`);
    return { path: t.slice(5) };
  }
  const m = /^(\[[^\]]+\]|[^:/\s[\]]*):(\d+)$/.exec(t);
  if (m) {
    const port = Number(m[2]);
    if (port > 65535) throw new ProxyError('E_ADDRESS', `'${text}': the port must be 0..65535`);
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port };
  }
  if (t.includes('/')) return { path: t };
  throw new ProxyError('E_ADDRESS', `'${text}' is not an address to listen on: expected HOST:PORT (e.g. 127.0.0.1:1235, port 0 for any free one) or a unix socket path`);
}

/** Runs `fn`, which listens somewhere; a ListenError is the proxy's E_LISTEN. */
export async function listening<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ListenError) throw new ProxyError('E_LISTEN', e.message, { cause: e.cause ?? e });
    throw e;
  }
}
