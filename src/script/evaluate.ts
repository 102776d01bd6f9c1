/**
 * Evaluating expressions: 64-bit unsigned arithmetic, comparisons, short-circuit && and ||, and
 * calls that query the target (asynchronous). Evaluation can record the value of each variable,
 * symbol, call and compared operand, which is what a failed `assert` prints.
 */
import type { Expr } from './ast.js';
import { ScriptError } from './errors.js';
import type { Span } from './span.js';
import { quoteValue, typeName, U64_MASK, type Value } from './values.js';

/** What expressions are evaluated against. */
export interface EvalEnv {
  /** The value of `$name`; throws ScriptError (E_NAME) when there is none. */
  variable(name: string, span: Span): Value;
  /** The address of a symbol; throws ScriptError (E_NAME) when unknown or without --elf. */
  symbol(name: string, span: Span): bigint;
  /** Calls a function of the language on evaluated arguments. */
  call(name: string, args: readonly Value[], spans: readonly Span[], span: Span): Promise<Value>;
}

/** One recorded sub-expression and its value. */
export interface TraceEntry {
  expr: Expr;
  value: Value;
}

/** Evaluates `expr`; with `trace`, records the values an assertion report shows. Throws ScriptError. */
export async function evaluate(expr: Expr, env: EvalEnv, trace?: TraceEntry[]): Promise<Value> {
  const v = await evaluateNode(expr, env, trace);
  if (trace && (expr.kind === 'variable' || expr.kind === 'symbol' || expr.kind === 'call')) trace.push({ expr, value: v });
  return v;
}

/** Evaluates `expr` and requires a number; `what` names it in the error (e.g. "--cr3"). */
export async function evaluateNumber(expr: Expr, env: EvalEnv, what: string): Promise<bigint> {
  const v = await evaluate(expr, env);
  if (typeof v !== 'bigint') throw new ScriptError('E_TYPE', `${what} must be a number, not ${typeName(v)} (${quoteValue(v)})`, expr.span);
  return v;
}

/** True or false for && || ! and assert: booleans as they are, numbers when non-zero. Strings are a type error. */
export function truth(v: Value, span: Span, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v !== 0n;
  throw new ScriptError('E_TYPE', `${what} needs true/false or a number, not a string ("${v}")`, span);
}

function number(v: Value, span: Span, op: string): bigint {
  if (typeof v !== 'bigint') throw new ScriptError('E_TYPE', `'${op}' needs numbers, not ${typeName(v)} (${typeof v === 'string' ? `"${v}"` : v})`, span);
  return v;
}

async function evaluateNode(e: Expr, env: EvalEnv, trace?: TraceEntry[]): Promise<Value> {
  switch (e.kind) {
    case 'number':
    case 'string':
    case 'boolean':
      return e.value;
    case 'variable':
      return env.variable(e.name, e.span);
    case 'symbol':
      return env.symbol(e.name, e.span);
    case 'call': {
      const args: Value[] = [];
      for (const a of e.args) args.push(await evaluate(a, env, trace));
      return env.call(e.name, args, e.args.map((a) => a.span), e.span);
    }
    case 'unary': {
      const v = await evaluate(e.operand, env, trace);
      if (e.op === '!') return !truth(v, e.operand.span, "'!'");
      const n = number(v, e.operand.span, e.op);
      return e.op === '~' ? ~n & U64_MASK : -n & U64_MASK;
    }
    case 'binary': {
      if (e.op === '&&' || e.op === '||') {
        const left = truth(await evaluate(e.left, env, trace), e.left.span, `'${e.op}'`);
        if (e.op === '&&' ? !left : left) return left;
        return truth(await evaluate(e.right, env, trace), e.right.span, `'${e.op}'`);
      }
      const left = await evaluate(e.left, env, trace);
      const right = await evaluate(e.right, env, trace);
      if (['==', '!=', '<', '<=', '>', '>='].includes(e.op) && trace) {
        for (const side of [e.left, e.right]) if (side.kind === 'binary' || side.kind === 'unary') trace.push({ expr: side, value: side === e.left ? left : right });
      }
      if (e.op === '==' || e.op === '!=') {
        if (typeof left !== typeof right) {
          throw new ScriptError('E_TYPE', `'${e.op}' compares values of one type, not ${typeName(left)} with ${typeName(right)}`, e.span);
        }
        return e.op === '==' ? left === right : left !== right;
      }
      const a = number(left, e.left.span, e.op);
      const b = number(right, e.right.span, e.op);
      switch (e.op) {
        case '<':
          return a < b;
        case '<=':
          return a <= b;
        case '>':
          return a > b;
        case '>=':
          return a >= b;
        case '+':
          return (a + b) & U64_MASK;
        case '-':
          return (a - b) & U64_MASK;
        case '*':
          return (a * b) & U64_MASK;
        case '/':
        case '%':
          if (b === 0n) throw new ScriptError('E_VALUE', `division by zero: ${e.op === '/' ? 'the divisor' : 'the modulus'} is 0`, e.right.span);
          return e.op === '/' ? a / b : a % b;
        case '&':
          return a & b;
        case '|':
          return a | b;
        case '^':
          return a ^ b;
        case '<<':
          return b >= 64n ? 0n : (a << b) & U64_MASK;
        case '>>':
          return b >= 64n ? 0n : a >> b;
      }
    }
  }
}
