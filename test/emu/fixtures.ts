/**
 * Test machines for the emulator tests: a loader-style hand-over built with src/image's
 * PageTables and descriptor builders and src/asm's Assembler. Physical layout: GDT 0x1000, IDT
 * 0x2000, TSS 0x3000, page tables from 0x10000, code at 0x100000, data at 0x200000, stacks below
 * 0x3ff000. The first 4 MiB are mapped twice in 4 KiB pages, at 0 (identity) and at the kernel's
 * higher half 0xffffffff80000000, supervisor and writable unless a test changes entries.
 */
import type { Assembler, Assembly } from '../../src/asm/index.js';
import { codeDescriptor64, dataDescriptor, gate64, tss64, tssDescriptor64 } from '../../src/image/descriptors.js';
import { PageTables, type MapFlags } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import type { TestKernel } from '../../src/image/testKernel.js';
import { Machine, type CpuFeatures, type LogCategory, type StartState, type TlbModel, type TripleFaultAction } from '../../src/emu/index.js';

/** Where things are. */
export const L = {
  ram: 8 << 20,
  kernel: 0xffffffff80000000n,
  gdt: 0x1000,
  idt: 0x2000,
  tss: 0x3000,
  code: 0x100000,
  data: 0x200000,
  stackTop: 0x3ff000,
  istTop: 0x3f0000,
  rsp0Top: 0x3e0000,
} as const;

/** The higher-half virtual address of physical address `pa` in the first 4 MiB. */
export const hh = (pa: number | bigint): bigint => L.kernel + BigInt(pa);

/** Where the code is assembled (higher half). */
export const CODE_VA = hh(L.code);
/** Where the data area is (higher half). */
export const DATA_VA = hh(L.data);

/** An IDT gate for the test machine: a handler label (or address), IST, type, DPL, present. */
export interface TestGate {
  at: string | bigint;
  ist?: number;
  type?: number;
  dpl?: number;
  present?: boolean;
}

/** What a test machine is built from. */
export interface TestMachineOptions {
  /** The code, assembled at CODE_VA; execution starts at label `entry` or the origin. */
  asm: Assembler;
  entry?: string;
  gates?: Record<number, TestGate>;
  features?: Partial<CpuFeatures>;
  tripleFault?: TripleFaultAction;
  /** Start-state overrides (CR4, EFER, RFLAGS, segments...). */
  cpu?: Partial<StartState>;
  /** Changes to the tables or memory before the machine is built. */
  tweak?: (pt: PageTables, mem: SparseMemory, code: Assembly) => void;
  /** Rights of the two 4 MiB mappings. */
  flags?: MapFlags;
  log?: LogCategory[];
  ram?: number;
}

/** A built test machine. */
export interface TestMachine {
  m: Machine;
  code: Assembly;
  pt: PageTables;
  mem: SparseMemory;
}

/** GDT: null, 0x08 kernel code, 0x10 kernel data, 0x18 user data (0x1b), 0x20 user code (0x23), 0x28 TSS. */
export function writeGdt(mem: SparseMemory): void {
  const [tssLo, tssHi] = tssDescriptor64(BigInt(L.tss));
  [0n, codeDescriptor64(0), dataDescriptor(0), dataDescriptor(3), codeDescriptor64(3), tssLo, tssHi].forEach((d, i) =>
    mem.write64(L.gdt + i * 8, d),
  );
}

/** Builds a machine running `o.asm` in long mode on the test layout. */
export function testMachine(o: TestMachineOptions): TestMachine {
  const ram = o.ram ?? L.ram;
  const mem = new SparseMemory(ram);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(0x10000, 0x80000));
  const flags = o.flags ?? {};
  pt.mapRange(0n, 0, 4 << 20, 4096, flags);
  pt.mapRange(L.kernel, 0, 4 << 20, 4096, flags);
  writeGdt(mem);
  mem.write(L.tss, tss64({ rsp: [hh(L.rsp0Top)], ist: [hh(L.istTop), hh(L.istTop - 0x1000)] }));
  const code = o.asm.assemble(CODE_VA);
  mem.write(L.code, code.bytes);
  for (const [v, g] of Object.entries(o.gates ?? {})) {
    const at = typeof g.at === 'string' ? code.address(g.at) : g.at;
    mem.write(L.idt + Number(v) * 16, gate64(at, { ist: g.ist, type: g.type, dpl: g.dpl, present: g.present }));
  }
  o.tweak?.(pt, mem, code);
  const m = new Machine({
    ramSize: ram,
    memory: mem,
    features: o.features,
    tripleFault: o.tripleFault ?? 'shutdown',
    log: { categories: o.log ?? ['int', 'cpu_reset', 'unimp'] },
    cpu: {
      rip: o.entry ? code.address(o.entry) : CODE_VA,
      cr0: 0x80010011n,
      cr3: pt.cr3,
      cr4: 0xa0n,
      efer: 0xd00n,
      gdtr: { base: hh(L.gdt), limit: 0x37 },
      idtr: { base: hh(L.idt), limit: 0xfff },
      cs: 0x08,
      ss: 0x10,
      tr: 0x28,
      ...o.cpu,
      regs: { rsp: hh(L.stackTop), ...o.cpu?.regs },
    },
  });
  return { m, code, pt, mem };
}

/** How {@link testKernelMachine} runs the kernel. */
export interface TestKernelMachineOptions {
  tlbModel?: TlbModel;
  tripleFault?: TripleFaultAction;
  /** RBX and RDI as QEMU's multiboot loader leaves them (default 0x9500 and 0x1000, as the fixtures' dumps show). */
  rbx?: bigint;
  rdi?: bigint;
}

/**
 * The test kernel `k` (src/image/testKernel.ts) on a 128 MiB machine, started at its higher-half
 * entry the way QEMU's multiboot loader and the kernel's 32-bit entry leave it: long mode, the
 * kernel's GDT, an empty IDT, RSP at the stack top.
 */
export function testKernelMachine(k: TestKernel, o: TestKernelMachineOptions = {}): Machine {
  const man = k.manifest;
  return new Machine({
    ramSize: 128 << 20,
    memory: k.mem,
    tlbModel: o.tlbModel,
    tripleFault: o.tripleFault,
    cpu: {
      rip: man.higherHalfEntry,
      regs: { rsp: man.stackTop, rax: man.higherHalfEntry, rbx: o.rbx ?? 0x9500n, rdi: o.rdi ?? 0x1000n },
      cr0: man.cr0,
      cr3: man.cr3,
      cr4: man.cr4,
      efer: man.efer,
      gdtr: { base: BigInt(man.gdt.base), limit: man.gdt.limit },
      idtr: { base: 0n, limit: 0 },
      cs: man.selectors.code64,
      ss: man.selectors.data,
      ds: man.selectors.data,
      es: man.selectors.data,
      fs: man.selectors.data,
      gs: man.selectors.data,
    },
  });
}
