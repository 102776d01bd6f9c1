/**
 * The chain of exceptions the CPU goes through after a fault: delivery after delivery, by the
 * double-fault rules (Intel SDM vol. 3, Table 6-5), until a handler runs, the CPU hangs on a handler
 * that faults at once, or it shuts down (a triple fault); with the summary's words for each step.
 */
import { hex } from './addr.js';
import { deliver } from './delivery.js';
import { raised, type Env, type Failure, type Machine, type Raised } from './deliveryModel.js';
import { TRIPLE_FAULT, faultDuringDelivery, pushesErrorCode, vectorName } from './exceptions.js';
import { firstPhrase } from './faultWords.js';
import type { PagingTask } from './memory.js';
import type { ChainLink } from './preflightResult.js';

/** How a chain ends: a handler runs, the CPU shuts down, it hangs, or what comes next is not known. */
export type ChainEnd = 'handled' | 'triple-fault' | 'hang' | 'unknown';

/** The longest chain followed before giving up. */
const MAX_CHAIN = 16;

/** The chain link for the exception `r`, raised because of `cause`. */
export function chainLink(r: Raised, cause: string): ChainLink {
  return { vector: r.vector, name: vectorName(r.vector), errorCode: r.errorCode, cr2: r.cr2, cause };
}

/** A failure further down the chain, after `intro` ("so #DF"): "so #DF, whose IDT entry at X is not mapped either". */
function followPhrase(f: Failure, intro: string, previous: Failure | null): string {
  const either = previous && previous.verb === f.verb && f.verb.startsWith('is not') ? ' either' : '';
  const whose = f.owner === 'plain' ? 'and the' : f.owner === 'task' ? "whose task's" : 'whose';
  return `${intro}, ${whose} ${f.noun} ${f.verb}${either}`;
}

/**
 * Follows the exception `first` from machine `m0` through delivery after delivery until a handler runs,
 * the CPU hangs or shuts down. Appends the summary's phrases to `parts`; `first` itself is not in the chain.
 */
export function* follow(env: Env, m0: Machine, first: Raised, parts: string[]): PagingTask<{ chain: ChainLink[]; end: ChainEnd }> {
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
        const shutdown: Raised = { vector: TRIPLE_FAULT, errorCode: null, cr2: null };
        chain.push(chainLink(shutdown, `${xName} while delivering #DF (${what}): the CPU shuts down; QEMU resets, or stops with -action shutdown=pause`));
        return { chain, end: 'triple-fault' };
      }
      if (rule === 'double-fault') {
        pending = raised(8, 0);
        chain.push(chainLink(pending, `${xName} while delivering ${name}: ${what}`));
        intro = 'so #DF';
      } else {
        pending = x;
        chain.push(chainLink(pending, `${xName} while delivering ${name}, which the CPU then handles on its own: ${what}`));
        intro = `so ${xName}`;
      }
      continue;
    }

    // The handler's first instruction faults. The same vector again means it faults every time.
    const key = `${pending.vector}>${x.vector}|${d.next.ctx.cr3}|${d.next.cpl}`;
    if (x.vector === pending.vector || seen.has(key)) {
      if (d.reloaded) {
        chain.push(chainLink(x, `${what}: each ${xName} raises another, and the ${d.reloaded} is reloaded from the TSS at every delivery, so this repeats forever`));
        parts.push(`so the CPU hangs, taking ${xName} after ${xName} on the ${d.reloaded}`);
        return { chain, end: 'hang' };
      }
      chain.push(chainLink(x, `${what}: each ${xName} raises another, pushing a frame onto the same stack, until the stack runs out`));
      parts.push(`so every ${xName} raises another until the stack runs out`);
      m = { ...d.next, stack: { kind: 'exhausted', name: d.next.stack.name } };
      pending = x;
      intro = null;
      continue;
    }
    seen.add(key);
    chain.push(chainLink(x, `${what}: ${name} was delivered, and its handler faults at once`));
    m = d.next;
    pending = x;
    intro = `so ${xName}`;
  }
  env.log.note(`the exception chain: it goes on past ${MAX_CHAIN} exceptions; the pre-flight stopped following it`);
  return { chain, end: 'unknown' };
}
