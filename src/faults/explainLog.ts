/**
 * Explains a parsed QEMU `-d int,cpu_reset` log: every exception with its name, error code (bit by
 * bit for #PF, as a selector for #TS/#NP/#SS/#GP), RIP, CPL, CR2 and CR3; the chains QEMU took
 * (a #PF whose delivery faults becomes #DF, a fault while delivering #DF is a triple fault), told
 * apart from software and hardware interrupts; a reset loop or a fault repeating forever summarised
 * once with a count; and the outcome in plain words. Pure, and streaming: feed events one by one
 * and memory stays bounded (chains are kept once per kind, up to a limit, and counted after that).
 */
import { hex } from '../paging/addr.js';
import { decodeErrorCode, type DecodedErrorCode } from './errorCode.js';
import { explainDeliveryFailure, type DeliveryFailure } from './logDelivery.js';
import {
  SELECTOR_VECTORS,
  decodeSelectorErrorCode,
  hasErrorCode,
  longName,
  shortName,
  usualCauses,
  type DeliveryKind,
  type SelectorErrorCode,
} from './logExceptions.js';
import type { CpuDump, InterruptEvent, LogEvent } from './qemuLog.js';

/** The paging registers of a logged exception (from its register dump). */
export interface LoggedPaging {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

/** One interrupt or exception of the log, explained. */
export interface LoggedException {
  /** Line of its `v=` line, and of the end of its register dump. */
  line: number;
  endLine: number;
  /** QEMU's count of logged interrupts. */
  count: number;
  vector: number;
  /** `#PF`, `#GP`, `int 0x80`. */
  name: string;
  /** `page fault`, `interrupt 0x80`. */
  longName: string;
  kind: DeliveryKind;
  /** QEMU's `i=` flag. */
  softwareInt: boolean;
  /** The error code the CPU pushed; null when this delivery pushes none (QEMU prints e=0000 anyway). */
  errorCode: number | null;
  /** `e=` as printed. */
  rawErrorCode: number;
  /** The #PF error code bit by bit. */
  decoded: DecodedErrorCode | null;
  /** The selector error code of #TS/#NP/#SS/#GP/#AC. */
  selector: SelectorErrorCode | null;
  cpl: number;
  cs: number;
  rip: bigint;
  ss: number;
  sp: bigint;
  /** CR2 of a #PF: the faulting address (from the `v=` line, else its dump); null for other vectors. */
  cr2: bigint | null;
  cr3: bigint | null;
  /** CR0/CR3/CR4/EFER from the dump, to walk CR2 as the CPU did. */
  paging: LoggedPaging | null;
  /** `64-bit`, `compatibility mode`, `32-bit protected mode`, `16-bit protected mode`, or null without a dump. */
  mode: string | null;
  /** The vector being delivered when this one was raised (QEMU's `check_exception old:`). */
  raisedWhileDelivering: number | null;
  /** For a #DF: the vector QEMU raised before it made it a #DF (`check_exception ... new`). */
  promotedFrom: number | null;
  /** Why delivering this one failed, when it did. */
  deliveryFailure: DeliveryFailure | null;
  /** True when the log ended inside its register dump. */
  dumpCut: boolean;
  /** What the values themselves suggest (CR2 equal to RIP, CR2 just below RSP). */
  hints: string[];
  /** The register dump, when there was one. */
  dump: CpuDump | null;
  /** Plain words: what this one is and what the values say. */
  explanation: string;
}

/** How a chain ended. */
export type ChainEnd = 'delivered' | 'triple-fault' | 'cut-short';

/** Exceptions that followed from one another: the first one, and what each delivery raised. */
export interface LogChain {
  links: LoggedException[];
  end: ChainEnd;
  /** Line of `Triple fault`. */
  tripleFaultLine: number | null;
  /** The vector raised while delivering #DF (the cause of the triple fault). */
  tripleFaultCause: number | null;
  firstLine: number;
  lastLine: number;
  /** How many times this same chain occurs in the log. */
  occurrences: number;
  /** First line of its last occurrence. */
  lastOccurrenceLine: number;
  /** A CPU reset followed the triple fault (QEMU's default `-action reboot=reset`). */
  resetAfter: boolean;
  /** One line: `#PF 0x3 at ... -> #DF -> triple fault`. */
  oneLine: string;
  /** A paragraph. */
  explanation: string;
}

/** What the log adds up to. */
export type LogOutcome = 'no-faults' | 'handled' | 'fault-loop' | 'double-fault' | 'cut-short' | 'triple-fault' | 'reset-loop';

/** Counts over the whole log. */
export interface LogCounts {
  lines: number;
  /** Lines QEMU's logging wrote (records and dump lines). */
  recognised: number;
  /** Exceptions the CPU raised (v= lines after check_exception). */
  exceptions: number;
  /** Exceptions by short name (`#PF`: 3). */
  byName: Record<string, number>;
  softwareInterrupts: number;
  hardwareInterrupts: number;
  tripleFaults: number;
  cpuResets: number;
  /** CPU resets that followed a triple fault. */
  resetsAfterTripleFault: number;
  smmEntries: number;
  unrecognised: number;
  dumpsWithoutHeader: number;
}

/** The explanation of a whole log. */
export interface LogExplanation {
  /** Distinct chains in order of first occurrence, each with its count. */
  chains: LogChain[];
  /** Chains not kept in detail (past the limit). */
  droppedChains: number;
  outcome: LogOutcome;
  /** True when the log shows a triple fault, a reset loop, a #DF, a fault repeating forever, or a cut during a failing delivery. */
  danger: boolean;
  /** One paragraph in plain words. */
  summary: string;
  counts: LogCounts;
  /** Observations: PIC not remapped, interrupts lost from the log, a new QEMU run ... */
  notes: string[];
  /** The first lines QEMU's logging did not write (guest output, messages), with their numbers. */
  unrecognised: { line: number; text: string; cut: boolean }[];
  /** The log ends inside a record: a register dump, or a last line QEMU had not finished. */
  cut: boolean;
}

/** Limits that keep memory bounded. */
export interface ExplainLogOptions {
  /** Distinct chains kept in detail (default 64). */
  maxChains?: number;
  /** Unrecognised lines kept as samples (default 20). */
  maxSamples?: number;
  /** Identical delivered faults in a row, at the end of the log, that make a fault loop (default 5). */
  faultLoop?: number;
}

const MAX_NOTES = 20;

interface OpenChain {
  links: LoggedException[];
  firstLine: number;
  lastLine: number;
  /** The check_exception waiting for its v= line or `Triple fault`. */
  pending: { old: number | null; next: number; line: number } | null;
  startsMidway: number | null;
}

/** The streaming explainer: `push` every event, then `finish`. */
export class LogExplainer {
  private readonly maxChains: number;
  private readonly maxSamples: number;
  private readonly faultLoop: number;
  private readonly chains = new Map<string, LogChain>();
  private droppedChains = 0;
  private readonly counts: LogCounts = {
    lines: 0,
    recognised: 0,
    exceptions: 0,
    byName: {},
    softwareInterrupts: 0,
    hardwareInterrupts: 0,
    tripleFaults: 0,
    cpuResets: 0,
    resetsAfterTripleFault: 0,
    smmEntries: 0,
    unrecognised: 0,
    dumpsWithoutHeader: 0,
  };
  private readonly notes = new Set<string>();
  private readonly samples: { line: number; text: string; cut: boolean }[] = [];
  private open: OpenChain | null = null;
  /** A check_exception with old = -1 seen, no chain opened yet (its v= line comes next). */
  private pendingFresh: { next: number; line: number } | null = null;
  /** The software or hardware interrupt logged just before (a fault right after may be its delivery failing). */
  private lastInterrupt: LoggedException | null = null;
  private pendingHardware: { vector: number; line: number } | null = null;
  private realModeIrqs = 0;
  /** A chain that just triple-faulted, waiting to see whether a CPU reset follows. */
  private tripled: { chain: OpenChain; line: number; cause: number | null } | null = null;
  private lastCount: number | null = null;
  private readonly countBreaks: Partial<Record<'restart' | 'gap' | 'back', { times: number; line: number; from: number; to: number; missing: number }>> = {};
  private runSignature = '';
  private runLength = 0;
  private lastChainEnd: ChainEnd | null = null;
  private lastChainFailing = false;
  private lastEventCut = false;
  private doubleFaults = 0;
  private finished: LogExplanation | null = null;

  constructor(options: ExplainLogOptions = {}) {
    this.maxChains = options.maxChains ?? 64;
    this.maxSamples = options.maxSamples ?? 20;
    this.faultLoop = options.faultLoop ?? 5;
  }

  /** Takes the next event of the log. */
  push(e: LogEvent): void {
    this.lastEventCut = e.kind === 'unrecognised' ? e.partialRecord : 'cut' in e && e.cut;
    if (e.kind === 'unrecognised') {
      this.counts.unrecognised++;
      if (this.samples.length < this.maxSamples) this.samples.push({ line: e.line, text: e.text, cut: e.cut });
      return;
    }
    if (this.tripled && e.kind !== 'cpu-reset') this.settleTriple(false, null);
    if (e.kind !== 'interrupt' && this.pendingHardware) this.hardwareWithoutEntry();
    switch (e.kind) {
      case 'dump':
        this.counts.dumpsWithoutHeader++;
        return;
      case 'hardware-interrupt':
        this.pendingHardware = { vector: e.vector, line: e.line };
        this.lastInterrupt = null;
        return;
      case 'smm-enter':
      case 'smm-exit':
        if (e.kind === 'smm-enter') this.counts.smmEntries++;
        this.lastInterrupt = null;
        return;
      case 'cpu-reset':
        this.counts.cpuResets++;
        this.lastInterrupt = null;
        if (this.tripled) {
          this.counts.resetsAfterTripleFault++;
          this.settleTriple(true, e.dump);
        } else {
          this.closeChain('delivered');
        }
        return;
      case 'triple-fault':
        this.onTripleFault(e.line);
        return;
      case 'check-exception':
        this.onCheck(e.old, e.next, e.line);
        return;
      case 'interrupt':
        this.onInterrupt(e);
        return;
    }
  }

  /** Ends the log; `stats` are the parser's line counts. Returns the explanation (the same object on later calls). */
  finish(stats: { lines: number; recognised: number } = { lines: 0, recognised: 0 }): LogExplanation {
    if (this.finished) return this.finished;
    this.counts.lines = stats.lines;
    this.counts.recognised = stats.recognised;
    if (this.pendingHardware) this.hardwareWithoutEntry();
    if (this.tripled) this.settleTriple(false, null);
    const o = this.open;
    if (o) {
      const lastCut = o.links.at(-1)?.dumpCut ?? false;
      this.closeChain(o.pending !== null || lastCut || this.lastEventCut ? 'cut-short' : 'delivered');
    } else if (this.pendingFresh) {
      this.closeChain('cut-short');
    }
    this.countNotes();
    if (this.realModeIrqs > 0) {
      this.note(
        `${this.realModeIrqs} hardware interrupt${this.realModeIrqs === 1 ? '' : 's'} served in real mode (Servicing hardware INT without a v= line: QEMU logs v= lines only with CR0.PE=1)`,
      );
    }
    const chains = [...this.chains.values()];
    const outcome = this.outcome(chains);
    const danger =
      outcome === 'triple-fault' || outcome === 'reset-loop' || outcome === 'double-fault' || outcome === 'fault-loop' || (outcome === 'cut-short' && this.lastChainFailing);
    const explanation: LogExplanation = {
      chains,
      droppedChains: this.droppedChains,
      outcome,
      danger,
      summary: '',
      counts: this.counts,
      notes: [...this.notes],
      unrecognised: this.samples,
      cut: this.lastEventCut,
    };
    explanation.summary = summarise(explanation, this.runLength);
    this.finished = explanation;
    return explanation;
  }

  private outcome(chains: LogChain[]): LogOutcome {
    if (this.counts.resetsAfterTripleFault >= 2) return 'reset-loop';
    if (this.counts.tripleFaults > 0) return 'triple-fault';
    if (this.doubleFaults > 0) return 'double-fault';
    if (this.lastChainEnd === 'cut-short') return 'cut-short';
    if (this.runLength >= this.faultLoop) return 'fault-loop';
    return chains.length > 0 || this.droppedChains > 0 ? 'handled' : 'no-faults';
  }

  private note(text: string): void {
    if (this.notes.size < MAX_NOTES) this.notes.add(text);
  }

  private hardwareWithoutEntry(): void {
    this.counts.hardwareInterrupts++;
    this.realModeIrqs++;
    this.pendingHardware = null;
  }

  private onCheck(old: number | null, next: number, line: number): void {
    if (old === null) {
      // A fresh exception: the chain before it, if any, was delivered.
      if (this.open) this.closeChain('delivered');
      this.pendingFresh = { next, line };
      return;
    }
    if (!this.open) {
      // The log starts while `old` was being delivered.
      this.open = { links: [], firstLine: line, lastLine: line, pending: null, startsMidway: old };
    }
    this.open.pending = { old, next, line };
    this.open.lastLine = line;
  }

  private onInterrupt(e: InterruptEvent): void {
    this.trackCount(e);
    const fresh = this.pendingFresh;
    const nested = this.open?.pending ?? null;
    const kind: DeliveryKind =
      fresh || nested
        ? 'exception'
        : e.softwareInt
          ? 'software-interrupt'
          : this.pendingHardware?.vector === e.vector || e.vector >= 32
            ? 'hardware-interrupt'
            : e.vector === 2
              ? 'nmi'
              : 'hardware-interrupt';
    const fromPic = this.pendingHardware?.vector === e.vector;
    this.pendingHardware = null;
    const link = buildLink(e, kind, nested?.old ?? null, e.vector === 8 && nested && nested.next !== 8 ? nested.next : null);
    if (kind !== 'exception') {
      if (this.open) this.closeChain('delivered');
      if (kind === 'software-interrupt') this.counts.softwareInterrupts++;
      else this.counts.hardwareInterrupts++;
      if (kind === 'hardware-interrupt' && e.vector >= 8 && e.vector < 16) {
        this.note(
          `hardware interrupt on vector ${hex(e.vector)} (line ${e.line}${fromPic ? ', Servicing hardware INT' : ', no check_exception before it'}): ` +
            `vectors 8-15 are CPU exceptions (#DF is 8, #GP 13): the 8259 PIC was not remapped, so IRQ${e.vector - 8} arrives looking like ${shortName(e.vector)}`,
        );
      }
      this.lastInterrupt = link;
      return;
    }
    this.counts.exceptions++;
    this.counts.byName[link.name] = (this.counts.byName[link.name] ?? 0) + 1;
    if (e.vector === 8) this.doubleFaults++;
    if (nested && this.open) {
      const prev = this.open.links.at(-1);
      if (prev) prev.deliveryFailure = failureOf(prev, nested.next, e.dump?.cr2 ?? null);
      this.open.links.push(link);
      this.open.pending = null;
      this.open.lastLine = link.endLine;
      this.lastInterrupt = null;
      return;
    }
    this.pendingFresh = null;
    // A fault right after an interrupt, at the same place, naming its gate or the memory delivery
    // touches: QEMU logged old = -1 (it tracks only exceptions), but the interrupt's delivery failed.
    const irq = this.lastInterrupt;
    this.lastInterrupt = null;
    if (irq && deliveryOf(irq, link)) {
      link.raisedWhileDelivering = irq.vector;
      irq.deliveryFailure = failureOf(irq, link.vector, link.cr2);
      link.explanation = describe(link);
      this.open = { links: [irq, link], firstLine: irq.line, lastLine: link.endLine, pending: null, startsMidway: null };
      return;
    }
    this.open = { links: [link], firstLine: link.line, lastLine: link.endLine, pending: null, startsMidway: null };
  }

  private trackCount(e: InterruptEvent): void {
    const last = this.lastCount;
    this.lastCount = e.count;
    if (last === null || e.count === last + 1) return;
    const kind = e.count === 0 ? 'restart' : e.count > last + 1 ? 'gap' : 'back';
    const seen = this.countBreaks[kind];
    if (seen) {
      seen.times++;
      seen.missing += kind === 'gap' ? e.count - last - 1 : 0;
    } else {
      this.countBreaks[kind] = { times: 1, line: e.line, from: last, to: e.count, missing: kind === 'gap' ? e.count - last - 1 : 0 };
    }
  }

  /** The notes on QEMU's interrupt count: one per kind of break, however often it happens. */
  private countNotes(): void {
    const more = (b: { times: number }) => (b.times > 1 ? ` (and ${b.times - 1} more time${b.times === 2 ? '' : 's'})` : '');
    const { restart, gap, back } = this.countBreaks;
    if (gap) this.note(`QEMU's interrupt count jumps from ${gap.from} to ${gap.to} on line ${gap.line}${more(gap)}: ${gap.missing} logged interrupt(s) are missing from this log`);
    if (back) this.note(`QEMU's interrupt count goes back from ${back.from} to ${back.to} on line ${back.line}${more(back)}: lines are out of order, or logs were joined`);
    if (restart) this.note(`QEMU's interrupt count starts again at 0 on line ${restart.line}${more(restart)}: the log holds more than one QEMU run`);
  }

  private onTripleFault(line: number): void {
    this.counts.tripleFaults++;
    this.pendingFresh = null;
    this.lastInterrupt = null;
    const o = this.open ?? { links: [], firstLine: line, lastLine: line, pending: null, startsMidway: null };
    this.open = null;
    const cause = o.pending?.old === 8 ? o.pending.next : null;
    o.pending = null;
    o.lastLine = line;
    this.tripled = { chain: o, line, cause };
  }

  private settleTriple(reset: boolean, resetDump: CpuDump | null): void {
    const t = this.tripled!;
    this.tripled = null;
    const last = t.chain.links.at(-1);
    if (last && t.cause !== null) last.deliveryFailure = failureOf(last, t.cause, resetDump?.cr2 ?? null);
    this.finishChain(t.chain, 'triple-fault', { line: t.line, cause: t.cause, reset });
  }

  private closeChain(end: ChainEnd): void {
    const o = this.open;
    this.open = null;
    if (o) {
      this.finishChain(o, end, null);
    } else if (this.pendingFresh && end === 'cut-short') {
      const p = this.pendingFresh;
      this.finishChain({ links: [], firstLine: p.line, lastLine: p.line, pending: { old: null, ...p }, startsMidway: null }, end, null);
    }
    this.pendingFresh = null;
  }

  private finishChain(o: OpenChain, end: ChainEnd, triple: { line: number; cause: number | null; reset: boolean } | null): void {
    this.lastChainEnd = end;
    this.lastChainFailing = o.links.some((l) => l.deliveryFailure !== null || l.vector === 8) || (o.pending !== null && o.pending.old !== null);
    const chain: LogChain = {
      links: o.links,
      end,
      tripleFaultLine: triple?.line ?? null,
      tripleFaultCause: triple?.cause ?? null,
      firstLine: o.firstLine,
      lastLine: Math.max(o.lastLine, triple?.line ?? 0),
      occurrences: 1,
      lastOccurrenceLine: o.firstLine,
      resetAfter: triple?.reset ?? false,
      oneLine: '',
      explanation: '',
    };
    const sig = signature(chain, o);
    const single = end === 'delivered' && o.links.length === 1 && o.links[0]!.kind === 'exception';
    if (single && sig === this.runSignature) this.runLength++;
    else {
      this.runSignature = single ? sig : '';
      this.runLength = single ? 1 : 0;
    }
    const seen = this.chains.get(sig);
    if (seen) {
      seen.occurrences++;
      seen.lastOccurrenceLine = chain.firstLine;
      return;
    }
    if (this.chains.size >= this.maxChains) {
      this.droppedChains++;
      return;
    }
    chain.oneLine = chainOneLine(chain, o.startsMidway, o.pending);
    chain.explanation = chainExplanation(chain, o.startsMidway, o.pending);
    this.chains.set(sig, chain);
  }
}

/** Explains a whole list of events (a log held in memory). */
export function explainLog(events: Iterable<LogEvent>, stats?: { lines: number; recognised: number }, options?: ExplainLogOptions): LogExplanation {
  const x = new LogExplainer(options);
  for (const e of events) x.push(e);
  return x.finish(stats);
}

function signature(c: LogChain, o: OpenChain): string {
  const links = c.links.map((l) => `${l.kind}:${l.vector}:${l.rawErrorCode}:${l.rip}:${l.vector === 14 ? l.cr2 : ''}`).join('>');
  const pending = o.pending ? `${o.pending.old}/${o.pending.next}` : '';
  return `${links}|${c.end}|${c.tripleFaultCause}|${c.resetAfter}|${o.startsMidway}|${pending}`;
}

function modeOf(d: CpuDump | null): string | null {
  if (!d) return null;
  const cs = d.segments.cs;
  if (cs?.attributes.includes('CS64')) return '64-bit';
  if (d.efer !== undefined && (d.efer & 0x400n) !== 0n) return 'compatibility mode';
  if (d.cr0 !== undefined && (d.cr0 & 1n) === 0n) return 'real mode';
  if (cs?.attributes.includes('CS16')) return '16-bit protected mode';
  return '32-bit protected mode';
}

function buildLink(e: InterruptEvent, kind: DeliveryKind, raisedWhileDelivering: number | null, promotedFrom: number | null): LoggedException {
  const d = e.dump;
  const exception = kind === 'exception';
  const errorCode = exception && hasErrorCode(e.vector) ? e.errorCode : null;
  const cr2 = e.vector === 14 ? (e.cr2 ?? d?.cr2 ?? null) : null;
  const paging = d && d.cr0 !== undefined && d.cr3 !== undefined && d.cr4 !== undefined && d.efer !== undefined ? { cr0: d.cr0, cr3: d.cr3, cr4: d.cr4, efer: d.efer } : null;
  const link: LoggedException = {
    line: e.line,
    endLine: e.endLine,
    count: e.count,
    vector: e.vector,
    name: kind === 'software-interrupt' && e.vector === 3 ? 'int3' : kind === 'software-interrupt' && e.vector >= 32 ? `int ${hex(e.vector)}` : shortName(e.vector),
    longName: kind === 'hardware-interrupt' && e.vector < 32 ? `interrupt ${hex(e.vector)} from a device` : longName(e.vector),
    kind,
    softwareInt: e.softwareInt,
    errorCode,
    rawErrorCode: e.errorCode,
    decoded: exception && e.vector === 14 && e.errorCode <= 0xffffffff ? decodeErrorCode(e.errorCode) : null,
    selector: errorCode !== null && SELECTOR_VECTORS.has(e.vector) ? decodeSelectorErrorCode(errorCode) : null,
    cpl: e.cpl,
    cs: e.cs,
    rip: e.ip,
    ss: e.ss,
    sp: e.sp,
    cr2,
    cr3: d?.cr3 ?? null,
    paging,
    mode: modeOf(d),
    raisedWhileDelivering,
    promotedFrom,
    deliveryFailure: null,
    dumpCut: e.cut,
    hints: [],
    dump: d,
    explanation: '',
  };
  link.hints = hintsOf(link);
  link.explanation = describe(link);
  return link;
}

function failureOf(delivering: LoggedException, raised: number, cr2After: bigint | null): DeliveryFailure {
  return explainDeliveryFailure({
    vector: delivering.vector,
    raised,
    dump: delivering.dump,
    sp: delivering.sp,
    cr2After,
    cr2Before: delivering.vector === 14 ? delivering.cr2 : (delivering.dump?.cr2 ?? null),
  });
}

/** True when `fault`, logged right after interrupt `irq`, is most likely its delivery failing. */
function deliveryOf(irq: LoggedException, fault: LoggedException): boolean {
  if (fault.rip !== irq.rip || fault.cs !== irq.cs) return false;
  if (fault.selector?.idt && fault.selector.index === irq.vector) return true;
  if (fault.vector !== 14 || fault.cr2 === null) return false;
  // A fetch fault at this RIP whose CR2 is not the instruction at RIP: the fetch of the handler.
  if (fault.decoded?.fetch && (fault.cr2 < fault.rip || fault.cr2 - fault.rip >= 16n)) return true;
  const d = irq.dump;
  const inTable = (t: { base: bigint; limit: number } | undefined) => t !== undefined && fault.cr2! >= t.base && fault.cr2! <= t.base + BigInt(t.limit);
  return inTable(d?.idt) || inTable(d?.gdt) || (fault.cr2 < irq.sp && irq.sp - fault.cr2 <= 0x100n);
}

/** The explanation of one logged exception or interrupt: where it happened, then {@link detailOf}. */
function describe(l: LoggedException): string {
  const pagingOn = l.paging !== null && (l.paging.cr0 & 0x80000000n) !== 0n;
  const cr3 = pagingOn ? `, CR3 ${hex(l.paging!.cr3)}` : l.paging ? ', paging off' : '';
  return `${l.name} (${l.longName}) at RIP ${hex(l.rip)} (${l.mode ? `${l.mode}, ` : ''}CPL ${l.cpl})${cr3}: ${detailOf(l)}`;
}

function hintsOf(l: LoggedException): string[] {
  if (!l.decoded || l.cr2 === null) return [];
  if (l.cr2 === l.rip) return [`CR2 equals RIP: fetching the instruction itself faulted${l.decoded.fetch ? '' : ' (I/D is only reported with EFER.NXE or CR4.SMEP)'}.`];
  if (l.cr2 < l.sp && l.sp - l.cr2 <= 0x100n && !l.decoded.present) {
    return [`CR2 is just below RSP ${hex(l.sp)}: a push went past the bottom of the stack (a stack overflow into an unmapped guard page, or a stack that was never mapped).`];
  }
  return [];
}

/** What a logged exception is and what its values say, without where it happened. */
export function detailOf(l: LoggedException): string {
  const parts: string[] = [];
  switch (l.kind) {
    case 'software-interrupt':
      parts.push(
        `the ${l.vector === 3 ? 'int3 instruction, a software breakpoint (0xcc)' : l.vector === 4 ? 'into instruction' : `int ${hex(l.vector)} instruction`}` +
          '; i=1: raised by the program, not by the CPU or a device.',
      );
      break;
    case 'hardware-interrupt':
      parts.push('an external interrupt (i=0, no check_exception before it), not an exception the CPU raised.');
      break;
    case 'nmi':
      parts.push('a non-maskable interrupt from outside the CPU.');
      break;
    case 'exception': {
      if (l.vector === 14 && l.decoded) {
        parts.push(`a ${l.decoded.summary}, at CR2 ${l.cr2 !== null ? hex(l.cr2) : '(unknown)'}.`, ...l.hints);
      } else if (l.vector === 8) {
        parts.push(`a second fault while the CPU was delivering ${l.raisedWhileDelivering !== null ? shortName(l.raisedWhileDelivering) : 'the first'}.`);
        if (l.promotedFrom !== null) {
          parts.push(
            `QEMU raised ${shortName(l.promotedFrom)} during that delivery and turned it into #DF (check_exception old ${hex(l.raisedWhileDelivering ?? 0)} new ${hex(l.promotedFrom)}); the #DF error code is always 0.`,
          );
        }
      } else if (l.selector) {
        const s = l.selector;
        parts.push(`error code ${hex(s.code)}, ${s.summary}.`);
        if ((s.code & 0xffff) === 0) parts.push(`No selector was at fault: ${usualCauses(l.vector, false)}`);
        else if (s.idt) parts.push(`The gate for vector ${hex(s.index)} is the problem: beyond the IDT limit, not an interrupt or trap gate, not present, or with a bad code segment.`);
        else parts.push(`The descriptor at ${s.table} index ${s.index} is the problem: beyond the table's limit, the wrong type, not present, or a privilege mismatch.`);
      } else {
        const c = usualCauses(l.vector, false);
        parts.push(`${l.errorCode !== null ? `error code ${hex(l.errorCode)}; ` : ''}${c || 'an exception.'}`);
      }
      if (l.raisedWhileDelivering !== null && l.vector !== 8) parts.push(`It was raised while delivering ${shortName(l.raisedWhileDelivering)}.`);
      break;
    }
  }
  if (l.dumpCut) parts.push('(The log ends inside its register dump.)');
  return parts.join(' ');
}

function linkOneLine(l: LoggedException): string {
  if (l.kind !== 'exception') return `${l.name} at ${hex(l.rip)}`;
  const code = l.errorCode !== null && l.vector !== 8 ? ` ${hex(l.errorCode)}` : '';
  const cr2 = l.vector === 14 && l.cr2 !== null ? `, CR2 ${hex(l.cr2)}` : '';
  return `${l.name}${code} at ${hex(l.rip)}${cr2}`;
}

function chainOneLine(c: LogChain, midway: number | null, pending: OpenChain['pending']): string {
  const parts: string[] = [];
  if (midway !== null) parts.push(`(delivering ${shortName(midway)})`);
  c.links.forEach((l, i) => {
    parts.push(i === 0 ? linkOneLine(l) : l.vector === 8 ? '#DF' : linkOneLine(l));
  });
  if (c.end === 'triple-fault') parts.push('triple fault');
  else if (c.end === 'cut-short') parts.push(pending ? `${shortName(pending.next)} raised, then the log ends` : 'the log ends');
  else if (c.links.at(-1)?.vector === 8) parts.push('#DF handler');
  return parts.join(' -> ');
}

function chainExplanation(c: LogChain, midway: number | null, pending: OpenChain['pending']): string {
  const s: string[] = [];
  if (midway !== null) s.push(`The log starts while ${shortName(midway)} was being delivered.`);
  if (c.links.length === 0 && pending?.old === null) {
    s.push(`QEMU raised ${shortName(pending.next)} (line ${pending.line}) and the log ends before it was delivered.`);
  }
  c.links.forEach((l, i) => {
    s.push(i === 0 ? l.explanation : `Then ${l.explanation}`);
    const f = l.deliveryFailure;
    if (f) s.push(`Delivering ${l.name} failed: ${f.why}. ${capitalise(f.rule)}.`);
  });
  if (c.end === 'triple-fault') {
    if (c.tripleFaultCause === null) s.push(`Triple fault (line ${c.tripleFaultLine}): the CPU shut down.`);
    s.push(
      c.resetAfter
        ? 'QEMU reset the machine (its default action for a triple fault; -action reboot=shutdown,shutdown=pause keeps the state for post-mortem instead).'
        : 'QEMU stopped or exited (with -action reboot=shutdown,shutdown=pause the guest stays paused with its state at the fault).',
    );
  } else if (c.end === 'cut-short') {
    if (pending && pending.old !== null) s.push(`While delivering ${shortName(pending.old)}, QEMU raised ${shortName(pending.next)} (line ${pending.line}); the log ends before the outcome.`);
    else if (c.links.length > 0) s.push('The log ends inside this chain: what happened next is not in it.');
  } else {
    const last = c.links.at(-1);
    if (last?.vector === 8) s.push('The #DF was delivered: a double-fault handler ran, and a kernel cannot resume after a #DF.');
    else if (last) s.push(`${last.name} was delivered to its handler.`);
  }
  return s.join(' ');
}

const capitalise = (t: string): string => t.charAt(0).toUpperCase() + t.slice(1);

function linkPhrase(l: LoggedException): string {
  if (l.kind !== 'exception') return `${l.name} at RIP ${hex(l.rip)}`;
  const what = l.decoded ? ` (a ${l.decoded.summary})` : l.selector ? ` (${l.selector.summary})` : '';
  const code = l.errorCode !== null && l.vector !== 8 ? ` ${hex(l.errorCode)}` : '';
  const cr2 = l.vector === 14 && l.cr2 !== null ? `, CR2 ${hex(l.cr2)}` : '';
  return `${l.name}${code}${what} at RIP ${hex(l.rip)}${cr2}`;
}

/** The chain in one sentence: the first exception, what each delivery raised, how it ended. */
export function chainNarrative(c: LogChain): string {
  const out: string[] = [];
  const links = c.links;
  links.forEach((l, i) => {
    if (i === 0) out.push(linkPhrase(l));
    const f = l.deliveryFailure;
    if (!f) return;
    const next = links[i + 1];
    let s = `delivering ${i === 0 ? 'it' : `the ${l.name}`} raised ${shortName(f.raised)} (${f.short})`;
    if (l.vector === 8) s += ': a fault while delivering #DF is a triple fault';
    else if (next?.vector === 8 && f.raised !== 8) s += ', which made a #DF';
    else if (next?.selector && next.vector === f.raised) s += `, error code ${hex(next.selector.code)}`;
    out.push(s);
  });
  const last = links.at(-1);
  if (c.end === 'triple-fault') {
    if (!(last?.vector === 8 && last.deliveryFailure)) out.push('then a triple fault');
    out.push(c.resetAfter ? 'QEMU reset the machine' : 'the CPU shut down');
  } else if (c.end === 'cut-short') {
    out.push('the log ends there');
  } else if (last?.vector === 8) {
    out.push('the #DF was delivered to its handler');
  } else if (last) {
    out.push(`${last.name} was delivered to its handler`);
  }
  if (out.length === 0) return c.oneLine;
  const text = out.join('; ');
  return text.charAt(0).toUpperCase() === text.charAt(0) ? text : capitalise(text);
}

function pitfall(c: LogChain | undefined): string {
  const p = c?.links.find((l) => l.decoded && l.decoded.pitfalls.length > 0)?.decoded?.pitfalls[0];
  return p ? ` Careful: ${p}.` : '';
}

function summarise(x: LogExplanation, runLength: number): string {
  const c = x.counts;
  const triple = x.chains.filter((ch) => ch.end === 'triple-fault');
  const first = triple[0];
  const lines = `${c.lines} line${c.lines === 1 ? '' : 's'}`;
  switch (x.outcome) {
    case 'reset-loop': {
      const kinds = triple.map((t) => `${t.occurrences}x ${t.oneLine}`).join('; ');
      return (
        `Reset loop: the guest triple-faulted ${c.tripleFaults} times and QEMU reset it after ${c.resetsAfterTripleFault} of them (its default action), ` +
        `so it boots, faults and resets again. ${triple.length === 1 ? 'Every cycle fails the same way' : `The cycles fail in ${triple.length} ways`}: ${kinds}.` +
        (first ? ` The first, from line ${first.firstLine}: ${chainNarrative(first)}.` : '') +
        pitfall(first) +
        ' Run QEMU with -action reboot=shutdown,shutdown=pause (or -no-reboot) to stop at the first triple fault.'
      );
    }
    case 'triple-fault':
      return (
        `Triple fault${first?.tripleFaultLine ? ` on line ${first.tripleFaultLine}` : ''}${first ? `: ${chainNarrative(first)}` : ''}.` +
        (c.tripleFaults > 1 ? ` (${c.tripleFaults} triple faults in all.)` : '') +
        pitfall(first)
      );
    case 'double-fault': {
      const df = x.chains.find((ch) => ch.links.some((l) => l.vector === 8));
      return `Double fault${df ? ` on line ${df.links.find((l) => l.vector === 8)!.line}: ${chainNarrative(df)}` : ''}. A kernel cannot resume after a #DF; no triple fault in this log.${pitfall(df)}`;
    }
    case 'cut-short': {
      const last = x.chains.at(-1);
      return `The log is cut short: it ends inside ${last ? `the chain from line ${last.firstLine} (${chainNarrative(last)})` : 'an exception'}, so how that ended is not known.${pitfall(last)}`;
    }
    case 'fault-loop': {
      const last = x.chains.at(-1)!;
      return (
        `A fault repeats forever: ${last.oneLine} was delivered ${runLength} times in a row at the end of the log. ` +
        `Its handler returns without fixing the cause, so the same instruction faults again. ${last.links[0]!.explanation}`
      );
    }
    case 'handled': {
      const names = Object.entries(c.byName).map(([n, k]) => `${k} ${n}`).join(', ');
      return `${c.exceptions} exception${c.exceptions === 1 ? '' : 's'} (${names}), each delivered to its handler: no double or triple fault in ${lines}.${interruptsWords(c)}`;
    }
    case 'no-faults':
      return `No exceptions in ${lines}: nothing faulted.${interruptsWords(c)}${c.cpuResets > 0 ? ` ${c.cpuResets} CPU reset${c.cpuResets === 1 ? '' : 's'} (power-on or a requested reset).` : ''}`;
  }
}

function interruptsWords(c: LogCounts): string {
  const parts: string[] = [];
  if (c.softwareInterrupts > 0) parts.push(`${c.softwareInterrupts} software interrupt${c.softwareInterrupts === 1 ? '' : 's'}`);
  if (c.hardwareInterrupts > 0) parts.push(`${c.hardwareInterrupts} hardware interrupt${c.hardwareInterrupts === 1 ? '' : 's'}`);
  if (c.smmEntries > 0) parts.push(`${c.smmEntries} SMM entr${c.smmEntries === 1 ? 'y' : 'ies'}`);
  return parts.length > 0 ? ` Also ${parts.join(', ')}.` : '';
}
