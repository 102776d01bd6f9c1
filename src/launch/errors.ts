/**
 * The one error type of `launch`. `code` is stable (the CLI maps it to an exit status); the message
 * is one line for the user.
 */

/** Stable codes of {@link LaunchError}. */
export type LaunchErrorCode =
  /** QEMU's command line cannot be used as given (a missing value, a gdbstub pagewalk cannot reach, -daemonize). */
  | 'E_ARGS'
  /** QEMU is not there, or exited (or hung) before its sockets came up. */
  | 'E_START';

/** An error of `launch`; `code` is stable, the message one line. */
export class LaunchError extends Error {
  constructor(
    readonly code: LaunchErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LaunchError';
  }
}
