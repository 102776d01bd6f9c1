/**
 * `pagewalk tui`: the terminal UI on the target the options name (a live QEMU, the bundled
 * emulator with --emu, a dump). It needs a terminal; it exits 0 when the user quits, and 3 when
 * the target cannot be opened (said in one line before any screen is drawn).
 */
import { Command } from 'commander';
import { findScenario, ScenarioError } from '../../emu/scenarios/index.js';
import { loadElfSymbols } from '../../target/elfSymbols.js';
import type { Target } from '../../target/target.js';
import { LaunchError } from '../../launch/errors.js';
import { launchQemu, type LaunchedQemu } from '../../launch/launch.js';
import { TargetError } from '../../target/target.js';
import { emuSource, launchedSource, optionsSource } from '../../tui/sources.js';
import { cr3Watch } from '../../tui/watchRun.js';
import type { TuiSource } from '../../tui/source.js';
import { withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { UsageError } from '../errors.js';
import type { Io } from '../output.js';
import { openTarget } from '../session.js';

interface TuiCliOptions extends CommonOptions {
  watch?: boolean;
  run?: boolean;
}

/** The TUI, loaded when a command needs it (blessed costs every other command's start-up time). */
export function loadTui(): Promise<typeof import('../../tui/app.js')> {
  return import('../../tui/app.js');
}

/** Throws UsageError unless stdin and stdout are a terminal the TUI can take over. */
export function requireTerminal(io: Io, what: string): void {
  if (io.stdout.isTTY !== true || process.stdin.isTTY !== true) {
    throw new UsageError(`${what} needs a terminal (stdin and stdout are not both one); in scripts use the other commands, or pagewalk run`);
  }
}

/** Builds the `tui` command. */
export function tuiCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('tui')
      .description('the terminal UI: registers, the path of an address, the fault at hand, the map, the CR3 watch, a command line')
      .option('--no-watch', 'continue without watching each mov to CR3')
      .option('--run', 'let the guest run as soon as the screen is up'),
  ).action(async (opts: TuiCliOptions) => {
    if (opts.json) throw new UsageError('tui has no JSON output: use the other commands with --json, or pagewalk run --json');
    requireTerminal(run.io, 'tui');
    const symbols = opts.elf ? await loadElfSymbols(opts.elf) : null;
    let source: TuiSource;
    if (opts.emu !== undefined) {
      try {
        source = emuSource(findScenario(opts.emu), opts);
      } catch (e) {
        if (e instanceof ScenarioError) throw new UsageError(`--emu: ${e.message}`);
        throw e;
      }
    } else {
      // Open once before the screen: a target that cannot be reached is one line and exit 3, not a TUI.
      const first: Target | null = await openTarget(opts);
      const base = optionsSource(opts, symbols);
      let pending: Target | null = first;
      source = {
        ...base,
        open: async () => {
          const t = pending ?? (await base.open());
          pending = null;
          return t;
        },
      };
    }
    const { runTui } = await loadTui();
    await runTui({
      source,
      watch: opts.watch === false ? null : cr3Watch(),
      run: opts.run === true,
      env: run.io.env,
    });
  });
}

/**
 * `pagewalk launch --tui -- qemu-system-x86_64 ARGS...`: QEMU started as `launch` starts it, then
 * the TUI on it, with QEMU's console in the serial pane. The guest runs on (unless the user's own
 * -S keeps it frozen) until Ctrl-C; `c` then runs it under the CR3 watch. Quitting shuts QEMU down.
 */
export async function launchTui(run: CliRun, argv: string[], o: { log?: string }): Promise<void> {
  requireTerminal(run.io, 'launch --tui');
  let q: LaunchedQemu;
  try {
    q = await launchQemu(argv, { attach: true, log: o.log });
  } catch (e) {
    if (e instanceof LaunchError) throw e.code === 'E_ARGS' ? new UsageError(e.message) : new TargetError('E_OPEN', e.message);
    throw e;
  }
  const { runTui } = await loadTui();
  await runTui({ source: launchedSource(q), watch: cr3Watch(), env: run.io.env });
}
