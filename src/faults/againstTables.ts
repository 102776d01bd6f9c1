/**
 * Holding a reported page fault (CR2 + error code, maybe RIP) against the tables as they are now:
 * does a walk of CR2 with the access the error code describes fault the same way?
 */
import type { WalkResult } from '../paging/walk.js';
import type { DecodedErrorCode } from './errorCode.js';

/** The verdict of holding a fault against the tables. */
export interface FaultComparison {
  /** The walk reproduces the fault: same kind (not present, reserved bit, protection) and the same error code. */
  agrees: boolean;
  /** One paragraph in plain words. */
  explanation: string;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Compares the decoded error code with a walk of CR2 made with the access the code describes. */
export function compareFault(decoded: DecodedErrorCode, walk: WalkResult, rip?: bigint): FaultComparison {
  const parts: string[] = [];
  const cr2 = walk.va;
  if (rip !== undefined && rip === cr2 && !decoded.fetch) {
    parts.push(
      `CR2 equals RIP (${hex(rip)}): the faulting access was the instruction fetch itself; I/D is only reported with EFER.NXE or CR4.SMEP.`,
    );
  }
  const f = walk.fault;
  if (!f) {
    parts.push(
      `The tables now allow this ${decoded.summary.split(' that ')[0]} at ${hex(cr2)} (it maps to ${hex(walk.translation!.pa)}): ` +
        'the entry was changed after the fault, the TLB held a stale translation (a changed entry without invlpg or a CR3 reload), ' +
        'or the fault happened under another CR3.',
    );
    return { agrees: false, explanation: parts.join(' ') };
  }
  if (f.vector !== 14) {
    parts.push(`Walking ${hex(cr2)} now raises #GP, not #PF: ${f.explanation}.`);
    return { agrees: false, explanation: parts.join(' ') };
  }
  // QEMU 7.2 reports reserved-bit faults without P; accept that form as the same fault.
  const sameCode = f.errorCode === decoded.code || (decoded.reserved && !decoded.present && f.errorCode === (decoded.code | 1));
  const sameKind =
    (decoded.reserved && f.reason === 'reserved-bit') ||
    (!decoded.reserved && !decoded.present && (f.reason === 'not-present' || f.reason === 'outside-memory')) ||
    (!decoded.reserved && decoded.present && f.reason === 'protection');
  if (sameKind && sameCode) {
    parts.push(`The tables agree: ${f.explanation}.`);
    return { agrees: true, explanation: parts.join(' ') };
  }
  parts.push(
    `The tables disagree: walking ${hex(cr2)} now gives error code ${hex(f.errorCode)} (${f.explanation}), not ${hex(decoded.code)}; ` +
      'the tables changed since the fault, the TLB was stale, or the fault came from another address space.',
  );
  return { agrees: false, explanation: parts.join(' ') };
}
