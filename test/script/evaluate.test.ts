/**
 * Expressions: 64-bit unsigned arithmetic (held against BigInt modulo 2^64 on random operands),
 * comparisons, short-circuit logic, type errors with the span they blame, and the trace a failed
 * assertion prints.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScriptError } from '../../src/script/errors.js';
import { evaluate, type EvalEnv, type TraceEntry } from '../../src/script/evaluate.js';
import { parseExpression } from '../../src/script/parser.js';
import { quoteValue, showValue, type Value } from '../../src/script/values.js';

const M = 1n << 64n;

/** Variables $a..$z from `vars`; `double(x)` and `kind()` as functions; symbol `kmain`; calls are logged. */
function env(vars: Record<string, Value> = {}, calls: string[] = []): EvalEnv {
  return {
    variable(name, span) {
      const v = vars[name];
      if (v === undefined) throw new ScriptError('E_NAME', `no variable $${name}`, span);
      return v;
    },
    symbol(name, span) {
      if (name === 'kmain') return 0xffffffff80001000n;
      throw new ScriptError('E_NAME', `no symbol '${name}'`, span);
    },
    async call(name, args) {
      calls.push(`${name}(${args.map(quoteValue).join(', ')})`);
      if (name === 'pa') return ((args[0] as bigint) & 0xfffn) | 0x200000n;
      if (name === 'verdict') return 'safe';
      return true;
    },
  };
}

const run = (text: string, vars: Record<string, Value> = {}): Promise<Value> => evaluate(parseExpression(text), env(vars));

async function failure(text: string, vars: Record<string, Value> = {}): Promise<[string, string, string]> {
  try {
    await run(text, vars);
  } catch (e) {
    const err = e as ScriptError;
    return [err.code, err.message, text.slice(err.span.column, err.span.column + err.span.length)];
  }
  throw new Error(`${text} evaluated`);
}

describe('arithmetic modulo 2^64', () => {
  it.each<[string, Value]>([
    ['0xffffffffffffffff + 2', 1n],
    ['0 - 1', 0xffffffffffffffffn],
    ['-1', 0xffffffffffffffffn],
    ['~0', 0xffffffffffffffffn],
    ['~0xfff & 0xffff800000123456', 0xffff800000123000n],
    ['1 << 63', 0x8000000000000000n],
    ['1 << 64', 0n],
    ['0x8000000000000000 >> 63', 1n],
    ['~0 >> 100', 0n],
    ['0x100000000 * 0x100000000', 0n],
    ['17 / 5', 3n],
    ['17 % 5', 2n],
    ['0xf0 | 0x0f ^ 0xff', 0xf0n],
    ['kmain + 0x10', 0xffffffff80001010n],
    ['$rsp - 8', 0xffff800007ffff78n],
  ])('%s = %s', async (text, value) => {
    expect(await run(text, { rsp: 0xffff800007ffff80n })).toBe(value);
  });

  it('agrees with BigInt arithmetic reduced to 64 bits', async () => {
    const u64 = fc.bigInt({ min: 0n, max: M - 1n });
    const ops: [string, (a: bigint, b: bigint) => bigint][] = [
      ['+', (a, b) => (a + b) % M],
      ['-', (a, b) => (((a - b) % M) + M) % M],
      ['*', (a, b) => (a * b) % M],
      ['&', (a, b) => a & b],
      ['|', (a, b) => a | b],
      ['^', (a, b) => a ^ b],
    ];
    await fc.assert(
      fc.asyncProperty(u64, u64, fc.constantFrom(...ops), fc.integer({ min: 0, max: 70 }), async (a, b, [op, f], shift) => {
        const vars = { a, b };
        expect(await run(`$a ${op} $b`, vars)).toBe(f(a, b));
        expect(await run(`$a << ${shift}`, vars)).toBe(shift >= 64 ? 0n : (a << BigInt(shift)) % M);
        expect(await run(`$a >> ${shift}`, vars)).toBe(shift >= 64 ? 0n : a >> BigInt(shift));
        expect(await run('$a < $b', vars)).toBe(a < b);
        if (b !== 0n) expect(await run('$a / $b * $b + $a % $b', vars)).toBe(a);
      }),
      { numRuns: 300 },
    );
  });
});

describe('comparisons and logic', () => {
  it.each<[string, Value]>([
    ['1 == 1', true],
    ['"safe" == "safe"', true],
    ['"safe" != "fault"', true],
    ['true == !false', true],
    ['2 <= 2 && 3 > 2 && (1 >= 2) == false', true],
    ['0 || 5', true],
    ['!0', true],
    ['!7', false],
    ['verdict(1) == "safe"', true],
  ])('%s = %s', async (text, value) => {
    expect(await run(text)).toBe(value);
  });

  it('short-circuits && and || (the right side is not evaluated, not even its errors)', async () => {
    const calls: string[] = [];
    expect(await evaluate(parseExpression('false && pa($nope)'), env({}, calls))).toBe(false);
    expect(await evaluate(parseExpression('1 || pa($nope)'), env({}, calls))).toBe(true);
    expect(await evaluate(parseExpression('true && pa(0x1234) == 0x200234'), env({}, calls))).toBe(true);
    expect(calls).toEqual(['pa(0x1234)']);
  });
});

describe('errors blame the right part', () => {
  it.each<[string, [string, string, string]]>([
    ['"a" + 1', ['E_TYPE', "'+' needs numbers, not a string (\"a\")", '"a"']],
    ['1 < true', ['E_TYPE', "'<' needs numbers, not a boolean (true)", 'true']],
    ['verdict(1) == 1', ['E_TYPE', "'==' compares values of one type, not a string with a number", 'verdict(1) == 1']],
    ['!"x"', ['E_TYPE', '\'!\' needs true/false or a number, not a string ("x")', '"x"']],
    ['1 && "x"', ['E_TYPE', '\'&&\' needs true/false or a number, not a string ("x")', '"x"']],
    ['~true', ['E_TYPE', "'~' needs numbers, not a boolean (true)", 'true']],
    ['5 / (2 - 2)', ['E_VALUE', 'division by zero: the divisor is 0', '(2 - 2)']],
    ['5 % 0', ['E_VALUE', 'division by zero: the modulus is 0', '0']],
    ['$nope + 1', ['E_NAME', 'no variable $nope', '$nope']],
    ['start_kernel', ['E_NAME', "no symbol 'start_kernel'", 'start_kernel']],
  ])('%s', async (text, expected) => {
    expect(await failure(text)).toEqual(expected);
  });
});

describe('the trace of an assertion', () => {
  it('records variables, symbols, calls and compared operands in evaluation order, not literals', async () => {
    const expr = parseExpression('pa($rsp - 8) == kmain + 0x10 && mapped($rip)');
    const trace: TraceEntry[] = [];
    await evaluate(expr, env({ rsp: 0x7ff8n, rip: 1n }), trace);
    const text = 'pa($rsp - 8) == kmain + 0x10 && mapped($rip)';
    expect(trace.map((t) => `${text.slice(t.expr.span.column, t.expr.span.column + t.expr.span.length)} = ${quoteValue(t.value)}`)).toEqual([
      '$rsp = 0x7ff8',
      'pa($rsp - 8) = 0x200ff0',
      'kmain = 0xffffffff80001000',
      'kmain + 0x10 = 0xffffffff80001010',
    ]);
  });

  it('prints values the way scripts show them', () => {
    expect(showValue(0xffff800000000000n)).toBe('0xffff800000000000');
    expect(showValue(true)).toBe('true');
    expect(showValue('safe')).toBe('safe');
    expect(quoteValue('safe')).toBe('"safe"');
  });
});
