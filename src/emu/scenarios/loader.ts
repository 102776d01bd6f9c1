/**
 * The boot loader's hand-over, done in TypeScript the way Limine does it before it jumps: the
 * kernel image copied to its physical base, page tables with the direct map of all RAM (2 MiB
 * pages, writable and executable) and the kernel's sections at 0xffffffff80000000 with their
 * rights, a GDT (Limine's: 64-bit code 0x28, data 0x30), a boot stack and the boot information,
 * all in loader memory the kernel reaches through the direct map. The CPU starts in long mode at
 * the kernel's entry with RSP at the boot stack's top and RDI = the boot information.
 */
import { codeDescriptor32, codeDescriptor64, dataDescriptor } from '../../image/descriptors.js';
import { PageTables } from '../../image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../image/sparseMemory.js';
import { CR0, CR4, EFER } from '../../paging/registers.js';
import type { CpuFeatures } from '../features.js';
import type { StartState } from '../startState.js';
import type { KernelImage } from './kernel/kernel.js';
import { BOOT_INFO, BOOT_INFO_MAGIC, LAYOUT } from './layout.js';
import type { ScenarioBuild } from './scenario.js';

/** The loader's GDT selectors (Limine's layout). */
export const LOADER_SELECTORS = { code64: 0x28, data: 0x30 } as const;

/** Limine's GDT: null, 16-bit code and data, 32-bit code and data, 64-bit code and data. */
const LOADER_GDT: readonly bigint[] = [
  0n,
  0x00009b000000ffffn,
  0x000093000000ffffn,
  codeDescriptor32(),
  dataDescriptor(),
  codeDescriptor64(),
  dataDescriptor(),
];

/** What the loader is given. */
export interface LoaderOptions {
  kernel: KernelImage;
  /** '4-level' (default) or '5-level' (CR4.LA57 on at hand-over; the CPU needs la57). */
  mode?: '4-level' | '5-level';
  /** Writes more memory before the hand-over (what else sits in RAM). */
  memory?: (mem: SparseMemory) => void;
  features?: Partial<CpuFeatures>;
  /** EFER.NXE at hand-over (default true); without it the loader's tables carry no NX bits. */
  nxe?: boolean;
}

/** CR0 at hand-over: PG, WP, ET, PE. */
export const HANDOVER_CR0 = CR0.PG | CR0.WP | 0x10n | CR0.PE;

/** The boot information block (see {@link BOOT_INFO}) for the shared layout. */
export function bootInformation(): Uint8Array {
  const info = new DataView(new ArrayBuffer(BOOT_INFO.size));
  info.setBigUint64(BOOT_INFO.magic, BOOT_INFO_MAGIC, true);
  info.setBigUint64(BOOT_INFO.hhdm, LAYOUT.hhdm, true);
  info.setBigUint64(BOOT_INFO.kernelPhys, BigInt(LAYOUT.kernelPhys), true);
  info.setBigUint64(BOOT_INFO.kernelVirt, LAYOUT.kernelVirt, true);
  info.setBigUint64(BOOT_INFO.usableStart, BigInt(LAYOUT.usable.start), true);
  info.setBigUint64(BOOT_INFO.usableEnd, BigInt(LAYOUT.usable.end), true);
  info.setBigUint64(BOOT_INFO.ramSize, BigInt(LAYOUT.ramSize), true);
  return new Uint8Array(info.buffer);
}

/** Loads `kernel` and hands over to it; returns the scenario's build with the kernel's labels as symbols. */
export function limineHandover(o: LoaderOptions): ScenarioBuild {
  const mode = o.mode ?? '4-level';
  const nxe = o.nxe ?? true;
  const k = o.kernel;
  const mem = new SparseMemory(LAYOUT.ramSize);
  o.memory?.(mem);
  mem.write(LAYOUT.kernelPhys, k.assembly.bytes);

  mem.write(LAYOUT.bootInfoPhys, bootInformation());
  LOADER_GDT.forEach((d, i) => mem.write64(LAYOUT.loaderGdtPhys + i * 8, d));
  mem.write(LAYOUT.bootStack.base, new Uint8Array(LAYOUT.bootStack.top - LAYOUT.bootStack.base));

  const pt = new PageTables(mem, mode, new FrameAllocator(LAYOUT.loaderTables.start, LAYOUT.loaderTables.end));
  pt.mapRange(LAYOUT.hhdm, 0, LAYOUT.ramSize, 0x200000);
  for (const s of k.sections) {
    if (s.label === 'sec_guard') continue;
    pt.mapRange(s.va, LAYOUT.kernelPhys + s.offset, s.size, 0x1000, { write: s.write, nx: nxe && !s.execute, user: s.user });
  }

  const cpu: StartState = {
    rip: k.entry,
    regs: { rsp: LAYOUT.hhdm + BigInt(LAYOUT.bootStack.top), rdi: LAYOUT.hhdm + BigInt(LAYOUT.bootInfoPhys) },
    rflags: 0x2,
    cr0: HANDOVER_CR0,
    cr3: pt.cr3,
    cr4: CR4.PAE | (mode === '5-level' ? CR4.LA57 : 0n),
    efer: EFER.LME | EFER.LMA | (nxe ? EFER.NXE : 0n),
    gdtr: { base: LAYOUT.hhdm + BigInt(LAYOUT.loaderGdtPhys), limit: LOADER_GDT.length * 8 - 1 },
    // Limine leaves the IDT undefined: an empty one, so any exception before the kernel's LIDT triple-faults.
    idtr: { base: 0n, limit: 0 },
    cs: LOADER_SELECTORS.code64,
    ss: LOADER_SELECTORS.data,
    ds: LOADER_SELECTORS.data,
    es: LOADER_SELECTORS.data,
    fs: LOADER_SELECTORS.data,
    gs: LOADER_SELECTORS.data,
  };
  const symbols: Record<string, bigint> = Object.fromEntries(k.assembly.labels);
  symbols.boot_stack_top = cpu.regs!.rsp!;
  symbols.boot_info_block = cpu.regs!.rdi!;
  symbols.loader_gdt = cpu.gdtr!.base;
  return {
    config: { ramSize: LAYOUT.ramSize, memory: mem, cpu, features: o.features, tripleFault: 'shutdown' },
    symbols,
    cr3: { loader: pt.cr3, kernel: k.cr3 },
    freePhysical: { ...LAYOUT.free },
  };
}
