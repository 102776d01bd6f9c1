/**
 * The WebSocket API: JSON-RPC 2.0 over WebSocket on one shared session (`pagewalk serve --ws`).
 */
export { parseListenAddress, isLoopback, DEFAULT_HOST, type ListenAddress } from './address.js';
export { refusalOf, tokenOf, type AccessPolicy, type Refusal } from './auth.js';
export { ClientConnection, CLOSE, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection.js';
export { ServeError, type ServeErrorCode } from './errors.js';
export { RpcHandler, rpcError, DEFAULT_HANDLER_LIMITS, type HandlerLimits, type HandlerOptions } from './handler.js';
export { METHODS, NOTIFICATIONS, type Method, type MethodContext } from './methods.js';
export { checkParams, ParamsError, type ParamKind, type ParamsSpec } from './params.js';
export type { RpcPeer } from './peer.js';
export { RPC_ERROR, parseMessage, parseEntry, errorResponse, resultResponse, notificationText, type RpcId, type RpcRequest, type RpcResponse, type RpcErrorObject, type RpcMessage, type RpcEntry, type RpcLimits } from './rpc.js';
export { WsApiServer, type ServeOptions, type WsApiServerEvents } from './server.js';
