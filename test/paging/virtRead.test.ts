import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { AddressError } from '../../src/paging/addr.js';
import type { PhysMemory } from '../../src/paging/memory.js';
import { pagingContext, withCr3 } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { linearSpace, readVirtual } from '../../src/paging/virtRead.js';

const READ = { kind: 'read', user: false } as const;
const long = { cr0: CR0.PG | CR0.WP | CR0.PE, cr3: 0n, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA | EFER.NXE };
const legacy = { cr0: CR0.PG | CR0.WP | CR0.PE, cr3: 0n, cr4: CR4.PSE, efer: 0n };

function longMachine() {
  const mem = new SparseMemory(16 << 20);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(0x100000, 0x200000));
  pt.map(0x400000n, 0x300000, 4096);
  pt.map(0x401000n, 0x500000, 4096); // not contiguous with the page before
  pt.map(0x402000n, 0x310000, 4096, { write: false });
  pt.map(0x600000n, 0x2000000, 4096); // past the end of RAM
  mem.write(0x300ffe, Uint8Array.of(0xaa, 0xbb));
  mem.write(0x500000, Uint8Array.of(0xcc, 0xdd));
  return { mem, ctx: withCr3(pagingContext(long), pt.cr3) };
}

describe('readVirtualTask', () => {
  it('reads across a page boundary into a page elsewhere in physical memory', () => {
    const { mem, ctx } = longMachine();
    expect(readVirtual(mem, ctx, 0x400ffen, 4, READ)).toEqual({ ok: true, bytes: Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd), unreadable: [] });
  });

  it('answers with the walk of the first page that faults', () => {
    const { mem, ctx } = longMachine();
    const r = readVirtual(mem, ctx, 0x402ffen, 4, READ);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.walk.va).toBe(0x403000n);
    expect(r.walk.fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0 });
  });

  it('checks the access asked for', () => {
    const { mem, ctx } = longMachine();
    expect(readVirtual(mem, ctx, 0x402000n, 8, READ).ok).toBe(true);
    const w = readVirtual(mem, ctx, 0x402000n, 8, { kind: 'write', user: false });
    expect(w.ok).toBe(false);
    if (!w.ok) expect(w.walk.fault).toMatchObject({ reason: 'protection', errorCode: 0x3, denials: ['read-only'] });
  });

  it('reads unreadable physical memory as zeros and says which frames', () => {
    const { mem, ctx } = longMachine();
    expect(readVirtual(mem, ctx, 0x600010n, 4, READ)).toEqual({ ok: true, bytes: new Uint8Array(4), unreadable: [0x2000000n] });
  });

  it('reads nothing for a zero length, and refuses a bad one', () => {
    const { mem, ctx } = longMachine();
    const asked: number[] = [];
    const counting: PhysMemory = { frame: (pa) => (asked.push(pa), mem.frame(pa)) };
    expect(readVirtual(counting, ctx, 0x1234n, 0, READ)).toEqual({ ok: true, bytes: new Uint8Array(0), unreadable: [] });
    expect(asked).toEqual([]);
    expect(() => readVirtual(mem, ctx, 0n, -1, READ)).toThrowError(AddressError);
    expect(() => readVirtual(mem, ctx, 0n, 1.5, READ)).toThrowError(expect.objectContaining({ code: 'E_ADDRESS_RANGE' }));
  });

  it('wraps at 4 GiB in 32-bit paging', () => {
    const mem = new SparseMemory(16 << 20);
    const pt = new PageTables(mem, '32-bit', new FrameAllocator(0x100000, 0x200000));
    pt.map(0xfffff000n, 0x310000, 4096);
    pt.map(0x0n, 0x320000, 4096);
    mem.write(0x310ffe, Uint8Array.of(1, 2));
    mem.write(0x320000, Uint8Array.of(3, 4));
    const ctx = withCr3(pagingContext(legacy), pt.cr3);
    expect(linearSpace(ctx)).toBe(1n << 32n);
    expect(readVirtual(mem, ctx, 0xfffffffen, 4, READ)).toEqual({ ok: true, bytes: Uint8Array.of(1, 2, 3, 4), unreadable: [] });
  });

  it('reads physical memory directly with paging off', () => {
    const mem = new SparseMemory(1 << 20);
    mem.write(0x7c00, Uint8Array.of(0x55, 0xaa));
    const ctx = pagingContext({ ...legacy, cr0: CR0.PE });
    expect(ctx.mode).toBe('none');
    expect(readVirtual(mem, ctx, 0x7c00n, 2, READ)).toEqual({ ok: true, bytes: Uint8Array.of(0x55, 0xaa), unreadable: [] });
  });

  it('has a 64-bit linear space in long mode', () => {
    expect(linearSpace({ mode: '4-level' })).toBe(1n << 64n);
    expect(linearSpace({ mode: '5-level' })).toBe(1n << 64n);
    expect(linearSpace({ mode: 'PAE' })).toBe(1n << 32n);
  });
});
