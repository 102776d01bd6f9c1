/**
 * How a failure in a script is told: a `FILE:LINE:COLUMN:` line, the source line with a caret
 * under the culprit, the values of a failed assertion; the exit status it means; and the same as
 * a JSON object for `--json`. Shared by `pagewalk run` and the TUI's command line.
 */
import { describeError, EXIT } from '../cli/errors.js';
import { ScriptAssertionError, ScriptError, ScriptSyntaxError } from './errors.js';
import { caretLines } from './span.js';

/** Exit status of a script interrupted by Ctrl-C (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** A failure, told. */
export interface FailureReport {
  /** The exit status it means: 1 a failed assert, 2 bad input (syntax, names, types, unsupported), 3 target lost, 130 interrupted. */
  status: number;
  /** Lines for stderr. */
  lines: string[];
  /** The JSON object for `--json` (`{line, error: {code, message, column?}}` or, for an assert, its values). */
  json: { line: number; command?: string; error: { code: string; message: string; column?: number; values?: { expression: string; value: string }[] } };
}

/**
 * Tells `err`, raised by the statement on line `line` (`source` is that line as written, `file`
 * the script's name, `command` its command word when known).
 */
export function reportFailure(err: unknown, file: string, line: number, source: string, command?: string): FailureReport {
  const cmd = command === undefined ? {} : { command };
  if (err instanceof ScriptSyntaxError || err instanceof ScriptError) {
    const kind = err instanceof ScriptSyntaxError ? 'syntax error: ' : '';
    const status = err instanceof ScriptError && err.code === 'E_INTERRUPTED' ? EXIT_INTERRUPTED : EXIT.BAD_INPUT;
    return {
      status,
      lines: [`${file}:${err.span.line}:${err.span.column + 1}: ${kind}${err.message}`, ...caretLines(source, err.span)],
      json: { line: err.span.line, ...cmd, error: { code: err.code, message: err.message, column: err.span.column + 1 } },
    };
  }
  if (err instanceof ScriptAssertionError) {
    const values = err.values.map((v) => ({ expression: v.expression, value: v.value }));
    return {
      status: EXIT.DANGER,
      lines: [`${file}:${err.span.line}: ${err.message}`, ...caretLines(source, err.span), ...values.map((v) => `  ${v.expression} = ${v.value}`)],
      json: { line: err.span.line, ...cmd, error: { code: err.code, message: err.message, column: err.span.column + 1, values } },
    };
  }
  const { status, line: text } = describeError(err);
  const code = (err as { code?: unknown } | null)?.code;
  return {
    status,
    lines: [`${file}:${line}: ${command ? `${command}: ` : ''}${text}`],
    json: { line, ...cmd, error: { code: typeof code === 'string' ? code : 'E_INTERNAL', message: text } },
  };
}
