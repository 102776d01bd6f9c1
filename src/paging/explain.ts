/**
 * Short, exact wording for what stopped a walk: which reserved bits, which rule an access broke.
 * The longer "what did the code most likely do wrong" lives in `src/faults`.
 */
import { hex } from './addr.js';
import type { LevelName, LevelRule } from './levels.js';
import type { PagingContext } from './mode.js';
import type { Access, Denial } from './rights.js';

const bits = (high: number, low: number): bigint => ((1n << BigInt(high - low + 1)) - 1n) << BigInt(low);

/** One phrase per kind of reserved bit set in `reserved` (the set reserved bits of an entry at `rule`). */
export function describeReserved(
  reserved: bigint,
  rule: LevelRule,
  ctx: Pick<PagingContext, 'maxPhyAddr' | 'mode' | 'gbPages'>,
  leafShape: boolean,
): string[] {
  const out: string[] = [];
  let left = reserved;
  const take = (mask: bigint, text: string): void => {
    if ((left & mask) !== 0n) {
      out.push(`${text} (${hex(left & mask)})`);
      left &= ~mask;
    }
  };
  const M = ctx.maxPhyAddr;
  const paePdpte = ctx.mode === 'PAE' && rule.name === 'PDPT';
  if (rule.entrySize === 8 && M < 52) take(bits(51, M), `address bits 51:${M} at or above MAXPHYADDR=${M}`);
  if (paePdpte) {
    take(1n << 63n, 'bit 63: XD is reserved in PAE PDPTEs');
    take(bits(2, 1) | bits(8, 6), 'bits 2:1 and 8:6, reserved in PAE PDPTEs (no R/W, U/S, D, PS or G there)');
  } else {
    take(1n << 63n, 'bit 63 (XD) while EFER.NXE=0');
  }
  if (ctx.mode === 'PAE') take(bits(62, 52), 'bits 62:52, reserved in PAE paging');
  if (rule.ps === 'reserved' && !paePdpte) {
    const why =
      rule.name === 'PDPT' && !ctx.gbPages ? 'but this CPU has no 1 GiB pages (pdpe1gb)' : `there are no pages at the ${rule.name} level`;
    take(1n << 7n, `PS set in a ${rule.name} entry, ${why}`);
  }
  if (leafShape && rule.ps === 'page' && rule.entrySize === 4) {
    // 32-bit 4 MiB page: bit 21 is always reserved; bits 20:13 hold PA bits 39:32 (PSE-36) up to MAXPHYADDR.
    take(1n << 21n, 'bit 21 of a 4 MiB page entry (its base must be 4 MiB aligned; PSE-36 address bits sit in 20:13)');
    const k = rule.pse36Bits;
    if (k < 8) take(bits(20, 13 + k), `PSE-36 address bits 39:${32 + k} of a 4 MiB page, at or above MAXPHYADDR=${32 + k}`);
  }
  if (leafShape && rule.ps === 'page') {
    const size = rule.pageSize >= 1 << 30 ? '1 GiB' : rule.pageSize >= 1 << 22 ? '4 MiB' : '2 MiB';
    take(bits(rule.shift - 1, 13), `low address bits of a ${size} page (its base must be ${size} aligned)`);
  }
  if (left !== 0n) out.push(`other reserved bits (${hex(left)})`);
  return out;
}

const accessWords = (a: Access): string =>
  `${a.user ? 'user-mode' : 'supervisor'} ${a.kind === 'exec' ? 'instruction fetch' : a.kind}`;

/** One sentence for a rule an access broke. */
export function describeDenial(
  denial: Denial,
  access: Access,
  ctx: Pick<PagingContext, 'wp'>,
  level: LevelName | 'CR3' | null,
  pkey: number | null = null,
): string {
  const at = level ? ` in the ${level} entry` : '';
  switch (denial) {
    case 'user-to-supervisor':
      return `${accessWords(access)} of a supervisor page (U/S=0${at})`;
    case 'read-only':
      return `${accessWords(access)} to a read-only page (R/W=0${at})${access.user ? '' : ctx.wp ? ' with CR0.WP=1' : ''}`;
    case 'no-execute':
      return `instruction fetch from a no-execute page (NX set${at}; NX at any level forbids fetches)`;
    case 'smep':
      return 'supervisor instruction fetch from a user page with CR4.SMEP=1';
    case 'smap':
      return access.implicit
        ? 'implicit supervisor access (GDT/IDT/TSS) to a user page with CR4.SMAP=1; EFLAGS.AC cannot allow it'
        : 'supervisor data access to a user page with CR4.SMAP=1 and EFLAGS.AC=0';
    case 'pk-access-disabled':
      return `protection key ${pkey ?? '?'} has access disabled (AD=1)`;
    case 'pk-write-disabled':
      return `protection key ${pkey ?? '?'} has writes disabled (WD=1)`;
  }
}
