/**
 * The state a machine starts in, the way a bootloader hands over to a 64-bit kernel: long mode on,
 * CR3 pointing at the loader's tables, a GDT, maybe an IDT and a TSS, RIP and RSP. Applying it to
 * a CPU loads the segment registers' hidden parts from the GDT with debugger reads (no accessed
 * bits set, nothing can fault), and checks that the result is 64-bit code the emulator can run.
 */
import type { Cpu } from './cpu.js';
import { DESC, FL, GPR_NAMES, SEG_CS, SEG_FS, SEG_GS, flatSegment, nullSegment, type GprName, type SegmentCache, type TableRegister } from './cpuState.js';
import { EmuError } from './errors.js';

/** A segment register in a start state: a selector (hidden part read from the GDT) or the whole cache. */
export type StartSegment = number | SegmentCache;

/** The CPU state a machine starts (and resets) to. */
export interface StartState {
  /** General registers by name; the others start at 0. */
  regs?: Partial<Record<GprName, bigint>>;
  rip: bigint;
  /** RFLAGS (bit 1 is forced on); default 0x2. */
  rflags?: number;
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  /** EFER; LMA is set when LME, CR0.PG and CR4.PAE say long mode is active. */
  efer: bigint;
  cr2?: bigint;
  cr8?: bigint;
  /** Without a GDTR the segment registers take flat 64-bit defaults (CS 0x08 code, SS 0x10 data). */
  gdtr?: TableRegister;
  idtr?: TableRegister;
  /** Default 0x08. */
  cs?: StartSegment;
  /** Default 0x10. */
  ss?: StartSegment;
  /** Default: the SS selector. */
  ds?: StartSegment;
  /** Default: the SS selector. */
  es?: StartSegment;
  /** Default 0 (null). */
  fs?: StartSegment;
  /** Default 0 (null). */
  gs?: StartSegment;
  /** Task register selector (a 64-bit TSS descriptor in the GDT); default: none loaded. */
  tr?: number;
  fsBase?: bigint;
  gsBase?: bigint;
  kernelGsBase?: bigint;
  pkru?: number;
}

/** Flags of a flat 64-bit ring-0 code descriptor (accessed) and a flat data one, as QEMU shows them. */
const FLAT_CODE = 0x00af9b00;
const FLAT_DATA = 0x00cf9300;

/** Reads the 8 bytes at linear `va` with the debugger's translation; null when unmapped. */
function debugRead64(cpu: Cpu, va: bigint): bigint | null {
  const r = cpu.mmu.debugRead(va & 0xffffffffffffffffn, 8);
  return r.ok ? new DataView(r.bytes.buffer).getBigUint64(0, true) : null;
}

/** The segment cache for `seg` from the start state: given, read from the GDT, or a flat default. */
function segmentFor(cpu: Cpu, s: StartState, name: string, given: StartSegment | undefined, fallback: number, code: boolean): SegmentCache {
  const v = given ?? fallback;
  if (typeof v !== 'number') return { ...v };
  if ((v & 0xfffc) === 0) return nullSegment(v, 0);
  if (!s.gdtr) return flatSegment(v, code ? FLAT_CODE : FLAT_DATA);
  const index = v & ~7;
  if (v & 4 || index + 7 > s.gdtr.limit) throw new EmuError('E_CONFIG', `${name} selector 0x${v.toString(16)} is outside the GDT`);
  const raw = debugRead64(cpu, s.gdtr.base + BigInt(index));
  if (raw === null) throw new EmuError('E_CONFIG', `the GDT entry for ${name} (0x${v.toString(16)}) is not mapped`);
  const lo = Number(raw & 0xffffffffn);
  const hi = Number(raw >> 32n);
  const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & DESC.G) limit = ((limit << 12) | 0xfff) >>> 0;
  return { selector: v, base: BigInt(base), limit, flags: hi >>> 0 };
}

/** Loads `s` into `cpu` (memory must already hold the tables it refers to); throws EmuError E_CONFIG when it is not 64-bit long mode. */
export function applyStartState(cpu: Cpu, s: StartState): void {
  cpu.regs = GPR_NAMES.map((n) => BigInt.asUintN(64, s.regs?.[n] ?? 0n));
  cpu.rip = s.rip;
  cpu.rflags = ((s.rflags ?? 0) | FL.FIXED) >>> 0;
  cpu.cr0 = s.cr0 | 0x10n;
  cpu.cr2 = s.cr2 ?? 0n;
  cpu.cr3 = s.cr3;
  cpu.cr4 = s.cr4;
  cpu.cr8 = s.cr8 ?? 0n;
  const longMode = (s.cr0 & 0x80000001n) === 0x80000001n && (s.cr4 & 0x20n) !== 0n && (s.efer & 0x100n) !== 0n;
  if (!longMode) throw new EmuError('E_CONFIG', 'the start state is not in long mode (CR0.PG, CR0.PE, CR4.PAE and EFER.LME must be set)');
  cpu.efer = s.efer | 0x400n;
  cpu.gdtr = s.gdtr ? { ...s.gdtr } : { base: 0n, limit: 0xffff };
  cpu.idtr = s.idtr ? { ...s.idtr } : { base: 0n, limit: 0xffff };
  cpu.mmu.pkru = s.pkru ?? 0;
  cpu.mmu.pkrs = 0;
  cpu.mmu.tlb.flushAll();
  cpu.icache.clear();
  cpu.updatePaging();

  const ss = typeof s.ss === 'object' ? s.ss.selector : (s.ss ?? 0x10);
  cpu.segs = [
    segmentFor(cpu, s, 'ES', s.es, ss, false),
    segmentFor(cpu, s, 'CS', s.cs, 0x08, true),
    segmentFor(cpu, s, 'SS', s.ss, 0x10, false),
    segmentFor(cpu, s, 'DS', s.ds, ss, false),
    segmentFor(cpu, s, 'FS', s.fs, 0, false),
    segmentFor(cpu, s, 'GS', s.gs, 0, false),
  ];
  const cs = cpu.segs[SEG_CS]!;
  if ((cs.flags & (DESC.S | DESC.CS | DESC.P | DESC.L)) !== (DESC.S | DESC.CS | DESC.P | DESC.L)) {
    throw new EmuError('E_CONFIG', `CS 0x${cs.selector.toString(16)} is not a present 64-bit code segment`);
  }
  if (s.fsBase !== undefined) cpu.segs[SEG_FS]!.base = s.fsBase;
  if (s.gsBase !== undefined) cpu.segs[SEG_GS]!.base = s.gsBase;
  cpu.msr.kernelGsBase = s.kernelGsBase ?? 0n;
  cpu.cpl = cs.selector & 3;

  cpu.ldtr = { selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 };
  cpu.tr = { selector: 0, base: 0n, limit: 0xffff, flags: 0x8b00 };
  if (s.tr !== undefined && (s.tr & 0xfffc) !== 0) {
    const tr = segmentFor(cpu, s, 'TR', s.tr, 0, false);
    const upper = s.gdtr ? debugRead64(cpu, s.gdtr.base + BigInt((s.tr & ~7) + 8)) : null;
    if (upper === null) throw new EmuError('E_CONFIG', `the upper half of the TSS descriptor 0x${s.tr.toString(16)} is not readable`);
    tr.base |= (upper & 0xffffffffn) << 32n;
    cpu.tr = tr;
  }
  cpu.halted = false;
  cpu.inhibitIrq = false;
  cpu.oldException = -1;
}
