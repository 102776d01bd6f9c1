/**
 * Why a guest triple-faulted, from the state QEMU kept (`-action reboot=shutdown,shutdown=pause`:
 * the guest stops in the `shutdown` state with RIP, RSP, CR2 and CR3 as they were).
 *
 * The CPU shut down while delivering an exception, so the state holds the instruction that raised
 * the first one. Three things are held against the tables as they are now: the pre-flight of the
 * current state (the fetch at RIP, the push at RSP, and the delivery of #PF, #GP and #DF through the
 * IDT, GDT and TSS), the memory the instruction at RIP accesses (decoded with the registers kept,
 * `add [rax], al` writing what RAX points at), and CR2 (the last #PF's address) walked with the
 * access it most likely was. The first of these whose chain ends in a triple fault is the story;
 * a `-d int` log, when given, adds the chain QEMU actually took.
 */
import { diagnoseAsync, hintKey, type Hint } from '../faults/diagnose.js';
import { LogExplainer, type LogChain } from '../faults/explainLog.js';
import { QemuLogParser, parseQemuLogStream } from '../faults/qemuLog.js';
import { hex } from '../paging/addr.js';
import { cpl, type CpuState } from '../paging/cpu.js';
import { raisedBy, type Env, type Machine, type Raised } from '../paging/deliveryModel.js';
import { chainLink, follow, type ChainEnd } from '../paging/exceptionChain.js';
import { vectorName } from '../paging/exceptions.js';
import { shortFault } from '../paging/faultWords.js';
import { runAsync, type PagingTask } from '../paging/memory.js';
import { pagingContext, type CpuFeatures, type PagingContext } from '../paging/mode.js';
import { preflightAsync, type ChainLink, type PreflightResult } from '../paging/preflight.js';
import { Log } from '../paging/preflightLog.js';
import { RFLAGS, has } from '../paging/registers.js';
import type { AccessKind } from '../paging/rights.js';
import { walkTask, type WalkResult } from '../paging/walk.js';
import type { Target } from '../target/target.js';
import { codeBits, decodeInstruction, readCodeTask, type GuestInstruction, type MemoryAccess } from './code.js';

/** The instruction's own access that faults, and where the CPU goes from there. */
export interface FaultingAccess extends MemoryAccess {
  walk: WalkResult;
  chain: ChainLink[];
  end: ChainEnd;
}

/** The post-mortem of a shut-down guest. */
export interface PostMortem {
  cpu: CpuState;
  ctx: PagingContext;
  /** The pre-flight of the state kept (the tables loaded, RIP, RSP, IDT...). */
  preflight: PreflightResult;
  /** The instruction at RIP, when it can be fetched and decoded. */
  instruction: GuestInstruction | null;
  /** Its memory access that faults, if one does. */
  access: FaultingAccess | null;
  /** The exception it raises by itself (int3, int n, ud2), and where its delivery goes. */
  raised: { vector: number; chain: ChainLink[]; end: ChainEnd } | null;
  /** CR2 walked with the access it most likely was (null when CR2 is 0). */
  cr2: { access: AccessKind; walk: WalkResult } | null;
  hints: Hint[];
  /** The triple fault in the `-d int` log, when one was given and shows it. */
  log: LogChain | null;
  /** Whether the state explains a triple fault by itself. */
  explained: boolean;
  /** One paragraph in plain words. */
  summary: string;
}

/** Options of {@link postMortem}. */
export interface PostMortemOptions {
  features: CpuFeatures;
  /** QEMU's `-d int` log (the lines of `-D FILE`), when its path is known. */
  log?: AsyncIterable<string | Uint8Array>;
  ram?: readonly { start: bigint; end: bigint }[] | null;
}

/** The chain the exception `first` (raised by the instruction at RIP) goes through, from the state kept. */
function* chainFrom(ctx: PagingContext, cpu: CpuState, first: Raised, cause: string): PagingTask<{ chain: ChainLink[]; end: ChainEnd; parts: string[] }> {
  const long = ctx.mode === '4-level' || ctx.mode === '5-level';
  const env: Env = { cpu, log: new Log(ctx.cr3) };
  const m0: Machine = {
    ctx,
    long,
    cpl: cpl(cpu),
    stack: { kind: 'known', base: long ? 0n : (cpu.ss?.base ?? 0n), sp: long ? cpu.rsp : cpu.rsp & 0xffffffffn, name: 'current stack' },
    ac: has(cpu.rflags, RFLAGS.AC),
    busy: [],
  };
  const parts: string[] = [];
  const followed = yield* follow(env, m0, first, parts);
  return { chain: [chainLink(first, cause), ...followed.chain], end: followed.end, parts };
}

/** The last chain of the log that ends in a triple fault. */
async function logTripleFault(input: AsyncIterable<string | Uint8Array>): Promise<LogChain | null> {
  const parser = new QemuLogParser();
  const explainer = new LogExplainer();
  for await (const e of parseQemuLogStream(input, parser)) explainer.push(e);
  const x = explainer.finish(parser.stats);
  return [...x.chains].reverse().find((c) => c.end === 'triple-fault') ?? null;
}

/** Explains why the guest behind `target` (shut down by a triple fault) went down. */
export async function postMortem(target: Target, opts: PostMortemOptions): Promise<PostMortem> {
  const cpu = await target.cpuState();
  const ctx = pagingContext(cpu, opts.features);
  const pre = await preflightAsync(target, { ctx, cpu });
  const user = cpl(cpu) === 3;
  const bits = codeBits(cpu);
  const bytes = await runAsync(readCodeTask(ctx, cpu.rip, user), target);
  const instruction = decodeInstruction(bytes, bits, cpu.rip, cpu);

  // The instruction's own accesses, when the fetch and the push are fine.
  let access: FaultingAccess | null = null;
  let accessParts: string[] = [];
  const nowFault = pre.problems.some((p) => p.when === 'now');
  if (instruction && !nowFault) {
    for (const m of instruction.memory) {
      const w = await runAsync(walkTask(ctx, m.va, { kind: m.access, user, ac: has(cpu.rflags, RFLAGS.AC) }), target);
      if (!w.fault) continue;
      const cause = `the instruction at RIP ${hex(cpu.rip)} (${instruction.text}) ${m.access === 'write' ? 'writes' : 'reads'} ${hex(m.va)}, which faults (${shortFault(w.fault)})`;
      const c = await runAsync(chainFrom(ctx, cpu, raisedBy(w, false), cause), target);
      access = { ...m, walk: w, chain: c.chain, end: c.end };
      accessParts = [cause, ...c.parts];
      break;
    }
  }

  // An instruction that raises an exception by itself (int3, int n, ud2): its delivery.
  let raisedChain: { chain: ChainLink[]; end: ChainEnd; parts: string[] } | null = null;
  if (instruction?.raises != null && !nowFault && !access) {
    const v = instruction.raises;
    const cause = `the instruction at RIP ${hex(cpu.rip)} (${instruction.text}) raises ${vectorName(v)}`;
    raisedChain = await runAsync(chainFrom(ctx, cpu, { vector: v, errorCode: null, cr2: null }, cause), target);
    raisedChain.parts.unshift(cause);
  }

  // CR2: the address of the last #PF, walked with the access it most likely was.
  let cr2: PostMortem['cr2'] = null;
  if (cpu.cr2 !== 0n) {
    const kind: AccessKind =
      cpu.cr2 === cpu.rip
        ? 'exec'
        : (instruction?.memory.find((m) => cpu.cr2 >= m.va && cpu.cr2 < m.va + BigInt(m.size))?.access ??
          (cpu.cr2 < cpu.rsp + 64n && cpu.cr2 + 4096n >= cpu.rsp ? 'write' : 'read'));
    cr2 = { access: kind, walk: await runAsync(walkTask(ctx, cpu.cr2, { kind, user }), target) };
  }

  // Hints for every walk that faulted.
  const hints: Hint[] = [];
  const add = (hs: Hint[]): void => {
    for (const h of hs) if (!hints.some((x) => hintKey(x) === hintKey(h))) hints.push(h);
  };
  for (const p of pre.problems) {
    if (p.walk?.fault) add(await diagnoseAsync(target, { ctx, walk: p.walk, role: p.what === 'next-instruction' || p.what.startsWith('handler') ? 'fetch' : p.what.startsWith('stack') ? 'stack' : 'system', rsp: cpu.rsp, ram: opts.ram ?? null }));
  }
  if (access) add(await diagnoseAsync(target, { ctx, walk: access.walk, role: 'data', rsp: cpu.rsp, ram: opts.ram ?? null }));
  if (cr2?.walk.fault) add(await diagnoseAsync(target, { ctx, walk: cr2.walk, rsp: cpu.rsp, ram: opts.ram ?? null }));
  const fetch = await runAsync(walkTask(ctx, cpu.rip, { kind: 'exec', user }), target);
  if (!fetch.fault) add(await diagnoseAsync(target, { ctx, walk: fetch, role: 'fetch', ram: opts.ram ?? null }));

  const log = opts.log ? await logTripleFault(opts.log) : null;

  let explained = true;
  let summary: string;
  if (pre.verdict === 'triple-fault') {
    summary = `It triple-faulted because, from the state kept, ${pre.summary.replace(/^triple fault: /, '')}.`;
  } else if (access && access.end === 'triple-fault') {
    summary = `It triple-faulted because ${accessParts.join(', ')}.`;
  } else if (raisedChain && raisedChain.end === 'triple-fault') {
    summary = `It triple-faulted because ${raisedChain.parts.join(', ')}.`;
  } else {
    explained = false;
    const cr2Text = cr2 ? ` CR2 ${hex(cpu.cr2)} (${cr2.access}) ${cr2.walk.fault ? `faults: ${cr2.walk.fault.explanation}` : 'is mapped now'}.` : '';
    summary = `The state kept does not reproduce the triple fault by itself (the pre-flight of it says: ${pre.summary}).${cr2Text}`;
  }
  if (log) summary += ` QEMU's log shows: ${log.oneLine}.`;
  const raised = raisedChain && instruction?.raises != null ? { vector: instruction.raises, chain: raisedChain.chain, end: raisedChain.end } : null;
  return { cpu, ctx, preflight: pre, instruction, access, raised, cr2, hints, log, explained, summary };
}
