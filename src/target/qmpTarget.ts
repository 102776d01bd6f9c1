/**
 * The QMP target (`--qmp PATH` or `--qmp HOST:PORT`): a QEMU reached through its QMP monitor only,
 * which works while GDB holds the gdbstub.
 *
 * Registers come from `info registers` (EFER, GDTR, IDTR and TR included), physical memory from
 * `xp` (a frame at a time) or `pmemsave` (runs of contiguous frames, when QEMU writes files this
 * process can read), the RAM layout from `info mtree -f`, MAXPHYADDR and 1 GiB pages from the CPU's
 * QOM properties. `info mem` is never used (under LA57 it takes seconds and prints nothing).
 *
 * QMP does not stop a running guest, and this target does not either: a user's GDB may be waiting on
 * it. A running guest is read as it runs (with a note); the per-stop cache is used only while it is stopped.
 */
import type { CpuState } from '../paging/cpu.js';
import { FRAME_SIZE, type FrameData } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';
import { QmpClient, type QmpEvent } from '../qmp/client.js';
import { HmpError } from '../qmp/errors.js';
import { QmpPhysicalMemory, type PhysicalMemoryOptions } from '../qmp/physical.js';
import { describeEndpoint, parseEndpoint, type QmpEndpoint } from '../qmp/transport.js';
import { FrameCache } from './frameCache.js';
import { cpuFromInfoRegisters } from './liveCpu.js';
import { liveError } from './liveErrors.js';
import { covers, rangesText, readableRanges, type FlatRange } from './mtree.js';
import { cpuFeatures, infoRegisters, memoryMap, qmpMonitor, type QemuMonitor } from './qemuMonitor.js';
import { DEFAULT_CONNECT_MS, DEFAULT_REQUEST_MS, type LiveTimeouts, type QemuTarget } from './qemuTarget.js';
import { TargetError, type RamRange, type TargetInfo } from './target.js';

/** What the user is told when the guest runs while QMP reads it. */
export const RUNNING_NOTE =
  'the guest is running: QMP reads it without stopping it, so registers and tables may change while pagewalk reads them (stop it first, e.g. `stop` in the monitor, for a consistent view)';

/** `query-status`, as far as pagewalk needs it. */
export interface RunState {
  status: string;
  running: boolean;
}

/** Events after which nothing read before can be trusted. */
const MOVING_EVENTS = new Set(['STOP', 'RESUME', 'RESET', 'SHUTDOWN', 'SUSPEND', 'WAKEUP', 'POWERDOWN']);

/**
 * Connects to QMP and negotiates. Throws TargetError: E_OPEN (no such socket, refused, or busy: no
 * greeting within `connectMs` because another client holds it), E_FORMAT (not QMP).
 */
export async function connectQmp(endpoint: string | QmpEndpoint, t: LiveTimeouts = {}): Promise<QmpClient> {
  const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  try {
    return await QmpClient.connect(ep, { timeoutMs: t.connectMs ?? DEFAULT_CONNECT_MS, requestTimeoutMs: t.requestMs ?? DEFAULT_REQUEST_MS });
  } catch (e) {
    throw liveError(e, `QMP at ${describeEndpoint(ep)}`, 'open');
  }
}

/** `query-status` of the VM. */
export async function runState(client: QmpClient): Promise<RunState> {
  const s = await client.execute<{ status?: unknown; running?: unknown }>('query-status');
  return { status: typeof s?.status === 'string' ? s.status : 'unknown', running: s?.running === true };
}

/** A QEMU as a target, over QMP. */
export class QmpTarget implements QemuTarget {
  readonly info: TargetInfo;
  readonly monitor: QemuMonitor;
  private readonly memory: QmpPhysicalMemory;
  private readonly cache = new FrameCache();
  private readonly peer: string;
  private running: boolean;
  private features: Promise<CpuFeatures> | null = null;
  private closing: Promise<void> | null = null;

  /** Connects to QMP at `endpoint` and wraps it; E_OPEN/E_FORMAT as {@link connectQmp}. */
  static async open(endpoint: string | QmpEndpoint, t: LiveTimeouts = {}): Promise<QmpTarget> {
    const client = await connectQmp(endpoint, t);
    try {
      return new QmpTarget(client, await runState(client));
    } catch (e) {
      await client.close();
      throw liveError(e, `QMP at ${describeEndpoint(client.endpoint)}`, 'open');
    }
  }

  /**
   * Wraps a negotiated client and the run state it reported; the target owns the client from then
   * on. `physical` tunes the reads (e.g. where `pmemsave` writes its files).
   */
  constructor(
    readonly client: QmpClient,
    state: RunState,
    physical: PhysicalMemoryOptions = {},
  ) {
    const where = describeEndpoint(client.endpoint);
    this.peer = `QMP at ${where}`;
    this.monitor = qmpMonitor(client);
    this.memory = new QmpPhysicalMemory(client, physical);
    this.running = state.running;
    this.info = { kind: 'qmp', description: `QEMU monitor (QMP) at ${where}` };
    client.on('event', (e) => this.onEvent(e));
  }

  /** Whether the guest runs (from `query-status`, then the STOP and RESUME events). */
  get guestRunning(): boolean {
    return this.running;
  }

  /** The registers from `info registers`, with a note when the guest runs. */
  async cpuState(): Promise<CpuState> {
    this.checkOpen();
    try {
      const cpu = await this.perStop('cpu', async () => cpuFromInfoRegisters(await infoRegisters(this.monitor)));
      const out = structuredClone(cpu);
      if (this.running) out.notes.push(RUNNING_NOTE);
      return out;
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** MAXPHYADDR and 1 GiB page support from the CPU's QOM properties, asked once. */
  async cpuFeatures(): Promise<CpuFeatures> {
    this.checkOpen();
    this.features ??= cpuFeatures(this.monitor).catch((e: unknown) => (e instanceof HmpError ? {} : Promise.reject(e)));
    try {
      return { ...(await this.features) };
    } catch (e) {
      this.features = null;
      throw this.failure(e);
    }
  }

  /** RAM and ROM from `info mtree -f`. */
  async ram(): Promise<RamRange[] | null> {
    this.checkOpen();
    try {
      return (await this.readable()).map((r) => ({ ...r }));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** The guest-physical ranges the CPU sees (`info mtree -f`). */
  async memoryMap(): Promise<FlatRange[]> {
    this.checkOpen();
    try {
      return (await this.flatRanges()).map((r) => ({ ...r }));
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** The frames at `pas`; null for those outside RAM and ROM. */
  async frames(pas: readonly number[]): Promise<FrameData[]> {
    this.checkOpen();
    try {
      const fetch = (missing: readonly number[]): Promise<FrameData[]> => this.readFrames(missing);
      return this.running ? await fetch(pas) : await this.cache.frames(pas, fetch);
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** `length` bytes at `pa` (xp, or pmemsave for bulk); TargetError E_UNREADABLE outside RAM and ROM. */
  async readPhysical(pa: bigint, length: number): Promise<Uint8Array> {
    this.checkOpen();
    try {
      const ram = await this.readable();
      if (!covers(ram, pa, BigInt(length))) {
        throw new TargetError('E_UNREADABLE', `physical 0x${pa.toString(16)}+0x${length.toString(16)} is not RAM or ROM of this guest (${rangesText(ram)})`);
      }
      return await this.memory.read(pa, length);
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** Closes QMP (the guest is left as it is: this target never stops or resumes it). Closing twice is harmless. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.memory.close();
      } finally {
        await this.client.close();
      }
    })();
    return this.closing;
  }

  private onEvent(e: QmpEvent): void {
    if (e.event === 'STOP') this.running = false;
    if (e.event === 'RESUME') this.running = true;
    if (MOVING_EVENTS.has(e.event)) this.cache.drop();
  }

  /** `compute` once per stop while the guest is stopped; every time while it runs. */
  private perStop<T>(key: string, compute: () => Promise<T>): Promise<T> {
    return this.running ? compute() : this.cache.memo(key, compute);
  }

  /** The memory layout, asked once per stop; while the guest runs, once until it stops (a layout changes far more rarely than memory). */
  private flatRanges(): Promise<FlatRange[]> {
    return this.cache.memo('mtree', () => memoryMap(this.monitor));
  }

  private async readable(): Promise<RamRange[]> {
    return readableRanges(await this.flatRanges());
  }

  /**
   * Reads frames: those outside RAM and ROM are null without asking; runs of contiguous frames go
   * in one read (pmemsave when local and at least two frames, else xp), single frames by xp.
   */
  private async readFrames(pas: readonly number[]): Promise<FrameData[]> {
    const ram = await this.readable();
    const out = new Map<number, FrameData>();
    const inside = [...new Set(pas)].filter((pa) => covers(ram, BigInt(pa), 1n)).sort((a, b) => a - b);
    const runs: number[][] = [];
    for (const pa of inside) {
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1]! + FRAME_SIZE === pa) run.push(pa);
      else runs.push([pa]);
    }
    for (const run of runs) {
      if (run.length === 1) {
        const [one] = await this.memory.frames(run);
        out.set(run[0]!, one ?? null);
        continue;
      }
      const bytes = await this.memory.read(BigInt(run[0]!), run.length * FRAME_SIZE);
      run.forEach((pa, i) => out.set(pa, new DataView(bytes.buffer, bytes.byteOffset + i * FRAME_SIZE, FRAME_SIZE)));
    }
    return pas.map((pa) => out.get(pa) ?? null);
  }

  private failure(e: unknown): unknown {
    return liveError(e, this.peer, 'use');
  }

  private checkOpen(): void {
    if (this.closing) throw new TargetError('E_LOST', `${this.peer} is closed`);
  }
}
