/**
 * The terminal UI: blessed boxes placed by `layout.ts`, filled by the pane renderers from the
 * controller's state on every change (a stop, a key, a console line), redrawn on resize (the text
 * comes from `screenText.ts`). Keys go through one handler with four modes: normal (the key table),
 * typing (the command line or the map filter), help, and the demo's scenario picker. Quitting leaves the terminal as it was found (normal screen, cursor on,
 * cooked mode) before the target is let go.
 */
import { hex } from '../paging/addr.js';
import type { AccessKind } from '../paging/rights.js';
import { blessed, type Widgets } from './blessed.js';
import { TuiCommands } from './commandLine.js';
import { TuiController } from './controller.js';
import { helpLines, hintLine } from './help.js';
import { activeKeys, type Action } from './keys.js';
import { layout, MIN_COLS, MIN_ROWS, PANES, type Layout, type PaneName, type Rect } from './layout.js';
import { filteredRanges } from './mapPane.js';
import { paint, utf8Locale, type Paint } from './paint.js';
import { registerBarLines } from './registerBar.js';
import { commandLineText, paneText, pickerLines, statusLine, type PickerItem, type SourceFacts } from './screenText.js';
import type { TuiSource } from './source.js';
import type { TuiState } from './state.js';
import { terminalName } from './terminal.js';
import type { Cr3Watch } from './watchRun.js';

/** The demo's scenario picker: what it offers and how a choice becomes a source. */
export interface ScenarioPicker {
  items: readonly PickerItem[];
  /** The source of the scenario named `name`. */
  source(name: string): TuiSource;
}

/** Options of {@link runTui}. */
export interface TuiOptions {
  source: TuiSource;
  /** The CR3 watch `c` runs the guest under (null: plain continue). */
  watch: Cr3Watch | null;
  /** Let the guest run once the first stop is on screen. */
  run?: boolean;
  /** The demo's scenarios (`p` opens the picker). */
  picker?: ScenarioPicker;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
}

type Mode =
  | { kind: 'normal' }
  | { kind: 'help' }
  | { kind: 'typing'; purpose: 'command' | 'filter'; text: string; history: number }
  | { kind: 'picking'; cursor: number };

/** The panes that scroll by lines (the map scrolls by its cursor). */
type ScrollPane = Exclude<PaneName, 'map'>;

/** Signals that quit the TUI as `q` does (Ctrl-C is a key in a raw terminal, not SIGINT). */
const SIGNALS = ['SIGTERM', 'SIGHUP'] as const;

/**
 * Runs the TUI on `options.source` until the user quits; resolves after the terminal is restored
 * and the target let go (a QEMU pagewalk started is shut down).
 */
export async function runTui(options: TuiOptions): Promise<void> {
  return new TuiApp(options).run();
}

class TuiApp {
  private readonly screen: Widgets.Screen;
  private readonly p: Paint;
  private readonly status: Widgets.BoxElement;
  private readonly registers: Widgets.BoxElement;
  private readonly panes: Record<PaneName, Widgets.BoxElement>;
  private readonly commandBox: Widgets.BoxElement;
  private readonly keysBox: Widgets.BoxElement;
  private readonly outputBox: Widgets.BoxElement;
  private readonly helpBox: Widgets.BoxElement;
  private readonly tinyBox: Widgets.BoxElement;
  private readonly pickerBox: Widgets.BoxElement;
  private controller: TuiController;
  private commands: TuiCommands;
  private mode: Mode = { kind: 'normal' };
  private focus: PaneName = 'path';
  private readonly scroll: Record<ScrollPane, number | null> = { path: 0, fault: 0, watch: null, serial: null };
  private readonly history: string[] = [];
  private outputShown = 0;
  private outputOpen = false;
  private pending = false;
  private done: (() => void) | null = null;
  private quitting = false;
  private current: Layout | null = null;
  private readonly onSignal = (): void => void this.quit();

  constructor(private readonly options: TuiOptions) {
    this.controller = this.makeController(options.source, options.run === true);
    this.commands = new TuiCommands(this.controller);
    const env = options.env;
    const unicode = utf8Locale(env);
    this.p = paint(env.NO_COLOR ? false : true, unicode);
    this.screen = blessed.screen({
      input: options.input,
      output: options.output,
      terminal: terminalName(env),
      smartCSR: true,
      fullUnicode: unicode,
      forceUnicode: unicode,
      autoPadding: true,
      title: 'pagewalk',
      warnings: false,
      ignoreLocked: ['C-c'],
    } as Widgets.IScreenOptions);
    const box = (o: Widgets.BoxOptions = {}): Widgets.BoxElement => blessed.box({ parent: this.screen, tags: false, wrap: false, ...o });
    this.status = box({ style: { bg: 'blue', fg: 'white' } });
    this.registers = box({});
    const pane = (): Widgets.BoxElement => box({ border: { type: 'line' }, style: { border: { fg: 'gray' }, label: { fg: 'white' } } });
    this.panes = { path: pane(), fault: pane(), map: pane(), watch: pane(), serial: pane() };
    this.commandBox = box({});
    this.keysBox = box({ style: { fg: 'white' } });
    this.outputBox = box({ border: { type: 'line' }, hidden: true, style: { border: { fg: 'yellow' } } });
    this.helpBox = box({ border: { type: 'line' }, hidden: true, style: { border: { fg: 'cyan' } } });
    this.tinyBox = box({ hidden: true });
    this.pickerBox = box({ border: { type: 'line' }, hidden: true, style: { border: { fg: 'cyan' } } });
  }

  private makeController(source: TuiSource, run: boolean): TuiController {
    const c = new TuiController(source, { watch: this.options.watch, run });
    c.on('change', () => this.schedule());
    return c;
  }

  /** Closes the running scenario and starts `name` (the demo's picker). */
  private async switchTo(name: string): Promise<void> {
    const picker = this.options.picker;
    if (!picker) return;
    const old = this.controller;
    const oldCommands = this.commands;
    old.removeAllListeners('change');
    await oldCommands.dispose().catch(() => undefined);
    await old.close();
    this.controller = this.makeController(picker.source(name), true);
    this.commands = new TuiCommands(this.controller);
    this.focus = 'path';
    this.outputOpen = false;
    this.outputShown = 0;
    this.schedule();
    await this.controller.start();
  }

  run(): Promise<void> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.screen.on('resize', () => this.schedule());
      this.screen.on('keypress', (ch: string | undefined, key: Widgets.Events.IKeyEventArg) => this.key(ch, key));
      for (const s of SIGNALS) process.once(s, this.onSignal);
      this.draw();
      void this.controller.start();
    });
  }

  // ---------------------------------------------------------------- drawing

  private schedule(): void {
    if (this.pending || this.quitting) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (!this.quitting) this.draw();
    });
  }

  private draw(): void {
    const s = this.controller.state;
    const cols = this.screen.width as number;
    const rows = this.screen.height as number;
    const l = layout(cols, rows, { serial: s.hasConsole });
    this.current = l;
    if (l.kind !== 'tiny' && l.panes[this.focus] === null) this.focus = 'path';
    place(this.status, l.status);
    place(this.registers, l.registers);
    place(this.commandBox, l.command);
    place(this.keysBox, l.keys);
    this.status.setContent(statusLine(s, this.p, cols, this.controller.source.label));
    this.registers.setContent(s.view ? registerBarLines(s.view.cpu, s.view.ctx, this.p, cols, this.symbolizer()).join('\n') : this.p.c.dim('(no registers yet)'));
    this.commandBox.setContent(commandLineText(this.mode.kind === 'typing' ? this.mode : null, this.p, cols));
    this.keysBox.setContent(
      this.mode.kind === 'typing'
        ? this.p.c.dim('Enter runs it  Esc cancels  Up/Down history')
        : this.mode.kind === 'picking'
          ? this.p.c.dim('Up/Down choose  Enter starts it  Esc closes')
          : hintLine(this.p, cols, this.options.picker !== undefined),
    );
    if (l.kind === 'tiny') {
      for (const name of PANES) this.panes[name].hide();
      place(this.tinyBox, { left: 0, top: 3, width: cols, height: Math.max(1, rows - 5) });
      this.tinyBox.setContent(`pagewalk needs ${MIN_COLS}x${MIN_ROWS} (this is ${cols}x${rows})`);
      this.tinyBox.show();
    } else {
      this.tinyBox.hide();
      for (const name of PANES) this.drawPane(name, l.panes[name], s);
    }
    this.drawOutput(s, l);
    this.drawHelp(l);
    this.drawPicker(l);
    this.screen.render();
  }

  private drawPane(name: PaneName, r: Rect | null, s: TuiState): void {
    const box = this.panes[name];
    if (!r) {
      box.hide();
      return;
    }
    place(box, r);
    box.show();
    const width = Math.max(1, r.width - 2);
    const height = Math.max(1, r.height - 2);
    const focused = this.focus === name;
    (box.style as { border: { fg: string } }).border.fg = focused ? 'cyan' : 'gray';
    const { title, lines } = paneText(name, s, this.p, width, height, this.sourceFacts());
    box.setLabel(` ${focused ? this.p.c.bold(title) : title} `);
    if (name === 'map') {
      box.setContent(lines.join('\n'));
      return;
    }
    const max = Math.max(0, lines.length - height);
    const at = this.scroll[name];
    const top = at === null ? max : Math.min(at, max);
    if (at !== null) this.scroll[name] = top;
    box.setContent(lines.slice(top, top + height).join('\n'));
  }

  private drawOutput(s: TuiState, l: Layout): void {
    const lines = s.output.all();
    if (lines.length > this.outputShown) {
      this.outputOpen = true;
      this.outputShown = lines.length;
    }
    if (!this.outputOpen || l.kind === 'tiny') {
      this.outputBox.hide();
      return;
    }
    const height = Math.min(lines.length + 2, Math.max(4, Math.floor(l.rows * 0.45)));
    place(this.outputBox, { left: 0, top: l.rows - 2 - height, width: l.cols, height });
    this.outputBox.setLabel(' Output (Esc closes) ');
    this.outputBox.setContent(lines.slice(-(height - 2)).join('\n'));
    this.outputBox.show();
    this.outputBox.setFront();
  }

  private drawHelp(l: Layout): void {
    if (this.mode.kind !== 'help') {
      this.helpBox.hide();
      return;
    }
    const width = Math.min(l.cols, 110);
    const lines = helpLines(this.p, this.options.picker !== undefined, width - 2);
    const height = Math.min(l.rows, lines.length + 2);
    place(this.helpBox, { left: Math.floor((l.cols - width) / 2), top: Math.max(0, Math.floor((l.rows - height) / 2)), width, height });
    this.helpBox.setLabel(' Help ');
    this.helpBox.setContent(lines.join('\n'));
    this.helpBox.show();
    this.helpBox.setFront();
  }

  private drawPicker(l: Layout): void {
    const m = this.mode;
    const picker = this.options.picker;
    if (m.kind !== 'picking' || !picker) {
      this.pickerBox.hide();
      return;
    }
    const width = Math.min(l.cols, 110);
    const lines = pickerLines(picker.items, m.cursor, this.runningScenario(), this.p, width - 4);
    const height = Math.min(l.rows, lines.length + 2);
    place(this.pickerBox, { left: Math.floor((l.cols - width) / 2), top: Math.max(0, Math.floor((l.rows - height) / 2)), width, height });
    this.pickerBox.setLabel(' Pick a scenario ');
    this.pickerBox.setContent(lines.slice(0, height - 2).join('\n'));
    this.pickerBox.show();
    this.pickerBox.setFront();
  }

  /** The scenario the demo runs now, by name. */
  private runningScenario(): string | null {
    const label = this.controller.source.label;
    return this.options.picker?.items.find((it) => label.endsWith(`: ${it.name}`))?.name ?? null;
  }

  /** What the panes need of the source. */
  private sourceFacts(): SourceFacts {
    const src = this.controller.source;
    const t = src.symbols;
    return { label: src.label, consoleName: src.consoleName, canReconnect: src.canReconnect, symbolize: t ? (va) => t.symbolize(va) : undefined };
  }

  private symbolizer(): ((va: bigint) => string | undefined) | undefined {
    const t = this.controller.source.symbols;
    return t ? (va) => t.symbolize(va) : undefined;
  }

  // ---------------------------------------------------------------- keys

  private key(ch: string | undefined, key: Widgets.Events.IKeyEventArg): void {
    if (this.quitting) return;
    const full = key.full;
    if (full === 'C-c') {
      void this.act('interrupt');
      return;
    }
    const m = this.mode;
    if (m.kind === 'picking') {
      this.picking(m, full);
      return;
    }
    if (m.kind === 'help') {
      if (full === 'escape' || full === '?' || full === 'q' || full === 'enter') this.mode = { kind: 'normal' };
      this.schedule();
      return;
    }
    if (m.kind === 'typing') {
      this.typing(m, ch, key);
      return;
    }
    if (full === 'escape' && this.outputOpen) {
      this.outputOpen = false;
      this.schedule();
      return;
    }
    const bound = activeKeys(this.options.picker !== undefined).find((k) => k.keys.includes(full));
    if (bound) {
      void this.act(bound.action);
      return;
    }
    this.paneKey(full);
  }

  private typing(m: Extract<Mode, { kind: 'typing' }>, ch: string | undefined, key: Widgets.Events.IKeyEventArg): void {
    const full = key.full;
    if (full === 'escape') {
      this.mode = { kind: 'normal' };
    } else if (full === 'enter' || full === 'return') {
      this.mode = { kind: 'normal' };
      this.submit(m.purpose, m.text);
    } else if (full === 'backspace') {
      m.text = m.text.slice(0, -1);
    } else if (full === 'C-u') {
      m.text = '';
    } else if (full === 'up' || full === 'down') {
      if (m.purpose === 'command' && this.history.length > 0) {
        m.history = Math.max(0, Math.min(this.history.length, m.history + (full === 'up' ? -1 : 1)));
        m.text = this.history[m.history] ?? '';
      }
    } else if (ch && !key.ctrl && !key.meta && ch >= ' ' && ch !== '\x7f') {
      m.text += ch;
    }
    if (m.purpose === 'filter' && this.mode.kind === 'typing') this.controller.setMapFilter(m.text);
    this.schedule();
  }

  private picking(m: Extract<Mode, { kind: 'picking' }>, full: string): void {
    const items = this.options.picker?.items ?? [];
    if (full === 'escape' || full === 'q' || full === 'p') this.mode = { kind: 'normal' };
    else if (full === 'up' || full === 'k') m.cursor = Math.max(0, m.cursor - 1);
    else if (full === 'down' || full === 'j') m.cursor = Math.min(items.length - 1, m.cursor + 1);
    else if (full === 'enter' || full === 'return') {
      this.mode = { kind: 'normal' };
      const chosen = items[m.cursor];
      if (chosen) void this.switchTo(chosen.name);
    }
    this.schedule();
  }

  private submit(purpose: 'command' | 'filter', text: string): void {
    if (purpose === 'filter') {
      this.controller.setMapFilter(text);
      return;
    }
    const line = text.trim();
    if (!line) return;
    if (this.history[this.history.length - 1] !== line) this.history.push(line);
    void this.commands.run(line).catch((e: unknown) => this.controller.notify(e instanceof Error ? e.message : String(e), 'error'));
  }

  private startTyping(purpose: 'command' | 'filter', text: string): void {
    this.mode = { kind: 'typing', purpose, text, history: this.history.length };
    this.schedule();
  }

  private async act(action: Action): Promise<void> {
    const c = this.controller;
    switch (action) {
      case 'step':
        return c.step();
      case 'continue':
        return c.cont();
      case 'interrupt':
        if (c.state.run !== 'running') {
          c.notify('Ctrl-C stops a running guest; q quits', 'info');
          return;
        }
        // A command's run (cont, watch-cr3, step N) ends early; the guest stops either way.
        await this.commands.interrupt();
        return c.interrupt();
      case 'walk':
        return this.startTyping('command', 'walk ');
      case 'check':
        return this.startTyping('command', 'check ');
      case 'command':
        return this.startTyping('command', '');
      case 'map':
        this.focus = 'map';
        this.schedule();
        return c.map(c.state.map?.cr3 ?? null);
      case 'filter':
        this.focus = 'map';
        return this.startTyping('filter', c.state.map?.filter ?? '');
      case 'next-pane':
      case 'previous-pane':
        this.cycleFocus(action === 'next-pane' ? 1 : -1);
        return;
      case 'reconnect':
        return c.reconnect();
      case 'pick': {
        const items = this.options.picker?.items ?? [];
        const running = this.runningScenario();
        this.mode = { kind: 'picking', cursor: Math.max(0, items.findIndex((it) => it.name === running)) };
        this.schedule();
        return;
      }
      case 'help':
        this.mode = { kind: 'help' };
        this.schedule();
        return;
      case 'quit':
        return this.quit();
    }
  }

  private cycleFocus(delta: number): void {
    const visible = PANES.filter((n) => this.current?.panes[n] !== null);
    const i = visible.indexOf(this.focus);
    this.focus = visible[(i + delta + visible.length) % visible.length] ?? 'path';
    this.schedule();
  }

  /** Arrows, pages, Home/End and Enter act on the focused pane. */
  private paneKey(full: string): void {
    const r = this.current?.panes[this.focus];
    const page = Math.max(1, (r?.height ?? 6) - 3);
    const delta = { up: -1, down: 1, k: -1, j: 1, pageup: -page, pagedown: page, home: -1e9, end: 1e9 }[full];
    if (this.focus === 'map') {
      const s = this.controller.state;
      if (delta !== undefined) this.controller.moveMapCursor(delta === -1e9 ? -(s.map?.ranges.length ?? 0) : delta);
      else if (full === 'enter' && s.map) {
        const list = filteredRanges(s.map);
        const r0 = list[Math.min(s.map.cursor, list.length - 1)];
        if (r0) void this.controller.walk(r0.va, { kind: (r0.execute ? 'exec' : 'read') as AccessKind, user: r0.user }, s.map.cr3 === s.view?.ctx.cr3 ? null : s.map.cr3, `first address of the range ${hex(r0.va)}`);
      }
      return;
    }
    if (delta === undefined) return;
    const name = this.focus;
    const at = this.scroll[name];
    // Scrolling up from the tail of a following pane (watch, serial) starts from its end.
    const base = at === null ? 1e9 : at;
    const next = Math.max(0, base + delta);
    this.scroll[name] = delta === 1e9 && (name === 'watch' || name === 'serial') ? null : next;
    this.schedule();
  }

  private async quit(): Promise<void> {
    if (this.quitting) return;
    this.quitting = true;
    for (const s of SIGNALS) process.off(s, this.onSignal);
    // Give the terminal back first, then let go of the target (a started QEMU may take a moment).
    this.screen.destroy();
    await this.commands.dispose().catch(() => undefined);
    await this.controller.close();
    this.done?.();
  }
}

/** Puts `el` at `r`. */
function place(el: Widgets.BoxElement, r: Rect): void {
  el.left = r.left;
  el.top = r.top;
  el.width = r.width;
  el.height = r.height;
}
