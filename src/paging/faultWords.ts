/**
 * The few words the pre-flight's summary uses for a walk fault ("PD entry not present", "is not
 * mapped") and for a failed check ("the #PF handler's stack at X is not mapped").
 */
import type { Failure } from './deliveryModel.js';
import { vectorName } from './exceptions.js';
import type { WalkFault } from './walk.js';

/** A few words for a walk fault: "PD entry not present", "NX in the PML4 entry". */
export function shortFault(f: WalkFault): string {
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
export function faultVerb(f: WalkFault): string {
  if (f.reason === 'not-present' || f.reason === 'outside-memory') return 'is not mapped';
  if (f.reason === 'non-canonical') return 'is not canonical';
  return `faults (${shortFault(f)})`;
}

/** A failure of delivering `vector`, as a phrase of its own: "the #PF handler's stack at X is not mapped". */
export function firstPhrase(f: Failure, vector: number): string {
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
