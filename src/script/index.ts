/**
 * The script language of `pagewalk run` and the TUI's command line: parser, executor, and how
 * failures are told.
 */
export type { AssertStatement, BinaryOperator, CommandStatement, EchoStatement, Expr, OptionValue, SetStatement, Statement, TextPart, UnaryOperator } from './ast.js';
export { captureOutput } from './capture.js';
export type { CommandContext, CommandOutput, CommandRunner } from './context.js';
export { ScriptAssertionError, ScriptError, ScriptSyntaxError, type AssertedValue, type ScriptErrorCode, type ScriptSyntaxErrorCode } from './errors.js';
export { evaluate, evaluateNumber, truth, type EvalEnv, type TraceEntry } from './evaluate.js';
export { ScriptExecutor, type ExecutorOptions, type ScriptOutput } from './executor.js';
export { COMMANDS, FUNCTIONS, findCommand, findFunction, type CommandSpec, type FunctionSpec, type OptionSpec } from './grammar.js';
export { commentStart, Lexer, type Token, type TokenKind } from './lexer.js';
export { parseExpression, parseLine, parseScript, type ParsedScript } from './parser.js';
export { REGISTER_NAMES, isRegisterName, registerValue } from './registers.js';
export { EXIT_INTERRUPTED, reportFailure, type FailureReport } from './report.js';
export { caretLines, type Span } from './span.js';
export { quoteValue, showValue, valueJson, type Value } from './values.js';
