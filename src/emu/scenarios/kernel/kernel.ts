/**
 * The hobby kernel every Limine-style scenario boots: linked at 0xffffffff80000000, entered in long
 * mode on the loader's tables with RDI = the boot information. `_start` switches to its own stack
 * and calls `kmain`, which sets up COM1, its GDT and IDT, builds its own page tables with the vmm
 * code (kernel sections with their rights, the direct map with 2 MiB pages), prints progress, loads
 * CR3 at `cr3_write` and carries on at `after_cr3_write`. Options are the bugs: each scenario turns
 * one of them on.
 *
 * Image: one page-aligned section after another, `.text`, `.rodata`, `.data`, `.idt`, any extra
 * sections, a guard page (mapped by nobody), the stack; the loader maps them as an ELF loader
 * would (by section rights), and so does the kernel.
 */
import { Assembler, distance, dword, mem, qword, ref, type Assembly } from '../../../asm/index.js';
import { cr3, cr4, eax, ecx, edi, esi, rax, rbx, rcx, rdi, rdx, rsi, rsp } from '../../../asm/registers.js';
import { BOOT_INFO, LAYOUT, PTE } from '../layout.js';
import { emitInterruptData, emitInterruptStrings, emitInterruptText } from './interrupts.js';
import { TABLE_FLAGS, emitPagingData, emitPagingText, type PagingCode } from './paging.js';
import { emitSerial } from './serial.js';

const PAGE = 0x1000;

/** A page-aligned section of the kernel image. */
export interface KernelSection {
  /** Label of its first byte (its end is `${label}_end`). */
  label: string;
  write: boolean;
  execute: boolean;
  user: boolean;
  /** Where the kernel maps it in its own tables (default: where it is linked, in the image). */
  mapAt?: bigint;
  /** Emits the contents (code or data); the section is padded to whole pages. */
  emit(a: Assembler): void;
}

/** A section as placed: where it is and what rights it gets. */
export interface PlacedSection {
  label: string;
  va: bigint;
  /** Offset from the image's start (= from the kernel's physical base). */
  offset: number;
  size: number;
  write: boolean;
  execute: boolean;
  user: boolean;
}

/** What the kernel does; the defaults are a correct kernel. */
export interface KernelOptions {
  /** Printed in the first line on COM1. */
  name: string;
  /** `_start` switches to the kernel's own stack (default true); false keeps the loader's boot stack. */
  ownStack?: boolean;
  /** The vmm code: index shifts and entry format. */
  paging?: PagingCode;
  /** Flags of the table entries the vmm creates (default P, RW, US). */
  tableFlags?: bigint;
  /** The physical base the kernel maps itself from: the one in the boot information (default), or a constant. */
  physBase?: 'boot-info' | number;
  /** The number of paging levels: from CR4.LA57 (default) or hard-wired to 4. */
  levels?: 'cr4' | 4;
  /** What the kernel maps in the direct map: all RAM (default) or only the usable memory. */
  directMap?: 'all' | 'usable';
  /** The sections the kernel maps in its own tables, by label; default all but the guard page. */
  mapSections?: (label: string) => boolean;
  /** Sections placed after `.idt` (user code, user stack...). */
  extraSections?: readonly KernelSection[];
  /** More read-only data (strings). */
  rodata?: (a: Assembler) => void;
  /** More data (variables). */
  data?: (a: Assembler) => void;
  /** Code at the end of `build_tables`: more mappings. */
  moreMappings?: (a: Assembler) => void;
  /** Code at `after_cr3_write`; default: print that the switch worked, then "ok", then halt. */
  afterSwitch?: (a: Assembler) => void;
}

/** The assembled kernel. */
export interface KernelImage {
  assembly: Assembly;
  /** Every section, in address order (the guard page included, with no rights). */
  sections: PlacedSection[];
  /** `_start`. */
  entry: bigint;
  /** The CR3 the kernel will load: its first frame from the usable memory. */
  cr3: bigint;
}

/** Leaf flags for a section's rights. */
export function sectionFlags(s: Pick<PlacedSection, 'write' | 'execute' | 'user'>): bigint {
  return PTE.P | (s.write ? PTE.RW : 0n) | (s.user ? PTE.US : 0n) | (s.execute ? 0n : PTE.NX);
}

/** Builds the kernel image (deterministic). */
export function buildKernel(o: KernelOptions): KernelImage {
  const mapped: KernelSection[] = [];
  const sections: KernelSection[] = [
    { label: 'sec_text', write: false, execute: true, user: false, emit: (a) => emitText(a, o, mapped) },
    { label: 'sec_rodata', write: false, execute: false, user: false, emit: (a) => emitRodata(a, o) },
    { label: 'sec_data', write: true, execute: false, user: false, emit: (a) => emitData(a, o) },
    { label: 'sec_idt', write: true, execute: false, user: false, emit: (a) => a.label('idt').zero(PAGE) },
    ...(o.extraSections ?? []),
    { label: 'sec_guard', write: false, execute: false, user: false, emit: (a) => a.zero(PAGE) },
    { label: 'sec_stack', write: true, execute: false, user: false, emit: (a) => a.zero(PAGE).label('stack_top') },
  ];
  mapped.push(...sections.filter((s) => s.label !== 'sec_guard' && (o.mapSections?.(s.label) ?? true)));

  const a = new Assembler(64);
  a.label('kernel_start');
  for (const s of sections) {
    a.align(PAGE).label(s.label);
    s.emit(a);
    a.align(PAGE).label(`${s.label}_end`);
  }
  const assembly = a.assemble(LAYOUT.kernelVirt);
  const placed = sections.map((s): PlacedSection => {
    const va = assembly.address(s.label);
    return {
      label: s.label,
      va,
      offset: Number(va - LAYOUT.kernelVirt),
      size: Number(assembly.address(`${s.label}_end`) - va),
      write: s.write,
      execute: s.execute,
      user: s.user,
    };
  });
  return { assembly, sections: placed, entry: assembly.address('_start'), cr3: BigInt(LAYOUT.usable.start) };
}

/** `_start` (the stack, then `kmain`), `kmain`, then the library (serial, vmm, interrupts). */
function emitText(a: Assembler, o: KernelOptions, mapped: readonly KernelSection[]): void {
  a.label('_start').cli().cld();
  if (o.ownStack ?? true) a.lea(rsp, mem('stack_top'));
  a.call('kmain').jmp('halt');

  a.label('kmain').mov(qword('boot_info'), rdi).call('serial_init').lea(rsi, mem('msg_hello')).call('puts');

  // What the loader says: the direct map, the kernel's physical base, usable memory, RAM size.
  a.mov(rbx, qword('boot_info'))
    .mov(rax, qword(rbx, BOOT_INFO.hhdm))
    .mov(qword('phys_offset'), rax);
  if (o.physBase === undefined || o.physBase === 'boot-info') a.mov(rax, qword(rbx, BOOT_INFO.kernelPhys));
  else a.mov(eax, o.physBase);
  a.mov(qword('kernel_phys'), rax)
    .mov(rax, qword(rbx, BOOT_INFO.usableStart))
    .mov(qword('next_frame'), rax)
    .mov(qword('usable_start'), rax)
    .mov(rax, qword(rbx, BOOT_INFO.ramSize))
    .mov(qword('ram_top'), rax);
  if (o.levels === 4) a.mov(qword('paging_levels'), 4);
  else {
    a.mov(rax, cr4)
      .mov(ecx, 4)
      .test(eax, 0x1000) // CR4.LA57
      .jz('levels_known')
      .mov(ecx, 5)
      .label('levels_known')
      .mov(qword('paging_levels'), rcx);
  }

  a.call('gdt_init').call('idt_init').lea(rsi, mem('msg_idt')).call('puts').call('build_tables');
  a.lea(rsi, mem('msg_tables_1'))
    .call('puts')
    .mov(edi, dword('paging_levels'))
    .add(edi, 0x30)
    .call('putc')
    .lea(rsi, mem('msg_tables_2'))
    .call('puts')
    .mov(rax, qword('pml_root'))
    .call('put_hex')
    .mov(edi, 0x0a)
    .call('putc');
  a.mov(rax, qword('pml_root')).label('cr3_write').mov(cr3, rax).label('after_cr3_write');
  if (o.afterSwitch) o.afterSwitch(a);
  else announceSwitch(a).lea(rsi, mem('msg_ok')).call('puts').jmp('halt');

  emitBuildTables(a, o, mapped);
  emitSerial(a);
  emitPagingText(a, o.paging);
  emitInterruptText(a);
}

/** Prints "kernel: running on its own page tables" (the call at `announce_switch` is the first push on the new tables). */
export function announceSwitch(a: Assembler): Assembler {
  return a.lea(rsi, mem('msg_switched')).label('announce_switch').call('puts');
}

/**
 * `build_tables`: a root table, each mapped section from the kernel's physical base with its
 * rights, the direct map with 2 MiB pages, then the scenario's own mappings.
 */
function emitBuildTables(a: Assembler, o: KernelOptions, mapped: readonly KernelSection[]): void {
  a.label('build_tables').call('alloc_table').mov(qword('pml_root'), rax);
  for (const s of mapped) {
    a.mov(rdi, s.mapAt ?? ref(s.label))
      .mov(rsi, qword('kernel_phys'))
      .add(rsi, distance('kernel_start', s.label))
      .mov(rdx, sectionFlags(s))
      .mov(ecx, distance(s.label, `${s.label}_end`))
      .shr(ecx, 12)
      .call('map_range');
  }
  const from = o.directMap === 'usable' ? qword('usable_start') : null;
  if (from) a.mov(rsi, from);
  else a.xor(esi, esi);
  a.mov(rdi, qword('phys_offset'))
    .add(rdi, rsi)
    .mov(rdx, PTE.P | PTE.RW | PTE.PS | PTE.NX)
    .mov(rcx, qword('ram_top'))
    .sub(rcx, rsi)
    .shr(rcx, 21)
    .call('map_range');
  o.moreMappings?.(a);
  a.ret();
}

function emitRodata(a: Assembler, o: KernelOptions): void {
  a.label('msg_hello')
    .db(`pagewalk scenario ${o.name}: kernel started\n`, 0)
    .label('msg_idt')
    .db('kernel: gdt and idt loaded\n', 0)
    .label('msg_tables_1')
    .db('kernel: ', 0)
    .label('msg_tables_2')
    .db('-level page tables built, cr3=', 0)
    .label('msg_switched')
    .db('kernel: running on its own page tables\n', 0)
    .label('msg_ok')
    .db('ok\n', 0);
  emitInterruptStrings(a);
  o.rodata?.(a);
}

function emitData(a: Assembler, o: KernelOptions): void {
  a.align(8)
    .label('boot_info')
    .dq(0)
    .label('kernel_phys')
    .dq(0)
    .label('usable_start')
    .dq(0)
    .label('ram_top')
    .dq(0);
  emitPagingData(a, o.paging, o.tableFlags ?? TABLE_FLAGS);
  emitInterruptData(a);
  o.data?.(a);
}
