/**
 * Map against walk on random tables, valid and invalid, in every paging mode: every listed range
 * translates byte for byte as the walk translates it, and every address the walk maps is listed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import { hex } from '../../src/paging/addr.js';
import { diffRanges } from '../../src/paging/diff.js';
import { mapRanges, mapRangesAsync, type MapOptions, type MapRange, type MapSummary } from '../../src/paging/map.js';
import { asyncMemory, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext, withCr3, type PagingContext } from '../../src/paging/mode.js';
import { phys2virt } from '../../src/paging/phys2virt.js';
import { walk } from '../../src/paging/walk.js';

type Mode = '32-bit' | 'PAE' | '4-level' | '5-level';

const RAM = 0x100000;

/** Where an entry points. */
type Target =
  | { kind: 'table'; i: number }
  | { kind: 'abs'; a: bigint }
  | { kind: 'raw'; raw: bigint };

interface GenEntry {
  /** A clean entry has no reserved bit the case's CPU would object to; the others are raw garbage. */
  clean: boolean;
  index: number;
  target: Target;
  present: boolean;
  rw: boolean;
  us: boolean;
  ps: boolean;
  g: boolean;
  pat: boolean;
  nx: boolean;
  pkey: number;
  rsvdLow: number | null;
  rsvdHigh: number | null;
}

interface GenCase {
  mode: Mode;
  pse: boolean;
  nxe: boolean;
  maxPhyAddr: number;
  gbPages: boolean;
  tables: GenEntry[][];
  rootOffset: number;
  cr3Extra: bigint;
  probes: { choices: number[]; offset: number }[];
  window: [number, number];
  budget: number;
}

const bitOrNone = (min: number, max: number): fc.Arbitrary<number | null> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min, max }) });

const entryArb: fc.Arbitrary<GenEntry> = fc.record({
  clean: fc.nat(4).map((x) => x < 4),
  index: fc.oneof(
    { weight: 3, arbitrary: fc.nat(7) },
    { weight: 1, arbitrary: fc.constantFrom(255, 256, 257, 510, 511, 1023) },
    { weight: 1, arbitrary: fc.nat(1023) },
  ),
  target: fc.oneof(
    { weight: 10, arbitrary: fc.nat(5).map((i): Target => ({ kind: 'table', i })) },
    // Past the 1 MiB of RAM: the table cannot be read.
    { weight: 1, arbitrary: fc.constantFrom(0x100000n, 0x7f000000n, 0x123456000n).map((a): Target => ({ kind: 'abs', a })) },
    { weight: 4, arbitrary: fc.bigInt(0n, (1n << 44n) - 1n).map((a): Target => ({ kind: 'abs', a: a & ~0xfffn })) },
    { weight: 1, arbitrary: fc.bigInt(0n, (1n << 64n) - 1n).map((raw): Target => ({ kind: 'raw', raw })) },
  ),
  present: fc.nat(9).map((x) => x < 9),
  rw: fc.boolean(),
  us: fc.boolean(),
  ps: fc.nat(9).map((x) => x < 4),
  g: fc.boolean(),
  pat: fc.boolean(),
  nx: fc.nat(9).map((x) => x < 3),
  pkey: fc.nat(15).map((k) => (k < 12 ? 0 : k)),
  rsvdLow: bitOrNone(12, 21),
  rsvdHigh: bitOrNone(32, 62),
});

const caseArb: fc.Arbitrary<GenCase> = fc.record({
  mode: fc.constantFrom<Mode>('32-bit', 'PAE', '4-level', '5-level'),
  pse: fc.boolean(),
  nxe: fc.boolean(),
  maxPhyAddr: fc.constantFrom(36, 40, 46, 52),
  gbPages: fc.boolean(),
  tables: fc.array(fc.array(entryArb, { maxLength: 8 }), { minLength: 1, maxLength: 6 }),
  rootOffset: fc.nat(1),
  cr3Extra: fc.oneof({ weight: 8, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(0x8n, 0x18n, 1n << 45n, 1n << 63n) }),
  probes: fc.array(fc.record({ choices: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }), offset: fc.nat(0xfff) }), { minLength: 20, maxLength: 40 }),
  window: fc.tuple(fc.nat(), fc.nat()),
  budget: fc.nat(300),
});

/** The registers and features of a case. */
function contextOf(c: GenCase, root: number): PagingContext {
  const cr4 = { '32-bit': 0n, PAE: 0x20n, '4-level': 0x20n, '5-level': 0x1020n }[c.mode] | (c.pse ? 0x10n : 0n);
  const efer = (c.mode === '4-level' || c.mode === '5-level' ? 0x500n : 0n) | (c.nxe && c.mode !== '32-bit' ? 0x800n : 0n);
  return pagingContext({ cr0: 0x80010001n, cr3: BigInt(root) | c.cr3Extra, cr4, efer }, { maxPhyAddr: c.maxPhyAddr, gbPages: c.gbPages });
}

/**
 * Writes the case's tables into memory; returns the memory and the root's address. Clean entries
 * are shaped to what the case's CPU accepts (address below MAXPHYADDR, XD only with NXE, keys only
 * in long mode, huge pages aligned, PAE PDPTEs with P/PWT/PCD only); the others go in as generated.
 */
function build(c: GenCase): { mem: SparseMemory; root: number } {
  const mem = new SparseMemory(RAM);
  const frame = (i: number): number => 0x1000 * ((i % c.tables.length) + 1);
  const wide = c.mode !== '32-bit';
  const longMode = c.mode === '4-level' || c.mode === '5-level';
  const root = frame(0) + (c.mode === 'PAE' ? c.rootOffset * 32 : 0);
  c.tables.forEach((entries, t) => {
    for (const e of entries) {
      const slot = frame(t) + (wide ? (e.index % 512) * 8 : (e.index % 1024) * 4);
      let raw: bigint;
      if (e.target.kind === 'raw') raw = e.target.raw;
      else {
        raw = e.target.kind === 'table' ? BigInt(frame(e.target.i)) : e.target.a;
        const huge = e.ps && (e.target.kind === 'abs' || !e.clean);
        if (e.clean && e.target.kind === 'abs') {
          const width = BigInt(wide ? Math.min(c.maxPhyAddr, 44) : 32);
          raw &= (1n << width) - 1n;
          if (huge) raw &= e.pat ? ~0x3fffffffn : ~0x1fffffn;
        }
        if (e.present) raw |= 1n;
        if (e.rw) raw |= 2n;
        if (e.us) raw |= 4n;
        if (huge) raw |= 0x80n;
        if (e.g) raw |= 0x100n;
        if (e.pat && !e.clean) raw |= 0x1000n;
        if (e.nx && (!e.clean || (c.nxe && wide))) raw |= 1n << 63n;
        if (!e.clean || longMode) raw |= BigInt(e.pkey) << 59n;
        if (!e.clean && e.rsvdLow !== null) raw |= 1n << BigInt(e.rsvdLow);
        if (!e.clean && e.rsvdHigh !== null) raw |= 1n << BigInt(e.rsvdHigh);
        if (e.clean && c.mode === 'PAE' && slot >= root && slot < root + 32) raw &= ~0xfff0000000000fe6n;
      }
      if (wide) mem.write64(slot, raw);
      else mem.write32(slot, Number(raw & 0xffffffffn));
    }
  });
  return { mem, root };
}

function collect(mem: PhysMemory, ctx: PagingContext, opts: MapOptions = {}): { ranges: MapRange[]; summary: MapSummary } {
  const it = mapRanges(mem, ctx, opts);
  const ranges: MapRange[] = [];
  for (;;) {
    const r = it.next();
    if (r.done) return { ranges, summary: r.value };
    ranges.push(r.value);
  }
}

/** The range holding `va` (ranges ascending), or null. */
function rangeAt(ranges: readonly MapRange[], va: bigint): MapRange | null {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (va < r.va) hi = mid - 1;
    else if (va >= r.va + r.size) lo = mid + 1;
    else return r;
  }
  return null;
}

/** Linear index (sign extension dropped) to canonical address. */
function canonical(ctx: PagingContext, index: bigint): bigint {
  if (ctx.vaBits === 32) return index;
  const half = 1n << BigInt(ctx.vaBits - 1);
  return index < half ? index : index - (1n << BigInt(ctx.vaBits)) + (1n << 64n);
}

/**
 * Addresses that follow the tables: at each level a present entry of the table reached so far is
 * picked (now and then any index), and its address taken as the next table. Most of them hit
 * something, which the walk (the oracle) then decides.
 */
function probeAddresses(c: GenCase, ctx: PagingContext, mem: PhysMemory): bigint[] {
  return c.probes.map(({ choices, offset }) => {
    let index = 0n;
    let table = ctx.root;
    ctx.levels.forEach((rule, d) => {
      const count = 1 << rule.indexBits;
      const frame = mem.frame(table - (table % 0x1000));
      const entry = (i: number): [number, number] => {
        const at = (table % 0x1000) + i * rule.entrySize;
        return rule.entrySize === 8 ? [frame!.getUint32(at, true), frame!.getUint32(at + 4, true)] : [frame!.getUint32(at, true), 0];
      };
      const present: number[] = [];
      for (let i = 0; frame && i < count; i++) if ((entry(i)[0] & 1) !== 0) present.push(i);
      const choice = choices[d] ?? 0;
      const idx = choice % 4 === 3 || present.length === 0 ? (choice >>> 2) % count : present[choice % present.length]!;
      index |= BigInt(idx) << BigInt(rule.shift);
      if (frame) {
        const [lo, hi] = entry(idx);
        table = (hi & 0xfffff) * 0x100000000 + ((lo & 0xfffff000) >>> 0);
      }
    });
    return canonical(ctx, index | BigInt(offset));
  });
}

/** Checks that `va` translates as `r` says. */
function expectTranslates(mem: PhysMemory, ctx: PagingContext, r: MapRange, va: bigint): void {
  const t = walk(mem, ctx, va).translation;
  const where = `${hex(va)} in ${hex(r.va)}+${hex(r.size)} (${ctx.mode})`;
  expect(t, where).not.toBeNull();
  expect({ pa: t!.pa, pageSize: t!.pageSize, ...t!.rights, global: t!.global, protectionKey: t!.protectionKey }, where).toEqual({
    pa: r.pa + (va - r.va),
    pageSize: r.pageSize,
    write: r.write,
    user: r.user,
    execute: r.execute,
    global: r.global,
    protectionKey: r.protectionKey,
  });
}

/** The addresses of a range worth walking: ends, page boundaries on both sides, a random offset. */
function samplesOf(r: MapRange, salt: number): bigint[] {
  const page = BigInt(r.pageSize);
  const last = r.va + r.size - 1n;
  const out = [r.va, last, r.va + (BigInt(salt) % r.size)];
  for (let k = 1n; k <= 2n; k++) {
    if (k * page < r.size) out.push(r.va + k * page - 1n, r.va + k * page, last - k * page + 1n, last - k * page);
  }
  return out;
}

/** Runs per property: about 5 s for the file on one core. */
const NUM_RUNS = 1000;

describe('property: map agrees with walk on random tables', () => {
  it('every range walks to the same PA and rights, every walked address is listed, nothing else is', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { mem, root } = build(c);
        const ctx = contextOf(c, root);
        const { ranges, summary } = collect(mem, ctx);

        // Well-formed: ascending, disjoint, inside the mode's addresses, whole pages.
        let end = -1n;
        let pages = 0n;
        for (const r of ranges) {
          expect(r.size > 0n && r.va > end).toBe(true);
          expect(r.size % BigInt(r.pageSize)).toBe(0n);
          expect(r.va % BigInt(r.pageSize)).toBe(0n);
          expect(r.pa % BigInt(r.pageSize)).toBe(0n);
          end = r.va + r.size - 1n;
          pages += r.size / BigInt(r.pageSize);
        }
        if (ctx.vaBits === 32) expect(end < 1n << 32n).toBe(true);
        expect(pages).toBe(BigInt(summary.leaves));
        expect(summary.truncated).toEqual([]);

        // Sound: every listed byte we try translates as listed.
        const step = Math.max(1, Math.floor(ranges.length / 25));
        for (let i = 0; i < ranges.length; i += step) {
          for (const va of samplesOf(ranges[i]!, i * 7919 + c.probes.length)) expectTranslates(mem, ctx, ranges[i]!, va);
        }

        // Complete: addresses built from the tables' own indices map exactly when a range lists them.
        for (const va of probeAddresses(c, ctx, mem)) {
          const r = rangeAt(ranges, va);
          if (r) expectTranslates(mem, ctx, r, va);
          else expect(walk(mem, ctx, va).translation, `${hex(va)} is not listed (${ctx.mode})`).toBeNull();
        }

        // Windows: the map of a window is the full map clipped to it.
        const span = ctx.vaBits === 32 ? 1n << 32n : 1n << BigInt(ctx.vaBits);
        const a = (BigInt(c.window[0]) * 0x9e3779b97f4an) % span;
        const b = (BigInt(c.window[1]) * 0x5851f42d4c95n) % span;
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const from = canonical(ctx, lo);
        const to = canonical(ctx, hi);
        const clipped = ranges
          .filter((r) => r.va + r.size - 1n >= from && r.va <= to)
          .map((r) => {
            const s = r.va < from ? from : r.va;
            const e = r.va + r.size - 1n > to ? to : r.va + r.size - 1n;
            return { ...r, va: s, pa: r.pa + (s - r.va), size: e - s + 1n };
          });
        expect(collect(mem, ctx, { from, to }).ranges).toEqual(clipped);

        // Bounded loops: with a small budget what is listed is still right.
        for (const r of collect(mem, ctx, { maxCyclicLeaves: c.budget }).ranges.slice(0, 20)) {
          expectTranslates(mem, ctx, r, r.va);
          expectTranslates(mem, ctx, r, r.va + r.size - 1n);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('random addresses outside every range do not map; the walk never throws on garbage', () => {
    fc.assert(
      fc.property(caseArb, fc.array(fc.bigInt(0n, (1n << 64n) - 1n), { minLength: 30, maxLength: 30 }), (c, randoms) => {
        const { mem, root } = build(c);
        const ctx = contextOf(c, root);
        const { ranges } = collect(mem, ctx);
        const span = ctx.vaBits === 32 ? 1n << 32n : 1n << BigInt(ctx.vaBits);
        const near = ranges.flatMap((r) => [r.va - 1n, r.va + r.size]).filter((v) => v >= 0n && v < 1n << 64n);
        for (const va of [...randoms.map((x) => canonical(ctx, x % span)), ...near.slice(0, 40)]) {
          if (ctx.vaBits === 32 && va >= 1n << 32n) continue;
          const w = walk(mem, ctx, va);
          const r = rangeAt(ranges, va);
          if (r === null) expect(w.translation, `${hex(va)} (${ctx.mode})`).toBeNull();
          else expect(w.translation?.pa).toBe(r.pa + (va - r.va));
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('phys2virt finds every probed address; a space diffed with itself is empty; async equals sync', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { mem, root } = build(c);
        const ctx = contextOf(c, root);
        const { ranges, summary } = collect(mem, ctx);
        for (const va of probeAddresses(c, ctx, mem).slice(0, 5)) {
          const t = walk(mem, ctx, va).translation;
          if (t) expect(phys2virt(mem, ctx, t.pa).map((a) => a.va)).toContain(va);
        }
        expect([...diffRanges(mem, ctx, ctx)]).toEqual([]);
        const other = withCr3(ctx, BigInt(0x1000 * ((root >> 12) % c.tables.length) + 0x1000));
        for (const d of diffRanges(mem, ctx, other)) {
          const mid = d.va + d.size / 2n;
          const here = walk(mem, ctx, mid).translation;
          const there = walk(mem, other, mid).translation;
          expect(here === null).toBe(d.now === null);
          expect(there === null).toBe(d.before === null);
        }
        const got: MapRange[] = [];
        const it = mapRangesAsync(asyncMemory(mem), ctx);
        for (;;) {
          const r = await it.next();
          if (r.done) {
            expect(r.value).toEqual(summary);
            break;
          }
          got.push(r.value);
        }
        expect(got).toEqual(ranges);
      }),
      { numRuns: 150 },
    );
  });
});
