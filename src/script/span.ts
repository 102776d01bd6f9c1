/**
 * Where something is in a script: a line number and a column range, and the source line shown
 * with a caret under that range, the way compilers point at mistakes.
 */

/** A place in a script: 1-based line, 0-based column, and a length in characters (at least 1 when shown). */
export interface Span {
  line: number;
  column: number;
  length: number;
}

/** The span from the start of `a` to the end of `b` (same line). */
export function joinSpans(a: Span, b: Span): Span {
  const end = Math.max(a.column + a.length, b.column + b.length);
  return { line: a.line, column: a.column, length: end - a.column };
}

/**
 * The source line with its number and a caret line under `span`:
 * ```
 *     3 | walk $rsp +
 *       |           ^
 * ```
 * Tabs before the span are kept in the caret line so the caret stays aligned.
 */
export function caretLines(source: string, span: Span): string[] {
  const number = String(span.line);
  const gutter = ' '.repeat(Math.max(4, number.length + 1));
  const lead = source.slice(0, span.column).replace(/[^\t]/g, ' ');
  const width = Math.max(1, Math.min(span.length, Math.max(1, source.length - span.column)));
  return [`${gutter.slice(number.length)}${number} | ${source}`, `${gutter} | ${lead}${'^'.repeat(width)}`];
}
