/**
 * The JSON shape of `fault`: the error code decoded bit by bit, the walk of CR2, and whether the
 * tables agree.
 */
import { hex } from '../paging/addr.js';
import type { DecodedErrorCode } from '../faults/errorCode.js';
import type { FaultComparison } from '../faults/againstTables.js';
import type { WalkResult } from '../paging/walk.js';
import { walkJson, type WalkJson } from './walk.js';
import type { HintJson } from './watch.js';

/** A decoded error code, as JSON. */
export interface DecodedErrorCodeJson {
  code: string;
  present: boolean;
  write: boolean;
  user: boolean;
  reserved: boolean;
  fetch: boolean;
  protectionKey: boolean;
  shadowStack: boolean;
  bits: { bit: number; name: string; set: boolean; meaning: string }[];
  access: string;
  summary: string;
  pitfalls: string[];
}

/** `fault`, as JSON. */
export interface FaultJson {
  cr2: string;
  rip: string | null;
  errorCode: string;
  decoded: DecodedErrorCodeJson;
  walk: WalkJson;
  agrees: boolean;
  explanation: string;
}

/** A page fault explained, as `fault --json` prints it: the decoded error code, the walk, and hints. */
export interface FaultAnswerJson extends FaultJson {
  /** What the code most likely did wrong, when the tables still fault. */
  hints: HintJson[];
}

/** Shapes a decoded error code. */
export function decodedErrorCodeJson(d: DecodedErrorCode): DecodedErrorCodeJson {
  return {
    code: hex(d.code),
    present: d.present,
    write: d.write,
    user: d.user,
    reserved: d.reserved,
    fetch: d.fetch,
    protectionKey: d.protectionKey,
    shadowStack: d.shadowStack,
    bits: d.bits.map((b) => ({ ...b })),
    access: d.access,
    summary: d.summary,
    pitfalls: [...d.pitfalls],
  };
}

/** Shapes the whole answer of `fault`. */
export function faultJson(cr2: bigint, rip: bigint | undefined, d: DecodedErrorCode, w: WalkResult, cmp: FaultComparison): FaultJson {
  return {
    cr2: hex(cr2),
    rip: rip === undefined ? null : hex(rip),
    errorCode: hex(d.code),
    decoded: decodedErrorCodeJson(d),
    walk: walkJson(w),
    agrees: cmp.agrees,
    explanation: cmp.explanation,
  };
}
