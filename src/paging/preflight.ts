/**
 * The CR3 pre-flight: would loading a new CR3 fault or triple-fault? Everything is checked through
 * the NEW tables: the fetch at RIP, the stack, and the delivery of the exceptions and interrupts that
 * could come next, the way the CPU delivers them (Intel SDM vol. 3, 6.12-6.15; task gates, 7.3):
 * IDT gate, code-segment descriptor, TSS stack pointers, the pushes, the handler's first instruction.
 * A fault during delivery follows the double-fault rules (SDM Table 6-5) to a handler, a hang or a
 * triple fault. Inputs the CpuState lacks are reported in `unknown`, never guessed.
 *
 * This file runs the checks in order; the pieces live in `exceptions.ts` (vector facts),
 * `delivery.ts` and `taskSwitch.ts` (delivery), `exceptionChain.ts` (the chain), `preflightVerdict.ts`
 * (the verdict and summary), `preflightLog.ts` (the record) and `preflightResult.ts` (the answer).
 */
import { hex } from './addr.js';
import { cpl } from './cpu.js';
import { deliver } from './delivery.js';
import { raised, raisedBy, type Env, type Machine, type Raised } from './deliveryModel.js';
import { chainLink, follow, type ChainEnd } from './exceptionChain.js';
import { vectorName } from './exceptions.js';
import { shortFault } from './faultWords.js';
import { runAsync, runSync, type AsyncPhysMemory, type FrameData, type PagingTask, type PhysMemory } from './memory.js';
import { Log } from './preflightLog.js';
import type { ChainLink, PreflightInput, PreflightResult } from './preflightResult.js';
import { judge } from './preflightVerdict.js';
import { cr3Fault, probeTask, pushTask } from './probes.js';
import { wrapLinear } from './virtRead.js';
import { RFLAGS, has } from './registers.js';
import type { Access } from './rights.js';

/** The pre-flight's input and answer (see `preflightResult.ts`). */
export type { ChainLink, PreflightInput, PreflightProblem, PreflightResult, ProblemTime, Verdict } from './preflightResult.js';
/** The exception facts the chain follows (see `exceptions.ts`). */
export { TRIPLE_FAULT, exceptionClass, faultDuringDelivery, pushesErrorCode, vectorName, type ExceptionClass } from './exceptions.js';

/** The exceptions whose delivery is checked from where the CPU stands: #PF, #GP, #DF. */
const EXCEPTIONS_CHECKED = [14, 13, 8];
/** The events IF=0 does not hold off: NMI and #MC. */
const NON_MASKABLE_CHECKED = [2, 18];

/** The pre-flight as a task (see `memory.ts`); frames it has read once are not asked for again. */
export function preflightTask(input: PreflightInput): PagingTask<PreflightResult> {
  return cached(preflightBody(input), new Map());
}

/** The pre-flight against synchronous memory. */
export function preflight(mem: PhysMemory, input: PreflightInput): PreflightResult {
  return runSync(preflightTask(input), mem);
}

/** The pre-flight against asynchronous memory (a target). */
export function preflightAsync(mem: AsyncPhysMemory, input: PreflightInput): Promise<PreflightResult> {
  return runAsync(preflightTask(input), mem);
}

/** Runs `task`, serving frames it has seen before from `cache` and asking only for new ones. */
function* cached<T>(task: PagingTask<T>, cache: Map<number, FrameData>): PagingTask<T> {
  let step = task.next();
  while (!step.done) {
    const want = step.value.frames;
    const missing = [...new Set(want.filter((f) => !cache.has(f)))];
    if (missing.length > 0) {
      const got = yield { frames: missing };
      missing.forEach((f, i) => cache.set(f, got[i] ?? null));
    }
    step = task.next(want.map((f) => cache.get(f) ?? null));
  }
  return step.value;
}

function* preflightBody(input: PreflightInput): PagingTask<PreflightResult> {
  const { ctx, cpu } = input;
  const log = new Log(ctx.cr3);
  const env: Env = { cpu, log };
  const long = ctx.mode === '4-level' || ctx.mode === '5-level';

  // MOV to CR3 itself: bits above MAXPHYADDR, or PAE PDPTEs with reserved bits, raise #GP(0).
  const bad = yield* cr3Fault(ctx);
  if (bad) {
    const f = bad.fault!;
    const cause = `loading CR3 ${hex(ctx.cr3)} raises #GP(0) (${shortFault(f)})`;
    return {
      cr3: ctx.cr3,
      verdict: 'fault',
      problems: [{ what: 'cr3', va: bad.va, access: 'read', fault: f, walk: bad, when: 'now', explanation: f.explanation }],
      chain: [chainLink(raised(13, 0), cause)],
      checked: [{ what: 'cr3', va: bad.va, access: 'read', ok: false }],
      unknown: ['the #GP: the MOV to CR3 faults, so it is delivered through the tables loaded before it, which the pre-flight does not have'],
      summary: `fault: ${cause}; the old tables stay loaded`,
    };
  }

  // The machine as it stands after the MOV to CR3.
  let csBase = 0n;
  let ssBase = 0n;
  if (!long) {
    if (cpu.cs?.base === undefined || cpu.ss?.base === undefined) {
      log.note('CS and SS bases: the target does not report them, so RIP and RSP were taken as linear addresses (flat segments)');
    }
    csBase = cpu.cs?.base ?? 0n;
    ssBase = cpu.ss?.base ?? 0n;
  }
  const level = cpl(cpu);
  const user = level === 3;
  const ac = has(cpu.rflags, RFLAGS.AC);
  const slot = long ? 8 : 4;
  const sp = long ? cpu.rsp : cpu.rsp & 0xffffffffn;
  const m0: Machine = { ctx, long, cpl: level, stack: { kind: 'known', base: ssBase, sp, name: 'current stack' }, ac, busy: [] };

  // Now: the fetch at RIP and a push at RSP-slot. A read at RSP is not checked: with RSP at the top
  // of an empty stack (right after `mov rsp, stack_top`) it lies outside the stack and proves nothing.
  const rip = long ? cpu.rip : wrapLinear(ctx, csBase + (cpu.rip & 0xffffffffn));
  const top = long ? sp : wrapLinear(ctx, ssBase + sp);
  const below = wrapLinear(ctx, top - BigInt(slot));
  const nowChecks: { what: string; va: bigint; access: Access; label: string; stack: boolean }[] = [
    { what: 'next-instruction', va: rip, access: { kind: 'exec', user }, label: `the fetch at RIP ${hex(rip)}`, stack: false },
    { what: 'stack', va: below, access: { kind: 'write', user, ac }, label: `the push at RSP-${slot} ${hex(below)}`, stack: true },
  ];
  let nowFault: { raised: Raised; phrase: string } | null = null;
  for (const c of nowChecks) {
    const r = c.access.kind === 'write' ? yield* pushTask(ctx, c.va + BigInt(slot), slot, slot, c.access) : yield* probeTask(ctx, c.va, c.access, c.access.kind === 'exec' ? 1 : slot);
    log.check(c.what, null, c.va, c.access.kind, r.ok, ctx.cr3);
    if (r.ok) continue;
    const f = r.walk.fault!;
    const phrase = `${c.label} faults (${shortFault(f)})`;
    log.problem({ kind: c.what, cr3: ctx.cr3, va: c.va, access: c.access.kind, walk: r.walk, explanation: `${c.label} faults: ${f.explanation}`, sig: '' }, phrase);
    nowFault ??= { raised: raisedBy(r.walk, c.stack), phrase };
  }

  // What the CPU does with that fault.
  log.when = 'on-exception';
  const parts: string[] = [];
  let chain: ChainLink[] = [];
  let end: ChainEnd = 'unknown';
  if (nowFault) {
    parts.push(nowFault.phrase);
    const followed = yield* follow(env, m0, nowFault.raised, parts);
    chain = [chainLink(nowFault.raised, nowFault.phrase), ...followed.chain];
    end = followed.end;
  }

  // The next exception or interrupt, delivered from where the CPU stands now.
  const handled: string[] = [];
  for (const v of EXCEPTIONS_CHECKED) if (yield* reaches(env, m0, v, 0)) handled.push(vectorName(v));
  log.when = 'on-interrupt';
  for (const v of NON_MASKABLE_CHECKED) if (yield* reaches(env, m0, v, null, true)) handled.push(vectorName(v));
  let interrupts = 0;
  if (has(cpu.rflags, RFLAGS.IF) && cpu.idtr) {
    // Every present gate from 0x20 up to the IDT limit: any of them may be raised by a device.
    const last = Math.min(0xff, Math.floor((cpu.idtr.limit + 1) / (long ? 16 : 8)) - 1);
    for (let v = 0x20; v <= last; v++) {
      log.sweeping = v;
      if (yield* reaches(env, m0, v, null, true)) interrupts++;
    }
    log.sweeping = null;
  }

  const found = log.found();
  const { verdict, summary } = judge({ fault: nowFault ? { parts, end } : null, found, handled, interrupts, unknown: log.unknown });
  return { cr3: ctx.cr3, verdict, problems: found.map((p) => p.problem), chain, checked: log.checked(), unknown: [...log.unknown], summary };
}

/** Delivers `vector` from machine `m`: true when its handler runs; what could not be checked is noted. */
function* reaches(env: Env, m: Machine, vector: number, errorCode: number | null, skipAbsent = false): PagingTask<boolean> {
  const d = yield* deliver(env, m, vector, errorCode, skipAbsent);
  if (d.kind === 'unknown') env.log.note(d.reason);
  return d.kind === 'handled';
}
