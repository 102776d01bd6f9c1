/**
 * The lexer of one script line: numbers (0x hex or decimal, `_` between digits), `"strings"`,
 * `$variables`, identifiers (commands, functions, symbols), `--options`, and operators. It reads
 * on demand, so a parser can stop after an expression and take the rest of the line as text.
 */
import { ScriptSyntaxError } from './errors.js';
import type { Span } from './span.js';

/** What a token is. */
export type TokenKind = 'number' | 'string' | 'variable' | 'identifier' | 'option' | 'operator' | 'end';

/** One token: its kind, its text as written, its value, and where it is. */
export interface Token {
  kind: TokenKind;
  /** The text as written (for an operator, the operator; for an option, the name without `--`; for a variable, the name without `$`). */
  text: string;
  /** The number of a number token, the decoded contents of a string token. */
  value?: bigint | string;
  span: Span;
}

/** Operators, longest first so that `<<` wins over `<`. */
const OPERATORS = ['<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '+', '-', '*', '/', '%', '&', '|', '^', '~', '!', '<', '>', '(', ')', ',', '='];

const U64_MAX = (1n << 64n) - 1n;
const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_.]/;
const WORD_PART = /[A-Za-z0-9_]/;

/**
 * The column where a `#` comment starts in `line` (outside strings), or the line's length when
 * there is none.
 */
export function commentStart(line: string): number {
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '#') return i;
  }
  return line.length;
}

/** Reads the tokens of `text` (one line, comment already cut) from column `start`. */
export class Lexer {
  private pos: number;
  private peeked: Token | null = null;

  constructor(
    readonly text: string,
    readonly line: number,
    start = 0,
  ) {
    this.pos = start;
  }

  /** The column just after the last token taken (or the start). */
  get offset(): number {
    return this.peeked ? this.peeked.span.column : this.pos;
  }

  /** The next token, without taking it. Throws ScriptSyntaxError (E_TOKEN) for what it cannot read. */
  peek(): Token {
    this.peeked ??= this.read();
    return this.peeked;
  }

  /** Takes the next token. */
  next(): Token {
    const t = this.peek();
    this.peeked = null;
    return t;
  }

  /** True when the next token is the operator `op`. */
  at(op: string): boolean {
    const t = this.peek();
    return t.kind === 'operator' && t.text === op;
  }

  /** True when whitespace separates the last token taken from the next one. */
  spaceBefore(): boolean {
    const column = this.offset;
    return column > 0 && /\s/.test(this.text[column - 1] ?? '');
  }

  /** The rest of the line from the next token on (trimmed), and its span; takes it all. */
  rest(): { text: string; span: Span } {
    const from = this.offset;
    this.peeked = null;
    const raw = this.text.slice(from);
    const lead = raw.length - raw.trimStart().length;
    const text = raw.trim();
    this.pos = this.text.length;
    return { text, span: { line: this.line, column: from + lead, length: Math.max(1, text.length) } };
  }

  private span(column: number, length: number): Span {
    return { line: this.line, column, length };
  }

  private fail(message: string, column: number, length = 1): never {
    throw new ScriptSyntaxError('E_TOKEN', message, this.span(column, length));
  }

  private read(): Token {
    const s = this.text;
    while (this.pos < s.length && /\s/.test(s[this.pos]!)) this.pos++;
    const start = this.pos;
    if (start >= s.length) return { kind: 'end', text: '', span: this.span(s.length, 1) };
    const ch = s[start]!;
    if (/[0-9]/.test(ch)) return this.number(start);
    if (ch === '"') return this.string(start);
    if (ch === '$') {
      let end = start + 1;
      if (end >= s.length || !IDENT_START.test(s[end]!)) this.fail("'$' starts a variable name, such as $rip or $stack", start);
      while (end < s.length && WORD_PART.test(s[end]!)) end++;
      this.pos = end;
      return { kind: 'variable', text: s.slice(start + 1, end), span: this.span(start, end - start) };
    }
    if (IDENT_START.test(ch)) {
      let end = start + 1;
      while (end < s.length && IDENT_PART.test(s[end]!)) end++;
      this.pos = end;
      return { kind: 'identifier', text: s.slice(start, end), span: this.span(start, end - start) };
    }
    const wordStart = start === 0 || /\s/.test(s[start - 1]!);
    if (wordStart && s.startsWith('--', start) && /[a-z]/i.test(s[start + 2] ?? '')) {
      let end = start + 2;
      while (end < s.length && /[A-Za-z0-9-]/.test(s[end]!)) end++;
      this.pos = end;
      return { kind: 'option', text: s.slice(start + 2, end), span: this.span(start, end - start) };
    }
    const op = OPERATORS.find((o) => s.startsWith(o, start));
    if (op) {
      this.pos = start + op.length;
      return { kind: 'operator', text: op, span: this.span(start, op.length) };
    }
    if (ch === "'") this.fail('strings are written in double quotes: "write"', start);
    return this.fail(`unexpected character '${ch}'`, start);
  }

  private number(start: number): Token {
    const s = this.text;
    let end = start;
    while (end < s.length && /[A-Za-z0-9_]/.test(s[end]!)) end++;
    const written = s.slice(start, end);
    const digits = written.replace(/_/g, '');
    this.pos = end;
    if (!/^(?:0x[0-9a-f]+|[0-9]+)$/i.test(digits) || written.endsWith('_') || /__/.test(written) || /^0x_/i.test(written)) {
      this.fail(`'${written}' is not a number: write hex with 0x (0xffff8000) or decimal (4096)`, start, end - start);
    }
    const value = BigInt(digits);
    if (value > U64_MAX) this.fail(`${written} does not fit in 64 bits`, start, end - start);
    return { kind: 'number', text: written, value, span: this.span(start, end - start) };
  }

  private string(start: number): Token {
    const s = this.text;
    let out = '';
    let i = start + 1;
    for (; i < s.length; i++) {
      const ch = s[i]!;
      if (ch === '"') {
        this.pos = i + 1;
        return { kind: 'string', text: s.slice(start, i + 1), value: out, span: this.span(start, i + 1 - start) };
      }
      if (ch === '\\') {
        const esc = s[++i];
        const decoded = esc === undefined ? undefined : ({ '"': '"', '\\': '\\', n: '\n', t: '\t', $: '$' } as Record<string, string>)[esc];
        if (decoded === undefined) this.fail(`unknown escape '\\${esc ?? ''}' (use \\" \\\\ \\n \\t \\$)`, i - 1, 2);
        out += decoded;
      } else out += ch;
    }
    return this.fail('this string has no closing "', start, s.length - start);
  }
}
