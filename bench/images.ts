/**
 * The page-table images the map benchmark times: built in memory with the PageTables builder, all in
 * one SparseMemory so that one QEMU guest can hold them together (one CR3 each).
 */
import { PageTables, type MapFlags } from '../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../src/image/sparseMemory.js';

/** One address space of the benchmark. */
export interface BenchImage {
  /** Short label for the results table. */
  name: string;
  cr3: bigint;
  /** Leaf entries it holds. */
  leaves: number;
}

/** The benchmark's guest memory and the address spaces in it. */
export interface BenchImages {
  mem: SparseMemory;
  /** Physical range holding every table: [tablesStart, tablesEnd). */
  tablesStart: number;
  tablesEnd: number;
  images: BenchImage[];
}

const KiB4 = 0x1000;
const MiB2 = 0x200000;
const GiB = 0x40000000;

/** Where the tables go in guest RAM (above the legacy first megabyte). */
export const TABLES_BASE = 0x100000;

/**
 * Maps `bytes` at `va` in 4 KiB pages, page `i` to frame `frameOf(i)`, with `flagsOf(i)` (called once
 * per 2 MiB block). The builder creates the tables; each page table is then filled in one write.
 */
function map4k(pt: PageTables, va: bigint, bytes: number, frameOf: (i: number) => number, flagsOf: (block: number) => MapFlags): void {
  const block = new Uint8Array(KiB4);
  const view = new DataView(block.buffer);
  for (let b = 0; b < bytes / MiB2; b++) {
    const blockVa = va + BigInt(b) * BigInt(MiB2);
    const flags = flagsOf(b);
    // Map the first page through the builder (creating the page table), then fill the other 511.
    pt.map(blockVa, BigInt(frameOf(b * 512)) * BigInt(KiB4), KiB4, flags);
    const first = pt.getEntry(blockVa, 'PT');
    const attrs = first & ~0x000ffffffffff000n;
    for (let i = 0; i < 512; i++) {
      const pa = BigInt(frameOf(b * 512 + i)) * BigInt(KiB4);
      view.setBigUint64(i * 8, attrs | pa, true);
    }
    pt.mem.write(pt.entryAddress(blockVa, 'PT')! & ~0xfff, block);
  }
}

/**
 * Builds the three address spaces:
 * - 4 GiB of 4 KiB pages (1M leaves), a direct map whose rights alternate every 2 MiB (2,048 ranges);
 * - the same 4 GiB with every page at a scattered frame (1M leaves, nothing coalesces);
 * - 512 GiB of 1 GiB pages (512 leaves, one range).
 */
export function buildBenchImages(ram = 64 << 20): BenchImages {
  const mem = new SparseMemory(ram);
  const alloc = new FrameAllocator(TABLES_BASE, ram);
  const images: BenchImage[] = [];

  const direct = new PageTables(mem, '4-level', alloc);
  map4k(direct, 0xffff888000000000n, 4 * GiB, (i) => i, (b) => ({ write: b % 2 === 0, nx: true, global: true }));
  images.push({ name: '4 GiB in 4 KiB pages', cr3: direct.cr3, leaves: 1 << 20 });

  // Multiplying by an odd constant modulo 2^20 permutes the frames: neighbours never touch.
  const scattered = new PageTables(mem, '4-level', alloc);
  map4k(scattered, 0xffffc90000000000n, 4 * GiB, (i) => Math.imul(i, 0x9e3779b1) & 0xfffff, () => ({ nx: true }));
  images.push({ name: '4 GiB, 4 KiB, scattered', cr3: scattered.cr3, leaves: 1 << 20 });

  const huge = new PageTables(mem, '4-level', alloc);
  huge.mapRange(0xffff800000000000n, 0, 512 * GiB, GiB, { nx: true, global: true });
  images.push({ name: '512 GiB in 1 GiB pages', cr3: huge.cr3, leaves: 512 });

  return { mem, tablesStart: TABLES_BASE, tablesEnd: alloc.used, images };
}

/** The bytes of [start, end) of `mem`, to load into a guest. */
export function imageBytes(mem: SparseMemory, start: number, end: number): Uint8Array {
  return mem.read(start, end - start);
}
