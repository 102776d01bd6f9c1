/**
 * The example machine pagewalk generates for its demo and tests (no binary blob is committed):
 * a 64-bit kernel the way a Limine-style loader hands it over, about to load its own page tables,
 * which forget the boot stack. Loading them would triple-fault on the next push.
 */
import type { CpuState } from '../paging/cpu.js';
import { CR0, CR4, EFER } from '../paging/registers.js';
import { codeDescriptor64, dataDescriptor, gate64, tss64, tssDescriptor64 } from './descriptors.js';
import { PageTables } from './pageTables.js';
import { FrameAllocator, SparseMemory } from './sparseMemory.js';

/** Where things are in the example machine. */
export const EXAMPLE = {
  ram: 128 << 20,
  hhdm: 0xffff800000000000n,
  kernelVa: 0xffffffff80000000n,
  kernelPa: 0x200000,
  text: { va: 0xffffffff80000000n, pa: 0x200000, size: 0x4000 },
  rodata: { va: 0xffffffff80004000n, pa: 0x204000, size: 0x2000 },
  data: { va: 0xffffffff80006000n, pa: 0x206000, size: 0xa000 },
  gdt: 0xffffffff80006000n,
  tss: 0xffffffff80006100n,
  idt: 0xffffffff80007000n,
  /** kmain: the instruction after `mov cr3, rax`. */
  rip: 0xffffffff80001234n,
  /** The #PF, #GP and #DF handlers. */
  handlers: { pf: 0xffffffff80002000n, gp: 0xffffffff80002100n, df: 0xffffffff80002200n },
  /** The boot stack the loader set up, near the top of RAM, reached through the HHDM. */
  bootStackPa: 0x7ff0000,
  rsp: 0xffff800007ffff80n,
  framebufferPa: 0xfd000000,
  framebufferVa: 0xffff8000fd000000n,
} as const;

/** The example machine: memory, the CPU as the loader left it, and the kernel's new CR3. */
export interface ExampleMachine {
  mem: SparseMemory;
  cpu: CpuState;
  /** The loader's tables (loaded). */
  loaderCr3: bigint;
  /** The kernel's own tables, built but not yet loaded: they forget the boot stack. */
  kernelCr3: bigint;
  /** The kernel's tables as they should be (boot stack mapped). */
  fixedCr3: bigint;
}

/** Builds the example machine. Deterministic: the same bytes every time. */
export function buildExample(): ExampleMachine {
  const E = EXAMPLE;
  const mem = new SparseMemory(E.ram);

  // The kernel image: code (int3 filler, a `mov cr3, rax` just before RIP), then rodata, data.
  const text = new Uint8Array(E.text.size).fill(0xcc);
  const ripOff = Number(E.rip - E.text.va);
  text.set([0x0f, 0x22, 0xd8], ripOff - 3); // mov cr3, rax
  text.set([0x48, 0x89, 0xe5], ripOff); // mov rbp, rsp
  for (const h of Object.values(E.handlers)) text.set([0xfa, 0xf4, 0xeb, 0xfd], Number(h - E.text.va)); // cli; hlt; jmp $-1
  mem.write(E.text.pa, text);
  mem.write(E.rodata.pa, new TextEncoder().encode('example kernel 1.0\0'));

  // GDT: null, kernel code 0x08, kernel data 0x10, user data 0x1b, user code 0x23, TSS 0x28.
  const gdtPa = E.data.pa + Number(E.gdt - E.data.va);
  const [tssLo, tssHi] = tssDescriptor64(E.tss);
  [0n, codeDescriptor64(0), dataDescriptor(0), dataDescriptor(3), codeDescriptor64(3), tssLo, tssHi].forEach((d, i) =>
    mem.write64(gdtPa + i * 8, d),
  );
  mem.write(E.data.pa + Number(E.tss - E.data.va), tss64({ rsp: [0xffffffff80010000n] }));
  // IDT: #GP, #PF and #DF handlers (no IST: they run on the current stack).
  const idtPa = E.data.pa + Number(E.idt - E.data.va);
  mem.write(idtPa + 13 * 16, gate64(E.handlers.gp));
  mem.write(idtPa + 14 * 16, gate64(E.handlers.pf));
  mem.write(idtPa + 8 * 16, gate64(E.handlers.df));

  // The loader's tables: identity and HHDM of the first 4 GiB in 1 GiB pages, the kernel in 4 KiB pages.
  const loader = new PageTables(mem, '4-level', new FrameAllocator(0x100000, 0x140000));
  for (let g = 0n; g < 4n; g++) {
    loader.map(g << 30n, g << 30n, 1 << 30);
    loader.map(E.hhdm + (g << 30n), g << 30n, 1 << 30, { nx: true });
  }
  mapKernel(loader);

  // The kernel's own tables: its sections with the right rights, the HHDM of the first 64 MiB
  // only (the boot stack, at 127.9 MiB, is left out), the framebuffer.
  const kernel = new PageTables(mem, '4-level', new FrameAllocator(0x140000, 0x180000));
  buildKernelTables(kernel, 64 << 20);
  const fixed = new PageTables(mem, '4-level', new FrameAllocator(0x180000, 0x1c0000));
  buildKernelTables(fixed, E.ram);

  const cpu: CpuState = {
    cr0: CR0.PG | CR0.WP | CR0.PE | 0x32n, // PG WP NE ET MP PE
    cr3: loader.cr3,
    cr4: CR4.PAE | CR4.PGE,
    efer: EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE,
    cr2: 0n,
    rip: E.rip,
    rsp: E.rsp,
    rflags: 0x2n,
    gpr: { rax: kernel.cr3, rsp: E.rsp, rbp: E.rsp },
    // Hidden parts as QEMU packs them: a 64-bit code segment (L=1) and a flat data segment.
    cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xa09b00 },
    ss: { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xc09300 },
    tr: { selector: 0x28, base: E.tss, limit: 0x67 },
    gdtr: { base: E.gdt, limit: 7 * 8 - 1 },
    idtr: { base: E.idt, limit: 256 * 16 - 1 },
    notes: [],
  };
  return { mem, cpu, loaderCr3: loader.cr3, kernelCr3: kernel.cr3, fixedCr3: fixed.cr3 };
}

function mapKernel(pt: PageTables): void {
  const E = EXAMPLE;
  pt.mapRange(E.text.va, E.text.pa, E.text.size, 4096, { write: false, global: true });
  pt.mapRange(E.rodata.va, E.rodata.pa, E.rodata.size, 4096, { write: false, nx: true, global: true });
  pt.mapRange(E.data.va, E.data.pa, E.data.size, 4096, { nx: true, global: true });
}

function buildKernelTables(pt: PageTables, hhdmBytes: number): void {
  const E = EXAMPLE;
  mapKernel(pt);
  pt.mapRange(E.hhdm, 0, hhdmBytes, 2 << 20, { nx: true });
  pt.mapRange(E.framebufferVa, E.framebufferPa, 2 << 20, 2 << 20, { nx: true, pwt: true });
}
