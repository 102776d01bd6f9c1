/**
 * Parsing the numbers and addresses users type: hex with 0x, decimal, `_` separators, and symbols
 * (`name`, `name+0x10`) when a symbol table is loaded.
 */
import { UsageError } from './errors.js';

/** Looks a symbol up by name; undefined when unknown. */
export type SymbolLookup = (name: string) => bigint | undefined;

const NUMBER = /^(?:0x[0-9a-f]+|[0-9]+)$/i;

/**
 * Parses `text` as an unsigned number (0x hex or decimal, `_` allowed between digits).
 * Throws UsageError naming `what` when it is not one.
 */
export function parseNumber(text: string, what: string, max: bigint = (1n << 64n) - 1n): bigint {
  const t = text.trim().replace(/_/g, '');
  if (!NUMBER.test(t)) {
    throw new UsageError(`${what}: expected a number such as 0xffffffff80000000 or 4096, got '${text}'`);
  }
  const v = BigInt(t);
  if (v > max) throw new UsageError(`${what}: ${text} is too large (at most 0x${max.toString(16)})`);
  return v;
}

/** Parses a small whole number in [min, max]. */
export function parseSmall(text: string, what: string, min: number, max: number): number {
  const v = parseNumber(text, what, BigInt(max));
  if (v < BigInt(min)) throw new UsageError(`${what}: ${text} is too small (at least ${min})`);
  return Number(v);
}

/**
 * Parses an address: a number, or with `symbols` a symbol name optionally followed by +/- a number.
 * Throws UsageError with a one-line reason.
 */
export function parseAddress(text: string, what: string, symbols?: SymbolLookup): bigint {
  const t = text.trim();
  if (NUMBER.test(t.replace(/_/g, ''))) return parseNumber(t, what);
  const m = /^([A-Za-z_.$][\w.$@]*)\s*(?:([+-])\s*(\S+))?$/.exec(t);
  if (!m) throw new UsageError(`${what}: expected an address such as 0xffffffff80000000, got '${text}'`);
  if (!symbols) {
    throw new UsageError(`${what}: '${text}' is not a number; symbols such as '${m[1]}' need --elf FILE`);
  }
  const base = symbols(m[1]!);
  if (base === undefined) throw new UsageError(`${what}: no symbol '${m[1]}' in the --elf file or the scenario's labels`);
  if (!m[2]) return base;
  const off = parseNumber(m[3]!, `${what} offset`);
  return BigInt.asUintN(64, m[2] === '+' ? base + off : base - off);
}
