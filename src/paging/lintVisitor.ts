/**
 * The lint's tree visitor: checks every present entry as `traverseTask` hands it over, and records
 * what the grouped findings need (runs of W+X and user pages, NX above code, table references).
 *
 * Each table is linted once per (depth, rights from above): when a table is reached again the same
 * way (a shared table), its summary is replayed at the new address instead of walking it again, so
 * 512 entries that all point at one table cost one table, not 512. Cyclic edges are never followed.
 */
import { hex } from './addr.js';
import { XD_HI, pageBaseOf, tableAddressOf } from './entry.js';
import type { LintFinding } from './lint.js';
import { reservedFinding, reservedParts } from './lintEntry.js';
import { entryName, findingAt, kernelHalfVpn, rangeText, vaOf, type Where } from './lintFinding.js';
import type { Suspect, SuspectReason } from './lintPointers.js';
import type { RamMap } from './lintRam.js';
import { Collector, type Run, type Summary } from './lintRuns.js';
import { FRAME_SIZE, entryFromWords } from './memory.js';
import type { PagingContext } from './mode.js';
import { R_NX, R_USER, R_WRITE, type EntryVisit, type TreeVisitor } from './tree.js';

/** Bit 5 (A) of an entry: reserved in a PAE PDPTE, yet set there by QEMU's TCG. */
const PDPTE_ACCESSED = 0x20;

/** What the lint learnt about a frame when it asked for it. */
export type FrameState = 'outside' | 'unreadable' | 'empty' | 'data';

/** A leaf whose page has no byte of RAM. */
export interface PastRamLeaf {
  readonly where: Where;
  readonly pa: number;
  readonly size: number;
}

/** An upper-level entry with NX set, and how many leaves below it leave their own NX clear. */
export interface NxAbove {
  readonly where: Where;
  count: number;
}

/** An entry the traversal went through, as the levels below see it. */
interface Through {
  readonly entryAddress: number;
  readonly vpn: number;
  readonly nx: boolean;
}

/** The tree visitor of the lint; read its fields once the traversal is done. */
export class LintWalker implements TreeVisitor {
  /** Findings about single entries, complete. */
  readonly findings: LintFinding[] = [];
  /** Entries whose target looks wrong, to be explained when the whole tree is known. */
  readonly suspects: Suspect[] = [];
  readonly pastRam: PastRamLeaf[] = [];
  /** Table address -> the entries that reference it (cyclic edges excluded), in VA order. */
  readonly refs = new Map<number, Where[]>();
  /** Table address -> the depths it was linted at. */
  readonly tableDepths = new Map<number, Set<number>>();
  /** Entry address -> an upper-level entry with NX. */
  readonly nxAbove = new Map<number, NxAbove>();
  /** Tables whose entries were read. */
  readonly scanned = new Set<number>();
  /** Present entries examined (each table counted once). */
  entries = 0;
  /** PAE: page directory address -> its PDPT index (a PD entry pointing at one is a self-map slot). */
  paePds: ReadonlyMap<number, number> = new Map();

  private readonly seen = new Set<string>();
  private readonly refSeen = new Set<string>();
  private readonly open: Collector[];
  private readonly through: Through[] = [];
  private readonly counting: boolean[] = [true];
  private readonly memo = new Map<string, Summary>();
  private readonly half: number;

  /** `frames`: what the driver learnt about each frame it fetched (filled as the traversal runs). */
  constructor(
    private readonly ctx: PagingContext,
    private readonly ram: RamMap,
    private readonly frames: ReadonlyMap<number, FrameState>,
  ) {
    this.half = kernelHalfVpn(ctx);
    this.open = [new Collector(0, null, this.half)];
    this.scanned.add(ctx.root);
    this.tableDepths.set(ctx.root, new Set([0]));
  }

  /** The top table's collector: every run, in absolute page numbers, and all executable leaves. */
  get top(): Collector {
    return this.open[0]!;
  }

  /** See {@link TreeVisitor.entry}. */
  entry(e: EntryVisit): boolean {
    if (this.counting[e.depth]) this.entries++;
    if (this.ctx.mode === 'PAE' && e.depth === 0 && (e.lo & PDPTE_ACCESSED) !== 0) this.accessedPdpte(e);
    if (e.rsvdLo !== 0 || e.rsvdHi !== 0) {
      this.reserved(e);
      return false;
    }
    if (e.leaf) {
      this.leaf(e);
      return false;
    }
    return e.child === null ? false : this.pointer(e, e.child);
  }

  /** See {@link TreeVisitor.leaveTable}: keeps the table's summary for later references. */
  leaveTable(_table: number, depth: number): void {
    const c = this.open[depth];
    if (depth > 0 && c?.key) this.memo.set(c.key, c.summary());
  }

  private where(e: EntryVisit): Where {
    return {
      level: e.rule.name,
      depth: e.depth,
      index: e.index,
      entryAddress: e.table + e.index * e.rule.entrySize,
      raw: entryFromWords(e.lo, e.hi),
      vpn: e.vpn,
      pages: e.rule.pageSize / FRAME_SIZE,
    };
  }

  /** True the first time `what` is seen for the entry at `entryAddress`. */
  private once(what: string, entryAddress: number): boolean {
    const key = `${what}@${entryAddress}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  /** Bit 5 of a PAE PDPTE: set by QEMU's TCG as it walks, and by no real CPU, which would reject it. */
  private accessedPdpte(e: EntryVisit): void {
    const w = this.where(e);
    if (!this.once('pae-pdpte-accessed', w.entryAddress)) return;
    this.findings.push(
      findingAt(
        this.ctx,
        w,
        'pae-pdpte-accessed',
        'warning',
        `${entryName(w)} has bit 5 (A) set: QEMU's TCG sets it in every PAE PDPT entry it walks, but the SDM reserves it, and a real CPU (or QEMU under KVM) raises #GP(0) at the mov to CR3 if the kernel wrote it`,
        { hint: 'under QEMU TCG this is QEMU\'s doing and harmless; if your kernel sets it (a long-mode entry template with A), give PDPT entries only P, PWT, PCD and the address' },
      ),
    );
  }

  private reserved(e: EntryVisit): void {
    const w = this.where(e);
    const rsvd = (BigInt(e.rsvdHi) << 32n) | BigInt(e.rsvdLo);
    for (const part of reservedParts(this.ctx, e.rule, rsvd, e.leaf)) {
      if (!this.once(part.code, w.entryAddress)) continue;
      const f = reservedFinding(this.ctx, e.rule, w, part, e.leaf);
      if (part.code !== 'above-maxphyaddr') {
        this.findings.push(f);
        continue;
      }
      const address = e.leaf ? pageBaseOf(e.lo, e.hi, e.rule) : tableAddressOf(e.lo, e.hi, e.rule);
      this.suspects.push({ where: w, rule: e.rule, leaf: e.leaf, address, reason: 'above-maxphyaddr', fallback: f });
    }
  }

  private leaf(e: EntryVisit): void {
    const rule = e.rule;
    const pages = rule.pageSize / FRAME_SIZE;
    if (this.ram.known) {
      const pa = pageBaseOf(e.lo, e.hi, rule);
      if (!this.ram.overlaps(pa, rule.pageSize) && this.once('page-past-ram', e.table + e.index * rule.entrySize)) {
        const w = this.where(e);
        this.pastRam.push({ where: w, pa, size: rule.pageSize });
        // Only above 4 GiB: below it, MMIO (framebuffer, APIC) is everywhere and A>>12 too often aligned.
        if (pa >= 2 ** 32) this.suspects.push({ where: w, rule, leaf: true, address: pa, reason: 'outside-ram', fallback: null });
      }
    }
    const first = (): Where => this.where(e);
    if (this.ctx.nxe) {
      if ((e.hi & XD_HI) === 0) {
        for (let d = 0; d < e.depth; d++) this.countNx(this.through[d]!, 1);
        for (let k = 0; k <= e.depth; k++) this.open[k]!.exec++;
      }
      if ((e.rights & (R_WRITE | R_USER | R_NX)) === R_WRITE) this.addRun('wx', e.depth, e.vpn, pages, 1, first);
    }
    if ((e.rights & R_USER) !== 0) this.addRun('user', e.depth, e.vpn, pages, 1, first);
  }

  private pointer(e: EntryVisit, child: number): boolean {
    const entryAddress = e.table + e.index * e.rule.entrySize;
    const paeSlot = this.ctx.mode === 'PAE' && e.depth === 1 ? this.paePds.get(child) : undefined;
    if (e.cycle === 'recursive' || paeSlot !== undefined) {
      if (this.once('recursive-slot', entryAddress)) this.findings.push(this.recursive(this.where(e), child, paeSlot));
      return false;
    }
    if (e.cycle === 'loop') {
      if (this.once('table-loop', entryAddress)) this.findings.push(this.loop(e, child));
      return false;
    }
    const state = this.frames.get(child - (child % FRAME_SIZE)) ?? 'unreadable';
    if (state === 'outside' || state === 'unreadable') {
      if (this.once('table-past-ram', entryAddress)) {
        const w = this.where(e);
        const reason: SuspectReason = state === 'outside' ? 'outside-ram' : 'unreadable';
        this.suspects.push({ where: w, rule: e.rule, leaf: false, address: child, reason, fallback: this.pastRamTable(w, child, reason) });
      }
      return false;
    }
    this.addRef(child, e, entryAddress);
    if (state === 'empty' && this.once('empty', entryAddress)) {
      this.suspects.push({ where: this.where(e), rule: e.rule, leaf: false, address: child, reason: 'empty', fallback: null });
    }
    const nx = e.rule.nx && (e.hi & XD_HI) !== 0;
    if (nx && !this.nxAbove.has(entryAddress)) this.nxAbove.set(entryAddress, { where: this.where(e), count: 0 });
    const here: Through = { entryAddress, vpn: e.vpn, nx };
    const key = `${child}:${e.depth + 1}:${e.rights}`;
    const done = this.memo.get(key);
    if (done) {
      this.replay(e.depth, here, done);
      return false;
    }
    this.through[e.depth] = here;
    this.open[e.depth + 1] = new Collector(e.vpn, key, this.half);
    this.counting[e.depth + 1] = !this.scanned.has(child);
    this.scanned.add(child);
    let depths = this.tableDepths.get(child);
    if (!depths) this.tableDepths.set(child, (depths = new Set()));
    depths.add(e.depth + 1);
    return true;
  }

  /** Adds a run to the collectors of every table on the path, down to the one at `depth`. */
  private addRun(kind: 'wx' | 'user', depth: number, vpn: number, pages: number, count: number, first: () => Where): void {
    for (let k = 0; k <= depth; k++) {
      const c = this.open[k]!;
      c[kind].add(vpn - c.base, pages, count, first);
    }
  }

  private countNx(t: Through, n: number): void {
    if (!t.nx) return;
    const rec = this.nxAbove.get(t.entryAddress);
    // A table reached again with other rights is walked again: count its leaves in the first context only.
    if (rec && rec.where.vpn === t.vpn) rec.count += n;
  }

  /** Replays a linted table's summary below the entry `here` at `depth`. */
  private replay(depth: number, here: Through, s: Summary): void {
    for (let d = 0; d < depth; d++) this.countNx(this.through[d]!, s.exec);
    this.countNx(here, s.exec);
    for (let k = 0; k <= depth; k++) this.open[k]!.exec += s.exec;
    const again = (kind: 'wx' | 'user', runs: readonly Run[]): void => {
      for (const r of runs) this.addRun(kind, depth, here.vpn + r.start, r.end - r.start + 1, r.count, () => r.first);
    };
    again('wx', s.wx);
    again('user', s.user);
  }

  private addRef(child: number, e: EntryVisit, entryAddress: number): void {
    const key = `${child}<${entryAddress}`;
    if (this.refSeen.has(key)) return;
    this.refSeen.add(key);
    let list = this.refs.get(child);
    if (!list) this.refs.set(child, (list = []));
    list.push(this.where(e));
  }

  private recursive(w: Where, child: number, paeIndex: number | undefined): LintFinding {
    const ctx = this.ctx;
    const range = rangeText(ctx, w.vpn, w.vpn + w.pages - 1);
    if (paeIndex !== undefined) {
      return findingAt(
        ctx,
        w,
        'recursive-slot',
        'info',
        `${entryName(w)} references the PD of PDPT[${paeIndex}] at ${hex(child)}: a recursive (self-map) slot, so ${range} ` +
          `shows that PD's entries as page tables; not walked again`,
      );
    }
    const top = ctx.levels[0]!;
    let selfVpn = 0;
    for (const l of ctx.levels) selfVpn += w.index * 2 ** (l.shift - 12);
    return findingAt(
      ctx,
      w,
      'recursive-slot',
      'info',
      `${entryName(w)} references the ${top.name} itself: a recursive (self-map) slot, so ${range} shows the paging structures ` +
        `(the ${top.name} itself at ${hex(vaOf(ctx, selfVpn))}); not walked again`,
    );
  }

  private loop(e: EntryVisit, child: number): LintFinding {
    const w = this.where(e);
    const target = this.ctx.levels[e.path.indexOf(child)]?.name ?? e.rule.name;
    const as = this.ctx.levels[e.depth + 1]!.name;
    return findingAt(
      this.ctx,
      w,
      'table-loop',
      'error',
      `${entryName(w)} points back at the ${target} at ${hex(child)}, a table above it on the same path: a loop ` +
        `(the CPU reads that ${target} as a ${as} here); not walked again`,
      { hint: `only the top-level table may reference itself (a recursive slot); this entry was probably meant to point at a ${as} of its own` },
    );
  }

  private pastRamTable(w: Where, child: number, reason: SuspectReason): LintFinding {
    const as = this.ctx.levels[w.depth + 1]!.name;
    const why = reason === 'outside-ram' ? 'which is not RAM' : 'which cannot be read';
    return findingAt(
      this.ctx,
      w,
      'table-past-ram',
      'error',
      `${entryName(w)} points at a ${as} at ${hex(child)}, ${why}: the CPU would read whatever is there (QEMU: zeros or device registers) as a ${as}`,
      { hint: `a table entry must hold the physical address of a 4 KiB-aligned ${as} in RAM` },
    );
  }
}
