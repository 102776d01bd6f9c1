/**
 * Holding the page faults of a QEMU log against page tables (a dump, a live guest): each #PF's CR2
 * is walked in the CR3 the log shows (with the CR0/CR4/EFER of the same register dump), with the
 * access its error code describes, and compared with what the CPU reported. A task in the sans-I/O
 * style of `paging/memory.ts`: it yields frame requests and is driven by runSync or runAsync.
 */
import type { PagingTask } from '../paging/memory.js';
import { pagingContext, type CpuFeatures } from '../paging/mode.js';
import { walkTask, type WalkResult } from '../paging/walk.js';
import { compareFault, type FaultComparison } from './againstTables.js';
import type { LogExplanation, LoggedException, LoggedPaging } from './explainLog.js';

/** One #PF of the log held against the tables. */
export type PageFaultCheck =
  | { exception: LoggedException; walk: WalkResult; comparison: FaultComparison }
  /** Not walked: no register dump, paging off, or registers that describe no CPU state. */
  | { exception: LoggedException; skipped: string };

/** Register values that replace the log's (the command line's --cr0/--cr3/--cr4/--efer). */
export type PagingOverride = Partial<LoggedPaging>;

/** Walks CR2 of every #PF in the explanation's chains (each distinct chain once). */
export function* checkPageFaultsTask(x: LogExplanation, features: CpuFeatures = {}, override: PagingOverride = {}): PagingTask<PageFaultCheck[]> {
  const out: PageFaultCheck[] = [];
  for (const chain of x.chains) {
    for (const l of chain.links) {
      if (l.vector !== 14 || !l.decoded || l.kind !== 'exception') continue;
      if (l.cr2 === null) {
        out.push({ exception: l, skipped: 'the log shows no CR2 for it' });
        continue;
      }
      if (!l.paging && override.cr3 === undefined) {
        out.push({ exception: l, skipped: 'its register dump is missing (cut), so CR3 is not known' });
        continue;
      }
      const regs = { cr0: 0n, cr3: 0n, cr4: 0n, efer: 0n, ...l.paging, ...override };
      let walk: WalkResult;
      try {
        const ctx = pagingContext(regs, features);
        if (ctx.mode === 'none') {
          out.push({ exception: l, skipped: 'paging was off (CR0.PG=0): a #PF cannot be walked' });
          continue;
        }
        walk = yield* walkTask(ctx, l.cr2, { kind: l.decoded.access, user: l.decoded.user });
      } catch (e) {
        out.push({ exception: l, skipped: (e as Error).message });
        continue;
      }
      out.push({ exception: l, walk, comparison: compareFault(l.decoded, walk, l.rip) });
    }
  }
  return out;
}
