/**
 * JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification), as pure functions: a received
 * text parsed into requests (single or batch) or the error answer it deserves, and the answers and
 * notifications built back. Nothing here throws on what a client sends.
 */

/** The error codes of the specification and pagewalk's own (-32000 to -32099, the server range). */
export const RPC_ERROR = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** The target cannot be opened (E_OPEN) or is not what it claims (E_FORMAT). */
  TARGET_OPEN: -32001,
  /** Physical memory the target does not hold (E_UNREADABLE). */
  UNREADABLE: -32002,
  /** The target is gone, or the session closed (E_LOST, E_CLOSED). */
  TARGET_LOST: -32003,
  /** The target cannot do this: a dump cannot step (E_UNSUPPORTED). */
  UNSUPPORTED: -32004,
  /** The guest runs (cont, watchCr3): interrupt it first (E_RUNNING). */
  RUNNING: -32005,
  /** The answer would be too large: ask for it streamed (E_TOO_LARGE). */
  TOO_LARGE: -32006,
  /** A write to memory or registers, and the server was not started with --allow-write (E_WRITE_REFUSED). */
  WRITE_REFUSED: -32010,
  /** This client has too many requests in flight (E_BUSY). */
  BUSY: -32011,
  /** A stream was cut: the client read too slowly while others waited for the target (E_SLOW_CLIENT). */
  SLOW_CLIENT: -32012,
} as const;

/** A request id: a string, a number, or null (the specification allows it; ids are echoed as sent). */
export type RpcId = string | number | null;

/** A well-formed request; `id` is absent for a notification (no answer is sent). */
export interface RpcRequest {
  id?: RpcId;
  method: string;
  params: unknown;
}

/** The error member of an answer; `data.code` is pagewalk's stable string code. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data: { code: string };
}

/** An answer. */
export type RpcResponse = { jsonrpc: '2.0'; id: RpcId; result: unknown } | { jsonrpc: '2.0'; id: RpcId; error: RpcErrorObject };

/** One element of a received message: a request, or the error answer to send for it. */
export type RpcEntry = { request: RpcRequest } | { invalid: RpcResponse };

/** A received message: one entry, a batch, or an error answer for the whole. */
export type RpcMessage = { kind: 'single'; entry: RpcEntry } | { kind: 'batch'; entries: RpcEntry[] } | { kind: 'error'; response: RpcResponse };

/** Limits on what a client may send. */
export interface RpcLimits {
  /** Characters in one message (beyond it: invalid request, without parsing). */
  maxMessageChars: number;
  /** Requests in one batch. */
  maxBatch: number;
  /** Characters of a method name. */
  maxMethodChars: number;
}

/** An error answer. */
export function errorResponse(id: RpcId, code: number, message: string, stable: string): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message, data: { code: stable } } };
}

/** A result answer. */
export function resultResponse(id: RpcId, result: unknown): RpcResponse {
  return { jsonrpc: '2.0', id, result };
}

/** A notification, as text. */
export function notificationText(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}

/** True for a value the specification allows as an id. */
function isId(v: unknown): v is RpcId {
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** The id to answer an invalid request with: its own when it has a usable one, else null. */
function idOf(v: unknown): RpcId {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const id = (v as { id?: unknown }).id;
  return isId(id) ? id : null;
}

/** One request object checked against the specification. */
export function parseEntry(v: unknown, limits: RpcLimits): RpcEntry {
  const bad = (why: string): RpcEntry => ({ invalid: errorResponse(idOf(v), RPC_ERROR.INVALID_REQUEST, `invalid request: ${why}`, 'E_INVALID_REQUEST') });
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('expected an object such as {"jsonrpc":"2.0","id":1,"method":"regs"}');
  const o = v as Record<string, unknown>;
  if (o.jsonrpc !== '2.0') return bad('"jsonrpc" must be "2.0"');
  if ('id' in o && !isId(o.id)) return bad('"id" must be a string, a number or null');
  if (typeof o.method !== 'string') return bad('"method" must be a string');
  if (o.method.length === 0 || o.method.length > limits.maxMethodChars) return bad(`"method" must be 1 to ${limits.maxMethodChars} characters`);
  if ('params' in o && (typeof o.params !== 'object' || o.params === null)) return bad('"params" must be an object (or an array) when present');
  const request: RpcRequest = { method: o.method, params: o.params };
  if ('id' in o) request.id = o.id as RpcId;
  return { request };
}

/** Parses a received text. */
export function parseMessage(text: string, limits: RpcLimits): RpcMessage {
  if (text.length > limits.maxMessageChars) {
    return { kind: 'error', response: errorResponse(null, RPC_ERROR.INVALID_REQUEST, `invalid request: the message is over ${limits.maxMessageChars} characters`, 'E_REQUEST_TOO_LARGE') };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { kind: 'error', response: errorResponse(null, RPC_ERROR.PARSE_ERROR, `parse error: ${(e as Error).message}`, 'E_PARSE') };
  }
  if (!Array.isArray(v)) return { kind: 'single', entry: parseEntry(v, limits) };
  if (v.length === 0) return { kind: 'error', response: errorResponse(null, RPC_ERROR.INVALID_REQUEST, 'invalid request: an empty batch', 'E_INVALID_REQUEST') };
  if (v.length > limits.maxBatch) {
    return { kind: 'error', response: errorResponse(null, RPC_ERROR.INVALID_REQUEST, `invalid request: a batch of ${v.length} requests (at most ${limits.maxBatch})`, 'E_REQUEST_TOO_LARGE') };
  }
  return { kind: 'batch', entries: v.map((e) => parseEntry(e, limits)) };
}
