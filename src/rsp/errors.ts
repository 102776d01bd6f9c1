/**
 * The one error type of the GDB RSP layer. `code` is stable (tests, the target layer and the CLI
 * branch on it); the message is one line for the user.
 */

/** Stable codes of {@link RspError}. */
export type RspErrorCode =
  /** No reply (or no connection) within the time allowed. */
  | 'E_TIMEOUT'
  /** The connection is closed, was refused, or closed while a request waited. */
  | 'E_CLOSED'
  /** The stub answered `Exx` (the number is in `errno`). */
  | 'E_REPLY'
  /** The stub sent something malformed or out of place. */
  | 'E_PROTOCOL'
  /** The stub does not support what was asked (an empty reply, a missing register or feature). */
  | 'E_UNSUPPORTED'
  /** A request was made while the target runs (after `c`/`s`), when the stub cannot take one. */
  | 'E_BUSY';

/** An error from the RSP layer; `errno` is the number of an `Exx` reply (E_REPLY), else null. */
export class RspError extends Error {
  constructor(
    readonly code: RspErrorCode,
    message: string,
    readonly errno: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RspError';
  }
}
