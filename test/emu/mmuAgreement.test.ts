/**
 * The emulator's MMU and src/paging are independent implementations of the same rules; on random
 * tables (mappings of every size with random rights, protection keys, global and reserved bits,
 * plus raw entries overwritten with random values) and random control registers, they must agree
 * on every access: the physical address, or the #PF error code.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { walk } from '../../src/paging/walk.js';
import type { AccessKind } from '../../src/paging/rights.js';
import { ACC_AC, ACC_EXEC, ACC_IMPLICIT, ACC_READ, ACC_USER, ACC_WRITE, CpuFault, Mmu, PhysicalMemory, cpuFeatures } from '../../src/emu/index.js';

const RAM = 1 << 24;
const BASES = [0x0000_0000_0040_0000n, 0x0000_7fff_c000_0000n, 0xffff_8000_0000_0000n, 0xffff_ffff_8000_0000n, 0xff00_0000_0000_0000n];
const SIZES = [4096, 1 << 21, 1 << 30] as const;
const LEVELS = ['PML5', 'PML4', 'PDPT', 'PD', 'PT'] as const;

const arbControl = fc.record({
  la57: fc.boolean(),
  wp: fc.boolean(),
  smep: fc.boolean(),
  smap: fc.boolean(),
  pke: fc.boolean(),
  nxe: fc.boolean(),
  gbPages: fc.boolean(),
  maxPhyAddr: fc.constantFrom(36, 40, 46, 52),
  pkru: fc.nat(0xffffffff),
});

const arbMapping = fc.record({
  base: fc.nat(BASES.length - 1),
  slot: fc.nat(3),
  size: fc.constantFrom(...SIZES),
  pa: fc.nat(7),
  write: fc.boolean(),
  user: fc.boolean(),
  nx: fc.boolean(),
  global: fc.boolean(),
  pkey: fc.nat(15),
  extra: fc.constantFrom(0n, 0n, 0n, 1n << 13n, 1n << 20n, 1n << 40n, 1n << 51n, 1n << 62n),
});

const arbCorruption = fc.record({ mapping: fc.nat(7), level: fc.nat(4), raw: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) });

const arbAccess = fc.record({
  mapping: fc.nat(7),
  offset: fc.nat(0x3fffffff),
  kind: fc.constantFrom<AccessKind>('read', 'write', 'exec'),
  user: fc.boolean(),
  ac: fc.boolean(),
  implicit: fc.boolean(),
  elsewhere: fc.constantFrom(false, false, false, true),
});

describe('the emulator MMU and src/paging agree', () => {
  it('on random tables, control registers and accesses', () => {
    fc.assert(
      fc.property(arbControl, fc.array(arbMapping, { minLength: 1, maxLength: 8 }), fc.array(arbCorruption, { maxLength: 3 }), fc.array(arbAccess, { minLength: 1, maxLength: 12 }), (c, mappings, corruptions, accesses) => {
        const mode = c.la57 ? '5-level' : '4-level';
        const sparse = new SparseMemory(RAM);
        const pt = new PageTables(sparse, mode, new FrameAllocator(0x100000, RAM));
        const vas: bigint[] = [];
        const sizes: number[] = [];
        for (const m of mappings) {
          const va = BigInt.asUintN(64, BASES[m.base]! + BigInt(m.slot) * BigInt(m.size));
          const pa = BigInt(m.pa) * BigInt(m.size) + (m.size === 4096 ? 0x800000n : 0n);
          try {
            pt.map(va, pa, m.size, { write: m.write, user: m.user, nx: m.nx, global: m.global, pkey: m.pkey, extra: m.extra });
          } catch {
            // A huge page already covers this address: keep the tables as they are.
          }
          vas.push(va);
          sizes.push(m.size);
        }
        for (const k of corruptions) {
          const va = vas[k.mapping % vas.length]!;
          const level = LEVELS[k.level]!;
          if (level === 'PML5' && mode !== '5-level') continue;
          try {
            pt.setEntry(va, level, k.raw);
          } catch {
            // A huge page above this level.
          }
        }

        const cr0 = 0x80000011n | (c.wp ? 0x10000n : 0n);
        const cr4 = 0x20n | (c.la57 ? 1n << 12n : 0n) | (c.smep ? 1n << 20n : 0n) | (c.smap ? 1n << 21n : 0n) | (c.pke ? 1n << 22n : 0n);
        const efer = 0x500n | (c.nxe ? 0x800n : 0n);
        const ctx = pagingContext({ cr0, cr3: pt.cr3, cr4, efer }, { maxPhyAddr: c.maxPhyAddr, gbPages: c.gbPages, pkru: c.pkru });

        const mem = new PhysicalMemory(RAM);
        mem.load(sparse.writtenFrames().map(([pa, bytes]) => ({ pa, bytes })));
        const mmu = new Mmu(mem, cpuFeatures({ maxPhyAddr: c.maxPhyAddr, pdpe1gb: c.gbPages, la57: true }));
        mmu.setControl(cr0, pt.cr3, cr4, efer);
        mmu.pkru = c.pkru;

        for (const a of accesses) {
          const base = vas[a.mapping % vas.length]!;
          const size = sizes[a.mapping % vas.length]!;
          const va = BigInt.asUintN(64, a.elsewhere ? (base ^ 0x0000_0040_0000_0000n) + BigInt(a.offset & 0xfff) : base + BigInt(a.offset % size));
          const expected = walk(sparse, ctx, va, { kind: a.kind, user: a.user && !a.implicit, ac: a.ac, implicit: a.implicit });
          if (expected.fault?.vector === 13) {
            // Non-canonical: the CPU raises #GP before the MMU sees the address.
            expect(mmu.debugTranslate(va)).toEqual({ ok: false, reason: 'non-canonical', level: null });
            continue;
          }
          const kind = a.kind === 'read' ? ACC_READ : a.kind === 'write' ? ACC_WRITE : ACC_EXEC;
          const acc = kind | (a.user && !a.implicit ? ACC_USER : 0) | (a.ac ? ACC_AC : 0) | (a.implicit ? ACC_IMPLICIT : 0);
          mmu.tlb.flushAll();
          let got: string;
          try {
            got = `pa 0x${mmu.translate(va, acc).toString(16)}`;
          } catch (e) {
            if (!(e instanceof CpuFault)) throw e;
            got = `#PF 0x${e.errorCode.toString(16)}`;
          }
          const want = expected.fault ? `#PF 0x${expected.fault.errorCode.toString(16)}` : `pa 0x${expected.translation!.pa.toString(16)}`;
          expect(got, `${a.kind}${a.user ? ' user' : ''}${a.implicit ? ' implicit' : ''}${a.ac ? ' AC' : ''} of 0x${va.toString(16)}`).toBe(want);
          // The debugger path agrees on whether it translates.
          expect(mmu.debugTranslate(va).ok).toBe(expected.translation !== null);
        }
      }),
      { numRuns: 400 },
    );
  });
});
