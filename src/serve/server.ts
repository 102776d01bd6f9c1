/**
 * The WebSocket API server: an HTTP server that upgrades allowed requests to WebSocket connections
 * speaking JSON-RPC 2.0 to one shared session. The session's events reach every client as
 * notifications (`stopped`, `cr3Write`, `targetLost`). Plain HTTP requests are answered 426 with
 * a line saying how to connect.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { PagewalkSession } from '../api/session.js';
import { DEFAULT_HOST, isLoopback } from './address.js';
import { refusalOf, type AccessPolicy } from './auth.js';
import { CLOSE, ClientConnection, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection.js';
import { ServeError } from './errors.js';
import { RpcHandler, type HandlerLimits } from './handler.js';
import { notificationText } from './rpc.js';

/** Options of {@link WsApiServer.listen}. */
export interface ServeOptions {
  /** Default 127.0.0.1; any address other machines can reach requires `token`. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The token clients must send when they connect. */
  token?: string;
  /** Allow writeRegister and writePhysical. */
  allowWrite?: boolean;
  /** Origins whose web pages may connect without a token. */
  origins?: readonly string[];
  /** Limits of the JSON-RPC handler. */
  handler?: Partial<HandlerLimits>;
  /** How far a client may fall behind. */
  connection?: Partial<ConnectionLimits>;
  /**
   * Largest WebSocket message accepted, in bytes (default 4 times the handler's message limit):
   * between the two a message is answered with a JSON-RPC error, beyond this the connection is
   * closed (code 1009), since the whole message would have to be held.
   */
  maxPayloadBytes?: number;
}

/** The events of a {@link WsApiServer}. */
export interface WsApiServerEvents {
  /** A client connected (its remote address). */
  connection: [string];
  /** A client left. */
  disconnection: [string];
  /** A connection was refused (its remote address and the reason). */
  refused: [string, string];
  /** The session's target is gone; the server has told the clients. */
  targetLost: [string];
}

/** A running WebSocket API server. */
export class WsApiServer extends EventEmitter<WsApiServerEvents> {
  private readonly clientSet = new Set<ClientConnection>();
  private readonly detach: () => void;
  private closing: Promise<void> | null = null;

  /**
   * Listens on `options.host:port` and serves `session` (which stays the caller's to close).
   * Throws ServeError E_TOKEN_REQUIRED for a non-loopback host without a token, E_LISTEN when the
   * address cannot be listened on.
   */
  static async listen(session: PagewalkSession, options: ServeOptions = {}): Promise<WsApiServer> {
    const host = options.host ?? DEFAULT_HOST;
    if (!isLoopback(host) && !options.token) {
      throw new ServeError('E_TOKEN_REQUIRED', `--ws ${host}: other machines can reach this address, and whoever connects can read and drive the guest: pass --token TOKEN (clients send it when they connect), or listen on 127.0.0.1`);
    }
    if (options.token !== undefined && options.token.length < 8) {
      throw new ServeError('E_TOKEN_REQUIRED', '--token: use at least 8 characters (e.g. from `openssl rand -hex 16`)');
    }
    const http = createServer();
    await new Promise<void>((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException): void => {
        const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'the address is not one of this machine' : e.code === 'EACCES' ? 'permission denied' : e.message;
        reject(new ServeError('E_LISTEN', `cannot listen on ${host}:${options.port ?? 0}: ${why}`));
      };
      http.once('error', fail);
      http.listen(options.port ?? 0, host, () => {
        http.off('error', fail);
        resolve();
      });
    });
    return new WsApiServer(session, http, host, options);
  }

  private readonly wss: WebSocketServer;
  private readonly handler: RpcHandler;
  private readonly limits: ConnectionLimits;
  private readonly policy: AccessPolicy;

  private constructor(
    readonly session: PagewalkSession,
    private readonly http: Server,
    private readonly host: string,
    options: ServeOptions,
  ) {
    super();
    this.handler = new RpcHandler(session, { allowWrite: options.allowWrite, limits: options.handler });
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.connection };
    this.policy = { token: options.token ?? null, origins: options.origins ?? [] };
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes ?? this.handler.limits.maxMessageChars * 4 });
    http.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
      res.end('pagewalk serves JSON-RPC 2.0 over WebSocket here: connect with a WebSocket client\n');
    });
    http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    const onStopped = (stop: unknown): void => this.broadcast('stopped', stop);
    const onCr3Write = (e: unknown): void => this.broadcast('cr3Write', e);
    const onLost = (lost: { message: string }): void => {
      this.broadcast('targetLost', lost);
      this.emit('targetLost', lost.message);
    };
    session.on('stopped', onStopped);
    session.on('cr3Write', onCr3Write);
    session.on('targetLost', onLost);
    this.detach = () => {
      session.off('stopped', onStopped);
      session.off('cr3Write', onCr3Write);
      session.off('targetLost', onLost);
    };
  }

  /** The port listened on. */
  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** Where clients connect: `ws://HOST:PORT/`. */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${h}:${this.port}/`;
  }

  /** The clients connected now. */
  get clients(): number {
    return this.clientSet.size;
  }

  /** Sends a notification to every client. */
  broadcast(method: string, params: unknown): void {
    const text = notificationText(method, params);
    for (const c of this.clientSet) c.send(text);
  }

  /** Stops listening and closes every connection (code 1001); the session stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.detach();
      for (const c of this.clientSet) c.close(CLOSE.GOING_AWAY, 'the server stops');
      await Promise.all([...this.clientSet].map((c) => c.closed));
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        this.http.close(() => resolve());
        this.http.closeAllConnections();
      });
    })();
    return this.closing;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const who = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    socket.on('error', () => undefined);
    const refusal = this.closing ? { status: 503 as const, reason: 'the server stops' } : refusalOf(req, this.policy);
    if (refusal) {
      const text = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' }[refusal.status];
      socket.end(`HTTP/1.1 ${refusal.status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${refusal.reason}\n`);
      this.emit('refused', who, refusal.reason);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new ClientConnection(ws, this.handler, this.limits, who);
      this.clientSet.add(c);
      this.emit('connection', who);
      void c.closed.then(() => {
        this.clientSet.delete(c);
        this.emit('disconnection', who);
      });
    });
  }
}
