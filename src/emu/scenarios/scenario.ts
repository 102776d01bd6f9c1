/**
 * What a scenario is: a reproduction of one bug class kernel developers hit, as a machine that
 * starts the way a bootloader hands over (long mode, the loader's tables, a stack) and runs code
 * that does what a hobby kernel does (sets up an IDT, builds and loads its own page tables, ...).
 */
import type { MachineConfig } from '../machine.js';

/** How a scenario's run ends. */
export interface ScenarioOutcome {
  /** 'runs': it keeps running (or halts) without a fault; 'fault': a handled exception; 'triple-fault'. */
  kind: 'runs' | 'fault' | 'triple-fault';
  /** The first exception: vector, error code, CR2 (for #PF) and the RIP it was raised at. */
  first?: { vector: number; errorCode: number | null; cr2: bigint | null; rip: bigint };
}

/** A built scenario: the machine's configuration and the named addresses people and tests need. */
export interface ScenarioBuild {
  config: MachineConfig;
  /** Named linear addresses: kmain, the `mov cr3` site, handlers, the stack, tables ... */
  symbols: Record<string, bigint>;
  /** The CR3 values involved, by name (loader, kernel, ...). */
  cr3: Record<string, bigint>;
  /**
   * Physical memory the scenario never touches, [start, end): not in its image, not used while it
   * runs, not reachable through its tables. A QEMU hand-over entry (src/image/handover.ts) goes here.
   */
  freePhysical?: { start: number; end: number };
}

/** One scenario. */
export interface Scenario {
  /** Kebab-case name, as typed on the command line (`--emu pd-index-typo`). */
  name: string;
  /** One line. */
  title: string;
  /** One paragraph: the bug, how it shows, what pagewalk says about it. */
  description: string;
  /** How the run ends. */
  outcome: ScenarioOutcome;
  /** Builds a fresh machine configuration (deterministic: the same bytes every time). */
  build(): ScenarioBuild;
}
