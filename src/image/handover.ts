/**
 * A scenario as a multiboot kernel for real QEMU: its memory image as PT_LOAD segments (where it
 * already lies: nothing is moved), plus a generated entry, placed in memory the scenario declares
 * free, that recreates the scenario's hand-over state and jumps to it.
 *
 * The entry runs in two pieces. The 32-bit multiboot entry (identity-mapped, paging off) loads a
 * GDT of its own, sets CR4.PAE (and CR4.LA57: it can only change with paging off), CR3 = small
 * tables of its own, EFER.LME (and NXE, SCE as the scenario has them), CR0.PG, and far-jumps to
 * 64-bit code. Its tables map the entry page 1:1 and the trampoline page at the address where the
 * scenario's own start tables map it too (its direct map, or an identity map), so the trampoline
 * keeps running when it loads the scenario's CR4, CR3, CR0 and EFER. It then loads the scenario's
 * GDTR, IDTR, CS (far return on a stack in its own page), SS, DS, ES, FS, GS, the segment bases,
 * TR, CR2, CR8, RFLAGS, RSP and every general register, and jumps to the scenario's RIP through a
 * memory operand, so no register is left changed.
 *
 * Differences from the emulator's start that remain, all invisible to the scenario's code unless
 * it looks for them: the CPU sets accessed bits in the start tables' entries for the trampoline
 * page, and LTR marks the TSS descriptor busy in the GDT (the emulator's start state loads TR
 * without writing memory).
 */
import { Assembler, distance, mem, qword, ref, type Assembly } from '../asm/index.js';
import { ax, cr0, cr2, cr3, cr4, cr8, ds, eax, ecx, edx, es, fs, gs, r10, r11, r12, r13, r14, r15, r8, r9, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp, ss } from '../asm/registers.js';
import type { StartSegment, StartState } from '../emu/startState.js';
import type { ScenarioBuild } from '../emu/scenarios/scenario.js';
import type { GprName } from '../emu/cpuState.js';
import { hex } from '../paging/addr.js';
import { pagingContext } from '../paging/mode.js';
import { phys2virt } from '../paging/phys2virt.js';
import { CR0, CR4, EFER } from '../paging/registers.js';
import { codeDescriptor32, codeDescriptor64, dataDescriptor } from './descriptors.js';
import { buildMultibootElf, segmentsFromMemory } from './multiboot.js';
import { PageTables } from './pageTables.js';
import { FrameAllocator, SparseMemory } from './sparseMemory.js';

/** Stable codes of hand-over errors. */
export type HandoverErrorCode =
  /** The start state cannot be recreated (no GDTR, a segment given as a cache, not long mode...). */
  | 'E_HANDOVER_STATE'
  /** No room for the entry: no free memory declared, or it is used, below 1 MiB or past RAM. */
  | 'E_HANDOVER_PLACE'
  /** The start tables do not map the trampoline's page (writable, executable, supervisor) anywhere. */
  | 'E_HANDOVER_UNMAPPED';

/** An error building a hand-over image; `code` is stable. */
export class HandoverError extends Error {
  constructor(
    readonly code: HandoverErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HandoverError';
  }
}

/** Where the hand-over entry went, and its code. */
export interface HandoverImage {
  /** The multiboot ELF32 file for `qemu-system-x86_64 -kernel`. */
  elf: Uint8Array;
  /** Physical address of the 32-bit entry (ELF `e_entry`). */
  entry: number;
  /** Physical address of the trampoline page. */
  trampolinePa: number;
  /** The trampoline's address in the scenario's start tables (and in the entry's own tables). */
  trampolineVa: bigint;
  /** The CR3 of the entry's own tables. */
  entryCr3: bigint;
  /** The entry's first 64-bit instruction (1:1-mapped), its GDT and its 64-bit code selector. */
  longModeEntry: bigint;
  entryGdt: { base: number; limit: number };
  entryCode64: number;
  /** Guest physical memory as QEMU loads it: the scenario's image plus the entry's pages. */
  memory: SparseMemory;
  /** Both pieces decoded back. */
  listing: string;
}

const PAGE = 0x1000;
/** Pages the entry takes: the 32-bit entry page, the trampoline page, up to 10 table frames (two 5-level paths). */
const PAGES = 12;
const IA32_EFER = 0xc0000080;
const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_KERNEL_GS_BASE = 0xc0000102;
/** The entry's own GDT: 32-bit code, data, 64-bit code. */
const ENTRY_SELECTORS = { code32: 0x08, data: 0x10, code64: 0x18 } as const;

const GPR_REGS = { rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 } as const;

/** Copies a machine configuration's memory image into sparse memory of the RAM size. */
function loadImage(build: ScenarioBuild): SparseMemory {
  const image = build.config.memory;
  const out = new SparseMemory(build.config.ramSize);
  if (!image) return out;
  const chunks = 'writtenFrames' in image ? image.writtenFrames().map(([pa, bytes]) => ({ pa, bytes })) : [...image];
  for (const c of chunks) out.write(c.pa, c.bytes);
  return out;
}

function selector(name: string, v: StartSegment | undefined, fallback: number): number {
  const s = v ?? fallback;
  if (typeof s !== 'number') throw new HandoverError('E_HANDOVER_STATE', `${name} is given as a segment cache; a hand-over can only load selectors from the GDT`);
  return s;
}

/**
 * Builds the multiboot ELF of `build` for QEMU. The entry goes at `at` (default: the start of the
 * build's free memory). Throws HandoverError, or MultibootError when the scenario's own memory
 * lies below 1 MiB or past 4 GiB.
 */
export function buildHandoverElf(build: ScenarioBuild, at?: number): HandoverImage {
  const s = build.config.cpu;
  const mem = loadImage(build);
  const place = at ?? build.freePhysical?.start;
  if (place === undefined) throw new HandoverError('E_HANDOVER_PLACE', 'the scenario declares no free physical memory for the hand-over entry');
  checkPlace(build, mem, place);
  if (!s.gdtr) throw new HandoverError('E_HANDOVER_STATE', 'the start state has no GDTR: the hand-over loads the segment registers from the scenario GDT');
  const longMode = (s.cr0 & (CR0.PG | CR0.PE)) === (CR0.PG | CR0.PE) && (s.cr4 & CR4.PAE) !== 0n && (s.efer & EFER.LME) !== 0n;
  if (!longMode) throw new HandoverError('E_HANDOVER_STATE', 'the start state is not in long mode (CR0.PG, CR0.PE, CR4.PAE and EFER.LME must be set)');

  const la57 = (s.cr4 & CR4.LA57) !== 0n;
  const entryPa = place;
  const trampolinePa = place + PAGE;
  const trampolineVa = transitAddress(build, mem, trampolinePa);

  // The entry's own tables: the entry page 1:1, the trampoline page where the start tables have it.
  const tables = new PageTables(mem, la57 ? '5-level' : '4-level', new FrameAllocator(place + 2 * PAGE, place + PAGES * PAGE), { user: false });
  tables.map(BigInt(entryPa), entryPa, PAGE);
  tables.map(trampolineVa, trampolinePa, PAGE);

  const trampoline = assembleTrampoline(s, trampolineVa);
  const entry = assembleEntry(s, entryPa, tables.cr3, trampolineVa, la57);
  if (entry.bytes.length > PAGE || trampoline.bytes.length > PAGE) {
    throw new HandoverError('E_HANDOVER_PLACE', `the entry (${entry.bytes.length} bytes) or the trampoline (${trampoline.bytes.length} bytes) is larger than a page`);
  }
  mem.write(entryPa, entry.bytes);
  mem.write(trampolinePa, trampoline.bytes);
  const elf = buildMultibootElf({ entry: entryPa, segments: segmentsFromMemory(mem) });
  return {
    elf,
    entry: entryPa,
    trampolinePa,
    trampolineVa,
    entryCr3: tables.cr3,
    longModeEntry: entry.address('long_entry'),
    entryGdt: { base: Number(entry.address('entry_gdt')), limit: entry.offset('entry_gdt_end') - entry.offset('entry_gdt') - 1 },
    entryCode64: ENTRY_SELECTORS.code64,
    memory: mem,
    listing: `${entry.listing()}\n${trampoline.listing()}`,
  };
}

/** The entry's pages must be free: page-aligned, above 1 MiB, inside RAM and the declared free range, and unwritten. */
function checkPlace(build: ScenarioBuild, mem: SparseMemory, at: number): void {
  const end = at + PAGES * PAGE;
  const free = build.freePhysical;
  const why =
    at % PAGE !== 0
      ? 'is not page-aligned'
      : at < 0x100000
        ? 'is below 1 MiB'
        : end > build.config.ramSize
          ? 'runs past RAM'
          : free && (at < free.start || end > free.end)
            ? `is outside the free memory [${hex(free.start)}, ${hex(free.end)})`
            : mem.writtenFrames().some(([pa]) => pa >= at && pa < end)
              ? "overlaps the scenario's memory image"
              : null;
  if (why) throw new HandoverError('E_HANDOVER_PLACE', `the hand-over entry at ${hex(at)} (${PAGES} pages) ${why}`);
}

/** Where the start tables map `pa` writable, executable and supervisor; throws E_HANDOVER_UNMAPPED if nowhere. */
function transitAddress(build: ScenarioBuild, mem: SparseMemory, pa: number): bigint {
  const s = build.config.cpu;
  const f = build.config.features;
  const ctx = pagingContext({ cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer | EFER.LMA }, { maxPhyAddr: f?.maxPhyAddr ?? 40, gbPages: f?.pdpe1gb ?? true });
  const alias = phys2virt(mem, ctx, BigInt(pa)).find((x) => x.range.write && x.range.execute && !x.range.user && x.range.va + x.range.size >= x.va + BigInt(PAGE));
  if (!alias) {
    throw new HandoverError(
      'E_HANDOVER_UNMAPPED',
      `the start tables (CR3 ${hex(s.cr3)}) do not map physical ${hex(pa)} writable and executable for the supervisor: the hand-over trampoline needs it (map the free memory in a direct map or 1:1)`,
    );
  }
  return alias.va;
}

/** The 32-bit multiboot entry: into long mode on the entry's tables, then on to the trampoline. */
function assembleEntry(s: StartState, entryPa: number, entryCr3: bigint, trampolineVa: bigint, la57: boolean): Assembly {
  const efer = (s.efer & ~EFER.LMA) | EFER.LME;
  const a = new Assembler(32);
  a.label('entry')
    .cli()
    .lgdt(mem('entry_gdtr'))
    .mov(eax, CR4.PAE | (la57 ? CR4.LA57 : 0n))
    .mov(cr4, eax)
    .mov(eax, entryCr3)
    .mov(cr3, eax)
    .mov(ecx, IA32_EFER)
    .mov(eax, efer & 0xffffffffn)
    .mov(edx, efer >> 32n)
    .wrmsr()
    .mov(eax, CR0.PG | CR0.PE | 0x10n)
    .mov(cr0, eax)
    .jmpFar(ENTRY_SELECTORS.code64, 'long_entry')
    .bits(64)
    .label('long_entry')
    .mov(rax, trampolineVa)
    .jmp(rax)
    .align(8)
    .label('entry_gdt')
    .dq(0n, codeDescriptor32(), dataDescriptor(), codeDescriptor64())
    .label('entry_gdt_end')
    .label('entry_gdtr')
    .dw(distance('entry_gdt', 'entry_gdt_end', -1))
    .dd(ref('entry_gdt'));
  return a.assemble(entryPa);
}

/** The 64-bit trampoline: the scenario's control registers, tables, segments, then every register and RIP. */
function assembleTrampoline(s: StartState, at: bigint): Assembly {
  const gdtr = s.gdtr!;
  const idtr = s.idtr ?? { base: 0n, limit: 0xffff };
  const ssSel = selector('SS', s.ss, 0x10);
  const seg = {
    cs: selector('CS', s.cs, 0x08),
    ss: ssSel,
    ds: selector('DS', s.ds, ssSel),
    es: selector('ES', s.es, ssSel),
    fs: selector('FS', s.fs, 0),
    gs: selector('GS', s.gs, 0),
  };
  const wrmsr = (msr: number, v: bigint) => a.mov(ecx, msr).mov(eax, v & 0xffffffffn).mov(edx, (v >> 32n) & 0xffffffffn).wrmsr();

  const a = new Assembler(64);
  a.label('trampoline')
    .mov(rax, s.cr4)
    .mov(cr4, rax)
    .mov(rax, s.cr3)
    .mov(cr3, rax)
    .mov(rax, s.cr0)
    .mov(cr0, rax);
  wrmsr(IA32_EFER, s.efer);
  a.lgdt(mem('gdtr_slot'))
    .lidt(mem('idtr_slot'))
    .lea(rsp, mem('stack_top'))
    .push(seg.cs)
    .lea(rax, mem('segments'))
    .push(rax)
    .retf()
    .label('segments')
    .mov(eax, seg.ss)
    .mov(ss, eax)
    .mov(eax, seg.ds)
    .mov(ds, eax)
    .mov(eax, seg.es)
    .mov(es, eax)
    .mov(eax, seg.fs)
    .mov(fs, eax)
    .mov(eax, seg.gs)
    .mov(gs, eax);
  if (s.fsBase !== undefined) wrmsr(MSR_FS_BASE, s.fsBase);
  if (s.gsBase !== undefined) wrmsr(MSR_GS_BASE, s.gsBase);
  wrmsr(MSR_KERNEL_GS_BASE, s.kernelGsBase ?? 0n);
  if (s.tr !== undefined && (s.tr & 0xfffc) !== 0) a.mov(eax, s.tr).ltr(ax);
  if (s.pkru) {
    if ((s.cr4 & CR4.PKE) === 0n) throw new HandoverError('E_HANDOVER_STATE', 'PKRU is set but CR4.PKE is not: WRPKRU would fault');
    a.xor(ecx, ecx).xor(edx, edx).mov(eax, s.pkru).db(0x0f, 0x01, 0xef); // wrpkru
  }
  a.mov(rax, s.cr2 ?? 0n)
    .mov(cr2, rax)
    .mov(rax, s.cr8 ?? 0n)
    .mov(cr8, rax)
    .mov(rax, BigInt((s.rflags ?? 0) | 2))
    .push(rax)
    .db(0x9d) // popfq
    .mov(rsp, s.regs?.rsp ?? 0n);
  for (const [name, reg] of Object.entries(GPR_REGS)) a.mov(reg, s.regs?.[name as GprName] ?? 0n);
  a.jmp(qword('rip_slot'))
    .align(8)
    .dw(0, 0, 0)
    .label('gdtr_slot')
    .dw(gdtr.limit)
    .dq(gdtr.base)
    .dw(0, 0, 0)
    .label('idtr_slot')
    .dw(idtr.limit)
    .dq(idtr.base)
    .label('rip_slot')
    .dq(s.rip)
    .align(PAGE)
    .label('stack_top');
  return a.assemble(at);
}
