/**
 * The bundled x86-64 emulator: a long-mode CPU decoded with iced-x86, its own MMU and TLB,
 * exceptions delivered like hardware with QEMU's `-d int` log, a 16550 serial port, and the
 * Machine facade the RSP and QMP servers sit on.
 */
export { Machine, type MachineConfig, type MachineEvents, type MachineState, type MachineStatus, type MemoryImage, type ResetEvent, type RunOptions, type StopEvent, type StopReason, type TripleFaultAction, type WatchKind } from './machine.js';
export type { StartSegment, StartState } from './startState.js';
export { Cpu, type StepOutcome, type TlbModel } from './cpu.js';
export { DEFAULT_FEATURES, cpuFeatures, cpuid, type CpuFeatures, type CpuidResult } from './features.js';
export { EmuError, type EmuErrorCode } from './errors.js';
export { CpuFault, VEC, escalate, exceptionClass, hasErrorCode, isFault, vectorName, type Escalation, type ExceptionClass } from './exceptions.js';
export { Mmu, type DebugAccessFailure, type DebugTranslation } from './mmu.js';
export { ACC_AC, ACC_EXEC, ACC_IMPLICIT, ACC_READ, ACC_USER, ACC_WRITE, PFE, pagingControl, type LevelName, type PagingControl } from './mmuBits.js';
export { deniedErrorCode, pageFaultCode, type PageRights } from './mmuRights.js';
export { walk, type Translation, type WalkFailure, type WalkFailureReason, type WalkStep } from './mmuWalk.js';
export { Tlb, type TlbEntry } from './tlb.js';
export { PhysicalMemory, type MemoryChunk, type UnbackedReads } from './physMemory.js';
export { EmuLog, formatCpuState, formatInterruptLine, formatSegment, type LogCategory } from './qemuLog.js';
export { COM1, PortBus, Uart16550 } from './serial.js';
export { REGISTER_NAMES, readRegister, writeRegister, type RegisterName } from './registerNames.js';
export { DESC, FL, GPR_NAMES, MSR, SEG_NAMES, type CpuRegisters, type GprName, type SegmentCache, type TableRegister } from './cpuState.js';
export { EmuSession, SessionError, type RunState, type VmStop } from './session.js';
export { RspServer } from './rspServer.js';
export { QmpServer } from './qmpServer.js';
export { HmpMonitor } from './hmpCommands.js';
