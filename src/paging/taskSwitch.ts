/**
 * Delivery through a legacy task gate (Intel SDM vol. 3, 7.3): check the TSS descriptor the gate
 * names, save the outgoing task into the current TSS, read the new TSS, mark it busy and link it
 * back, load its CR3, CS and SS, push the error code onto its stack, and fetch its first
 * instruction, all of it after the CR3 switch through the task's own tables.
 */
import { hex } from './addr.js';
import { badDescriptor, badGate, fail, fetchHandler, readDescriptor, readSystem, type DescriptorRead } from './deliveryChecks.js';
import { raised, raisedBy, stop, type Delivery, type Env, type Failure, type Machine, type Stop } from './deliveryModel.js';
import { SYSTEM_TYPE, TSS32, decodeSelector, decodeTss32, describeGateType, isNullSelector, type IdtGate, type Tss32 } from './descriptors.js';
import { selectorErrorCode, vectorName } from './exceptions.js';
import { faultVerb, shortFault } from './faultWords.js';
import type { PagingTask } from './memory.js';
import { withCr3, type PagingContext } from './mode.js';
import { walkProblem } from './preflightLog.js';
import { IMPLICIT_WRITE, cr3Fault, pushTask } from './probes.js';
import { wrapLinear } from './virtRead.js';
import { RFLAGS } from './registers.js';
import type { WalkFault } from './walk.js';

/** A legacy task gate at `gateVa`: save the outgoing task, load the TSS the gate names, and run its handler in its address space. */
export function* taskSwitch(env: Env, m: Machine, vector: number, gate: IdtGate, gateVa: bigint, errorCode: number | null): PagingTask<Delivery> {
  const { cpu, log } = env;
  const name = vectorName(vector);
  const sel = gate.selector;
  const desc = yield* tssDescriptor(env, m, vector, sel, gateVa);
  if (desc.kind === 'stop') return desc.delivery;

  // Save the outgoing task's state into the current TSS.
  const tr = cpu.tr;
  if (tr?.base === undefined) {
    log.note(`the current TSS: the target does not report TR's base, so saving the outgoing task's state for the ${name} task switch was not checked`);
  } else {
    const at = wrapLinear(m.ctx, tr.base + BigInt(TSS32.saveStart));
    const verb = (f: WalkFault): string => (f.reason === 'not-present' ? 'is not mapped' : cannotWrite(f));
    const saved = yield* implicitWrite(env, m, vector, 'tss', at, TSS32.saveEnd - TSS32.saveStart, 4, 'plain', `current TSS at ${hex(at)}`, verb, 'saves the outgoing task into the current TSS');
    if (saved) return saved.delivery;
  }

  // Read the new TSS, mark its descriptor busy, write its back link.
  const tssVa = wrapLinear(m.ctx, desc.desc.base);
  const r = yield* readSystem(env, m.ctx, vector, 'tss', tssVa, TSS32.size, 'task', 'TSS', `reading the ${name} task's TSS at ${hex(tssVa)}`);
  if (r.kind === 'stop') return r.delivery;
  const busy = yield* implicitWrite(env, m, vector, 'gdt', desc.va, 8, 8, 'task', `TSS descriptor at ${hex(desc.va)}`, cannotWrite, 'sets the busy bit in the TSS descriptor');
  if (busy) return busy.delivery;
  const linked = yield* implicitWrite(env, m, vector, 'tss', tssVa, 2, 2, 'task', `TSS at ${hex(tssVa)}`, cannotWrite, 'writes the back link into the new TSS');
  if (linked) return linked.delivery;
  const tss = decodeTss32(r.bytes);

  // Load the task's CR3, then its segments, through the task's own tables.
  const ctx = m.ctx.mode === 'none' ? m.ctx : withCr3(m.ctx, BigInt(tss.cr3));
  const bad = yield* cr3Fault(ctx);
  if (bad) {
    const f = bad.fault!;
    return fail(
      env,
      vector,
      { raised: raised(13, 0), owner: 'task', noun: `CR3 ${hex(tss.cr3)}`, verb: `cannot be loaded (${shortFault(f)})` },
      { kind: 'tss', cr3: m.ctx.cr3, va: tssVa + BigInt(TSS32.cr3), walk: bad, explanation: `the ${name} task's CR3 ${hex(tss.cr3)} cannot be loaded: ${f.explanation}`, sig: 'task-cr3' },
    );
  }
  const task: Machine = { ctx, long: false, cpl: tss.cs & 3, stack: m.stack, ac: (tss.eflags & Number(RFLAGS.AC)) !== 0, busy: [...m.busy, sel & 0xfff8] };
  const segs = yield* taskSegments(env, ctx, vector, tss);
  if (segs.kind === 'stop') return segs.delivery;

  // The error code goes onto the new task's stack; then the task runs from its EIP.
  let sp = BigInt(tss.esp);
  if (errorCode !== null) {
    const top = wrapLinear(ctx, segs.ssBase + sp);
    const p = yield* pushTask(ctx, top, 4, 4, { kind: 'write', user: task.cpl === 3, ac: task.ac });
    log.check('stack', vector, wrapLinear(ctx, top - 4n), 'write', p.ok, ctx.cr3);
    if (!p.ok) {
      const at = p.walk.va;
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, true), owner: 'task', noun: `stack at ${hex(at)}`, verb: faultVerb(p.walk.fault!) },
        walkProblem('stack', vector, p.walk, `the ${name} task switch pushes the error code onto the task's stack at ${hex(at)} (CR3 ${hex(tss.cr3)}), and it faults`),
      );
    }
    sp -= 4n;
  }
  const next: Machine = { ...task, stack: { kind: 'known', base: segs.ssBase, sp: sp & 0xffffffffn, name: `${name} task's stack` } };
  const how = ` in the task of TSS ${hex(sel)} (CR3 ${hex(tss.cr3)})`;
  return yield* fetchHandler(env, next, vector, wrapLinear(ctx, segs.csBase + BigInt(tss.eip)), 'task', how, null);
}

const cannotWrite = (f: WalkFault): string => `cannot be written (${shortFault(f)})`;

/** The GDT descriptor of the TSS a task gate names: present, available (not busy), a 32-bit TSS of at least 0x68 bytes. */
function* tssDescriptor(env: Env, m: Machine, vector: number, sel: number, gateVa: bigint): PagingTask<Extract<DescriptorRead, { kind: 'ok' }> | Stop> {
  const name = vectorName(vector);
  if (isNullSelector(sel) || decodeSelector(sel).ldt) {
    const ec = selectorErrorCode(sel);
    const explanation = `the ${name} task gate names selector ${hex(sel)}, which is not a TSS in the GDT: #GP(${hex(ec)})`;
    return stop(badGate(env, m, vector, gateVa, raised(13, ec), 'task gate', `names ${hex(sel)}, not a TSS in the GDT`, explanation, 'task-selector'));
  }
  const desc = yield* readDescriptor(env, m.ctx, vector, sel, 'TSS descriptor', 'task');
  if (desc.kind !== 'ok') {
    return desc.kind === 'stop' ? desc : stop({ kind: 'unknown', reason: `${name} task gate: the target does not report GDTR, so the task's TSS cannot be found` });
  }
  const d = desc.desc;
  const noun = `TSS descriptor (selector ${hex(sel)})`;
  const ec = selectorErrorCode(sel);
  const index = sel & 0xfff8;
  if (d.system && (d.type === SYSTEM_TYPE.TSS_BUSY || m.busy.includes(index) || index === ((env.cpu.tr?.selector ?? 0) & 0xfff8))) {
    return stop(badDescriptor(env, vector, desc, raised(13, ec), 'task', noun, 'is busy', `the ${name} task gate's TSS ${hex(sel)} is busy (the task is already running)`));
  }
  if (!d.system || d.type !== SYSTEM_TYPE.TSS) {
    const what = d.system ? describeGateType(d.type, false) : 'a code or data segment';
    return stop(badDescriptor(env, vector, desc, raised(13, ec), 'task', noun, `is ${what}, not an available 32-bit TSS`, `the ${name} task gate's selector ${hex(sel)} is ${what}, not an available 32-bit TSS`));
  }
  if (!d.present) return stop(badDescriptor(env, vector, desc, raised(11, ec), 'task', noun, 'is not present', `the ${name} task's TSS descriptor ${hex(sel)} is not present`));
  if (d.limit < TSS32.size - 1) {
    return stop(badDescriptor(env, vector, desc, raised(10, ec), 'task', noun, `has a limit below 0x67 (${hex(d.limit)})`, `the ${name} task's TSS ${hex(sel)} has limit ${hex(d.limit)}, below 0x67`));
  }
  return desc;
}

/** An implicit write of the task switch (`what` it does), recorded as a check; a fault ends the delivery. */
function* implicitWrite(
  env: Env,
  m: Machine,
  vector: number,
  kind: 'gdt' | 'tss',
  va: bigint,
  length: number,
  slot: number,
  owner: Failure['owner'],
  noun: string,
  verb: (f: WalkFault) => string,
  what: string,
): PagingTask<Stop | null> {
  const p = yield* pushTask(m.ctx, va + BigInt(length), length, slot, IMPLICIT_WRITE);
  env.log.check(kind, null, va, 'write', p.ok, m.ctx.cr3);
  if (p.ok) return null;
  const failure: Failure = { raised: raisedBy(p.walk, false), owner, noun, verb: verb(p.walk.fault!) };
  return stop(fail(env, vector, failure, walkProblem(kind, null, p.walk, `the ${vectorName(vector)} task switch ${what} at ${hex(va)}, and the write faults`)));
}

/** The bases of the task's CS and SS, read through the task's tables `ctx` (flat without GDTR). */
function* taskSegments(env: Env, ctx: PagingContext, vector: number, tss: Tss32): PagingTask<{ kind: 'ok'; csBase: bigint; ssBase: bigint } | Stop> {
  const name = vectorName(vector);
  const bases = { CS: 0n, SS: 0n };
  for (const [which, selector] of [
    ['CS', tss.cs],
    ['SS', tss.ss],
  ] as const) {
    const seg = yield* readDescriptor(env, ctx, vector, selector, `the task's ${which}`, 'task');
    if (seg.kind === 'stop') return seg;
    if (seg.kind === 'missing') {
      env.log.note(`GDT: the target does not report GDTR, so the ${name} task's CS and SS were not read (taken as flat segments)`);
      break;
    }
    const s = seg.desc;
    const ok = which === 'CS' ? !s.system && s.code : !s.system && s.writable;
    const segNoun = `${which} (selector ${hex(selector)})`;
    const kindWords = which === 'CS' ? 'code' : 'writable data';
    if (!ok || isNullSelector(selector)) {
      return stop(badDescriptor(env, vector, seg, raised(10, selectorErrorCode(selector)), 'task', segNoun, `is not a ${kindWords} segment`, `the ${name} task's ${which} ${hex(selector)} is not a ${kindWords} segment`));
    }
    if (!s.present) {
      return stop(badDescriptor(env, vector, seg, raised(which === 'CS' ? 11 : 12, selectorErrorCode(selector)), 'task', segNoun, 'is not present', `the ${name} task's ${which} ${hex(selector)} is not present`));
    }
    bases[which] = s.base;
  }
  return { kind: 'ok', csBase: bases.CS, ssBase: bases.SS };
}
