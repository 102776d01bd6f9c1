/**
 * The pre-flight's verdict and its one-line summary, from what it found: the chain when the next
 * access faults, the problems that bite later, the deliveries that work, and what was not checked.
 */
import type { ChainEnd } from './exceptionChain.js';
import type { PreflightProblem, Verdict } from './preflightResult.js';

/** What the verdict and the summary are made from. */
export interface Findings {
  /** When the next access faults: the summary's phrases for it and its chain, and how the chain ends; else null. */
  fault: { parts: readonly string[]; end: ChainEnd } | null;
  /** Every problem with its summary phrase, in the order found. */
  found: readonly { problem: PreflightProblem; phrase: string }[];
  /** The exceptions whose delivery reaches its handler: '#PF', '#GP'... */
  handled: readonly string[];
  /** How many interrupt vectors' delivery reaches its handler. */
  interrupts: number;
  /** What could not be checked, each "what: why". */
  unknown: readonly string[];
}

/** The verdict and the summary line: 'triple fault: ...', 'fault: ...', 'at risk: ...' or 'safe: ...'. */
export function judge(f: Findings): { verdict: Verdict; summary: string } {
  let verdict: Verdict;
  let summary: string;
  if (f.fault) {
    verdict = f.fault.end === 'triple-fault' ? 'triple-fault' : 'fault';
    summary = `${verdict === 'triple-fault' ? 'triple fault' : 'fault'}: ${f.fault.parts.join(', ')}`;
  } else if (f.found.length > 0) {
    verdict = 'at-risk';
    const first = f.found[0]!;
    const more = f.found.length - 1;
    const on = first.problem.when === 'on-interrupt' ? 'on an interrupt' : 'on an exception';
    summary = `at risk: the next instruction and the stack are fine, but ${on}, ${first.phrase}${more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'})` : ''}`;
  } else {
    verdict = 'safe';
    const interrupts = f.interrupts > 0 ? ` and ${f.interrupts} interrupt vector${f.interrupts === 1 ? '' : 's'}` : '';
    const delivered = f.handled.length > 0 ? `, and delivery of ${listWords(f.handled)}${interrupts} reaches its handlers` : '';
    summary = `safe${f.unknown.length > 0 ? ' as far as checked' : ''}: the next instruction and the stack work through the new tables${delivered}`;
  }
  if (f.unknown.length > 0 && verdict !== 'fault' && verdict !== 'triple-fault') {
    summary += `; not checked: ${f.unknown.map((u) => u.split(':')[0]).join(', ')}`;
  }
  return { verdict, summary };
}

/** "a, b and c". */
function listWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}
