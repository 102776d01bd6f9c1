/**
 * `pagewalk run FILE|-`: a script, one command per line (the words of the TUI's command line),
 * against any target. The whole script is parsed first: a syntax error anywhere runs nothing
 * (exit 2, each error with its line and a caret). Then the statements run in order; a failed
 * `assert` stops the script with exit status 1, any other failure with the line that caused it.
 * `--json` prints JSON lines, one `{"line", "command", "result"}` object per result.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { statementName, type Statement } from '../../script/ast.js';
import { ScriptAssertionError, ScriptError } from '../../script/errors.js';
import { ScriptExecutor, type ScriptOutput } from '../../script/executor.js';
import { parseScript } from '../../script/parser.js';
import { reportFailure } from '../../script/report.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { Output, type Io } from '../output.js';

/** Reads the script: the file, or standard input for `-`. Throws UsageError when the file cannot be read. */
async function readScript(file: string, io: Io): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin ?? process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new UsageError(`cannot read the script ${file}: ${why}`);
  }
}

/**
 * Prints one output: one JSON line, or text with a blank line between a multi-line result and
 * whatever is printed next to it (`echo` prints exactly what it is given, and so lays out itself).
 */
function printer(out: Output): (o: ScriptOutput) => void {
  let last: 'none' | 'line' | 'block' | 'echo' = 'none';
  return (o) => {
    for (const w of o.warnings) out.warn(`line ${o.line}: ${w}`);
    if (out.json) {
      out.jsonValue({ line: o.line, command: o.command, result: o.result }, false);
      return;
    }
    if (o.text.length === 0) return;
    const kind = o.command === 'echo' ? 'echo' : o.text.length > 1 ? 'block' : 'line';
    if ((kind === 'block' && last !== 'none' && last !== 'echo') || (kind === 'line' && last === 'block')) out.line();
    for (const l of o.text) out.line(l);
    last = kind;
  };
}

/** Builds the `run` command. */
export function runCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('run')
      .description('run a script: one command per line (walk, map, diff, check, fault, regs, step, cont, break, delete, watch-cr3, echo, set, assert); exit 1 when an assert fails')
      .argument('<file>', 'the script, or - to read it from standard input'),
  ).action(async (file: string, opts: CommonOptions) => {
    const name = file === '-' ? '<stdin>' : file;
    const text = await readScript(file, run.io);
    const script = parseScript(text);
    if (script.errors.length > 0) {
      const out = new Output(run.io, opts.json === true);
      for (const err of script.errors) {
        const r = reportFailure(err, name, err.span.line, script.lines[err.span.line - 1] ?? '');
        for (const l of r.lines) run.io.stderr.write(l + '\n');
        if (out.json) out.jsonValue(r.json, false);
      }
      run.status = EXIT.BAD_INPUT;
      return;
    }
    await inSession(run, opts, async (session, out) => {
      const executor = new ScriptExecutor(session, { colors: out.c, targetOptions: opts, onOutput: printer(out) });
      let interrupted = false;
      const onInterrupt = (): void => {
        interrupted = true;
        void executor.interrupt().catch(() => undefined);
      };
      process.once('SIGINT', onInterrupt);
      let current: Statement | undefined;
      try {
        for (const statement of script.statements) {
          current = statement;
          if (interrupted) throw new ScriptError('E_INTERRUPTED', 'interrupted (Ctrl-C): the lines from here on did not run', statement.span);
          await executor.execute(statement);
        }
      } catch (err) {
        const line = current?.span.line ?? 1;
        const r = reportFailure(err, name, line, script.lines[line - 1] ?? '', current ? statementName(current) : undefined);
        for (const l of r.lines) run.io.stderr.write(l + '\n');
        // A failed assert has printed its result line ({"passed": false, ...}) already.
        if (out.json && !(err instanceof ScriptAssertionError)) out.jsonValue(r.json, false);
        run.status = Math.max(run.status, r.status);
      } finally {
        process.removeListener('SIGINT', onInterrupt);
        await executor.dispose();
      }
    });
  });
}
