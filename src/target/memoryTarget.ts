/**
 * A target over an in-memory image: a {@link SparseMemory} and a CPU state. Used by the demo, the
 * tests and the benchmarks; also a model of the simplest possible backend.
 */
import type { CpuState } from '../paging/cpu.js';
import type { FrameData, PhysMemory } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import type { SparseMemory } from '../image/sparseMemory.js';
import { TargetError, type RamRange, type Target, type TargetInfo } from './target.js';

/** A target whose memory and registers live in this process. */
export class MemoryTarget implements Target, PhysMemory {
  readonly info: TargetInfo;

  constructor(
    private readonly mem: SparseMemory,
    private readonly cpu: CpuState,
    private readonly features: CpuFeatures = {},
    description = 'in-memory image',
  ) {
    this.info = { kind: 'memory', description };
  }

  frame(pa: number): FrameData {
    return this.mem.frame(pa);
  }

  async frames(pas: readonly number[]): Promise<FrameData[]> {
    return pas.map((p) => this.mem.frame(p));
  }

  async cpuState(): Promise<CpuState> {
    return structuredClone(this.cpu);
  }

  async cpuFeatures(): Promise<CpuFeatures> {
    return { ...this.features };
  }

  async ram(): Promise<RamRange[]> {
    return [{ start: 0n, end: BigInt(this.mem.size) }];
  }

  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    if (pa < 0n || pa + BigInt(length) > BigInt(this.mem.size)) {
      throw new TargetError('E_UNREADABLE', `physical 0x${pa.toString(16)}+0x${length.toString(16)} is outside the image's RAM`);
    }
    return this.mem.read(Number(pa), length);
  }

  async close(): Promise<void> {}
}
