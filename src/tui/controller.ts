/**
 * The TUI's state and everything it does to the target, without a terminal: open it, read each
 * stop (registers, the selected address's walk, the fault at hand, the map), step, continue under
 * the CR3 watch, interrupt, walk, map, check, reconnect after a loss. The app draws `state` on every
 * `change`; tests drive the controller directly.
 *
 * Target access is serialised: one operation at a time, in order. While the guest runs nothing
 * reads it (a QEMU gdbstub takes any packet as an interrupt), except the interrupt itself.
 */
import { EventEmitter } from 'node:events';
import { describeError } from '../cli/errors.js';
import { compareFault } from '../faults/againstTables.js';
import { decodeErrorCode } from '../faults/errorCode.js';
import { hex } from '../paging/addr.js';
import { linearIp } from '../paging/cpu.js';
import { runAsync } from '../paging/memory.js';
import { withCr3, type PagingContext } from '../paging/mode.js';
import { preflightAsync } from '../paging/preflight.js';
import type { Access } from '../paging/rights.js';
import { walkTask } from '../paging/walk.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import { TargetError, type Target } from '../target/target.js';
import { readCpuView, type CpuView } from './cpuView.js';
import type { CheckView, FaultOrigin } from './faultPane.js';
import { FaultFeed } from './faultFeed.js';
import { LineLog } from './lineLog.js';
import { listMap } from './mapListing.js';
import { controlOf } from '../watch/index.js';
import { onConnectionLost, type TuiSource } from './source.js';
import { stopWords, type Notice, type TuiState } from './state.js';
import type { Cr3Watch, WatchEvent, WatchStopped } from './watchRun.js';

/** Options of {@link TuiController}. */
export interface ControllerOptions {
  /** Watch every `mov cr3` while the guest runs (default: on, where the target can be driven and a watch is given). */
  watch?: Cr3Watch | null;
  /** Let the guest run once the first stop is shown (the demo). */
  run?: boolean;
}

/** Events of {@link TuiController}. */
export interface ControllerEvents {
  /** Something on screen changed. */
  change: [];
}

/** The fault the pane follows, before its walk. */
interface FaultSource {
  origin: FaultOrigin;
  cr2: bigint;
  errorCode: number | null;
  rip: bigint | null;
  /** The tables it is walked in (the new CR3 of a predicted fault); null: the loaded ones. */
  cr3: bigint | null;
}

const SUPERVISOR_FETCH: Access = { kind: 'exec', user: false };

/** How long quitting waits for an interrupted run to end before it closes the target anyway. */
const CLOSE_WAIT_MS = 3000;

/** The most CR3 writes the watch log keeps (a kernel that reloads CR3 in a loop would fill memory). */
export const MAX_WATCH_ENTRIES = 500;

/** The TUI without a terminal. */
export class TuiController extends EventEmitter<ControllerEvents> {
  readonly state: TuiState;
  private target: Target | null = null;
  private control: DebugControl | null = null;
  private readonly watch: Cr3Watch | null;
  private readonly feed = new FaultFeed();
  private faultsSeen = 0;
  private faultSource: FaultSource | null = null;
  /** Unsubscribes from the target's events (per connection). */
  private targetOff: (() => void)[] = [];
  private readonly consoleOff: (() => void) | null;
  private queue: Promise<unknown> = Promise.resolve();
  private generation = 0;
  private closed = false;
  /** Aborts the run under the CR3 watch in progress. */
  private watching: AbortController | null = null;

  constructor(
    readonly source: TuiSource,
    private readonly options: ControllerOptions = {},
  ) {
    super();
    this.watch = options.watch ?? null;
    this.state = {
      run: 'starting',
      stopped: '',
      notice: { text: `opening ${source.label}`, level: 'info' },
      warning: null,
      lost: null,
      view: null,
      selection: null,
      walk: null,
      fault: null,
      check: null,
      map: null,
      mapLoading: false,
      canDrive: false,
      watch: { status: 'impossible', entries: [] },
      console: new LineLog(),
      output: new LineLog(500),
      hasConsole: source.console !== undefined,
    };
    this.consoleOff = source.console ? source.console((text) => this.consoleText(text)) : null;
  }

  /** Resolves when every target operation queued so far (a map listing after a stop, say) is done. */
  async settled(): Promise<void> {
    let q: Promise<unknown>;
    do {
      q = this.queue;
      await q;
    } while (q !== this.queue);
  }

  /** The open target (null before start and after a loss). */
  get current(): Target | null {
    return this.target;
  }

  /** Opens the target and shows its first stop; with `run`, lets the guest run. Errors become notices. */
  async start(): Promise<void> {
    await this.connect();
    if (this.options.run && this.state.run === 'stopped' && this.control) void this.cont();
  }

  // ---------------------------------------------------------------- driving

  /** Executes one instruction and shows the stop. */
  step(): Promise<void> {
    return this.drive('step', async (control) => control.step());
  }

  /** Lets the guest run (under the CR3 watch when it is on) until it stops; the screen then shows the stop. */
  cont(): Promise<void> {
    return this.drive('cont', async (control) => {
      const watch = this.watch;
      if (!watch || this.state.watch.status !== 'on') return control.cont();
      const abort = new AbortController();
      this.watching = abort;
      try {
        return await watch.run(this.target!, { features: this.state.view!.features, signal: abort.signal }, (e) => this.watchEvent(e));
      } finally {
        this.watching = null;
      }
    });
  }

  /** Stops a running guest (the pending continue then shows the stop). */
  async interrupt(): Promise<void> {
    if (this.state.run !== 'running' || !this.control) {
      this.notify(this.state.run === 'running' ? 'this target cannot be interrupted' : 'the guest is not running', 'info');
      return;
    }
    try {
      if (this.watching) this.watching.abort();
      else await this.control.interrupt();
      this.notify('interrupting...', 'info');
    } catch (e) {
      this.failed(e);
    }
  }

  private drive(what: 'step' | 'cont', go: (control: DebugControl) => Promise<Stop | WatchStopped>): Promise<void> {
    const control = this.control;
    if (!this.usable(true) || !control) return Promise.resolve();
    this.state.run = 'running';
    // What a pre-flight predicted is history once the guest moves.
    this.state.warning = null;
    if (this.state.check) this.state.check.stale = true;
    if (this.state.selection?.by === 'check') this.state.selection = null;
    this.state.notice = { text: what === 'step' ? 'stepping...' : this.state.watch.status === 'on' ? 'running, watching every mov to CR3 (Ctrl-C stops)' : 'running (Ctrl-C stops)', level: 'info' };
    this.changed();
    return this.exclusive(async () => {
      const result = await go(control);
      const stop = 'stop' in result ? result.stop : result;
      this.state.stopped = 'stop' in result ? result.words : stopWords(stop);
      if (stop.cause === 'exited') {
        this.lose('exited', `the guest has exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`);
        return;
      }
      this.state.run = 'stopped';
      this.state.notice = null;
      await this.refresh();
    });
  }

  /**
   * Runs `fn` with the target when nothing else does (a line of the command line). With `drives`
   * the guest counts as running meanwhile (Ctrl-C reaches it) and the stop it ends at is shown
   * after. Resolves with what `fn` returned, or undefined when the target is not usable or it threw
   * (the error is on the status line).
   */
  async withTarget<T>(drives: boolean, fn: (target: Target, view: CpuView) => Promise<T>): Promise<T | undefined> {
    if (!this.usable(drives)) return undefined;
    const target = this.target!;
    const view = this.state.view!;
    if (drives) {
      this.state.run = 'running';
      this.notify('running the command (Ctrl-C stops the guest)', 'info');
    }
    let out: T | undefined;
    await this.exclusive(async () => {
      try {
        out = await fn(target, view);
      } finally {
        if (drives && this.state.run === 'running') {
          this.state.run = 'stopped';
          this.state.notice = null;
          this.state.stopped = 'after the command';
          await this.refresh();
        }
      }
    });
    return out;
  }

  // ---------------------------------------------------------------- looking

  /** Walks `va` for `access` (under `cr3` when given) and selects it. */
  walk(va: bigint, access: Access, cr3: bigint | null = null, label?: string): Promise<void> {
    if (!this.usable(false)) return Promise.resolve();
    this.state.selection = { va, access, cr3, by: 'user', label: label ?? (cr3 === null ? 'selected address' : `under CR3 ${hex(cr3)}`) };
    return this.exclusive(async () => {
      await this.walkSelection();
      this.changed();
    });
  }

  /** Lists the map again (of `cr3` when given, else the loaded tables). */
  map(cr3: bigint | null = null): Promise<void> {
    if (!this.usable(false)) return Promise.resolve();
    return this.exclusive(() => this.loadMap(cr3));
  }

  /** Pre-flights loading `cr3` (default: the loaded one) from where the CPU stands. */
  check(cr3: bigint | null = null): Promise<void> {
    if (!this.usable(false)) return Promise.resolve();
    return this.exclusive(async () => {
      const v = this.state.view!;
      const next = cr3 ?? v.ctx.cr3;
      const result = await preflightAsync(this.target!, { ctx: withCr3(v.ctx, next), cpu: v.cpu });
      this.showCheck({ origin: 'check', from: v.cpu.cr3, rip: v.cpu.rip, result, hints: [] });
      this.changed();
    });
  }

  /** Shows a page fault given by hand: CR2 and the error code (and where it was raised). */
  fault(cr2: bigint, errorCode: number, rip: bigint | null = null): Promise<void> {
    if (!this.usable(false)) return Promise.resolve();
    decodeErrorCode(errorCode);
    this.faultSource = { origin: 'command', cr2, errorCode, rip, cr3: null };
    return this.exclusive(async () => {
      await this.walkFault();
      this.changed();
    });
  }

  /** Moves the map's cursor by `delta` rows (clamped). */
  moveMapCursor(delta: number): void {
    const m = this.state.map;
    if (!m) return;
    m.cursor = Math.max(0, m.cursor + delta);
    this.changed();
  }

  /** Sets the map's filter. */
  setMapFilter(text: string): void {
    if (!this.state.map) return;
    this.state.map.filter = text.trim();
    this.state.map.cursor = 0;
    this.changed();
  }

  /** Reopens a lost target. */
  async reconnect(): Promise<void> {
    if (this.state.run !== 'lost' && this.state.run !== 'exited') {
      this.notify('the target is still connected', 'info');
      return;
    }
    if (!this.source.canReconnect) {
      this.notify(`${this.source.label} cannot be reopened: quit with q`, 'warn');
      return;
    }
    await this.connect();
  }

  /** Closes the target (leaving the guest as pagewalk found it) and what the source started. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.consoleOff?.();
    for (const u of this.targetOff.splice(0)) u();
    const t = this.target;
    const control = this.control;
    // A run of ours ends first (the watch removes its breakpoints), so closing leaves the guest clean.
    if (t && control && this.state.run === 'running') {
      this.watching?.abort();
      await control.interrupt().catch(() => undefined);
      await Promise.race([this.queue, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    }
    this.target = null;
    this.control = null;
    await t?.close().catch(() => undefined);
    await this.source.shutdown?.().catch(() => undefined);
  }

  /** Writes a line to the output pane. */
  print(line: string): void {
    this.state.output.push(line);
    this.changed();
  }

  /** Shows `text` on the status line. */
  notify(text: string, level: Notice['level'] = 'info'): void {
    this.state.notice = { text, level };
    this.changed();
  }

  // ---------------------------------------------------------------- internals

  private async connect(): Promise<void> {
    this.state.run = 'starting';
    this.state.lost = null;
    this.notify(`opening ${this.source.label}`, 'info');
    let target: Target;
    try {
      target = await this.source.open();
    } catch (e) {
      this.lose('lost', `cannot open ${this.source.label}: ${describeError(e).line}`);
      return;
    }
    if (this.closed) {
      await target.close().catch(() => undefined);
      return;
    }
    this.target = target;
    this.control = controlOf(target);
    this.state.canDrive = this.control !== null;
    this.state.watch.status = this.control === null ? 'impossible' : this.watch === null ? 'off' : 'on';
    const offLost = onConnectionLost(target, () => {
      if (this.target === target && !this.closed) this.lose('lost', `the connection to ${target.info.description} closed`);
    });
    this.targetOff.push(offLost);
    if (this.control) {
      const control = this.control;
      this.targetOff.push(
        control.onUnsolicitedStop((stop) => {
          if (this.target !== target) return;
          if (stop.cause === 'exited') this.lose('exited', `the guest has exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`);
          else if (!control.running && this.state.run !== 'running') {
            this.state.stopped = stopWords(stop);
            void this.exclusive(() => this.refresh());
          }
        }),
      );
    }
    // A run under way (launch resumed the guest) goes on: the screen fills in at its stop (Ctrl-C, a breakpoint).
    const running = this.source.running;
    if (running && this.control?.running) {
      this.state.run = 'running';
      this.notify('the guest runs: Ctrl-C stops it to look', 'info');
      await this.exclusive(async () => {
        const stop = await running;
        if (this.target !== target) return;
        this.state.stopped = stopWords(stop);
        if (stop.cause === 'exited') this.lose('exited', `the guest has exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`);
      });
      if (this.target !== target) return;
    }
    this.state.run = 'stopped';
    this.state.notice = null;
    await this.exclusive(() => this.refresh());
  }

  /** Reads the stop: registers, the selection's walk, the fault, then the map. */
  private async refresh(): Promise<void> {
    const target = this.target;
    if (!target) return;
    const generation = ++this.generation;
    const view = await readCpuView(target, this.source.options);
    this.state.view = view;
    const sel = this.state.selection;
    if (!sel || sel.by === 'rip') this.state.selection = { va: linearIp(view.cpu), access: SUPERVISOR_FETCH, cr3: null, by: 'rip', label: 'the next instruction (RIP)' };
    await this.walkSelection();
    if (this.source.readLog) this.feed.push(await this.source.readLog());
    if (this.feed.faults > this.faultsSeen) {
      this.faultsSeen = this.feed.faults;
      const f = this.feed.last!;
      this.faultSource = { origin: 'log', cr2: f.cr2, errorCode: f.errorCode, rip: f.rip, cr3: null };
    } else if (!this.faultSource && view.cpu.cr2 !== 0n) {
      this.faultSource = { origin: 'cr2', cr2: view.cpu.cr2, errorCode: null, rip: null, cr3: null };
    } else if (this.faultSource?.origin === 'cr2' || (this.faultSource?.origin === 'predicted' && this.state.check?.stale && view.cpu.cr2 !== 0n)) {
      // CR2 is what is known now (a prediction is history once the guest has moved).
      this.faultSource = { origin: 'cr2', cr2: view.cpu.cr2, errorCode: null, rip: null, cr3: null };
    }
    await this.walkFault();
    this.changed();
    const mapCr3 = this.state.map && this.state.map.cr3 !== view.ctx.cr3 && this.state.map.cr3 !== view.cpu.cr3 ? this.state.map.cr3 : null;
    if (generation === this.generation) await this.loadMap(mapCr3, generation);
  }

  private async walkSelection(): Promise<void> {
    const sel = this.state.selection;
    const v = this.state.view;
    if (!sel || !v || !this.target) return;
    const ctx = sel.cr3 === null ? v.ctx : withCr3(v.ctx, sel.cr3);
    this.state.walk = await runAsync(walkTask(ctx, sel.va, sel.access), this.target);
  }

  private async walkFault(): Promise<void> {
    const f = this.faultSource;
    const v = this.state.view;
    if (!f || !v || !this.target) {
      this.state.fault = null;
      return;
    }
    const decoded = f.errorCode === null ? null : decodeErrorCode(f.errorCode);
    const ctx: PagingContext = f.cr3 === null ? v.ctx : withCr3(v.ctx, f.cr3);
    const access: Access = decoded ? { kind: decoded.access, user: decoded.user } : { kind: 'read', user: false };
    const walk = await runAsync(walkTask(ctx, f.cr2, access), this.target);
    const comparison = decoded ? compareFault(decoded, walk, f.rip ?? undefined) : null;
    this.state.fault = { origin: f.origin, cr2: f.cr2, decoded, rip: f.rip, walk, comparison };
  }

  /** Lists the map of `cr3` (null: the loaded tables); a newer refresh makes an older listing give up. */
  private async loadMap(cr3: bigint | null, generation = this.generation): Promise<void> {
    const v = this.state.view;
    const target = this.target;
    if (!v || !target) return;
    const ctx = cr3 === null ? v.ctx : withCr3(v.ctx, cr3);
    if (ctx.mode === 'none') {
      this.state.map = null;
      return;
    }
    this.state.mapLoading = true;
    this.changed();
    try {
      const listing = await listMap(target, ctx, () => generation === this.generation);
      if (!listing) return;
      const old = this.state.map;
      this.state.map = { cr3: ctx.cr3, vaBits: ctx.vaBits, ranges: listing.ranges, filter: old?.filter ?? '', cursor: old && old.cr3 === ctx.cr3 ? old.cursor : 0, notes: listing.notes };
    } finally {
      if (generation === this.generation) {
        this.state.mapLoading = false;
        this.changed();
      }
    }
  }

  /** Takes a pre-flight into the fault pane; a dangerous one also selects its failing walk and predicts its fault. */
  private showCheck(check: CheckView): void {
    this.state.check = check;
    const r = check.result;
    const problem = r.problems.find((p) => p.walk !== null && p.when === 'now') ?? r.problems.find((p) => p.walk !== null);
    if (problem?.walk) {
      this.state.selection = { va: problem.va, access: problem.walk.access, cr3: r.cr3, by: 'check', label: `${problem.what} under the new CR3 ${hex(r.cr3)}` };
      this.state.walk = problem.walk;
    }
    const first = r.chain[0];
    if (first && first.vector === 14 && first.cr2 !== null && first.errorCode !== null) {
      this.faultSource = { origin: 'predicted', cr2: first.cr2, errorCode: first.errorCode, rip: check.rip, cr3: r.cr3 };
    }
    const danger = r.verdict === 'triple-fault' || r.verdict === 'fault';
    this.state.warning = danger && check.origin === 'watch' ? `${r.verdict === 'triple-fault' ? 'TRIPLE FAULT' : 'FAULT'} ahead: the mov cr3 at ${hex(check.rip)} would load ${hex(r.cr3)}` : null;
    // Show what the new tables map (the strip shows what they leave out), unless they are loaded already.
    if (danger && r.cr3 !== this.state.view?.ctx.cr3) void this.exclusive(() => this.loadMap(r.cr3));
  }

  private watchEvent(e: WatchEvent): void {
    if (e.kind === 'shutdown') {
      this.state.warning = `the guest shut down (a triple fault): ${e.summary}`;
    } else {
      const entries = this.state.watch.entries;
      entries.push(e.entry);
      if (entries.length > MAX_WATCH_ENTRIES) entries.splice(0, entries.length - MAX_WATCH_ENTRIES);
      if (e.entry.stopped) this.showCheck({ origin: 'watch', from: e.entry.old, rip: e.entry.rip, result: e.result, hints: e.hints });
    }
    this.changed();
  }

  private consoleText(text: string): void {
    this.state.console.write(text);
    this.changed();
  }

  /** Whether an operation may run now; says why not on the status line. */
  private usable(drive: boolean): boolean {
    const s = this.state.run;
    if (s === 'lost' || s === 'exited') {
      this.notify(`the target is ${s === 'lost' ? 'lost' : 'gone'}${this.source.canReconnect ? ': r reconnects' : ''}`, 'warn');
      return false;
    }
    if (s === 'starting') {
      this.notify('still opening the target', 'info');
      return false;
    }
    if (s === 'running') {
      this.notify('the guest is running: Ctrl-C stops it first', 'warn');
      return false;
    }
    if (drive && !this.control) {
      this.notify('this target cannot be driven (a dump, or QMP alone): s, c and Ctrl-C need --gdb or --emu', 'warn');
      return false;
    }
    return true;
  }

  /** Runs `fn` after everything queued before it; its errors become notices (a lost target, a lost state). */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await fn();
      } catch (e) {
        this.failed(e);
      }
    });
    this.queue = next;
    return next;
  }

  private failed(e: unknown): void {
    // Once the target is gone, what its pending requests throw says nothing new.
    if (this.state.run === 'lost' || this.state.run === 'exited') return;
    if (e instanceof TargetError && e.code === 'E_LOST') {
      this.lose('lost', e.message);
      return;
    }
    if (this.state.run === 'running') this.state.run = 'stopped';
    this.notify(describeError(e).line, 'error');
  }

  private lose(run: 'lost' | 'exited', text: string): void {
    this.state.run = run;
    this.state.lost = text;
    this.state.warning = null;
    for (const u of this.targetOff.splice(0)) u();
    const t = this.target;
    this.target = null;
    this.control = null;
    this.state.canDrive = false;
    void t?.close().catch(() => undefined);
    this.notify(`${run === 'lost' ? 'target lost' : 'guest exited'}${this.source.canReconnect ? ': r reconnects' : ': q quits'}`, 'error');
  }

  private changed(): void {
    this.emit('change');
  }
}
