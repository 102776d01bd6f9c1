/**
 * What the lint says about the reserved bits of one present entry: which of its codes each set
 * reserved bit belongs to, in plain words, with what the code most likely did wrong.
 */
import { hex } from './addr.js';
import { describeReserved } from './explain.js';
import type { LevelRule } from './levels.js';
import type { LintCode, LintFinding } from './lint.js';
import { entryName, findingAt, type Where } from './lintFinding.js';
import type { PagingContext } from './mode.js';

const bits = (high: number, low: number): bigint => ((1n << BigInt(high - low + 1)) - 1n) << BigInt(low);

/** The reserved bits of an entry that one lint code is about. */
export interface ReservedPart {
  readonly code: LintCode;
  readonly bits: bigint;
}

/**
 * Splits the set reserved bits `rsvd` of an entry at `rule` by lint code, the most specific first:
 * address bits at or above MAXPHYADDR, NX without NXE, PS where it cannot be, the low address bits
 * of a huge page, and whatever is left ('reserved-bits').
 */
export function reservedParts(ctx: PagingContext, rule: LevelRule, rsvd: bigint, leafShape: boolean): ReservedPart[] {
  const parts: ReservedPart[] = [];
  let left = rsvd;
  const take = (code: LintCode, mask: bigint): void => {
    if ((left & mask) !== 0n) {
      parts.push({ code, bits: left & mask });
      left &= ~mask;
    }
  };
  const paePdpte = ctx.mode === 'PAE' && rule.name === 'PDPT';
  if (rule.entrySize === 8 && ctx.maxPhyAddr < 52) take('above-maxphyaddr', bits(51, ctx.maxPhyAddr));
  if (rule.entrySize === 8 && !paePdpte) take('nx-reserved', 1n << 63n);
  if (rule.ps === 'reserved' && !paePdpte) take(rule.name === 'PDPT' ? 'no-1g-pages' : 'ps-in-top-level', 0x80n);
  if (leafShape && rule.ps === 'page') take('huge-misaligned', bits(rule.shift - 1, 13));
  take('reserved-bits', left);
  return parts;
}

const sizeWords = (size: number): string =>
  size >= 1 << 30 ? '1 GiB' : size >= 1 << 22 ? '4 MiB' : size >= 1 << 21 ? '2 MiB' : '4 KiB';

/** The finding for one part of an entry's reserved bits (see {@link reservedParts}). */
export function reservedFinding(ctx: PagingContext, rule: LevelRule, w: Where, part: ReservedPart, leafShape: boolean): LintFinding {
  const name = entryName(w);
  const paePdpte = ctx.mode === 'PAE' && rule.name === 'PDPT';
  const faults = paePdpte ? 'so loading CR3 raises #GP(0) on a real CPU or KVM (QEMU\'s TCG does not check them)' : 'so every access through it faults with RSVD=1';
  const M = ctx.maxPhyAddr;
  const at = (code: LintCode, message: string, hint?: string): LintFinding =>
    findingAt(ctx, w, code, 'error', message, hint === undefined ? {} : { hint });
  switch (part.code) {
    case 'above-maxphyaddr':
      return at(
        'above-maxphyaddr',
        `${name} has address bits 51:${M} set (${hex(part.bits)}) but this CPU has ${M}-bit physical addresses (MAXPHYADDR), ${faults}`,
        `store a physical address below ${hex(1n << BigInt(M))}; high address bits usually mean a virtual address or an uninitialised value was stored`,
      );
    case 'nx-reserved':
      return at(
        'nx-reserved',
        `${name} sets bit 63 (NX) while EFER.NXE=0: the bit is reserved then, ${faults}`,
        'set EFER.NXE (bit 11 of MSR 0xc0000080) before loading these tables, or leave NX clear while NXE is off',
      );
    case 'ps-in-top-level': {
      const below = rule.name === 'PML5' ? 'a PML4' : 'a PDPT';
      return at(
        'ps-in-top-level',
        `${name} sets PS (bit 7), but a ${rule.name} entry cannot map a page: PS is reserved there, ${faults}`,
        `clear bit 7: a ${rule.name} entry always points at ${below}; 1 GiB pages are PDPT entries with PS, 2 MiB pages PD entries with PS`,
      );
    }
    case 'no-1g-pages':
      return at(
        'no-1g-pages',
        `${name} maps a 1 GiB page (PS=1), but this CPU has no 1 GiB pages (CPUID pdpe1gb): PS is reserved there, ${faults}`,
        'map the range with 2 MiB pages in a PD instead, or give the CPU 1 GiB pages (QEMU: -cpu ...,+pdpe1gb)',
      );
    case 'huge-misaligned':
      return misaligned(ctx, rule, w, part.bits, faults);
    default: {
      const what = describeReserved(part.bits, rule, ctx, leafShape).join('; ');
      return at(
        'reserved-bits',
        `${name} has reserved bits set: ${what}; ${faults}`,
        paePdpte
          ? 'a PAE PDPT entry holds only P, PWT, PCD and the address: do not give it R/W, U/S, A, PS or NX as in the other levels'
          : undefined,
      );
    }
  }
}

function misaligned(ctx: PagingContext, rule: LevelRule, w: Where, set: bigint, faults: string): LintFinding {
  const name = entryName(w);
  const size = sizeWords(rule.pageSize);
  if (rule.entrySize === 4) {
    // 32-bit 4 MiB page: bits 20:13 are physical address bits 39:32 (PSE-36), the rest up to 21 reserved.
    const meant = w.raw & 0xfffff000n;
    const aligned = w.raw & 0xffc00000n;
    return findingAt(
      ctx,
      w,
      'huge-misaligned',
      'error',
      `${name} maps a 4 MiB page with reserved bits ${hex(set)} set: in a 4 MiB entry bits 21:13 are not low address bits but ` +
        `physical address bits 39:32 (PSE-36) and reserved bits, ${faults}`,
      {
        hint: `a 4 MiB page's base must be 4 MiB aligned: if ${hex(meant)} was meant, map ${hex(aligned)} (entry ${hex(w.raw & ~0x3ff000n)}) or use 4 KiB pages`,
      },
    );
  }
  const field = w.raw & bits(51, 12);
  const aligned = w.raw & bits(51, rule.shift);
  const fixed = w.raw & ~bits(rule.shift - 1, 13);
  return findingAt(
    ctx,
    w,
    'huge-misaligned',
    'error',
    `${name} maps a ${size} page at ${hex(field)}, which is not ${size} aligned: bits ${rule.shift - 1}:13 (${hex(set)}) are reserved in a ${size} page entry, ${faults}`,
    {
      hint: `a huge page's base must be aligned to its size: map ${hex(aligned)} (entry ${hex(fixed)}), or use 4 KiB pages if ${hex(field)} was meant; bit 12 of a huge page entry is PAT, not an address bit`,
    },
  );
}
