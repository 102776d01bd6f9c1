/**
 * The one error class of the Node API (and, through it, of the WebSocket API): every failure of a
 * session method is an {@link ApiError} with a stable `code`; the error it came from is its `cause`.
 */
import { describeError, EXIT } from '../cli/errors.js';
import { SessionError } from '../emu/session.js';
import { ScenarioError } from '../emu/scenarios/index.js';
import { MapError } from '../paging/map.js';
import { DescriptorError } from '../paging/descriptors.js';
import { TargetError } from '../target/target.js';
import { ElfCodeError } from '../watch/elfCode.js';
import { WatchError } from '../watch/errors.js';

/** Stable codes of {@link ApiError}. */
export type ApiErrorCode =
  /** An argument or option is wrong (a malformed address, an unknown scenario, a bad combination); the message says what would be right. */
  | 'E_BAD_INPUT'
  /** The target cannot be opened (file missing, QEMU not listening, gdbstub busy). */
  | 'E_OPEN'
  /** The file or the peer is not what it claims (not a dump, not a gdbstub). */
  | 'E_FORMAT'
  /** Physical memory the target does not hold was asked for. */
  | 'E_UNREADABLE'
  /** The target went away (QEMU exited, the connection dropped); the session is of no more use. */
  | 'E_LOST'
  /** The target cannot do this: a dump cannot step, a QMP-only target cannot break, a dump cannot be written. */
  | 'E_UNSUPPORTED'
  /** The guest runs (after cont(), or under watchCr3()): stop it first (interrupt()). */
  | 'E_RUNNING'
  /** The session is closed. */
  | 'E_CLOSED'
  /** An answer would be larger than the caller allowed (use the streaming form). */
  | 'E_TOO_LARGE'
  /** A bug in pagewalk; the message says what happened. */
  | 'E_INTERNAL';

/** An error of the Node API; `code` is stable, the message is one line for a person. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
  }
}

/** The {@link ApiError} for anything a session operation threw (an ApiError is returned as it is). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof TargetError) return new ApiError(err.code, err.message, { cause: err });
  if (err instanceof WatchError) return new ApiError('E_UNSUPPORTED', err.message, { cause: err });
  if (err instanceof ScenarioError || err instanceof MapError || err instanceof DescriptorError || err instanceof ElfCodeError) {
    return new ApiError('E_BAD_INPUT', err.message, { cause: err });
  }
  if (err instanceof SessionError) return new ApiError(err.code === 'E_ENDED' ? 'E_LOST' : 'E_UNSUPPORTED', err.message, { cause: err });
  const { status, line } = describeError(err);
  if (status === EXIT.BAD_INPUT) return new ApiError('E_BAD_INPUT', line, { cause: err });
  if (status === EXIT.TARGET) return new ApiError('E_OPEN', line, { cause: err });
  return new ApiError('E_INTERNAL', line, { cause: err });
}
