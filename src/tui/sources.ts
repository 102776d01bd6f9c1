/**
 * The TUI's sources: a scenario of the bundled emulator in process (its COM1 and its exception log
 * come along), a target named by the command line's options (a live QEMU can be reopened after a
 * loss), and a QEMU that `pagewalk launch` started (its console and `-d int` log come along, and
 * quitting shuts it down).
 */
import { openTarget, type TargetOptions } from '../cli/session.js';
import { Machine } from '../emu/machine.js';
import { findScenario, type Scenario } from '../emu/scenarios/index.js';
import type { SymbolTable } from '../target/elfSymbols.js';
import { EmuTarget, scenarioSymbols } from '../target/emuTarget.js';

export { scenarioSymbols };
import { TargetError, type Target } from '../target/target.js';
import type { LaunchedQemu } from '../launch/launch.js';
import { FileTail } from './faultFeed.js';
import type { TuiSource } from './source.js';

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
  const symbols = scenarioSymbols(built.symbols);
  const target = new EmuTarget(machine, `the bundled emulator: scenario ${scenario.name}`, symbols);
  return {
    label: `emulator: ${scenario.name}`,
    open: async () => target,
    canReconnect: false,
    options,
    symbols,
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
