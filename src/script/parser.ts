/**
 * The parser: one statement per line, `#` starts a comment. Expressions are parsed greedily, so an
 * argument runs on as long as an operator joins it to the next value: `walk $rsp - 8 $rip` walks
 * two addresses. Bitwise operators bind tighter than comparisons (`$cr4 & 0x20 == 0x20` means what
 * it says), and comparisons do not chain. Lines are checked against the command and function tables,
 * so a typo is reported, with a caret, before anything runs.
 */
import type { AssertStatement, BinaryOperator, CommandStatement, EchoStatement, Expr, OptionValue, SetStatement, Statement, TextPart } from './ast.js';
import { ScriptSyntaxError } from './errors.js';
import { COMMANDS, FUNCTIONS, findCommand, findFunction, suggest, type CommandSpec, type OptionSpec } from './grammar.js';
import { commentStart, Lexer, type Token } from './lexer.js';
import { joinSpans, type Span } from './span.js';

/** Binary operators by precedence level, loosest first. */
const LEVELS: readonly (readonly BinaryOperator[])[] = [['||'], ['&&'], ['==', '!=', '<', '<=', '>', '>='], ['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];
const COMPARISON_LEVEL = 2;

/** A parsed script: its statements in order, and every syntax error found (the script runs only without any). */
export interface ParsedScript {
  statements: Statement[];
  errors: ScriptSyntaxError[];
  /** The lines as written, for error reports (index 0 is line 1). */
  lines: string[];
}

/** Parses a whole script, collecting the syntax errors of every line rather than stopping at the first. */
export function parseScript(text: string): ParsedScript {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const statements: Statement[] = [];
  const errors: ScriptSyntaxError[] = [];
  lines.forEach((source, i) => {
    try {
      const s = parseLine(source, i + 1);
      if (s) statements.push(s);
    } catch (e) {
      if (e instanceof ScriptSyntaxError) errors.push(e);
      else throw e;
    }
  });
  return { statements, errors, lines };
}

/** Parses one line; null for a blank or comment line. Throws ScriptSyntaxError. */
export function parseLine(source: string, line = 1): Statement | null {
  const code = source.slice(0, commentStart(source));
  const lead = /^\s*/.exec(code)![0].length;
  if (lead === code.length) return null;
  const m = /^[A-Za-z][A-Za-z0-9_-]*/.exec(code.slice(lead));
  if (!m) {
    const v = /^\$[A-Za-z_]\w*/.exec(code.slice(lead));
    const span: Span = { line, column: lead, length: v ? v[0].length : 1 };
    if (v) throw new ScriptSyntaxError('E_UNKNOWN', `a line starts with a command; to give ${v[0]} a value write: set ${v[0]} = ...`, span);
    throw new ScriptSyntaxError('E_SYNTAX', `a line starts with a command such as walk, map or assert (help lists them)`, span);
  }
  const word = m[0];
  const span: Span = { line, column: lead, length: word.length };
  const spec = findCommand(word);
  if (!spec) {
    const hint = suggest(word, COMMANDS.map((c) => c.name));
    throw new ScriptSyntaxError('E_UNKNOWN', `unknown command '${word}'${hint ? ` (did you mean ${hint}?)` : ''}: the commands are ${COMMANDS.map((c) => c.name).join(', ')}`, span);
  }
  const lx = new Lexer(code, line, span.column + word.length);
  switch (spec.form) {
    case 'set':
      return parseSet(lx, span, source);
    case 'assert':
      return parseAssert(lx, span, source);
    case 'echo':
      return parseEcho(code, span, source);
    case 'command':
      return parseCommand(lx, spec, span, source);
  }
}

/** Parses `text` as one expression (the whole of it). Throws ScriptSyntaxError. */
export function parseExpression(text: string, line = 1): Expr {
  const lx = new Lexer(text, line);
  const e = expression(lx);
  const t = lx.peek();
  if (t.kind !== 'end') throw unexpected(t, 'the end of the expression');
  return e;
}

function parseSet(lx: Lexer, span: Span, source: string): SetStatement {
  const name = lx.next();
  if (name.kind === 'identifier') throw new ScriptSyntaxError('E_SYNTAX', `variables start with $: set $${name.text} = ...`, name.span);
  if (name.kind !== 'variable') throw new ScriptSyntaxError('E_SYNTAX', 'expected a variable to set: set $NAME = EXPR', name.span);
  const eq = lx.next();
  if (eq.kind !== 'operator' || eq.text !== '=') throw new ScriptSyntaxError('E_SYNTAX', `expected '=' after $${name.text}: set $${name.text} = EXPR`, eq.span);
  if (lx.peek().kind === 'end') throw new ScriptSyntaxError('E_SYNTAX', `expected a value after '='`, lx.peek().span);
  const value = expression(lx);
  const t = lx.peek();
  if (t.kind !== 'end') throw unexpected(t, 'the end of the line');
  return { kind: 'set', name: name.text, nameSpan: name.span, value, span, source };
}

function parseAssert(lx: Lexer, span: Span, source: string): AssertStatement {
  if (lx.peek().kind === 'end') throw new ScriptSyntaxError('E_ARGUMENTS', 'assert needs a condition: assert EXPR ["MESSAGE"]', lx.peek().span);
  const condition = expression(lx);
  const t = lx.peek();
  if (t.kind === 'end') return { kind: 'assert', condition, note: null, span, source };
  if (t.kind === 'operator') {
    if (t.text === '=') throw new ScriptSyntaxError('E_SYNTAX', "'=' sets a variable; compare with '=='", t.span);
    throw unexpected(t, 'an operator between two values, or a message');
  }
  if (t.kind === 'string') {
    lx.next();
    if (lx.peek().kind === 'end') return { kind: 'assert', condition, note: t.value as string, span, source };
    throw unexpected(lx.peek(), 'the end of the line after the message');
  }
  if (t.kind !== 'identifier') throw unexpected(t, 'an operator between two values, or a message');
  return { kind: 'assert', condition, note: lx.rest().text, span, source };
}

/** `echo` text: a whole `"..."` is unquoted (escapes \" \\ \n \t \$); `$name`, `$(expr)` interpolate; `$$` is a `$`. */
function parseEcho(code: string, span: Span, source: string): EchoStatement {
  let start = span.column + span.length;
  let end = code.length;
  while (start < end && /\s/.test(code[start]!)) start++;
  while (end > start && /\s/.test(code[end - 1]!)) end--;
  const quoted = end - start >= 2 && code[start] === '"' && code[end - 1] === '"';
  if (quoted) {
    start++;
    end--;
  }
  const parts: TextPart[] = [];
  let text = '';
  const flush = (): void => {
    if (text) parts.push({ kind: 'text', text });
    text = '';
  };
  for (let i = start; i < end; i++) {
    const ch = code[i]!;
    if (quoted && ch === '\\') {
      const decoded = ({ '"': '"', '\\': '\\', n: '\n', t: '\t', $: '$' } as Record<string, string>)[code[i + 1] ?? ''];
      if (decoded === undefined) throw new ScriptSyntaxError('E_TOKEN', `unknown escape '\\${code[i + 1] ?? ''}' (use \\" \\\\ \\n \\t \\$)`, { line: span.line, column: i, length: 2 });
      text += decoded;
      i++;
    } else if (ch === '$' && code[i + 1] === '$') {
      text += '$';
      i++;
    } else if (ch === '$' && code[i + 1] === '(') {
      const lx = new Lexer(code.slice(0, end), span.line, i + 2);
      if (lx.at(')')) throw new ScriptSyntaxError('E_SYNTAX', 'expected an expression inside $( )', lx.peek().span);
      const expr = expression(lx);
      const close = lx.next();
      if (close.kind !== 'operator' || close.text !== ')') throw unexpected(close, "')' to close $(");
      flush();
      parts.push({ kind: 'expr', expr });
      i = close.span.column;
    } else if (ch === '$' && /[A-Za-z_]/.test(code[i + 1] ?? '')) {
      let j = i + 1;
      while (j < end && /[A-Za-z0-9_]/.test(code[j]!)) j++;
      flush();
      parts.push({ kind: 'expr', expr: { kind: 'variable', name: code.slice(i + 1, j), span: { line: span.line, column: i, length: j - i } } });
      i = j - 1;
    } else text += ch;
  }
  flush();
  return { kind: 'echo', parts, span, source };
}

function parseCommand(lx: Lexer, spec: CommandSpec, span: Span, source: string): CommandStatement {
  const args: Expr[] = [];
  const options = new Map<string, OptionValue>();
  const pos = spec.positional;
  for (;;) {
    const t = lx.peek();
    if (t.kind === 'end') break;
    if (t.kind === 'option') {
      lx.next();
      const option = spec.options[t.text];
      if (!option) throw unknownOption(spec, t);
      if (options.has(t.text)) throw new ScriptSyntaxError('E_ARGUMENTS', `--${t.text} is given twice`, t.span);
      options.set(t.text, optionValue(lx, t, option));
      continue;
    }
    if (!pos || args.length >= pos.max) {
      const what = pos ? `at most ${pos.max} ${pos.name}` : 'no arguments';
      const opts = Object.keys(spec.options);
      throw new ScriptSyntaxError('E_ARGUMENTS', `${spec.name} takes ${what}${opts.length ? ` (options: ${opts.map((o) => `--${o}`).join(', ')})` : ''}: ${spec.usage}`, t.span);
    }
    if (pos.kind === 'word') {
      lx.next();
      if (t.kind !== 'identifier') throw unexpected(t, `a ${pos.name}`);
      const word = joinedWord(lx, t);
      args.push({ kind: 'string', value: word.text, span: word.span });
    } else {
      args.push(expression(lx));
    }
  }
  if (pos && args.length < pos.min) {
    throw new ScriptSyntaxError('E_ARGUMENTS', `${spec.name} needs ${pos.min === 1 ? `a ${pos.name}` : `${pos.min} ${pos.name}`}: ${spec.usage}`, lx.peek().span);
  }
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && !options.has(name)) {
      throw new ScriptSyntaxError('E_ARGUMENTS', `${spec.name} needs --${name} ${o.value ?? ''}`.trimEnd() + `: ${spec.usage}`, span);
    }
  }
  return { kind: 'command', name: spec.name, args, options, span, source };
}

/** `watch-cr3` typed as a help topic: identifier, '-', identifier with nothing between. */
function joinedWord(lx: Lexer, first: Token): { text: string; span: Span } {
  let text = first.text;
  let span = first.span;
  while (lx.peek().kind === 'operator' && lx.peek().text === '-' && !lx.spaceBefore()) {
    const dash = lx.next();
    const part = lx.next();
    if ((part.kind !== 'identifier' && part.kind !== 'number') || lx.spaceBefore()) throw unexpected(part, 'a word');
    text += '-' + part.text;
    span = joinSpans(span, joinSpans(dash.span, part.span));
  }
  return { text, span };
}

function optionValue(lx: Lexer, opt: Token, spec: OptionSpec): OptionValue {
  const equals = lx.at('=') && !lx.spaceBefore();
  if (equals) lx.next();
  if (spec.kind === 'flag') {
    if (equals) throw new ScriptSyntaxError('E_ARGUMENTS', `--${opt.text} takes no value`, opt.span);
    return { kind: 'flag', span: opt.span };
  }
  const t = lx.peek();
  if (t.kind === 'end' || t.kind === 'option') throw new ScriptSyntaxError('E_ARGUMENTS', `--${opt.text} needs a value (${spec.value ?? 'a number'})`, t.kind === 'end' ? opt.span : t.span);
  if (spec.kind === 'expr') {
    const expr = expression(lx);
    return { kind: 'expr', expr, span: joinSpans(opt.span, expr.span) };
  }
  lx.next();
  const word = t.kind === 'string' ? (t.value as string) : t.text;
  const meaning = (t.kind === 'identifier' || t.kind === 'string') && spec.words ? spec.words[word.toLowerCase()] : undefined;
  if (meaning === undefined) {
    const choices = [...new Set(Object.values(spec.words ?? {}))];
    throw new ScriptSyntaxError('E_ARGUMENTS', `--${opt.text}: expected ${choices.join(', ')}${spec.value ? ` (${spec.value})` : ''}, got '${word}'`, t.span);
  }
  return { kind: 'word', word: meaning, span: joinSpans(opt.span, t.span) };
}

function unknownOption(spec: CommandSpec, t: Token): ScriptSyntaxError {
  const names = Object.keys(spec.options);
  const hint = suggest(t.text, names);
  const known = names.length ? `its options are ${names.map((o) => `--${o}`).join(', ')}` : 'it takes no options';
  return new ScriptSyntaxError('E_UNKNOWN', `${spec.name} has no option --${t.text}${hint ? ` (did you mean --${hint}?)` : ''}: ${known}`, t.span);
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'end':
      return 'the end of the line';
    case 'option':
      return `option --${t.text}`;
    case 'variable':
      return `$${t.text}`;
    case 'string':
      return `the string ${t.text}`;
    default:
      return `'${t.text}'`;
  }
}

function unexpected(t: Token, expected: string): ScriptSyntaxError {
  return new ScriptSyntaxError('E_SYNTAX', `expected ${expected}, found ${describe(t)}`, t.span);
}

/** expression := binary(0); a greedy precedence climb over LEVELS. */
function expression(lx: Lexer): Expr {
  return binary(lx, 0);
}

function binary(lx: Lexer, level: number): Expr {
  if (level >= LEVELS.length) return unary(lx);
  const ops = LEVELS[level]!;
  let left = binary(lx, level + 1);
  for (;;) {
    const t = lx.peek();
    if (t.kind !== 'operator' || !(ops as readonly string[]).includes(t.text)) return left;
    lx.next();
    if (lx.peek().kind === 'end') throw new ScriptSyntaxError('E_SYNTAX', `expected a value after '${t.text}'`, lx.peek().span);
    const right = binary(lx, level + 1);
    left = { kind: 'binary', op: t.text as BinaryOperator, left, right, span: joinSpans(left.span, right.span) };
    if (level === COMPARISON_LEVEL) {
      const again = lx.peek();
      if (again.kind === 'operator' && (ops as readonly string[]).includes(again.text)) {
        throw new ScriptSyntaxError('E_SYNTAX', `comparisons do not chain: join them with && (a < b && b < c)`, again.span);
      }
      return left;
    }
  }
}

function unary(lx: Lexer): Expr {
  const t = lx.peek();
  if (t.kind === 'operator' && (t.text === '!' || t.text === '~' || t.text === '-')) {
    lx.next();
    if (lx.peek().kind === 'end') throw new ScriptSyntaxError('E_SYNTAX', `expected a value after '${t.text}'`, lx.peek().span);
    const operand = unary(lx);
    return { kind: 'unary', op: t.text, operand, span: joinSpans(t.span, operand.span) };
  }
  return primary(lx);
}

function primary(lx: Lexer): Expr {
  const t = lx.next();
  switch (t.kind) {
    case 'number':
      return { kind: 'number', value: t.value as bigint, span: t.span };
    case 'string':
      return { kind: 'string', value: t.value as string, span: t.span };
    case 'variable':
      return { kind: 'variable', name: t.text, span: t.span };
    case 'identifier': {
      if (t.text === 'true' || t.text === 'false') return { kind: 'boolean', value: t.text === 'true', span: t.span };
      const fn = findFunction(t.text);
      if (lx.at('(') && (fn || !lx.spaceBefore())) return call(lx, t);
      if (fn) throw new ScriptSyntaxError('E_ARGUMENTS', `${fn.name} is a function: ${fn.usage}`, t.span);
      return { kind: 'symbol', name: t.text, span: t.span };
    }
    case 'operator':
      if (t.text === '(') {
        if (lx.at(')')) throw new ScriptSyntaxError('E_SYNTAX', "expected a value inside '( )'", lx.peek().span);
        const inner = expression(lx);
        const close = lx.next();
        if (close.kind !== 'operator' || close.text !== ')') throw unexpected(close, `')' to close the '(' at column ${t.span.column + 1}`);
        return { ...inner, span: joinSpans(t.span, close.span) };
      }
      throw unexpected(t, 'a value (a number, a $variable, a symbol or a function call)');
    default:
      throw unexpected(t, 'a value (a number, a $variable, a symbol or a function call)');
  }
}

function call(lx: Lexer, name: Token): Expr {
  const fn = findFunction(name.text);
  if (!fn) {
    const hint = suggest(name.text, FUNCTIONS.map((f) => f.name));
    throw new ScriptSyntaxError('E_UNKNOWN', `unknown function '${name.text}'${hint ? ` (did you mean ${hint}?)` : ''}: the functions are ${FUNCTIONS.map((f) => f.name).join(', ')}`, name.span);
  }
  lx.next(); // (
  const args: Expr[] = [];
  if (!lx.at(')')) {
    for (;;) {
      if (lx.peek().kind === 'end') break;
      args.push(expression(lx));
      if (!lx.at(',')) break;
      lx.next();
    }
  }
  const close = lx.next();
  if (close.kind !== 'operator' || close.text !== ')') throw unexpected(close, `',' or ')' in the call of ${fn.name}`);
  const span = joinSpans(name.span, close.span);
  if (args.length < fn.required || args.length > fn.params.length) {
    throw new ScriptSyntaxError('E_ARGUMENTS', `${fn.name} takes ${fn.required === fn.params.length ? fn.required : `${fn.required} to ${fn.params.length}`} argument${fn.params.length === 1 ? '' : 's'}: ${fn.usage}`, span);
  }
  return { kind: 'call', name: fn.name, args, span };
}
