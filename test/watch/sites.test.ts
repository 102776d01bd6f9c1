/**
 * Finding MOV-to-CR3 (and LIDT) sites: the byte pre-filter with its prefix forms, the scan of an
 * address space (physical memory read once however many aliases map it, the range holding RIP
 * first, RAM and the budget respected, every executable alias a site), and sites from an ELF file.
 */
import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { asyncMemory, type AsyncPhysMemory } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { ElfCodeError, elfCode, elfSites } from '../../src/watch/elfCode.js';
import { candidateStarts, confirmSite, describeScan, scanSites } from '../../src/watch/sites.js';

const KERNEL = 0xffffffff80000000n;
const HHDM = 0xffff800000000000n;
const RAM = 32 << 20;

function ctxOf(cr3: bigint) {
  return pagingContext({ cr0: CR0.PG | CR0.PE | CR0.WP, cr3, cr4: CR4.PAE, efer: EFER.LMA | EFER.LME | EFER.NXE }, { maxPhyAddr: 40 });
}

/** Memory that counts the frames asked for. */
function counting(mem: SparseMemory): AsyncPhysMemory & { asked: number[] } {
  const inner = asyncMemory(mem);
  const asked: number[] = [];
  return {
    asked,
    frames: (pas) => {
      asked.push(...pas);
      return inner.frames(pas);
    },
  };
}

describe('candidateStarts', () => {
  it('finds 0F 22 /3 with the prefixes that may start it, and nothing else', () => {
    const b = Uint8Array.from([0x90, 0x0f, 0x22, 0xd8, 0x41, 0x0f, 0x22, 0xdb, 0x0f, 0x22, 0xe0, 0x66, 0x48, 0x0f, 0x22, 0x18, 0x0f, 0x22]);
    expect(candidateStarts(b, 64)).toEqual([
      { opcode: 1, starts: [1] },
      { opcode: 5, starts: [5, 4] },
      { opcode: 13, starts: [13, 12, 11] },
    ]);
    // In 32-bit code 0x41 is `inc ecx`, not a prefix.
    expect(candidateStarts(b, 32).map((c) => c.starts)).toEqual([[1], [5], [13, 11].slice(0, 1)]);
  });

  it('finds LIDT with a memory operand only (0F 01 D8 is VMRUN)', () => {
    const b = Uint8Array.from([0x0f, 0x01, 0x1d, 0, 0, 0, 0, 0x0f, 0x01, 0xd8, 0x0f, 0x01, 0x18]);
    expect(candidateStarts(b, 64, 'lidt').map((c) => c.opcode)).toEqual([0, 10]);
  });

  it('finds MOV to CR0 (0F 22 /0) apart from MOV to CR3, and confirms it by decoding', () => {
    const b = Uint8Array.from([0x0f, 0x22, 0xc0, 0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xc0]); // mov cr0, eax; mov cr3, eax; mov eax, cr0
    expect(candidateStarts(b, 32, 'mov-cr0').map((c) => c.opcode)).toEqual([0]);
    expect(candidateStarts(b, 32, 'mov-cr3').map((c) => c.opcode)).toEqual([3]);
    expect(confirmSite(b, 0, 0, 32, 'mov-cr0', 0x100000n)).toEqual({ length: 3, text: 'mov cr0, eax' });
    expect(confirmSite(b, 3, 3, 32, 'mov-cr0', 0x100003n)).toBeNull();
  });
});

describe('scanSites', () => {
  /** A kernel page at 0x200000 with a mov cr3 at +0x40, mapped at KERNEL (4 KiB) and in a 32 MiB direct map (2 MiB pages, NX except the first 4 MiB). */
  function machine() {
    const mem = new SparseMemory(RAM);
    const code = new Uint8Array(0x1000).fill(0x90);
    code.set([0x48, 0x8b, 0x05, 0, 0, 0, 0, 0x0f, 0x22, 0xd8], 0x39); // mov rax, [rel]; mov cr3, rax at +0x40
    code.set([0x0f, 0x01, 0x1d, 0, 0, 0, 0], 0x100); // lidt [rel]
    mem.write(0x200000, code);
    mem.write(0x300ffe, Uint8Array.of(0x0f, 0x22)); // a mov cr3 across two pages of the direct map
    mem.write(0x301000, Uint8Array.of(0xda));
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x40000));
    pt.map(KERNEL, 0x200000, 0x1000, { global: true });
    pt.map(KERNEL + 0x1000n, 0x201000, 0x1000, { nx: true });
    pt.mapRange(HHDM, 0, 0x400000, 0x200000);
    pt.mapRange(HHDM + 0x400000n, 0x400000, RAM - 0x400000, 0x200000, { nx: true });
    return { mem, pt };
  }

  it('reads each physical byte once, puts the range holding RIP first, and lists every executable alias', async () => {
    const { mem, pt } = machine();
    const m = counting(mem);
    const r = await scanSites(m, ctxOf(pt.cr3), { bits: 64, rip: KERNEL + 0x10n, ram: [{ start: 0n, end: BigInt(RAM) }] });
    expect(r.sites.map((s) => [s.va, s.pa, s.text])).toEqual([
      [KERNEL + 0x40n, 0x200040n, 'mov cr3, rax'],
      [HHDM + 0x200040n, 0x200040n, 'mov cr3, rax'],
      [HHDM + 0x300ffen, 0x300ffen, 'mov cr3, rdx'],
    ]);
    expect(r.executableRanges).toBe(2);
    expect(r.executableBytes).toBe(0x401000n);
    expect(r.scannedBytes).toBe(0x400000);
    expect(r.skippedBytes).toBe(0n);
    // 4 MiB of executable memory, read once: the kernel page is not read again through the direct map
    // (frames below 0x40000 hold the tables, which the map reads too).
    const data = m.asked.filter((f) => f >= 0x40000);
    expect(new Set(data).size).toBe(data.length);
    expect(data).toHaveLength((0x400000 - 0x40000) / 4096);
    expect(describeScan(r)).toMatch(/^3 mov-to-CR3 sites in 2 executable ranges \(4\.0 MiB\): 4\.0 MiB of physical memory scanned in \d+ ms; 0xffffffff80000040 \(mov cr3, rax\)/);
  });

  it('looks for LIDT in the same pass', async () => {
    const { mem, pt } = machine();
    const r = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, rip: KERNEL, kinds: ['mov-cr3', 'lidt'] });
    expect(r.sites.filter((s) => s.kind === 'lidt').map((s) => s.va)).toEqual([KERNEL + 0x100n, HHDM + 0x200100n]);
    expect(r.sites.filter((s) => s.kind === 'mov-cr3')).toHaveLength(3);
  });

  it('keeps to RAM and to the budget, and says what it skipped', async () => {
    const mem = new SparseMemory(RAM);
    mem.write(0x100000, Uint8Array.of(0x0f, 0x22, 0xd8));
    mem.write(0x1100000, Uint8Array.of(0x0f, 0x22, 0xd8));
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x40000));
    pt.mapRange(0n, 0, 4 * 2 ** 30, 0x40000000); // a 4 GiB rwx identity map over 32 MiB of RAM
    const ram = [{ start: 0n, end: BigInt(RAM) }];
    const all = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, ram });
    expect(all.sites.map((s) => s.va)).toEqual([0x100000n, 0x1100000n]);
    expect(all.scannedBytes).toBe(RAM);
    expect(all.skippedBytes).toBe((4n << 30n) - BigInt(RAM));
    const some = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, ram, budget: 8 << 20 });
    expect(some.sites.map((s) => s.va)).toEqual([0x100000n]);
    expect(some.scannedBytes).toBe(8 << 20);
    expect(some.skippedBytes).toBe((4n << 30n) - (8n << 20n));
    const none = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, ram, budget: 0 });
    expect(none.sites).toEqual([]);
    expect(none.scannedBytes).toBe(0);
  });

  it('scans the 2 MiB around RIP first, inside a range much larger than the budget', async () => {
    const mem = new SparseMemory(RAM);
    mem.write(0x80000, Uint8Array.of(0x0f, 0x22, 0xd8));
    mem.write(0x1380126, Uint8Array.of(0x0f, 0x22, 0xd8));
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x40000));
    pt.mapRange(0n, 0, RAM, 0x200000); // one 32 MiB range
    const r = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, rip: 0x1380100n, budget: 3 << 20 });
    expect(r.sites.map((s) => s.va)).toEqual([0x1380126n, 0x80000n]);
    const tight = await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64, rip: 0x1380100n, budget: 2 << 20 });
    expect(tight.sites.map((s) => s.va)).toEqual([0x1380126n]);
    expect(tight.skippedBytes).toBe(BigInt(RAM - (2 << 20)));
  });

  it('leaves out user pages under SMEP (supervisor code cannot run there)', async () => {
    const mem = new SparseMemory(RAM);
    mem.write(0x100000, Uint8Array.of(0x0f, 0x22, 0xd8));
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x40000));
    pt.map(0x400000n, 0x100000, 0x1000, { user: true });
    const ctx = pagingContext({ cr0: CR0.PG | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE | CR4.SMEP, efer: EFER.LMA | EFER.LME | EFER.NXE });
    expect((await scanSites(asyncMemory(mem), ctx, { bits: 64 })).sites).toEqual([]);
    expect((await scanSites(asyncMemory(mem), ctxOf(pt.cr3), { bits: 64 })).sites.map((s) => s.va)).toEqual([0x400000n]);
  });
});

/** An ELF64 with one executable PT_LOAD at `va` holding `code`, and one data segment. */
function elf64(va: bigint, code: Uint8Array): Uint8Array {
  const out = new Uint8Array(0x200 + code.length);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 2, true);
  v.setUint16(18, 62, true);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 2, true); // e_phnum
  const ph = (at: number, flags: number, offset: number, addr: bigint, size: number): void => {
    v.setUint32(at, 1, true);
    v.setUint32(at + 4, flags, true);
    v.setBigUint64(at + 8, BigInt(offset), true);
    v.setBigUint64(at + 16, addr, true);
    v.setBigUint64(at + 32, BigInt(size), true);
    v.setBigUint64(at + 40, BigInt(size), true);
  };
  ph(64, 5, 0x200, va, code.length); // R+X
  ph(120, 6, 0x200, va + 0x1000n, code.length); // R+W: not code
  out.set(code, 0x200);
  return out;
}

describe('ELF code', () => {
  it('reads the executable segments and finds the sites at their virtual addresses', () => {
    const code = Uint8Array.of(0x90, 0x0f, 0x22, 0xd8, 0x90, 0x41, 0x0f, 0x22, 0xd9);
    const segs = elfCode(elf64(KERNEL + 0x1000n, code));
    expect(segs.map((s) => [s.va, s.bytes.length])).toEqual([[KERNEL + 0x1000n, 9]]);
    expect(elfSites(segs, 64).map((s) => [s.va, s.text, s.from, s.pa])).toEqual([
      [KERNEL + 0x1001n, 'mov cr3, rax', 'elf', null],
      [KERNEL + 0x1006n, 'mov cr3, rcx', 'elf', null],
      [KERNEL + 0x1005n, 'mov cr3, r9', 'elf', null],
    ]);
  });

  it('refuses what is not an ELF, and segments past the end of the file', () => {
    expect(() => elfCode(new Uint8Array(64))).toThrow(ElfCodeError);
    const cut = elf64(KERNEL, new Uint8Array(16)).slice(0, 0x208);
    expect(() => elfCode(cut, 'kernel.elf')).toThrow('kernel.elf: segment 0 (16 bytes at offset 512) lies past the end of the file');
  });
});
