/**
 * The walk on garbage: entries that point anywhere, past RAM, at their own table or at the root.
 * It must always end with a result (never throw, never loop) and never write; the only exception is
 * AddressError for a linear address the mode cannot express.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import { AddressError, virtTruncate } from '../../src/paging/addr.js';
import { PF } from '../../src/paging/errorCode.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import type { Access } from '../../src/paging/rights.js';
import { walk, type WalkResult } from '../../src/paging/walk.js';
import { ctxOf, machine, type TableMode } from './coreFixtures.js';

const MODES: readonly TableMode[] = ['32-bit', 'PAE', '4-level', '5-level'];
const MODE_CR4: Record<TableMode, bigint> = { '32-bit': 0n, PAE: CR4.PAE, '4-level': CR4.PAE, '5-level': CR4.PAE | CR4.LA57 };

/** xorshift64*: a small deterministic generator, so a failing seed reproduces. */
function prng(seed: number): () => bigint {
  let s = BigInt.asUintN(64, BigInt(seed) * 0x9e37_79b9_7f4a_7c15n + 1n);
  return () => {
    s ^= s >> 12n;
    s = BigInt.asUintN(64, s ^ (s << 25n));
    s ^= s >> 27n;
    return BigInt.asUintN(64, s * 0x2545_f491_4f6c_dd1dn);
  };
}

/** Fills `frames` frames of RAM with entries of every bad kind. */
function garbageMemory(seed: number, frames: number, root: number): SparseMemory {
  const size = frames * 4096;
  const mem = new SparseMemory(size);
  const next = prng(seed);
  // The root (when in RAM) and a few other frames hold tables; pointers favour those tables.
  const tables = [root, ...Array.from({ length: Math.min(frames, 8) }, () => Number(next() % BigInt(frames)) * 4096)];
  for (const table of tables) {
    if (table >= size) continue;
    for (let i = 0; i < 512; i++) {
      const r = next();
      const flags = r & 0xfffn;
      let entry: bigint;
      switch (Number(r >> 59n) % 10) {
        case 0:
          entry = 0n;
          break;
        case 1:
          entry = next();
          break;
        case 2:
        case 7:
        case 8:
        case 9:
          entry = BigInt(tables[Number(next() % BigInt(tables.length))]!) | flags | 1n;
          break;
        case 3:
          entry = BigInt(table) | flags;
          break;
        case 4:
          entry = BigInt(size + Number(next() % 0x10_0000n) * 4096) | flags;
          break;
        case 5:
          entry = BigInt(root) | flags | (next() & 0xfff0_0000_0000_0000n);
          break;
        default:
          entry = (next() & 0x000f_ffff_ffff_f000n) | flags | 1n;
      }
      mem.write64(table + i * 8, entry);
    }
  }
  return mem;
}

const snapshot = (mem: SparseMemory): string =>
  mem
    .writtenFrames()
    .map(([pa, b]) => `${pa}:${Buffer.from(b).toString('hex')}`)
    .join('|');

/** What every walk result must satisfy, whatever the tables held. */
function checkInvariants(r: WalkResult, ctx: PagingContext): void {
  expect(r.steps.length).toBeLessThanOrEqual(ctx.levels.length);
  const f = r.fault;
  if (f === null) {
    expect(r.translation).not.toBeNull();
    expect(r.steps.at(-1)?.leaf ?? ctx.mode === 'none').toBe(true);
    return;
  }
  if (f.reason === 'protection') {
    expect(r.translation).not.toBeNull();
    expect(f.denials.length).toBeGreaterThan(0);
  } else {
    expect(r.translation).toBeNull();
  }
  if (f.vector === 14) {
    const pBit = (f.errorCode & PF.P) !== 0;
    expect(pBit).toBe(f.reason === 'protection' || f.reason === 'reserved-bit');
    expect((f.errorCode & PF.RSVD) !== 0).toBe(f.reason === 'reserved-bit');
    expect((f.errorCode & PF.W) !== 0).toBe(r.access.kind === 'write');
    expect((f.errorCode & PF.U) !== 0).toBe(r.access.user);
  } else {
    expect(f.errorCode).toBe(0);
  }
  if (f.reason === 'not-present') expect(r.steps.at(-1)?.present).toBe(false);
  if (f.reason === 'reserved-bit' && f.level !== 'CR3') expect(r.steps.at(-1)?.reserved).not.toBe(0n);
  expect(f.explanation.length).toBeGreaterThan(0);
}

describe('walk on garbage tables', () => {
  it('always returns, never writes, and keeps its result consistent', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer(),
          frames: fc.integer({ min: 1, max: 64 }),
          mode: fc.constantFrom(...MODES),
          rootFrame: fc.integer({ min: 0, max: 80 }),
          cr3Low: fc.integer({ min: 0, max: 0xfff }),
          cr3High: fc.oneof(
            { weight: 12, arbitrary: fc.constant(0n) },
            { weight: 1, arbitrary: fc.constantFrom(1n << 63n, 1n << 40n, 0xfffn << 52n) },
          ),
          cr4: fc.subarray([CR4.PSE, CR4.SMEP, CR4.SMAP, CR4.PKE, CR4.PKS, CR4.PCIDE]),
          nxe: fc.boolean(),
          wp: fc.boolean(),
          maxPhyAddr: fc.integer({ min: 32, max: 52 }),
          gbPages: fc.boolean(),
          pkru: fc.nat(),
          pkrs: fc.nat(),
          va: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          canonical: fc.boolean(),
          kind: fc.constantFrom<Access['kind']>('read', 'write', 'exec'),
          user: fc.boolean(),
          implicit: fc.boolean(),
          ac: fc.boolean(),
        }),
        (p) => {
          const root = (p.rootFrame % (p.frames + 2)) * 4096;
          const mem = garbageMemory(p.seed, p.frames, root);
          const long = p.mode === '4-level' || p.mode === '5-level';
          const ctx = pagingContext(
            {
              cr0: CR0.PE | CR0.PG | (p.wp ? CR0.WP : 0n),
              cr3: BigInt(root) | BigInt(p.cr3Low) | p.cr3High,
              cr4: MODE_CR4[p.mode] | p.cr4.reduce((a, b) => a | b, 0n),
              efer: (long ? EFER.LME | EFER.LMA : 0n) | (p.nxe ? EFER.NXE : 0n),
            },
            { maxPhyAddr: p.maxPhyAddr, gbPages: p.gbPages, pkru: p.pkru, pkrs: p.pkrs },
          );
          const va = !long ? p.va & 0xffff_ffffn : p.canonical ? virtTruncate(p.va, ctx.vaBits) : p.va;
          const access: Access = { kind: p.kind, user: p.user, implicit: p.implicit && !p.user, ac: p.ac };
          const before = snapshot(mem);
          const r = walk(mem, ctx, va, access);
          checkInvariants(r, ctx);
          expect(snapshot(mem)).toBe(before);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('throws nothing but AddressError, and that only for addresses the mode cannot express', () => {
    const { mem, pt } = machine('PAE');
    const ctx = ctxOf('PAE', pt.cr3);
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), (va) => {
        const expressible = va >= 0n && va < 1n << 32n;
        if (expressible) {
          expect(() => walk(mem, ctx, va)).not.toThrow();
        } else {
          expect(() => walk(mem, ctx, va)).toThrow(AddressError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('walk on self-referencing tables', () => {
  it('ends after one read per level when the root references itself (a recursive slot)', () => {
    const { mem, pt } = machine('4-level');
    pt.setEntry(0n, 'PML4', BigInt(pt.root) | 0x3n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), 0x0123n);
    expect(r.steps.map((s) => [s.level, s.entryAddress, s.raw])).toEqual([
      ['PML4', 0x10000n, 0x10003n],
      ['PDPT', 0x10000n, 0x10003n],
      ['PD', 0x10000n, 0x10003n],
      ['PT', 0x10000n, 0x10003n],
    ]);
    expect(r.translation?.pa).toBe(0x10123n);
  });

  it('ends when a PD entry points back up at the root: the root is read as a page table', () => {
    const { mem, pt } = machine('5-level');
    pt.map(0x1000n, 0x5000, 4096);
    pt.setEntry(0x1000n, 'PD', BigInt(pt.root) | 0x3n);
    // PML5[1] has PS set: reserved in a PML5E, but read as a PTE bit 7 is PAT and the entry maps a page.
    mem.write64(pt.root + 8, 0x7000_5083n);
    const r = walk(mem, ctxOf('5-level', pt.cr3), 0x1000n);
    expect(r.steps.map((s) => [s.level, s.entryAddress])).toEqual([
      ['PML5', 0x10000n],
      ['PML4', 0x11000n],
      ['PDPT', 0x12000n],
      ['PD', 0x13000n],
      ['PT', 0x10008n],
    ]);
    expect(r.steps[4]).toMatchObject({ raw: 0x7000_5083n, flags: ['P', 'RW', 'PAT'], leaf: true });
    expect(r.translation?.pa).toBe(0x7000_5000n);
  });

  it('reads past RAM as outside-memory at any level and a table at 2^52 - 4096 as well', () => {
    const { mem, pt } = machine('4-level');
    pt.setEntry(0n, 'PML4', 0x000f_ffff_ffff_f003n);
    expect(walk(mem, ctxOf('4-level', pt.cr3), 0n).fault).toMatchObject({ level: 'PDPT', reason: 'outside-memory' });
  });
});
