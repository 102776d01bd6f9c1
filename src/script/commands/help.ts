/**
 * `help [COMMAND]`: the commands, functions and variables of the language, or one command's usage
 * and options.
 */
import { table } from '../../cli/output.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';
import { COMMANDS, FUNCTIONS, findCommand, suggest } from '../grammar.js';
import { REGISTER_NAMES } from '../registers.js';

/** Runs `help`. */
export async function helpCommand(c: CommandContext): Promise<CommandOutput> {
  const arg = c.statement.args[0];
  const col = c.colors;
  if (arg && arg.kind === 'string') {
    const spec = findCommand(arg.value);
    if (!spec) {
      const hint = suggest(arg.value, COMMANDS.map((x) => x.name));
      throw new ScriptError('E_VALUE', `no command '${arg.value}'${hint ? ` (did you mean ${hint}?)` : ''}`, arg.span);
    }
    const options = Object.entries(spec.options).map(([name, o]) => [`  --${name}${o.kind === 'flag' ? '' : ` ${o.value ?? 'X'}`}`, o.summary + (o.required ? ' (required)' : '')]);
    return {
      text: [col.bold(spec.usage), `  ${spec.summary}`, ...(options.length ? table(options) : [])],
      warnings: [],
      result: { command: spec.name, usage: spec.usage, summary: spec.summary, options: Object.keys(spec.options) },
    };
  }
  const text = [
    col.bold('Commands') + col.dim(' (one per line; # starts a comment)'),
    ...table(COMMANDS.map((x) => [`  ${x.usage}`, x.summary])),
    '',
    col.bold('Functions'),
    ...table(FUNCTIONS.map((f) => [`  ${f.usage}`, f.summary])),
    '',
    col.bold('Variables') + `  ${REGISTER_NAMES.map((r) => `$${r}`).join(' ')} (registers at the current stop); set $name = EXPR for your own`,
    col.bold('Operators') + '  + - * / % & | ^ << >> ~ (64-bit), == != < <= > >=, && || !, ( ); numbers 0x1000 or 4096; symbols with --elf',
  ];
  return { text, warnings: [], result: { commands: COMMANDS.map((x) => x.usage), functions: FUNCTIONS.map((f) => f.usage) } };
}
