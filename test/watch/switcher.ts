/**
 * A small kernel for the watch tests that switches CR3 several times: three times to the tables it
 * runs on (safe: code, stack and IDT stay mapped), then, through another `mov cr3`, to an empty
 * PML4 (the next fetch faults, the IDT is gone: a triple fault). Built like a scenario (a machine
 * configuration with free memory declared), so the same image runs in the emulator and, behind the
 * hand-over entry, in real QEMU. Everything sits above 1 MiB, identity-mapped with 2 MiB pages.
 */
import { Assembler, qword } from '../../src/asm/index.js';
import { cr3, rax, rcx } from '../../src/asm/registers.js';
import type { ScenarioBuild } from '../../src/emu/scenarios/index.js';
import { codeDescriptor64, dataDescriptor, gate64 } from '../../src/image/descriptors.js';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

const P = { gdt: 0x101000, idt: 0x102000, code: 0x103000, data: 0x104000, stackTop: 0x108000, tables: 0x110000, empty: 0x150000 } as const;

/** The switcher's build, and the addresses its tests look at. */
export interface Switcher {
  build: ScenarioBuild;
  /** The `mov cr3` of the safe switches, and of the last one. */
  safeSite: bigint;
  badSite: bigint;
  /** The CR3 of the tables it runs on, and of the empty ones. */
  good: bigint;
  bad: bigint;
}

/** Builds the switcher. */
export function switcher(): Switcher {
  const a = new Assembler(64)
    .label('entry')
    .mov(rcx, 0)
    .label('again')
    .mov(rax, qword(BigInt(P.data)))
    .label('safe_site')
    .mov(cr3, rax)
    .inc(rcx)
    .cmp(rcx, 3)
    .jne('again')
    .mov(rax, qword(BigInt(P.data + 8)))
    .label('bad_site')
    .mov(cr3, rax)
    .label('fault')
    .hlt()
    .jmp('fault');
  const code = a.assemble(BigInt(P.code));
  const mem = new SparseMemory(32 << 20);
  mem.write(P.code, code.bytes);
  [0n, codeDescriptor64(), dataDescriptor()].forEach((d, i) => mem.write64(P.gdt + i * 8, d));
  mem.write(P.idt, new Uint8Array(0x1000));
  for (const v of [8, 13, 14]) mem.write(P.idt + v * 16, gate64(code.address('fault'), { selector: 0x08 }));
  mem.write(P.empty, new Uint8Array(0x1000));
  mem.write(P.stackTop - 0x1000, new Uint8Array(0x1000));
  const pt = new PageTables(mem, '4-level', new FrameAllocator(P.tables, P.empty));
  pt.mapRange(0n, 0, 4 << 20, 0x200000);
  mem.write64(P.data, pt.cr3);
  mem.write64(P.data + 8, BigInt(P.empty));
  const build: ScenarioBuild = {
    config: {
      ramSize: 32 << 20,
      memory: mem,
      tripleFault: 'shutdown',
      cpu: {
        rip: code.address('entry'),
        regs: { rsp: BigInt(P.stackTop) },
        rflags: 0x2,
        cr0: CR0.PG | CR0.WP | 0x10n | CR0.PE,
        cr3: pt.cr3,
        cr4: CR4.PAE,
        efer: EFER.LME | EFER.LMA | EFER.NXE,
        gdtr: { base: BigInt(P.gdt), limit: 3 * 8 - 1 },
        idtr: { base: BigInt(P.idt), limit: 0xfff },
        cs: 0x08,
        ss: 0x10,
        ds: 0x10,
        es: 0x10,
        fs: 0x10,
        gs: 0x10,
      },
    },
    symbols: Object.fromEntries(code.labels),
    cr3: { good: pt.cr3, empty: BigInt(P.empty) },
    freePhysical: { start: 0x200000, end: 0x300000 },
  };
  return { build, safeSite: code.address('safe_site'), badSite: code.address('bad_site'), good: pt.cr3, bad: BigInt(P.empty) };
}
