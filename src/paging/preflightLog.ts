/**
 * The record of one pre-flight: every check made and every problem found, deduplicated, with
 * interrupt vectors that fail alike merged into one entry, and what could not be checked.
 */
import { hex } from './addr.js';
import { vectorName } from './exceptions.js';
import type { PreflightProblem, PreflightResult, ProblemTime } from './preflightResult.js';
import type { AccessKind } from './rights.js';
import type { WalkResult } from './walk.js';

/** What a problem record needs besides its summary phrase. */
export interface ProblemSpec {
  kind: string;
  /** The vector whose delivery this is part of, when the kind names one ('gate', 'stack', 'handler'); else null (the default). */
  vector?: number | null;
  /** The CR3 of the address space the access went through. */
  cr3: bigint;
  va: bigint;
  /** The access that failed: 'read' unless said otherwise. */
  access?: AccessKind;
  /** The walk that faulted; null (the default) when the problem is not a paging fault. */
  walk?: WalkResult | null;
  explanation: string;
  /** For merging interrupt vectors that fail alike. */
  sig: string;
}

/** The problem of a checked access whose walk faulted: at the faulting page, `lead` followed by the walk's explanation. */
export function walkProblem(kind: string, vector: number | null, walk: WalkResult, lead: string): ProblemSpec {
  const f = walk.fault!;
  return { kind, vector, cr3: walk.cr3, va: walk.va, access: walk.access.kind, walk, explanation: `${lead}: ${f.explanation}`, sig: `${f.level}/${f.reason}` };
}

interface Entry<T> {
  kind: string;
  vector: number | null;
  /** Further interrupt vectors merged into this entry. */
  more: number[];
  value: T;
}

/** The checks and problems of one pre-flight, deduplicated, and what could not be checked. */
export class Log {
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

  /** A check of `access` at `va` through the tables of `cr3`, passed or failed (once). */
  check(kind: string, vector: number | null, va: bigint, access: AccessKind, ok: boolean, cr3: bigint): void {
    this.add(`check|${cr3}`, this.checks, kind, vector, va, access, String(ok), () => ({ va, access, ok }));
  }

  /** A failing check, with the phrase that tells it in the summary (once). */
  problem(spec: ProblemSpec, phrase: string): void {
    const { vector = null, access = 'read', walk = null } = spec;
    const problem: PreflightProblem = {
      what: '',
      va: spec.va,
      access,
      fault: walk?.fault ?? null,
      walk,
      when: this.when,
      explanation: spec.cr3 === this.cr3 ? spec.explanation : `${spec.explanation} (through the task's tables, CR3 ${hex(spec.cr3)})`,
    };
    this.add(`problem|${spec.cr3}`, this.problems, spec.kind, vector, spec.va, access, spec.sig, () => ({ phrase, problem }));
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

/** An entry's name: its kind, with the vector(s) it belongs to ('handler:#PF', 'handler:int 0x20-0x2f'). */
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
