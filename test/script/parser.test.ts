/**
 * The lexer and the parser: tokens, statements as compact trees (golden strings), precedence and
 * greedy arguments, echo interpolation, and every kind of syntax error with its caret.
 */
import { describe, expect, it } from 'vitest';
import type { Expr, Statement } from '../../src/script/ast.js';
import { ScriptSyntaxError } from '../../src/script/errors.js';
import { commentStart, Lexer, type Token } from '../../src/script/lexer.js';
import { parseExpression, parseLine, parseScript } from '../../src/script/parser.js';
import { reportFailure } from '../../src/script/report.js';

/** An expression as a compact S-expression: numbers in hex, calls as name(args). */
function show(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return `0x${e.value.toString(16)}`;
    case 'string':
      return JSON.stringify(e.value);
    case 'boolean':
      return String(e.value);
    case 'variable':
      return `$${e.name}`;
    case 'symbol':
      return e.name;
    case 'call':
      return `${e.name}(${e.args.map(show).join(', ')})`;
    case 'unary':
      return `(${e.op} ${show(e.operand)})`;
    case 'binary':
      return `(${e.op} ${show(e.left)} ${show(e.right)})`;
  }
}

/** A statement as one golden line. */
function showStatement(s: Statement | null): string {
  if (s === null) return 'nothing';
  switch (s.kind) {
    case 'set':
      return `set $${s.name} = ${show(s.value)}`;
    case 'assert':
      return `assert ${show(s.condition)}${s.note === null ? '' : ` note=${JSON.stringify(s.note)}`}`;
    case 'echo':
      return `echo ${s.parts.map((p) => (p.kind === 'text' ? JSON.stringify(p.text) : `{${show(p.expr)}}`)).join(' ')}`;
    case 'command': {
      const opts = [...s.options].map(([k, v]) => `--${k}${v.kind === 'expr' ? `=${show(v.expr)}` : v.kind === 'word' ? `=${v.word}` : ''}`);
      return [s.name, ...s.args.map(show), ...opts].join(' ');
    }
  }
}

function tokens(text: string): string[] {
  const lx = new Lexer(text, 1);
  const out: string[] = [];
  for (let t: Token = lx.next(); t.kind !== 'end'; t = lx.next()) out.push(`${t.kind}:${t.text}@${t.span.column}+${t.span.length}`);
  return out;
}

/** The syntax error of `line`, told as `pagewalk run` tells it. */
function syntaxError(line: string): string[] {
  try {
    parseLine(line, 4);
  } catch (e) {
    expect(e).toBeInstanceOf(ScriptSyntaxError);
    return reportFailure(e, 's.pw', 4, line).lines;
  }
  throw new Error(`'${line}' parsed`);
}

describe('lexer', () => {
  it('reads numbers, variables, identifiers, strings, options and operators with their spans', () => {
    expect(tokens('walk $rsp+0x1_000 --access "w x" kmain.cold<<2')).toEqual([
      'identifier:walk@0+4',
      'variable:rsp@5+4',
      'operator:+@9+1',
      'number:0x1_000@10+7',
      'option:access@18+8',
      'string:"w x"@27+5',
      'identifier:kmain.cold@33+10',
      'operator:<<@43+2',
      'number:2@45+1',
    ]);
  });

  it('takes the longest operator and tells an option from two minus signs', () => {
    expect(tokens('a<=b>>c!=d&&e||!f')).toEqual([
      'identifier:a@0+1', 'operator:<=@1+2', 'identifier:b@3+1', 'operator:>>@4+2', 'identifier:c@6+1', 'operator:!=@7+2',
      'identifier:d@9+1', 'operator:&&@10+2', 'identifier:e@12+1', 'operator:||@13+2', 'operator:!@15+1', 'identifier:f@16+1',
    ]);
    expect(tokens('$a--b')).toEqual(['variable:a@0+2', 'operator:-@2+1', 'operator:-@3+1', 'identifier:b@4+1']);
  });

  it('decodes string escapes and gives number values as bigints', () => {
    const lx = new Lexer('"a\\"b\\\\c\\n\\$" 0xFFFFFFFFFFFFFFFF 18446744073709551615', 1);
    expect(lx.next().value).toBe('a"b\\c\n$');
    expect(lx.next().value).toBe(0xffffffffffffffffn);
    expect(lx.next().value).toBe(0xffffffffffffffffn);
  });

  it('finds the comment outside strings', () => {
    expect(commentStart('walk $rip # the next instruction')).toBe(10);
    expect(commentStart('echo "issue #5" # note')).toBe(16);
    expect(commentStart('echo "a \\" # b"')).toBe(15);
    expect(commentStart('regs')).toBe(4);
  });

  it('rejects what it cannot read, pointing at it', () => {
    const at = (text: string): [string, number, number] => {
      try {
        tokens(text);
      } catch (e) {
        const err = e as ScriptSyntaxError;
        return [err.message, err.span.column, err.span.length];
      }
      throw new Error('no error');
    };
    expect(at('1 + 0x')).toEqual(["'0x' is not a number: write hex with 0x (0xffff8000) or decimal (4096)", 4, 2]);
    expect(at('0x1__0')).toEqual(["'0x1__0' is not a number: write hex with 0x (0xffff8000) or decimal (4096)", 0, 6]);
    expect(at('0x10000000000000000')).toEqual(['0x10000000000000000 does not fit in 64 bits', 0, 19]);
    expect(at('"open')).toEqual(['this string has no closing "', 0, 5]);
    expect(at('"\\q"')).toEqual(["unknown escape '\\q' (use \\\" \\\\ \\n \\t \\$)", 1, 2]);
    expect(at('$ x')).toEqual(["'$' starts a variable name, such as $rip or $stack", 0, 1]);
    expect(at('a @ b')).toEqual(["unexpected character '@'", 2, 1]);
    expect(at("'w'")).toEqual(['strings are written in double quotes: "write"', 0, 1]);
  });
});

describe('expressions', () => {
  it.each([
    ['1 + 2 * 3', '(+ 0x1 (* 0x2 0x3))'],
    ['(1 + 2) * 3', '(* (+ 0x1 0x2) 0x3)'],
    ['$cr4 & 0x20 == 0x20', '(== (& $cr4 0x20) 0x20)'],
    ['$a | $b ^ $c & $d', '(| $a (^ $b (& $c $d)))'],
    ['1 << 2 + 3', '(<< 0x1 (+ 0x2 0x3))'],
    ['a - b - c', '(- (- a b) c)'],
    ['!mapped($rsp) || pa($rsp) != 0 && true', '(|| (! mapped($rsp)) (&& (!= pa($rsp) 0x0) true))'],
    ['~0 >> 12', '(>> (~ 0x0) 0xc)'],
    ['--1', '(- (- 0x1))'],
    ['faults($rsp - 8, "write", "user")', 'faults((- $rsp 0x8), "write", "user")'],
    ['verdict ( $new )', 'verdict($new)'],
    ['kmain+0x10 >= _start', '(>= (+ kmain 0x10) _start)'],
    ['10 % 4 / 2', '(/ (% 0xa 0x4) 0x2)'],
  ])('%s', (text, tree) => {
    expect(show(parseExpression(text))).toBe(tree);
  });

  it('spans cover the text of each node, parentheses included', () => {
    const e = parseExpression('pa($rsp) == (0x7ff0000)');
    expect(e.span).toEqual({ line: 1, column: 0, length: 23 });
    expect(e.kind === 'binary' && e.right.span).toEqual({ line: 1, column: 12, length: 11 });
  });
});

describe('statements', () => {
  it.each([
    ['walk $rip', 'walk $rip'],
    ['walk $rsp - 8 $rip', 'walk (- $rsp 0x8) $rip'],
    ['walk $rsp -8', 'walk (- $rsp 0x8)'],
    ['walk (0x1000) (0x2000)', 'walk 0x1000 0x2000'],
    ['walk 0x1000 --access w --user --cr3 $new', 'walk 0x1000 --access=write --user --cr3=$new'],
    ['walk 0x1000 --access=exec', 'walk 0x1000 --access=exec'],
    ['  map --from 0xffff800000000000 --to 0xffff8000ffffffff  # the HHDM', 'map --from=0xffff800000000000 --to=0xffff8000ffffffff'],
    ['diff --against $loader', 'diff --against=$loader'],
    ['check', 'check'],
    ['check --cr3 $rax & ~0xfff', 'check --cr3=(& $rax (~ 0xfff))'],
    ['fault --cr2 0xdead000 --error-code 0x2', 'fault --cr2=0xdead000 --error-code=0x2'],
    ['regs', 'regs'],
    ['step', 'step'],
    ['step 3', 'step 0x3'],
    ['cont', 'cont'],
    ['break kmain cr3_write', 'break kmain cr3_write'],
    ['delete', 'delete'],
    ['watch-cr3 --count 2 --stop-on every', 'watch-cr3 --count=0x2 --stop-on=every'],
    ['help watch-cr3', 'help "watch-cr3"'],
    ['set $new = $rax & ~0xfff', 'set $new = (& $rax (~ 0xfff))'],
    ['assert mapped($rsp)', 'assert mapped($rsp)'],
    ['assert mapped($rsp) "the stack is mapped"', 'assert mapped($rsp) note="the stack is mapped"'],
    ['assert pa($rip) == 0x201234 the kernel is where it was linked', 'assert (== pa($rip) 0x201234) note="the kernel is where it was linked"'],
    ['echo rip=$rip pa=$(pa($rip)) cost $$5', 'echo "rip=" {$rip} " pa=" {pa($rip)} " cost $5"'],
    ['echo "  # kept, \\"quoted\\" $x"  # dropped', 'echo "  # kept, \\"quoted\\" " {$x}'],
    ['echo', 'echo '],
    ['assert(mapped($rsp))', 'assert mapped($rsp)'],
    ['walk$rip', 'walk $rip'],
    ['# a comment', 'nothing'],
    ['   ', 'nothing'],
  ])('%s', (line, golden) => {
    expect(showStatement(parseLine(line))).toBe(golden);
  });

  it('parses a script line by line, keeping line numbers and every syntax error', () => {
    const s = parseScript('# header\nregs\n\nwalk $rip +\nset $x = 1\r\nwakl\n');
    expect(s.statements.map((x) => [x.span.line, showStatement(x)])).toEqual([
      [2, 'regs'],
      [5, 'set $x = 0x1'],
    ]);
    expect(s.errors.map((e) => [e.span.line, e.code])).toEqual([
      [4, 'E_SYNTAX'],
      [6, 'E_UNKNOWN'],
    ]);
    expect(s.lines).toHaveLength(6);
  });
});

describe('syntax errors, as run prints them', () => {
  it.each<[string, string[]]>([
    ['walk $rsp +', ["s.pw:4:12: syntax error: expected a value after '+'", '   4 | walk $rsp +', '     |            ^']],
    [
      'wakl $rip',
      [
        "s.pw:4:1: syntax error: unknown command 'wakl' (did you mean walk?): the commands are walk, map, diff, check, fault, regs, step, cont, break, delete, watch-cr3, set, echo, assert, help",
        '   4 | wakl $rip',
        '     | ^^^^',
      ],
    ],
    [
      'walk $rip --acess x',
      ['s.pw:4:11: syntax error: walk has no option --acess (did you mean --access?): its options are --access, --user, --cr3', '   4 | walk $rip --acess x', '     |           ^^^^^^^'],
    ],
    ['walk $rip --access rw', ["s.pw:4:20: syntax error: --access: expected read, write, exec (r|w|x), got 'rw'", '   4 | walk $rip --access rw', '     |                    ^^']],
    ['walk', ['s.pw:4:5: syntax error: walk needs a VA: walk VA... [--access r|w|x] [--user] [--cr3 CR3]', '   4 | walk', '     |     ^']],
    ['regs now', ['s.pw:4:6: syntax error: regs takes no arguments: regs', '   4 | regs now', '     |      ^^^']],
    ['step 1 2', ['s.pw:4:8: syntax error: step takes at most 1 N: step [N]', '   4 | step 1 2', '     |        ^']],
    ['map --from', ['s.pw:4:5: syntax error: --from needs a value (VA)', '   4 | map --from', '     |     ^^^^^^']],
    ['walk 1 --user=yes', ['s.pw:4:8: syntax error: --user takes no value', '   4 | walk 1 --user=yes', '     |        ^^^^^^']],
    ['walk 1 --cr3 1 --cr3 2', ['s.pw:4:16: syntax error: --cr3 is given twice', '   4 | walk 1 --cr3 1 --cr3 2', '     |                ^^^^^']],
    ['diff', ['s.pw:4:1: syntax error: diff needs --against CR3: diff --against CR3 [--cr3 CR3] [--from VA] [--to VA]', '   4 | diff', '     | ^^^^']],
    ['set rip = 1', ['s.pw:4:5: syntax error: variables start with $: set $rip = ...', '   4 | set rip = 1', '     |     ^^^']],
    ['set $x 1', ["s.pw:4:8: syntax error: expected '=' after $x: set $x = EXPR", '   4 | set $x 1', '     |        ^']],
    ['$x = 1', ['s.pw:4:1: syntax error: a line starts with a command; to give $x a value write: set $x = ...', '   4 | $x = 1', '     | ^^']],
    ['(walk)', ['s.pw:4:1: syntax error: a line starts with a command such as walk, map or assert (help lists them)', '   4 | (walk)', '     | ^']],
    ['walk-x 1', ["s.pw:4:1: syntax error: unknown command 'walk-x': the commands are walk, map, diff, check, fault, regs, step, cont, break, delete, watch-cr3, set, echo, assert, help", '   4 | walk-x 1', '     | ^^^^^^']],
    ['assert $x = 5', ["s.pw:4:11: syntax error: '=' sets a variable; compare with '=='", '   4 | assert $x = 5', '     |           ^']],
    ['assert', ['s.pw:4:7: syntax error: assert needs a condition: assert EXPR ["MESSAGE"]', '   4 | assert', '     |       ^']],
    ['assert 1 < 2 < 3', ['s.pw:4:14: syntax error: comparisons do not chain: join them with && (a < b && b < c)', '   4 | assert 1 < 2 < 3', '     |              ^']],
    ['assert (1 == 1', ["s.pw:4:15: syntax error: expected ')' to close the '(' at column 8, found the end of the line", '   4 | assert (1 == 1', '     |               ^']],
    ['walk mapped', ['s.pw:4:6: syntax error: mapped is a function: mapped(VA)', '   4 | walk mapped', '     |      ^^^^^^']],
    ['walk pa($rip, 3)', ['s.pw:4:6: syntax error: pa takes 1 argument: pa(VA)', '   4 | walk pa($rip, 3)', '     |      ^^^^^^^^^^^']],
    ['assert faults($rsp)', ['s.pw:4:8: syntax error: faults takes 2 to 3 arguments: faults(VA, "read"|"write"|"exec" [, "user"])', '   4 | assert faults($rsp)', '     |        ^^^^^^^^^^^^']],
    ['walk mapd(1)', ["s.pw:4:6: syntax error: unknown function 'mapd' (did you mean mapped?): the functions are mapped, pa, faults, verdict, writable, executable, user", '   4 | walk mapd(1)', '     |      ^^^^']],
    ['walk 0x12g4', ["s.pw:4:6: syntax error: '0x12g4' is not a number: write hex with 0x (0xffff8000) or decimal (4096)", '   4 | walk 0x12g4', '     |      ^^^^^^']],
    ['echo $(1 +', ["s.pw:4:11: syntax error: expected a value after '+'", '   4 | echo $(1 +', '     |           ^']],
    ['echo $(1', ["s.pw:4:9: syntax error: expected ')' to close $(, found the end of the line", '   4 | echo $(1', '     |         ^']],
    ['\twalk +', ["s.pw:4:7: syntax error: expected a value (a number, a $variable, a symbol or a function call), found '+'", '   4 | \twalk +', '     | \t     ^']],
  ])('%s', (line, told) => {
    expect(syntaxError(line)).toEqual(told);
  });
});
