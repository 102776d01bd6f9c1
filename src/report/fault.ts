/**
 * `fault`, as the CLI, the run language and the APIs answer it: a page fault's error code decoded
 * bit by bit, CR2 walked with the access it describes, whether the tables agree, and what the code
 * most likely did wrong; as JSON and as text.
 */
import { table, type Colors } from '../cli/output.js';
import { renderWalk } from '../cli/renderWalk.js';
import type { Session } from '../cli/session.js';
import { compareFault } from '../faults/againstTables.js';
import { diagnoseAsync } from '../faults/diagnose.js';
import type { DecodedErrorCode } from '../faults/errorCode.js';
import { faultJson, type FaultAnswerJson } from '../json/fault.js';
import { hintJson } from '../json/watch.js';
import { hex } from '../paging/addr.js';
import { runAsync } from '../paging/memory.js';
import type { PagingContext } from '../paging/mode.js';
import { walkTask } from '../paging/walk.js';
import { hintLines } from './preflight.js';

/** What `fault` is asked. */
export interface FaultQuery {
  decoded: DecodedErrorCode;
  /** The faulting linear address. */
  cr2: bigint;
  /** Where the CPU was, when known. */
  rip: bigint | undefined;
  /** The tables to walk in (default: the session's). */
  ctx?: PagingContext;
  /** Names addresses in the text (`name+0xoff`). */
  symbolize?: (va: bigint) => string | undefined;
}

/** What `fault` found. */
export interface FaultReport {
  json: FaultAnswerJson;
  /** The tables (still) fault (the CLI's exit status 1). */
  danger: boolean;
  /** The report as text, coloured with `c`. */
  lines(c: Colors): string[];
}

/** Why `decoded` cannot be a #PF error code (bits no CPU defines), or null. */
export function undefinedBitsProblem(decoded: DecodedErrorCode): string | null {
  if (decoded.undefinedBits === 0) return null;
  return `${hex(decoded.code)} sets bits no CPU defines (${hex(decoded.undefinedBits)}); a #PF error code uses bits 0-7 and 15`;
}

/** An error code as text: a row per bit (P to I/D always, the others when set), what it means, and the usual misreadings; each line after `indent`. */
export function errorCodeLines(c: Colors, decoded: DecodedErrorCode, indent: string): string[] {
  const rows = decoded.bits.filter((b) => b.bit <= 5 || b.set).map((b) => [`${indent}${b.name}=${b.set ? 1 : 0}`, b.set ? b.meaning : c.dim(b.meaning)]);
  return [...table(rows), `${indent}=> a ${decoded.summary}`, ...decoded.pitfalls.map((p) => `${indent}${c.yellow('!')} ${p}`)];
}

/**
 * Explains the page fault `q` against the session's target. Throws AddressError when CR2 cannot
 * be expressed in the paging mode.
 */
export async function faultReport(s: Session, q: FaultQuery): Promise<FaultReport> {
  const { decoded, cr2, rip } = q;
  const ctx = q.ctx ?? s.ctx;
  const w = await runAsync(walkTask(ctx, cr2, { kind: decoded.access, user: decoded.user }), s.target);
  const cmp = compareFault(decoded, w, rip);
  const hints = w.fault ? await diagnoseAsync(s.target, { ctx, walk: w, rsp: s.cpu.rsp, ram: await s.target.ram() }) : [];
  return {
    json: { ...faultJson(cr2, rip, decoded, w, cmp), hints: hints.map(hintJson) },
    danger: w.fault !== null,
    lines: (c) => [
      `${c.bold('#PF')} at CR2 ${c.bold(hex(cr2))}, error code ${c.bold(hex(decoded.code))}${rip !== undefined ? `, RIP ${hex(rip)}` : ''}`,
      ...errorCodeLines(c, decoded, '  '),
      '',
      'The tables now:',
      ...renderWalk(w, c, q.symbolize),
      '',
      (cmp.agrees ? c.green('✓ ') : c.yellow('? ')) + cmp.explanation,
      ...hintLines(c, hints, ''),
    ],
  };
}
