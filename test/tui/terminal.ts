/**
 * The TUI in a real terminal for tests: bin/pagewalk spawned in a pseudo-terminal (node-pty), its
 * output rendered by a headless xterm (@xterm/headless) that also answers the program's terminal
 * queries, and helpers to read the screen, wait for text on it, type, resize, and see how the
 * program left the terminal (alternate screen, cursor). Screens are read only after every write
 * has been parsed; waits poll with a deadline and never assert on time.
 *
 * blessed cannot parse the terminfo of newer ncurses (Debian 12's), so the program gets the
 * legacy-format xterm-256color that blessed ships, copied under fixtures/terminfo.
 */
import { fileURLToPath } from 'node:url';
import pty, { type IPty } from 'node-pty';
import xterm from '@xterm/headless';
import { BIN } from '../helpers/cli.js';

const { Terminal } = xterm;

/** The terminfo directory handed to the TUI (TERMINFO). */
export const TERMINFO = fileURLToPath(new URL('./fixtures/terminfo', import.meta.url));

/** How the program ended. */
export interface Exit {
  exitCode: number;
  signal: number | undefined;
}

/** Options of {@link TuiTerminal.spawn}. */
export interface SpawnOptions {
  cols?: number;
  rows?: number;
  /** Added to the environment (PATH, HOME, TERM, TERMINFO and a UTF-8 LANG are set already). */
  env?: Record<string, string>;
}

/** A program running in a pseudo-terminal, and the screen it draws. */
export class TuiTerminal {
  /** Everything the program wrote, raw. */
  raw = '';
  /** Whether the program's last word on the cursor was "show" (DECTCEM). */
  cursorVisible = true;
  readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private writes = 0;
  private settledWaiters: (() => void)[] = [];

  private constructor(
    private readonly proc: IPty,
    readonly term: InstanceType<typeof Terminal>,
  ) {
    // Track DECTCEM (CSI ? 25 h / l) as the program sends it.
    const cursor = (visible: boolean) => (params: (number | number[])[]) => {
      if (params.some((p) => p === 25 || (Array.isArray(p) && p.includes(25)))) this.cursorVisible = visible;
      return false;
    };
    term.parser.registerCsiHandler({ prefix: '?', final: 'h' }, cursor(true));
    term.parser.registerCsiHandler({ prefix: '?', final: 'l' }, cursor(false));
    // The program's queries (cursor position, device attributes) are answered by the terminal.
    term.onData((d) => {
      if (!this.exit) proc.write(d);
    });
    proc.onData((d) => {
      this.raw += d;
      this.writes++;
      term.write(d, () => {
        this.writes--;
        if (this.writes === 0) for (const w of this.settledWaiters.splice(0)) w();
      });
    });
    this.exited = new Promise((resolve) =>
      proc.onExit((e) => {
        this.exit = { exitCode: e.exitCode, signal: e.signal };
        resolve(this.exit);
      }),
    );
  }

  /** Starts bin/pagewalk with `argv` in a `cols` x `rows` pseudo-terminal. */
  static spawn(argv: string[], o: SpawnOptions = {}): TuiTerminal {
    const cols = o.cols ?? 120;
    const rows = o.rows ?? 40;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      TERM: 'xterm-256color',
      TERMINFO: TERMINFO,
      LANG: 'C.UTF-8',
      ...o.env,
    };
    const proc = pty.spawn(process.execPath, [BIN, ...argv], { name: 'xterm-256color', cols, rows, env });
    const term = new Terminal({ cols, rows, allowProposedApi: true, scrollback: 0 });
    return new TuiTerminal(proc, term);
  }

  /** The program's process id. */
  get pid(): number {
    return this.proc.pid;
  }

  /** Resolves when every byte received so far has been parsed into the screen. */
  settled(): Promise<void> {
    if (this.writes === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** The screen's rows as text (trailing blanks trimmed). */
  async lines(): Promise<string[]> {
    await this.settled();
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < this.term.rows; y++) out.push(b.getLine(b.viewportY + y)?.translateToString(true) ?? '');
    return out;
  }

  /** The screen as one string, rows joined with newlines. */
  async screen(): Promise<string> {
    return (await this.lines()).join('\n');
  }

  /** Whether the alternate screen is shown (a full-screen program is drawing). */
  async onAlternateScreen(): Promise<boolean> {
    await this.settled();
    return this.term.buffer.active.type === 'alternate';
  }

  /**
   * Resolves with the screen once `test` holds for it (a string or RegExp it must contain, or a
   * predicate), polling; rejects after `timeoutMs` with the last screen in the message.
   */
  async waitFor(test: string | RegExp | ((screen: string, lines: string[]) => boolean), timeoutMs = 20_000): Promise<string> {
    const ok = typeof test === 'function' ? test : (s: string) => (typeof test === 'string' ? s.includes(test) : test.test(s));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = await this.lines();
      const screen = lines.join('\n');
      if (ok(screen, lines)) return screen;
      if (this.exit) throw new Error(`the program exited (${JSON.stringify(this.exit)}) before ${String(test)} appeared; last screen:\n${screen}`);
      if (Date.now() > deadline) throw new Error(`${String(test)} did not appear within ${timeoutMs} ms; last screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  /** Types `data` (keys as the terminal sends them: 's', '\r', '\x1b', '\t', '\x03'). */
  type(data: string): void {
    this.proc.write(data);
  }

  /** Resizes the terminal and the pseudo-terminal (the program gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
    this.proc.resize(cols, rows);
  }

  /** Resolves with the exit, or rejects after `timeoutMs`. */
  async waitForExit(timeoutMs = 20_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the program did not exit within ${timeoutMs} ms; screen:\n${this.term.buffer.active.getLine(0)?.translateToString(true) ?? ''}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the program (by its own pid) if it still runs, and frees the terminal. */
  async dispose(): Promise<void> {
    if (!this.exit) {
      this.proc.kill('SIGKILL');
      await this.exited.catch(() => undefined);
    }
    this.term.dispose();
  }
}
