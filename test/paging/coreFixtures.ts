/**
 * Fixtures for the paging-core tests: a machine (sparse RAM, a frame allocator and a PageTables
 * builder) per paging mode, and paging contexts built from register values the way a CPU has them.
 */
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { PageTables, type TableFlags } from '../../src/image/pageTables.js';
import { pagingContext, type CpuFeatures, type PagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import type { FrameRequest, PagingTask, PhysMemory } from '../../src/paging/memory.js';

/** The paging modes that have tables. */
export type TableMode = '32-bit' | 'PAE' | '4-level' | '5-level';

/** Tables are allocated from this address up: the first table (the root) is here. */
export const TABLES_AT = 0x10000;

/** A machine with RAM of `ram` bytes (16 MiB unless told) and an empty address space of `mode`. */
export function machine(
  mode: TableMode,
  opts: { ram?: number; tableFlags?: TableFlags } = {},
): { mem: SparseMemory; pt: PageTables; alloc: FrameAllocator } {
  const mem = new SparseMemory(opts.ram ?? 0x100_0000);
  const alloc = new FrameAllocator(TABLES_AT, 0x10_0000);
  const pt = new PageTables(mem, mode, alloc, opts.tableFlags ?? {});
  return { mem, pt, alloc };
}

const CR4_OF: Record<TableMode, bigint> = {
  '32-bit': CR4.PSE,
  PAE: CR4.PAE,
  '4-level': CR4.PAE,
  '5-level': CR4.PAE | CR4.LA57,
};
const EFER_OF: Record<TableMode, bigint> = {
  '32-bit': 0n,
  PAE: EFER.NXE,
  '4-level': EFER.LME | EFER.LMA | EFER.NXE,
  '5-level': EFER.LME | EFER.LMA | EFER.NXE,
};

/** Register bits to add to or remove from a mode's defaults. */
export interface RegBits {
  cr0?: bigint;
  cr4?: bigint;
  efer?: bigint;
}

/**
 * A paging context for `mode` on `cr3`. Defaults: CR0 = PE|PG|WP; CR4.PSE in 32-bit paging,
 * CR4.PAE (and LA57) otherwise; EFER.NXE outside 32-bit paging (with LME|LMA in long mode).
 */
export function ctxOf(
  mode: TableMode,
  cr3: bigint,
  opts: { set?: RegBits; clear?: RegBits; features?: CpuFeatures } = {},
): PagingContext {
  const adjust = (v: bigint, k: keyof RegBits): bigint => (v | (opts.set?.[k] ?? 0n)) & ~(opts.clear?.[k] ?? 0n);
  return pagingContext(
    {
      cr0: adjust(CR0.PE | CR0.PG | CR0.WP, 'cr0'),
      cr3,
      cr4: adjust(CR4_OF[mode], 'cr4'),
      efer: adjust(EFER_OF[mode], 'efer'),
    },
    opts.features ?? {},
  );
}

/** Runs a task against `mem` and records every frame request it made, in order. */
export function runRecording<T>(task: PagingTask<T>, mem: PhysMemory): { value: T; requests: number[][] } {
  const requests: number[][] = [];
  let step = task.next();
  while (!step.done) {
    const req: FrameRequest = step.value;
    requests.push([...req.frames]);
    step = task.next(req.frames.map((f) => mem.frame(f)));
  }
  return { value: step.value, requests };
}
