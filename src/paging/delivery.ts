/**
 * Exception and interrupt delivery through the IDT, GDT and TSS, in long mode and legacy mode (Intel
 * SDM vol. 3, 6.12-6.14): the gate, the handler's code segment, the stack (an IST stack, the new
 * ring's stack from the TSS, or the current one), the pushes and the handler's first instruction,
 * each checked through the machine's tables. Task gates go on in `taskSwitch.ts`.
 */
import { hex, isCanonical } from './addr.js';
import { badDescriptor, badGate, fail, fetchHandler, readDescriptor, readSystem, readTss } from './deliveryChecks.js';
import { raised, raisedBy, stop, type Delivery, type Env, type Machine, type Stack, type Stop } from './deliveryModel.js';
import { TSS32, TSS64, decodeGate32, decodeGate64, decodeSelector, describeGateType, isNullSelector, type IdtGate } from './descriptors.js';
import { pageFaultErrorCode } from './errorCode.js';
import { EXT, idtErrorCode, selectorErrorCode, vectorName } from './exceptions.js';
import { faultVerb } from './faultWords.js';
import type { PagingTask } from './memory.js';
import { walkProblem } from './preflightLog.js';
import { pushTask } from './probes.js';
import { wrapLinear } from './virtRead.js';
import type { Access } from './rights.js';
import { taskSwitch } from './taskSwitch.js';

/**
 * Delivers `vector` from machine `m`, checking every access the CPU makes. With `skipAbsent`, a vector
 * without a present gate (or beyond the IDT limit) is 'absent' rather than a problem: the kernel chose
 * not to handle it, and no CR3 changes that.
 */
export function* deliver(env: Env, m: Machine, vector: number, errorCode: number | null, skipAbsent = false): PagingTask<Delivery> {
  const { log } = env;
  const name = vectorName(vector);
  const g = yield* readGate(env, m, vector, skipAbsent);
  if (g.kind === 'stop') return g.delivery;
  const { gate, gateVa } = g;
  if (gate.kind === 'task') return yield* taskSwitch(env, m, vector, gate, gateVa, errorCode);
  const cs = yield* handlerSegment(env, m, vector, gate, gateVa);
  if (cs.kind === 'stop') return cs.delivery;
  const s = yield* handlerStack(env, m, vector, gate, cs.cpl);
  if (s.kind === 'stop') return s.delivery;
  const { stack, reloaded } = s;

  // The pushes: SS and RSP (on a privilege change, and always in long mode), RFLAGS, CS, RIP, the error code.
  const slot = m.long ? 8 : gate.bits / 8;
  const slots = (cs.cpl < m.cpl ? 5 : m.long ? 5 : 3) + (errorCode !== null ? 1 : 0);
  const bytes = slots * slot;
  const userStack = cs.cpl === 3;
  let after: Stack = stack;
  if (stack.kind === 'exhausted') {
    const ec = pageFaultErrorCode({ present: false, write: true, user: userStack, fetch: false }, m.ctx);
    return { kind: 'faulted', failure: { raised: { vector: 14, errorCode: ec, cr2: null }, owner: 'handler', noun: 'stack', verb: 'has run out', silent: true } };
  }
  if (stack.kind === 'known') {
    const top = m.long ? stack.sp & ~0xfn : stack.base + (stack.sp & 0xffffffffn);
    const access: Access = { kind: 'write', user: userStack, ac: m.ac };
    const p = yield* pushTask(m.ctx, top, bytes, slot, access);
    const low = wrapLinear(m.ctx, top - BigInt(bytes));
    log.check('stack', vector, low, 'write', p.ok, m.ctx.cr3);
    if (!p.ok) {
      const at = p.walk.va;
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, true), owner: 'handler', noun: `stack at ${hex(at)}`, verb: faultVerb(p.walk.fault!) },
        walkProblem('stack', vector, p.walk, `delivering ${name} pushes ${bytes} bytes onto the ${stack.name} at ${hex(low)}, and the push at ${hex(at)} faults`),
      );
    }
    after = m.long ? { kind: 'known', base: 0n, sp: low, name: stack.name } : { kind: 'known', base: stack.base, sp: (stack.sp - BigInt(bytes)) & 0xffffffffn, name: stack.name };
  } else {
    log.note(`the ${stack.name}: the target does not report TR's base, so the pushes of a delivery that switches stacks were not checked`);
  }

  // The handler's first instruction.
  const handler = m.long ? gate.offset : wrapLinear(m.ctx, cs.base + gate.offset);
  if ((m.long && !isCanonical(handler, m.ctx.vaBits)) || (cs.limit !== null && gate.offset > BigInt(cs.limit))) {
    const why = m.long ? `is not canonical` : `lies beyond its code segment's limit (${hex(cs.limit ?? 0)})`;
    log.check('handler', vector, handler, 'exec', false, m.ctx.cr3);
    return fail(
      env,
      vector,
      { raised: raised(13, EXT), owner: 'vector', noun: `handler at ${hex(handler)}`, verb: why },
      { kind: 'handler', vector, cr3: m.ctx.cr3, va: handler, access: 'exec', explanation: `the ${name} handler at ${hex(handler)} ${why}: delivering ${name} raises #GP(${hex(EXT)})`, sig: 'handler-range' },
    );
  }
  const next: Machine = { ...m, cpl: cs.cpl, stack: after };
  const how = stack === m.stack ? '' : ` on the ${stack.name}`;
  return yield* fetchHandler(env, next, vector, handler, 'vector', how, reloaded);
}

/** Reads the IDT gate of `vector` (16 bytes in long mode, 8 in legacy), checking the IDT limit, P and the gate type. */
function* readGate(env: Env, m: Machine, vector: number, skipAbsent: boolean): PagingTask<{ kind: 'ok'; gate: IdtGate; gateVa: bigint } | Stop> {
  const idtr = env.cpu.idtr;
  if (!idtr) return stop({ kind: 'unknown', reason: 'IDT: the target does not report IDTR, so exception and interrupt delivery was not checked' });
  const name = vectorName(vector);
  const size = m.long ? 16 : 8;
  const gateVa = wrapLinear(m.ctx, idtr.base + BigInt(vector * size));
  const ec = idtErrorCode(vector);
  if (vector * size + size - 1 > idtr.limit) {
    if (skipAbsent) return stop({ kind: 'absent' });
    env.log.check('gate', vector, gateVa, 'read', false, m.ctx.cr3);
    const explanation = `the IDT entry of ${name} (IDT offset ${hex(vector * size)}, ${size} bytes) lies beyond IDTR.limit ${hex(idtr.limit)}: delivering ${name} raises #GP(${hex(ec)})`;
    return stop(badGate(env, m, vector, gateVa, raised(13, ec), 'gate', `lies beyond the IDT limit (${hex(idtr.limit)})`, explanation, 'idt-limit'));
  }
  const read = yield* readSystem(env, m.ctx, vector, 'idt', gateVa, size, 'handler', 'IDT entry', `reading the IDT entry of ${name} at ${hex(gateVa)}`);
  if (read.kind === 'stop') return read;
  const gate = m.long ? decodeGate64(read.bytes) : decodeGate32(read.bytes);
  if (!gate.present) {
    if (skipAbsent) return stop({ kind: 'absent' });
    env.log.check('gate', vector, gateVa, 'read', false, m.ctx.cr3);
    const explanation = `the IDT entry of ${name} at ${hex(gateVa)} is not present (P=0): delivering ${name} raises #NP(${hex(ec)})`;
    return stop(badGate(env, m, vector, gateVa, raised(11, ec), 'gate', 'is not present', explanation, 'gate-absent'));
  }
  if (gate.kind === 'invalid') {
    env.log.check('gate', vector, gateVa, 'read', false, m.ctx.cr3);
    const what = describeGateType(gate.type, m.long);
    const explanation = `the IDT entry of ${name} at ${hex(gateVa)} is ${what}, which ${m.long ? 'a long-mode' : 'an'} IDT cannot hold: delivering ${name} raises #GP(${hex(ec)})`;
    return stop(badGate(env, m, vector, gateVa, raised(13, ec), 'gate', `is ${what}, not an interrupt or trap gate`, explanation, `gate-type-${gate.type}`));
  }
  env.log.check('gate', vector, gateVa, 'read', true, m.ctx.cr3);
  return { kind: 'ok', gate, gateVa };
}

/** The handler's code segment: the CPL the handler runs at, and its base and limit in legacy mode (flat ring 0 without GDTR). */
function* handlerSegment(
  env: Env,
  m: Machine,
  vector: number,
  gate: IdtGate,
  gateVa: bigint,
): PagingTask<{ kind: 'ok'; cpl: number; base: bigint; limit: number | null } | Stop> {
  const name = vectorName(vector);
  const sel = gate.selector;
  if (isNullSelector(sel)) {
    return stop(badGate(env, m, vector, gateVa, raised(13, EXT), 'gate', 'names the null selector', `the ${name} gate's selector ${hex(sel)} is null: #GP(${hex(EXT)})`, 'null-selector'));
  }
  if (decodeSelector(sel).ldt) {
    return stop({ kind: 'unknown', reason: `${name} delivery: the gate's selector ${hex(sel)} is in the LDT, which the pre-flight does not read` });
  }
  const cs = yield* readDescriptor(env, m.ctx, vector, sel, 'code segment', 'handler');
  if (cs.kind === 'stop') return cs;
  if (cs.kind === 'missing') {
    env.log.note('GDT: the target does not report GDTR, so handler code segments were not read (taken as flat ring-0 code)');
    return { kind: 'ok', cpl: 0, base: 0n, limit: null };
  }
  const d = cs.desc;
  const noun = `code segment (selector ${hex(sel)})`;
  const gp = raised(13, selectorErrorCode(sel));
  if (d.system || !d.code) return stop(badDescriptor(env, vector, cs, gp, 'handler', noun, 'is not a code segment', `the GDT entry of selector ${hex(sel)} (the ${name} gate's) is not a code segment`));
  if (d.dpl > m.cpl) return stop(badDescriptor(env, vector, cs, gp, 'handler', noun, `has DPL ${d.dpl} above CPL ${m.cpl}`, `the ${name} handler's code segment ${hex(sel)} has DPL ${d.dpl}, above CPL ${m.cpl}`));
  if (!d.present) {
    return stop(badDescriptor(env, vector, cs, raised(11, selectorErrorCode(sel)), 'handler', noun, 'is not present', `the ${name} handler's code segment ${hex(sel)} is not present`));
  }
  if (m.long && (!d.long || d.big)) {
    return stop(badDescriptor(env, vector, cs, gp, 'handler', noun, 'is not 64-bit code', `the ${name} handler's code segment ${hex(sel)} is not a 64-bit code segment (L=1, D=0)`));
  }
  return { kind: 'ok', cpl: d.conforming ? m.cpl : d.dpl, base: m.long ? 0n : d.base, limit: m.long ? null : d.limit };
}

/**
 * The stack delivery pushes onto: an IST stack, the new ring's stack from the TSS on a privilege
 * change, or the current one. `reloaded` names a stack the TSS gives afresh at every delivery (IST).
 */
function* handlerStack(env: Env, m: Machine, vector: number, gate: IdtGate, cpl: number): PagingTask<{ kind: 'ok'; stack: Stack; reloaded: string | null } | Stop> {
  const change = cpl < m.cpl;
  if (m.long && (gate.ist > 0 || change)) {
    const field = gate.ist > 0 ? `IST${gate.ist}` : `RSP${cpl}`;
    const reloaded = gate.ist > 0 ? `${field} stack` : null;
    const t = yield* readTss(env, m.ctx, vector, gate.ist > 0 ? TSS64.ist(gate.ist) : TSS64.rsp(cpl), 8, field);
    if (t.kind === 'stop') return t;
    if (t.kind === 'missing') return { kind: 'ok', stack: { kind: 'unknown', name: `${field} stack` }, reloaded };
    const sp = t.field.getBigUint64(0, true);
    return { kind: 'ok', stack: { kind: 'known', base: 0n, sp, name: `${field} stack${sp === 0n ? ` (${field} in the TSS is 0)` : ''}` }, reloaded };
  }
  if (!m.long && change) {
    const t = yield* readTss(env, m.ctx, vector, TSS32.esp0 + 8 * cpl, 8, `ESP${cpl}/SS${cpl}`);
    if (t.kind === 'stop') return t;
    if (t.kind === 'missing') return { kind: 'ok', stack: { kind: 'unknown', name: `ring-${cpl} stack` }, reloaded: null };
    const esp = BigInt(t.field.getUint32(0, true));
    const ssSel = t.field.getUint16(4, true);
    const ss = yield* readDescriptor(env, m.ctx, vector, ssSel, `SS${cpl}`, 'handler');
    if (ss.kind === 'stop') return ss;
    let base = 0n;
    if (ss.kind === 'ok') {
      const d = ss.desc;
      const noun = `stack segment (selector ${hex(ssSel)})`;
      if (d.system || !d.writable || d.dpl !== cpl || (ssSel & 3) !== cpl) {
        const why = `SS${cpl} ${hex(ssSel)} in the TSS is not a writable ring-${cpl} data segment`;
        return stop(badDescriptor(env, vector, ss, raised(10, selectorErrorCode(ssSel)), 'handler', noun, `is not a writable ring-${cpl} data segment`, why));
      }
      if (!d.present) return stop(badDescriptor(env, vector, ss, raised(12, selectorErrorCode(ssSel)), 'handler', noun, 'is not present', `SS${cpl} ${hex(ssSel)} is not present`));
      base = d.base;
    }
    return { kind: 'ok', stack: { kind: 'known', base, sp: esp, name: `ring-${cpl} stack` }, reloaded: null };
  }
  return { kind: 'ok', stack: m.stack, reloaded: null };
}
