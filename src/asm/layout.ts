/**
 * Placement: turns a list of instructions, data and labels into bytes at an origin. Runs of
 * instructions of one mode go through iced-x86's BlockEncoder, which resolves branches between them
 * and picks short or near forms; data is copied as it is. Label addresses are guessed, everything is
 * encoded, the real addresses are read back (by decoding each run), and this repeats until nothing
 * moves. A last strict pass then checks every label value against the field it went into.
 */
import { AsmError } from './errors.js';
import type { Bits, FormContext } from './forms.js';
import { BlockEncoder, BlockEncoderOptions, Decoder, DecoderOptions, icedReason, Instruction, withFreed } from './iced.js';
import { isExpr, wholeNumber, type Value } from './operands.js';

/** An instruction, built once label values are known. */
export interface InstructionItem {
  readonly kind: 'ins';
  readonly bits: Bits;
  readonly what: string;
  make(ctx: FormContext): Instruction;
}

/** Bytes, produced once label values and their own address are known (data, alignment). */
export interface DataItem {
  readonly kind: 'data';
  readonly what: string;
  bytes(ctx: DataContext): Uint8Array;
}

/** A label: the address of whatever follows it. */
export interface LabelItem {
  readonly kind: 'label';
  readonly name: string;
}

/** One line of a program. */
export type Item = InstructionItem | DataItem | LabelItem;

/** What a data directive needs: label values, its own address, and whether range errors count yet. */
export interface DataContext {
  readonly what: string;
  readonly at: bigint;
  readonly strict: boolean;
  value(v: Value): bigint;
}

/** Where each item ended up, and the bytes. */
export interface Placement {
  readonly bytes: Uint8Array;
  /** The address of every item (a label's is that of what follows it). */
  readonly addresses: readonly bigint[];
  /** The length in bytes of every item (0 for labels). */
  readonly lengths: readonly number[];
}

const MAX_PASSES = 16;

/** Places `items` at `origin`; throws AsmError on bad operands, undefined labels or out-of-range values. */
export function place(items: readonly Item[], origin: bigint): Placement {
  const defined = new Set<string>();
  for (const it of items) {
    if (it.kind !== 'label') continue;
    if (defined.has(it.name)) throw new AsmError('E_DUPLICATE_LABEL', `label "${it.name}" is defined twice`);
    defined.add(it.name);
  }
  // First guess: every instruction or data item 8 bytes long. Guesses only need to be distinct,
  // since BlockEncoder matches branch targets to instructions by their guessed address.
  let guess: readonly bigint[] = initialGuess(items, origin);
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const p = encodePass(items, origin, guess, false);
    if (same(p.addresses, guess)) {
      const final = encodePass(items, origin, guess, true);
      if (!same(final.addresses, guess)) throw new AsmError('E_LAYOUT', 'the strict pass moved code; this is a bug in the assembler');
      return final;
    }
    guess = p.addresses;
  }
  throw new AsmError('E_LAYOUT', `label addresses did not settle in ${MAX_PASSES} passes`);
}

function initialGuess(items: readonly Item[], origin: bigint): bigint[] {
  const out: bigint[] = [];
  let at = origin;
  for (const it of items) {
    out.push(at);
    if (it.kind !== 'label') at += 8n;
  }
  return out;
}

function same(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The label values of a guess: each label is at its own guessed address. */
function labelValues(items: readonly Item[], guess: readonly bigint[]): Map<string, bigint> {
  const labels = new Map<string, bigint>();
  items.forEach((it, i) => {
    if (it.kind === 'label') labels.set(it.name, guess[i]!);
  });
  return labels;
}

function resolver(labels: Map<string, bigint>, what: string): (v: Value) => bigint {
  const at = (name: string) => {
    const a = labels.get(name);
    if (a === undefined) throw new AsmError('E_UNDEFINED_LABEL', `${what}: label "${name}" is not defined`);
    return a;
  };
  return (v) => {
    if (!isExpr(v)) return wholeNumber(v, what);
    let sum = v.offset;
    for (const l of v.plus) sum += at(l);
    for (const l of v.minus) sum -= at(l);
    return sum;
  };
}

function encodePass(items: readonly Item[], origin: bigint, guess: readonly bigint[], strict: boolean): Placement {
  const labels = labelValues(items, guess);
  const addresses: bigint[] = new Array<bigint>(items.length);
  const lengths: number[] = new Array<number>(items.length).fill(0);
  const chunks: Uint8Array[] = [];
  let at = origin;
  let i = 0;
  while (i < items.length) {
    const it = items[i]!;
    if (it.kind === 'label') {
      addresses[i++] = at;
      continue;
    }
    if (it.kind === 'data') {
      const bytes = it.bytes({ what: it.what, at, strict, value: resolver(labels, it.what) });
      addresses[i] = at;
      lengths[i++] = bytes.length;
      chunks.push(bytes);
      at += BigInt(bytes.length);
      continue;
    }
    // A run: instructions of one mode, with the labels between them.
    const run: number[] = [];
    let j = i;
    while (j < items.length) {
      const x = items[j]!;
      if (x.kind === 'data' || (x.kind === 'ins' && x.bits !== it.bits)) break;
      run.push(j++);
    }
    const code = encodeRun(items, run, it.bits, at, guess, labels, strict);
    for (const k of run) {
      addresses[k] = code.addresses.get(k) ?? at + BigInt(code.bytes.length);
      lengths[k] = code.lengths.get(k) ?? 0;
    }
    // A label ends up at the next instruction, or at the end of the run.
    for (let r = run.length - 1, next = at + BigInt(code.bytes.length); r >= 0; r--) {
      const k = run[r]!;
      if (items[k]!.kind === 'label') addresses[k] = next;
      else next = addresses[k]!;
    }
    chunks.push(code.bytes);
    at += BigInt(code.bytes.length);
    i = j;
  }
  return { bytes: concatBytes(chunks), addresses, lengths };
}

interface EncodedRun {
  bytes: Uint8Array;
  addresses: Map<number, bigint>;
  lengths: Map<number, number>;
}

function encodeRun(
  items: readonly Item[],
  run: readonly number[],
  bits: Bits,
  at: bigint,
  guess: readonly bigint[],
  labels: Map<string, bigint>,
  strict: boolean,
): EncodedRun {
  return withFreed((keep) => {
    const made: { index: number; item: InstructionItem; ins: Instruction }[] = [];
    for (const k of run) {
      const item = items[k]!;
      if (item.kind !== 'ins') continue;
      const ins = keep(item.make({ bits, what: item.what, strict, value: resolver(labels, item.what) }));
      ins.ip = guess[k]!;
      made.push({ index: k, item, ins });
    }
    const encoder = keep(new BlockEncoder(bits, BlockEncoderOptions.None));
    for (const m of made) encoder.add(m.ins);
    let bytes: Uint8Array;
    try {
      bytes = encoder.encode(at);
    } catch (e) {
      throw culprit(made, bits, e);
    }
    // Read the placement back: one decoded instruction per instruction given, same mnemonic and flow.
    const decoder = keep(new Decoder(bits, bytes, DecoderOptions.None));
    decoder.ip = at;
    const out = keep(new Instruction());
    const addresses = new Map<number, bigint>();
    const lengths = new Map<number, number>();
    for (const m of made) {
      const ip = decoder.ip;
      if (!decoder.canDecode) throw rewritten(m.item);
      decoder.decodeOut(out);
      if (out.mnemonic !== m.ins.mnemonic || out.flowControl !== m.ins.flowControl) throw rewritten(m.item);
      addresses.set(m.index, ip);
      lengths.set(m.index, out.length);
    }
    if (decoder.position !== bytes.length) throw rewritten(made[made.length - 1]!.item);
    return { bytes, addresses, lengths };
  });
}

/** BlockEncoder turns a branch it cannot reach into several instructions; we refuse that. */
function rewritten(item: InstructionItem): AsmError {
  return new AsmError('E_BRANCH_RANGE', `${item.what}: the target is out of reach of a single ${item.bits}-bit branch`);
}

/** Finds which instruction BlockEncoder refused, by encoding them one by one. */
function culprit(made: readonly { item: InstructionItem; ins: Instruction }[], bits: Bits, cause: unknown): AsmError {
  for (const m of made) {
    const one = new BlockEncoder(bits, BlockEncoderOptions.None);
    try {
      one.add(m.ins);
      one.encode(m.ins.ip);
    } catch (e) {
      return new AsmError('E_ENCODE', `${m.item.what} (${bits}-bit code): ${icedReason(e)}`);
    } finally {
      one.free();
    }
  }
  return new AsmError('E_ENCODE', `${bits}-bit code: ${icedReason(cause)}`);
}

/** The chunks one after the other, in one new array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
