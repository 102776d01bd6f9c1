/**
 * What a MOV to CR3 writes (Intel SDM vol. 3, 4.10.4.1): the source register's value, with bit 63
 * the "don't flush" hint when CR4.PCIDE=1 (never stored in CR3), bits 11:0 the PCID there, and only
 * 32 bits outside long mode.
 */
import type { PagingContext } from '../paging/mode.js';

/** A value moved to CR3, taken apart. */
export interface Cr3Write {
  /** The source register's value, as the MOV reads it (what the pre-flight is given). */
  value: bigint;
  /** What CR3 holds afterwards, when the MOV does not fault. */
  cr3: bigint;
  /** The PCID (CR4.PCIDE=1), else null. */
  pcid: number | null;
  /** Bit 63 set with CR4.PCIDE=1: the TLB entries of that PCID are kept. */
  noFlush: boolean;
}

const NO_FLUSH = 1n << 63n;

/** Takes apart the value `source` a MOV to CR3 moves, under `ctx` (the context before the MOV). */
export function cr3Write(ctx: Pick<PagingContext, 'mode' | 'pcide'>, source: bigint): Cr3Write {
  const long = ctx.mode === '4-level' || ctx.mode === '5-level';
  if (!long) {
    const v = source & 0xffffffffn;
    return { value: v, cr3: v, pcid: null, noFlush: false };
  }
  const value = BigInt.asUintN(64, source);
  if (!ctx.pcide) return { value, cr3: value, pcid: null, noFlush: false };
  return { value, cr3: value & ~NO_FLUSH, pcid: Number(value & 0xfffn), noFlush: (value & NO_FLUSH) !== 0n };
}
