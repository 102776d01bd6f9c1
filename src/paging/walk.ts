/**
 * The page walk: one linear address through the tables of a paging context, written once as a
 * loop over the mode's table of levels. It returns the full trace and a tagged outcome, never
 * writes Accessed/Dirty bits, and never throws on garbage tables (only on an address the mode
 * cannot express at all).
 */
import { AddressError, hex, isCanonical } from './addr.js';
import { BIT, XD_HI, decodeEntry, isLeafOf, pageBaseOf, reservedHiOf, reservedLoOf, tableAddressOf, type EntryFlag } from './entry.js';
import { pageFaultErrorCode } from './errorCode.js';
import { describeDenial, describeReserved } from './explain.js';
import { levelIndex, type LevelName, type LevelRule } from './levels.js';
import { FRAME_SIZE, entryFromWords, readEntryWords, runSync, type PagingTask, type PhysMemory } from './memory.js';
import type { PagingContext, PagingMode } from './mode.js';
import { ALL_RIGHTS, checkAccess, combineRights, type Access, type Denial, type Rights } from './rights.js';

/** One level of a walk: the entry that was read and what it says. */
export interface WalkStep {
  readonly level: LevelName;
  readonly index: number;
  /** Physical address of the entry. */
  readonly entryAddress: bigint;
  readonly raw: bigint;
  readonly present: boolean;
  readonly flags: readonly EntryFlag[];
  /** Reserved bits that are set (0n when not present). */
  readonly reserved: bigint;
  /** The next table or, for a leaf, the page's base; null when not present. */
  readonly next: bigint | null;
  readonly leaf: boolean;
  readonly pageSize: number | null;
  readonly protectionKey: number | null;
}

/** Why an access does not complete. */
export type FaultReason = 'not-present' | 'reserved-bit' | 'protection' | 'non-canonical' | 'outside-memory';

/** The exception an access raises: where, why, and what the CPU pushes. */
export interface WalkFault {
  /** The level whose entry stopped the walk or removed the right; 'CR3' for a bad CR3; null for a non-canonical address. */
  readonly level: LevelName | 'CR3' | null;
  readonly reason: FaultReason;
  /** 14 (#PF) or 13 (#GP: non-canonical address, reserved bits in CR3 or in a PAE PDPTE). */
  readonly vector: 13 | 14;
  readonly errorCode: number;
  /** For protection faults: every rule the access breaks. */
  readonly denials: readonly Denial[];
  readonly explanation: string;
}

/** A completed translation. */
export interface Translation {
  readonly pa: bigint;
  readonly pageBase: bigint;
  readonly pageSize: number;
  readonly rights: Rights;
  readonly global: boolean;
  readonly protectionKey: number | null;
  /** The level whose entry mapped the page. */
  readonly leafLevel: LevelName | null;
}

/** Everything a walk found. */
export interface WalkResult {
  readonly va: bigint;
  readonly mode: PagingMode;
  readonly cr3: bigint;
  readonly access: Access;
  readonly steps: readonly WalkStep[];
  /** The translation when the walk reached a valid leaf (even if the access itself is refused). */
  readonly translation: Translation | null;
  /** The fault the access raises, or null when it completes. */
  readonly fault: WalkFault | null;
}

/** A supervisor read: what `walk` checks unless told otherwise. */
export const SUPERVISOR_READ: Readonly<Access> = Object.freeze({ kind: 'read', user: false });

/**
 * The walk as a task (see `memory.ts`). Throws `AddressError` (E_ADDRESS_RANGE) only for an address
 * the mode cannot express (above 4 GiB in 32-bit or PAE paging, or above 64 bits).
 */
export function* walkTask(ctx: PagingContext, va: bigint, access: Access = SUPERVISOR_READ): PagingTask<WalkResult> {
  const base = { va, mode: ctx.mode, cr3: ctx.cr3, access };
  const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
  if (va < 0n || va >= 1n << 64n || (!longMode && va >= 1n << 32n)) {
    throw new AddressError(
      'E_ADDRESS_RANGE',
      `${hex(va)} does not fit the ${longMode ? 64 : 32}-bit linear addresses of ${ctx.mode === 'none' ? 'unpaged' : ctx.mode} mode`,
    );
  }
  const fetch = access.kind === 'exec';
  const write = access.kind === 'write';

  if (ctx.mode === 'none') {
    return { ...base, steps: [], translation: identity(va), fault: null };
  }
  if (longMode && !isCanonical(va, ctx.vaBits)) {
    const fault: WalkFault = {
      level: null,
      reason: 'non-canonical',
      vector: 13,
      errorCode: 0,
      denials: [],
      explanation:
        `${hex(va)} is not canonical: bits 63:${ctx.vaBits - 1} must all equal bit ${ctx.vaBits - 1}` +
        ` in ${ctx.mode} paging, so the CPU raises #GP(0) (#SS for a stack access), not #PF`,
    };
    return { ...base, steps: [], translation: null, fault };
  }
  if (ctx.cr3Reserved !== 0n) {
    const fault: WalkFault = {
      level: 'CR3',
      reason: 'reserved-bit',
      vector: 13,
      errorCode: 0,
      denials: [],
      explanation:
        `CR3 ${hex(ctx.cr3)} has reserved bits set (${hex(ctx.cr3Reserved)}): ` +
        (ctx.cr3Reserved === 1n << 63n
          ? 'bit 63 (the no-flush hint) is reserved unless CR4.PCIDE=1'
          : `bits 63:${ctx.maxPhyAddr} are reserved with MAXPHYADDR=${ctx.maxPhyAddr}` +
            (ctx.pcide ? ' (bit 63 alone is the no-flush hint)' : '')) +
        ', so mov to CR3 raises #GP(0)',
    };
    return { ...base, steps: [], translation: null, fault };
  }

  const steps: WalkStep[] = [];
  const pfCode = (present: boolean, rsvd = false): number =>
    pageFaultErrorCode({ present, rsvd, write, user: access.user, fetch }, ctx);
  let table = ctx.root;
  let rights: Rights = ALL_RIGHTS;

  for (const rule of ctx.levels) {
    const index = levelIndex(rule, va);
    const entryAddress = table + index * rule.entrySize;
    const frameAddress = entryAddress - (entryAddress % FRAME_SIZE);
    const [frame] = yield { frames: [frameAddress] };
    if (!frame || frame.byteLength < (entryAddress % FRAME_SIZE) + rule.entrySize) {
      const fault: WalkFault = {
        level: rule.name,
        reason: 'outside-memory',
        vector: 14,
        errorCode: pfCode(false),
        denials: [],
        explanation:
          `the ${rule.name} at ${hex(table)} lies outside readable physical memory; ` +
          `QEMU reads such addresses as zeros, so the CPU sees a not-present ${rule.name} entry`,
      };
      return { ...base, steps, translation: null, fault };
    }
    const [lo, hi] = readEntryWords(frame, entryAddress % FRAME_SIZE, rule.entrySize);
    const raw = entryFromWords(lo, hi);
    const decoded = decodeEntry(raw, rule);
    const leafShape = isLeafOf(lo, rule);
    const step: WalkStep = {
      level: rule.name,
      index,
      entryAddress: BigInt(entryAddress),
      raw,
      present: decoded.present,
      flags: decoded.flags,
      reserved: decoded.reserved,
      next: decoded.present ? decoded.address : null,
      leaf: decoded.leaf,
      pageSize: decoded.pageSize,
      protectionKey: decoded.leaf ? decoded.protectionKey : null,
    };
    steps.push(step);

    if (!decoded.present) {
      const fault: WalkFault = {
        level: rule.name,
        reason: 'not-present',
        vector: 14,
        errorCode: pfCode(false),
        denials: [],
        explanation: `${rule.name}[${index}] at ${hex(entryAddress)} is not present (P=0): ${hex(va)} is not mapped`,
      };
      return { ...base, steps, translation: null, fault };
    }
    const rsvdLo = reservedLoOf(lo, rule, leafShape);
    const rsvdHi = reservedHiOf(hi, rule, leafShape);
    if (rsvdLo !== 0 || rsvdHi !== 0) {
      const paePdpte = ctx.mode === 'PAE' && rule.name === 'PDPT';
      const what = describeReserved(decoded.reserved, rule, ctx, leafShape).join('; ');
      const fault: WalkFault = {
        level: rule.name,
        reason: 'reserved-bit',
        vector: paePdpte ? 13 : 14,
        errorCode: paePdpte ? 0 : pfCode(true, true),
        denials: [],
        explanation:
          `${rule.name}[${index}] at ${hex(entryAddress)} (${hex(raw)}) has reserved bits set: ${what}` +
          (paePdpte ? '; PAE PDPTEs are loaded with CR3, so the mov to CR3 itself raises #GP(0) (on a real CPU or KVM: QEMU\'s TCG does not check these bits and runs on)' : ''),
      };
      return { ...base, steps, translation: null, fault };
    }
    if (rule.rights) {
      rights = combineRights(rights, (lo & BIT.RW) !== 0, (lo & BIT.US) !== 0, rule.nx && (hi & XD_HI) !== 0);
    }
    if (leafShape) {
      const pageBase = pageBaseOf(lo, hi, rule);
      const offset = va & BigInt(rule.pageSize - 1);
      const translation: Translation = {
        pa: BigInt(pageBase) + offset,
        pageBase: BigInt(pageBase),
        pageSize: rule.pageSize,
        rights,
        global: (lo & BIT.G) !== 0,
        protectionKey: decoded.protectionKey,
        leafLevel: rule.name,
      };
      const verdict = checkAccess(rights, decoded.protectionKey, access, ctx);
      if (!verdict.faults) return { ...base, steps, translation, fault: null };
      const fault: WalkFault = {
        level: denialLevel(verdict.denials[0]!, steps, ctx.levels),
        reason: 'protection',
        vector: 14,
        errorCode: verdict.errorCode ?? 0,
        denials: verdict.denials,
        explanation: verdict.denials
          .map((d) => describeDenial(d, access, ctx, denialLevel(d, steps, ctx.levels), decoded.protectionKey))
          .join('; '),
      };
      return { ...base, steps, translation, fault };
    }
    table = tableAddressOf(lo, hi, rule);
  }
  // The PT level always ends the loop with a leaf or a fault; a mode table without one is a bug here.
  throw new Error(`internal: the ${ctx.mode} level table has no leaf level`);
}

/** Walks `va` through synchronous memory. See {@link walkTask}. */
export function walk(mem: PhysMemory, ctx: PagingContext, va: bigint, access: Access = SUPERVISOR_READ): WalkResult {
  return runSync(walkTask(ctx, va, access), mem);
}

function identity(va: bigint): Translation {
  return { pa: va, pageBase: va & ~0xfffn, pageSize: 4096, rights: ALL_RIGHTS, global: false, protectionKey: null, leafLevel: null };
}

/**
 * The level that took away the right a denial is about: the first such level, top down, for
 * R/W, U/S and XD; the leaf for SMEP, SMAP and protection keys (which look at the page as a whole).
 */
function denialLevel(denial: Denial, steps: readonly WalkStep[], levels: readonly LevelRule[]): LevelName {
  const has = (s: WalkStep, f: EntryFlag): boolean => s.flags.includes(f);
  const withRights = steps.filter((s) => levels.find((l) => l.name === s.level)?.rights !== false);
  let found: WalkStep | undefined;
  if (denial === 'read-only') found = withRights.find((s) => !has(s, 'RW'));
  else if (denial === 'user-to-supervisor') found = withRights.find((s) => !has(s, 'US'));
  else if (denial === 'no-execute') found = withRights.find((s) => has(s, 'NX'));
  return (found ?? steps[steps.length - 1]!).level;
}
