/**
 * The gdbstub target (`--gdb HOST:PORT`): a QEMU reached over the GDB Remote Serial Protocol.
 *
 * - Registers: one `g` per stop, decoded through target.xml (cr0, cr2, cr3, cr4, efer, rip, rsp,
 *   eflags, selectors, GPRs); `g` also brings KVM's register cache up to date, which `p` alone does
 *   not. GDTR, IDTR, TR and the segments' hidden parts are not in the gdbstub: they come from the
 *   monitor's `info registers` (qRcmd, or QMP when combined), read at the same stop.
 * - Memory: `Qqemu.PhyMemMode:1` (the old value read first and put back on close), then pipelined
 *   `m` reads; a batch of frames (a whole level of the map) is fetched in one pipelined round. Frames
 *   outside the RAM and ROM of `info mtree -f` are null (the stub reads zeros there instead of failing).
 * - The guest is left as found: connecting to a running VM stops it (QEMU sends an unsolicited T02),
 *   so closing then detaches (`D`), which resumes it; a VM that was stopped is left stopped by closing
 *   the socket without `D`.
 * - Controls (the Debuggee interface, `control`) are a {@link GdbstubControl}: breakpoints (`Z0`, or
 *   `Z1` under KVM), steps that retry QEMU's empty step, runs, interrupts, and the stops nobody asked for.
 */
import type { Socket } from 'node:net';
import { linearIp, type CpuState } from '../paging/cpu.js';
import { FRAME_SIZE, type FrameData } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import { HmpError } from '../qmp/errors.js';
import type { InfoRegisters } from '../qmp/hmp.js';
import { pipelined } from '../rsp/chunks.js';
import { BreakpointType, RspClient, type RequestOptions } from '../rsp/client.js';
import { GdbSignal, type StopReply } from '../rsp/codec.js';
import { endpointLabel, openSocket, parseEndpoint, type RspEndpoint } from '../rsp/endpoint.js';
import { RspError } from '../rsp/errors.js';
import { systemTimers } from '../rsp/timers.js';
import { FrameCache } from './frameCache.js';
import { cpuFromGdbRegisters } from './liveCpu.js';
import { isConnectionLost, liveError } from './liveErrors.js';
import { covers, rangesText, readableRanges, type FlatRange } from './mtree.js';
import { cpuFeatures, infoRegisters, memoryMap, rspMonitor, type QemuMonitor } from './qemuMonitor.js';
import { DEFAULT_CONNECT_MS, DEFAULT_REQUEST_MS, type LiveTimeouts, type QemuTarget } from './qemuTarget.js';
import { TargetError, type RamRange, type TargetInfo } from './target.js';
import type { DebugControl, Debuggee, Stop } from './debuggee.js';

/** Options of {@link RspTarget}. */
export interface RspTargetOptions {
  /** Where monitor commands go: the gdbstub's own (qRcmd, the default), QMP's, or none. */
  monitor?: QemuMonitor | null;
  /** Whether closing resumes the guest (default: whether connecting stopped it, i.e. an unsolicited T02 came). */
  resumeOnClose?: boolean;
  /** `m` packets kept in flight (default 128, two per frame); 1 reads one packet at a time. */
  window?: number;
  /** The bound of the per-stop frame cache, in frames. */
  cacheFrames?: number;
  /** What the user is told this target is. */
  description?: string;
  /** How breakpoints go in (default: asked once, see {@link GdbstubControl.breakpointKind}). */
  breakpoints?: BreakpointKind;
}

/** True when the stub stopped the guest because this client connected (QEMU's unsolicited T02 before any reply). */
export function stoppedByConnecting(client: RspClient): boolean {
  const s = client.lastStop;
  return s !== null && s.kind === 'stopped' && s.signal === GdbSignal.INT;
}

/**
 * Connects to a gdbstub and negotiates. A stub that accepts the connection but sends nothing at all
 * within `connectMs` is held by another client (QEMU serves one at a time and queues the rest); one
 * that starts with something other than an acknowledgement or a packet speaks another protocol.
 * Throws TargetError: E_OPEN (refused, unreachable, busy, no answer), E_FORMAT (not RSP).
 */
export async function connectGdbstub(endpoint: RspEndpoint, t: LiveTimeouts = {}): Promise<RspClient> {
  const where = parseEndpoint(endpoint);
  const label = endpointLabel(where);
  const connectMs = t.connectMs ?? DEFAULT_CONNECT_MS;
  let socket: Socket;
  try {
    socket = await openSocket(where, connectMs, systemTimers);
  } catch (e) {
    throw liveError(e, `the gdbstub at ${label}`, 'open');
  }
  socket.setNoDelay(true);
  // What the socket did before the handshake ended: nothing at all (busy), or spoke another protocol.
  const first: { heard: boolean; silent: boolean; foreign: string | null } = { heard: false, silent: false, foreign: null };
  socket.once('data', (d: Buffer) => {
    first.heard = true;
    // A gdbstub's first byte is an acknowledgement or a packet; anything else is another protocol.
    if (!'+-$%'.includes(String.fromCharCode(d[0]!))) {
      first.foreign = d.subarray(0, 40).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
      socket.destroy();
    }
  });
  const timer = setTimeout(() => {
    if (first.heard) return;
    first.silent = true;
    socket.destroy();
  }, connectMs);
  try {
    return await RspClient.over(socket, { timeoutMs: t.requestMs ?? DEFAULT_REQUEST_MS }, label);
  } catch (e) {
    if (first.silent) {
      throw new TargetError('E_OPEN', `the gdbstub at ${label} is in use by another client (GDB?): it accepted the connection but sent nothing in ${connectMs} ms`);
    }
    if (first.foreign !== null) {
      const hint = first.foreign.startsWith('{') ? ' (a QMP socket? pass it as --qmp)' : '';
      throw new TargetError('E_FORMAT', `${label} is not a gdbstub: it sent '${first.foreign}'${hint}`);
    }
    throw liveError(e, `the gdbstub at ${label}`, 'open');
  } finally {
    clearTimeout(timer);
  }
}

/** A QEMU (or another gdbstub) as a target, over RSP, with its controls. */
export class RspTarget implements QemuTarget, Debuggee {
  readonly info: TargetInfo;
  readonly monitor: QemuMonitor | null;
  /** The controls: breakpoints, steps, runs, interrupts (see {@link GdbstubControl}). */
  readonly control: GdbstubControl;
  /** The per-stop cache: frames, registers and the memory map of the current stop. */
  protected readonly cache: FrameCache;
  /** Who this is, in messages: "the gdbstub at 127.0.0.1:1234". */
  protected readonly peer: string;
  private readonly window: number;
  private resume: boolean;
  /** Resolves to the PhyMemMode found before this target switched it on. */
  private physical: Promise<boolean> | null = null;
  private features: Promise<CpuFeatures> | null = null;
  private closing: Promise<void> | null = null;

  /** Connects to the gdbstub at `endpoint` (see {@link connectGdbstub}) and wraps it. */
  static async open(endpoint: RspEndpoint, options: RspTargetOptions & LiveTimeouts = {}): Promise<RspTarget> {
    return new RspTarget(await connectGdbstub(endpoint, options), options);
  }

  /** Wraps a connected client; the target owns it from then on. */
  constructor(
    readonly client: RspClient,
    options: RspTargetOptions = {},
  ) {
    this.peer = `the gdbstub at ${client.endpoint}`;
    this.monitor = options.monitor === undefined ? rspMonitor(client) : options.monitor;
    this.resume = options.resumeOnClose ?? stoppedByConnecting(client);
    this.window = Math.max(1, options.window ?? 128);
    this.cache = new FrameCache(options.cacheFrames);
    this.info = { kind: 'gdb', description: options.description ?? `QEMU gdbstub at ${client.endpoint}` };
    this.control = new GdbstubControl(this, options.breakpoints);
    // A stop this client did not ask for: the guest ran behind its back (a QMP `cont`, say).
    client.on('stop', () => this.cache.drop());
  }

  /** Whether closing resumes the guest (it was running when this target connected). */
  get resumesOnClose(): boolean {
    return this.resume;
  }

  /** Changes what closing does: true detaches and resumes the guest, false leaves it stopped. */
  set resumesOnClose(value: boolean) {
    this.resume = value;
  }

  /** The registers of this stop: one `g`, and `info registers` through the monitor for what `g` lacks. */
  async cpuState(): Promise<CpuState> {
    this.checkOpen();
    try {
      return structuredClone(await this.cache.memo('cpu', () => this.readCpu()));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** MAXPHYADDR and 1 GiB page support from the CPU's QOM properties; empty when there is no QEMU monitor. */
  async cpuFeatures(): Promise<CpuFeatures> {
    this.checkOpen();
    const monitor = this.monitor;
    this.features ??= monitor ? cpuFeatures(monitor).catch((e: unknown) => (e instanceof HmpError ? {} : Promise.reject(e))) : Promise.resolve({});
    try {
      return { ...(await this.features) };
    } catch (e) {
      this.features = null;
      throw this.failure(e);
    }
  }

  /** RAM and ROM from `info mtree -f`, or null without a QEMU monitor. */
  async ram(): Promise<RamRange[] | null> {
    this.checkOpen();
    try {
      const r = await this.readable();
      return r && r.map((x) => ({ ...x }));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** The guest-physical ranges the CPU sees (`info mtree -f`), or null without a QEMU monitor. */
  async memoryMap(): Promise<FlatRange[] | null> {
    this.checkOpen();
    try {
      const m = await this.flatRanges();
      return m && m.map((x) => ({ ...x }));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** The frames at `pas`: held ones from this stop's cache, the others in one pipelined round. */
  async frames(pas: readonly number[]): Promise<FrameData[]> {
    this.checkOpen();
    try {
      return await this.cache.frames(pas, (missing) => this.readFrames(missing));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** `length` bytes at `pa`; TargetError E_UNREADABLE unless they lie in RAM or ROM (when QEMU says where that is). */
  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    this.checkOpen();
    try {
      const ram = await this.readable();
      if (ram && !covers(ram, pa, BigInt(length))) {
        throw new TargetError('E_UNREADABLE', `physical 0x${pa.toString(16)}+0x${length.toString(16)} is not RAM or ROM of this guest (${rangesText(ram)})`);
      }
      await this.physicalMode();
      return await this.client.readMemory(pa, length);
    } catch (e) {
      throw this.failure(e);
    }
  }

  // ---- control: each drops what the cache holds ----

  /** Writes guest-physical memory (`M` in PhyMemMode). */
  async writePhysical(pa: bigint, data: Uint8Array): Promise<void> {
    this.checkOpen();
    this.cache.drop();
    try {
      await this.physicalMode();
      await this.client.writeMemory(pa, data);
    } catch (e) {
      throw this.failure(e);
    } finally {
      this.cache.drop();
    }
  }

  /** Writes a register by its target.xml name (`P`, full width). */
  async writeRegister(name: string, value: bigint): Promise<void> {
    this.checkOpen();
    this.cache.drop();
    try {
      await this.client.writeRegister(name, value);
    } catch (e) {
      throw this.failure(e);
    } finally {
      this.cache.drop();
    }
  }

  /**
   * Where the guest stands, as a linear address (see {@link linearIp}: CS×16+IP in real mode), from
   * one `g`: where breakpoints sit and code is read.
   */
  async linearRip(): Promise<bigint> {
    const r = await this.client.readRegisters();
    return linearIp({ rip: r.get('rip') ?? r.get('eip') ?? 0n, cr0: r.get('cr0') ?? 1n, cs: { selector: Number(r.get('cs') ?? 0n) } });
  }

  /** Executes one instruction and resolves with the stop reply. */
  async step(options: RequestOptions = {}): Promise<StopReply> {
    this.checkOpen();
    this.cache.drop();
    try {
      return await this.client.step(options);
    } catch (e) {
      throw this.failure(e);
    } finally {
      this.cache.drop();
    }
  }

  /** Resumes the guest and resolves with the stop reply that ends the run (no time limit unless given). */
  async cont(options: RequestOptions = {}): Promise<StopReply> {
    this.checkOpen();
    this.cache.drop();
    try {
      return await this.client.cont(options);
    } catch (e) {
      throw this.failure(e);
    } finally {
      this.cache.drop();
    }
  }

  /**
   * Leaves the guest as it was found and closes: PhyMemMode back to its old value, then `D` (the
   * guest resumes) when it was running, else the socket closed without `D` (it stays stopped). A
   * connection already lost is not an error here; closing twice is harmless.
   */
  close(): Promise<void> {
    this.closing ??= this.release();
    return this.closing;
  }

  /** What {@link close} does; subclasses add what they own. */
  protected async release(): Promise<void> {
    try {
      if (this.client.isClosed) return;
      const was = this.physical ? await this.physical.catch(() => true) : true;
      if (this.resume) {
        await this.client.detach();
      } else if (!was) {
        await this.client.setPhysicalMemoryMode(false);
      }
    } catch (e) {
      if (!isConnectionLost(e)) throw liveError(e, this.peer, 'use');
    } finally {
      await this.client.close();
    }
  }

  /** The error to throw for `e`: a TargetError for errors of the wire (see `liveErrors.ts`). */
  protected failure(e: unknown): unknown {
    return liveError(e, this.peer, 'use');
  }

  protected checkOpen(): void {
    if (this.closing) throw new TargetError('E_LOST', `${this.peer} is closed`);
  }

  private async readCpu(): Promise<CpuState> {
    const [regs, info] = await Promise.all([this.client.readRegisters(), this.monitorRegisters()]);
    return cpuFromGdbRegisters(regs, info, this.monitor?.label ?? null);
  }

  /** `info registers` through the monitor; null when there is none (a stub that is not QEMU). */
  private async monitorRegisters(): Promise<InfoRegisters | null> {
    if (!this.monitor) return null;
    try {
      return await infoRegisters(this.monitor);
    } catch (e) {
      if (e instanceof HmpError && e.code === 'E_HMP_UNKNOWN_COMMAND') return null;
      throw e;
    }
  }

  private flatRanges(): Promise<FlatRange[] | null> {
    const monitor = this.monitor;
    if (!monitor) return Promise.resolve(null);
    return this.cache.memo('mtree', () =>
      memoryMap(monitor).catch((e: unknown) => (e instanceof HmpError && e.code === 'E_HMP_UNKNOWN_COMMAND' ? null : Promise.reject(e))),
    );
  }

  private async readable(): Promise<RamRange[] | null> {
    const m = await this.flatRanges();
    return m && readableRanges(m);
  }

  /** Switches `m`/`M` to physical addresses once; resolves with the mode found before. */
  private physicalMode(): Promise<boolean> {
    if (!this.physical) {
      const p = (async () => {
        let was: boolean;
        try {
          was = await this.client.physicalMemoryMode();
        } catch (e) {
          if (e instanceof RspError && e.code === 'E_UNSUPPORTED') {
            throw new TargetError('E_UNREADABLE', `${this.peer} cannot read physical memory: it has no Qqemu.PhyMemMode (it is not QEMU); use --qmp`);
          }
          throw e;
        }
        if (!was) await this.client.setPhysicalMemoryMode(true);
        return was;
      })();
      this.physical = p;
      p.catch(() => {
        if (this.physical === p) this.physical = null;
      });
    }
    return this.physical;
  }

  private async readFrames(pas: readonly number[]): Promise<FrameData[]> {
    const ram = await this.readable();
    await this.physicalMode();
    const out: FrameData[] = pas.map(() => null);
    const wanted = pas.map((_, i) => i).filter((i) => !ram || covers(ram, BigInt(pas[i]!), 1n));
    const perFrame = Math.min(2, this.window);
    await pipelined(wanted, Math.max(1, Math.floor(this.window / perFrame)), async (i) => {
      const bytes = await this.client.readMemory(BigInt(pas[i]!), FRAME_SIZE, { window: perFrame });
      out[i] = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
    return out;
  }
}

/** How a gdbstub's breakpoints go in: `Z0`, or `Z1` where `Z0` would patch guest memory. */
export type BreakpointKind = 'software' | 'hardware';

/** How often a step that left RIP where it was is tried again (QEMU-FACTS §7: a rare empty step). */
const EMPTY_STEP_RETRIES = 3;

/** The Stop a stop reply means (QEMU-FACTS §2.5); `stepping` says whether it ends a single step. */
export function stopOfReply(reply: StopReply, stepping: boolean): Stop {
  if (reply.kind !== 'stopped') {
    return reply.kind === 'exited' ? { cause: 'exited', signal: null, exitCode: reply.code } : { cause: 'exited', signal: reply.code };
  }
  if (reply.signal === GdbSignal.TRAP) {
    if (reply.watch) return { cause: 'watchpoint', signal: reply.signal, watch: { kind: reply.watch.kind, address: reply.watch.address } };
    return { cause: stepping ? 'step' : 'breakpoint', signal: reply.signal };
  }
  if (reply.signal === GdbSignal.QUIT) return { cause: 'shutdown', signal: reply.signal };
  // SIGINT, and what else a stub may report (KVM's internal error comes as SIGABRT): the guest stands still.
  return { cause: 'interrupted', signal: reply.signal };
}

/** The controls of `target`: its `control` member (one per target: it remembers the breakpoints it inserted). */
export function gdbstubControl(target: RspTarget): GdbstubControl {
  return target.control;
}

/**
 * The controls of a gdbstub target. Breakpoints are software ones (`Z0`, which QEMU's TCG matches on
 * the PC without touching memory) unless the monitor says KVM runs the guest (`info kvm`): there `Z0`
 * writes 0xcc into guest memory, so `Z1` (four at most) is used, and since KVM does not move past a
 * hardware breakpoint at RIP, a step or a run from one removes it, steps, and puts it back. A run
 * from one of its breakpoints steps off it first (QEMU would stop there again at once). Steps that
 * come back with RIP unmoved are tried again. A stub shared with GDB (the proxy) is given `hardware`,
 * so that pagewalk's breakpoints never meet GDB's `Z0` ones.
 */
export class GdbstubControl implements DebugControl {
  private kindValue: Promise<BreakpointKind> | null;
  private readonly inserted = new Set<bigint>();
  private runs = 0;
  /** cont() and step() calls under way: RIP is read before their run goes out. */
  private moves = 0;
  /** Set by an interrupt() that came before the run of the move under way went out. */
  private interruptAsked = false;

  /** Controls over `target`; `kind` fixes the breakpoint kind instead of asking the monitor. */
  constructor(
    private readonly target: RspTarget,
    kind?: BreakpointKind,
  ) {
    this.kindValue = kind === undefined ? null : Promise.resolve(kind);
  }

  get running(): boolean {
    return this.runs > 0 || this.target.client.running;
  }

  /** The kind of breakpoint this stub gets, asked once (unless fixed): 'hardware' under KVM. */
  breakpointKind(): Promise<BreakpointKind> {
    this.kindValue ??= (async () => {
      const monitor = this.target.monitor;
      if (!monitor) return 'software';
      try {
        return /kvm support: enabled/i.test(await monitor.hmp('info kvm')) ? 'hardware' : 'software';
      } catch (e) {
        if (e instanceof HmpError) return 'software';
        throw e;
      }
    })();
    return this.kindValue;
  }

  /** Inserts a breakpoint at `va`; TargetError E_UNREADABLE when the stub refuses it (KVM takes four). */
  async insertBreakpoint(va: bigint): Promise<void> {
    const kind = await this.guard(() => this.breakpointKind());
    await this.guard(() => this.target.client.insertBreakpoint(kind === 'software' ? BreakpointType.SOFTWARE : BreakpointType.HARDWARE, va, 1));
    this.inserted.add(va);
  }

  /** Removes the breakpoint at `va`. */
  async removeBreakpoint(va: bigint): Promise<void> {
    const kind = await this.guard(() => this.breakpointKind());
    this.inserted.delete(va);
    await this.guard(() => this.target.client.removeBreakpoint(kind === 'software' ? BreakpointType.SOFTWARE : BreakpointType.HARDWARE, va, 1));
  }

  /** One instruction; again (up to three times) when QEMU answers without moving RIP. */
  async step(): Promise<Stop> {
    return this.moving(async () => {
      const before = await this.rip();
      const lift = this.inserted.has(before) && (await this.breakpointKind()) === 'hardware';
      if (lift) await this.removeBreakpoint(before);
      try {
        let reply: StopReply | null = null;
        for (let i = 0; i <= EMPTY_STEP_RETRIES; i++) {
          reply = await this.run(() => this.target.step());
          if (reply.kind !== 'stopped' || reply.signal !== GdbSignal.TRAP || (await this.rip()) !== before) break;
        }
        return stopOfReply(reply!, true);
      } finally {
        if (lift && !this.target.client.isClosed) await this.insertBreakpoint(before);
      }
    });
  }

  /** Runs until a stop; off a breakpoint of its own first (a step), and a step onto another one is that breakpoint's stop. */
  async cont(): Promise<Stop> {
    return this.moving(async () => {
      if (this.inserted.has(await this.rip())) {
        const s = await this.step();
        if (s.cause !== 'step') return s;
        if (this.inserted.has(await this.rip())) return { cause: 'breakpoint', signal: GdbSignal.TRAP };
      }
      return stopOfReply(await this.run(() => this.target.cont()), false);
    });
  }

  /**
   * Stops a run; does nothing when the guest stands still. Asked while a cont() or step() is still
   * reading RIP, it stops the run that follows as soon as it goes out.
   */
  async interrupt(): Promise<void> {
    if (this.target.client.running) await this.guard(() => this.target.client.interrupt());
    else if (this.moves > 0) this.interruptAsked = true;
  }

  /** Writes a register by its target.xml name (see {@link RspTarget.writeRegister}). */
  async writeRegister(name: string, value: bigint): Promise<void> {
    await this.target.writeRegister(name, value);
  }

  /** Stops that did not end a run of this control's own, and exits outside one. */
  onUnsolicitedStop(listener: (stop: Stop) => void): () => void {
    const client = this.target.client;
    const onStop = (s: StopReply): void => listener(stopOfReply(s, false));
    const onExit = (s: StopReply): void => {
      if (this.runs === 0) listener(stopOfReply(s, false));
    };
    client.on('stop', onStop);
    client.on('exit', onExit);
    return () => {
      client.off('stop', onStop);
      client.off('exit', onExit);
    };
  }

  private async moving<T>(fn: () => Promise<T>): Promise<T> {
    this.moves++;
    try {
      return await fn();
    } finally {
      if (--this.moves === 0) this.interruptAsked = false;
    }
  }

  /** Sends one run (its packet goes out at once) and waits for its stop; an interrupt asked for meanwhile is sent now. */
  private async run(fn: () => Promise<StopReply>): Promise<StopReply> {
    this.runs++;
    try {
      const reply = fn();
      if (this.interruptAsked) {
        this.interruptAsked = false;
        void reply.catch(() => undefined);
        await this.interrupt();
      }
      return await reply;
    } finally {
      this.runs--;
    }
  }

  /** RIP from one `g` (which also brings KVM's register cache up to date). */
  private async rip(): Promise<bigint> {
    return this.guard(() => this.target.linearRip());
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw liveError(e, `the gdbstub at ${this.target.client.endpoint}`, 'use');
    }
  }
}
