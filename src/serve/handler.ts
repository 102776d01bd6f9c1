/**
 * The JSON-RPC handler: a received text in, the answer text out (null when nothing is to be
 * answered: notifications). It never throws on what a client sends: malformed JSON, wrong types,
 * unknown methods, huge messages and failing methods all become JSON-RPC errors, each carrying
 * pagewalk's stable code in `error.data.code`.
 */
import { ApiError, toApiError } from '../api/errors.js';
import type { PagewalkSession } from '../api/session.js';
import { ServeError } from './errors.js';
import { METHODS, type Method } from './methods.js';
import { checkParams, ParamsError } from './params.js';
import type { RpcPeer } from './peer.js';
import { RPC_ERROR, errorResponse, parseMessage, resultResponse, type RpcEntry, type RpcErrorObject, type RpcLimits, type RpcResponse } from './rpc.js';

/** The handler's limits. */
export interface HandlerLimits extends RpcLimits {
  /** Requests one client may have in flight; more are answered E_BUSY at once. */
  maxInFlight: number;
  /** Most items a non-streamed map or diff answers with. */
  maxItems: number;
}

/** Limits that suit an editor or a web page on the same machine. */
export const DEFAULT_HANDLER_LIMITS: HandlerLimits = {
  maxMessageChars: 16 << 20,
  maxBatch: 64,
  maxMethodChars: 64,
  maxInFlight: 32,
  maxItems: 100_000,
};

/** Options of {@link RpcHandler}. */
export interface HandlerOptions {
  /** Allow writeRegister and writePhysical (`--allow-write`). */
  allowWrite?: boolean;
  limits?: Partial<HandlerLimits>;
}

const API_ERRORS: Record<string, number> = {
  E_BAD_INPUT: RPC_ERROR.INVALID_PARAMS,
  E_OPEN: RPC_ERROR.TARGET_OPEN,
  E_FORMAT: RPC_ERROR.TARGET_OPEN,
  E_UNREADABLE: RPC_ERROR.UNREADABLE,
  E_LOST: RPC_ERROR.TARGET_LOST,
  E_CLOSED: RPC_ERROR.TARGET_LOST,
  E_UNSUPPORTED: RPC_ERROR.UNSUPPORTED,
  E_RUNNING: RPC_ERROR.RUNNING,
  E_TOO_LARGE: RPC_ERROR.TOO_LARGE,
  E_INTERNAL: RPC_ERROR.INTERNAL_ERROR,
  E_WRITE_REFUSED: RPC_ERROR.WRITE_REFUSED,
  E_BUSY: RPC_ERROR.BUSY,
  E_SLOW_CLIENT: RPC_ERROR.SLOW_CLIENT,
  E_DISCONNECTED: RPC_ERROR.SLOW_CLIENT,
};

/** The JSON-RPC error for what a method threw. */
export function rpcError(e: unknown): RpcErrorObject {
  if (e instanceof ParamsError) return { code: RPC_ERROR.INVALID_PARAMS, message: e.message, data: { code: e.code } };
  if (e instanceof ServeError) return { code: API_ERRORS[e.code] ?? RPC_ERROR.INTERNAL_ERROR, message: e.message, data: { code: e.code } };
  const a = e instanceof ApiError ? e : toApiError(e);
  return { code: API_ERRORS[a.code] ?? RPC_ERROR.INTERNAL_ERROR, message: a.message, data: { code: a.code } };
}

/** Answers the requests of every client of one session. */
export class RpcHandler {
  readonly limits: HandlerLimits;
  readonly allowWrite: boolean;
  private readonly inFlight = new WeakMap<RpcPeer, number>();

  /** Answers for `session`; writes only with `allowWrite`, within `limits` (defaults: DEFAULT_HANDLER_LIMITS). */
  constructor(
    readonly session: PagewalkSession,
    options: HandlerOptions = {},
  ) {
    this.limits = { ...DEFAULT_HANDLER_LIMITS, ...options.limits };
    this.allowWrite = options.allowWrite === true;
  }

  /** Answers a received text: the answer to send (a batch answers with an array), or null. */
  async handle(text: string, peer: RpcPeer): Promise<string | null> {
    const m = parseMessage(text, this.limits);
    if (m.kind === 'error') return JSON.stringify(m.response);
    if (m.kind === 'single') {
      const r = await this.entry(m.entry, peer);
      return r === null ? null : JSON.stringify(r);
    }
    const answers = (await Promise.all(m.entries.map((e) => this.entry(e, peer)))).filter((r): r is RpcResponse => r !== null);
    return answers.length === 0 ? null : JSON.stringify(answers);
  }

  /** Answers one entry; null for a notification (even one that failed, as the specification says). */
  private async entry(e: RpcEntry, peer: RpcPeer): Promise<RpcResponse | null> {
    if ('invalid' in e) return e.invalid;
    const { request } = e;
    const notification = !('id' in request);
    const id = request.id ?? null;
    const method: Method | undefined = Object.hasOwn(METHODS, request.method) ? METHODS[request.method] : undefined;
    if (!method) {
      if (notification) return null;
      const known = Object.keys(METHODS).join(', ');
      return errorResponse(id, RPC_ERROR.METHOD_NOT_FOUND, `method not found: ${JSON.stringify(request.method.slice(0, 64))} (methods: ${known})`, 'E_METHOD_NOT_FOUND');
    }
    const busy = this.inFlight.get(peer) ?? 0;
    if (busy >= this.limits.maxInFlight) {
      return notification ? null : { jsonrpc: '2.0', id, error: rpcError(new ServeError('E_BUSY', `${busy} requests of this client are in flight (at most ${this.limits.maxInFlight}): wait for their answers`)) };
    }
    this.inFlight.set(peer, busy + 1);
    try {
      const params = checkParams(request.method, method.params, request.params);
      if (method.writes && !this.allowWrite) {
        throw new ServeError('E_WRITE_REFUSED', `${request.method} writes to the guest: start the server with --allow-write to allow it`);
      }
      const result = await method.run({ session: this.session, params, id: request.id, peer, allowWrite: this.allowWrite, maxItems: this.limits.maxItems });
      return notification ? null : resultResponse(id, result ?? null);
    } catch (err) {
      return notification ? null : { jsonrpc: '2.0', id, error: rpcError(err) };
    } finally {
      this.inFlight.set(peer, (this.inFlight.get(peer) ?? 1) - 1);
    }
  }
}
