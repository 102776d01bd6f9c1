/**
 * The errors of the script language: a syntax error found while parsing a line, and an error
 * raised while running one. Both carry the span they are about and a stable `code`; a failed
 * `assert` is its own class because it is an answer (exit status 1), not a mistake.
 */
import type { Span } from './span.js';

/** Stable codes of syntax errors. */
export type ScriptSyntaxErrorCode =
  /** A character, number or string the lexer cannot read. */
  | 'E_TOKEN'
  /** Tokens in an order the grammar does not allow. */
  | 'E_SYNTAX'
  /** A command, option or function that does not exist. */
  | 'E_UNKNOWN'
  /** A command or function given the wrong arguments or options. */
  | 'E_ARGUMENTS';

/** A mistake in the text of a line, found before anything runs. */
export class ScriptSyntaxError extends Error {
  constructor(
    readonly code: ScriptSyntaxErrorCode,
    message: string,
    readonly span: Span,
  ) {
    super(message);
    this.name = 'ScriptSyntaxError';
  }
}

/** Stable codes of errors raised while a line runs. */
export type ScriptErrorCode =
  /** A variable that is not set, or a symbol that is not in the --elf file (or no --elf). */
  | 'E_NAME'
  /** A value of the wrong type for an operator, function or option (a string where a number goes). */
  | 'E_TYPE'
  /** A value the operation cannot take: division by zero, an unmapped address for pa(), a bad access kind. */
  | 'E_VALUE'
  /** The target cannot do it (step on a dump, watch-cr3 without a debuggable target). */
  | 'E_UNSUPPORTED'
  /** The run was interrupted (Ctrl-C). */
  | 'E_INTERRUPTED';

/** An error while running a line; `span` points at the part of the line it is about. */
export class ScriptError extends Error {
  constructor(
    readonly code: ScriptErrorCode,
    message: string,
    readonly span: Span,
  ) {
    super(message);
    this.name = 'ScriptError';
  }
}

/** One sub-expression of a failed assertion and the value it had. */
export interface AssertedValue {
  /** The sub-expression as written. */
  expression: string;
  /** Its value as the script prints it (numbers in hex, strings quoted). */
  value: string;
}

/** An `assert` whose expression was false. */
export class ScriptAssertionError extends Error {
  readonly code = 'E_ASSERT';
  constructor(
    /** The expression as written. */
    readonly expression: string,
    /** The values of its variables, calls and compared operands, in evaluation order. */
    readonly values: readonly AssertedValue[],
    /** The message written after the expression, or null. */
    readonly note: string | null,
    readonly span: Span,
  ) {
    super(`assertion failed: ${expression}${note ? ` (${note})` : ''}`);
    this.name = 'ScriptAssertionError';
  }
}
