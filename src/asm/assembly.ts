/**
 * An assembled program: its bytes at their origin, the address of every label, and a listing that
 * decodes the bytes back (so what it shows is what the CPU will run, not what was asked for).
 */
import { disassemble, formatLine } from './disassemble.js';
import { AsmError } from './errors.js';
import type { Item, Placement } from './layout.js';

/** The result of `Assembler.assemble`. */
export class Assembly {
  /** The address of every label. */
  readonly labels: ReadonlyMap<string, bigint>;
  /** The machine code and data, starting at `origin`. */
  readonly bytes: Uint8Array;

  constructor(
    /** Where the first byte goes. */
    readonly origin: bigint,
    private readonly items: readonly Item[],
    private readonly placement: Placement,
  ) {
    this.bytes = placement.bytes;
    const labels = new Map<string, bigint>();
    items.forEach((it, i) => {
      if (it.kind === 'label') labels.set(it.name, placement.addresses[i]!);
    });
    this.labels = labels;
  }

  /** The address just past the last byte. */
  get end(): bigint {
    return this.origin + BigInt(this.bytes.length);
  }

  /** The address of `label`; throws AsmError (E_UNDEFINED_LABEL) if there is none. */
  address(label: string): bigint {
    const a = this.labels.get(label);
    if (a === undefined) throw new AsmError('E_UNDEFINED_LABEL', `label "${label}" is not defined`);
    return a;
  }

  /** The offset of `label` from the origin. */
  offset(label: string): number {
    return Number(this.address(label) - this.origin);
  }

  /** The program decoded back: `label:` lines, then `address  bytes  instruction` (data as written). */
  listing(): string {
    const lines: string[] = [];
    this.items.forEach((it, i) => {
      const at = this.placement.addresses[i]!;
      if (it.kind === 'label') {
        lines.push(`${it.name}:`);
        return;
      }
      const off = Number(at - this.origin);
      const bytes = this.bytes.subarray(off, off + this.placement.lengths[i]!);
      if (it.kind === 'data') {
        if (bytes.length > 0) lines.push(formatLine(at, bytes, it.what));
        return;
      }
      const [decoded] = disassemble(bytes, it.bits, at, 1);
      lines.push(formatLine(at, bytes, decoded?.text ?? '(undecodable)'));
    });
    return lines.join('\n');
  }
}
