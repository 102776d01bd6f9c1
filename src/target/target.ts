/**
 * The Target interface: where pagewalk gets registers and physical memory from. Backends: memory
 * dumps (raw and ELF cores), in-memory images, QEMU's gdbstub and QMP, and the bundled emulator.
 * The paging code never sees a Target, only the `AsyncPhysMemory` it extends.
 */
import type { SymbolTable } from './elfSymbols.js';
import type { CpuState } from '../paging/cpu.js';
import type { AsyncPhysMemory } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';

/** A range of readable physical memory, [start, end). */
export interface RamRange {
  start: bigint;
  end: bigint;
}

/** What kind of target, and a one-line description for the user. */
export interface TargetInfo {
  kind: 'dump' | 'memory' | 'gdb' | 'qmp' | 'emu';
  description: string;
}

/** Stable codes of target errors. */
export type TargetErrorCode =
  /** The file or endpoint cannot be opened. */
  | 'E_OPEN'
  /** The file or the peer does not speak the expected format. */
  | 'E_FORMAT'
  /** Physical memory that the target does not hold was asked for. */
  | 'E_UNREADABLE'
  /** The target went away. */
  | 'E_LOST'
  /** The target is running and must be stopped first. */
  | 'E_RUNNING';

/** An error from a target; `code` is stable, the message is one line for the user. */
export class TargetError extends Error {
  constructor(
    readonly code: TargetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TargetError';
  }
}

/** A source of registers and physical memory. */
export interface Target extends AsyncPhysMemory {
  readonly info: TargetInfo;
  /** Names for the guest's code that the target brings itself (a scenario's labels); --elf wins over them. */
  readonly symbols?: SymbolTable | null;
  /** The CPU state as far as the target knows it (see `CpuState.notes` for what was inferred). */
  cpuState(): Promise<CpuState>;
  /** The CPU facts the target can tell; fields it cannot tell are absent. */
  cpuFeatures(): Promise<CpuFeatures>;
  /** The readable physical memory, or null when the target cannot tell. */
  ram(): Promise<RamRange[] | null>;
  /** `length` bytes of physical memory at `pa`; throws `TargetError` (E_UNREADABLE) where it has none. */
  readPhysical(pa: bigint, length: number): Promise<Uint8Array>;
  /** Releases the target (closes files and connections, resumes what it stopped). */
  close(): Promise<void>;
}
