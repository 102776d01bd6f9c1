/**
 * Integer helpers the CPU and the MMU share: operand-size masks and sign bits, sign extension,
 * the parity table, canonical-address checks and fixed-width hex for logs.
 */

/** All 64 bits set. */
export const M64 = 0xffffffffffffffffn;

/** The mask of an operand of `size` bytes (1, 2, 4 or 8), as a BigInt. */
export const MASK: Readonly<Record<number, bigint>> = { 1: 0xffn, 2: 0xffffn, 4: 0xffffffffn, 8: M64 };

/** The sign bit of an operand of `size` bytes, as a BigInt. */
export const SIGN: Readonly<Record<number, bigint>> = { 1: 0x80n, 2: 0x8000n, 4: 0x80000000n, 8: 0x8000000000000000n };

/** The mask of an operand of `size` bytes; throws on a size that is not 1, 2, 4 or 8. */
export function maskOf(size: number): bigint {
  const m = MASK[size];
  if (m === undefined) throw new RangeError(`operand size ${size} is not 1, 2, 4 or 8`);
  return m;
}

/** The sign bit of an operand of `size` bytes. */
export function signOf(size: number): bigint {
  const s = SIGN[size];
  if (s === undefined) throw new RangeError(`operand size ${size} is not 1, 2, 4 or 8`);
  return s;
}

/** `value` (the low `size` bytes) sign-extended to a signed BigInt. */
export function toSigned(value: bigint, size: number): bigint {
  return BigInt.asIntN(size * 8, value);
}

/** `value` sign-extended from `size` bytes to an unsigned 64-bit BigInt. */
export function signExtend(value: bigint, size: number): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(size * 8, value));
}

/** 1 for every byte value with an even number of set bits (PF), else 0. */
export const PARITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let b = i;
    let n = 0;
    while (b) {
      n += b & 1;
      b >>= 1;
    }
    t[i] = n % 2 === 0 ? 1 : 0;
  }
  return t;
})();

/** True when `va` is canonical for `linearBits` (48, or 57 with LA57): bits 63..linearBits-1 all equal. */
export function isCanonical(va: bigint, linearBits: number): boolean {
  const top = va >> BigInt(linearBits - 1);
  return top === 0n || top === M64 >> BigInt(linearBits - 1);
}

/** `value` as lower-case hex, zero-padded to `digits` (C's `%0*x` for an unsigned value). */
export function hex(value: bigint | number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

/** The low and high 32-bit words of a 64-bit value, as numbers. */
export function split64(value: bigint): [lo: number, hi: number] {
  return [Number(value & 0xffffffffn), Number((value >> 32n) & 0xffffffffn)];
}
