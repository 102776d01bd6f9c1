/**
 * The lint of page tables: what kernel authors get wrong in the tables they build, found by one
 * traversal of the whole tree (see `tree.ts`) and explained in plain words with the likely cause.
 *
 * It is a task (see `memory.ts`), so it runs on a dump and on a live target alike. Frames outside
 * the known RAM are never read (reading MMIO through a debugger can have side effects), cyclic
 * edges are never followed, and a shared table is linted once however often it is referenced.
 */
import { hex, isCanonical } from './addr.js';
import { BIT, reservedHiOf, reservedLoOf, tableAddressOf } from './entry.js';
import { findingAt, type Where } from './lintFinding.js';
import { nxAboveCodeFindings, pastRamFindings, sharedTableFindings, userInKernelFindings, wxKernelFindings } from './lintGroups.js';
import { resolveSuspects, type FrameFetch } from './lintPointers.js';
import { RamMap } from './lintRam.js';
import { LintWalker, type FrameState } from './lintVisitor.js';
import type { LevelName } from './levels.js';
import { FRAME_SIZE, runAsync, runSync, type AsyncPhysMemory, type PagingTask, type PhysMemory } from './memory.js';
import type { PagingContext } from './mode.js';
import { traverseTask, vaToVpn } from './tree.js';

/** What a finding is about. */
export type LintCode =
  /** Reserved bits set in a present entry (not covered by a more specific code). */
  | 'reserved-bits'
  /** Bit 63 set while EFER.NXE=0. */
  | 'nx-reserved'
  /** Address bits at or above MAXPHYADDR (in an entry, or in CR3). */
  | 'above-maxphyaddr'
  /** A table pointer (or CR3) to memory that is not RAM (outside `ram`, or unreadable). */
  | 'table-past-ram'
  /** A leaf mapping non-RAM physical memory (info: MMIO such as a framebuffer is legitimate). */
  | 'page-past-ram'
  /** The address looks like `addr << 12` or `addr >> 12` of a plausible table (the C bitfield bug). */
  | 'shifted-pointer'
  /** A huge page whose low address bits are not zero. */
  | 'huge-misaligned'
  /** PS set in a PML4E or PML5E. */
  | 'ps-in-top-level'
  /** PS set in a PDPTE on a CPU without 1 GiB pages. */
  | 'no-1g-pages'
  /** NX on an upper-level entry above leaves that are executable at their own level. */
  | 'nx-above-code'
  /** Supervisor pages that are writable and executable. */
  | 'wx-kernel'
  /** User-accessible pages in the upper (kernel) half. */
  | 'user-in-kernel-half'
  /** A table referenced from two or more entries. */
  | 'shared-table'
  /** A table reachable from itself (not a recognised recursive slot). */
  | 'table-loop'
  /** A recognised recursive (self-map) slot: info, never walked forever. */
  | 'recursive-slot'
  /** Bit 5 (A) in a PAE PDPTE: QEMU's TCG sets it, a real CPU or KVM rejects it at mov cr3 (warning). */
  | 'pae-pdpte-accessed';

/** One problem (or noteworthy fact) in the tables. */
export interface LintFinding {
  code: LintCode;
  severity: 'error' | 'warning' | 'info';
  level: LevelName;
  /** Physical address of the (first) entry concerned; for a finding about CR3, the top table's address. */
  entryAddress: bigint;
  /** Its raw value (the CR3 value for a finding about CR3). */
  raw: bigint;
  /** First linear address concerned (canonical). */
  va: bigint;
  /** Last linear address concerned (inclusive). */
  vaEnd: bigint;
  /** One line, plain words, numbers in hex. */
  message: string;
  /** What the code most likely did wrong, and what would be right. */
  hint?: string;
  /** Entries grouped into this finding. */
  count?: number;
}

/** What the lint may know beyond the tables. */
export interface LintOptions {
  /** Readable RAM [start, end); null or absent: unknown (RAM-based checks are skipped, unreadable frames still count). */
  ram?: readonly { start: bigint; end: bigint }[] | null;
  /** Where the CPU executes, if known (makes NX above it an error). */
  rip?: bigint;
  /** At most this many findings (default 1000); `omitted` says how many more were found. */
  maxFindings?: number;
}

/** The lint's answer. */
export interface LintReport {
  /** Sorted by VA, then severity (errors first). */
  findings: LintFinding[];
  /** Findings left out past `maxFindings`. */
  omitted: number;
  /** Distinct tables read. */
  tables: number;
  /** Present entries examined (each table counted once). */
  entries: number;
}

const RANK = { error: 0, warning: 1, info: 2 } as const;

/** The lint as a task (see `memory.ts`). Never throws on garbage tables. */
export function* lintTask(ctx: PagingContext, opts: LintOptions = {}): PagingTask<LintReport> {
  const max = Math.max(0, opts.maxFindings ?? 1000);
  if (ctx.levels.length === 0) return { findings: [], omitted: 0, tables: 0, entries: 0 };
  const ram = new RamMap(opts.ram);
  const states = new Map<number, FrameState>();
  const fetch: FrameFetch = function* (frames) {
    const ask = frames.filter((f) => ram.overlaps(f, FRAME_SIZE));
    const got = ask.length > 0 ? yield { frames: ask } : [];
    const byFrame = new Map(ask.map((f, i) => [f, got[i] ?? null]));
    return frames.map((f) => {
      if (!byFrame.has(f)) {
        states.set(f, 'outside');
        return null;
      }
      const data = byFrame.get(f) ?? null;
      states.set(f, data === null ? 'unreadable' : allZero(data) ? 'empty' : 'data');
      return data;
    });
  };

  const walker = new LintWalker(ctx, ram, states);
  const inner = traverseTask(ctx, walker);
  let step = inner.next();
  let first = true;
  while (!step.done) {
    const data = yield* fetch(step.value.frames);
    if (first && ctx.mode === 'PAE' && data[0]) walker.paePds = paeDirectories(ctx, data[0]);
    first = false;
    step = inner.next(data);
  }
  const rootState = states.get(ctx.root - (ctx.root % FRAME_SIZE));
  const rootRead = rootState === 'data' || rootState === 'empty';

  const resolution = yield* resolveSuspects(walker.suspects, ctx, ram, walker.tableDepths, fetch);
  const rip = opts.rip ?? null;
  const findings = [
    ...cr3Findings(ctx, rootState),
    ...walker.findings,
    ...resolution.findings,
    ...pastRamFindings(ctx, walker.pastRam.filter((l) => !resolution.shifted.has(l.where.entryAddress))),
    ...sharedTableFindings(ctx, walker.refs),
    ...nxAboveCodeFindings(ctx, walker.nxAbove.values(), rip, rip === null ? null : vpnOfVa(ctx, rip)),
    ...wxKernelFindings(ctx, walker.top.wx.runs),
    ...userInKernelFindings(ctx, walker.top.user.runs),
  ];
  const depth = (l: LevelName): number => ctx.levels.findIndex((r) => r.name === l);
  findings.sort(
    (a, b) =>
      cmp(a.va, b.va) ||
      RANK[a.severity] - RANK[b.severity] ||
      depth(a.level) - depth(b.level) ||
      cmp(a.entryAddress, b.entryAddress) ||
      a.code.localeCompare(b.code),
  );
  return {
    findings: findings.slice(0, max),
    omitted: Math.max(0, findings.length - max),
    tables: rootRead ? walker.scanned.size : 0,
    entries: walker.entries,
  };
}

/** Lints the tables of `ctx` in synchronous memory. See {@link lintTask}. */
export function lint(mem: PhysMemory, ctx: PagingContext, opts: LintOptions = {}): LintReport {
  return runSync(lintTask(ctx, opts), mem);
}

/** Lints the tables of `ctx` in asynchronous memory (a live target). See {@link lintTask}. */
export function lintAsync(mem: AsyncPhysMemory, ctx: PagingContext, opts: LintOptions = {}): Promise<LintReport> {
  return runAsync(lintTask(ctx, opts), mem);
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function allZero(frame: DataView): boolean {
  for (let off = 0; off + 4 <= frame.byteLength; off += 4) if (frame.getUint32(off, true) !== 0) return false;
  return true;
}

/** The page number of `va`, or null when the mode cannot reach it (non-canonical, above 4 GiB in legacy modes). */
function vpnOfVa(ctx: PagingContext, va: bigint): number | null {
  const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
  if (va < 0n || va >= 1n << 64n) return null;
  if (longMode) return isCanonical(va, ctx.vaBits) ? vaToVpn(va, ctx.vaBits) : null;
  return va < 1n << 32n ? Number(va >> 12n) : null;
}

/** PAE: the page directories the four PDPTEs reference (address -> PDPT index). */
function paeDirectories(ctx: PagingContext, rootFrame: DataView): Map<number, number> {
  const rule = ctx.levels[0]!;
  const out = new Map<number, number>();
  for (let i = 0; i < 4; i++) {
    const off = (ctx.root % FRAME_SIZE) + i * 8;
    const lo = rootFrame.getUint32(off, true);
    const hi = rootFrame.getUint32(off + 4, true);
    if ((lo & BIT.P) === 0 || reservedLoOf(lo, rule, false) !== 0 || reservedHiOf(hi, rule, false) !== 0) continue;
    const pd = tableAddressOf(lo, hi, rule);
    if (!out.has(pd)) out.set(pd, i);
  }
  return out;
}

/** Findings about CR3 itself: address bits above MAXPHYADDR, or a top table that cannot be read. */
function cr3Findings(ctx: PagingContext, rootState: FrameState | undefined): LintFinding[] {
  const top = ctx.levels[0]!;
  const w: Where = { level: top.name, depth: 0, index: 0, entryAddress: ctx.root, raw: ctx.cr3, vpn: 0, pages: 2 ** (ctx.vaBits - 12) };
  const out: LintFinding[] = [];
  if (ctx.cr3Reserved !== 0n) {
    out.push(
      findingAt(
        ctx,
        w,
        'above-maxphyaddr',
        'error',
        `CR3 ${hex(ctx.cr3)} has bits at or above MAXPHYADDR=${ctx.maxPhyAddr} set (${hex(ctx.cr3Reserved)}): mov to CR3 raises #GP(0)`,
        { hint: 'CR3 holds the physical address of the top table (bits 11:0 are flags or the PCID), never a virtual address' },
      ),
    );
  }
  if (rootState === 'outside' || rootState === 'unreadable') {
    out.push(
      findingAt(
        ctx,
        w,
        'table-past-ram',
        'error',
        `CR3 ${hex(ctx.cr3)} points at the ${top.name} at ${hex(ctx.root)}, which ${rootState === 'outside' ? 'is not RAM' : 'cannot be read'}: ` +
          'every translation would read garbage',
        { hint: `CR3 must hold the physical address of the ${top.name}, in RAM` },
      ),
    );
  }
  return out;
}
