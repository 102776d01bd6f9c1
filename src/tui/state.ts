/**
 * What the TUI shows, as data: where the guest and the connection are, the selected address, the
 * stop's registers, walk, fault, pre-flight and map, the watch log, the console and command output;
 * and the words for a stop.
 */
import { hex } from '../paging/addr.js';
import type { Access } from '../paging/rights.js';
import type { WalkResult } from '../paging/walk.js';
import type { Stop } from '../target/debuggee.js';
import type { CpuView } from './cpuView.js';
import type { CheckView, FaultView } from './faultPane.js';
import type { LineLog } from './lineLog.js';
import type { MapView } from './mapPane.js';
import type { WatchEntry, WatchStatus } from './watchPane.js';

/** Where the guest and the connection are. */
export type RunState =
  /** Opening the target. */
  | 'starting'
  /** Stopped: everything on screen is this stop's. */
  | 'stopped'
  /** The guest runs; the screen shows the last stop. */
  | 'running'
  /** The connection to the target is gone. */
  | 'lost'
  /** The guest or the emulator has exited. */
  | 'exited';

/** A line for the status bar. */
export interface Notice {
  text: string;
  level: 'info' | 'warn' | 'error';
}

/** The address the path pane walks, and how. */
export interface Selection {
  va: bigint;
  access: Access;
  /** Walk the tables at this CR3 instead of the loaded one (a pre-flight's new tables); null: the loaded CR3. */
  cr3: bigint | null;
  /**
   * Who chose it: 'rip' follows RIP at every stop (the default); 'user' stays until the user picks
   * another; 'check' (a pre-flight's failing access) lasts until the guest moves.
   */
  by: 'rip' | 'user' | 'check';
  /** What the address is, for the pane's title. */
  label: string;
}

/** Everything the screen shows. */
export interface TuiState {
  run: RunState;
  /** Why the guest stopped last, in words ('' before the first stop). */
  stopped: string;
  notice: Notice | null;
  /** A danger to shout about (a `mov cr3` that would triple-fault), or null. */
  warning: string | null;
  /** Why the target is lost or gone (run 'lost' or 'exited'), in full. */
  lost: string | null;
  view: CpuView | null;
  selection: Selection | null;
  walk: WalkResult | null;
  fault: FaultView | null;
  check: CheckView | null;
  map: MapView | null;
  mapLoading: boolean;
  /** Whether the target can be driven (step, continue, interrupt). */
  canDrive: boolean;
  watch: { status: WatchStatus; entries: WatchEntry[] };
  console: LineLog;
  /** What commands printed, for the output pane. */
  output: LineLog;
  /** Whether the source has a console to show. */
  hasConsole: boolean;
}

/** The words for a stop. */
export function stopWords(stop: Stop): string {
  switch (stop.cause) {
    case 'breakpoint':
      return 'breakpoint';
    case 'step':
      return 'stepped';
    case 'watchpoint':
      return `watchpoint (${stop.watch?.kind ?? 'write'} ${stop.watch ? hex(stop.watch.address) : ''})`.replace(' )', ')');
    case 'interrupted':
      return 'interrupted';
    case 'shutdown':
      return 'shut down by a triple fault; its state is kept';
    case 'exited':
      return `exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`;
  }
}
