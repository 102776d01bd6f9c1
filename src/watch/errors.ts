/**
 * Errors of the watches: a target that cannot be driven, or a guest that gives them nothing to
 * break on. Each has a stable `code`; the CLI prints the message as one line.
 */

/** Stable codes of {@link WatchError}. */
export type WatchErrorCode =
  /** The target has no controls: a dump, an image, QMP alone. */
  | 'E_NOT_DRIVABLE'
  /** The target does not report IDTR, so the #PF handler cannot be found. */
  | 'E_NO_IDT';

/** An error of watch-cr3 or catch-pf; `code` is stable, the message one line for the user. */
export class WatchError extends Error {
  constructor(
    readonly code: WatchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WatchError';
  }
}
