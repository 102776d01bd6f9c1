/**
 * A session of the Node API: one open target and everything the CLI does with it, as methods
 * that answer in the CLI's JSON shapes. Several callers (the WebSocket server's clients) may share
 * one session: reads run side by side, while step, cont, breakpoints and writes wait for them and
 * have the target alone. Events: `stopped` (every stop, asked for or not), `cr3Write` (during
 * watchCr3), `targetLost` (once, when the target goes away).
 */
import { EventEmitter } from 'node:events';
import { sessionFor, type Session, type TargetOptions } from '../cli/session.js';
import { decodeErrorCode } from '../faults/errorCode.js';
import type { PagingOverride } from '../faults/logAgainstTables.js';
import { explainLogJson, type ExplainLogJson } from '../json/explainLog.js';
import { aliasJson, diffEntryJson, mapRangeJson, mapSummaryJson, type DiffEntryJson, type MapRangeJson, type MapSummaryJson } from '../json/map.js';
import type { RegsJson } from '../json/regs.js';
import { walkJson, type WalkJson } from '../json/walk.js';
import type { Cr3WriteJson } from '../json/watch.js';
import { hex } from '../paging/addr.js';
import { mapRangesAsync, type MapOptions } from '../paging/map.js';
import { runAsync } from '../paging/memory.js';
import { withCr3, type PagingContext } from '../paging/mode.js';
import { phys2virtAsync } from '../paging/phys2virt.js';
import type { AccessKind } from '../paging/rights.js';
import { walkTask } from '../paging/walk.js';
import { checkReport } from '../report/check.js';
import { diffReport } from '../report/diff.js';
import { explainQemuLog, logTables } from '../report/explainLog.js';
import { faultReport, undefinedBitsProblem } from '../report/fault.js';
import { regsReport } from '../report/regs.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import type { SymbolTable } from '../target/elfSymbols.js';
import { EmuTarget } from '../target/emuTarget.js';
import type { Target, TargetInfo } from '../target/target.js';
import { controlOf } from '../watch/driven.js';
import { ElfCodeError, loadElfCode } from '../watch/elfCode.js';
import { ApiError, toApiError } from './errors.js';
import { Gate, type Release } from './gate.js';
import { HeldStream } from './heldStream.js';
import { logChunks } from './logSource.js';
import { toUnsigned, type Numberish } from './options.js';
import type { DiffOptions, ExplainLogOptions, FaultOptions, LogSource, MapWindow, Streamed, WalkOptions, WatchCr3Options } from './requests.js';
import type { CheckJson, DiffCountsJson, DiffJson, FaultAnswerJson, MapJson, Phys2virtJson, StopJson, TargetLostJson } from './types.js';
import { WATCH_STOPS, WatchRun, type WatchSummaryJson } from './watchRun.js';

/** The events of a {@link PagewalkSession}. */
export interface PagewalkSessionEvents {
  /** The guest stopped (after step, cont, interrupt, a breakpoint, the end of a watch, or a stop nobody here asked for). */
  stopped: [StopJson];
  /** A CR3 write seen by a watch, told while the guest stands on the `mov cr3`. */
  cr3Write: [Cr3WriteJson];
  /** The target went away; every later call fails with E_LOST. */
  targetLost: [TargetLostJson];
}

/** What the session is doing with the guest. */
type RunState = 'stopped' | 'running' | 'watching' | 'lost' | 'closed';

/** One target, driven and read; create it with `attach()`. */
export class PagewalkSession extends EventEmitter<PagewalkSessionEvents> {
  private readonly gate = new Gate();
  private state: RunState = 'stopped';
  /** The run in progress (after cont): resolves with its stop. */
  private run: Promise<StopJson> | null = null;
  private readonly breakpoints = new Set<bigint>();
  private readonly unsubscribe: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private lostMessage: string | null = null;
  /** The controls of the target, or null for one that cannot be driven. */
  private readonly controlValue: DebugControl | null;
  /** The watch in progress, and the stop it ends with. */
  private watch: { run: WatchRun; stop: Promise<StopJson> } | null = null;
  /** True while a paused watch waits for its consumer: the guest stands on a `mov cr3` and may be read. */
  private watchPaused = false;

  /** Wraps an open target; the session owns it from now on (close() closes it). `symbols` serve symbolic addresses. */
  constructor(
    readonly target: Target,
    private readonly options: TargetOptions = {},
    private readonly symbols: SymbolTable | null = null,
  ) {
    super();
    this.controlValue = controlOf(target);
    if (this.controlValue) {
      if (this.controlValue.running) this.state = 'running';
      this.unsubscribe = this.controlValue.onUnsolicitedStop((stop) => void this.unsolicited(stop));
    }
  }

  /** What the target is, in one line. */
  get info(): TargetInfo {
    return this.target.info;
  }

  /** True when the target can be driven (step, cont, interrupt, breakpoints): the emulator, a gdbstub. */
  get debuggable(): boolean {
    return this.controlValue !== null;
  }

  /** True while the guest runs (between cont() and its stop, and under a watch). */
  get running(): boolean {
    return this.state === 'running' || this.state === 'watching';
  }

  /** True while someone waits to have the target alone (step, cont, a write): a paused stream should give way. */
  get contended(): boolean {
    return this.gate.exclusiveWaiting;
  }

  /** True once the target is gone or the session closed. */
  get ended(): boolean {
    return this.state === 'lost' || this.state === 'closed';
  }

  // ------------------------------------------------------------------ reads

  /** The paging registers decoded, with notes on what was assumed. */
  regs(): Promise<RegsJson> {
    return this.read(async (s) => regsReport(s, s.notes).json);
  }

  /** The walk of `va`: every level, effective rights, and whether `access` (default a supervisor read) faults. */
  walk(va: Numberish, access: AccessKind | WalkOptions = {}): Promise<WalkJson> {
    const o: WalkOptions = typeof access === 'string' ? { access } : access;
    return this.read(async (s) => {
      const address = this.address(s, va, 'va');
      const kind = o.access ?? 'read';
      if (kind !== 'read' && kind !== 'write' && kind !== 'exec') throw new ApiError('E_BAD_INPUT', `access: expected read, write or exec, got ${String(kind)}`);
      const ctx = this.context(s, o.cr3);
      return walkJson(await runAsync(walkTask(ctx, address, { kind, user: o.user === true }), this.target));
    });
  }

  /**
   * Every mapping, coalesced into ranges in ascending VA order, streamed: `for await (const r of
   * s.map())`. The generator's return value is the summary. Until the loop ends (or breaks), steps
   * and writes wait for it.
   */
  async *map(window: MapWindow = {}): AsyncGenerator<MapRangeJson, MapSummaryJson, undefined> {
    const m = await this.mapStream(window);
    return yield* m.items;
  }

  /** The whole map in one answer (the shape of `map --json`). */
  async mapAll(window: MapWindow = {}): Promise<MapJson> {
    const m = await this.mapStream(window);
    const ranges: MapRangeJson[] = [];
    for (;;) {
      const r = await m.items.next();
      if (r.done) return { ...m.header, ranges, summary: r.value };
      ranges.push(r.value);
    }
  }

  /**
   * The map as a header (CR3 and mode) and a stream of ranges; the streaming form the WebSocket
   * server uses. The session is read-held until the stream ends or is returned.
   */
  async mapStream(window: MapWindow = {}): Promise<Streamed<{ cr3: string; mode: string }, MapRangeJson, MapSummaryJson>> {
    const { s, release } = await this.hold();
    try {
      const ctx = this.context(s, window.cr3);
      const it = mapRangesAsync(this.target, ctx, this.window(s, window));
      return { header: { cr3: hex(ctx.cr3), mode: ctx.mode }, items: new HeldStream(this.stream(it, mapRangeJson, mapSummaryJson), release) };
    } catch (e) {
      release();
      throw this.failure(e);
    }
  }

  /** What the address space maps that the one at `against` does not, or maps differently (the shape of `diff --json`). */
  async diff(options: DiffOptions): Promise<DiffJson> {
    const d = await this.diffStream(options);
    const entries: DiffEntryJson[] = [];
    for (;;) {
      const r = await d.items.next();
      if (r.done) return { ...d.header, entries, counts: r.value };
      entries.push(r.value);
    }
  }

  /** The diff as a header and a stream of entries whose return value is the counts. */
  async diffStream(options: DiffOptions): Promise<Streamed<{ cr3: string; against: string; mode: string }, DiffEntryJson, DiffCountsJson>> {
    if (typeof options !== 'object' || options === null || options.against === undefined) {
      throw new ApiError('E_BAD_INPUT', 'diff: pass { against: CR3 } (the baseline address space), and optionally cr3, from, to');
    }
    const { s, release } = await this.hold();
    try {
      const now = this.context(s, options.cr3);
      const d = diffReport(this.target, now, withCr3(now, toUnsigned(options.against, 'against')), this.window(s, options));
      return { header: d.header, items: new HeldStream(this.stream(d.entries, diffEntryJson, (c: DiffCountsJson) => ({ ...c })), release) };
    } catch (e) {
      release();
      throw this.failure(e);
    }
  }

  /**
   * The lint of the tables and the CR3 pre-flight: would loading `cr3` (default: the session's),
   * with the current RIP, RSP, GDT, IDT and TSS, fault or triple-fault? `lost` lists what switching
   * from the loaded CR3 loses.
   */
  check(cr3?: Numberish): Promise<CheckJson> {
    return this.read(async (s) => (await checkReport(s, this.context(s, cr3))).json);
  }

  /** A page fault decoded bit by bit and held against the tables. */
  fault(options: FaultOptions): Promise<FaultAnswerJson> {
    return this.read(async (s) => {
      if (typeof options !== 'object' || options === null || options.errorCode === undefined) {
        throw new ApiError('E_BAD_INPUT', 'fault: pass { errorCode } (QEMU\'s e=), and optionally cr2 and rip');
      }
      const code = toUnsigned(options.errorCode, 'errorCode');
      if (code > 0xffffffffn) throw new ApiError('E_BAD_INPUT', `errorCode: ${hex(code)} is wider than 32 bits`);
      const decoded = decodeErrorCode(Number(code));
      const problem = undefinedBitsProblem(decoded);
      if (problem) throw new ApiError('E_BAD_INPUT', `errorCode: ${problem}`);
      const cr2 = options.cr2 !== undefined ? this.address(s, options.cr2, 'cr2') : s.cpu.cr2;
      const rip = options.rip !== undefined ? this.address(s, options.rip, 'rip') : s.cpu.rip !== 0n ? s.cpu.rip : undefined;
      return (await faultReport(s, { decoded, cr2, rip })).json;
    });
  }

  /** Every linear address that maps physical address `pa`. */
  phys2virt(pa: Numberish, options: { cr3?: Numberish } = {}): Promise<Phys2virtJson> {
    return this.read(async (s) => {
      const p = toUnsigned(pa, 'pa');
      if (p >= 1n << 52n) throw new ApiError('E_BAD_INPUT', `pa: ${hex(p)} is above the 52-bit physical address space`);
      const ctx = this.context(s, options.cr3);
      const aliases = await phys2virtAsync(this.target, ctx, p);
      return { pa: hex(p), cr3: hex(ctx.cr3), mode: ctx.mode, aliases: aliases.map(aliasJson) };
    });
  }

  /**
   * A QEMU `-d int,cpu_reset` log explained: each exception, the chain to a triple fault, the
   * outcome; with `tables` (the default) each #PF's CR2 is walked in the log's CR3 on this target.
   * Throws E_BAD_INPUT for an empty log or one QEMU did not write.
   */
  async explainLog(source: LogSource, options: ExplainLogOptions = {}): Promise<ExplainLogJson> {
    const { chunks, name } = logChunks(source);
    const x = await explainQemuLog(chunks, name).catch((e: unknown) => Promise.reject(toApiError(e)));
    const symbols = this.symbols;
    const sym = symbols ? (va: bigint) => symbols.symbolize(va) : undefined;
    if (options.tables === false) return explainLogJson(x, new Map(), sym);
    return this.read(async (s) => {
      const override: PagingOverride = {};
      for (const k of ['cr0', 'cr3', 'cr4', 'efer'] as const) if (this.options[k] !== undefined) override[k] = s.cpu[k];
      return explainLogJson(x, (await logTables(this.target, x, s.features, override)).checks, sym);
    });
  }

  // ------------------------------------------------------------------ control

  /** Executes one instruction; resolves with the stop (also emitted as `stopped`). Throws E_UNSUPPORTED without controls, E_RUNNING while the guest runs. */
  step(): Promise<StopJson> {
    return this.control(async (c) => {
      const stop = await c.step();
      return this.stopped(stop);
    });
  }

  /** Resumes the guest; resolves with the stop that ends the run (a breakpoint, interrupt(), a shutdown). */
  async cont(): Promise<StopJson> {
    return (await this.resume()).stop;
  }

  /**
   * Resumes the guest and resolves as soon as it runs, with the stop to come; reads fail with
   * E_RUNNING until then. The WebSocket server answers `cont` this way.
   */
  async resume(): Promise<{ stop: Promise<StopJson> }> {
    return this.control(async (c) => {
      this.state = 'running';
      const p = c.cont().then(
        (stop) => {
          if (this.state === 'running') this.state = 'stopped';
          return this.stopped(stop);
        },
        (e: unknown) => {
          if (this.state === 'running') this.state = 'stopped';
          throw this.failure(e);
        },
      );
      this.run = p;
      void p.catch(() => undefined).finally(() => {
        if (this.run === p) this.run = null;
      });
      return { stop: p };
    });
  }

  /** Stops a running guest; resolves with the stop, or null when it was not running. E_UNSUPPORTED without controls. */
  async interrupt(): Promise<StopJson | null> {
    this.checkUsable();
    const c = this.controls();
    const watch = this.watch;
    if (this.state === 'watching' && watch) {
      watch.run.stop();
      return watch.stop;
    }
    if (this.state !== 'running') return null;
    // A run of ours ends in its cont(); one found running at attach ends in a stop nobody asked for.
    const next = this.run ?? new Promise<StopJson>((resolve) => this.once('stopped', resolve));
    try {
      await c.interrupt();
    } catch (e) {
      throw this.failure(e);
    }
    return next;
  }

  /**
   * Watches for CR3 writes: yields each (DESIGN's `cr3-write` shape: rip, old, new, verdict,
   * problems, lost) while the guest stands on the `mov cr3`, which runs only when the loop asks for
   * the next one; meanwhile the session can be read (regs, walk, check ...), not driven. The return
   * value says how the watch ended. Breaking out of the loop, or `signal`, ends the watch with the
   * guest left where it is (on the `mov cr3` when the loop broke there). `cr3Write` events go out too.
   */
  async *watchCr3(options: WatchCr3Options = {}): AsyncGenerator<Cr3WriteJson, WatchSummaryJson, undefined> {
    const w = await this.beginWatch(options, true);
    try {
      for (;;) {
        const e = await w.run.next();
        if (e === null) break;
        this.watchPaused = true;
        let leaving = true;
        try {
          yield e;
          leaving = false;
        } finally {
          // A loop that breaks here ends the watch on this mov cr3, before it runs.
          if (leaving) w.run.stop();
          // Reads the loop started finish before the guest moves on.
          await this.gate.withExclusive(async () => {
            this.watchPaused = false;
          });
          w.run.release();
        }
      }
      return await w.run.done.catch((e: unknown) => Promise.reject(this.failure(e)));
    } finally {
      w.run.stop();
      await w.stop.catch(() => undefined);
    }
  }

  /**
   * Starts a watch that does not wait for anyone: its writes go out as `cr3Write` events, its end as
   * a `stopped` event (the WebSocket API's `watchCr3.start`). Resolves once it runs.
   */
  async startWatch(options: WatchCr3Options = {}): Promise<{ done: Promise<WatchSummaryJson> }> {
    const w = await this.beginWatch(options, false);
    const done = w.run.done.catch((e: unknown) => Promise.reject(this.failure(e)));
    void done.catch(() => undefined);
    return { done };
  }

  /** Ends the watch in progress, the guest left stopped where it is; resolves with how it ended, or null when none runs. */
  async stopWatch(): Promise<WatchSummaryJson | null> {
    this.checkUsable();
    const w = this.watch;
    if (!w) return null;
    w.run.stop();
    await w.stop.catch(() => undefined);
    return w.run.done.catch((e: unknown) => Promise.reject(this.failure(e)));
  }

  /** Inserts an execution breakpoint at `va` (a number or a symbol with `elf`). */
  setBreakpoint(va: Numberish): Promise<{ va: string }> {
    return this.control(async (c, s) => {
      const at = this.address(s, va, 'va');
      await c.insertBreakpoint(at);
      this.breakpoints.add(at);
      return { va: hex(at) };
    });
  }

  /** Removes the breakpoint at `va`; E_BAD_INPUT when this session set none there. */
  deleteBreakpoint(va: Numberish): Promise<{ va: string }> {
    return this.control(async (c, s) => {
      const at = this.address(s, va, 'va');
      if (!this.breakpoints.has(at)) throw new ApiError('E_BAD_INPUT', `no breakpoint at ${hex(at)} (set: ${[...this.breakpoints].map(hex).join(', ') || 'none'})`);
      await c.removeBreakpoint(at);
      this.breakpoints.delete(at);
      return { va: hex(at) };
    });
  }

  /** The breakpoints this session has set. */
  get breakpointList(): string[] {
    return [...this.breakpoints].map(hex);
  }

  /** Writes a register by its gdbstub name (rip, rax, cr3 ...). Changes the guest: use with care. */
  writeRegister(name: string, value: Numberish): Promise<{ name: string; value: string }> {
    return this.control(async (c) => {
      if (typeof name !== 'string' || !/^[a-z][a-z0-9_]{0,15}$/.test(name)) throw new ApiError('E_BAD_INPUT', `register name: expected a gdbstub name such as rax, rip or cr3, got ${JSON.stringify(name)}`);
      const v = toUnsigned(value, name);
      await c.writeRegister(name, v);
      return { name, value: hex(v) };
    });
  }

  /** Writes guest-physical memory. Changes the guest: use with care. Throws E_UNSUPPORTED for dumps and images. */
  writePhysical(pa: Numberish, bytes: Uint8Array): Promise<{ pa: string; length: number }> {
    return this.exclusive(async () => {
      const at = toUnsigned(pa, 'pa');
      if (!(bytes instanceof Uint8Array)) throw new ApiError('E_BAD_INPUT', 'bytes: expected a Uint8Array');
      const t = this.target as Target & { writePhysical?: (pa: bigint, data: Uint8Array) => Promise<void> };
      if (typeof t.writePhysical === 'function') {
        await t.writePhysical(at, bytes);
      } else if (t instanceof EmuTarget) {
        const ram = BigInt(t.machine.memory.ramSize);
        if (at + BigInt(bytes.length) > ram) throw new ApiError('E_UNREADABLE', `physical ${hex(at)}+${hex(bytes.length)} is outside the emulator's RAM (0x0-${hex(ram)})`);
        t.machine.writePhysical(at, bytes);
      } else {
        throw new ApiError('E_UNSUPPORTED', `${this.target.info.description} cannot be written`);
      }
      return { pa: hex(at), length: bytes.length };
    });
  }

  /**
   * Lets go: stops a guest this session resumed, removes its breakpoints, and closes the target
   * (which leaves the guest as it was found: a running one resumes). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ------------------------------------------------------------------ plumbing

  /** Starts a watch: the guest is the watch's until it ends; its end is told as `stopped`. */
  private async beginWatch(o: WatchCr3Options, pause: boolean): Promise<{ run: WatchRun; stop: Promise<StopJson> }> {
    if (typeof o !== 'object' || o === null) throw new ApiError('E_BAD_INPUT', 'watchCr3: options must be an object');
    const whole = (v: unknown, what: string, max: number): number | undefined => {
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new ApiError('E_BAD_INPUT', `watchCr3: ${what} must be a whole number from 1 to ${max}`);
      return v;
    };
    const count = whole(o.count, 'count', 1_000_000_000);
    const maxSteps = whole(o.maxSteps, 'maxSteps', 1_000_000_000);
    const budget = whole(o.scanBudgetMiB, 'scanBudgetMiB', 1 << 20);
    if (o.stopOn !== undefined && o.stopOn !== 'danger' && o.stopOn !== 'every') throw new ApiError('E_BAD_INPUT', 'watchCr3: stopOn must be danger or every');
    this.checkUsable();
    this.controls();
    return this.exclusive(async () => {
      const s = await this.view();
      const ram = await this.target.ram();
      let elf = null;
      if (this.options.elf !== undefined) {
        try {
          elf = await loadElfCode(this.options.elf);
        } catch (e) {
          if (e instanceof ElfCodeError) throw new ApiError('E_BAD_INPUT', `elf: ${e.message}`, { cause: e });
          throw e;
        }
      }
      this.state = 'watching';
      const run = new WatchRun(
        this.target,
        { features: s.features, count, stopOn: o.stopOn ?? null, maxSteps, scanBudget: budget === undefined ? undefined : budget * (1 << 20), elf, ram },
        pause,
        (e) => this.emit('cr3Write', e),
      );
      if (o.signal) {
        if (o.signal.aborted) run.stop();
        else o.signal.addEventListener('abort', () => run.stop(), { once: true });
      }
      const ended = (): void => {
        if (this.state === 'watching') this.state = 'stopped';
        this.watchPaused = false;
        if (this.watch?.run === run) this.watch = null;
      };
      const stop = run.done.then(
        (sum) => {
          ended();
          return this.stopped(WATCH_STOPS[sum.end], sum.message);
        },
        async (e: unknown) => {
          ended();
          const err = this.failure(e);
          if (!this.ended) await this.stopped({ cause: 'interrupted', signal: null }, `the watch failed: ${err.message}`);
          throw err;
        },
      );
      void stop.catch(() => undefined);
      this.watch = { run, stop };
      return this.watch;
    });
  }

  private async shutdown(): Promise<void> {
    try {
      if (this.state === 'running' || this.state === 'watching') await this.interrupt().catch(() => null);
      const c = this.controlValue;
      if (this.state === 'stopped' && c) {
        for (const va of this.breakpoints) await c.removeBreakpoint(va).catch(() => undefined);
      }
    } finally {
      this.breakpoints.clear();
      this.unsubscribe?.();
      this.state = 'closed';
      await this.target.close();
    }
  }

  /** Throws E_CLOSED or E_LOST when the session is of no more use. */
  private checkUsable(): void {
    if (this.state === 'closed' || this.closing) throw new ApiError('E_CLOSED', 'the session is closed');
    if (this.state === 'lost') throw new ApiError('E_LOST', this.lostMessage ?? 'the target is gone');
  }

  /** Throws unless the guest stands still for reads: stopped, or paused at a watch's CR3 write. */
  private checkStopped(): void {
    this.checkUsable();
    if (this.state === 'running') throw new ApiError('E_RUNNING', 'the guest is running: interrupt it first (interrupt()), or wait for it to stop');
    if (this.state === 'watching' && !this.watchPaused) throw new ApiError('E_RUNNING', 'the guest runs under watchCr3: stop the watch first (interrupt(), or break out of its loop)');
  }

  /** Throws unless the guest is stopped and nothing (no watch) drives it. */
  private checkIdle(): void {
    this.checkStopped();
    if (this.state === 'watching') throw new ApiError('E_RUNNING', 'a watchCr3 drives the guest: stop the watch before stepping, running or writing');
  }

  private controls(): DebugControl {
    if (!this.controlValue) {
      throw new ApiError('E_UNSUPPORTED', `${this.target.info.description} cannot be driven (step, cont, breakpoints): attach to the emulator (emu) or a gdbstub (gdb)`);
    }
    return this.controlValue;
  }

  /** The CLI's view of the target as it stands: CPU state with the overrides, features, context. A failure leaves the target open: closing it is the session's. */
  private view(): Promise<Session> {
    return sessionFor(this.target, this.options, this.symbols, false);
  }

  /** Waits for shared use of a stopped guest; resolves with the view and the release. */
  private async hold(): Promise<{ s: Session; release: Release }> {
    this.checkStopped();
    const release = await this.gate.acquireShared();
    try {
      this.checkStopped();
      return { s: await this.view(), release };
    } catch (e) {
      release();
      throw this.failure(e);
    }
  }

  /** Runs a read with shared use. */
  private async read<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const { s, release } = await this.hold();
    try {
      return await fn(s);
    } catch (e) {
      throw this.failure(e);
    } finally {
      release();
    }
  }

  /** Runs `fn` with the target alone, on a stopped guest. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.checkIdle();
    const release = await this.gate.acquireExclusive();
    try {
      this.checkIdle();
      return await fn();
    } catch (e) {
      throw this.failure(e);
    } finally {
      release();
    }
  }

  /** Runs `fn` on the controls, with the target alone. */
  private async control<T>(fn: (c: DebugControl, s: Session) => Promise<T>): Promise<T> {
    this.checkUsable();
    const c = this.controls();
    return this.exclusive(async () => fn(c, await this.view()));
  }

  /** Turns an iterator of paging values into one of JSON shapes. */
  private async *stream<A, B, RA, RB>(it: AsyncIterator<A, RA>, item: (a: A) => B, last: (r: RA) => RB): AsyncGenerator<B, RB, undefined> {
    try {
      for (;;) {
        let r: IteratorResult<A, RA>;
        try {
          r = await it.next();
        } catch (e) {
          throw this.failure(e);
        }
        if (r.done) return last(r.value);
        yield item(r.value);
      }
    } finally {
      await it.return?.(undefined as RA);
    }
  }

  private address(s: Session, v: Numberish, what: string): bigint {
    return toUnsigned(v, what, s.symbols ? (n) => s.symbols!.lookup(n) : undefined);
  }

  private context(s: Session, cr3: Numberish | undefined): PagingContext {
    return cr3 === undefined ? s.ctx : withCr3(s.ctx, toUnsigned(cr3, 'cr3'));
  }

  private window(s: Session, w: MapWindow): MapOptions {
    const o: MapOptions = {};
    if (w.from !== undefined) o.from = this.address(s, w.from, 'from');
    if (w.to !== undefined) o.to = this.address(s, w.to, 'to');
    if (o.from !== undefined && o.to !== undefined && o.from > o.to) throw new ApiError('E_BAD_INPUT', `from ${hex(o.from)} is above to ${hex(o.to)}`);
    return o;
  }

  /** The stop as JSON, with RIP and CR3 read at it and why, when known; emitted as `stopped`. */
  private async stopped(stop: Stop, reason: string | null = null): Promise<StopJson> {
    let rip: string | null = null;
    let cr3: string | null = null;
    if (stop.cause !== 'exited') {
      try {
        const cpu = await this.target.cpuState();
        rip = hex(cpu.rip);
        cr3 = hex(cpu.cr3);
      } catch (e) {
        this.failure(e);
      }
    }
    const json: StopJson = {
      cause: stop.cause,
      signal: stop.signal,
      rip,
      cr3,
      watch: stop.watch ? { kind: stop.watch.kind, address: hex(stop.watch.address) } : null,
      exitCode: stop.exitCode ?? null,
      reason,
    };
    this.emit('stopped', json);
    if (stop.cause === 'exited') this.lose(`${this.target.info.description} exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}`);
    return json;
  }

  private async unsolicited(stop: Stop): Promise<void> {
    // A stop that ends a run of ours (or a watch's) reaches that run's cont(); this one came from elsewhere.
    if (this.ended || this.state === 'watching' || (this.state === 'running' && this.run !== null)) return;
    if (this.state === 'running') this.state = 'stopped';
    await this.stopped(stop);
  }

  /** The ApiError for `e`; a lost target is remembered and told once. */
  private failure(e: unknown): ApiError {
    const err = toApiError(e);
    if (err.code === 'E_LOST' && this.state !== 'closed' && !this.closing) this.lose(err.message);
    return err;
  }

  private lose(message: string): void {
    if (this.state === 'lost' || this.state === 'closed') return;
    this.state = 'lost';
    this.lostMessage = message;
    this.emit('targetLost', { message });
  }
}
