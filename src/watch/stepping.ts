/**
 * Single-stepping until an instruction of interest is next: what the CR3 watch falls back to where
 * no site can be found. Each step decodes the instruction at RIP (through the tables, with the
 * frames read once and kept for the whole run), and a HLT is run over with a breakpoint after it
 * rather than stepped (a step of HLT may wait for an interrupt that never comes). It costs a step
 * and a register read per instruction; the steps per second are measured and reported.
 */
import { runAsync, type AsyncPhysMemory, type FrameData } from '../paging/memory.js';
import type { PagingContext } from '../paging/mode.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import type { Target } from '../target/target.js';
import { decodeInstruction, readCodeTask, type GuestInstruction } from './code.js';
import { quickRip } from './driven.js';

/** How single-stepping ended. */
export type StepOutcome =
  /** The instruction `wanted` picked is next (not executed). */
  | { kind: 'found'; instruction: GuestInstruction }
  /** The guest stopped otherwise (a shutdown, an interrupt). */
  | { kind: 'stop'; stop: Stop }
  /** The bound was reached. */
  | { kind: 'limit' }
  /** The signal was aborted. */
  | { kind: 'aborted' };

/** What a run of single steps did and cost. */
export interface StepRun {
  outcome: StepOutcome;
  steps: number;
  ms: number;
  perSecond: number;
}

/** Physical memory read once per frame: code and tables do not change under a single-stepping watch. */
function remembering(mem: AsyncPhysMemory): AsyncPhysMemory {
  const kept = new Map<number, FrameData>();
  return {
    async frames(pas) {
      const missing = [...new Set(pas.filter((p) => !kept.has(p)))];
      if (missing.length > 0) (await mem.frames(missing)).forEach((f, i) => kept.set(missing[i]!, f));
      return pas.map((p) => kept.get(p) ?? null);
    },
  };
}

/**
 * Steps the guest until `wanted` says yes to the instruction at RIP, at most `maxSteps` times.
 * `ctx` is the address space it runs in (CR3 does not change before a MOV to CR3 does).
 */
export async function stepUntil(
  target: Target,
  control: DebugControl,
  ctx: PagingContext,
  bits: 16 | 32 | 64,
  wanted: (ins: GuestInstruction) => boolean,
  opts: { maxSteps: number; signal?: AbortSignal; user?: boolean },
): Promise<StepRun> {
  const mem = remembering(target);
  const t0 = performance.now();
  let steps = 0;
  const done = (outcome: StepOutcome): StepRun => {
    const ms = performance.now() - t0;
    return { outcome, steps, ms, perSecond: ms > 0 ? Math.round((steps * 1000) / ms) : 0 };
  };
  for (;;) {
    if (opts.signal?.aborted) return done({ kind: 'aborted' });
    const rip = await quickRip(target);
    const ins = decodeInstruction(await runAsync(readCodeTask(ctx, rip, opts.user ?? false), mem), bits, rip);
    if (ins && wanted(ins)) return done({ kind: 'found', instruction: ins });
    if (steps >= opts.maxSteps) return done({ kind: 'limit' });
    let stop: Stop;
    if (ins?.halts) {
      const after = rip + BigInt(ins.length);
      await control.insertBreakpoint(after);
      try {
        stop = await control.cont();
      } finally {
        await control.removeBreakpoint(after);
      }
      if (stop.cause === 'breakpoint') stop = { ...stop, cause: 'step' };
    } else {
      stop = await control.step();
    }
    steps++;
    if (stop.cause !== 'step') return done({ kind: 'stop', stop });
  }
}
