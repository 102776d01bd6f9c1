/**
 * Exit statuses and the one-line error the CLI prints for each kind of failure.
 */
import { AddressError } from '../paging/addr.js';
import { PagingConfigError } from '../paging/mode.js';
import { ErrorCodeError } from '../faults/errorCode.js';
import { TargetError } from '../target/target.js';
import { ElfSymbolError } from '../target/elfSymbols.js';
import { LogInputError } from '../report/explainLog.js';

/** Exit statuses (DESIGN.md): a contract scripts depend on. */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** The answer is a fault or a danger. */
  DANGER: 1,
  /** Bad input: options, numbers, files that are not what they claim. */
  BAD_INPUT: 2,
  /** The target cannot be reached, or was lost. */
  TARGET: 3,
} as const;

/** A mistake on the command line; the message says what was wrong and what would be right. */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The exit status and the one line to print for `err`; unknown errors are internal (status 70 would hide them, so 2 is not used). */
export function describeError(err: unknown): { status: number; line: string } {
  if (
    err instanceof UsageError ||
    err instanceof AddressError ||
    err instanceof PagingConfigError ||
    err instanceof ErrorCodeError ||
    err instanceof ElfSymbolError ||
    err instanceof LogInputError
  ) {
    return { status: EXIT.BAD_INPUT, line: err.message };
  }
  if (err instanceof TargetError) {
    const status = err.code === 'E_FORMAT' || err.code === 'E_RUNNING' ? EXIT.BAD_INPUT : EXIT.TARGET;
    return { status, line: err.message };
  }
  const e = err as { code?: string; message?: string; path?: string };
  if (e && (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR')) {
    return { status: EXIT.TARGET, line: `cannot open ${e.path ?? 'the file'}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : 'it is a directory'}` };
  }
  return { status: 70, line: `internal error: ${e?.message ?? String(err)} (please report this)` };
}
