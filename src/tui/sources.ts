/**
 * The TUI's sources: a scenario of the bundled emulator in process (its COM1 and its exception log
 * come along), a target named by the command line's options (a live QEMU can be reopened after a
 * loss), and a QEMU that `pagewalk launch` started (its console and `-d int` log come along, and
 * quitting shuts it down).
 */
import { openTarget, type TargetOptions } from '../cli/session.js';
import { Machine } from '../emu/machine.js';
import { findScenario, type Scenario } from '../emu/scenarios/index.js';
import { SymbolTable } from '../target/elfSymbols.js';
import { EmuTarget } from '../target/emuTarget.js';
import { TargetError, type Target } from '../target/target.js';
import type { LaunchedQemu } from '../launch/launch.js';
import { FileTail } from './faultFeed.js';
import type { TuiSource } from './source.js';

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

/**
 * Scenario `scenario` of the bundled emulator, at its hand-over, in process: its serial console
 * (COM1) and its exception log feed the panes. `options` may override registers as for any target.
 */
export function emuSource(scenario: Scenario, options: TargetOptions = {}): TuiSource {
  const built = scenario.build();
  let log = '';
  const listeners = new Set<(text: string) => void>();
  const machine = new Machine({
    ...built.config,
    log: { categories: ['int', 'cpu_reset', 'unimp'], sink: (line) => (log += line + '\n') },
  });
  machine.on('serial-line', (line) => {
    for (const l of listeners) l(line + '\n');
  });
  const target = new EmuTarget(machine, `the bundled emulator: scenario ${scenario.name}`);
  return {
    label: `emulator: ${scenario.name}`,
    open: async () => target,
    canReconnect: false,
    options,
    symbols: scenarioSymbols(built.symbols),
    consoleName: 'COM1',
    console: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    readLog: async () => {
      const text = log;
      log = '';
      return text;
    },
  };
}

/** The scenario named `name` (throws ScenarioError listing the valid names). */
export function emuSourceNamed(name: string, options: TargetOptions = {}): TuiSource {
  return emuSource(findScenario(name), options);
}

/** The target the command line's options name; a live QEMU (--gdb, --qmp) can be reopened after a loss. */
export function optionsSource(options: TargetOptions, symbols: SymbolTable | null): TuiSource {
  const live = options.gdb !== undefined || options.qmp !== undefined;
  const where = [options.gdb && `gdb ${options.gdb}`, options.qmp && `qmp ${options.qmp}`, options.dump && options.dump, options.example && 'the example machine'].filter(Boolean).join(', ');
  return {
    label: where || 'target',
    open: (): Promise<Target> => openTarget(options),
    canReconnect: live,
    options,
    symbols,
  };
}

/**
 * A QEMU `pagewalk launch` started: the run launch began is adopted (interrupted once the screen is
 * up, so the first stop can be drawn), its console (the serial port on stdio) and its `-d int` log
 * feed the panes, and quitting shuts it down.
 */
export function launchedSource(q: LaunchedQemu, options: TargetOptions = {}, symbols: SymbolTable | null = null): TuiSource {
  const tail = q.logPath ? new FileTail(q.logPath) : null;
  return {
    label: `QEMU (pid ${q.pid})`,
    open: async () => {
      if (!q.target) throw new TargetError('E_OPEN', 'QEMU was started without a target attached');
      return q.target;
    },
    canReconnect: false,
    options,
    symbols,
    consoleName: q.plan.consoleOnStdio ? 'QEMU console' : 'QEMU',
    console: (listener) => {
      const onData = (d: Buffer | string): void => listener(typeof d === 'string' ? d : d.toString('utf8'));
      q.console.on('data', onData);
      return () => void q.console.off('data', onData);
    },
    readLog: tail ? () => tail.read() : undefined,
    running: q.run,
    shutdown: async () => {
      await q.shutdown();
    },
  };
}
