/**
 * The text of the screen's parts as pure functions of the TUI's state: each pane's title and
 * lines, the status line, the command line, and the scenario picker. The app only places them.
 */
import { visibleLength } from '../cli/output.js';
import { hex } from '../paging/addr.js';
import { checkLines, faultLines } from './faultPane.js';
import type { PaneName } from './layout.js';
import { mapPaneLines } from './mapPane.js';
import type { Paint } from './paint.js';
import { pathLines } from './pathPane.js';
import type { TuiState } from './state.js';
import { shorten, wrapWords } from './text.js';
import { watchLines } from './watchPane.js';

/** A pane's title and lines. */
export interface PaneText {
  title: string;
  lines: string[];
}

/** What the panes need to know of the source. */
export interface SourceFacts {
  /** The source's one-line name (status line). */
  label: string;
  /** The console's name ("COM1", "QEMU console"). */
  consoleName: string | undefined;
  canReconnect: boolean;
  symbolize: ((va: bigint) => string | undefined) | undefined;
}

/** The words for each run state on the status line. */
const RUN_WORDS: Record<TuiState['run'], string> = { starting: 'opening', stopped: 'stopped', running: 'running', lost: 'LOST', exited: 'EXITED' };

/** Console lines wrapped to `width`, as a terminal would show them. */
function wrapConsole(lines: readonly string[], width: number): string[] {
  return lines.flatMap((l) => (l.length <= width ? [l] : Array.from({ length: Math.ceil(l.length / width) }, (_, i) => l.slice(i * width, (i + 1) * width))));
}

/** The title and lines of pane `name` for a pane `width` x `height` cells inside its border. */
export function paneText(name: PaneName, s: TuiState, p: Paint, width: number, height: number, src: SourceFacts): PaneText {
  const { c, g } = p;
  switch (name) {
    case 'path': {
      const lines = s.walk ? pathLines(s.walk, p, width, src.symbolize) : [c.dim('(nothing walked yet)')];
      // What was assumed to read the registers (MAXPHYADDR, EFER), under the walk it shaped.
      for (const n of s.view?.notes ?? []) lines.push(...wrapWords(`note: ${n}`, width, '', '      ').map((x) => c.dim(x)));
      return { title: s.selection ? `Path: ${s.selection.label}` : 'Path', lines };
    }
    case 'fault': {
      const lines: string[] = [];
      if (s.run === 'lost' || s.run === 'exited') {
        const what = s.run === 'lost' ? 'The target is lost' : 'The guest has exited';
        const how = src.canReconnect ? 'r reconnects, q quits' : 'q quits';
        lines.push(...wrapWords(`${what}: ${s.lost ?? ''}`, width, `${g.bad} `, '  ').map((x) => c.bold(c.red(x))), ...wrapWords(`The screen shows the last stop. ${how}.`, width, '  ', '  '), '');
      }
      if (s.warning) {
        lines.push(...wrapWords(s.warning, width, `${g.warn} `, '  ').map((x) => c.bold(c.red(x))));
        lines.push(...wrapWords('It has not run: s executes it (and you see the fault happen), x checks another CR3.', width, '  ', '  ').map((x) => c.dim(x)), '');
      }
      const fault = s.fault ? faultLines(s.fault, p, width) : [c.dim(s.view ? `no page fault seen (CR2 ${hex(s.view.cpu.cr2)})` : '(no stop yet)')];
      // A fresh pre-flight comes first; once the guest has moved, the fault at hand does.
      if (s.check && !s.check.stale) lines.push(...checkLines(s.check, p, width), '', ...fault);
      else lines.push(...fault, ...(s.check ? ['', ...checkLines(s.check, p, width)] : []));
      return { title: s.check ? 'Pre-flight and fault' : 'Fault', lines };
    }
    case 'map': {
      const m = s.map;
      if (!m) return { title: 'Map', lines: [c.dim(s.mapLoading ? 'listing...' : s.view?.ctx.mode === 'none' ? 'paging is off: nothing to map' : '(not listed yet)')] };
      const selected = s.selection && (s.selection.cr3 === null || s.selection.cr3 === m.cr3) ? s.selection.va : null;
      const loaded = s.view === null || m.cr3 === s.view.ctx.cr3;
      return { title: `Map of CR3 ${hex(m.cr3)}${loaded ? '' : ' (not loaded)'}${s.mapLoading ? ' (listing...)' : ''}`, lines: mapPaneLines(m, p, width, height, selected) };
    }
    case 'watch':
      return { title: `CR3 watch${s.watch.entries.length ? ` (${s.watch.entries.length})` : ''}`, lines: watchLines(s.watch.entries, p, width, s.watch.status) };
    case 'serial': {
      const lines = wrapConsole(s.console.all(), width);
      return { title: `Serial (${src.consoleName ?? 'console'})`, lines: lines.length ? lines : [c.dim('(nothing yet)')] };
    }
  }
}

/** The status line: pagewalk, the source, the run state and why it stopped; then the warning, or the notice. */
export function statusLine(s: TuiState, p: Paint, cols: number, label: string): string {
  const { c, g } = p;
  const run = RUN_WORDS[s.run];
  const runText = s.run === 'stopped' ? c.green(run) : s.run === 'running' || s.run === 'starting' ? c.yellow(run) : c.red(c.bold(run));
  const why = s.run === 'stopped' && s.stopped ? ` (${s.stopped})` : '';
  const left = ` ${c.bold('pagewalk')}  ${label}  ${runText}${why}`;
  const room = cols - visibleLength(left) - 3;
  let right = '';
  if (s.warning) right = c.bold(c.red(`${g.warn} ${shorten(s.warning, Math.max(10, room - 2))}`));
  else if (s.notice) {
    const paintNotice = s.notice.level === 'error' ? c.red : s.notice.level === 'warn' ? c.yellow : (x: string): string => x;
    right = paintNotice(shorten(s.notice.text, Math.max(10, room)));
  }
  return `${left}   ${right}`;
}

/** The command line: a hint, or what is being typed (the command, or the map's filter) with a cursor. */
export function commandLineText(typing: { purpose: 'command' | 'filter'; text: string } | null, p: Paint, cols: number): string {
  const { c } = p;
  if (!typing) return c.dim(': type a command (walk, map, check, fault, regs, step, cont, help) — ? for keys');
  const prompt = typing.purpose === 'filter' ? 'filter the map: ' : ': ';
  const over = typing.text.length + prompt.length + 1 - cols;
  return `${c.bold(c.cyan(prompt))}${over > 0 ? typing.text.slice(over) : typing.text}${c.inverse(' ')}`;
}

/** One scenario the picker offers. */
export interface PickerItem {
  name: string;
  title: string;
  description: string;
}

/** The picker's lines, `width` cells wide: the scenarios (the cursor's in inverse, the running one marked), then the chosen one's description. */
export function pickerLines(items: readonly PickerItem[], cursor: number, running: string | null, p: Paint, width: number): string[] {
  const { c } = p;
  const nameWidth = Math.max(...items.map((i) => i.name.length));
  const rows = items.map((it, i) => {
    const row = `${it.name.padEnd(nameWidth)}  ${shorten(it.title, Math.max(10, width - nameWidth - 2))}${it.name === running ? c.dim(' (running)') : ''}`;
    return i === cursor ? c.inverse(row) : row;
  });
  const chosen = items[cursor];
  const about = chosen ? wrapWords(chosen.description, width, '', '') : [];
  return [c.bold('Scenarios of the bundled emulator: each is a bug kernel developers hit'), '', ...rows, '', ...about.map((x) => c.dim(x))];
}
