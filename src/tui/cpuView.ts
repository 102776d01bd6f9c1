/**
 * The CPU as the TUI shows it at a stop: the target's registers with the command line's overrides
 * on top, the CPU facts, the paging context, and what was assumed; read at every stop, through the
 * CLI's session builder, without closing the target when a read fails.
 */
import { sessionFor, type TargetOptions } from '../cli/session.js';
import type { CpuState } from '../paging/cpu.js';
import type { CpuFeatures, PagingContext } from '../paging/mode.js';
import type { Target } from '../target/target.js';

/** The CPU at one stop. */
export interface CpuView {
  cpu: CpuState;
  /** The registers as the target reported them (before overrides). */
  targetCpu: CpuState;
  features: CpuFeatures;
  ctx: PagingContext;
  notes: string[];
}

/** Reads the CPU of `target` and applies `o`; throws what the target throws (TargetError) and UsageError for bad overrides. */
export async function readCpuView(target: Target, o: TargetOptions): Promise<CpuView> {
  const s = await sessionFor(target, o, null, false);
  return { cpu: s.cpu, targetCpu: s.targetCpu, features: s.features, ctx: s.ctx, notes: s.notes };
}
