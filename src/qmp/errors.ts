/**
 * The errors of the QMP layer, one class per operation, each with a stable `code`: talking QMP
 * ({@link QmpError}), reading human-monitor text ({@link HmpError}), and reading guest memory
 * through the monitor ({@link PhysicalReadError}).
 */

/** Stable codes of {@link QmpError}. */
export type QmpErrorCode =
  /** The endpoint cannot be reached (no such socket, connection refused). */
  | 'E_CONNECT'
  /** No answer in time: a request, a greeting from a silent peer, an awaited event. */
  | 'E_TIMEOUT'
  /** The connection is closed (by us or by QEMU) before the answer came. */
  | 'E_CLOSED'
  /** QEMU answered the command with an error; `errorClass` and `desc` say which. */
  | 'E_QMP'
  /** The peer sent something that is not QMP: malformed JSON, an overlong line, a reply of the wrong shape. */
  | 'E_PROTOCOL'
  /** The socket accepted the connection but sent no greeting: another client holds the QMP monitor. */
  | 'E_BUSY';

/** An error from a QMP connection or command; `code` is stable, the message is one line for the user. */
export class QmpError extends Error {
  /** QEMU's error class (`CommandNotFound`, `GenericError`, ...), for E_QMP. */
  readonly errorClass: string | undefined;
  /** QEMU's own description of the error, for E_QMP. */
  readonly desc: string | undefined;

  constructor(
    readonly code: QmpErrorCode,
    message: string,
    detail: { errorClass?: string; desc?: string } = {},
  ) {
    super(message);
    this.name = 'QmpError';
    this.errorClass = detail.errorClass;
    this.desc = detail.desc;
  }
}

/** Stable codes of {@link HmpError}. */
export type HmpErrorCode =
  /** A line the parser does not recognise, or a required line that is missing; `line` says which. */
  | 'E_HMP_PARSE'
  /** The monitor does not know the command (`unknown command: 'x'`). */
  | 'E_HMP_UNKNOWN_COMMAND'
  /** The monitor rejected the command's arguments (`... Try "help xp" for more information`). */
  | 'E_HMP_USAGE';

/** An error reading human-monitor output; for E_HMP_PARSE, `line` is the 1-based line number. */
export class HmpError extends Error {
  constructor(
    readonly code: HmpErrorCode,
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'HmpError';
  }
}

/** Stable codes of {@link PhysicalReadError}. */
export type PhysicalReadErrorCode =
  /** QEMU answered `Cannot access memory`: the address is not backed by RAM or ROM. */
  | 'E_UNREADABLE'
  /** The request itself is unusable (negative or non-integer length, address beyond 64 bits). */
  | 'E_RANGE';

/** An error reading guest-physical memory through QMP; `address` is where the read failed. */
export class PhysicalReadError extends Error {
  constructor(
    readonly code: PhysicalReadErrorCode,
    message: string,
    readonly address: bigint,
  ) {
    super(message);
    this.name = 'PhysicalReadError';
  }
}
