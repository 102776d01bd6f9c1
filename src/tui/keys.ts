/**
 * The keys of the TUI, in one table that the key handler, the hint line and the help screen all
 * read, so they cannot disagree.
 */

/** What a key does. */
export type Action =
  | 'step'
  | 'continue'
  | 'interrupt'
  | 'walk'
  | 'map'
  | 'check'
  | 'command'
  | 'filter'
  | 'next-pane'
  | 'previous-pane'
  | 'reconnect'
  | 'pick'
  | 'help'
  | 'quit';

/** One binding. */
export interface KeyBinding {
  action: Action;
  /** blessed key names. */
  keys: readonly string[];
  /** How the key is written for people. */
  label: string;
  /** Short word for the hint line, or null to leave it off the hint line. */
  hint: string | null;
  /** One line for the help screen. */
  help: string;
  /** Only in `pagewalk demo` (which has scenarios to pick from). */
  demo?: boolean;
}

/** Every binding, in the order the help lists them. */
export const KEYS: readonly KeyBinding[] = Object.freeze([
  { action: 'step', keys: ['s'], label: 's', hint: 'step', help: 'execute one instruction, then redraw' },
  { action: 'continue', keys: ['c'], label: 'c', hint: 'cont', help: 'let the guest run (under the CR3 watch when it is on) until the next stop' },
  { action: 'interrupt', keys: ['C-c'], label: 'Ctrl-C', hint: 'stop', help: 'stop a running guest' },
  { action: 'walk', keys: ['w'], label: 'w', hint: 'walk', help: 'walk an address: starts the command line with `walk ` (walk VA [--access r|w|x] [--user] [--cr3 CR3])' },
  { action: 'map', keys: ['m'], label: 'm', hint: 'map', help: 'go to the map and list it again (arrows scroll, Enter walks a range, / filters)' },
  { action: 'check', keys: ['x'], label: 'x', hint: 'check', help: 'pre-flight a CR3 load: starts the command line with `check ` (check [--cr3 NEW]; without it, the CR3 loaded now)' },
  { action: 'command', keys: [':'], label: ':', hint: 'command', help: 'type a command, as in `pagewalk run` (walk, map, check, fault, regs, step, cont, ...)' },
  { action: 'filter', keys: ['/'], label: '/', hint: null, help: 'filter the map: addresses, w x user kern global, 4K 2M 1G, or any text' },
  { action: 'next-pane', keys: ['tab'], label: 'Tab', hint: 'pane', help: 'go to the next pane (Shift-Tab: the previous one); arrows and PgUp/PgDn scroll it' },
  { action: 'previous-pane', keys: ['S-tab'], label: 'S-Tab', hint: null, help: 'go to the previous pane' },
  { action: 'reconnect', keys: ['r'], label: 'r', hint: null, help: 'reconnect to a target that was lost' },
  { action: 'pick', keys: ['p'], label: 'p', hint: 'scenarios', help: 'pick another scenario of the bundled emulator', demo: true },
  { action: 'help', keys: ['?'], label: '?', hint: 'help', help: 'show or hide this help' },
  { action: 'quit', keys: ['q'], label: 'q', hint: 'quit', help: 'quit (the guest is left as pagewalk found it; a QEMU pagewalk started is shut down)' },
]);

/** The bindings in effect: the demo's only in the demo. */
export function activeKeys(demo: boolean): KeyBinding[] {
  return KEYS.filter((k) => demo || !k.demo);
}

/** The binding of `action`. */
export function binding(action: Action): KeyBinding {
  const b = KEYS.find((k) => k.action === action);
  if (!b) throw new RangeError(`no key is bound to ${action}`);
  return b;
}
