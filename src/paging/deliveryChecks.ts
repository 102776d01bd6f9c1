/**
 * The checked accesses of exception delivery: the implicit reads of the IDT, GDT and TSS, and the
 * fetch of a handler's first instruction, each recorded as a check. A failure (a fault, or a gate or
 * descriptor that cannot be used) is recorded as a problem and comes back as the delivery it ends.
 */
import { hex } from './addr.js';
import { raised, raisedBy, stop, type Delivery, type Env, type Failure, type Machine, type Raised, type Stop } from './deliveryModel.js';
import { decodeSegmentDescriptor, type SegmentDescriptor } from './descriptors.js';
import { selectorErrorCode, vectorName } from './exceptions.js';
import { faultVerb, firstPhrase } from './faultWords.js';
import type { PagingTask } from './memory.js';
import type { PagingContext } from './mode.js';
import { walkProblem, type ProblemSpec } from './preflightLog.js';
import { IMPLICIT_READ } from './probes.js';
import { readVirtualTask, wrapLinear } from './virtRead.js';
import { walkTask } from './walk.js';

/** Records a failure of delivering `vector` as a problem and returns it as a delivery that faulted. */
export function fail(env: Env, vector: number, failure: Failure, spec: ProblemSpec): Delivery {
  env.log.problem(spec, firstPhrase(failure, vector));
  return { kind: 'faulted', failure };
}

/** A system-structure read: its bytes, or the delivery it ends (a fault, or memory the target cannot read). */
export type SystemRead = { kind: 'ok'; bytes: Uint8Array } | Stop;

/** An implicit supervisor read of a system structure, recorded as a check (and a problem when it faults). */
export function* readSystem(
  env: Env,
  ctx: PagingContext,
  vector: number,
  kind: 'idt' | 'gdt' | 'tss',
  va: bigint,
  length: number,
  owner: Failure['owner'],
  noun: string,
  describe: string,
): PagingTask<SystemRead> {
  const r = yield* readVirtualTask(ctx, va, length, IMPLICIT_READ);
  env.log.check(kind, null, va, 'read', r.ok, ctx.cr3);
  if (!r.ok) {
    const failure: Failure = { raised: raisedBy(r.walk, false), owner, noun: `${noun} at ${hex(va)}`, verb: faultVerb(r.walk.fault!) };
    return stop(fail(env, vector, failure, walkProblem(kind, null, r.walk, `${describe} faults`)));
  }
  if (r.unreadable.length > 0) {
    const reason = `${describe}: ${hex(va)} lies in physical memory the target cannot read (frame ${r.unreadable.map((p) => hex(p)).join(', ')})`;
    return stop({ kind: 'unknown', reason });
  }
  return { kind: 'ok', bytes: r.bytes };
}

/** A GDT descriptor read: the descriptor and where it was read, 'missing' without GDTR, or the delivery it ends. */
export type DescriptorRead = { kind: 'ok'; desc: SegmentDescriptor; va: bigint; cr3: bigint } | { kind: 'missing' } | Stop;

/** Reads the GDT descriptor of `selector` (implicit read), checking the GDT limit. */
export function* readDescriptor(
  env: Env,
  ctx: PagingContext,
  vector: number,
  selector: number,
  purpose: string,
  owner: Failure['owner'],
): PagingTask<DescriptorRead> {
  const gdtr = env.cpu.gdtr;
  if (!gdtr) return { kind: 'missing' };
  const va = wrapLinear(ctx, gdtr.base + BigInt(selector & 0xfff8));
  const noun = `${purpose} (selector ${hex(selector)})`;
  if ((selector | 7) > gdtr.limit) {
    const ec = selectorErrorCode(selector);
    const failure: Failure = { raised: raised(13, ec), owner, noun, verb: `lies beyond the GDT limit (${hex(gdtr.limit)})` };
    const explanation = `selector ${hex(selector)} (${purpose}) lies beyond GDTR.limit ${hex(gdtr.limit)}: #GP(${hex(ec)})`;
    return stop(fail(env, vector, failure, { kind: 'gdt', cr3: ctx.cr3, va, explanation, sig: 'gdt-limit' }));
  }
  const r = yield* readSystem(env, ctx, vector, 'gdt', va, 8, owner, noun, `reading the GDT entry of selector ${hex(selector)} (${purpose})`);
  if (r.kind === 'stop') return r;
  const raw = new DataView(r.bytes.buffer, r.bytes.byteOffset, 8).getBigUint64(0, true);
  return { kind: 'ok', desc: decodeSegmentDescriptor(raw), va, cr3: ctx.cr3 };
}

/** A descriptor that does not do what it is loaded for: recorded as a 'gdt' problem. */
export function badDescriptor(
  env: Env,
  vector: number,
  at: { va: bigint; cr3: bigint },
  raise: Raised,
  owner: Failure['owner'],
  noun: string,
  verb: string,
  why: string,
): Delivery {
  const explanation = `${why}: ${vectorName(raise.vector)}(${hex(raise.errorCode ?? 0)})`;
  return fail(env, vector, { raised: raise, owner, noun, verb }, { kind: 'gdt', cr3: at.cr3, va: at.va, explanation, sig: verb });
}

/** An IDT gate that cannot be used: recorded as a 'gate' problem of `vector`, owned by the vector ("the #PF gate is not present"). */
export function badGate(
  env: Env,
  m: Machine,
  vector: number,
  gateVa: bigint,
  raise: Raised,
  noun: string,
  verb: string,
  explanation: string,
  sig: string,
): Delivery {
  return fail(env, vector, { raised: raise, owner: 'vector', noun, verb }, { kind: 'gate', vector, cr3: m.ctx.cr3, va: gateVa, explanation, sig });
}

/** A TSS field read: its bytes, 'missing' without TR's base, or the delivery it ends. */
export type TssRead = { kind: 'ok'; field: DataView } | { kind: 'missing' } | Stop;

/** Reads `length` bytes at `offset` in the current TSS (at TR's base), checking TR's limit. */
export function* readTss(env: Env, ctx: PagingContext, vector: number, offset: number, length: number, field: string): PagingTask<TssRead> {
  const tr = env.cpu.tr;
  if (tr?.base === undefined) return { kind: 'missing' };
  const va = wrapLinear(ctx, tr.base + BigInt(offset));
  if (tr.limit !== undefined && offset + length - 1 > tr.limit) {
    const ec = selectorErrorCode(tr.selector);
    const failure: Failure = { raised: raised(10, ec), owner: 'handler', noun: `${field} field`, verb: `lies beyond the TSS limit (${hex(tr.limit)})` };
    const explanation = `${field} at TSS offset ${hex(offset)} lies beyond TR.limit ${hex(tr.limit)}: #TS(${hex(ec)})`;
    return stop(fail(env, vector, failure, { kind: 'tss', cr3: ctx.cr3, va, explanation, sig: 'tss-limit' }));
  }
  const r = yield* readSystem(env, ctx, vector, 'tss', va, length, 'handler', `${field} entry in the TSS`, `reading ${field} from the TSS at ${hex(va)}`);
  if (r.kind === 'stop') return r;
  return { kind: 'ok', field: new DataView(r.bytes.buffer, r.bytes.byteOffset, length) };
}

/** Fetches a handler's first instruction from machine `next`; a fault there comes after delivery completed. */
export function* fetchHandler(
  env: Env,
  next: Machine,
  vector: number,
  va: bigint,
  owner: Failure['owner'],
  how: string,
  reloaded: string | null,
): PagingTask<Delivery> {
  const walk = yield* walkTask(next.ctx, va, { kind: 'exec', user: next.cpl === 3 });
  env.log.check('handler', vector, va, 'exec', walk.fault === null, next.ctx.cr3);
  if (walk.fault) {
    const failure: Failure = { raised: raisedBy(walk, false), owner, noun: owner === 'task' ? `first instruction at ${hex(va)}` : `handler at ${hex(va)}`, verb: faultVerb(walk.fault) };
    const spec = walkProblem('handler', vector, walk, `the first instruction of the ${vectorName(vector)} handler at ${hex(va)} cannot be fetched`);
    env.log.problem(spec, firstPhrase(failure, vector));
    return { kind: 'handler-faults', failure, next, reloaded };
  }
  return { kind: 'handled', handler: va, how };
}
