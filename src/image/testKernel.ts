/**
 * The test kernel for real QEMU: a multiboot ELF whose 32-bit entry enters long mode the way a
 * loader would (GDT with a 64-bit code segment, CR4.PAE, CR3 = tables the caller designed,
 * EFER.LME|NXE, CR0.PG|WP, far jump), then runs in the higher half: it writes a marker line to
 * COM1 and reloads CR3 from a memory slot in a loop, counting the turns. Tests break at the
 * `mov cr3`, swap the slot, and compare pagewalk's view with QEMU's.
 *
 * Physical layout (all below 16 MiB):
 *   0x100000  entry page, identity-mapped: 32-bit entry, 64-bit trampoline, GDT, IDTR
 *   0x101000  code page   at 0xffffffff80101000: COM1 and the marker, then the CR3 loop
 *   0x102000  data page   at 0xffffffff80102000: boot info, CR3 slot, loop counter, marker text
 *   0x103000  stack page  at 0xffffffff80103000 (RSP starts at its top)
 *   0x110000  page-table frames, handed out in order: the main tables first (CR3 0x110000)
 */
import { Assembler, distance, dword, mem, qword, ref, type Assembly } from '../asm/index.js';
import { cr0, cr3, cr4, ds, eax, ebx, ecx, edx, es, fs, gs, rax, rcx, rsp, ss } from '../asm/registers.js';
import { hex } from '../paging/addr.js';
import { pagingContext } from '../paging/mode.js';
import { CR0, CR4, EFER } from '../paging/registers.js';
import { codeDescriptor32, codeDescriptor64, dataDescriptor } from './descriptors.js';
import { buildSpaces, checkRunnable, packKernel, type BuiltKernel } from './kernelSpaces.js';
import { emitSerialMarker } from './serialMarker.js';
import type { PageTables } from './pageTables.js';
import { FrameAllocator, SparseMemory } from './sparseMemory.js';
import { TestKernelError, type TablesBuilder } from './testKernelError.js';

export { TestKernelError, type TablesBuilder, type TestKernelErrorCode } from './testKernelError.js';

/** Where the test kernel puts things (physical addresses unless named `va`). */
export const TEST_KERNEL = {
  /** The entry page: 32-bit entry (the ELF entry point), 64-bit trampoline, GDT. Identity-mapped. */
  entryPa: 0x100000,
  /** The kernel's higher-half pages are at this VA plus their physical address. */
  higherHalf: 0xffffffff80000000n,
  codePa: 0x101000,
  dataPa: 0x102000,
  stackPa: 0x103000,
  /** The first byte past the kernel's pages. */
  endPa: 0x104000,
  /** Default frames for page tables: [start, end). */
  tableFrames: { start: 0x110000, end: 0x400000 },
  /** GDT selectors. */
  selectors: { code32: 0x08, data: 0x10, code64: 0x18 },
  /** COM1. */
  serialPort: 0x3f8,
} as const;

/** How `mapTestKernel` maps the kernel's own pages. */
export interface KernelMapping {
  /** The identity mapping of the entry page: a 4 KiB page (default), the 2 MiB or 1 GiB page around it, or none. */
  identity?: 4096 | 0x200000 | 0x40000000 | 'none';
  /**
   * The higher-half pages: 4 KiB pages with their own rights (default: code read-only and global,
   * data and stack NX), one 2 MiB RWX page at 0xffffffff80000000 -> 0 (Linux's early text map), or none.
   */
  higherHalf?: 4096 | 0x200000 | 'none';
}


/** What the caller decides. */
export interface TestKernelOptions {
  /** '4-level' (default) or '5-level' (sets CR4.LA57; QEMU then needs `-cpu max`). */
  mode?: '4-level' | '5-level';
  /** Turn on CR4.PCIDE once in long mode (CR3 bits 11:0 are then the PCID; QEMU needs `-cpu max`). */
  pcid?: boolean;
  /** More CR4 bits to set once in long mode: SMEP, SMAP, PKE (QEMU needs `-cpu max`). */
  cr4?: bigint;
  /** PKRU to load (WRPKRU) once in long mode; needs CR4.PKE in `cr4`. */
  pkru?: number;
  /** Builds the tables the entry loads; they must map the kernel (checked). Default: `mapTestKernel(pt)`. */
  tables?: TablesBuilder;
  /** Other address spaces, by name, built after the main one (not checked: they may be broken on purpose). */
  spaces?: Readonly<Record<string, TablesBuilder>>;
  /** The space whose CR3 the loop's slot holds at boot; default the main tables. */
  slot?: string;
  /** The line written to COM1 once in 64-bit code (a newline is added). */
  marker?: string;
  /** Frames for page tables, [start, end): within 16 MiB and clear of the kernel's pages. */
  tableFrames?: { start: number; end: number };
}

/** A virtual address with the physical address behind it. */
export interface Placed {
  va: bigint;
  pa: number;
}

/** Every address a test needs. */
export interface TestKernelManifest {
  mode: '4-level' | '5-level';
  /** The 32-bit multiboot entry point (ELF `e_entry`). */
  entry: number;
  /** The first 64-bit instruction, after the far jump (identity-mapped: VA = PA). */
  longModeEntry: bigint;
  /** The first higher-half instruction: COM1 set-up and the marker, then the loop. */
  higherHalfEntry: bigint;
  /** The loop: `mov rax, [slot]` at `loop`, `mov cr3, rax` at `cr3Write`, then `inc qword [count]`. */
  loop: bigint;
  cr3Write: bigint;
  afterCr3Write: bigint;
  /** The last byte of the loop plus one. */
  loopEnd: bigint;
  /** The CR3 slot the loop loads from. */
  cr3Slot: Placed;
  /** The loop counter (a qword, incremented after each `mov cr3`). */
  loopCount: Placed;
  /** A qword: 0, or an address the loop touches after each `mov cr3`, as `touchKind` says. */
  touchSlot: Placed;
  /** A qword: 0 reads the address in the touch slot (at `touch.read`), 1 writes it, 2 calls it. */
  touchKind: Placed;
  /** The instructions that touch: `mov rcx, [rax]`, `mov [rax], rcx`, `call rax`. */
  touch: { read: bigint; write: bigint; exec: bigint };
  /** EAX and EBX at entry (multiboot magic and information address), stored as two dwords. */
  bootInfo: Placed;
  /** RSP in 64-bit code. */
  stackTop: bigint;
  gdt: { base: number; limit: number };
  selectors: typeof TEST_KERNEL.selectors;
  /** CR3 of the main tables (loaded by the entry). */
  cr3: bigint;
  /** CR3 of every other space, by name. */
  spaces: Record<string, bigint>;
  /** The value the slot holds at boot. */
  slotCr3: bigint;
  /** CR0, CR4 and EFER as the CPU holds them once in the loop (EFER with LMA). */
  cr0: bigint;
  cr4: bigint;
  efer: bigint;
  /** The marker line, without its newline. */
  marker: string;
  /** The table frames handed out: [start, end). */
  tableFrames: { start: number; end: number };
}

/** The built kernel. */
export type TestKernel = BuiltKernel<TestKernelManifest>;


const K = TEST_KERNEL;
const PAGE = 0x1000;
const IA32_EFER = 0xc0000080;
const HH = (pa: number) => K.higherHalf + BigInt(pa);

/** Maps the kernel's own pages into `pt` (see {@link KernelMapping}). */
export function mapTestKernel(pt: PageTables, how: KernelMapping = {}): void {
  const identity = how.identity ?? PAGE;
  if (identity !== 'none') {
    const base = K.entryPa - (K.entryPa % identity);
    pt.map(BigInt(base), base, identity);
  }
  const higherHalf = how.higherHalf ?? PAGE;
  if (higherHalf === PAGE) {
    pt.map(HH(K.codePa), K.codePa, PAGE, { write: false, global: true });
    pt.map(HH(K.dataPa), K.dataPa, PAGE, { nx: true, global: true });
    pt.map(HH(K.stackPa), K.stackPa, PAGE, { nx: true, global: true });
  } else if (higherHalf === 0x200000) {
    pt.map(K.higherHalf, 0, 0x200000, { global: true });
  }
}

/** Builds the test kernel. Deterministic: the same options give the same bytes. */
export function buildTestKernel(options: TestKernelOptions = {}): TestKernel {
  const mode = options.mode ?? '4-level';
  const frames = options.tableFrames ?? K.tableFrames;
  if (frames.start < K.endPa || frames.end > 16 << 20 || frames.start >= frames.end) {
    throw new TestKernelError('E_LAYOUT', `table frames [${hex(frames.start)}, ${hex(frames.end)}) must lie between ${hex(K.endPa)} and 16 MiB`);
  }
  const mem = new SparseMemory(16 << 20);
  const alloc = new FrameAllocator(frames.start, frames.end);
  const { main, spaces, slotCr3 } = buildSpaces(mem, mode, alloc, options, (pt) => mapTestKernel(pt));

  const cr0Value = CR0.PG | CR0.WP | CR0.PE | 0x10n; // ET is hard-wired to 1
  const cr4Value = CR4.PAE | CR4.PGE | (mode === '5-level' ? CR4.LA57 : 0n);
  const eferValue = EFER.LME | EFER.LMA | EFER.NXE;
  const marker = options.marker ?? 'pagewalk test kernel: long mode';

  const high = assembleHigherHalf(marker, main.cr3, slotCr3);
  const longModeCr4 = (options.pcid ? CR4.PCIDE : 0n) | (options.cr4 ?? 0n);
  const low = assembleEntry(high, main.cr3, cr4Value, longModeCr4, options.pkru);
  if (low.bytes.length > PAGE) throw new TestKernelError('E_LAYOUT', `the entry code is ${low.bytes.length} bytes, more than its page`);
  mem.write(K.entryPa, low.bytes);
  mem.write(K.codePa, high.bytes);
  mem.write(K.endPa - PAGE, new Uint8Array(PAGE)); // the stack page, explicitly zero

  const manifest: TestKernelManifest = {
    mode,
    entry: K.entryPa,
    longModeEntry: low.address('long_mode'),
    higherHalfEntry: high.address('hh_entry'),
    loop: high.address('cr3_loop'),
    cr3Write: high.address('cr3_write'),
    afterCr3Write: high.address('after_cr3_write'),
    loopEnd: high.address('cr3_loop_end'),
    cr3Slot: placed(high.address('cr3_slot')),
    loopCount: placed(high.address('loop_count')),
    touchSlot: placed(high.address('touch_slot')),
    touchKind: placed(high.address('touch_kind')),
    touch: { read: high.address('touch_read'), write: high.address('touch_write'), exec: high.address('touch_exec') },
    bootInfo: placed(high.address('boot_magic')),
    stackTop: high.address('stack_top'),
    gdt: { base: Number(low.address('gdt')), limit: low.offset('gdt_end') - low.offset('gdt') - 1 },
    selectors: K.selectors,
    cr3: main.cr3,
    spaces,
    slotCr3,
    cr0: cr0Value,
    cr4: cr4Value | longModeCr4,
    efer: eferValue,
    marker,
    tableFrames: { start: frames.start, end: alloc.used },
  };
  checkKernelRuns(mem, manifest);
  return { ...packKernel(mem, K.entryPa, low, high), mem, manifest };
}

function placed(va: bigint): Placed {
  return { va, pa: Number(va - K.higherHalf) };
}

/** The higher-half code, data and stack pages, assembled at 0xffffffff80101000. */
function assembleHigherHalf(marker: string, bootCr3: bigint, slotCr3: bigint): Assembly {
  const a = new Assembler(64);
  // The loop first, so that its addresses do not move with the marker's length.
  a.label('cr3_loop')
    .mov(rax, qword('cr3_slot'))
    .label('cr3_write')
    .mov(cr3, rax)
    .label('after_cr3_write')
    .inc(qword('loop_count'))
    // Then, when the touch slot holds an address: read it, write it, or call it.
    .mov(rax, qword('touch_slot'))
    .test(rax, rax)
    .jz('touch_done')
    .mov(rcx, qword('touch_kind'))
    .cmp(rcx, 1)
    .je('touch_write')
    .cmp(rcx, 2)
    .je('touch_exec')
    .label('touch_read')
    .mov(rcx, qword(rax))
    .jmp('touch_done')
    .label('touch_write')
    .mov(qword(rax), rcx)
    .jmp('touch_done')
    .label('touch_exec')
    .call(rax)
    .label('touch_done')
    .pause()
    .jmp('cr3_loop')
    .label('cr3_loop_end');

  // COM1 and the marker, then the loop.
  a.label('hh_entry');
  emitSerialMarker(a, 64, K.serialPort, 'marker', 'marker_end');
  a.jmp('cr3_loop');

  a.align(PAGE, 0xcc)
    .label('boot_magic')
    .dd(0) // EAX at entry
    .label('boot_info')
    .dd(0) // EBX at entry
    .label('boot_cr3')
    .dq(bootCr3)
    .label('cr3_slot')
    .dq(slotCr3)
    .label('loop_count')
    .dq(0)
    .label('marker')
    .db(`${marker}\n`)
    .label('marker_end')
    // After the marker, so that what QEMU logged for this kernel (RSI at marker_end) stays true.
    .align(16)
    .label('touch_slot')
    .dq(0)
    .label('touch_kind')
    .dq(0)
    .align(PAGE)
    .label('stack')
    .zero(PAGE)
    .label('stack_top');
  return a.assemble(HH(K.codePa));
}

/** The entry page: 32-bit multiboot entry, the switch to long mode, the GDT. */
function assembleEntry(high: Assembly, mainCr3: bigint, cr4Value: bigint, longModeCr4: bigint, pkru: number | undefined): Assembly {
  const toPa = (label: string) => Number(high.address(label) - K.higherHalf);
  const a = new Assembler(32);
  a.label('entry')
    .cli()
    .cld()
    .mov(dword(toPa('boot_magic')), eax)
    .mov(dword(toPa('boot_info')), ebx)
    .lgdt(mem('gdtr'))
    .lidt(mem('idtr')) // an empty IDT: any exception from here on is a triple fault
    .mov(eax, cr4)
    .or(eax, cr4Value)
    .mov(cr4, eax)
    .mov(eax, mainCr3)
    .mov(cr3, eax)
    .mov(ecx, IA32_EFER)
    .rdmsr()
    .or(eax, EFER.LME | EFER.NXE)
    .wrmsr()
    .mov(eax, cr0)
    .or(eax, CR0.PG | CR0.WP)
    .mov(cr0, eax)
    .jmpFar(K.selectors.code64, 'long_mode');

  a.bits(64)
    .label('long_mode')
    .mov(eax, K.selectors.data)
    .mov(ds, eax)
    .mov(es, eax)
    .mov(ss, eax)
    .mov(fs, eax)
    .mov(gs, eax);
  // CR4.PCIDE can only be set in long mode, with CR3 bits 11:0 zero; SMEP, SMAP and PKE join it.
  if (longModeCr4 !== 0n) a.mov(rax, cr4).or(eax, longModeCr4).mov(cr4, rax);
  if (pkru !== undefined) a.mov(eax, pkru).xor(ecx, ecx).xor(edx, edx).db(0x0f, 0x01, 0xef); // wrpkru
  a.mov(rsp, high.address('stack_top'))
    .mov(rax, high.address('hh_entry'))
    .jmp(rax);

  // Descriptors with the accessed bit preset: loading them never writes the GDT.
  a.align(8)
    .label('gdt')
    .dq(0n, codeDescriptor32(), dataDescriptor(), codeDescriptor64())
    .label('gdt_end')
    .label('gdtr')
    .dw(distance('gdt', 'gdt_end', -1))
    .dd(ref('gdt'))
    .label('idtr')
    .dw(0)
    .dd(0);
  return a.assemble(K.entryPa);
}

/** Walks what the kernel touches through the main tables, as the CPU will in the loop. */
function checkKernelRuns(mem: SparseMemory, m: TestKernelManifest): void {
  checkRunnable(mem, pagingContext({ cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer }), [
    ['the entry page (the far jump after paging is on)', BigInt(m.entry), 'exec'],
    ['the GDT', BigInt(m.gdt.base), 'read'],
    ['the 64-bit trampoline', m.longModeEntry, 'exec'],
    ['the higher-half code', m.higherHalfEntry, 'exec'],
    ['the CR3 loop', m.loop, 'exec'],
    ['the CR3 slot', m.cr3Slot.va, 'read'],
    ['the loop counter', m.loopCount.va, 'write'],
    ['the stack', m.stackTop - 8n, 'write'],
  ]);
}
