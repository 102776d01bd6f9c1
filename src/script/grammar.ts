/**
 * The words of the language: every command with its arguments and options, and every function an
 * expression may call. The parser checks lines against these tables; `help` prints them.
 */

/** How an option takes its value. */
export type OptionKind =
  /** A number expression: `--cr3 $new`, `--count 3`. */
  | 'expr'
  /** One word from a list: `--access write`. */
  | 'word'
  /** No value: `--user`. */
  | 'flag';

/** One option of a command. */
export interface OptionSpec {
  kind: OptionKind;
  /** For words: the accepted words and what each means (`w` -> `write`). */
  words?: Readonly<Record<string, string>>;
  required?: boolean;
  /** Placeholder for the value in usage lines. */
  value?: string;
  summary: string;
}

/** The positional arguments a command takes. */
export interface PositionalSpec {
  /** Number expressions, or bare words (help's command name). */
  kind: 'expr' | 'word';
  name: string;
  min: number;
  max: number;
}

/** One command. */
export interface CommandSpec {
  name: string;
  /** How the rest of the line is read: arguments and options, an assignment, a condition and a message, or text. */
  form: 'command' | 'set' | 'assert' | 'echo';
  positional?: PositionalSpec;
  options: Readonly<Record<string, OptionSpec>>;
  /** The usage line, as `help` prints it. */
  usage: string;
  summary: string;
}

const ACCESS_WORDS = { read: 'read', r: 'read', write: 'write', w: 'write', exec: 'exec', x: 'exec', execute: 'exec', fetch: 'exec' } as const;
const CR3_OPTION: OptionSpec = { kind: 'expr', value: 'CR3', summary: 'use these tables instead of the loaded ones' };

/** Every command, in the order `help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'walk',
    form: 'command',
    positional: { kind: 'expr', name: 'VA', min: 1, max: Infinity },
    options: {
      access: { kind: 'word', words: ACCESS_WORDS, value: 'r|w|x', summary: 'the access to check (default: read)' },
      user: { kind: 'flag', summary: 'a user-mode (CPL 3) access' },
      cr3: CR3_OPTION,
    },
    usage: 'walk VA... [--access r|w|x] [--user] [--cr3 CR3]',
    summary: 'the translation path of each address, its rights, and whether the access faults',
  },
  {
    name: 'map',
    form: 'command',
    options: {
      from: { kind: 'expr', value: 'VA', summary: 'first address to list' },
      to: { kind: 'expr', value: 'VA', summary: 'last address to list (inclusive)' },
      cr3: CR3_OPTION,
    },
    usage: 'map [--from VA] [--to VA] [--cr3 CR3]',
    summary: 'every mapping, coalesced into ranges',
  },
  {
    name: 'diff',
    form: 'command',
    options: {
      against: { kind: 'expr', value: 'CR3', required: true, summary: 'the address space to compare with' },
      from: { kind: 'expr', value: 'VA', summary: 'first address to compare' },
      to: { kind: 'expr', value: 'VA', summary: 'last address to compare (inclusive)' },
      cr3: CR3_OPTION,
    },
    usage: 'diff --against CR3 [--cr3 CR3] [--from VA] [--to VA]',
    summary: 'what the current address space maps that another does not, or maps differently',
  },
  {
    name: 'check',
    form: 'command',
    options: { cr3: { kind: 'expr', value: 'CR3', summary: 'the tables about to be loaded' } },
    usage: 'check [--cr3 CR3]',
    summary: 'lint the tables, and pre-flight loading CR3 with the current RIP, RSP, GDT, IDT and TSS',
  },
  {
    name: 'fault',
    form: 'command',
    options: {
      cr2: { kind: 'expr', value: 'VA', summary: "the faulting address (default: the target's CR2)" },
      'error-code': { kind: 'expr', value: 'E', required: true, summary: 'the #PF error code' },
      rip: { kind: 'expr', value: 'VA', summary: "where the CPU was (default: the target's RIP)" },
      cr3: CR3_OPTION,
    },
    usage: 'fault [--cr2 VA] --error-code E [--rip VA] [--cr3 CR3]',
    summary: 'decode a page fault and hold it against the tables',
  },
  { name: 'regs', form: 'command', options: {}, usage: 'regs', summary: 'the paging registers, decoded' },
  {
    name: 'step',
    form: 'command',
    positional: { kind: 'expr', name: 'N', min: 0, max: 1 },
    options: {},
    usage: 'step [N]',
    summary: 'execute N instructions (default 1)',
  },
  { name: 'cont', form: 'command', options: {}, usage: 'cont', summary: 'resume until a breakpoint, a shutdown or an interrupt' },
  {
    name: 'break',
    form: 'command',
    positional: { kind: 'expr', name: 'VA', min: 1, max: Infinity },
    options: {},
    usage: 'break VA...',
    summary: 'stop before the instruction at each address',
  },
  {
    name: 'delete',
    form: 'command',
    positional: { kind: 'expr', name: 'VA', min: 0, max: Infinity },
    options: {},
    usage: 'delete [VA...]',
    summary: 'remove breakpoints (all the script set, when no address is given)',
  },
  {
    name: 'watch-cr3',
    form: 'command',
    options: {
      count: { kind: 'expr', value: 'N', summary: 'stop after N CR3 writes' },
      'stop-on': { kind: 'word', words: { danger: 'danger', every: 'every' }, value: 'danger|every', summary: 'stop before a dangerous mov cr3, or before every one' },
    },
    usage: 'watch-cr3 [--count N] [--stop-on danger|every]',
    summary: 'break before every mov cr3, pre-check it, and step over it',
  },
  { name: 'set', form: 'set', options: {}, usage: 'set $NAME = EXPR', summary: 'give a variable a value' },
  { name: 'echo', form: 'echo', options: {}, usage: 'echo TEXT', summary: 'print TEXT, with $var and $(expr) replaced by their values' },
  { name: 'assert', form: 'assert', options: {}, usage: 'assert EXPR ["MESSAGE"]', summary: 'stop the script (exit status 1) unless EXPR is true' },
  {
    name: 'help',
    form: 'command',
    positional: { kind: 'word', name: 'COMMAND', min: 0, max: 1 },
    options: {},
    usage: 'help [COMMAND]',
    summary: 'the commands, the functions, and the usage of one command',
  },
];

/** One function an expression may call. */
export interface FunctionSpec {
  name: string;
  /** Parameter names; those after `required` may be left out. */
  params: readonly string[];
  required: number;
  usage: string;
  summary: string;
}

/** Every function, in the order `help` lists them. */
export const FUNCTIONS: readonly FunctionSpec[] = [
  { name: 'mapped', params: ['VA'], required: 1, usage: 'mapped(VA)', summary: 'true when VA translates (a supervisor read completes the walk)' },
  { name: 'pa', params: ['VA'], required: 1, usage: 'pa(VA)', summary: 'the physical address VA translates to (an error when it does not)' },
  {
    name: 'faults',
    params: ['VA', 'ACCESS', 'MODE'],
    required: 2,
    usage: 'faults(VA, "read"|"write"|"exec" [, "user"])',
    summary: 'true when that access to VA faults (supervisor unless "user")',
  },
  { name: 'verdict', params: ['CR3'], required: 1, usage: 'verdict(CR3)', summary: 'the pre-flight of loading CR3 now: "safe", "at-risk", "fault" or "triple-fault"' },
  { name: 'writable', params: ['VA'], required: 1, usage: 'writable(VA)', summary: 'true when VA is mapped writable at every level' },
  { name: 'executable', params: ['VA'], required: 1, usage: 'executable(VA)', summary: 'true when VA is mapped and no level sets NX' },
  { name: 'user', params: ['VA'], required: 1, usage: 'user(VA)', summary: 'true when VA is mapped user-accessible at every level' },
];

/** The command named `name`, or undefined. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The function named `name`, or undefined. */
export function findFunction(name: string): FunctionSpec | undefined {
  return FUNCTIONS.find((f) => f.name === name);
}

/** Edit distance between two words, a swap of neighbours counting as one edit (for "did you mean"). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The word among `candidates` that `wanted` most likely is a typo of, or undefined. */
export function suggest(wanted: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(wanted.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}
