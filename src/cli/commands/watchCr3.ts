/**
 * `pagewalk watch-cr3 [--count N] [--stop-on danger|every]`: break before every `mov cr3`, pre-check
 * the new tables while the guest still stands on it, report (text, or JSON lines), step over, go on.
 * When it stops (at --count, before a dangerous write with --stop-on, on Ctrl-C or --timeout) the
 * guest is left stopped right there, the `mov cr3` not yet executed, breakpoints removed. Exit
 * status 1 when a write was not safe or the guest triple-faulted.
 *
 * The shared pieces of the watch commands' output live here too: the pre-flight's chain, problems
 * and hints, and what a watch says when it ends.
 */
import { Command, Option } from 'commander';
import type { Hint } from '../../faults/diagnose.js';
import { watchEventJson } from '../../json/watch.js';
import { hex, hexPad } from '../../paging/addr.js';
import type { PreflightResult } from '../../paging/preflight.js';
import { hintLines, preflightDetailLines, verdictWord } from '../../report/preflight.js';
import { RspTarget } from '../../target/rspTarget.js';
import type { Target } from '../../target/target.js';
import { watchCr3 } from '../../watch/cr3Watch.js';
import { underneath } from '../../watch/driven.js';
import { ElfCodeError, loadElfCode, type CodeSegment } from '../../watch/elfCode.js';
import { WatchError } from '../../watch/errors.js';
import type { Cr3WriteEvent, HintGroup, WatchEnd, WatchEvent } from '../../watch/events.js';
import { describeScan } from '../../watch/sites.js';
import type { RamRange } from '../../target/target.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { parseSmall } from '../numbers.js';
import { humanSize, type Output } from '../output.js';
import type { Session } from '../session.js';
import { renderPostMortem } from './postMortem.js';

/** Options the watch commands share. */
export interface WatchCommandOptions extends CommonOptions {
  count?: string;
  timeout?: string;
  scanBudget?: string;
  log?: string;
}

interface Cr3Options extends WatchCommandOptions {
  stopOn?: 'danger' | 'every';
  maxSteps?: string;
}

/** Adds the options both watch commands take. */
export function withWatchOptions(cmd: Command): Command {
  return cmd
    .option('--timeout <seconds>', 'stop watching after this long (the guest is left stopped where it is)')
    .option('--scan-budget <MiB>', 'physical memory to scan for sites per address space (default 64)')
    .option('--log <file>', "QEMU's -d int log (-D FILE): the post-mortem of a triple fault then shows the chain QEMU took");
}

/**
 * Rejects the register overrides: a watch reads the registers from the guest at every stop. --pkru
 * stays: QEMU reports no PKRU, so it is the only way to give protection keys their value.
 */
export function rejectOverrides(opts: CommonOptions, command: string): void {
  for (const k of ['cr0', 'cr3', 'cr4', 'efer', 'mode'] as const) {
    if (opts[k] !== undefined) throw new UsageError(`${command} reads the registers from the guest at every stop: --${k} does not apply`);
  }
}

/** The ELF's code for --elf, as bad input when it is not an ELF. */
export async function elfCodeOf(path: string | undefined): Promise<CodeSegment[] | null> {
  if (path === undefined) return null;
  try {
    return await loadElfCode(path);
  } catch (e) {
    if (e instanceof ElfCodeError) throw new UsageError(`--elf: ${e.message}`);
    throw e;
  }
}

/** Aborts on Ctrl-C (SIGINT) and after --timeout; `dispose` removes the handler and the timer. */
export function watchSignal(timeout: string | undefined): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onInt = (): void => ac.abort();
  process.once('SIGINT', onInt);
  const seconds = timeout === undefined ? null : parseSmall(timeout, '--timeout', 1, 86_400);
  const timer = seconds === null ? null : setTimeout(() => ac.abort(), seconds * 1000);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onInt);
      if (timer) clearTimeout(timer);
    },
  };
}

/** Makes closing leave the guest stopped (a watch ends with the guest standing where it stopped). */
export function leaveStopped(target: Target): void {
  const t = underneath(target);
  if (t instanceof RspTarget) t.resumesOnClose = false;
}

/** What a watch runs with besides its own options: --elf's code, --log, the target's RAM, and the signal that ends it. */
export interface WatchInputs {
  elf: CodeSegment[] | null;
  log: (() => AsyncIterable<string | Uint8Array>) | undefined;
  ram: RamRange[] | null;
  signal: AbortSignal;
}

/**
 * Runs a watch on the session's target: reads --elf and --log and the RAM, ends the watch on Ctrl-C
 * and --timeout, makes closing leave the guest stopped where the watch ends, and turns WatchError
 * into bad input.
 */
export async function runWatch<T>(s: Session, opts: WatchCommandOptions, watch: (w: WatchInputs) => Promise<T>): Promise<T> {
  const elf = await elfCodeOf(opts.elf);
  const log = await logReader(opts.log);
  const ram = await s.target.ram();
  const { signal, dispose } = watchSignal(opts.timeout);
  leaveStopped(s.target);
  try {
    return await watch({ elf, log, ram, signal });
  } catch (e) {
    throw asUsage(e);
  } finally {
    dispose();
  }
}

/** `--log FILE` as a stream factory (read when a post-mortem needs it). */
export async function logReader(path: string | undefined): Promise<(() => AsyncIterable<string | Uint8Array>) | undefined> {
  if (path === undefined) return undefined;
  const { access } = await import('node:fs/promises');
  try {
    await access(path);
  } catch {
    throw new UsageError(`--log: cannot read ${path}`);
  }
  const { createReadStream } = await import('node:fs');
  return () => createReadStream(path);
}

/** Hint lines, indented. */
export function renderHints(out: Output, hints: readonly Hint[], indent: string): void {
  for (const line of hintLines(out.c, hints, indent)) out.line(line);
}

/** The pre-flight's chain, problems (each with its hints) and what was not checked. */
export function renderPreflightDetails(out: Output, pre: PreflightResult, groups: readonly HintGroup[]): void {
  for (const line of preflightDetailLines(out.c, pre, groups)) out.line(line);
}

function renderCr3Write(out: Output, e: Cr3WriteEvent): void {
  const c = out.c;
  const w = e.write;
  const extra = [w.pcid !== null ? `PCID ${w.pcid}` : '', w.noFlush ? 'no flush (bit 63)' : ''].filter(Boolean).join(', ');
  out.line();
  out.line(
    c.bold(`CR3 write #${e.index} at ${hex(e.rip)} (${e.instruction}): ${hex(e.old)} -> ${hex(w.cr3)}`) + (extra ? ` [${extra}]` : '') + `  ${verdictWord(c, e.preflight.verdict)}`,
  );
  out.line(`  ${e.preflight.summary}`);
  renderPreflightDetails(out, e.preflight, e.hints);
  if (e.lost.length > 0) {
    const n = e.lost.length + e.lostMore;
    out.line(`  Lost by the switch: ${n} range${n === 1 ? '' : 's'} the old tables map and the new ones do not`);
    for (const r of e.lost.slice(0, 10)) out.line(`    ${hexPad(r.va)}  ${hexPad(r.va + r.size - 1n)}  ${humanSize(r.size)}`);
    if (n > 10) out.line(c.dim(`    ... and ${n - 10} more (see --json)`));
  }
}

/** Text for any watch event. */
export function renderWatchEvent(out: Output, e: WatchEvent): void {
  const c = out.c;
  switch (e.type) {
    case 'sites': {
      out.line(`${c.bold(`CR3 ${hex(e.cr3)}`)}: ${describeScan(e.scan)}`);
      if (e.elfSites.length > 0) out.line(`  and ${e.elfSites.length} in the ELF file`);
      if (e.armed.length > 0) out.line(c.dim(`  breakpoints at ${e.armed.map(hex).join(', ')}`));
      if (e.refused.length > 0) out.line(c.yellow(`  the target refused breakpoints at ${e.refused.map(hex).join(', ')} (KVM takes four)`));
      return;
    }
    case 'cr3-write':
      renderCr3Write(out, e);
      return;
    case 'cr3-mismatch':
      out.warn(`after the mov cr3 at ${hex(e.rip)}, CR3 is ${hex(e.actual)}, not the ${hex(e.expected)} predicted: ${e.reason}`);
      return;
    case 'single-step':
      out.line(c.yellow(`${e.reason}: single-stepping instead, at most ${e.maxSteps} instructions (each one a step and a register read)`));
      return;
    case 'single-step-done':
      out.line(c.dim(`  single-stepped ${e.steps} instruction${e.steps === 1 ? '' : 's'} in ${Math.round(e.ms)} ms: ${e.perSecond} per second`));
      return;
    case 'page-fault':
    case 'idt':
      return;
    case 'shutdown':
      out.line();
      renderPostMortem(out, e.postMortem);
      return;
    case 'stopped':
      out.line();
      out.line(c.bold(`Stopped: ${e.message}`) + (e.rip !== null ? c.dim(` (RIP ${hex(e.rip)})`) : ''));
      return;
  }
}

/** The exit status a watch ends with. */
export function watchStatus(end: WatchEnd, dangerous: boolean): number {
  return dangerous || end === 'danger' || end === 'shutdown' || end === 'stalled' ? EXIT.DANGER : EXIT.OK;
}

/** WatchError as bad input (it says what target would do). */
export function asUsage(e: unknown): unknown {
  return e instanceof WatchError ? new UsageError(e.message) : e;
}

/** Builds the `watch-cr3` command. */
export function watchCr3Command(run: CliRun): Command {
  return withWatchOptions(
    withTargetOptions(
      new Command('watch-cr3')
        .description('break before every mov cr3, pre-check the new tables while the guest stands on it, report, step over, go on')
        .option('--count <n>', 'stop after N CR3 writes, standing on the last one (not executed)')
        .addOption(new Option('--stop-on <when>', 'stop before a write that is not safe (danger) or before every write (every)').choices(['danger', 'every']))
        .option('--max-steps <n>', 'where no mov cr3 site can be found, single-step at most this many instructions (default 200000)'),
    ),
  ).action((opts: Cr3Options) =>
    inSession(run, opts, async (s, out) => {
      rejectOverrides(opts, 'watch-cr3');
      const count = opts.count === undefined ? undefined : parseSmall(opts.count, '--count', 1, 1_000_000_000);
      const maxSteps = opts.maxSteps === undefined ? undefined : parseSmall(opts.maxSteps, '--max-steps', 1, 1_000_000_000);
      const budget = opts.scanBudget === undefined ? undefined : parseSmall(opts.scanBudget, '--scan-budget', 1, 1 << 20) * (1 << 20);
      const r = await runWatch(s, opts, (w) =>
        watchCr3(s.target, {
          ...w,
          features: s.features,
          count,
          stopOn: opts.stopOn ?? null,
          scanBudget: budget,
          maxSteps,
          onEvent: (e) => (out.json ? out.jsonValue(watchEventJson(e), false) : renderWatchEvent(out, e)),
        }),
      );
      run.status = Math.max(run.status, watchStatus(r.end, r.dangerous > 0));
    }),
  );
}
