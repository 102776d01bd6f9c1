/**
 * Who may connect. A token (`--token`) is sent by the client when it connects, before the
 * WebSocket opens: as the `token` query parameter (`ws://host:port/?token=T`, what a web page can
 * do) or as an `Authorization: Bearer T` header. Browsers also send an `Origin`: a page from an
 * origin not allowed (`--origin`) is refused unless a token is in use, so that no web site the
 * user visits can reach a server on 127.0.0.1.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Why a connection is refused: the HTTP status and a one-line reason. */
export interface Refusal {
  status: 401 | 403;
  reason: string;
}

/** Who is let in. */
export interface AccessPolicy {
  /** The token clients must send, or null for none. */
  token: string | null;
  /** Origins (`http://localhost:5173`) whose pages may connect without a token. */
  origins: readonly string[];
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The token a request carries: the `token` query parameter, else a bearer token; null when none. */
export function tokenOf(req: IncomingMessage): string | null {
  try {
    const q = new URL(req.url ?? '/', 'ws://localhost').searchParams.get('token');
    if (q !== null) return q;
  } catch {
    // an unparsable URL carries no token
  }
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m ? m[1]! : null;
}

/** Null when `req` may connect, else why not. */
export function refusalOf(req: IncomingMessage, policy: AccessPolicy): Refusal | null {
  if (policy.token !== null) {
    const given = tokenOf(req);
    if (given === null) return { status: 401, reason: 'a token is required: connect to ws://HOST:PORT/?token=TOKEN or send Authorization: Bearer TOKEN' };
    if (!timingSafeEqual(digest(given), digest(policy.token))) return { status: 401, reason: 'wrong token' };
    return null;
  }
  const origin = req.headers.origin;
  if (typeof origin === 'string' && !policy.origins.includes(origin)) {
    return { status: 403, reason: `pages from ${origin.slice(0, 100)} may not connect: start the server with --origin ${origin.slice(0, 100)} or --token` };
  }
  return null;
}
