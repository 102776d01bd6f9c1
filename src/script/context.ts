/**
 * What a command sees while it runs: the session of the current stop, the colours to print with,
 * its statement with typed access to arguments and options, and the controls of the target.
 */
import type { Colors } from '../cli/output.js';
import type { Session, TargetOptions } from '../cli/session.js';
import type { PagingContext } from '../paging/mode.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import type { CommandStatement, Expr } from './ast.js';

/** What one command printed: lines for people, warnings, and its JSON result. */
export interface CommandOutput {
  /** Lines for stdout (coloured with the executor's colours). */
  text: string[];
  /** Warnings, each one line, for stderr. */
  warnings: string[];
  /** The JSON result (DESIGN.md's shapes: the walk JSON for `walk`, and so on). */
  result: unknown;
}

/** The context of one command. */
export interface CommandContext {
  readonly statement: CommandStatement;
  /** The session of the current stop (registers as of now). */
  readonly session: Session;
  readonly colors: Colors;
  /** Evaluates an expression to a number; `what` names it in errors. */
  number(expr: Expr, what: string): Promise<bigint>;
  /** The evaluated number of option `--name`, or undefined when not given. */
  optionNumber(name: string): Promise<bigint | undefined>;
  /** The word of option `--name` (normalised: `w` is `write`), or undefined. */
  optionWord(name: string): string | undefined;
  /** True when flag `--name` is given. */
  flag(name: string): boolean;
  /** The session's paging context, with `--cr3` applied when the command has it. */
  pagingContext(): Promise<PagingContext>;
  /** `name+0xoff` for an address when symbols are loaded. */
  symbolize(va: bigint): string | undefined;
  /** The target's controls; throws ScriptError (E_UNSUPPORTED) naming the command when it has none. */
  control(): DebugControl;
  /** Rebuilds the session after the guest moved (registers and tables re-read). */
  stopped(stop: Stop): Promise<Session>;
  /** Breakpoints the script inserted (and removes when done). */
  readonly breakpoints: Set<bigint>;
  /** Aborted when an interrupt is asked for during this command: loops and watches end early. */
  readonly signal: AbortSignal;
  /** The options the session was opened with (--elf, the register overrides). */
  readonly targetOptions: TargetOptions;
  /** Emits an output before the command ends (watch-cr3's events, one per CR3 write). */
  emit(out: CommandOutput): void;
}

/** A command's implementation. */
export type CommandRunner = (c: CommandContext) => Promise<CommandOutput>;
