/**
 * What the test kernels (long mode in testKernel.ts, 32-bit and PAE in legacyKernel.ts) build the
 * same way: their address spaces (the main tables, then the named others, from one frame
 * allocator), the CR3 their loop's slot holds at boot, and the check that the main tables let the
 * kernel run before any QEMU is started with them, and the packing of the result.
 */
import { hex } from '../paging/addr.js';
import type { PagingContext, PagingMode } from '../paging/mode.js';
import type { AccessKind } from '../paging/rights.js';
import { walk } from '../paging/walk.js';
import type { Assembly } from '../asm/index.js';
import { buildMultibootElf, segmentsFromMemory } from './multiboot.js';
import { PageTables } from './pageTables.js';
import type { FrameAllocator, SparseMemory } from './sparseMemory.js';
import { TestKernelError, type TablesBuilder } from './testKernelError.js';

/** A built test kernel: the multiboot ELF32 for `qemu-system-x86_64 -kernel` (or `qemu-system-i386`), its memory as loaded, where everything is (`M`), and its code decoded back. */
export interface BuiltKernel<M> {
  elf: Uint8Array;
  /** Guest physical memory as loaded (kernel pages and tables), e.g. to walk with pagewalk. */
  mem: SparseMemory;
  manifest: M;
  /** Both pieces of code decoded back, for debugging. */
  listing: string;
}

/** The address spaces of a test kernel. */
export interface KernelSpaces {
  /** The main tables (the entry loads them). */
  main: PageTables;
  /** CR3 of every other space, by name. */
  spaces: Record<string, bigint>;
  /** The CR3 the loop's slot holds at boot. */
  slotCr3: bigint;
}

/**
 * Builds the main tables with `tables` (else `mapKernel`), then each of `spaces` in order; `slot`
 * names the space the slot holds (default the main one). Throws TestKernelError E_LAYOUT for an unknown slot.
 */
export function buildSpaces(
  mem: SparseMemory,
  mode: Exclude<PagingMode, 'none'>,
  alloc: FrameAllocator,
  o: { tables?: TablesBuilder; spaces?: Readonly<Record<string, TablesBuilder>>; slot?: string },
  mapKernel: TablesBuilder,
): KernelSpaces {
  const main = new PageTables(mem, mode, alloc);
  (o.tables ?? mapKernel)(main);
  const spaces: Record<string, bigint> = {};
  for (const [name, build] of Object.entries(o.spaces ?? {})) {
    const pt = new PageTables(mem, mode, alloc);
    build(pt);
    spaces[name] = pt.cr3;
  }
  if (o.slot === undefined) return { main, spaces, slotCr3: main.cr3 };
  const slotCr3 = spaces[o.slot];
  if (slotCr3 === undefined) throw new TestKernelError('E_LAYOUT', `slot: there is no space named "${o.slot}"`);
  return { main, spaces, slotCr3 };
}

/** Walks each of `needs` (what, address, access) as supervisor; throws TestKernelError E_UNMAPPED at the first that faults. */
export function checkRunnable(mem: SparseMemory, ctx: PagingContext, needs: readonly [string, bigint, AccessKind][]): void {
  for (const [what, va, kind] of needs) {
    const r = walk(mem, ctx, va, { kind, user: false });
    if (r.fault) throw new TestKernelError('E_UNMAPPED', `the main tables do not let the kernel use ${what} at ${hex(va)} (${kind}): ${r.fault.explanation}`);
  }
}

/** The multiboot ELF of a test kernel whose memory is `mem` (entry at `entry`), and the listing of its two pieces of code. */
export function packKernel(mem: SparseMemory, entry: number, low: Assembly, high: Assembly): { elf: Uint8Array; listing: string } {
  return { elf: buildMultibootElf({ entry, segments: segmentsFromMemory(mem) }), listing: `${low.listing()}\n${high.listing()}` };
}
