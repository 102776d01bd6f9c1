/**
 * The emulated machine as debuggers and monitors use it: built from a start state (memory image,
 * registers, RAM size, CPU features, what a triple fault does), stepped or run until a stop
 * (breakpoint, watchpoint, step, halt, triple fault, shutdown, a budget or a predicate), with
 * breakpoints and watchpoints by virtual address, debugger reads and writes of virtual and
 * physical memory, registers by name, a status, events and the serial console. The RSP and QMP
 * servers sit on this.
 */
import { Cpu, type TlbModel } from './cpu.js';
import { FL, type CpuRegisters, type SegmentCache, type TableRegister } from './cpuState.js';
import { EmuError } from './errors.js';
import { cpuFeatures, type CpuFeatures } from './features.js';
import type { DebugTranslation } from './mmu.js';
import { PhysicalMemory, type MemoryChunk, type UnbackedReads } from './physMemory.js';
import { EmuLog, type LogCategory } from './qemuLog.js';
import { readRegister, writeRegister } from './registerNames.js';
import { PortBus, Uart16550 } from './serial.js';
import { applyStartState, type StartState } from './startState.js';

/** What a triple fault does, after QEMU's `-action` options. */
export type TripleFaultAction =
  /** Reset to the start state and keep running (QEMU's default, `reboot=reset`). */
  | 'reset'
  /** Stop in the `shutdown` state with the CPU state at the fault kept for post-mortem; only a reset leaves it (`-action reboot=shutdown,shutdown=pause`). */
  | 'shutdown'
  /** Stop in the `paused` state at the fault, state kept; continuing re-executes the faulting instruction. */
  | 'pause';

/** Where the machine is: running (the driver keeps calling run), paused, halted (HLT, nothing can wake it) or shut down. */
export type MachineStatus = 'running' | 'paused' | 'halted' | 'shutdown';

/** Why run() or step() returned. */
export type StopReason = 'step' | 'breakpoint' | 'watchpoint' | 'halted' | 'triple-fault' | 'shutdown' | 'limit' | 'until' | 'requested' | 'unsupported';

/** What a watchpoint watches. */
export type WatchKind = 'write' | 'read' | 'access';

/** A stop, with RIP where the CPU stands. */
export interface StopEvent {
  reason: StopReason;
  rip: bigint;
  /** For watchpoints: the kind and the start address as inserted (QEMU reports that, not the accessed address), and what was accessed. */
  watch?: { kind: WatchKind; address: bigint; accessed: bigint; write: boolean };
  /** For 'unsupported': what the emulator cannot do. */
  message?: string;
}

/** Why the machine was reset. */
export interface ResetEvent {
  /** True for a triple-fault reset, false for one the host asked for. */
  guest: boolean;
  reason: 'guest-reset' | 'host-reset';
}

/** The events a machine emits. */
export interface MachineEvents {
  /** Every stop but 'limit'. */
  stop: StopEvent;
  /** A complete line on the serial console. */
  'serial-line': string;
  reset: ResetEvent;
  /** A triple fault with the shutdown action. */
  shutdown: { guest: true; reason: 'guest-reset' };
  status: MachineStatus;
}

/** A memory image: chunks, or anything with written frames (such as src/image's SparseMemory). */
export type MemoryImage = Iterable<MemoryChunk> | { writtenFrames(): [number, Uint8Array][] };

/** Everything a machine is built from. */
export interface MachineConfig {
  /** RAM size in bytes. */
  ramSize: number;
  /** Physical memory contents at start (and after a reset). */
  memory?: MemoryImage;
  /** The CPU at start (and after a reset). */
  cpu: StartState;
  features?: Partial<CpuFeatures>;
  /** Default 'shutdown'. */
  tripleFault?: TripleFaultAction;
  /** What reads past RAM return: 'zeros' (QEMU, default) or 'ones'. */
  unbackedReads?: UnbackedReads;
  /** What MOV to CR3 flushes: 'hardware' (default: global pages survive) or 'qemu-tcg' (everything, like QEMU). */
  tlbModel?: TlbModel;
  /** Log categories (default int, cpu_reset and unimp) and a sink for every line. */
  log?: { categories?: LogCategory[]; sink?: (line: string, category: LogCategory) => void };
}

/** Options of run(). */
export interface RunOptions {
  /** Stop with 'limit' after this many instructions (default 10 million). */
  maxInstructions?: number;
  /** Stop with 'until' after an instruction when this returns true. */
  until?: (m: Machine) => boolean;
}

/** A copy of the CPU state (for `g` packets and `info registers`). */
export interface MachineState extends CpuRegisters {
  pkru: number;
  fsBase: bigint;
  gsBase: bigint;
  kernelGsBase: bigint;
}

interface Watchpoint {
  start: bigint;
  end: bigint;
  kind: WatchKind;
}

type Listener<K extends keyof MachineEvents> = (event: MachineEvents[K]) => void;

function chunksOf(image: MemoryImage | undefined): MemoryChunk[] {
  if (!image) return [];
  if ('writtenFrames' in image) return image.writtenFrames().map(([pa, bytes]) => ({ pa, bytes }));
  return [...image];
}

/** The bundled x86-64 machine. */
export class Machine {
  readonly cpu: Cpu;
  readonly memory: PhysicalMemory;
  readonly uart: Uart16550;
  readonly log: EmuLog;
  readonly features: CpuFeatures;
  tripleFaultAction: TripleFaultAction;
  private statusValue: MachineStatus = 'paused';
  private readonly start: StartState;
  private readonly initialMemory: Map<number, Uint8Array>;
  private readonly bps = new Set<bigint>();
  private readonly wps: Watchpoint[] = [];
  private watchHit: StopEvent['watch'] | null = null;
  /** Where the last stop (other than a spent budget) left RIP: a breakpoint there does not fire again before an instruction runs. */
  private stoppedAt: bigint | null = null;
  private stopRequested = false;
  private readonly listeners = new Map<keyof MachineEvents, Set<(event: never) => void>>();

  /** Builds the machine; throws EmuError E_CONFIG when the start state is not runnable. */
  constructor(config: MachineConfig) {
    this.features = cpuFeatures(config.features);
    this.memory = new PhysicalMemory(config.ramSize, config.unbackedReads ?? 'zeros');
    this.memory.load(chunksOf(config.memory));
    this.initialMemory = this.memory.snapshot();
    this.log = new EmuLog(new Set(config.log?.categories ?? ['int', 'cpu_reset', 'unimp']), config.log?.sink ?? null);
    this.uart = new Uart16550((line) => this.emit('serial-line', line));
    this.cpu = new Cpu(this.features, this.memory, new PortBus(this.uart), this.log);
    this.cpu.tlbModel = config.tlbModel ?? 'hardware';
    this.tripleFaultAction = config.tripleFault ?? 'shutdown';
    this.start = structuredClone(config.cpu);
    applyStartState(this.cpu, this.start);
  }

  // ---------------------------------------------------------------- events

  /** Calls `listener` on every `event`. */
  on<K extends keyof MachineEvents>(event: K, listener: Listener<K>): this {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (event: never) => void);
    return this;
  }

  /** Stops calling `listener`. */
  off<K extends keyof MachineEvents>(event: K, listener: Listener<K>): this {
    this.listeners.get(event)?.delete(listener as (event: never) => void);
    return this;
  }

  private emit<K extends keyof MachineEvents>(event: K, value: MachineEvents[K]): void {
    for (const l of this.listeners.get(event) ?? []) (l as Listener<K>)(value);
  }

  // ---------------------------------------------------------------- status

  /** The machine's status. */
  get status(): MachineStatus {
    return this.statusValue;
  }

  private setStatus(s: MachineStatus): void {
    if (s === this.statusValue) return;
    this.statusValue = s;
    this.emit('status', s);
  }

  /** Marks the machine paused (a monitor's `stop`), from running or halted; a run() loop in progress returns at the next instruction. */
  pause(): void {
    if (this.statusValue === 'running' || this.statusValue === 'halted') {
      this.stopRequested = true;
      this.setStatus('paused');
    }
  }

  /** Makes a running run() return with 'requested' at the next instruction boundary. */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Instructions executed since the machine was built. */
  get instructions(): number {
    return this.cpu.instructions;
  }

  // ---------------------------------------------------------------- execution

  /** Ends a step or run: sets the status the stop leaves (a spent budget leaves it running), then tells listeners. */
  private stop(reason: StopReason, extra: Partial<StopEvent> = {}): StopEvent {
    const e: StopEvent = { reason, rip: this.cpu.rip, ...extra };
    if (reason === 'limit') return e;
    this.setStatus(reason === 'halted' ? 'halted' : reason === 'shutdown' ? 'shutdown' : 'paused');
    this.stoppedAt = this.cpu.rip;
    this.emit('stop', e);
    return e;
  }

  private checkRunnable(): void {
    if (this.statusValue === 'shutdown') throw new EmuError('E_SHUTDOWN', 'the machine is shut down (triple fault): reset it to run again');
  }

  /** One instruction (or the delivery of the exception it raises), then a stop; halts, watchpoints and triple faults show in the reason. */
  step(): StopEvent {
    this.checkRunnable();
    return this.execute() ?? this.stop('step');
  }

  /**
   * Runs until a stop: a breakpoint (except the one the machine last stopped at, so continuing
   * from a breakpoint moves on; a run that ended on its budget checks its first instruction
   * again), a watchpoint, HLT, a triple fault (per the action), the budget (status stays
   * 'running', so a driver can run in slices), `until`, or requestStop().
   */
  run(opts: RunOptions = {}): StopEvent {
    this.checkRunnable();
    const max = opts.maxInstructions ?? 10_000_000;
    this.stopRequested = false;
    this.setStatus('running');
    for (let n = 0; n < max; n++) {
      if (this.bps.size > 0 && !this.cpu.repContinues && this.cpu.rip !== this.stoppedAt && this.bps.has(this.cpu.rip)) {
        return this.stop('breakpoint');
      }
      if (this.stopRequested) {
        this.stopRequested = false;
        return this.stop('requested');
      }
      const r = this.execute();
      if (r) return r;
      if (opts.until?.(this)) return this.stop('until');
    }
    return this.stop('limit');
  }

  /** Executes one step; returns a stop event when it ends the run (halt, watchpoint, triple fault, unsupported), else null. */
  private execute(): StopEvent | null {
    this.watchHit = null;
    this.stoppedAt = null;
    let outcome;
    try {
      outcome = this.cpu.step();
    } catch (e) {
      if (e instanceof EmuError && e.code === 'E_UNSUPPORTED') {
        this.log.unimp(`pagewalk-emu: ${e.message}; stopping`);
        return this.stop('unsupported', { message: e.message });
      }
      throw e;
    }
    if (outcome === 'triple-fault') return this.tripleFault();
    if (this.watchHit) return this.stop('watchpoint', { watch: this.watchHit });
    if (outcome === 'halted') return this.stop('halted');
    return null;
  }

  private tripleFault(): StopEvent | null {
    this.cpu.oldException = -1;
    switch (this.tripleFaultAction) {
      case 'reset':
        this.doReset(true);
        return null;
      case 'shutdown':
        this.emit('shutdown', { guest: true, reason: 'guest-reset' });
        return this.stop('shutdown');
      case 'pause':
        return this.stop('triple-fault');
    }
  }

  /** Resets to the start state (memory and CPU), like QMP's system_reset; logs `CPU Reset`. Leaves the shutdown state. */
  reset(): void {
    this.doReset(false);
    this.setStatus('paused');
  }

  private doReset(guest: boolean): void {
    this.stoppedAt = null;
    this.log.cpuReset(this.cpu);
    this.memory.restore(this.initialMemory);
    applyStartState(this.cpu, this.start);
    this.emit('reset', { guest, reason: guest ? 'guest-reset' : 'host-reset' });
  }

  // ---------------------------------------------------------------- breakpoints and watchpoints

  /** Inserts an execution breakpoint at virtual address `va` (inserting one twice is fine). */
  addBreakpoint(va: bigint): void {
    this.bps.add(BigInt.asUintN(64, va));
  }

  /** Removes the breakpoint at `va`; false when there was none. */
  removeBreakpoint(va: bigint): boolean {
    return this.bps.delete(BigInt.asUintN(64, va));
  }

  /** The breakpoints, in insertion order. */
  breakpoints(): bigint[] {
    return [...this.bps];
  }

  /** Watches `length` bytes at virtual address `va` for writes, reads or both; throws E_BREAKPOINT for length 0. */
  addWatchpoint(va: bigint, length: number, kind: WatchKind): void {
    if (!Number.isInteger(length) || length <= 0) throw new EmuError('E_BREAKPOINT', `a watchpoint needs a positive length, not ${length}`);
    const start = BigInt.asUintN(64, va);
    this.wps.push({ start, end: start + BigInt(length), kind });
    this.cpu.watcher = (a, size, write) => this.onAccess(a, size, write);
  }

  /** Removes the watchpoint inserted with these arguments; false when there was none. */
  removeWatchpoint(va: bigint, length: number, kind: WatchKind): boolean {
    const start = BigInt.asUintN(64, va);
    const k = this.wps.findIndex((w) => w.start === start && w.end === start + BigInt(length) && w.kind === kind);
    if (k < 0) return false;
    this.wps.splice(k, 1);
    if (this.wps.length === 0) this.cpu.watcher = null;
    return true;
  }

  private onAccess(va: bigint, size: number, write: boolean): void {
    if (this.watchHit) return;
    const end = va + BigInt(size);
    for (const w of this.wps) {
      if (va < w.end && end > w.start && (w.kind === 'access' || (w.kind === 'write') === write)) {
        this.watchHit = { kind: w.kind, address: w.start, accessed: va, write };
        return;
      }
    }
  }

  // ---------------------------------------------------------------- memory and registers

  /** How the debugger sees virtual address `va` under the current CR3 (no A/D bits, no faults). */
  translate(va: bigint): DebugTranslation {
    return this.cpu.mmu.debugTranslate(BigInt.asUintN(64, va));
  }

  /** `length` bytes at virtual address `va`; throws EmuError E_UNMAPPED when any page does not translate (nothing is returned then). */
  readVirtual(va: bigint, length: number): Uint8Array {
    const r = this.cpu.mmu.debugRead(BigInt.asUintN(64, va), length);
    if (!r.ok) throw new EmuError('E_UNMAPPED', `virtual address 0x${r.va.toString(16)} does not translate (${r.reason})`);
    return r.bytes;
  }

  /** Writes `bytes` at virtual address `va`, ignoring protection; throws EmuError E_UNMAPPED (writing nothing) when a page does not translate. */
  writeVirtual(va: bigint, bytes: Uint8Array): void {
    const r = this.cpu.mmu.debugWrite(BigInt.asUintN(64, va), bytes);
    if (!r.ok) throw new EmuError('E_UNMAPPED', `virtual address 0x${r.va.toString(16)} does not translate (${r.reason})`);
  }

  /** `length` bytes of physical memory at `pa` (past RAM: zeros, or ones if so configured). */
  readPhysical(pa: bigint | number, length: number): Uint8Array {
    return this.memory.read(Number(pa), length);
  }

  /** Writes physical memory (the part past RAM is dropped). */
  writePhysical(pa: bigint | number, bytes: Uint8Array): void {
    this.memory.write(Number(pa), bytes);
  }

  /** Register `name` (QEMU target.xml names: rax..r15, rip, eflags, cs..gs, fs_base, gs_base, k_gs_base, cr0..cr4, cr8, efer; and pkru). */
  getRegister(name: string): bigint {
    return readRegister(this.cpu, name);
  }

  /** Sets register `name` as a debugger does (immediately, without #GP checks; paging registers flush the TLB). */
  setRegister(name: string, value: bigint): void {
    writeRegister(this.cpu, name, value);
    if (this.statusValue === 'halted' && name.toLowerCase() === 'rip') {
      this.cpu.halted = false;
      this.setStatus('paused');
    }
  }

  /** A copy of the whole CPU state. */
  state(): MachineState {
    const c = this.cpu;
    const seg = (s: SegmentCache): SegmentCache => ({ ...s });
    const table = (t: TableRegister): TableRegister => ({ ...t });
    return {
      regs: [...c.regs],
      rip: c.rip,
      rflags: c.rflags | FL.FIXED,
      segs: c.segs.map(seg),
      ldtr: seg(c.ldtr),
      tr: seg(c.tr),
      gdtr: table(c.gdtr),
      idtr: table(c.idtr),
      cr0: c.cr0,
      cr2: c.cr2,
      cr3: c.cr3,
      cr4: c.cr4,
      cr8: c.cr8,
      efer: c.efer,
      cpl: c.cpl,
      halted: c.halted,
      inhibitIrq: c.inhibitIrq,
      pkru: c.mmu.pkru,
      fsBase: c.segs[4]!.base,
      gsBase: c.segs[5]!.base,
      kernelGsBase: c.msr.kernelGsBase,
    };
  }

  /** Everything written to the serial port, as text. */
  serialText(): string {
    return this.uart.text();
  }
}
