/**
 * Walks that test an access without reading data, as tasks (see `memory.ts`): each page a run of
 * pushes or a range touches, and the MOV to CR3 itself. Linear addresses wrap as the CPU's do.
 */
import type { PagingTask } from './memory.js';
import type { PagingContext } from './mode.js';
import type { Access } from './rights.js';
import { wrapLinear } from './virtRead.js';
import { walkTask, type WalkResult } from './walk.js';

/** An implicit supervisor read: what the CPU does to the IDT, GDT and TSS during delivery. */
export const IMPLICIT_READ: Access = Object.freeze({ kind: 'read', user: false, implicit: true });

/** An implicit supervisor write: a task switch saving state or setting a busy bit. */
export const IMPLICIT_WRITE: Access = Object.freeze({ kind: 'write', user: false, implicit: true });

/** A probe's answer: the first walk that faulted, or the last walk when none did. */
export type Probe = { ok: true; walk: WalkResult } | { ok: false; walk: WalkResult };

/** Walks each page of the `length` bytes below `top`, highest first, as a run of `slot`-byte pushes does. */
export function* pushTask(ctx: PagingContext, top: bigint, length: number, slot: number, access: Access): PagingTask<Probe> {
  const low = top - BigInt(length);
  let end = top;
  let last: WalkResult | null = null;
  while (end > low) {
    const at = end - BigInt(slot);
    const walk = yield* walkTask(ctx, wrapLinear(ctx, at), access);
    if (walk.fault) return { ok: false, walk };
    last = walk;
    end = at - (wrapLinear(ctx, at) % 4096n);
  }
  return { ok: true, walk: last! };
}

/** Walks `length` bytes at `va` with `access` (no data read): the first page that faults, or the last walk. */
export function* probeTask(ctx: PagingContext, va: bigint, access: Access, length: number): PagingTask<Probe> {
  let walk = yield* walkTask(ctx, wrapLinear(ctx, va), access);
  if (walk.fault) return { ok: false, walk };
  const last = wrapLinear(ctx, va + BigInt(length - 1));
  if (last >> 12n !== wrapLinear(ctx, va) >> 12n) {
    walk = yield* walkTask(ctx, last & ~0xfffn, access);
    if (walk.fault) return { ok: false, walk };
  }
  return { ok: true, walk };
}

/** The walk that shows why loading `ctx`'s CR3 raises #GP: bits above MAXPHYADDR, or a PAE PDPTE with reserved bits. */
export function* cr3Fault(ctx: PagingContext): PagingTask<WalkResult | null> {
  if (ctx.mode === 'none') return null;
  if (ctx.cr3Reserved !== 0n) return yield* walkTask(ctx, 0n, IMPLICIT_READ);
  if (ctx.mode !== 'PAE') return null;
  // MOV to CR3 loads all four PDPTEs at once and checks every present one.
  for (let i = 0n; i < 4n; i++) {
    const w = yield* walkTask(ctx, i << 30n, IMPLICIT_READ);
    if (w.fault?.level === 'PDPT' && w.fault.reason === 'reserved-bit') return w;
  }
  return null;
}
