/**
 * The one error type of the assembler: what went wrong, with a stable `code`, and a message that
 * names the instruction or directive as the caller wrote it.
 */

/** Stable codes of assembler errors. */
export type AsmErrorCode =
  /** An operand combination (or a register size) that the instruction does not have in this mode. */
  | 'E_OPERANDS'
  /** A value that does not fit the immediate, displacement or data field it goes into. */
  | 'E_RANGE'
  /** A label defined twice. */
  | 'E_DUPLICATE_LABEL'
  /** A label used but never defined. */
  | 'E_UNDEFINED_LABEL'
  /** iced-x86 refused to encode an instruction (for example a 32-bit-only form in 64-bit code). */
  | 'E_ENCODE'
  /** A branch whose target is out of reach of a single instruction (farther than 2 GiB in 64-bit code). */
  | 'E_BRANCH_RANGE'
  /** Label addresses did not settle (branch sizes kept changing); should not happen for sane code. */
  | 'E_LAYOUT';

/** An error from assembling; `code` is stable, the message names the offending line. */
export class AsmError extends Error {
  constructor(
    readonly code: AsmErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AsmError';
  }
}
