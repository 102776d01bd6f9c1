/**
 * The bundled emulator as a target, in process (`--emu SCENARIO`): registers straight from the
 * machine's CPU (GDTR, IDTR, TR and the segments' hidden parts included, which no gdbstub gives),
 * physical memory straight from its RAM, and the CPU model's MAXPHYADDR and 1 GiB page support.
 * Reading never changes the machine (no A/D bits, no TLB fills): it sees what a debugger would.
 */
import { Machine } from '../emu/machine.js';
import { findScenario } from '../emu/scenarios/index.js';
import type { CpuState, Segment } from '../paging/cpu.js';
import { FRAME_SIZE, type FrameData, type PhysMemory } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import type { SegmentCache } from '../emu/cpuState.js';
import type { Debuggee } from './debuggee.js';
import { EmuControl } from './emuControl.js';
import { SymbolTable } from './elfSymbols.js';
import { TargetError, type RamRange, type Target, type TargetInfo } from './target.js';

const GPRS = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

/** A segment register as QEMU reports it: selector, base, limit, and the attribute bits 8..23 of the descriptor's high dword. */
function segment(s: SegmentCache): Segment {
  return { selector: s.selector, base: s.base, limit: s.limit >>> 0, flags: (s.flags & 0x00ffff00) >>> 0 };
}

/** The CPU state of `machine`, as pagewalk reads targets. */
export function machineCpuState(machine: Machine): CpuState {
  const s = machine.state();
  const gpr: Record<string, bigint> = {};
  GPRS.forEach((n, i) => (gpr[n] = s.regs[i]!));
  const [es, cs, ss, ds, fs, gs] = s.segs.map(segment) as [Segment, Segment, Segment, Segment, Segment, Segment];
  return {
    cr0: s.cr0,
    cr2: s.cr2,
    cr3: s.cr3,
    cr4: s.cr4,
    efer: s.efer,
    rip: s.rip,
    rsp: s.regs[4]!,
    rflags: BigInt(s.rflags >>> 0),
    gpr,
    cs,
    ss,
    ds,
    es,
    fs,
    gs,
    tr: segment(s.tr),
    ldtr: segment(s.ldtr),
    gdtr: { ...s.gdtr },
    idtr: { ...s.idtr },
    pkru: s.pkru >>> 0,
    notes: [],
  };
}

/** A machine of the bundled emulator as a target. */
export class EmuTarget implements Target, PhysMemory, Debuggee {
  readonly info: TargetInfo;
  private closed = false;
  private controlValue: EmuControl | null = null;

  /**
   * Wraps `machine`; `description` says which (e.g. "the bundled emulator: scenario good");
   * `symbols` name its code (a scenario's labels), for symbolic addresses when no ELF is given.
   */
  constructor(
    readonly machine: Machine,
    description = 'the bundled emulator',
    readonly symbols: SymbolTable | null = null,
  ) {
    this.info = { kind: 'emu', description };
  }

  /** The controls (breakpoints, step, cont), made on first use: see `emuControl.ts`. */
  get control(): EmuControl {
    this.controlValue ??= new EmuControl(this.machine);
    return this.controlValue;
  }

  /** The frame at `pa` from the machine's RAM; null outside RAM. */
  frame(pa: number): FrameData {
    this.checkOpen();
    if (!Number.isSafeInteger(pa) || pa < 0 || pa + FRAME_SIZE > this.machine.memory.ramSize) return null;
    const bytes = this.machine.readPhysical(pa, FRAME_SIZE);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async frames(pas: readonly number[]): Promise<FrameData[]> {
    return pas.map((p) => this.frame(p));
  }

  async cpuState(): Promise<CpuState> {
    this.checkOpen();
    return machineCpuState(this.machine);
  }

  /** The emulated CPU's MAXPHYADDR and 1 GiB page support. */
  async cpuFeatures(): Promise<CpuFeatures> {
    return { maxPhyAddr: this.machine.features.maxPhyAddr, gbPages: this.machine.features.pdpe1gb };
  }

  async ram(): Promise<RamRange[]> {
    return [{ start: 0n, end: BigInt(this.machine.memory.ramSize) }];
  }

  /** `length` bytes at `pa`; throws TargetError E_UNREADABLE outside RAM, E_LOST once closed. */
  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    this.checkOpen();
    const ram = BigInt(this.machine.memory.ramSize);
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a whole number of bytes, not ${length}`);
    if (pa < 0n || pa + BigInt(length) > ram) {
      throw new TargetError('E_UNREADABLE', `physical 0x${pa.toString(16)}+0x${length.toString(16)} is outside the emulator's RAM (0x0-0x${ram.toString(16)})`);
    }
    return this.machine.readPhysical(pa, length);
  }

  /** Lets go of the machine (it keeps its state); later reads throw E_LOST. */
  async close(): Promise<void> {
    this.closed = true;
    this.controlValue?.release();
  }

  private checkOpen(): void {
    if (this.closed) throw new TargetError('E_LOST', `${this.info.description} is closed`);
  }
}

/**
 * The machine of scenario `name` as it starts (the loader's hand-over, nothing run yet), as a
 * target. Throws ScenarioError (E_SCENARIO, listing the valid names) for an unknown name.
 */
export function openScenarioTarget(name: string): EmuTarget {
  const scenario = findScenario(name);
  const built = scenario.build();
  return new EmuTarget(new Machine(built.config), `the bundled emulator: scenario ${scenario.name}`, scenarioSymbols(built.symbols));
}

/** The most a scenario's symbol is taken to cover (its labels carry no sizes). */
const SYMBOL_REACH = 0x10000n;

/**
 * The symbols a scenario names (kmain, the `mov cr3` site, handlers...), as a symbol table; each
 * covers up to the next one (at most 64 KiB), so an address far past the last label gets no name.
 */
export function scenarioSymbols(symbols: Readonly<Record<string, bigint>>): SymbolTable {
  const sorted = Object.entries(symbols).sort(([, a], [, b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new SymbolTable(
    sorted.map(([name, value], i) => {
      const next = sorted.slice(i + 1).find(([, v]) => v > value)?.[1];
      const size = next === undefined ? 0x1000n : next - value < SYMBOL_REACH ? next - value : SYMBOL_REACH;
      return { name, value, size, type: 0 };
    }),
  );
}

