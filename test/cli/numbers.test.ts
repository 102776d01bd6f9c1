import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { parseAddress, parseNumber, parseSmall } from '../../src/cli/numbers.js';

describe('parseNumber', () => {
  it('reads hex with 0x (any case), decimal and _ separators', () => {
    expect(parseNumber('0xffffffff80000000', 'VA')).toBe(0xffffffff80000000n);
    expect(parseNumber('0XABC', 'VA')).toBe(0xabcn);
    expect(parseNumber('4096', 'VA')).toBe(4096n);
    expect(parseNumber('0xffff_8000_0000_0000', 'VA')).toBe(0xffff800000000000n);
  });

  it('rejects garbage with a one-line message naming the option', () => {
    expect(() => parseNumber('12z', '--cr3')).toThrow(UsageError);
    expect(() => parseNumber('12z', '--cr3')).toThrow("--cr3: expected a number such as 0xffffffff80000000 or 4096, got '12z'");
    expect(() => parseNumber('-1', 'VA')).toThrow(UsageError);
    expect(() => parseNumber('', 'VA')).toThrow(UsageError);
  });

  it('rejects values above the maximum', () => {
    expect(() => parseNumber('0x10000000000000000', 'VA')).toThrow(/too large/);
    expect(() => parseNumber('0x100000000', '--error-code', 0xffffffffn)).toThrow(/at most 0xffffffff/);
  });

  it('parseSmall bounds both ends', () => {
    expect(parseSmall('40', '--maxphyaddr', 32, 52)).toBe(40);
    expect(() => parseSmall('31', '--maxphyaddr', 32, 52)).toThrow(/too small/);
    expect(() => parseSmall('53', '--maxphyaddr', 32, 52)).toThrow(/too large/);
  });
});

describe('parseAddress', () => {
  const syms = (n: string): bigint | undefined => (n === 'kmain' ? 0xffffffff80001000n : undefined);

  it('resolves symbols and offsets', () => {
    expect(parseAddress('kmain', 'VA', syms)).toBe(0xffffffff80001000n);
    expect(parseAddress('kmain+0x10', 'VA', syms)).toBe(0xffffffff80001010n);
    expect(parseAddress('kmain - 16', 'VA', syms)).toBe(0xffffffff80000ff0n);
  });

  it('says a symbol needs --elf, or that it is unknown', () => {
    expect(() => parseAddress('kmain', 'VA')).toThrow("symbols such as 'kmain' need --elf FILE");
    expect(() => parseAddress('nosuch', 'VA', syms)).toThrow("no symbol 'nosuch'");
    expect(() => parseAddress('kmain+zz', 'VA', syms)).toThrow(UsageError);
  });
});
