/**
 * watch-cr3: stop before every MOV to CR3 and say what it will do.
 *
 * The sites of the current address space are found (`sites.ts`, or the ELF's code) and broken on.
 * At a hit the instruction is decoded for its source register, the value it moves taken apart (PCID,
 * the no-flush bit), and the pre-flight run on the new tables with RIP after the MOV; the problems
 * get their hints (`faults/diagnose.ts`) and the switch its losses (what the old tables map that the
 * new ones do not). The event goes out while the guest still stands on the MOV. Then, unless the
 * watch stops there (`count`, `stopOn`), it steps over the MOV, checks CR3 holds what was predicted,
 * finds the sites of the new address space and runs on. Where there is no site to break on it
 * single-steps, with a bound, and says so. A triple fault on the way is explained from the state
 * QEMU keeps. However it ends, the breakpoints are removed and the guest is left stopped.
 */
import { diagnoseAsync, hintKey, idtHint, type AccessRole, type Hint } from '../faults/diagnose.js';
import { hex } from '../paging/addr.js';
import { cpl, linearIp, type CpuState } from '../paging/cpu.js';
import { diffRangesAsync } from '../paging/diff.js';
import type { MapRange } from '../paging/map.js';
import { runAsync } from '../paging/memory.js';
import { cr3Root, pagingContext, withCr3, type PagingContext } from '../paging/mode.js';
import { preflightAsync, type PreflightResult } from '../paging/preflight.js';
import { walkTask } from '../paging/walk.js';
import type { DebugControl } from '../target/debuggee.js';
import type { Target, TargetInfo } from '../target/target.js';
import { codeBits, decodeInstruction, readCodeTask, type GuestInstruction } from './code.js';
import { cr3Write, type Cr3Write } from './cr3Value.js';
import { guestRunState, requireControl } from './driven.js';
import { elfSites, type CodeSegment } from './elfCode.js';
import { MAX_LOST, type Cr3WriteEvent, type HintGroup, type WatchEnd } from './events.js';
import { GuestWatch, type GuestWatchOptions } from './guestWatch.js';
import { scanSites, withoutFirmwareCr0, type CodeSite, type SiteKind } from './sites.js';
import { stepUntil } from './stepping.js';

/** Options of {@link watchCr3}. */
export interface Cr3WatchOptions extends GuestWatchOptions {
  /** Stop after this many CR3 writes, standing on the last one. */
  count?: number;
  /** Stop before a write whose verdict is not safe ('danger'), or before every one ('every'). */
  stopOn?: 'danger' | 'every' | null;
  /** The kernel's executable segments (--elf): sites come from there too. */
  elf?: readonly CodeSegment[] | null;
  /** Physical bytes to scan per address space (see `sites.ts`). */
  scanBudget?: number;
  /** Single steps at most, where no site can be found (default {@link DEFAULT_MAX_STEPS}). */
  maxSteps?: number;
  /**
   * The `mov cr3` a previous watch stopped before and reported (its RIP): when the guest still stands
   * there, this watch executes it without reporting it again, as a debugger continues from a breakpoint.
   */
  reported?: bigint | null;
}

/** How a watch went. */
export interface WatchResult {
  end: WatchEnd;
  /** CR3 writes seen. */
  writes: number;
  /** Those whose verdict was not safe. */
  dangerous: number;
}

/** The single-step bound when nothing says otherwise. */
export const DEFAULT_MAX_STEPS = 200_000;

/**
 * Why CR3 is not what a `mov cr3` at `rip` should have loaded, RIP being `after` the step. QEMU 7.2's
 * TCG checks the whole value, bit 63 included, against MAXPHYADDR, and on a no-flush write (legal
 * with CR4.PCIDE=1) stalls on the instruction without raising anything (observed; fixed upstream).
 */
export function mismatchReason(write: Cr3Write, rip: bigint, after: bigint, kind: TargetInfo['kind']): string {
  if (after !== rip) return `RIP is now ${hex(after)}: the MOV faulted?`;
  if (write.noFlush && (kind === 'gdb' || kind === 'qmp')) {
    return (
      "the MOV did not complete: QEMU 7.2's TCG takes bit 63 (the PCID no-flush bit) for an address bit above MAXPHYADDR " +
      'and stalls on the instruction without an exception (a QEMU bug, fixed in later versions); real CPUs accept it. ' +
      'Under this QEMU, load CR3 without bit 63'
    );
  }
  return 'the MOV did not complete: RIP has not moved';
}

/** Which diagnosis a pre-flight problem gets. */
export function roleOf(what: string): AccessRole {
  if (what === 'next-instruction' || what.startsWith('handler')) return 'fetch';
  if (what === 'stack' || what.startsWith('stack')) return 'stack';
  if (['gdt', 'idt', 'tss'].includes(what) || what.startsWith('gate') || what.startsWith('tss')) return 'system';
  return 'data';
}

/**
 * The hints of a pre-flight: for every problem with a walk, and for the next instruction (code that
 * reads as zeros through the new tables and as something else through the old ones).
 */
export async function preflightHints(
  target: Target,
  pre: PreflightResult,
  ctx: PagingContext,
  before: PagingContext | null,
  cpu: CpuState,
  ram: readonly { start: bigint; end: bigint }[] | null,
): Promise<HintGroup[]> {
  const groups: HintGroup[] = [];
  const seen = new Set<string>();
  const add = (what: string, va: bigint, hints: Hint[]): void => {
    const fresh = hints.filter((h) => !seen.has(hintKey(h)));
    fresh.forEach((h) => seen.add(hintKey(h)));
    if (fresh.length > 0) groups.push({ what, va, hints: fresh });
  };
  for (const p of pre.problems) {
    if (!p.walk) continue;
    add(p.what, p.va, await diagnoseAsync(target, { ctx: withCr3(ctx, p.walk.cr3), walk: p.walk, role: roleOf(p.what), rsp: cpu.rsp, before, ram }));
  }
  const delivery = pre.problems.find((p) => p.what === 'idt' || p.what.startsWith('gate'));
  const noIdt = delivery && cpu.idtr ? idtHint(cpu.idtr) : null;
  if (delivery && noIdt) add(delivery.what, delivery.va, [noIdt]);
  if (!pre.problems.some((p) => p.what === 'next-instruction')) {
    const w = await runAsync(walkTask(ctx, cpu.rip, { kind: 'exec', user: cpl(cpu) === 3 }), target);
    if (!w.fault) add('next-instruction', cpu.rip, await diagnoseAsync(target, { ctx, walk: w, role: 'fetch', before, ram }));
  }
  return groups;
}

/** What the old tables map and the new ones do not, clipped to each difference. */
export async function lostRanges(target: Target, now: PagingContext, before: PagingContext): Promise<{ lost: MapRange[]; more: number }> {
  const lost: MapRange[] = [];
  let more = 0;
  if (now.cr3Reserved !== 0n) return { lost, more };
  for await (const d of diffRangesAsync(target, now, before)) {
    if (d.kind !== 'removed' || !d.before) continue;
    if (lost.length >= MAX_LOST) more++;
    else lost.push({ ...d.before, va: d.va, size: d.size, pa: d.before.pa + (d.va - d.before.va) });
  }
  return { lost, more };
}

/** Watches `target` for CR3 writes (see the file comment). Throws WatchError when it cannot be driven. */
export async function watchCr3(target: Target, options: Cr3WatchOptions): Promise<WatchResult> {
  return new Cr3Watch(target, requireControl(target, 'watch-cr3'), options).run();
}

class Cr3Watch extends GuestWatch {
  private readonly sitesByRoot = new Map<string, CodeSite[]>();
  private readonly elf: CodeSite[] = [];
  private writes = 0;
  private dangerous = 0;
  private readonly maxSteps: number;
  protected readonly stoppedByOthers = 'the guest was stopped by someone else (a monitor `stop`?): watch ended, the guest is left stopped';

  constructor(
    target: Target,
    control: DebugControl,
    private readonly o: Cr3WatchOptions,
  ) {
    super(target, control, o);
    this.maxSteps = o.maxSteps ?? DEFAULT_MAX_STEPS;
  }

  async run(): Promise<WatchResult> {
    const end = await this.watch();
    return { end, writes: this.writes, dangerous: this.dangerous };
  }

  protected async loop(): Promise<WatchEnd> {
    if (this.control.running) await this.control.interrupt();
    if ((await guestRunState(this.target)) === 'shutdown') return this.shutdown();
    let cpu = await this.target.cpuState();
    let ctx = pagingContext(cpu, this.o.features);
    if (this.o.elf) this.elf.push(...elfSites(this.o.elf, codeBits(cpu)));
    await this.arm(ctx, cpu);
    if (this.o.reported != null && linearIp(cpu) === this.o.reported && (await this.decodeAt(ctx, cpu))?.cr3Source) {
      const ended = await this.stepOver();
      if (ended) return ended;
      cpu = await this.target.cpuState();
      ctx = pagingContext(cpu, this.o.features);
      await this.arm(ctx, cpu);
    }
    for (;;) {
      if (this.o.signal?.aborted) return this.finish('interrupted', 'interrupted: the guest is left stopped where it is');
      // Run to the next MOV to CR3: on breakpoints, or step by step.
      let hit: { cpu: CpuState; ins: GuestInstruction; via: 'breakpoint' | 'single-step' } | null = null;
      if (this.bps.addresses.length > 0) {
        // Standing on a site already (the watch started there, or the last MOV was followed by another): no run.
        const here = this.bps.has(linearIp(cpu)) ? await this.decodeAt(ctx, cpu) : null;
        if (here?.cr3Source) {
          hit = { cpu, ins: here, via: 'breakpoint' };
        } else {
          // Standing on a MOV to CR0 (one of ours): step over it below; else run to the next site.
          let ins = here?.cr0Write ? here : null;
          if (!ins) {
            const ended = await this.ended(await this.control.cont());
            if (ended) return ended;
            cpu = await this.target.cpuState();
            ins = await this.decodeAt(ctx, cpu);
          }
          if (ins?.cr0Write) {
            // Paging may be turned on here: the code the sites were found in moves to its virtual addresses.
            const ended = await this.stepOver();
            if (ended) return ended;
            cpu = await this.target.cpuState();
            const next = pagingContext(cpu, this.o.features);
            if (next.mode !== ctx.mode) await this.arm(next, cpu);
            ctx = next;
            continue;
          }
          if (!ins?.cr3Source) continue; // a site of another address space, where other code now sits
          hit = { cpu, ins, via: 'breakpoint' };
        }
      } else {
        const why = 'no mov-to-CR3 site in the executable mappings of the current address space' + (this.o.elf ? ' or in the ELF file' : '');
        await this.emit({ type: 'single-step', reason: why, maxSteps: this.maxSteps });
        const run = await stepUntil(this.target, this.control, ctx, codeBits(cpu), (i) => i.cr3Source !== null, { maxSteps: this.maxSteps, signal: this.o.signal, user: cpl(cpu) === 3 });
        await this.emit({ type: 'single-step-done', steps: run.steps, ms: run.ms, perSecond: run.perSecond });
        if (run.outcome.kind === 'aborted') return this.finish('interrupted', 'interrupted while single-stepping: the guest is left stopped where it is');
        if (run.outcome.kind === 'limit') {
          return this.finish('step-limit', `no CR3 write in ${run.steps} single steps (${run.perSecond} per second): the guest is left stopped where it is; --max-steps raises the bound`);
        }
        if (run.outcome.kind === 'stop') {
          const ended = await this.ended(run.outcome.stop);
          if (ended) return ended;
          continue;
        }
        cpu = await this.target.cpuState();
        const ins = await this.decodeAt(ctx, cpu);
        if (!ins?.cr3Source) continue;
        hit = { cpu, ins, via: 'single-step' };
      }

      const event = await this.report(ctx, hit.cpu, hit.ins, hit.via);
      const danger = event.preflight.verdict !== 'safe';
      if (this.o.stopOn === 'every') return this.finish('every', `stopped before the mov cr3 at ${hex(event.rip)} (--stop-on every): it has not run`);
      if (this.o.stopOn === 'danger' && danger) {
        return this.finish('danger', `stopped before the mov cr3 at ${hex(event.rip)}: ${event.preflight.verdict}; it has not run, the guest stands on it`);
      }
      if (this.o.count !== undefined && this.writes >= this.o.count) {
        return this.finish('count', `${this.writes} CR3 write${this.writes === 1 ? '' : 's'} seen (--count): stopped before the last one, which has not run`);
      }

      // Interrupted while the event was being reported: the MOV it warned about must not run.
      if (this.o.signal?.aborted) return this.finish('interrupted', `interrupted before the mov cr3 at ${hex(event.rip)} ran: the guest stands on it`);
      // Over the MOV, and on with the new address space.
      const ended = await this.stepOver();
      if (ended) return ended;
      cpu = await this.target.cpuState();
      if (cpu.cr3 !== event.write.cr3) {
        const reason = mismatchReason(event.write, event.rip, cpu.rip, this.target.info.kind);
        await this.emit({ type: 'cr3-mismatch', rip: event.rip, expected: event.write.cr3, actual: cpu.cr3, after: cpu.rip, reason });
        // Going on would meet the same MOV again, and again: stop, with the guest on it.
        if (cpu.rip === event.rip) return this.finish('stalled', `the mov cr3 at ${hex(event.rip)} does not complete: the guest stands on it`);
      }
      ctx = pagingContext(cpu, this.o.features);
      await this.arm(ctx, cpu);
    }
  }

  /** Finds (or remembers) the sites of the address space `ctx` and puts breakpoints on them. */
  private async arm(ctx: PagingContext, cpu: CpuState): Promise<void> {
    // Keyed by mode too: with paging off the sites are physical addresses, whatever CR3 holds.
    const root = `${ctx.mode}:${cr3Root(ctx.mode, ctx.cr3, ctx.maxPhyAddr)}`;
    let sites = this.sitesByRoot.get(root);
    let scan = null;
    if (!sites) {
      // With paging off, the MOV to CR0 that turns it on is a site too: the watch re-arms after it.
      const kinds: SiteKind[] = ctx.mode === 'none' ? ['mov-cr3', 'mov-cr0'] : ['mov-cr3'];
      scan = await scanSites(this.target, ctx, { kinds, bits: codeBits(cpu), rip: cpu.rip, ram: this.o.ram ?? null, budget: this.o.scanBudget });
      scan.sites = withoutFirmwareCr0(scan.sites);
      sites = scan.sites;
      this.sitesByRoot.set(root, sites);
    }
    // This space's sites first, then the ELF's, then those of spaces seen before (for a switch back).
    const wanted = [...new Set([...sites, ...this.elf, ...[...this.sitesByRoot.values()].flat()].map((s) => s.va))];
    const { armed, refused } = await this.bps.arm(wanted);
    if (scan) await this.emit({ type: 'sites', cr3: ctx.cr3, scan, elfSites: this.elf, armed, refused });
  }

  private async decodeAt(ctx: PagingContext, cpu: CpuState): Promise<GuestInstruction | null> {
    const ip = linearIp(cpu);
    const bytes = await runAsync(readCodeTask(ctx, ip, cpl(cpu) === 3), this.target);
    return decodeInstruction(bytes, codeBits(cpu), ip, cpu);
  }

  /** The event of the MOV to CR3 the guest stands on, computed and sent before it runs. */
  private async report(ctx: PagingContext, cpu: CpuState, ins: GuestInstruction, via: 'breakpoint' | 'single-step'): Promise<Cr3WriteEvent> {
    const write = cr3Write(ctx, ins.cr3Value ?? 0n);
    const next = withCr3(ctx, write.value);
    const after: CpuState = { ...cpu, rip: cpu.rip + BigInt(ins.length) };
    const preflight = await preflightAsync(this.target, { ctx: next, cpu: after });
    const hints = await preflightHints(this.target, preflight, next, ctx, after, this.o.ram ?? null);
    const { lost, more } = await lostRanges(this.target, next, ctx);
    this.writes++;
    if (preflight.verdict !== 'safe') this.dangerous++;
    const event: Cr3WriteEvent = {
      type: 'cr3-write',
      index: this.writes,
      rip: cpu.rip,
      instruction: ins.text,
      via,
      old: ctx.cr3,
      write,
      preflight,
      hints,
      lost,
      lostMore: more,
    };
    await this.emit(event);
    return event;
  }

  protected shutdownMessage(): string {
    return 'the guest is shut down (a triple fault): it stays as it is for a look; only a reset runs it again';
  }
}
