/**
 * The help screen and the hint line, both written from the key table.
 */
import { pad } from '../cli/output.js';
import { activeKeys } from './keys.js';
import type { Paint } from './paint.js';
import { wrapWords } from './text.js';

/** The one-line hint at the bottom: `s step  c cont  Ctrl-C stop ...`, cut to `width`. */
export function hintLine(p: Paint, width: number, demo = false): string {
  const parts: string[] = [];
  let used = 0;
  for (const k of activeKeys(demo)) {
    if (k.hint === null) continue;
    const plain = `${k.label} ${k.hint}`;
    if (used + plain.length + 2 > width) break;
    parts.push(`${p.c.bold(p.c.cyan(k.label))} ${k.hint}`);
    used += plain.length + 2;
  }
  return parts.join('  ');
}

/** What each pane shows, for the help screen. */
const PANE_HELP: readonly [string, string][] = [
  ['path', 'the selected address through every level of the tables; the level that stops the walk is red'],
  ['fault', 'the pre-flight of a CR3 load (verdict, the chain of exceptions), and the page fault at hand: CR2, the error code bit by bit, its walk'],
  ['map', 'every mapping, coalesced; the strip above shows where in the address space they are'],
  ['watch', 'every mov to CR3 the watch saw, with its verdict'],
  ['serial', "the guest's serial console"],
];

/** The help screen's lines for a box `width` cells wide (inside its border). */
export function helpLines(p: Paint, demo = false, width = 100): string[] {
  const { c } = p;
  const keys = activeKeys(demo);
  const keyWidth = Math.max(...keys.map((k) => k.label.length));
  const paneWidth = Math.max(...PANE_HELP.map(([n]) => n.length));
  const entry = (label: string, labelWidth: number, text: string, paintLabel: (s: string) => string): string[] => {
    const indent = ' '.repeat(labelWidth + 4);
    return wrapWords(text, width, indent, indent).map((line, i) => (i === 0 ? `  ${paintLabel(pad(label, labelWidth))}  ${line.slice(indent.length)}` : line));
  };
  return [
    c.bold('pagewalk: keys'),
    '',
    ...keys.flatMap((k) => entry(k.label, keyWidth, k.help, (s) => c.bold(c.cyan(s)))),
    '',
    c.bold('panes'),
    ...PANE_HELP.flatMap(([name, text]) => entry(name, paneWidth, text, (s) => s)),
    '',
    c.dim('Esc or ? closes this help.'),
  ];
}
