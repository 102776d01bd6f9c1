/**
 * One WebSocket client: its messages go to the handler (several may be in flight), its answers and
 * events come back through a bounded queue. The queue is the socket's own send buffer
 * (`bufferedAmount`): a stream waits while it is above a high-water mark, and a client whose
 * buffer passes a hard limit (it stopped reading) is dropped, so one slow client never holds up
 * the others or the server's memory.
 */
import type { RawData, WebSocket } from 'ws';
import { ServeError } from './errors.js';
import type { RpcHandler } from './handler.js';
import type { RpcPeer } from './peer.js';
import { RPC_ERROR, errorResponse } from './rpc.js';

/** How much a client may fall behind. */
export interface ConnectionLimits {
  /** Bytes waiting in the send buffer above which a stream waits for the client. */
  highWaterBytes: number;
  /** Bytes waiting above which the client is dropped (close code 1008). */
  maxBufferedBytes: number;
  /** How long a stream may wait while other clients wait for the target, before it is cut (E_SLOW_CLIENT). */
  yieldAfterMs: number;
  /** How long a stream may wait at all. */
  stallMs: number;
  /** How often a waiting stream looks again. */
  pollMs: number;
}

/** Limits for clients on the same machine or a LAN. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  highWaterBytes: 1 << 20,
  maxBufferedBytes: 64 << 20,
  yieldAfterMs: 250,
  stallMs: 30_000,
  pollMs: 5,
};

/** WebSocket close codes the server uses. */
export const CLOSE = {
  /** The server stops. */
  GOING_AWAY: 1001,
  /** The client fell too far behind. */
  POLICY: 1008,
  /** The target is gone. */
  TRY_AGAIN_LATER: 1013,
} as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a message; null when a binary message is not UTF-8. */
function textOf(data: RawData): string | null {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** A connected client. */
export class ClientConnection implements RpcPeer {
  private closedFlag = false;
  /** Resolves when the client is gone. */
  readonly closed: Promise<void>;

  /** Serves `ws` with `handler`; the connection answers and streams within `limits`. */
  constructor(
    private readonly ws: WebSocket,
    private readonly handler: RpcHandler,
    private readonly limits: ConnectionLimits,
    /** Who this is, for messages: the remote address and port. */
    readonly label: string,
  ) {
    this.closed = new Promise((resolve) => {
      ws.once('close', () => {
        this.closedFlag = true;
        resolve();
      });
    });
    ws.on('error', () => {
      // A protocol error from the client (a frame over maxPayload, bad masking): ws closes the socket; nothing to do.
    });
    ws.on('message', (data, isBinary) => this.received(data, isBinary));
  }

  /** True until the client goes away (or is being dropped). */
  get open(): boolean {
    return !this.closedFlag && this.ws.readyState === this.ws.OPEN;
  }

  /** Sends now; a client that let its buffer pass the hard limit is dropped instead. */
  send(text: string): void {
    if (!this.open) return;
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CLOSE.POLICY, 'too slow: the client stopped reading');
      return;
    }
    this.ws.send(text);
  }

  /** Sends one message of a stream, then waits while the client's buffer is over the high-water mark (see RpcPeer). */
  async push(text: string, othersWait: () => boolean): Promise<void> {
    if (!this.open) throw new ServeError('E_DISCONNECTED', `${this.label} went away`);
    this.ws.send(text);
    const start = Date.now();
    while (this.ws.bufferedAmount > this.limits.highWaterBytes) {
      await sleep(this.limits.pollMs);
      if (!this.open) throw new ServeError('E_DISCONNECTED', `${this.label} went away`);
      const waited = Date.now() - start;
      if (waited > this.limits.stallMs || (waited > this.limits.yieldAfterMs && othersWait())) {
        throw new ServeError('E_SLOW_CLIENT', `the stream was cut: this client read too slowly (${this.ws.bufferedAmount} bytes unread for ${waited} ms) while others waited for the target; ask for a smaller window (from/to)`);
      }
    }
  }

  /** Closes the connection with a code and a reason. */
  close(code: number, reason: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason.slice(0, 120));
    // A client that does not answer the close handshake is cut off.
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    timer.unref();
  }

  private received(data: RawData, isBinary: boolean): void {
    const text = textOf(data);
    if (text === null) {
      this.send(JSON.stringify(errorResponse(null, RPC_ERROR.PARSE_ERROR, `parse error: a ${isBinary ? 'binary ' : ''}message that is not UTF-8 text`, 'E_PARSE')));
      return;
    }
    this.handler.handle(text, this).then(
      (answer) => {
        if (answer !== null) this.send(answer);
      },
      (e: unknown) => {
        // The handler answers every failure itself; reaching here is a bug, told to the client as one.
        this.send(JSON.stringify(errorResponse(null, RPC_ERROR.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`, 'E_INTERNAL')));
      },
    );
  }
}
