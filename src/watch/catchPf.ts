/**
 * catch-pf: break at the #PF handler and explain every page fault the guest takes.
 *
 * The handler is read from the #PF gate of the IDT (through the current tables), and broken on
 * together with the LIDT sites of the address space, so a kernel that loads its IDT later (or moves
 * it) is followed: at a LIDT the watch steps over it and reads the gate again; IDTR is also compared
 * at every stop. At the handler's first instruction the exception frame is read at RSP (64-bit:
 * error code, RIP, CS, RFLAGS, RSP, SS; legacy: error code, EIP, CS, EFLAGS, and ESP, SS on a
 * privilege change), CR2 is walked with the access the error code describes, and the fault is
 * explained: the code bit by bit, whether the tables agree, and what the code most likely did wrong.
 * A triple fault on the way is explained from the state QEMU keeps.
 */
import { compareFault } from '../faults/againstTables.js';
import { diagnoseAsync } from '../faults/diagnose.js';
import { decodeErrorCode } from '../faults/errorCode.js';
import { hex } from '../paging/addr.js';
import { linearIp, type CpuState } from '../paging/cpu.js';
import { decodeGate32, decodeGate64, decodeSegmentDescriptor } from '../paging/descriptors.js';
import { runAsync } from '../paging/memory.js';
import { pagingContext, type PagingContext, type PagingMode } from '../paging/mode.js';
import { readVirtualTask } from '../paging/virtRead.js';
import { walkTask } from '../paging/walk.js';
import type { DebugControl } from '../target/debuggee.js';
import type { Target } from '../target/target.js';
import { codeBits, decodeInstruction, readCodeTask } from './code.js';
import { guestRunState, requireControl } from './driven.js';
import { elfSites, type CodeSegment } from './elfCode.js';
import { WatchError } from './errors.js';
import type { PageFaultEvent, WatchEnd } from './events.js';
import { GuestWatch, type GuestWatchOptions } from './guestWatch.js';
import { scanSites, withoutFirmwareCr0, type CodeSite, type SiteKind } from './sites.js';

/** Options of {@link catchPageFaults}. */
export interface CatchPfOptions extends GuestWatchOptions {
  /** Stop after this many faults, at the handler's first instruction. */
  count?: number;
  elf?: readonly CodeSegment[] | null;
  scanBudget?: number;
}

/** How a catch went. */
export interface CatchResult {
  end: WatchEnd;
  faults: number;
}

const READ = { kind: 'read', user: false, implicit: true } as const;

/** The #PF handler's linear address from the IDT, or null when its gate is not there (beyond the limit, not present, unreadable). */
export async function pageFaultHandler(target: Target, ctx: PagingContext, cpu: CpuState): Promise<bigint | null> {
  const idtr = cpu.idtr;
  if (!idtr) return null;
  const long = ctx.mode === '4-level' || ctx.mode === '5-level';
  const size = long ? 16 : 8;
  if (14 * size + size - 1 > idtr.limit) return null;
  const read = await runAsync(readVirtualTask(ctx, idtr.base + BigInt(14 * size), size, READ), target);
  if (!read.ok) return null;
  const gate = long ? decodeGate64(read.bytes) : decodeGate32(read.bytes);
  if (!gate.present || gate.kind === 'invalid' || gate.kind === 'task') return null;
  if (long) return gate.offset;
  // Legacy: the handler is at the code segment's base plus the gate's offset.
  let base = 0n;
  if (cpu.gdtr && (gate.selector & 4) === 0) {
    const d = await runAsync(readVirtualTask(ctx, cpu.gdtr.base + BigInt(gate.selector & ~7), 8, READ), target);
    if (d.ok) base = decodeSegmentDescriptor(new DataView(d.bytes.buffer, d.bytes.byteOffset).getBigUint64(0, true)).base;
  }
  return (base + gate.offset) & 0xffffffffn;
}

/** Catches page faults at the handler (see the file comment). Throws WatchError when the target cannot be driven or reports no IDTR. */
export async function catchPageFaults(target: Target, options: CatchPfOptions): Promise<CatchResult> {
  return new PfCatch(target, requireControl(target, 'catch-pf'), options).run();
}

class PfCatch extends GuestWatch {
  private faults = 0;
  private handler: bigint | null = null;
  private idtKey = '';
  private shown = '';
  /** The LIDT sites (and, with paging off, MOV-to-CR0 sites) the catch breaks on besides the handler. */
  private sites: CodeSite[] = [];
  private scannedMode: PagingMode | null = null;
  protected readonly stoppedByOthers = 'the guest was stopped by someone else: catch ended, the guest is left stopped';

  constructor(
    target: Target,
    control: DebugControl,
    private readonly o: CatchPfOptions,
  ) {
    super(target, control, o);
  }

  async run(): Promise<CatchResult> {
    const end = await this.watch();
    return { end, faults: this.faults };
  }

  protected async loop(): Promise<WatchEnd> {
    if (this.control.running) await this.control.interrupt();
    if ((await guestRunState(this.target)) === 'shutdown') return this.shutdown();
    let cpu = await this.target.cpuState();
    if (!cpu.idtr) throw new WatchError('E_NO_IDT', `${this.target.info.description} does not report IDTR, so the #PF handler cannot be found (with --gdb, QEMU's monitor gives it: is it QEMU?)`);
    await this.scan(cpu);
    await this.followIdt(cpu, true);
    for (;;) {
      if (this.o.signal?.aborted) return this.finish('interrupted', 'interrupted: the guest is left stopped where it is');
      const stop = await this.control.cont();
      const ended = await this.ended(stop);
      if (ended) return ended;
      cpu = await this.target.cpuState();
      const ctxNow = pagingContext(cpu, this.o.features);
      await this.followIdt(cpu, false);
      if (this.handler !== null && cpu.rip === this.handler) {
        await this.caught(ctxNow, cpu);
        if (this.o.count !== undefined && this.faults >= this.o.count) {
          return this.finish('count', `${this.faults} page fault${this.faults === 1 ? '' : 's'} caught (--count): stopped at the #PF handler's first instruction`);
        }
        continue;
      }
      const ip = linearIp(cpu);
      const ins = decodeInstruction(await runAsync(readCodeTask(ctxNow, ip), this.target), codeBits(cpu), ip);
      if (ins?.lidt || ins?.cr0Write) {
        const over = await this.stepOver();
        if (over) return over;
        cpu = await this.target.cpuState();
      }
      // Paging turned on (or off): the code, the IDT and the sites are elsewhere now.
      if (pagingContext(cpu, this.o.features).mode !== this.scannedMode) await this.scan(cpu);
      await this.followIdt(cpu, false);
    }
  }

  private idtKeyOf(cpu: CpuState): string {
    return cpu.idtr ? `${cpu.idtr.base}:${cpu.idtr.limit}:${cpu.cr3}:${this.scannedMode}` : '';
  }

  /**
   * Finds the LIDTs of the current address space and, with paging off, the MOVs to CR0 that may turn
   * it on (the IDT's linear address means something else then).
   */
  private async scan(cpu: CpuState): Promise<void> {
    const ctx = pagingContext(cpu, this.o.features);
    const kinds: SiteKind[] = ctx.mode === 'none' ? ['lidt', 'mov-cr0'] : ['lidt'];
    const scan = await scanSites(this.target, ctx, { kinds, bits: codeBits(cpu), rip: cpu.rip, ram: this.o.ram ?? null, budget: this.o.scanBudget });
    this.sites = [...withoutFirmwareCr0(scan.sites), ...(this.o.elf ? elfSites(this.o.elf, codeBits(cpu), 'lidt') : [])];
    this.scannedMode = ctx.mode;
  }

  /** Reads the #PF gate again when IDTR, CR3 or the paging mode changed, and puts the breakpoints where they now belong. */
  private async followIdt(cpu: CpuState, first: boolean): Promise<void> {
    const key = this.idtKeyOf(cpu);
    if (!first && key === this.idtKey) return;
    this.idtKey = key;
    const handler = await pageFaultHandler(this.target, pagingContext(cpu, this.o.features), cpu);
    if (this.handler !== null && this.handler !== handler) await this.bps.remove(this.handler);
    this.handler = handler;
    await this.bps.arm([...(handler !== null ? [handler] : []), ...this.sites.map((s) => s.va)]);
    // Said again only when something the user sees changed (a CR3 switch re-reads the gate through the new tables).
    const shown = `${cpu.idtr!.base}:${cpu.idtr!.limit}:${handler}`;
    if (shown === this.shown) return;
    this.shown = shown;
    await this.emit({ type: 'idt', base: cpu.idtr!.base, limit: cpu.idtr!.limit, handler, lidtSites: this.sites.filter((x) => x.kind === 'lidt').length });
  }

  /** Explains the fault the guest is about to handle. */
  private async caught(ctx: PagingContext, cpu: CpuState): Promise<void> {
    const long = ctx.mode === '4-level' || ctx.mode === '5-level';
    const slot = long ? 8 : 4;
    // SS:RSP are in every 64-bit frame, and in a legacy one only when the fault came from an outer
    // ring: read them only then, since a frame at the top of its stack has nothing mapped above it.
    const readSlots = (from: number, n: number) => runAsync(readVirtualTask(ctx, cpu.rsp + BigInt(from * slot), slot * n, { kind: 'read', user: false }), this.target);
    const slots: bigint[] = [];
    const take = (r: Awaited<ReturnType<typeof readSlots>>, n: number): void => {
      const v = r.ok ? new DataView(r.bytes.buffer, r.bytes.byteOffset) : null;
      for (let i = 0; i < n; i++) slots.push(v === null ? 0n : long ? v.getBigUint64(i * 8, true) : BigInt(v.getUint32(i * 4, true)));
    };
    take(await readSlots(0, long ? 6 : 4), long ? 6 : 4);
    const at = (i: number): bigint => slots[i] ?? 0n;
    const errorCode = Number(at(0) & 0xffffffffn);
    const cs = Number(at(2) & 0xffffn);
    const withStack = long || (cs & 3) > ((cpu.cs?.selector ?? 0) & 3);
    if (withStack && !long) take(await readSlots(4, 2), 2);
    const frame = { rip: at(1), cs, rflags: at(3), rsp: withStack ? at(4) : null, ss: withStack ? Number(at(5) & 0xffffn) : null, at: cpu.rsp };
    const decoded = decodeErrorCode(errorCode);
    const walk = await runAsync(walkTask(ctx, cpu.cr2, { kind: decoded.access, user: decoded.user }), this.target);
    const comparison = compareFault(decoded, walk, frame.rip);
    const hints = walk.fault ? await diagnoseAsync(this.target, { ctx, walk, rsp: frame.rsp ?? undefined, ram: this.o.ram ?? null }) : [];
    this.faults++;
    const event: PageFaultEvent = { type: 'page-fault', index: this.faults, handler: cpu.rip, cr2: cpu.cr2, errorCode, decoded, frame, walk, comparison, hints };
    await this.emit(event);
  }

  protected shutdownMessage(): string {
    return `the guest is shut down (a triple fault) after ${this.faults} page fault${this.faults === 1 ? '' : 's'} caught: it stays as it is for a look`;
  }
}

/** One line for a caught fault: `#PF at CR2 X, error code 0x5 (...), RIP Y`. */
export function describeFault(e: PageFaultEvent): string {
  return `#PF at CR2 ${hex(e.cr2)}, error code ${hex(e.errorCode)} (${e.decoded.summary}), RIP ${hex(e.frame.rip)}`;
}
