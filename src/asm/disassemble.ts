/**
 * Decoding back: machine code to a NASM-style listing with iced-x86's Decoder and Formatter. Used
 * by tests (decode-back goldens), by `Assembly.listing()`, and by anyone who wants to see bytes.
 */
import type { Bits } from './forms.js';
import { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction, withFreed } from './iced.js';

/** One decoded instruction. */
export interface DecodedLine {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  /** NASM syntax, lower case, `0x` hex: `mov rax, [rel 0xffffffff80102010]`. */
  readonly text: string;
}

/** Decodes `bytes` as `bits`-bit code placed at `origin` (all of it, or `count` instructions). */
export function disassemble(bytes: Uint8Array, bits: Bits, origin: bigint | number, count = Infinity): DecodedLine[] {
  return withFreed((keep) => {
    const decoder = keep(new Decoder(bits, bytes, DecoderOptions.None));
    decoder.ip = BigInt(origin);
    const formatter = keep(nasmFormatter());
    const ins = keep(new Instruction());
    const lines: DecodedLine[] = [];
    while (decoder.canDecode && lines.length < count) {
      const at = decoder.position;
      const address = decoder.ip;
      decoder.decodeOut(ins);
      lines.push({ address, bytes: bytes.slice(at, at + ins.length), text: formatter.format(ins) });
    }
    return lines;
  });
}

/** The text of decoded lines, one per line: `address  bytes  instruction`. */
export function formatLines(lines: readonly DecodedLine[]): string {
  return lines.map((l) => formatLine(l.address, l.bytes, l.text)).join('\n');
}

/** One listing line: 16-digit address, up to 10 bytes in hex (`..` when there are more), then the text. */
export function formatLine(address: bigint, bytes: Uint8Array, text: string): string {
  const shown = [...bytes.subarray(0, 10)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const hex = shown + (bytes.length > 10 ? '..' : '');
  return `${address.toString(16).padStart(16, '0')}  ${hex.padEnd(24)}${text}`.trimEnd();
}

/** iced-x86's Formatter set up for listings: NASM syntax, lower-case `0x` hex, no branch sizes (free it when done). */
export function nasmFormatter(): Formatter {
  const f = new Formatter(FormatterSyntax.Nasm);
  f.hexPrefix = '0x';
  f.hexSuffix = '';
  f.uppercaseHex = false;
  f.spaceAfterOperandSeparator = true;
  f.showBranchSize = false;
  f.branchLeadingZeros = false;
  return f;
}
