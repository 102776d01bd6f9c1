/**
 * Reading linear memory through a paging context, as a task (see `memory.ts`): each page the
 * range touches is walked with the access asked for, and the first walk that faults is the answer.
 * Linear addresses wrap the way the CPU's do: at 4 GiB in legacy modes, at 2^64 in long mode.
 */
import { AddressError, hex } from './addr.js';
import { FRAME_SIZE, frameOf, runSync, type PagingTask, type PhysMemory } from './memory.js';
import type { PagingContext } from './mode.js';
import type { Access } from './rights.js';
import { walkTask, type WalkResult } from './walk.js';

/**
 * The bytes at a linear range, or the walk of the first page whose access faults. `unreadable`
 * lists the physical frames the memory could not give; their bytes read as zeros, as QEMU reads
 * unassigned memory.
 */
export type VirtRead = { ok: true; bytes: Uint8Array; unreadable: bigint[] } | { ok: false; walk: WalkResult };

/** The size of the linear address space of a context's mode: 2^64 in long mode, else 2^32. */
export function linearSpace(ctx: Pick<PagingContext, 'mode'>): bigint {
  return ctx.mode === '4-level' || ctx.mode === '5-level' ? 1n << 64n : 1n << 32n;
}

/** `va` wrapped into `ctx`'s linear address space (modulo 2^32 in legacy modes, 2^64 in long mode). */
export function wrapLinear(ctx: Pick<PagingContext, 'mode'>, va: bigint): bigint {
  const space = linearSpace(ctx);
  return ((va % space) + space) % space;
}

/**
 * Reads `length` bytes at `va` with `access` under `ctx`. Throws `AddressError` (E_ADDRESS_RANGE)
 * for a negative or fractional length, or one larger than 2^31.
 */
export function* readVirtualTask(ctx: PagingContext, va: bigint, length: number, access: Access): PagingTask<VirtRead> {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0x80000000) {
    throw new AddressError('E_ADDRESS_RANGE', `cannot read ${length} bytes at ${hex(va)}: a length is a whole number up to 2 GiB`);
  }
  const bytes = new Uint8Array(length);
  const unreadable: bigint[] = [];
  let done = 0;
  while (done < length) {
    const at = wrapLinear(ctx, va + BigInt(done));
    const inPage = Math.min(FRAME_SIZE - Number(at % BigInt(FRAME_SIZE)), length - done);
    const walk = yield* walkTask(ctx, at, access);
    if (walk.fault || !walk.translation) return { ok: false, walk };
    const pa = Number(walk.translation.pa);
    const frameAddress = frameOf(pa);
    const [frame] = yield { frames: [frameAddress] };
    if (frame) {
      bytes.set(new Uint8Array(frame.buffer, frame.byteOffset + (pa - frameAddress), inPage), done);
    } else if (!unreadable.includes(BigInt(frameAddress))) {
      unreadable.push(BigInt(frameAddress));
    }
    done += inPage;
  }
  return { ok: true, bytes, unreadable };
}

/** Reads linear memory through synchronous physical memory. See {@link readVirtualTask}. */
export function readVirtual(mem: PhysMemory, ctx: PagingContext, va: bigint, length: number, access: Access): VirtRead {
  return runSync(readVirtualTask(ctx, va, length, access), mem);
}
