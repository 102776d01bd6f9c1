/**
 * `--ws HOST:PORT`: where the server listens, and whether that is only this machine.
 */
import { isIP } from 'node:net';
import { ServeError } from './errors.js';

/** A TCP address to listen on. */
export interface ListenAddress {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

/** The default host: this machine only. */
export const DEFAULT_HOST = '127.0.0.1';

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, or a bare `PORT` (on 127.0.0.1). Throws ServeError E_ADDRESS
 * with what would be right.
 */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(t) ?? (/^(\d{1,5})$/.exec(t) ? [t, undefined, DEFAULT_HOST, t] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ServeError('E_ADDRESS', `--ws: expected HOST:PORT such as 127.0.0.1:8765 (port 0 picks a free one), got '${text}'`);
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? DEFAULT_HOST : m[2]);
  if (m[1] !== undefined && isIP(host) !== 6) throw new ServeError('E_ADDRESS', `--ws: '${host}' is not an IPv6 address`);
  return { host, port };
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}
