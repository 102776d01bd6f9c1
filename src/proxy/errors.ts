/**
 * The one error type of the GDB proxy. `code` is stable (the CLI maps it to an exit status); the
 * message is one line for the user.
 */

/** Stable codes of {@link ProxyError}. */
export type ProxyErrorCode =
  /** The address given for GDB (or the control socket) is malformed. */
  | 'E_ADDRESS'
  /** The proxy cannot listen there (in use, not permitted, a file in the way). */
  | 'E_LISTEN'
  /** QEMU's gdbstub cannot be reached, is held by another client, or does not speak RSP. */
  | 'E_UPSTREAM'
  /** The proxy is closed. */
  | 'E_CLOSED';

/** An error of the proxy; `code` is stable, the message one line. */
export class ProxyError extends Error {
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProxyError';
  }
}
