/**
 * The diagnosis of a faulting walk: one fixture per mistake, built with the PageTables builder in
 * 32 MiB of sparse memory, and the hint it must give (kind, confidence, level, the numbers in the
 * text); plus tables whose fault has no telling clue, which must give no hint.
 */
import { describe, expect, it } from 'vitest';
import { diagnose, idtHint, type DiagnoseInput } from '../../src/faults/diagnose.js';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { walk } from '../../src/paging/walk.js';

const RAM = 32 << 20;
const KERNEL = 0xffffffff80000000n;
const HHDM = 0xffff800000000000n;
const FETCH = { kind: 'exec', user: false } as const;
const ram = [{ start: 0n, end: BigInt(RAM) }];

function ctxOf(cr3: bigint, mode: '4-level' | '5-level' = '4-level'): PagingContext {
  return pagingContext(
    { cr0: CR0.PG | CR0.WP | CR0.PE, cr3, cr4: CR4.PAE | (mode === '5-level' ? CR4.LA57 : 0n), efer: EFER.LME | EFER.LMA | EFER.NXE },
    { maxPhyAddr: 52 },
  );
}

/** Fresh memory with an allocator for tables from 0x10000 up. */
function fixture(start = 0x10000): { mem: SparseMemory; alloc: FrameAllocator } {
  return { mem: new SparseMemory(RAM), alloc: new FrameAllocator(start, start + 0x100000) };
}

/** Code bytes at 0x200000 (the kernel's physical base). */
function withCode(mem: SparseMemory): void {
  mem.write(0x200000, Uint8Array.of(0x48, 0x89, 0xe5, 0xc3, 0x90, 0x90, 0x90, 0x90));
}

function run(mem: SparseMemory, input: Omit<DiagnoseInput, 'walk'> & { va: bigint; access?: typeof FETCH | { kind: 'write' | 'read'; user: false } }) {
  const w = walk(mem, input.ctx, input.va, input.access ?? FETCH);
  return { w, hints: diagnose(mem, { ...input, walk: w }) };
}

describe('index of the wrong level', () => {
  it('PD entry at the PDPT index: index-typo, high, naming both levels', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    const pdSlot = pt.entryAddress(KERNEL, 'PD')!; // PD[0]
    const raw = mem.read64(pdSlot);
    mem.write64(pdSlot, 0n);
    mem.write64(pdSlot + 510 * 8, raw); // PD[510]: 510 is the PDPT index of 0xffffffff80000000
    const old = new PageTables(mem, '4-level', alloc);
    old.map(KERNEL, 0x200000, 0x1000);
    // With the old tables to compare: PD[510] maps the address where they map it.
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), before: ctxOf(old.cr3), va: KERNEL + 0xe2n, ram });
    expect(w.fault).toMatchObject({ level: 'PD', reason: 'not-present', errorCode: 0x10 });
    expect(hints.map((h) => h.kind)).toEqual(['index-typo', 'lost-mapping']);
    expect(hints[0]).toMatchObject({ kind: 'index-typo', confidence: 'high', level: 'PD', entryAddress: BigInt(pdSlot) });
    expect(hints[0]!.text).toContain(`PD[0] at 0x${pdSlot.toString(16)} is empty, but PD[510] is present, and 510 is the PDPT index`);
    expect(hints[0]!.text).toContain('PD[510] maps it to 0x2000e2, where the old tables map it too');
    expect(hints[1]!.confidence).toBe('medium');
    // Without them: the same guess, less sure.
    expect(run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL + 0xe2n, ram }).hints.map((h) => [h.kind, h.confidence])).toEqual([['index-typo', 'medium']]);
  });

  it('a slot the index of another level finds by coincidence: no typo when the old tables map the address elsewhere', () => {
    const { mem, alloc } = fixture();
    const base = HHDM + 0x40000000n; // PDPT index 1
    const pt = new PageTables(mem, '4-level', alloc);
    pt.mapRange(base, 0, 0x400000, 0x200000); // PD[0], PD[1]
    const old = new PageTables(mem, '4-level', alloc);
    old.mapRange(base, 0, RAM, 0x200000);
    const va = base + 0x1000078n; // PD[8]: empty; PD[1] (its PDPT index) would map it to 0x200078, the old tables to 0x1000078
    expect(run(mem, { ctx: ctxOf(pt.cr3), before: ctxOf(old.cr3), va, access: { kind: 'read', user: false }, ram }).hints.map((h) => h.kind)).toEqual(['lost-mapping']);
    expect(run(mem, { ctx: ctxOf(pt.cr3), va, access: { kind: 'read', user: false }, ram }).hints.map((h) => [h.kind, h.confidence])).toEqual([['index-typo', 'medium']]);
  });

  it('an isolated neighbour: index-off-by-one, medium', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    const pdSlot = pt.entryAddress(KERNEL, 'PD')!;
    const raw = mem.read64(pdSlot);
    mem.write64(pdSlot, 0n);
    mem.write64(pdSlot + 8, raw); // PD[1]
    const { hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL, ram });
    expect(hints.map((h) => [h.kind, h.confidence, h.level])).toEqual([['index-off-by-one', 'medium', 'PD']]);
    expect(hints[0]!.text).toContain('PD[1] is present on its own');
  });

  it('the first entry of a mapped run next to an empty one is not an off-by-one', () => {
    const { mem, alloc } = fixture();
    const pt = new PageTables(mem, '4-level', alloc);
    pt.mapRange(HHDM + 0x400000n, 0x400000, 0x600000, 0x200000); // PD[2], PD[3], PD[4]
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: HHDM + 0x3ffff0n, access: { kind: 'write', user: false }, ram });
    expect(w.fault).toMatchObject({ level: 'PD', reason: 'not-present', errorCode: 0x2 });
    expect(hints).toEqual([]);
  });
});

describe('table pointers', () => {
  it('an address stored unshifted into a bitfield (the entry points at addr << 12): unshifted-address, high', () => {
    const { mem, alloc } = fixture(0x400000);
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    // Every table pointer written as `phys << 12`, the way `e.addr = phys` does with an `addr : 40` field at bit 12.
    const slots = (['PML4', 'PDPT', 'PD'] as const).map((level) => pt.entryAddress(KERNEL, level)!);
    const pml4e = slots[0]!;
    for (const at of slots) {
      const raw = mem.read64(at);
      mem.write64(at, ((raw & 0x000ffffffffff000n) << 12n) | (raw & 0xfffn));
    }
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL, ram });
    expect(w.fault).toMatchObject({ level: 'PDPT', reason: 'outside-memory', errorCode: 0x10 });
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatchObject({ kind: 'unshifted-address', confidence: 'high', level: 'PML4', entryAddress: BigInt(pml4e) });
    expect(hints[0]!.text).toContain('points the PDPT table at 0x401000000, outside RAM; 0x401000 holds a page table (1 present entry)');
    expect(hints[0]!.text).toContain('shifted left by 12');
    expect(hints[0]!.text).toContain('the entries of that table are shifted the same way');
  });

  it('a page frame number stored as the address (the entry points at addr >> 12), inside RAM at zeros', () => {
    const { mem, alloc } = fixture(0x400000);
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    const at = pt.entryAddress(KERNEL, 'PDPT')!;
    // The PD moved to 16 MiB, and its page frame number (0x1000) stored where its address belongs.
    const pd = 0x1000000;
    mem.write(pd, mem.read(Number(mem.read64(at) & 0x000ffffffffff000n), 4096));
    mem.write64(at, BigInt(pd >> 12) | 0x3n);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL, ram });
    expect(w.fault).toMatchObject({ level: 'PD', reason: 'not-present' });
    expect(hints.map((h) => [h.kind, h.level])).toEqual([['unshifted-address', 'PDPT']]);
    expect(hints[0]!.text).toContain('points the PD table at 0x1000, which holds zeros; 0x1000000 holds a page table');
    expect(hints[0]!.text).toContain('shifted right by 12');
  });

  it('a table pointer holding a virtual address of the direct map: virtual-table-pointer, high', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.mapRange(HHDM, 0, RAM, 0x200000, { nx: true });
    pt.map(KERNEL, 0x200000, 0x1000);
    const at = pt.entryAddress(KERNEL, 'PML4')!;
    const raw = mem.read64(at);
    const pdpt = raw & 0x000ffffffffff000n;
    mem.write64(at, HHDM + pdpt + 3n);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL, ram });
    expect(w.fault?.reason).toBe('outside-memory');
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatchObject({ kind: 'virtual-table-pointer', confidence: 'high', level: 'PML4' });
    expect(hints[0]!.text).toContain(`holds the virtual address 0x${(HHDM + pdpt).toString(16)}, which maps to physical 0x${pdpt.toString(16)} (a page table)`);
  });
});

describe('rights and depth', () => {
  it('NX on every PML4 entry: nx-above-code, high, saying nothing can execute', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc, { nx: true });
    pt.mapRange(HHDM, 0, 0x400000, 0x200000);
    pt.map(KERNEL, 0x200000, 0x1000);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL + 0x10n, ram });
    expect(w.fault).toMatchObject({ level: 'PML4', reason: 'protection', errorCode: 0x11 });
    expect(hints.map((h) => [h.kind, h.confidence, h.level])).toEqual([['nx-above-code', 'high', 'PML4']]);
    expect(hints[0]!.text).toContain('non-leaf PML4, PDPT, PD entries');
    expect(hints[0]!.text).toContain('Every present PML4 entry (2) has XD set: nothing can execute anywhere.');
  });

  it('4-level tables under CR4.LA57: paging-depth, high, and no index typo', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3, '5-level'), va: KERNEL + 0xd1n, ram });
    expect(w.fault).toMatchObject({ reason: 'not-present', errorCode: 0x10 });
    expect(hints.map((h) => [h.kind, h.confidence])).toEqual([['paging-depth', 'high']]);
    expect(hints[0]!.text).toContain('CR4.LA57=1, so the CPU reads the table at CR3');
    expect(hints[0]!.text).toContain('maps to 0x2000d1');
  });
});

describe('huge pages and coincidences', () => {
  it('a 2 MiB page from a base that is not 2 MiB aligned: misaligned-huge-page, high, with the aligned base', () => {
    const { mem, alloc } = fixture();
    const pt = new PageTables(mem, '4-level', alloc);
    const fb = 0xffffc00000000000n;
    pt.map(fb, 0, 0x200000, { nx: true });
    const at = pt.entryAddress(fb, 'PD')!;
    mem.write64(at, mem.read64(at) | 0xfd010000n);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: fb, access: { kind: 'write', user: false }, ram });
    expect(w.fault).toMatchObject({ level: 'PD', reason: 'reserved-bit', errorCode: 0xb });
    expect(hints.map((h) => [h.kind, h.confidence, h.entryAddress])).toEqual([['misaligned-huge-page', 'high', BigInt(at)]]);
    expect(hints[0]!.text).toContain('maps a 2 MiB page from physical 0xfd010000, which is not 2 MiB aligned');
    expect(hints[0]!.text).toContain('map the 2 MiB page at 0xfd000000 and reach 0xfd010000 at offset 0x10000');
  });

  it('NX with EFER.NXE=0: nx-without-nxe, high, naming the entry and the MSR bit; none with NXE on', () => {
    const { mem, alloc } = fixture();
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(HHDM, 0x300000, 0x1000, { nx: true });
    const noNxe = pagingContext({ cr0: CR0.PG | CR0.WP | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA }, { maxPhyAddr: 52 });
    const { w, hints } = run(mem, { ctx: noNxe, va: HHDM + 8n, access: { kind: 'write', user: false }, ram });
    expect(w.fault).toMatchObject({ level: 'PT', reason: 'reserved-bit', errorCode: 0xb });
    expect(hints.map((h) => [h.kind, h.confidence, h.entryAddress])).toEqual([['nx-without-nxe', 'high', BigInt(pt.entryAddress(HHDM, 'PT')!)]]);
    expect(hints[0]!.text).toContain('EFER.NXE=0, where bit 63 is reserved');
    expect(hints[0]!.text).toContain('bit 11 of MSR 0xc0000080');
    expect(run(mem, { ctx: ctxOf(pt.cr3), va: HHDM + 8n, access: { kind: 'write', user: false }, ram }).hints).toEqual([]);
  });

  it('an empty PT entry whose PD index happens to be a present slot is no typo (the leaf level cannot tell)', () => {
    const { mem, alloc } = fixture();
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000); // PT[0]
    pt.map(KERNEL + 0x1000n, 0x201000, 0x1000); // PT[1]
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL + 0x3000n, access: { kind: 'read', user: false }, ram });
    expect(w.fault).toMatchObject({ level: 'PT', reason: 'not-present' });
    expect(hints).toEqual([]);
  });
});

describe('what the switch leaves behind', () => {
  it('the boot stack mapped by the old tables only: stack-unmapped, high, naming the old mapping', () => {
    const { mem, alloc } = fixture();
    const old = new PageTables(mem, '4-level', alloc);
    old.mapRange(HHDM, 0, RAM, 0x200000);
    const now = new PageTables(mem, '4-level', alloc);
    now.mapRange(HHDM + 0x400000n, 0x400000, RAM - 0x400000, 0x200000);
    const rsp = HHDM + 0x3ffff8n;
    const { hints } = run(mem, { ctx: ctxOf(now.cr3), before: ctxOf(old.cr3), va: rsp - 8n, access: { kind: 'write', user: false }, rsp, ram });
    expect(hints.map((h) => [h.kind, h.confidence, h.level])).toEqual([['stack-unmapped', 'high', 'PD']]);
    expect(hints[0]!.text).toContain(`the stack at 0xffff8000003ffff0 (RSP 0xffff8000003ffff8) is outside every mapping of CR3 ${`0x${now.cr3.toString(16)}`}`);
    expect(hints[0]!.text).toContain(`The old tables (CR3 0x${old.cr3.toString(16)}) map it, to physical 0x3ffff0.`);
  });

  it("a loader's 1:1 code missing from the tables it loads: lost-mapping, high", () => {
    const { mem, alloc } = fixture();
    const old = new PageTables(mem, '4-level', alloc);
    old.mapRange(0n, 0, RAM, 0x200000);
    const now = new PageTables(mem, '4-level', alloc);
    now.map(KERNEL, 0x200000, 0x1000);
    const { w, hints } = run(mem, { ctx: ctxOf(now.cr3), before: ctxOf(old.cr3), va: 0x380129n, ram });
    expect(w.fault).toMatchObject({ level: 'PML4', reason: 'not-present' });
    expect(hints.map((h) => [h.kind, h.confidence])).toEqual([['lost-mapping', 'high']]);
    expect(hints[0]!.text).toContain('0x380129 is not mapped by the new tables (the walk stops at the PML4 level), so the code running there is lost');
    expect(hints[0]!.text).toContain('to physical 0x380129');
  });

  it('the kernel mapped from a physical base that holds zeros: moved-mapping, high, with the offset', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const old = new PageTables(mem, '4-level', alloc);
    old.map(KERNEL, 0x200000, 0x1000);
    const now = new PageTables(mem, '4-level', alloc);
    now.map(KERNEL, 0x100000, 0x1000);
    const { w, hints } = run(mem, { ctx: ctxOf(now.cr3), before: ctxOf(old.cr3), va: KERNEL, ram });
    expect(w.fault).toBeNull();
    expect(hints.map((h) => [h.kind, h.confidence])).toEqual([['moved-mapping', 'high']]);
    expect(hints[0]!.text).toContain('maps to physical 0x100000, which holds zeros; the old tables');
    expect(hints[0]!.text).toContain('map it to 0x200000, where the code is');
    expect(hints[0]!.text).toContain('off by -0x100000');
  });

  it('zeros without old tables to compare: zeros, medium; real code: nothing', () => {
    const { mem, alloc } = fixture();
    withCode(mem);
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x100000, 0x1000);
    pt.map(KERNEL + 0x1000n, 0x200000, 0x1000);
    expect(run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL, ram }).hints.map((h) => [h.kind, h.confidence])).toEqual([['zeros', 'medium']]);
    expect(run(mem, { ctx: ctxOf(pt.cr3), va: KERNEL + 0x1000n, ram }).hints).toEqual([]);
  });

  it('an unmapped address with no clue around it gives no hint', () => {
    const { mem, alloc } = fixture();
    const pt = new PageTables(mem, '4-level', alloc);
    pt.map(KERNEL, 0x200000, 0x1000);
    const { w, hints } = run(mem, { ctx: ctxOf(pt.cr3), va: 0x7000_0000_0000n, access: { kind: 'read', user: false }, ram });
    expect(w.fault?.reason).toBe('not-present');
    expect(hints).toEqual([]);
  });
});

describe('idtHint', () => {
  it('names the BIOS vector table a multiboot loader hands over, and an empty IDT', () => {
    expect(idtHint({ base: 0n, limit: 0x3ff })).toMatchObject({ kind: 'no-idt', confidence: 'high' });
    expect(idtHint({ base: 0n, limit: 0x3ff })!.text).toContain('real-mode interrupt vector table the BIOS set up');
    expect(idtHint({ base: 0x1000n, limit: 0 })!.text).toBe(
      'IDTR (base 0x1000, limit 0x0) describes an empty IDT: every exception from here on escalates to a triple fault. Load an IDT with lidt before anything can fault (or before this switch).',
    );
  });

  it('says nothing of an IDT the kernel loaded', () => {
    expect(idtHint({ base: 0xffffffff80003000n, limit: 0xfff })).toBeNull();
    expect(idtHint({ base: 0n, limit: 0x7ff })).toBeNull(); // an IDT of the kernel's own at 0, 256 legacy gates
  });
});
