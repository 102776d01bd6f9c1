/**
 * The values of the language: 64-bit unsigned numbers (bigint, arithmetic modulo 2^64), booleans
 * and strings; how each prints (numbers in hex) and how each looks in JSON.
 */

/** A value an expression yields. */
export type Value = bigint | boolean | string;

/** 2^64 - 1: numbers wrap to 64 bits, as registers do. */
export const U64_MASK = (1n << 64n) - 1n;

/** The type's name in error messages. */
export function typeName(v: Value): string {
  return typeof v === 'bigint' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : 'a string';
}

/** How a value prints: numbers as lower-case hex with 0x, booleans as true/false, strings as they are. */
export function showValue(v: Value): string {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : String(v);
}

/** How a value prints where its type must show: strings in double quotes. */
export function quoteValue(v: Value): string {
  return typeof v === 'string' ? JSON.stringify(v) : showValue(v);
}

/** The JSON of a value: numbers as hex strings (they do not fit a JS number), the rest as themselves. */
export function valueJson(v: Value): string | boolean {
  return typeof v === 'bigint' ? showValue(v) : v;
}
