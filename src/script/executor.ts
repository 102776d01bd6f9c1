/**
 * The executor: runs statements against a session, one at a time, keeping variables and
 * breakpoints between them. `pagewalk run` feeds it a whole script; the TUI's command line feeds it
 * one line at a time with `executeLine`, so both share one scope per session. Every statement
 * yields outputs (text for people, a JSON result); a failed `assert` throws ScriptAssertionError
 * after its output, other failures throw ScriptError, TargetError or UsageError.
 */
import pc from 'picocolors';
import type { Colors } from '../cli/output.js';
import { sessionFor, type Session, type TargetOptions } from '../cli/session.js';
import { withCr3 } from '../paging/mode.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import { controlOf } from '../watch/driven.js';
import { statementName, type AssertStatement, type CommandStatement, type EchoStatement, type Expr, type SetStatement, type Statement } from './ast.js';
import { checkCommand } from './commands/check.js';
import { breakCommand, contCommand, deleteCommand, stepCommand } from './commands/control.js';
import { diffCommand } from './commands/diff.js';
import { faultCommand } from './commands/fault.js';
import { helpCommand } from './commands/help.js';
import { mapCommand } from './commands/map.js';
import { regsCommand } from './commands/regs.js';
import { walkCommand } from './commands/walk.js';
import { watchCr3Command } from './commands/watchCr3.js';
import type { CommandContext, CommandOutput, CommandRunner } from './context.js';
import { ScriptAssertionError, ScriptError, type AssertedValue } from './errors.js';
import { evaluate, evaluateNumber, truth, type EvalEnv, type TraceEntry } from './evaluate.js';
import { parseLine } from './parser.js';
import { callQuery } from './queries.js';
import { isRegisterName, registerValue } from './registers.js';
import type { Span } from './span.js';
import { quoteValue, showValue, valueJson, type Value } from './values.js';

/** One output of one statement, with where it came from. */
export interface ScriptOutput extends CommandOutput {
  /** The script line (1-based). */
  line: number;
  /** The command word (`walk`, `set`, `assert` ...). */
  command: string;
}

/** How an executor prints and what it tells its host. */
export interface ExecutorOptions {
  /** Colours for text output (default: none). */
  colors?: Colors;
  /** The options the session was opened with; their register overrides are applied again when the session is rebuilt at a stop. */
  targetOptions?: TargetOptions;
  /** Receives every output as it is produced (watch-cr3 emits one per CR3 write, before the command ends). */
  onOutput?: (out: ScriptOutput) => void;
  /** Called after each stop a statement caused, with the session rebuilt for it. */
  onStop?: (stop: Stop, session: Session) => void;
}

const RUNNERS: Readonly<Record<string, CommandRunner>> = {
  walk: walkCommand,
  map: mapCommand,
  diff: diffCommand,
  check: checkCommand,
  fault: faultCommand,
  regs: regsCommand,
  step: stepCommand,
  cont: contCommand,
  break: breakCommand,
  delete: deleteCommand,
  'watch-cr3': watchCr3Command,
  help: helpCommand,
};

/** Runs script statements against a session, with a scope of variables that lasts as long as it does. */
export class ScriptExecutor {
  private current: Session;
  private readonly vars = new Map<string, Value>();
  private readonly colors: Colors;
  private abort = new AbortController();
  /** Breakpoints inserted by statements of this executor. */
  readonly breakpoints = new Set<bigint>();

  constructor(
    session: Session,
    private readonly options: ExecutorOptions = {},
  ) {
    this.current = session;
    this.colors = options.colors ?? pc.createColors(false);
  }

  /** The session of the current stop. */
  get session(): Session {
    return this.current;
  }

  /** Replaces the session (a host that moved the guest itself refreshes it here); variables and breakpoints stay. */
  setSession(session: Session): void {
    this.current = session;
  }

  /** The variables set with `set`, by name without `$`. */
  get variables(): ReadonlyMap<string, Value> {
    return this.vars;
  }

  /** Re-reads registers and rebuilds the session (after the guest moved). */
  async refresh(): Promise<Session> {
    const s = this.current;
    // The executor does not own the target (the TUI does): a failed re-read must not close it.
    this.current = await sessionFor(s.target, this.options.targetOptions ?? {}, s.symbols, false);
    return this.current;
  }

  /** Parses and runs one line (the TUI's command line); a blank or comment line yields nothing. Throws ScriptSyntaxError too. */
  async executeLine(text: string, line = 1): Promise<ScriptOutput[]> {
    const statement = parseLine(text, line);
    return statement ? this.execute(statement) : [];
  }

  /** Runs one statement and returns its outputs (also given to `onOutput` as they come). */
  async execute(statement: Statement): Promise<ScriptOutput[]> {
    this.abort = new AbortController();
    const outputs: ScriptOutput[] = [];
    const emit = (o: CommandOutput): void => {
      const out: ScriptOutput = { line: statement.span.line, command: statementName(statement), ...o };
      outputs.push(out);
      this.options.onOutput?.(out);
    };
    switch (statement.kind) {
      case 'set':
        emit(await this.set(statement));
        break;
      case 'echo':
        emit(await this.echo(statement));
        break;
      case 'assert':
        await this.assert(statement, emit);
        break;
      case 'command':
        emit(await RUNNERS[statement.name]!(this.commandContext(statement, emit)));
        break;
    }
    return outputs;
  }

  /** Asks a running guest to stop (Ctrl-C): a pending `cont` returns, `step N` and `watch-cr3` end early. */
  async interrupt(): Promise<void> {
    this.abort.abort();
    const control = controlOf(this.current.target);
    if (control?.running) await control.interrupt();
  }

  /** Removes the breakpoints this executor inserted (best effort: a lost target has none left). */
  async dispose(): Promise<void> {
    const control = controlOf(this.current.target);
    if (!control) return;
    for (const va of [...this.breakpoints]) {
      try {
        await control.removeBreakpoint(va);
      } catch {
        // The target is gone or closed: nothing is left to remove.
      }
      this.breakpoints.delete(va);
    }
  }

  private env(): EvalEnv {
    return {
      variable: (name, span) => this.variable(name, span),
      symbol: (name, span) => this.symbol(name, span),
      call: (name, args, spans, span) => callQuery(this.current, name, args, spans, span),
    };
  }

  private variable(name: string, span: Span): Value {
    const own = this.vars.get(name);
    if (own !== undefined) return own;
    if (isRegisterName(name)) {
      const v = registerValue(this.current.cpu, name);
      if (v === undefined) throw new ScriptError('E_NAME', `${this.current.target.info.description} does not report $${name}`, span);
      return v;
    }
    const set = [...this.vars.keys()].map((k) => `$${k}`);
    throw new ScriptError('E_NAME', `no variable $${name}: set it first (set $${name} = ...)${set.length ? `; set so far: ${set.join(' ')}` : ''}`, span);
  }

  private symbol(name: string, span: Span): bigint {
    const table = this.current.symbols;
    if (!table) throw new ScriptError('E_NAME', `'${name}' is not a number or a $variable; symbols such as '${name}' need --elf FILE`, span);
    const v = table.lookup(name);
    if (v === undefined) throw new ScriptError('E_NAME', `no symbol '${name}' in the --elf file or the scenario's labels`, span);
    return v;
  }

  private async set(s: SetStatement): Promise<CommandOutput> {
    if (isRegisterName(s.name)) {
      throw new ScriptError('E_NAME', `$${s.name} is a register, read from the target at each stop; give your variable another name`, s.nameSpan);
    }
    const value = await evaluate(s.value, this.env());
    this.vars.set(s.name, value);
    return { text: [], warnings: [], result: { name: s.name, value: valueJson(value) } };
  }

  private async echo(s: EchoStatement): Promise<CommandOutput> {
    let text = '';
    for (const p of s.parts) text += p.kind === 'text' ? p.text : showValue(await evaluate(p.expr, this.env()));
    return { text: text.split('\n'), warnings: [], result: { text } };
  }

  private async assert(s: AssertStatement, emit: (o: CommandOutput) => void): Promise<void> {
    const trace: TraceEntry[] = [];
    const value = await evaluate(s.condition, this.env(), trace);
    const passed = truth(value, s.condition.span, 'assert');
    const quote = (e: Expr): string => s.source.slice(e.span.column, e.span.column + e.span.length);
    const expression = quote(s.condition);
    const values: AssertedValue[] = [];
    for (const t of trace) {
      const text = quote(t.expr);
      if (text !== expression && !values.some((v) => v.expression === text)) values.push({ expression: text, value: quoteValue(t.value) });
    }
    const result = { passed, expression, message: s.note, values: values.map((v) => ({ expression: v.expression, value: v.value })) };
    emit({ text: passed ? [`${this.colors.green('✓')} ${expression}`] : [], warnings: [], result });
    if (!passed) throw new ScriptAssertionError(expression, values, s.note, s.condition.span);
  }

  private commandContext(statement: CommandStatement, emit: (o: CommandOutput) => void): CommandContext {
    const self = this;
    const env = this.env();
    const exprOption = (name: string): Expr | undefined => {
      const o = statement.options.get(name);
      return o?.kind === 'expr' ? o.expr : undefined;
    };
    return {
      statement,
      get session() {
        return self.current;
      },
      colors: this.colors,
      breakpoints: this.breakpoints,
      get signal() {
        return self.abort.signal;
      },
      targetOptions: this.options.targetOptions ?? {},
      number: (expr, what) => evaluateNumber(expr, env, what),
      async optionNumber(name) {
        const e = exprOption(name);
        return e === undefined ? undefined : evaluateNumber(e, env, `--${name}`);
      },
      optionWord(name) {
        const o = statement.options.get(name);
        return o?.kind === 'word' ? o.word : undefined;
      },
      flag: (name) => statement.options.get(name)?.kind === 'flag',
      async pagingContext() {
        const e = exprOption('cr3');
        return e === undefined ? self.current.ctx : withCr3(self.current.ctx, await evaluateNumber(e, env, '--cr3'));
      },
      symbolize: (va) => self.current.symbols?.symbolize(va),
      control(): DebugControl {
        const t = self.current.target;
        const control = controlOf(t);
        if (!control) {
          throw new ScriptError(
            'E_UNSUPPORTED',
            `${statement.name} needs a target that runs: --emu SCENARIO, or QEMU with --gdb HOST:PORT (this is ${t.info.description}, which only has memory and registers)`,
            statement.span,
          );
        }
        return control;
      },
      async stopped(stop) {
        const s = await self.refresh();
        self.options.onStop?.(stop, s);
        return s;
      },
      emit,
    };
  }
}
