/**
 * The syntax tree of a script: expressions, and one statement per line (a command with its
 * arguments and options, `set`, `assert`, `echo`).
 */
import type { Span } from './span.js';

/** Binary operators, by precedence from loosest: `|| && (== != < <= > >=) | ^ & (<< >>) (+ -) (* / %)`. */
export type BinaryOperator = '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '|' | '^' | '&' | '<<' | '>>' | '+' | '-' | '*' | '/' | '%';

/** Unary operators: logical not, bitwise not, negation (modulo 2^64). */
export type UnaryOperator = '!' | '~' | '-';

/** An expression. Every node knows its span, so errors and assertion reports can quote it. */
export type Expr =
  | { kind: 'number'; value: bigint; span: Span }
  | { kind: 'string'; value: string; span: Span }
  | { kind: 'boolean'; value: boolean; span: Span }
  /** `$name`: a register, or a variable set with `set`. */
  | { kind: 'variable'; name: string; span: Span }
  /** A bare name: a symbol of the --elf file. */
  | { kind: 'symbol'; name: string; span: Span }
  | { kind: 'call'; name: string; args: Expr[]; span: Span }
  | { kind: 'unary'; op: UnaryOperator; operand: Expr; span: Span }
  | { kind: 'binary'; op: BinaryOperator; left: Expr; right: Expr; span: Span };

/** An option's value: an expression, a word (`--access write`), or `true` for a flag. */
export type OptionValue = { kind: 'expr'; expr: Expr; span: Span } | { kind: 'word'; word: string; span: Span } | { kind: 'flag'; span: Span };

/** A piece of `echo` text: literal text, or an expression to interpolate (`$var`, `$(expr)`). */
export type TextPart = { kind: 'text'; text: string } | { kind: 'expr'; expr: Expr };

/** A command with positional expressions and options (walk, map, diff, check, fault, regs, step, cont, break, delete, watch-cr3, help). */
export interface CommandStatement {
  kind: 'command';
  name: string;
  args: Expr[];
  options: ReadonlyMap<string, OptionValue>;
  /** The command word. */
  span: Span;
  /** The whole line as written (comment included), for error reports. */
  source: string;
}

/** `set $name = EXPR`. */
export interface SetStatement {
  kind: 'set';
  name: string;
  nameSpan: Span;
  value: Expr;
  span: Span;
  source: string;
}

/** `assert EXPR [MESSAGE]`. */
export interface AssertStatement {
  kind: 'assert';
  condition: Expr;
  /** The message after the expression (a string literal, or the rest of the line), or null. */
  note: string | null;
  span: Span;
  source: string;
}

/** `echo TEXT`, with `$var` and `$(expr)` interpolated. */
export interface EchoStatement {
  kind: 'echo';
  parts: TextPart[];
  span: Span;
  source: string;
}

/** One line of a script that does something. */
export type Statement = CommandStatement | SetStatement | AssertStatement | EchoStatement;

/** The name a statement is reported under (`walk`, `set`, `assert` ...). */
export function statementName(s: Statement): string {
  return s.kind === 'command' ? s.name : s.kind;
}
