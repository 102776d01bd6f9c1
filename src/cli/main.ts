/**
 * The pagewalk command line. `run` is the whole CLI as a function of (argv, io) so tests can call
 * it in process; `bin/pagewalk` calls it with the real process.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import type { CliRun } from './command.js';
import { catchPfCommand } from './commands/catchPf.js';
import { checkCommand } from './commands/check.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { emuCommand } from './commands/emu.js';
import { explainLogCommand } from './commands/explainLog.js';
import { faultCommand } from './commands/fault.js';
import { launchCommand } from './commands/launch.js';
import { mapCommand } from './commands/map.js';
import { phys2virtCommand } from './commands/phys2virt.js';
import { postMortemCommand } from './commands/postMortem.js';
import { proxyCommand } from './commands/proxy.js';
import { regsCommand } from './commands/regs.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { tuiCommand } from './commands/tui.js';
import { walkCommand } from './commands/walk.js';
import { watchCr3Command } from './commands/watchCr3.js';
import { describeError, EXIT } from './errors.js';
import type { Io } from './output.js';

const runCommandLine = (argv: readonly string[], io: Io): Promise<number> => run([...argv], io);

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Builds the program; commands report their exit status into `run`. */
export function buildProgram(run: CliRun): Command {
  const program = new Command('pagewalk')
    .description('x86 page tables for kernel developers: walk, map, diff, lint, fault explanations and the CR3 pre-flight')
    .version(version)
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => void run.io.stdout.write(s),
      writeErr: (s) => void run.io.stderr.write(s),
    })
    .exitOverride();
  const commands = [regsCommand, walkCommand, mapCommand, diffCommand, phys2virtCommand, checkCommand, faultCommand, explainLogCommand].map((make) => make(run));
  // The demo runs other command lines in this process, on the same output, keeping its own status.
  commands.push(demoCommand(run, (argv) => runCommandLine(argv, run.io)));
  commands.push(watchCr3Command(run));
  commands.push(catchPfCommand(run));
  commands.push(postMortemCommand(run));
  commands.push(emuCommand(run));
  commands.push(proxyCommand(run));
  commands.push(launchCommand(run));
  commands.push(runCommand(run));
  commands.push(serveCommand(run));
  commands.push(tuiCommand(run));
  for (const cmd of commands) {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => void run.io.stdout.write(s),
      writeErr: (s) => void run.io.stderr.write(s),
    });
    cmd.showSuggestionAfterError(true);
    program.addCommand(cmd);
  }
  return program;
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const state: CliRun = { io, status: EXIT.OK };
  const program = buildProgram(state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.status;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its one-line message (and a suggestion); help and version exit 0.
      return err.exitCode === 0 ? EXIT.OK : EXIT.BAD_INPUT;
    }
    const { status, line } = describeError(err);
    io.stderr.write(`pagewalk: ${line}\n`);
    return status;
  }
}
