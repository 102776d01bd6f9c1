/**
 * Targets the API tests build with the PageTables builder: an address space of many small ranges
 * (one page table with alternating rights, shared by many page directory entries), and a wrapper
 * that gives any target scripted controls, so that exclusive operations and lost targets can be
 * provoked at will.
 */
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { PageTables } from '../../src/image/pageTables.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import type { DebugControl, Debuggee, Stop } from '../../src/target/debuggee.js';
import { MemoryTarget } from '../../src/target/memoryTarget.js';
import type { Target } from '../../src/target/target.js';

/** Where the many-ranges space starts. */
export const MANY_BASE = 0x40000000n;

/**
 * A 4-level address space of `tables * 512` ranges of one 4 KiB page each: one page table maps
 * 512 pages (even ones writable, odd ones read-only) and `tables` PD entries all point at it.
 */
export function manyRangesTarget(tables: number): MemoryTarget {
  const mem = new SparseMemory(64 << 20);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(0x100000, 0x200000));
  for (let i = 0; i < 512; i++) pt.map(MANY_BASE + BigInt(i) * 4096n, 0x1000000 + i * 4096, 4096, { write: i % 2 === 0 });
  const table = Number(pt.getEntry(MANY_BASE, 'PD') & 0xffffffffff000n);
  for (let j = 1; j < tables; j++) pt.linkTable(MANY_BASE + BigInt(j) * 0x200000n, 'PD', table);
  const cpu: CpuState = {
    cr0: CR0.PG | CR0.WP | CR0.PE,
    cr3: pt.cr3,
    cr4: CR4.PAE,
    efer: EFER.LME | EFER.LMA | EFER.NXE,
    cr2: 0n,
    rip: MANY_BASE,
    rsp: MANY_BASE + 0x1000n,
    rflags: 2n,
    gpr: {},
    notes: [],
  };
  return new MemoryTarget(mem, cpu, { maxPhyAddr: 40, gbPages: true }, `${tables * 512} ranges`);
}

/** Controls whose answers the test decides: steps succeed at once, cont runs until `stop()`. */
export class ScriptedControl implements DebugControl {
  running = false;
  steps = 0;
  readonly breakpoints = new Set<bigint>();
  readonly registers = new Map<string, bigint>();
  private pending: ((s: Stop) => void) | null = null;
  private readonly listeners = new Set<(s: Stop) => void>();

  async insertBreakpoint(va: bigint): Promise<void> {
    this.breakpoints.add(va);
  }

  async removeBreakpoint(va: bigint): Promise<void> {
    this.breakpoints.delete(va);
  }

  async step(): Promise<Stop> {
    this.steps++;
    return { cause: 'step', signal: 5 };
  }

  cont(): Promise<Stop> {
    this.running = true;
    return new Promise((resolve) => (this.pending = resolve));
  }

  async interrupt(): Promise<void> {
    this.stop({ cause: 'interrupted', signal: 2 });
  }

  async writeRegister(name: string, value: bigint): Promise<void> {
    this.registers.set(name, value);
  }

  onUnsolicitedStop(listener: (stop: Stop) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ends the run in progress with `s`, or, when none runs, reports `s` as a stop nobody asked for. */
  stop(s: Stop): void {
    this.running = false;
    const p = this.pending;
    this.pending = null;
    if (p) p(s);
    else for (const l of this.listeners) l(s);
  }
}

/** `target` with scripted controls. */
export function withControls<T extends Target>(target: T): T & Debuggee & { control: ScriptedControl } {
  const control = new ScriptedControl();
  return Object.assign(Object.create(Object.getPrototypeOf(target) as object) as T, target, { control });
}
