/**
 * The CR3 pre-flight: would loading a new CR3 fault or triple-fault? Everything is checked through
 * the NEW tables: the fetch at RIP, the stack, and the delivery of the exceptions and interrupts that
 * could come next, the way the CPU delivers them (Intel SDM vol. 3, 6.12-6.15; task gates, 7.3):
 * IDT gate, code-segment descriptor, TSS stack pointers, the pushes, the handler's first instruction.
 * A fault during delivery follows the double-fault rules (SDM Table 6-5) to a handler, a hang or a
 * triple fault. Inputs the CpuState lacks are reported in `unknown`, never guessed.
 */
import { hex, isCanonical } from './addr.js';
import { cpl, type CpuState } from './cpu.js';
import {
  SYSTEM_TYPE,
  TSS32,
  TSS64,
  decodeGate32,
  decodeGate64,
  decodeSegmentDescriptor,
  decodeSelector,
  decodeTss32,
  describeGateType,
  isNullSelector,
  type IdtGate,
  type SegmentDescriptor,
} from './descriptors.js';
import { pageFaultErrorCode } from './errorCode.js';
import { runAsync, runSync, type AsyncPhysMemory, type FrameData, type PagingTask, type PhysMemory } from './memory.js';
import { withCr3, type PagingContext } from './mode.js';
import { RFLAGS, has } from './registers.js';
import type { Access, AccessKind } from './rights.js';
import { linearSpace, readVirtualTask } from './virtRead.js';
import { walkTask, type WalkFault, type WalkResult } from './walk.js';

/** The pre-flight's answer: `fault` when the next access faults but a handler takes it. */
export type Verdict = 'safe' | 'at-risk' | 'fault' | 'triple-fault';

/** When a problem bites: at once, on the next exception, or on the next interrupt. */
export type ProblemTime = 'now' | 'on-exception' | 'on-interrupt';

/** One failing check. */
export interface PreflightProblem {
  /**
   * 'next-instruction' | 'stack' | 'cr3' | 'gdt' | 'idt' | 'tss', or a part of one vector's delivery:
   * 'gate:#PF', 'stack:#DF' (the stack the delivery pushes to), 'handler:#GP', 'handler:int 0x20'.
   * Interrupt vectors that fail alike are merged: 'handler:int 0x20-0x2f'.
   */
  what: string;
  va: bigint;
  access: AccessKind;
  /** The paging fault, or null when it is not one (gate not present, IDT limit too small...). */
  fault: WalkFault | null;
  walk: WalkResult | null;
  when: ProblemTime;
  /** One line, plain words. */
  explanation: string;
}

/** One exception in the chain the CPU goes through. */
export interface ChainLink {
  /** The vector; {@link TRIPLE_FAULT} (-1) for the shutdown that ends a chain. */
  vector: number;
  name: string;
  errorCode: number | null;
  cr2: bigint | null;
  cause: string;
}

/** Everything the pre-flight found. */
export interface PreflightResult {
  cr3: bigint;
  verdict: Verdict;
  /** Every failing check, with its walk (a 'safe' switch has none). */
  problems: PreflightProblem[];
  /** What the CPU does, in order, when the next access faults: e.g. #PF -> #DF -> triple fault. */
  chain: ChainLink[];
  checked: { what: string; va: bigint; access: AccessKind; ok: boolean }[];
  /** What could not be checked and why. */
  unknown: string[];
  /** One line in plain words. */
  summary: string;
}

/** What the pre-flight starts from. */
export interface PreflightInput {
  /** The paging context with the NEW CR3 (see `withCr3`). */
  ctx: PagingContext;
  /** RIP (the next instruction), RSP, RFLAGS, CS, SS, GDTR, IDTR, TR (with its base). */
  cpu: CpuState;
}

/** The vector pagewalk gives the triple fault (a shutdown, which has no vector). */
export const TRIPLE_FAULT = -1;

/** An exception's class for the double-fault rules (SDM Table 6-4). */
export type ExceptionClass = 'benign' | 'contributory' | 'page-fault' | 'double-fault';

const NAMES: Record<number, string> = {
  0: '#DE',
  1: '#DB',
  2: '#NMI',
  3: '#BP',
  4: '#OF',
  5: '#BR',
  6: '#UD',
  7: '#NM',
  8: '#DF',
  9: '#MF9',
  10: '#TS',
  11: '#NP',
  12: '#SS',
  13: '#GP',
  14: '#PF',
  16: '#MF',
  17: '#AC',
  18: '#MC',
  19: '#XM',
  20: '#VE',
  21: '#CP',
  28: '#HV',
  29: '#VC',
  30: '#SX',
};

/** The short name of a vector: '#PF', '#NMI', 'int 0x20'; 'triple fault' for {@link TRIPLE_FAULT}. */
export function vectorName(vector: number): string {
  if (vector === TRIPLE_FAULT) return 'triple fault';
  return NAMES[vector] ?? `int ${hex(vector)}`;
}

/** The class of a vector (SDM Table 6-4): #DE, #TS, #NP, #SS, #GP, #CP are contributory; #PF, #VE page faults. */
export function exceptionClass(vector: number): ExceptionClass {
  if (vector === 8) return 'double-fault';
  if (vector === 14 || vector === 20) return 'page-fault';
  if ([0, 10, 11, 12, 13, 21].includes(vector)) return 'contributory';
  return 'benign';
}

/** True when delivering `vector` (as an exception) pushes an error code. */
export function pushesErrorCode(vector: number): boolean {
  return [8, 10, 11, 12, 13, 14, 17, 21, 29, 30].includes(vector);
}

/**
 * What a fault `second` raised while delivering `first` leads to (SDM Table 6-5): a #DF, a triple
 * fault (any fault while delivering #DF), or the second exception handled on its own ('serial').
 */
export function faultDuringDelivery(first: number, second: number): 'double-fault' | 'triple-fault' | 'serial' {
  if (first === 8) return 'triple-fault';
  const a = exceptionClass(first);
  const b = exceptionClass(second);
  if (a === 'page-fault' && (b === 'page-fault' || b === 'contributory')) return 'double-fault';
  if (a === 'contributory' && b === 'contributory') return 'double-fault';
  return 'serial';
}

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

// ---------------------------------------------------------------------------------------------
// The CPU as delivery sees it, and what a delivery ends in.

const IMPLICIT_READ: Access = Object.freeze({ kind: 'read', user: false, implicit: true });
const IMPLICIT_WRITE: Access = Object.freeze({ kind: 'write', user: false, implicit: true });
/** Error-code bit 0: the fault happened while delivering an event (EXT). */
const EXT = 1;
/** #GP/#NP error code naming an IDT entry (IDT bit 1, EXT). */
const idtErrorCode = (vector: number): number => (vector << 3) | 2 | EXT;
/** #GP/#NP/#TS/#SS error code naming a GDT selector (EXT). */
const selectorErrorCode = (selector: number): number => (selector & 0xfffc) | EXT;
const MAX_CHAIN = 16;
const EXCEPTIONS_CHECKED = [14, 13, 8];
const NON_MASKABLE_CHECKED = [2, 18];

/** Where the next same-privilege delivery pushes. */
type Stack =
  | { kind: 'known'; base: bigint; sp: bigint; name: string }
  /** Used up by a handler that faults at once, over and over: the next push faults. */
  | { kind: 'exhausted'; name: string }
  /** Not reported by the target (the pushes are not checked). */
  | { kind: 'unknown'; name: string };

interface Machine {
  readonly ctx: PagingContext;
  /** IA-32e delivery (16-byte gates, 64-bit pushes) rather than legacy. */
  readonly long: boolean;
  readonly cpl: number;
  readonly stack: Stack;
  /** EFLAGS.AC: lets explicit supervisor data accesses to user pages pass SMAP. */
  readonly ac: boolean;
  /** TSS selectors a task switch has made busy (a task gate to one of them raises #GP). */
  readonly busy: readonly number[];
}

interface Raised {
  vector: number;
  errorCode: number | null;
  cr2: bigint | null;
}

/** A check that failed, worded for the summary: "the #PF handler's IDT entry at X is not mapped". */
interface Failure {
  raised: Raised;
  /** Whose part it is: the vector's handler ("the #PF handler's stack"), the vector's own ("the #PF gate"), a task's, or nobody's. */
  owner: 'handler' | 'vector' | 'task' | 'plain';
  noun: string;
  verb: string;
  /** Not a check of its own (the stack ran out): no phrase of its own in the summary. */
  silent?: boolean;
}

type Delivery =
  | { kind: 'handled'; handler: bigint; how: string }
  /** A fault during delivery. */
  | { kind: 'faulted'; failure: Failure }
  /** Delivery completed, but the handler's first instruction faults. */
  | { kind: 'handler-faults'; failure: Failure; next: Machine; reloaded: string | null }
  | { kind: 'unknown'; reason: string }
  /** Interrupt sweep only: no present gate for the vector. */
  | { kind: 'absent' };

/** What a problem record needs besides the failure. */
interface ProblemSpec {
  kind: string;
  /** The vector whose delivery this is part of, when the kind names one ('gate', 'stack', 'handler'). */
  vector: number | null;
  /** The CR3 of the address space the access went through. */
  cr3: bigint;
  va: bigint;
  access: AccessKind;
  walk: WalkResult | null;
  explanation: string;
  /** For merging interrupt vectors that fail alike. */
  sig: string;
}

// ---------------------------------------------------------------------------------------------
// The record of checks and problems.

interface Entry<T> {
  kind: string;
  vector: number | null;
  /** Further interrupt vectors merged into this entry. */
  more: number[];
  value: T;
}

/** The checks and problems of one pre-flight, deduplicated, and what could not be checked. */
class Log {
  /** When the problems recorded now would bite. */
  when: ProblemTime = 'now';
  /** The interrupt vector being swept (its entries merge with other vectors' that fail alike), or null. */
  sweeping: number | null = null;
  readonly unknown: string[] = [];
  private readonly checks: Entry<{ va: bigint; access: AccessKind; ok: boolean }>[] = [];
  private readonly problems: Entry<{ problem: PreflightProblem; phrase: string }>[] = [];
  private readonly keys = new Map<string, Entry<unknown>>();

  /** `cr3`: the new CR3; problems found through another address space (a task's) say so. */
  constructor(private readonly cr3: bigint) {}

  /** Something that could not be checked, and why (once). */
  note(reason: string): void {
    if (!this.unknown.includes(reason)) this.unknown.push(reason);
  }

  check(kind: string, vector: number | null, va: bigint, access: AccessKind, ok: boolean, cr3: bigint): void {
    this.add(`check|${cr3}`, this.checks, kind, vector, va, access, String(ok), () => ({ va, access, ok }));
  }

  problem(spec: ProblemSpec, phrase: string): void {
    const problem: PreflightProblem = {
      what: '',
      va: spec.va,
      access: spec.access,
      fault: spec.walk?.fault ?? null,
      walk: spec.walk,
      when: this.when,
      explanation: spec.cr3 === this.cr3 ? spec.explanation : `${spec.explanation} (through the task's tables, CR3 ${hex(spec.cr3)})`,
    };
    this.add(`problem|${spec.cr3}`, this.problems, spec.kind, spec.vector, spec.va, spec.access, spec.sig, () => ({ phrase, problem }));
  }

  /** Adds an entry unless the same one is there; while sweeping, merges it into one that fails alike on the same page. */
  private add<T>(tag: string, list: Entry<T>[], kind: string, vector: number | null, va: bigint, access: AccessKind, sig: string, make: () => T): void {
    const exact = `${tag}|${kind}|${vector === null ? '' : vectorName(vector)}|${va}|${access}`;
    if (this.keys.has(exact)) return;
    const entry: Entry<T> = { kind, vector, more: [], value: make() };
    if (this.sweeping !== null) {
      const alike = `${tag}|sweep|${kind}|${vector === null ? '' : 'v'}|${va >> 12n}|${access}|${sig}`;
      const found = this.keys.get(alike);
      if (found) {
        if (!found.more.includes(this.sweeping)) found.more.push(this.sweeping);
        return;
      }
      this.keys.set(alike, entry);
    }
    list.push(entry);
    this.keys.set(exact, entry);
  }

  /** The checks, with their names. */
  checked(): PreflightResult['checked'] {
    return this.checks.map((e) => ({ what: whatOf(e), va: e.value.va, access: e.value.access, ok: e.value.ok }));
  }

  /** The problems, with their names and summary phrases. */
  found(): { problem: PreflightProblem; phrase: string }[] {
    return this.problems.map((e) => {
      const likewise =
        e.more.length === 0 ? '' : e.vector === null ? ` (likewise for the IDT entries of int ${vectorRanges(e.more)})` : ` (likewise for int ${vectorRanges(e.more)})`;
      return { phrase: e.value.phrase, problem: { ...e.value.problem, what: whatOf(e), explanation: e.value.problem.explanation + likewise } };
    });
  }
}

function whatOf(e: Entry<unknown>): string {
  if (e.vector === null) return e.kind;
  if (e.more.length === 0) return `${e.kind}:${vectorName(e.vector)}`;
  return `${e.kind}:int ${vectorRanges([e.vector, ...e.more])}`;
}

/** "0x20-0x2f,0x40" for a set of vectors. */
function vectorRanges(vectors: readonly number[]): string {
  const sorted = [...new Set(vectors)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? hex(sorted[i]!) : `${hex(sorted[i]!)}-${hex(sorted[j]!)}`);
    i = j + 1;
  }
  return out.join(',');
}

// ---------------------------------------------------------------------------------------------
// Words.

/** A few words for a walk fault: "PD entry not present", "NX in the PML4 entry". */
function shortFault(f: WalkFault): string {
  const level = f.level ?? '';
  switch (f.reason) {
    case 'not-present':
      return `${level} entry not present`;
    case 'outside-memory':
      return `${level} table outside memory`;
    case 'reserved-bit':
      return level === 'CR3' ? 'CR3 has reserved bits set' : `reserved bit in the ${level} entry`;
    case 'non-canonical':
      return 'not canonical';
    case 'protection':
      switch (f.denials[0]) {
        case 'no-execute':
          return `NX in the ${level} entry`;
        case 'smep':
          return 'SMEP: a user page';
        case 'smap':
          return 'SMAP: a user page';
        case 'read-only':
          return `read-only in the ${level} entry`;
        case 'user-to-supervisor':
          return `supervisor page, U/S=0 in the ${level} entry`;
        default:
          return 'protection key';
      }
  }
}

/** The verb for a paging fault: "is not mapped", or "faults (NX in the PD entry)". */
function faultVerb(f: WalkFault): string {
  if (f.reason === 'not-present' || f.reason === 'outside-memory') return 'is not mapped';
  if (f.reason === 'non-canonical') return 'is not canonical';
  return `faults (${shortFault(f)})`;
}

function firstPhrase(f: Failure, vector: number): string {
  const name = vectorName(vector);
  switch (f.owner) {
    case 'handler':
      return `the ${name} handler's ${f.noun} ${f.verb}`;
    case 'vector':
      return `the ${name} ${f.noun} ${f.verb}`;
    case 'task':
      return `the ${name} task's ${f.noun} ${f.verb}`;
    case 'plain':
      return `the ${f.noun} ${f.verb}`;
  }
}

function followPhrase(f: Failure, intro: string, previous: Failure | null): string {
  const either = previous && previous.verb === f.verb && f.verb.startsWith('is not') ? ' either' : '';
  const whose = f.owner === 'plain' ? 'and the' : f.owner === 'task' ? "whose task's" : 'whose';
  return `${intro}, ${whose} ${f.noun} ${f.verb}${either}`;
}

const link = (r: Raised, cause: string): ChainLink => ({ vector: r.vector, name: vectorName(r.vector), errorCode: r.errorCode, cr2: r.cr2, cause });

// ---------------------------------------------------------------------------------------------
// Memory through the frame cache, and the checked accesses.

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

const mod = (v: bigint, space: bigint): bigint => ((v % space) + space) % space;

/** The exception a failed walk raises; a stack access that is not canonical raises #SS, not #GP. */
function raisedBy(walk: WalkResult, stack: boolean): Raised {
  const f = walk.fault!;
  if (f.vector === 14) return { vector: 14, errorCode: f.errorCode, cr2: walk.va };
  return { vector: stack && f.reason === 'non-canonical' ? 12 : 13, errorCode: 0, cr2: null };
}

type Probe = { ok: true; walk: WalkResult } | { ok: false; walk: WalkResult };

/** Walks each page of the `length` bytes below `top`, highest first, as a run of `slot`-byte pushes does. */
function* pushTask(ctx: PagingContext, top: bigint, length: number, slot: number, access: Access): PagingTask<Probe> {
  const space = linearSpace(ctx);
  const low = top - BigInt(length);
  let end = top;
  let last: WalkResult | null = null;
  while (end > low) {
    const at = end - BigInt(slot);
    const walk = yield* walkTask(ctx, mod(at, space), access);
    if (walk.fault) return { ok: false, walk };
    last = walk;
    end = at - (mod(at, space) % 4096n);
  }
  return { ok: true, walk: last! };
}

interface Env {
  readonly cpu: CpuState;
  readonly log: Log;
}

/** Records a failure as a problem and returns it as a delivery that faulted. */
function fail(env: Env, vector: number, failure: Failure, spec: ProblemSpec | null): Delivery {
  if (spec) env.log.problem(spec, firstPhrase(failure, vector));
  return { kind: 'faulted', failure };
}

type Read = { kind: 'ok'; bytes: Uint8Array } | { kind: 'stop'; delivery: Delivery };

/** An implicit supervisor read of a system structure, recorded as a check (and a problem when it faults). */
function* readSystem(
  env: Env,
  ctx: PagingContext,
  vector: number,
  kind: 'idt' | 'gdt' | 'tss',
  va: bigint,
  length: number,
  owner: Failure['owner'],
  noun: string,
  describe: string,
): PagingTask<Read> {
  const r = yield* readVirtualTask(ctx, va, length, IMPLICIT_READ);
  env.log.check(kind, null, va, 'read', r.ok, ctx.cr3);
  if (!r.ok) {
    const f = r.walk.fault!;
    const failure: Failure = { raised: raisedBy(r.walk, false), owner, noun: `${noun} at ${hex(va)}`, verb: faultVerb(f) };
    const spec: ProblemSpec = { kind, vector: null, cr3: ctx.cr3, va: r.walk.va, access: 'read', walk: r.walk, explanation: `${describe} faults: ${f.explanation}`, sig: `${f.level}/${f.reason}` };
    return { kind: 'stop', delivery: fail(env, vector, failure, spec) };
  }
  if (r.unreadable.length > 0) {
    const reason = `${describe}: ${hex(va)} lies in physical memory the target cannot read (frame ${r.unreadable.map((p) => hex(p)).join(', ')})`;
    return { kind: 'stop', delivery: { kind: 'unknown', reason } };
  }
  return { kind: 'ok', bytes: r.bytes };
}

type DescriptorRead = { kind: 'ok'; desc: SegmentDescriptor; va: bigint; cr3: bigint } | { kind: 'missing' } | { kind: 'stop'; delivery: Delivery };

/** Reads the GDT descriptor of `selector` (implicit read), checking the GDT limit. */
function* readDescriptor(
  env: Env,
  ctx: PagingContext,
  vector: number,
  selector: number,
  purpose: string,
  owner: Failure['owner'],
): PagingTask<DescriptorRead> {
  const gdtr = env.cpu.gdtr;
  if (!gdtr) return { kind: 'missing' };
  const space = linearSpace(ctx);
  const va = mod(gdtr.base + BigInt(selector & 0xfff8), space);
  const noun = `${purpose} (selector ${hex(selector)})`;
  if ((selector | 7) > gdtr.limit) {
    const failure: Failure = { raised: { vector: 13, errorCode: selectorErrorCode(selector), cr2: null }, owner, noun, verb: `lies beyond the GDT limit (${hex(gdtr.limit)})` };
    const spec: ProblemSpec = {
      kind: 'gdt',
      vector: null,
      cr3: ctx.cr3,
      va,
      access: 'read',
      walk: null,
      explanation: `selector ${hex(selector)} (${purpose}) lies beyond GDTR.limit ${hex(gdtr.limit)}: #GP(${hex(selectorErrorCode(selector))})`,
      sig: 'gdt-limit',
    };
    return { kind: 'stop', delivery: fail(env, vector, failure, spec) };
  }
  const r = yield* readSystem(env, ctx, vector, 'gdt', va, 8, owner, noun, `reading the GDT entry of selector ${hex(selector)} (${purpose})`);
  if (r.kind === 'stop') return r;
  const raw = new DataView(r.bytes.buffer, r.bytes.byteOffset, 8).getBigUint64(0, true);
  return { kind: 'ok', desc: decodeSegmentDescriptor(raw), va, cr3: ctx.cr3 };
}

/** A descriptor that does not do what it is loaded for: recorded as a 'gdt' problem. */
function badDescriptor(env: Env, vector: number, at: { va: bigint; cr3: bigint }, raised: Raised, owner: Failure['owner'], noun: string, verb: string, why: string): Delivery {
  return fail(env, vector, { raised, owner, noun, verb }, {
    kind: 'gdt',
    vector: null,
    cr3: at.cr3,
    va: at.va,
    access: 'read',
    walk: null,
    explanation: `${why}: ${vectorName(raised.vector)}(${hex(raised.errorCode ?? 0)})`,
    sig: verb,
  });
}

// ---------------------------------------------------------------------------------------------
// Delivery.

/**
 * Delivers `vector` from machine `m`, checking every access the CPU makes. With `skipAbsent`, a vector
 * without a present gate (or beyond the IDT limit) is 'absent' rather than a problem: the kernel chose
 * not to handle it, and no CR3 changes that.
 */
function* deliver(env: Env, m: Machine, vector: number, errorCode: number | null, skipAbsent = false): PagingTask<Delivery> {
  const { cpu, log } = env;
  const name = vectorName(vector);
  const idtr = cpu.idtr;
  if (!idtr) return { kind: 'unknown', reason: 'IDT: the target does not report IDTR, so exception and interrupt delivery was not checked' };
  const size = m.long ? 16 : 8;
  const space = linearSpace(m.ctx);
  const gateVa = mod(idtr.base + BigInt(vector * size), space);

  if (vector * size + size - 1 > idtr.limit) {
    if (skipAbsent) return { kind: 'absent' };
    const ec = idtErrorCode(vector);
    log.check('gate', vector, gateVa, 'read', false, m.ctx.cr3);
    return fail(
      env,
      vector,
      { raised: { vector: 13, errorCode: ec, cr2: null }, owner: 'vector', noun: 'gate', verb: `lies beyond the IDT limit (${hex(idtr.limit)})` },
      {
        kind: 'gate',
        vector,
        cr3: m.ctx.cr3,
        va: gateVa,
        access: 'read',
        walk: null,
        explanation: `the IDT entry of ${name} (IDT offset ${hex(vector * size)}, ${size} bytes) lies beyond IDTR.limit ${hex(idtr.limit)}: delivering ${name} raises #GP(${hex(ec)})`,
        sig: 'idt-limit',
      },
    );
  }

  const read = yield* readSystem(env, m.ctx, vector, 'idt', gateVa, size, 'handler', 'IDT entry', `reading the IDT entry of ${name} at ${hex(gateVa)}`);
  if (read.kind === 'stop') return read.delivery;
  const gate = m.long ? decodeGate64(read.bytes) : decodeGate32(read.bytes);
  if (!gate.present || gate.kind === 'invalid') {
    if (skipAbsent && !gate.present) return { kind: 'absent' };
    log.check('gate', vector, gateVa, 'read', false, m.ctx.cr3);
    const ec = idtErrorCode(vector);
    const notPresent = !gate.present;
    const what = describeGateType(gate.type, m.long);
    return fail(
      env,
      vector,
      {
        raised: { vector: notPresent ? 11 : 13, errorCode: ec, cr2: null },
        owner: 'vector',
        noun: 'gate',
        verb: notPresent ? 'is not present' : `is ${what}, not an interrupt or trap gate`,
      },
      {
        kind: 'gate',
        vector,
        cr3: m.ctx.cr3,
        va: gateVa,
        access: 'read',
        walk: null,
        explanation: notPresent
          ? `the IDT entry of ${name} at ${hex(gateVa)} is not present (P=0): delivering ${name} raises #NP(${hex(ec)})`
          : `the IDT entry of ${name} at ${hex(gateVa)} is ${what}, which ${m.long ? 'a long-mode' : 'an'} IDT cannot hold: delivering ${name} raises #GP(${hex(ec)})`,
        sig: notPresent ? 'gate-absent' : `gate-type-${gate.type}`,
      },
    );
  }
  log.check('gate', vector, gateVa, 'read', true, m.ctx.cr3);
  if (gate.kind === 'task') return yield* taskSwitch(env, m, vector, gate, errorCode);

  // The handler's code segment.
  const sel = gate.selector;
  if (isNullSelector(sel)) {
    return fail(
      env,
      vector,
      { raised: { vector: 13, errorCode: EXT, cr2: null }, owner: 'vector', noun: 'gate', verb: 'names the null selector' },
      { kind: 'gate', vector, cr3: m.ctx.cr3, va: gateVa, access: 'read', walk: null, explanation: `the ${name} gate's selector ${hex(sel)} is null: #GP(${hex(EXT)})`, sig: 'null-selector' },
    );
  }
  if (decodeSelector(sel).ldt) {
    return { kind: 'unknown', reason: `${name} delivery: the gate's selector ${hex(sel)} is in the LDT, which the pre-flight does not read` };
  }
  let newCpl = 0;
  let csBase = 0n;
  let csLimit: number | null = null;
  const cs = yield* readDescriptor(env, m.ctx, vector, sel, 'code segment', 'handler');
  if (cs.kind === 'stop') return cs.delivery;
  if (cs.kind === 'missing') {
    log.note('GDT: the target does not report GDTR, so handler code segments were not read (taken as flat ring-0 code)');
  } else {
    const d = cs.desc;
    const noun = `code segment (selector ${hex(sel)})`;
    const gp: Raised = { vector: 13, errorCode: selectorErrorCode(sel), cr2: null };
    if (d.system || !d.code) return badDescriptor(env, vector, cs, gp, 'handler', noun, 'is not a code segment', `the GDT entry of selector ${hex(sel)} (the ${name} gate's) is not a code segment`);
    if (d.dpl > m.cpl) return badDescriptor(env, vector, cs, gp, 'handler', noun, `has DPL ${d.dpl} above CPL ${m.cpl}`, `the ${name} handler's code segment ${hex(sel)} has DPL ${d.dpl}, above CPL ${m.cpl}`);
    if (!d.present) {
      return badDescriptor(env, vector, cs, { vector: 11, errorCode: selectorErrorCode(sel), cr2: null }, 'handler', noun, 'is not present', `the ${name} handler's code segment ${hex(sel)} is not present`);
    }
    if (m.long && (!d.long || d.big)) {
      return badDescriptor(env, vector, cs, gp, 'handler', noun, 'is not 64-bit code', `the ${name} handler's code segment ${hex(sel)} is not a 64-bit code segment (L=1, D=0)`);
    }
    newCpl = d.conforming ? m.cpl : d.dpl;
    csBase = m.long ? 0n : d.base;
    csLimit = m.long ? null : d.limit;
  }

  // The stack: IST, the ring's stack from the TSS on a privilege change, or the current one.
  const withCode = errorCode !== null;
  const slot = m.long ? 8 : gate.bits / 8;
  const change = newCpl < m.cpl;
  let stack: Stack;
  let reloaded: string | null = null;
  if (m.long && (gate.ist > 0 || change)) {
    const field = gate.ist > 0 ? `IST${gate.ist}` : `RSP${newCpl}`;
    const offset = gate.ist > 0 ? TSS64.ist(gate.ist) : TSS64.rsp(newCpl);
    const t = yield* readTss(env, m.ctx, vector, offset, 8, field);
    if (t.kind === 'stop') return t.delivery;
    if (t.kind === 'missing') stack = { kind: 'unknown', name: `${field} stack` };
    else {
      const sp = new DataView(t.bytes.buffer, t.bytes.byteOffset, 8).getBigUint64(0, true);
      stack = { kind: 'known', base: 0n, sp, name: `${field} stack${sp === 0n ? ` (${field} in the TSS is 0)` : ''}` };
    }
    if (gate.ist > 0) reloaded = `${field} stack`;
  } else if (!m.long && change) {
    const t = yield* readTss(env, m.ctx, vector, TSS32.esp0 + 8 * newCpl, 8, `ESP${newCpl}/SS${newCpl}`);
    if (t.kind === 'stop') return t.delivery;
    if (t.kind === 'missing') stack = { kind: 'unknown', name: `ring-${newCpl} stack` };
    else {
      const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, 8);
      const esp = BigInt(dv.getUint32(0, true));
      const ssSel = dv.getUint16(4, true);
      const ss = yield* readDescriptor(env, m.ctx, vector, ssSel, `SS${newCpl}`, 'handler');
      if (ss.kind === 'stop') return ss.delivery;
      let base = 0n;
      if (ss.kind === 'ok') {
        const d = ss.desc;
        const noun = `stack segment (selector ${hex(ssSel)})`;
        if (d.system || !d.writable || d.dpl !== newCpl || (ssSel & 3) !== newCpl) {
          return badDescriptor(env, vector, ss, { vector: 10, errorCode: selectorErrorCode(ssSel), cr2: null }, 'handler', noun, `is not a writable ring-${newCpl} data segment`, `SS${newCpl} ${hex(ssSel)} in the TSS is not a writable ring-${newCpl} data segment`);
        }
        if (!d.present) return badDescriptor(env, vector, ss, { vector: 12, errorCode: selectorErrorCode(ssSel), cr2: null }, 'handler', noun, 'is not present', `SS${newCpl} ${hex(ssSel)} is not present`);
        base = d.base;
      }
      stack = { kind: 'known', base, sp: esp, name: `ring-${newCpl} stack` };
    }
  } else {
    stack = m.stack;
  }
  const slots = (change ? 5 : m.long ? 5 : 3) + (withCode ? 1 : 0);
  const bytes = slots * slot;
  const userStack = newCpl === 3;
  let after: Stack = stack;
  if (stack.kind === 'exhausted') {
    const ec = pageFaultErrorCode({ present: false, write: true, user: userStack, fetch: false }, m.ctx);
    return { kind: 'faulted', failure: { raised: { vector: 14, errorCode: ec, cr2: null }, owner: 'handler', noun: 'stack', verb: 'has run out', silent: true } };
  }
  if (stack.kind === 'known') {
    const top = m.long ? stack.sp & ~0xfn : stack.base + (stack.sp & 0xffffffffn);
    const access: Access = { kind: 'write', user: userStack, ac: m.ac };
    const p = yield* pushTask(m.ctx, top, bytes, slot, access);
    const low = mod(top - BigInt(bytes), space);
    log.check('stack', vector, low, 'write', p.ok, m.ctx.cr3);
    if (!p.ok) {
      const f = p.walk.fault!;
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, true), owner: 'handler', noun: `stack at ${hex(p.walk.va)}`, verb: faultVerb(f) },
        {
          kind: 'stack',
          vector,
          cr3: m.ctx.cr3,
          va: p.walk.va,
          access: 'write',
          walk: p.walk,
          explanation: `delivering ${name} pushes ${bytes} bytes onto the ${stack.name} at ${hex(low)}, and the push at ${hex(p.walk.va)} faults: ${f.explanation}`,
          sig: `${f.level}/${f.reason}`,
        },
      );
    }
    after = m.long ? { kind: 'known', base: 0n, sp: low, name: stack.name } : { kind: 'known', base: stack.base, sp: (stack.sp - BigInt(bytes)) & 0xffffffffn, name: stack.name };
  } else {
    log.note(`the ${stack.name}: the target does not report TR's base, so the pushes of a delivery that switches stacks were not checked`);
  }

  // The handler's first instruction.
  const handler = m.long ? gate.offset : mod(csBase + gate.offset, space);
  if ((m.long && !isCanonical(handler, m.ctx.vaBits)) || (csLimit !== null && gate.offset > BigInt(csLimit))) {
    const why = m.long ? `is not canonical` : `lies beyond its code segment's limit (${hex(csLimit ?? 0)})`;
    log.check('handler', vector, handler, 'exec', false, m.ctx.cr3);
    return fail(
      env,
      vector,
      { raised: { vector: 13, errorCode: EXT, cr2: null }, owner: 'vector', noun: `handler at ${hex(handler)}`, verb: why },
      { kind: 'handler', vector, cr3: m.ctx.cr3, va: handler, access: 'exec', walk: null, explanation: `the ${name} handler at ${hex(handler)} ${why}: delivering ${name} raises #GP(${hex(EXT)})`, sig: 'handler-range' },
    );
  }
  const next: Machine = { ...m, cpl: newCpl, stack: after };
  const how = stack === m.stack ? '' : ` on the ${stack.name}`;
  return yield* fetchHandler(env, next, vector, handler, 'vector', how, reloaded);
}

type TssRead = { kind: 'ok'; bytes: Uint8Array } | { kind: 'missing' } | { kind: 'stop'; delivery: Delivery };

/** Reads a field of the current TSS (at TR's base), checking TR's limit. */
function* readTss(env: Env, ctx: PagingContext, vector: number, offset: number, length: number, field: string): PagingTask<TssRead> {
  const tr = env.cpu.tr;
  if (tr?.base === undefined) return { kind: 'missing' };
  const va = mod(tr.base + BigInt(offset), linearSpace(ctx));
  if (tr.limit !== undefined && offset + length - 1 > tr.limit) {
    const ec = selectorErrorCode(tr.selector);
    return {
      kind: 'stop',
      delivery: fail(
        env,
        vector,
        { raised: { vector: 10, errorCode: ec, cr2: null }, owner: 'handler', noun: `${field} field`, verb: `lies beyond the TSS limit (${hex(tr.limit)})` },
        { kind: 'tss', vector: null, cr3: ctx.cr3, va, access: 'read', walk: null, explanation: `${field} at TSS offset ${hex(offset)} lies beyond TR.limit ${hex(tr.limit)}: #TS(${hex(ec)})`, sig: 'tss-limit' },
      ),
    };
  }
  const r = yield* readSystem(env, ctx, vector, 'tss', va, length, 'handler', `${field} entry in the TSS`, `reading ${field} from the TSS at ${hex(va)}`);
  return r;
}

/** Fetches a handler's first instruction; a fault there comes after delivery completed. */
function* fetchHandler(env: Env, next: Machine, vector: number, va: bigint, owner: Failure['owner'], how: string, reloaded: string | null): PagingTask<Delivery> {
  const name = vectorName(vector);
  const walk = yield* walkTask(next.ctx, va, { kind: 'exec', user: next.cpl === 3 });
  env.log.check('handler', vector, va, 'exec', walk.fault === null, next.ctx.cr3);
  if (walk.fault) {
    const f = walk.fault;
    const failure: Failure = { raised: raisedBy(walk, false), owner, noun: owner === 'task' ? `first instruction at ${hex(va)}` : `handler at ${hex(va)}`, verb: faultVerb(f) };
    env.log.problem(
      {
        kind: 'handler',
        vector,
        cr3: next.ctx.cr3,
        va,
        access: 'exec',
        walk,
        explanation: `the first instruction of the ${name} handler at ${hex(va)} cannot be fetched: ${f.explanation}`,
        sig: `${f.level}/${f.reason}`,
      },
      firstPhrase(failure, vector),
    );
    return { kind: 'handler-faults', failure, next, reloaded };
  }
  return { kind: 'handled', handler: va, how };
}

/** A legacy task gate: save the outgoing task, load the TSS the gate names, and run its handler in its address space. */
function* taskSwitch(env: Env, m: Machine, vector: number, gate: IdtGate, errorCode: number | null): PagingTask<Delivery> {
  const { cpu, log } = env;
  const name = vectorName(vector);
  const sel = gate.selector;
  const space = linearSpace(m.ctx);
  if (isNullSelector(sel) || decodeSelector(sel).ldt) {
    const ec = selectorErrorCode(sel);
    return fail(
      env,
      vector,
      { raised: { vector: 13, errorCode: ec, cr2: null }, owner: 'vector', noun: 'task gate', verb: `names ${hex(sel)}, not a TSS in the GDT` },
      { kind: 'gate', vector, cr3: m.ctx.cr3, va: mod((cpu.idtr?.base ?? 0n) + BigInt(vector * 8), space), access: 'read', walk: null, explanation: `the ${name} task gate names selector ${hex(sel)}, which is not a TSS in the GDT: #GP(${hex(ec)})`, sig: 'task-selector' },
    );
  }
  const tssDesc = yield* readDescriptor(env, m.ctx, vector, sel, 'TSS descriptor', 'task');
  if (tssDesc.kind === 'stop') return tssDesc.delivery;
  if (tssDesc.kind === 'missing') return { kind: 'unknown', reason: `${name} task gate: the target does not report GDTR, so the task's TSS cannot be found` };
  const d = tssDesc.desc;
  const noun = `TSS descriptor (selector ${hex(sel)})`;
  const gp: Raised = { vector: 13, errorCode: selectorErrorCode(sel), cr2: null };
  const index = sel & 0xfff8;
  if (d.system && (d.type === SYSTEM_TYPE.TSS_BUSY || m.busy.includes(index) || index === ((cpu.tr?.selector ?? 0) & 0xfff8))) {
    return badDescriptor(env, vector, tssDesc, gp, 'task', noun, 'is busy', `the ${name} task gate's TSS ${hex(sel)} is busy (the task is already running)`);
  }
  if (!d.system || d.type !== SYSTEM_TYPE.TSS) {
    const what = d.system ? describeGateType(d.type, false) : 'a code or data segment';
    return badDescriptor(env, vector, tssDesc, gp, 'task', noun, `is ${what}, not an available 32-bit TSS`, `the ${name} task gate's selector ${hex(sel)} is ${what}, not an available 32-bit TSS`);
  }
  if (!d.present) return badDescriptor(env, vector, tssDesc, { ...gp, vector: 11 }, 'task', noun, 'is not present', `the ${name} task's TSS descriptor ${hex(sel)} is not present`);
  if (d.limit < TSS32.size - 1) {
    return badDescriptor(env, vector, tssDesc, { ...gp, vector: 10 }, 'task', noun, `has a limit below 0x67 (${hex(d.limit)})`, `the ${name} task's TSS ${hex(sel)} has limit ${hex(d.limit)}, below 0x67`);
  }

  // Save the outgoing task's state into the current TSS.
  const tr = cpu.tr;
  if (tr?.base === undefined) {
    log.note(`the current TSS: the target does not report TR's base, so saving the outgoing task's state for the ${name} task switch was not checked`);
  } else {
    const at = mod(tr.base + BigInt(TSS32.saveStart), space);
    const p = yield* pushTask(m.ctx, at + BigInt(TSS32.saveEnd - TSS32.saveStart), TSS32.saveEnd - TSS32.saveStart, 4, IMPLICIT_WRITE);
    log.check('tss', null, at, 'write', p.ok, m.ctx.cr3);
    if (!p.ok) {
      const f = p.walk.fault!;
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, false), owner: 'plain', noun: `current TSS at ${hex(at)}`, verb: f.reason === 'not-present' ? 'is not mapped' : `cannot be written (${shortFault(f)})` },
        { kind: 'tss', vector: null, cr3: m.ctx.cr3, va: p.walk.va, access: 'write', walk: p.walk, explanation: `the ${name} task switch saves the outgoing task into the current TSS at ${hex(at)}, and the write faults: ${f.explanation}`, sig: `${f.level}/${f.reason}` },
      );
    }
  }

  // Read the new TSS, mark its descriptor busy, write its back link.
  const tssVa = mod(d.base, space);
  const r = yield* readSystem(env, m.ctx, vector, 'tss', tssVa, TSS32.size, 'task', 'TSS', `reading the ${name} task's TSS at ${hex(tssVa)}`);
  if (r.kind === 'stop') return r.delivery;
  for (const [kind, va, length, noun] of [
    ['gdt', tssDesc.va, 8, `TSS descriptor at ${hex(tssDesc.va)}`],
    ['tss', tssVa, 2, `TSS at ${hex(tssVa)}`],
  ] as const) {
    const p = yield* pushTask(m.ctx, va + BigInt(length), length, length, IMPLICIT_WRITE);
    log.check(kind, null, va, 'write', p.ok, m.ctx.cr3);
    if (!p.ok) {
      const f = p.walk.fault!;
      const what = kind === 'gdt' ? 'sets the busy bit in the TSS descriptor' : 'writes the back link into the new TSS';
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, false), owner: 'task', noun, verb: `cannot be written (${shortFault(f)})` },
        { kind, vector: null, cr3: m.ctx.cr3, va: p.walk.va, access: 'write', walk: p.walk, explanation: `the ${name} task switch ${what} at ${hex(va)}, and the write faults: ${f.explanation}`, sig: `${f.level}/${f.reason}` },
      );
    }
  }
  const tss = decodeTss32(r.bytes);

  // Load the task's CR3, then its segments, through the task's own tables.
  const ctx = m.ctx.mode === 'none' ? m.ctx : withCr3(m.ctx, BigInt(tss.cr3));
  const bad = yield* cr3Fault(ctx);
  if (bad) {
    const f = bad.fault!;
    return fail(
      env,
      vector,
      { raised: { vector: 13, errorCode: 0, cr2: null }, owner: 'task', noun: `CR3 ${hex(tss.cr3)}`, verb: `cannot be loaded (${shortFault(f)})` },
      { kind: 'tss', vector: null, cr3: m.ctx.cr3, va: tssVa + BigInt(TSS32.cr3), access: 'read', walk: bad, explanation: `the ${name} task's CR3 ${hex(tss.cr3)} cannot be loaded: ${f.explanation}`, sig: 'task-cr3' },
    );
  }
  const task: Machine = { ctx, long: false, cpl: tss.cs & 3, stack: m.stack, ac: (tss.eflags & Number(RFLAGS.AC)) !== 0, busy: [...m.busy, index] };
  let csBase = 0n;
  let ssBase = 0n;
  for (const [which, selector] of [
    ['CS', tss.cs],
    ['SS', tss.ss],
  ] as const) {
    const seg = yield* readDescriptor(env, ctx, vector, selector, `the task's ${which}`, 'task');
    if (seg.kind === 'stop') return seg.delivery;
    if (seg.kind === 'missing') {
      log.note(`GDT: the target does not report GDTR, so the ${name} task's CS and SS were not read (taken as flat segments)`);
      break;
    }
    const s = seg.desc;
    const ok = which === 'CS' ? !s.system && s.code : !s.system && s.writable;
    const segNoun = `${which} (selector ${hex(selector)})`;
    if (!ok || isNullSelector(selector)) {
      return badDescriptor(env, vector, seg, { vector: 10, errorCode: selectorErrorCode(selector), cr2: null }, 'task', segNoun, `is not a ${which === 'CS' ? 'code' : 'writable data'} segment`, `the ${name} task's ${which} ${hex(selector)} is not a ${which === 'CS' ? 'code' : 'writable data'} segment`);
    }
    if (!s.present) {
      return badDescriptor(env, vector, seg, { vector: which === 'CS' ? 11 : 12, errorCode: selectorErrorCode(selector), cr2: null }, 'task', segNoun, 'is not present', `the ${name} task's ${which} ${hex(selector)} is not present`);
    }
    if (which === 'CS') csBase = s.base;
    else ssBase = s.base;
  }

  // The error code goes onto the new task's stack; then the task runs from its EIP.
  const newSpace = linearSpace(ctx);
  let sp = BigInt(tss.esp);
  if (errorCode !== null) {
    const top = mod(ssBase + sp, newSpace);
    const p = yield* pushTask(ctx, top, 4, 4, { kind: 'write', user: task.cpl === 3, ac: task.ac });
    log.check('stack', vector, mod(top - 4n, newSpace), 'write', p.ok, ctx.cr3);
    if (!p.ok) {
      const f = p.walk.fault!;
      return fail(
        env,
        vector,
        { raised: raisedBy(p.walk, true), owner: 'task', noun: `stack at ${hex(p.walk.va)}`, verb: faultVerb(f) },
        {
          kind: 'stack',
          vector,
          cr3: ctx.cr3,
          va: p.walk.va,
          access: 'write',
          walk: p.walk,
          explanation: `the ${name} task switch pushes the error code onto the task's stack at ${hex(p.walk.va)} (CR3 ${hex(tss.cr3)}), and it faults: ${f.explanation}`,
          sig: `${f.level}/${f.reason}`,
        },
      );
    }
    sp -= 4n;
  }
  const next: Machine = { ...task, stack: { kind: 'known', base: ssBase, sp: sp & 0xffffffffn, name: `${name} task's stack` } };
  const how = ` in the task of TSS ${hex(sel)} (CR3 ${hex(tss.cr3)})`;
  return yield* fetchHandler(env, next, vector, mod(csBase + BigInt(tss.eip), newSpace), 'task', how, null);
}

/** The walk that shows why loading `ctx`'s CR3 raises #GP: bits above MAXPHYADDR, or a PAE PDPTE with reserved bits. */
function* cr3Fault(ctx: PagingContext): PagingTask<WalkResult | null> {
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

// ---------------------------------------------------------------------------------------------
// The pre-flight.

type ChainEnd = 'handled' | 'triple-fault' | 'hang' | 'unknown';

/** Follows the exception `first` through delivery after delivery until a handler runs, the CPU hangs or shuts down. */
function* follow(env: Env, m0: Machine, first: Raised, parts: string[]): PagingTask<{ chain: ChainLink[]; end: ChainEnd }> {
  const chain: ChainLink[] = [];
  let pending = first;
  let m = m0;
  let intro: string | null = null;
  let previous: Failure | null = null;
  const seen = new Set<string>();
  for (let step = 0; step < MAX_CHAIN; step++) {
    const name = vectorName(pending.vector);
    const d = yield* deliver(env, m, pending.vector, pushesErrorCode(pending.vector) ? (pending.errorCode ?? 0) : null);
    if (d.kind === 'unknown' || d.kind === 'absent') {
      const reason = d.kind === 'unknown' ? d.reason : `${name}: no gate`;
      env.log.note(reason);
      parts.push(`${intro ? `${intro}, and ` : ''}what happens next is unknown (${reason.split(':')[0]} not checked)`);
      return { chain, end: 'unknown' };
    }
    if (d.kind === 'handled') {
      parts.push(intro ? `${intro}, handled by its handler at ${hex(d.handler)}${d.how}` : `and the ${name} handler at ${hex(d.handler)}${d.how} takes it`);
      return { chain, end: 'handled' };
    }
    const f = d.failure;
    if (!f.silent) parts.push(intro ? followPhrase(f, intro, previous) : firstPhrase(f, pending.vector));
    else if (intro) parts.push(`${intro}, which pushes onto the same exhausted stack`);
    previous = f;
    const x = f.raised;
    const xName = vectorName(x.vector);
    const what = f.silent ? `the ${f.noun} ${f.verb}` : firstPhrase(f, pending.vector);

    if (d.kind === 'faulted') {
      const rule = faultDuringDelivery(pending.vector, x.vector);
      if (rule === 'triple-fault') {
        chain.push({
          vector: TRIPLE_FAULT,
          name: vectorName(TRIPLE_FAULT),
          errorCode: null,
          cr2: null,
          cause: `${xName} while delivering #DF (${what}): the CPU shuts down; QEMU resets, or stops with -action shutdown=pause`,
        });
        return { chain, end: 'triple-fault' };
      }
      if (rule === 'double-fault') {
        pending = { vector: 8, errorCode: 0, cr2: null };
        chain.push(link(pending, `${xName} while delivering ${name}: ${what}`));
        intro = 'so #DF';
      } else {
        pending = x;
        chain.push(link(pending, `${xName} while delivering ${name}, which the CPU then handles on its own: ${what}`));
        intro = `so ${xName}`;
      }
      continue;
    }

    // The handler's first instruction faults. The same vector again means it faults every time.
    const key = `${pending.vector}>${x.vector}|${d.next.ctx.cr3}|${d.next.cpl}`;
    if (x.vector === pending.vector || seen.has(key)) {
      if (d.reloaded) {
        chain.push(link(x, `${what}: each ${xName} raises another, and the ${d.reloaded} is reloaded from the TSS at every delivery, so this repeats forever`));
        parts.push(`so the CPU hangs, taking ${xName} after ${xName} on the ${d.reloaded}`);
        return { chain, end: 'hang' };
      }
      chain.push(link(x, `${what}: each ${xName} raises another, pushing a frame onto the same stack, until the stack runs out`));
      parts.push(`so every ${xName} raises another until the stack runs out`);
      const name0 = d.next.stack.name;
      m = { ...d.next, stack: { kind: 'exhausted', name: name0 } };
      pending = x;
      intro = null;
      continue;
    }
    seen.add(key);
    chain.push(link(x, `${what}: ${name} was delivered, and its handler faults at once`));
    m = d.next;
    pending = x;
    intro = `so ${xName}`;
  }
  env.log.note(`the exception chain: it goes on past ${MAX_CHAIN} exceptions; the pre-flight stopped following it`);
  return { chain, end: 'unknown' };
}

function* preflightBody(input: PreflightInput): PagingTask<PreflightResult> {
  const { ctx, cpu } = input;
  const log = new Log(ctx.cr3);
  const env: Env = { cpu, log };
  const long = ctx.mode === '4-level' || ctx.mode === '5-level';
  const space = linearSpace(ctx);

  // MOV to CR3 itself: bits above MAXPHYADDR, or PAE PDPTEs with reserved bits, raise #GP(0).
  const bad = yield* cr3Fault(ctx);
  if (bad) {
    const f = bad.fault!;
    const raised: Raised = { vector: 13, errorCode: 0, cr2: null };
    const cause = `loading CR3 ${hex(ctx.cr3)} raises #GP(0) (${shortFault(f)})`;
    return {
      cr3: ctx.cr3,
      verdict: 'fault',
      problems: [{ what: 'cr3', va: bad.va, access: 'read', fault: f, walk: bad, when: 'now', explanation: f.explanation }],
      chain: [link(raised, cause)],
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

  // Now: the fetch at RIP, a push at RSP-slot, a read at RSP.
  const rip = long ? cpu.rip : mod(csBase + (cpu.rip & 0xffffffffn), space);
  const top = long ? sp : mod(ssBase + sp, space);
  const nowChecks: { what: string; va: bigint; access: Access; label: string; stack: boolean }[] = [
    { what: 'next-instruction', va: rip, access: { kind: 'exec', user }, label: `the fetch at RIP ${hex(rip)}`, stack: false },
    { what: 'stack', va: mod(top - BigInt(slot), space), access: { kind: 'write', user, ac }, label: `the push at RSP-${slot} ${hex(mod(top - BigInt(slot), space))}`, stack: true },
    { what: 'stack', va: top, access: { kind: 'read', user, ac }, label: `the read at RSP ${hex(top)}`, stack: true },
  ];
  let nowFault: { raised: Raised; phrase: string } | null = null;
  for (const c of nowChecks) {
    const r = c.access.kind === 'write' ? yield* pushTask(ctx, c.va + BigInt(slot), slot, slot, c.access) : yield* probeTask(ctx, c.va, c.access, c.access.kind === 'exec' ? 1 : slot);
    log.check(c.what, null, c.va, c.access.kind, r.ok, ctx.cr3);
    if (r.ok) continue;
    const f = r.walk.fault!;
    const phrase = `${c.label} faults (${shortFault(f)})`;
    log.problem({ kind: c.what, vector: null, cr3: ctx.cr3, va: c.va, access: c.access.kind, walk: r.walk, explanation: `${c.label} faults: ${f.explanation}`, sig: '' }, phrase);
    nowFault ??= { raised: raisedBy(r.walk, c.stack), phrase };
  }

  // What the CPU does with that fault.
  log.when = 'on-exception';
  const parts: string[] = [];
  let chain: ChainLink[] = [];
  let end: ChainEnd | null = null;
  if (nowFault) {
    parts.push(nowFault.phrase);
    const followed = yield* follow(env, m0, nowFault.raised, parts);
    chain = [link(nowFault.raised, nowFault.phrase), ...followed.chain];
    end = followed.end;
  }

  // The next exception or interrupt, delivered from where the CPU stands now.
  const handled: string[] = [];
  for (const v of EXCEPTIONS_CHECKED) {
    const d = yield* deliver(env, m0, v, 0);
    if (d.kind === 'unknown') log.note(d.reason);
    if (d.kind === 'handled') handled.push(vectorName(v));
  }
  log.when = 'on-interrupt';
  for (const v of NON_MASKABLE_CHECKED) {
    const d = yield* deliver(env, m0, v, null, true);
    if (d.kind === 'unknown') log.note(d.reason);
    if (d.kind === 'handled') handled.push(vectorName(v));
  }
  let interrupts = 0;
  if (has(cpu.rflags, RFLAGS.IF) && cpu.idtr) {
    // Every present gate from 0x20 up to the IDT limit: any of them may be raised by a device.
    const last = Math.min(0xff, Math.floor((cpu.idtr.limit + 1) / (long ? 16 : 8)) - 1);
    for (let v = 0x20; v <= last; v++) {
      log.sweeping = v;
      const d = yield* deliver(env, m0, v, null, true);
      if (d.kind === 'unknown') log.note(d.reason);
      if (d.kind === 'handled') interrupts++;
    }
    log.sweeping = null;
  }

  const found = log.found();
  const problems = found.map((p) => p.problem);
  let verdict: Verdict;
  let summary: string;
  if (nowFault) {
    verdict = end === 'triple-fault' ? 'triple-fault' : 'fault';
    summary = `${verdict === 'triple-fault' ? 'triple fault' : 'fault'}: ${parts.join(', ')}`;
  } else if (problems.length > 0) {
    verdict = 'at-risk';
    const first = found[0]!;
    const more = found.length - 1;
    const on = first.problem.when === 'on-interrupt' ? 'on an interrupt' : 'on an exception';
    summary = `at risk: the next instruction and the stack are fine, but ${on}, ${first.phrase}${more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'})` : ''}`;
  } else {
    verdict = 'safe';
    const delivered = handled.length > 0 ? `, and delivery of ${listWords(handled)}${interrupts > 0 ? ` and ${interrupts} interrupt vector${interrupts === 1 ? '' : 's'}` : ''} reaches its handlers` : '';
    summary = `safe${log.unknown.length > 0 ? ' as far as checked' : ''}: the next instruction and the stack work through the new tables${delivered}`;
  }
  if (log.unknown.length > 0 && verdict !== 'fault' && verdict !== 'triple-fault') {
    summary += `; not checked: ${log.unknown.map((u) => u.split(':')[0]).join(', ')}`;
  }
  return { cr3: ctx.cr3, verdict, problems, chain, checked: log.checked(), unknown: [...log.unknown], summary };
}

/** Walks `length` bytes at `va` with `access` (no data read): the first page that faults, or the last walk. */
function* probeTask(ctx: PagingContext, va: bigint, access: Access, length: number): PagingTask<Probe> {
  const space = linearSpace(ctx);
  let walk = yield* walkTask(ctx, mod(va, space), access);
  if (walk.fault) return { ok: false, walk };
  const last = mod(va + BigInt(length - 1), space);
  if (last >> 12n !== mod(va, space) >> 12n) {
    walk = yield* walkTask(ctx, last & ~0xfffn, access);
    if (walk.fault) return { ok: false, walk };
  }
  return { ok: true, walk };
}

function listWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}
