/**
 * The place a lint finding is about (an entry, the VA range it covers) and the one function that
 * turns a place and words into a {@link LintFinding}.
 */
import { hex } from './addr.js';
import type { LevelName } from './levels.js';
import type { LintCode, LintFinding } from './lint.js';
import type { PagingContext } from './mode.js';
import { FRAME_SIZE } from './memory.js';
import { vpnToVa } from './tree.js';

/** An entry and the linear addresses it covers in the context where the lint first met it. */
export interface Where {
  readonly level: LevelName;
  /** 0 for the top level. */
  readonly depth: number;
  readonly index: number;
  /** Physical address of the entry. */
  readonly entryAddress: number;
  readonly raw: bigint;
  /** First 4 KiB page number covered (not sign-extended). */
  readonly vpn: number;
  /** Number of 4 KiB pages covered. */
  readonly pages: number;
}

/** The canonical linear address of the first byte of page `vpn` (sign-extended in long mode only). */
export function vaOf(ctx: Pick<PagingContext, 'mode' | 'vaBits'>, vpn: number): bigint {
  return vpnToVa(vpn, ctx.vaBits);
}

/** The canonical linear address of the last byte of page `vpn`. */
export function vaEndOf(ctx: Pick<PagingContext, 'mode' | 'vaBits'>, vpn: number): bigint {
  return vaOf(ctx, vpn) + BigInt(FRAME_SIZE - 1);
}

/**
 * The first page number of the kernel half: linear-address bit 47 (4-level) or 56 (5-level) set;
 * in 32-bit and PAE paging, pagewalk takes 0x80000000 and up (bit 31) as the kernel half.
 */
export function kernelHalfVpn(ctx: Pick<PagingContext, 'vaBits'>): number {
  return 2 ** (ctx.vaBits - 13);
}

/** "PD[3] at 0x1018 (0x200083)": an entry named the way walk explanations name it. */
export function entryName(w: Pick<Where, 'level' | 'index' | 'entryAddress' | 'raw'>): string {
  return `${w.level}[${w.index}] at ${hex(w.entryAddress)} (${hex(w.raw)})`;
}

/** The finding about `w` covering pages [firstVpn, lastVpn] (the whole entry unless told). */
export function findingAt(
  ctx: Pick<PagingContext, 'mode' | 'vaBits'>,
  w: Where,
  code: LintCode,
  severity: LintFinding['severity'],
  message: string,
  more: { hint?: string; count?: number; firstVpn?: number; lastVpn?: number } = {},
): LintFinding {
  const first = more.firstVpn ?? w.vpn;
  const last = more.lastVpn ?? w.vpn + w.pages - 1;
  const f: LintFinding = {
    code,
    severity,
    level: w.level,
    entryAddress: BigInt(w.entryAddress),
    raw: w.raw,
    va: vaOf(ctx, first),
    vaEnd: vaEndOf(ctx, last),
    message,
  };
  if (more.hint !== undefined) f.hint = more.hint;
  if (more.count !== undefined) f.count = more.count;
  return f;
}

/** "0x1000..0x1fff": the linear addresses of pages [firstVpn, lastVpn]. */
export function rangeText(ctx: Pick<PagingContext, 'mode' | 'vaBits'>, firstVpn: number, lastVpn: number): string {
  return `${hex(vaOf(ctx, firstVpn))}..${hex(vaEndOf(ctx, lastVpn))}`;
}
