/**
 * Errors of the WebSocket server, with stable codes: the CLI turns the start-up ones into exit
 * status 2, the per-request ones become JSON-RPC errors (see `RPC_ERROR`).
 */

/** Stable codes of {@link ServeError}. */
export type ServeErrorCode =
  /** `--ws` is not HOST:PORT. */
  | 'E_ADDRESS'
  /** A non-loopback address without `--token`: anyone on the network could drive the guest. */
  | 'E_TOKEN_REQUIRED'
  /** The address cannot be listened on (in use, not local). */
  | 'E_LISTEN'
  /** A write (memory, registers) and the server was not started with `--allow-write`. */
  | 'E_WRITE_REFUSED'
  /** The client has too many requests in flight. */
  | 'E_BUSY'
  /** A stream was cut because the client read too slowly while others waited for the target. */
  | 'E_SLOW_CLIENT'
  /** The client went away during a stream. */
  | 'E_DISCONNECTED';

/** An error of the WebSocket server; `code` is stable, the message one line. */
export class ServeError extends Error {
  constructor(
    readonly code: ServeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ServeError';
  }
}
