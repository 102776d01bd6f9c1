/**
 * Entries whose target is not where a table or page can be (outside RAM, unreadable, above
 * MAXPHYADDR, or an empty frame), and the most common reasons why: the C bitfield bug (a physical
 * address stored where `addr >> 12` belongs, so the entry holds `addr << 12`, or the reverse), and
 * a virtual address stored where the physical one belongs.
 */
import { hex, isCanonical } from './addr.js';
import { BIT, isLeafOf, pageBaseOf, reservedHiOf, reservedLoOf, tableAddressOf } from './entry.js';
import type { LevelRule } from './levels.js';
import type { LintFinding } from './lint.js';
import { entryName, findingAt, type Where } from './lintFinding.js';
import type { RamMap } from './lintRam.js';
import { FRAME_SIZE, type FrameData, type PagingTask } from './memory.js';
import type { PagingContext } from './mode.js';
import { walkTask } from './walk.js';

/** Why an entry's target looks wrong. */
export type SuspectReason = 'outside-ram' | 'unreadable' | 'above-maxphyaddr' | 'empty';

/** An entry whose target looks wrong, to be explained once the whole tree is known. */
export interface Suspect {
  readonly where: Where;
  /** The rule of the entry's own level. */
  readonly rule: LevelRule;
  /** True for a leaf (the target is a page), false for a table pointer. */
  readonly leaf: boolean;
  /** The address the entry holds (all address bits, reserved ones included). */
  readonly address: number;
  readonly reason: SuspectReason;
  /** What to report when no explanation is found; null when the target may be fine (an empty table). */
  readonly fallback: LintFinding | null;
}

/** Reads frames for the lint (RAM filter and bookkeeping included). */
export type FrameFetch = (frames: readonly number[]) => PagingTask<FrameData[]>;

/** The findings for a set of suspects, and the entries explained as shifted pointers. */
export interface Resolution {
  readonly findings: LintFinding[];
  /** Entry addresses that received a 'shifted-pointer' finding. */
  readonly shifted: ReadonlySet<number>;
}

interface Candidate {
  readonly addr: number;
  /** What the entry holds instead of the address: `addr<<12` or `addr>>12`. */
  readonly holds: '<<12' | '>>12';
}

const bits = (high: number, low: number): bigint => ((1n << BigInt(high - low + 1)) - 1n) << BigInt(low);

/** The entry `raw` at `rule` with its address replaced by `addr`, other bits kept. */
export function withAddress(raw: bigint, rule: LevelRule, leaf: boolean, addr: number): bigint {
  const a = BigInt(addr);
  if (rule.entrySize === 4) {
    if (leaf && rule.ps === 'page') return (raw & ~0xffdfe000n) | (a & 0xffc00000n) | ((a >> 32n) << 13n);
    return (raw & ~0xfffff000n) | a;
  }
  return (raw & ~bits(51, leaf ? rule.shift : 12)) | a;
}

/**
 * True when the frame looks like a table at `rule`: at least one present entry, and every present
 * entry free of reserved bits and pointing inside RAM (when RAM is known).
 */
export function plausibleTable(frame: DataView, rule: LevelRule, ram: RamMap): boolean {
  let present = 0;
  const size = rule.entrySize;
  for (let i = 0; i < 1 << rule.indexBits; i++) {
    const lo = frame.getUint32(i * size, true);
    if ((lo & BIT.P) === 0) continue;
    const hi = size === 8 ? frame.getUint32(i * size + 4, true) : 0;
    const leaf = isLeafOf(lo, rule);
    if (reservedLoOf(lo, rule, leaf) !== 0 || reservedHiOf(hi, rule, leaf) !== 0) return false;
    const target = leaf ? pageBaseOf(lo, hi, rule) : tableAddressOf(lo, hi, rule);
    if (!ram.contains(target, leaf ? rule.pageSize : FRAME_SIZE)) return false;
    present++;
  }
  return present > 0;
}

/** `A>>12` and `A<<12` where they could be the address meant: aligned, addressable, inside RAM. */
function candidates(s: Suspect, ctx: PagingContext, ram: RamMap): Candidate[] {
  const limit = s.rule.entrySize === 4 && !(s.leaf && s.rule.ps === 'page') ? 2 ** 32 : 2 ** ctx.maxPhyAddr;
  const align = s.leaf ? s.rule.pageSize : FRAME_SIZE;
  const out: Candidate[] = [];
  const right = Math.floor(s.address / FRAME_SIZE);
  if (right !== 0 && right % align === 0 && right < limit) out.push({ addr: right, holds: '<<12' });
  // A leaf whose page is an address >>12 lands in low memory, where RAM and legacy MMIO mix: not guessed.
  const left = s.address * FRAME_SIZE;
  if (!s.leaf && left !== 0 && left < limit) out.push({ addr: left, holds: '>>12' });
  return out.filter((c) => ram.contains(c.addr, align));
}

/** Runs a task through the lint's frame fetch. */
function* via<T>(task: PagingTask<T>, fetch: FrameFetch): PagingTask<T> {
  let step = task.next();
  while (!step.done) step = task.next(yield* fetch(step.value.frames));
  return step.value;
}

const WHY: Record<SuspectReason, (ctx: PagingContext) => string> = {
  'outside-ram': () => 'which is not RAM',
  unreadable: () => 'which cannot be read',
  'above-maxphyaddr': (ctx) => `which is above MAXPHYADDR=${ctx.maxPhyAddr}`,
  empty: () => 'an all-zero frame',
};

/**
 * Explains each suspect: a 'shifted-pointer' finding when `A>>12` or `A<<12` is a plausible table
 * (or, for a leaf, a page in RAM), else its fallback, with a hint when the entry holds a virtual
 * address these tables map. `knownTables`: table address -> the depths it was linted at.
 */
export function* resolveSuspects(
  suspects: readonly Suspect[],
  ctx: PagingContext,
  ram: RamMap,
  knownTables: ReadonlyMap<number, ReadonlySet<number>>,
  fetch: FrameFetch,
): PagingTask<Resolution> {
  const plans = suspects.map((s) => ({ s, cands: candidates(s, ctx, ram) }));
  const known = (s: Suspect, c: Candidate): boolean => !s.leaf && (knownTables.get(c.addr)?.has(s.where.depth + 1) ?? false);
  const wanted = new Set<number>();
  for (const { s, cands } of plans) {
    for (const c of cands) if (!known(s, c) && (!s.leaf || !ram.known)) wanted.add(c.addr);
  }
  const list = [...wanted];
  const data = list.length > 0 ? yield* fetch(list) : [];
  const frames = new Map(list.map((a, i) => [a, data[i] ?? null]));

  const findings: LintFinding[] = [];
  const shifted = new Set<number>();
  for (const { s, cands } of plans) {
    const childRule = s.leaf ? null : (ctx.levels[s.where.depth + 1] ?? null);
    const hit = cands.find((c) => {
      if (known(s, c)) return true;
      if (s.leaf) return !ram.known ? frames.get(c.addr) != null : true;
      const frame = frames.get(c.addr);
      return frame != null && childRule !== null && plausibleTable(frame, childRule, ram);
    });
    if (hit) {
      findings.push(shiftedFinding(ctx, s, hit, known(s, hit), childRule));
      shifted.add(s.where.entryAddress);
      continue;
    }
    if (!s.fallback) continue;
    const hint = s.leaf ? null : yield* virtualHint(s, ctx, ram, fetch);
    findings.push(hint ? { ...s.fallback, hint } : s.fallback);
  }
  return { findings, shifted };
}

function shiftedFinding(ctx: PagingContext, s: Suspect, c: Candidate, known: boolean, childRule: LevelRule | null): LintFinding {
  const child = childRule?.name ?? 'table';
  const size = s.rule.pageSize >= 1 << 30 ? '1 GiB' : s.rule.pageSize >= 1 << 21 ? `${s.rule.pageSize >> 20} MiB` : '4 KiB';
  const what = s.leaf ? `a ${size} page` : `a ${child}`;
  const evidence = s.leaf
    ? `${hex(c.addr)} is RAM`
    : known
      ? `${hex(c.addr)} is a ${child} referenced elsewhere in these tables`
      : `${hex(c.addr)} holds a plausible ${child}`;
  const op = c.holds === '<<12' ? '>>' : '<<';
  const fixed = withAddress(s.where.raw, s.rule, s.leaf, c.addr);
  const hint =
    c.holds === '<<12'
      ? `the entry holds addr<<12: a physical address was stored into a field that expects addr>>12 (a C bitfield); the entry should be ${hex(fixed)}`
      : `the entry holds addr>>12: a page frame number was stored where the physical address belongs (shift it left by 12); the entry should be ${hex(fixed)}`;
  const severity = s.leaf && s.reason !== 'above-maxphyaddr' ? 'warning' : 'error';
  return findingAt(
    ctx,
    s.where,
    'shifted-pointer',
    severity,
    `${entryName(s.where)} points at ${what} at ${hex(s.address)}, ${WHY[s.reason](ctx)}; ${hex(s.address)} ${op} 12 = ${evidence}`,
    { hint },
  );
}

/**
 * When a table pointer holds a linear address that these very tables map to RAM (a kernel storing
 * the virtual address of the table it allocated), a hint with the physical address and the entry.
 */
function* virtualHint(s: Suspect, ctx: PagingContext, ram: RamMap, fetch: FrameFetch): PagingTask<string | null> {
  if (s.reason === 'empty') return null;
  const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
  let va: bigint;
  if (longMode) {
    va = s.where.raw & 0xfffffffffffff000n;
    if (va >> 63n === 0n || !isCanonical(va, ctx.vaBits)) return null;
  } else {
    if (s.address >= 2 ** 32) return null;
    va = BigInt(s.address);
  }
  const r = yield* via(walkTask(ctx, va), fetch);
  const pa = r.translation?.pa;
  if (pa === undefined || !ram.contains(Number(pa), FRAME_SIZE)) return null;
  if (ram.known === false && (yield* fetch([Number(pa)]))[0] == null) return null;
  return (
    `${hex(va)} is a virtual address: these tables map it to physical ${hex(pa)}; ` +
    `store the physical address of the table, not its virtual address (entry ${hex((s.where.raw & 0xfffn) | pa)})`
  );
}
