/**
 * The test kernel for real QEMU in the two paging modes of 32-bit kernels: 32-bit paging (CR4.PSE,
 * 4 MiB pages) and PAE (with EFER.NXE, so NX works). A multiboot ELF whose entry loads its own GDT,
 * turns paging on with tables the caller designed, jumps to its higher half at 0xc0000000 (the
 * classic 3 GiB split), writes a marker line to COM1 and reloads CR3 from a memory slot in a loop,
 * counting the turns. Tests break at the `mov cr3` and compare pagewalk's view with QEMU's, as
 * they do for long mode with `testKernel.ts`.
 *
 * Physical layout (below 16 MiB; the kernel's pages as in testKernel.ts):
 *   0x100000  entry page, identity-mapped: entry code, GDT
 *   0x101000  code page   at 0xc0101000: COM1 and the marker, then the CR3 loop
 *   0x102000  data page   at 0xc0102000: boot info, CR3 slot, loop counter, marker text
 *   0x103000  stack page  at 0xc0103000 (ESP starts at its top)
 *   0x110000  page-table frames, handed out in order: the main tables first
 */
import { Assembler, distance, dword, mem, ref, type Assembly } from '../asm/index.js';
import { cr0, cr3, cr4, ds, eax, ebx, ecx, es, esp, fs, gs, ss } from '../asm/registers.js';
import { pagingContext } from '../paging/mode.js';
import { CR0, CR4, EFER } from '../paging/registers.js';
import { codeDescriptor32, dataDescriptor, gate32 } from './descriptors.js';
import type { PageTables } from './pageTables.js';
import { emitSerialMarker } from './serialMarker.js';
import { FrameAllocator, SparseMemory } from './sparseMemory.js';
import { buildSpaces, checkRunnable, packKernel, type BuiltKernel } from './kernelSpaces.js';
import { TEST_KERNEL, type Placed } from './testKernel.js';
import type { TablesBuilder } from './testKernelError.js';

/** The paging modes of a 32-bit kernel. */
export type LegacyMode = '32-bit' | 'PAE';

/** Where the legacy kernel puts things: as the long-mode test kernel, with its higher half at 3 GiB. */
export const LEGACY_KERNEL = {
  entryPa: TEST_KERNEL.entryPa,
  /** The kernel's higher-half pages are at this VA plus their physical address. */
  higherHalf: 0xc0000000n,
  codePa: TEST_KERNEL.codePa,
  dataPa: TEST_KERNEL.dataPa,
  stackPa: TEST_KERNEL.stackPa,
  endPa: TEST_KERNEL.endPa,
  tableFrames: TEST_KERNEL.tableFrames,
  selectors: { code32: 0x08, data: 0x10 },
  serialPort: TEST_KERNEL.serialPort,
} as const;

/** How `mapLegacyKernel` maps the kernel's own pages. */
export interface LegacyKernelMapping {
  /** The identity mapping of the entry page: a 4 KiB page (default), the large page around it (4 MiB, or 2 MiB in PAE), or none. */
  identity?: 'page' | 'large' | 'none';
  /** The higher-half pages: 4 KiB pages with their own rights (default: code read-only and global, data and stack NX in PAE), or one large RWX page at 0xc0000000 -> 0. */
  higherHalf?: 'page' | 'large';
}

/** What the caller decides. */
export interface LegacyKernelOptions {
  mode: LegacyMode;
  /** Builds the tables the entry loads; they must map the kernel (checked). Default: `mapLegacyKernel(pt)`. */
  tables?: TablesBuilder;
  /** Other address spaces, by name (not checked). */
  spaces?: Readonly<Record<string, TablesBuilder>>;
  /** The space whose CR3 the loop's slot holds at boot; default the main tables. */
  slot?: string;
  /** The line written to COM1 (a newline is added). */
  marker?: string;
  /**
   * Load an IDT of 32 interrupt gates, all to `excHandler` (which halts), instead of keeping the
   * BIOS's vector table that multiboot hands over. Default false.
   */
  idt?: boolean;
  /** What the touch slot holds at boot: 0 (default), or an address the loop reads from its first turn. */
  touch?: number;
}

/** Every address a test needs. */
export interface LegacyKernelManifest {
  mode: LegacyMode;
  /** The multiboot entry point (ELF `e_entry`). */
  entry: number;
  /** The first higher-half instruction: COM1 and the marker, then the loop. */
  higherHalfEntry: bigint;
  /**
   * The loop: when the touch slot is not 0, a read of the address it holds at `touch`; then
   * `mov eax, [slot]`, `mov cr3, eax` at `cr3Write`, and `inc dword [count]`.
   */
  loop: bigint;
  /** The read of the address in the touch slot (`mov eax, [eax]`): where a #PF there comes from. */
  touch: bigint;
  /** A dword: 0, or an address the loop reads on each turn (to raise a #PF at will). */
  touchSlot: Placed;
  /** The handler every gate of the kernel's IDT points at (it halts), when built with `idt`. */
  excHandler: bigint;
  /** The kernel's IDT (32 gates), or null without `idt`. */
  idt: { base: bigint; limit: number } | null;
  cr3Write: bigint;
  afterCr3Write: bigint;
  loopEnd: bigint;
  cr3Slot: Placed;
  loopCount: Placed;
  /** ESP in the higher half. */
  stackTop: bigint;
  gdt: { base: number; limit: number };
  cr3: bigint;
  spaces: Record<string, bigint>;
  slotCr3: bigint;
  /** CR0, CR4 and EFER as the CPU holds them in the loop. */
  cr0: bigint;
  cr4: bigint;
  efer: bigint;
  marker: string;
  tableFrames: { start: number; end: number };
}

/** The built kernel. */
export type LegacyKernel = BuiltKernel<LegacyKernelManifest>;

const K = LEGACY_KERNEL;
const PAGE = 0x1000;
const IA32_EFER = 0xc0000080;
const HH = (pa: number) => K.higherHalf + BigInt(pa);
/** Gates in the kernel's IDT: the exceptions. */
const IDT_GATES = 32;

/** The large page size of `mode`: 4 MiB in 32-bit paging, 2 MiB in PAE. */
export function largePageSize(mode: LegacyMode): number {
  return mode === '32-bit' ? 0x400000 : 0x200000;
}

/** Maps the kernel's own pages into `pt` (see {@link LegacyKernelMapping}). NX applies in PAE only. */
export function mapLegacyKernel(pt: PageTables, how: LegacyKernelMapping = {}): void {
  const mode = pt.mode as LegacyMode;
  const large = largePageSize(mode);
  const nx = mode === 'PAE';
  const identity = how.identity ?? 'page';
  if (identity === 'page') pt.map(BigInt(K.entryPa), K.entryPa, PAGE);
  else if (identity === 'large') pt.map(0n, 0, large);
  if ((how.higherHalf ?? 'page') === 'page') {
    pt.map(HH(K.codePa), K.codePa, PAGE, { write: false, global: true });
    pt.map(HH(K.dataPa), K.dataPa, PAGE, { nx, global: true });
    pt.map(HH(K.stackPa), K.stackPa, PAGE, { nx, global: true });
  } else {
    pt.map(K.higherHalf, 0, large, { global: true });
  }
}

/** Builds the legacy-mode test kernel. Deterministic: the same options give the same bytes. */
export function buildLegacyKernel(options: LegacyKernelOptions): LegacyKernel {
  const mode = options.mode;
  const mem = new SparseMemory(16 << 20);
  const alloc = new FrameAllocator(K.tableFrames.start, K.tableFrames.end);
  const { main, spaces, slotCr3 } = buildSpaces(mem, mode, alloc, options, (pt) => mapLegacyKernel(pt));

  const cr0Value = CR0.PG | CR0.WP | CR0.PE | 0x10n; // ET is hard-wired to 1
  const cr4Value = (mode === 'PAE' ? CR4.PAE : CR4.PSE) | CR4.PGE;
  const eferValue = mode === 'PAE' ? EFER.NXE : 0n;
  const marker = options.marker ?? `pagewalk test kernel: ${mode} paging`;

  const high = assembleHigherHalf(marker, slotCr3, options.touch ?? 0);
  const idt = options.idt ? { base: high.address('idt'), limit: IDT_GATES * 8 - 1 } : null;
  const low = assembleEntry(high, main.cr3, cr4Value, eferValue, idt !== null);
  mem.write(K.entryPa, low.bytes);
  mem.write(K.codePa, high.bytes);

  const manifest: LegacyKernelManifest = {
    mode,
    entry: K.entryPa,
    higherHalfEntry: high.address('hh_entry'),
    loop: high.address('cr3_loop'),
    touch: high.address('touch'),
    touchSlot: placed(high.address('touch_slot')),
    excHandler: high.address('exc_handler'),
    idt,
    cr3Write: high.address('cr3_write'),
    afterCr3Write: high.address('after_cr3_write'),
    loopEnd: high.address('cr3_loop_end'),
    cr3Slot: placed(high.address('cr3_slot')),
    loopCount: placed(high.address('loop_count')),
    stackTop: high.address('stack_top'),
    gdt: { base: Number(low.address('gdt')), limit: low.offset('gdt_end') - low.offset('gdt') - 1 },
    cr3: main.cr3,
    spaces,
    slotCr3,
    cr0: cr0Value,
    cr4: cr4Value,
    efer: eferValue,
    marker,
    tableFrames: { start: K.tableFrames.start, end: alloc.used },
  };
  checkKernelRuns(mem, manifest);
  return { ...packKernel(mem, K.entryPa, low, high), mem, manifest };
}

function placed(va: bigint): Placed {
  return { va, pa: Number(va - K.higherHalf) };
}

/** The higher-half code, data and stack pages, assembled at 0xc0101000. */
function assembleHigherHalf(marker: string, slotCr3: bigint, touch: number): Assembly {
  const a = new Assembler(32);
  // The handler first, so that its address is known to the gates below: the page's first byte.
  a.label('exc_handler').hlt().jmp('exc_handler');
  a.label('cr3_loop')
    .mov(eax, dword('touch_slot'))
    .test(eax, eax)
    .jz('no_touch')
    .label('touch')
    .mov(eax, dword(eax))
    .label('no_touch')
    .mov(eax, dword('cr3_slot'))
    .label('cr3_write')
    .mov(cr3, eax)
    .label('after_cr3_write')
    .inc(dword('loop_count'))
    .pause()
    .jmp('cr3_loop')
    .label('cr3_loop_end');

  a.label('hh_entry');
  emitSerialMarker(a, 32, K.serialPort, 'marker', 'marker_end');
  a.jmp('cr3_loop');

  a.align(PAGE, 0xcc)
    .label('cr3_slot')
    .dd(slotCr3)
    .label('loop_count')
    .dd(0)
    .label('touch_slot')
    .dd(touch)
    .align(8)
    .label('idt');
  const gate = gate32(Number(HH(K.codePa)));
  for (let v = 0; v < IDT_GATES; v++) a.db(gate);
  a.label('marker')
    .db(`${marker}\n`)
    .label('marker_end')
    .align(PAGE)
    .label('stack')
    .zero(PAGE)
    .label('stack_top');
  return a.assemble(HH(K.codePa));
}

/** The entry page: its own GDT, paging on, the jump to the higher half. */
function assembleEntry(high: Assembly, mainCr3: bigint, cr4Value: bigint, eferValue: bigint, idt: boolean): Assembly {
  const a = new Assembler(32);
  a.label('entry').cli().cld().lgdt(mem('gdtr'));
  if (idt) a.lidt(mem('idtr')); // the IDT's linear address is in the higher half: valid once paging is on
  a.jmpFar(K.selectors.code32, 'flat');
  a.label('flat').mov(eax, K.selectors.data).mov(ds, eax).mov(es, eax).mov(ss, eax).mov(fs, eax).mov(gs, eax);
  a.mov(eax, cr4).or(eax, cr4Value).mov(cr4, eax);
  if (eferValue !== 0n) a.mov(ecx, IA32_EFER).rdmsr().or(eax, eferValue).wrmsr();
  a.mov(eax, mainCr3)
    .mov(cr3, eax)
    .mov(eax, cr0)
    .or(eax, CR0.PG | CR0.WP)
    .mov(cr0, eax)
    .mov(esp, high.address('stack_top'))
    .mov(ebx, high.address('hh_entry'))
    .jmp(ebx);

  // Descriptors with the accessed bit preset: loading them never writes the GDT.
  a.align(8)
    .label('gdt')
    .dq(0n, codeDescriptor32(), dataDescriptor())
    .label('gdt_end')
    .label('gdtr')
    .dw(distance('gdt', 'gdt_end', -1))
    .dd(ref('gdt'))
    .label('idtr')
    .dw(IDT_GATES * 8 - 1)
    .dd(high.address('idt'));
  return a.assemble(K.entryPa);
}

/** Walks what the kernel touches through the main tables, as the CPU will in the loop. */
function checkKernelRuns(mem: SparseMemory, m: LegacyKernelManifest): void {
  checkRunnable(mem, pagingContext({ cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer }, { gbPages: false }), [
    ['the entry page (the jump after paging is on)', BigInt(m.entry), 'exec'],
    ['the GDT', BigInt(m.gdt.base), 'read'],
    ['the higher-half code', m.higherHalfEntry, 'exec'],
    ['the CR3 slot', m.cr3Slot.va, 'read'],
    ['the loop counter', m.loopCount.va, 'write'],
    ['the stack', m.stackTop - 4n, 'write'],
  ]);
}
