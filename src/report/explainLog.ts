/**
 * `explain-log`, as the CLI and the APIs read it: a QEMU `-d int,cpu_reset` log streamed through
 * the parser and explained, refused when it cannot be read, is empty or is not QEMU's; and each #PF
 * of it walked in the CR3 the log shows, on a target's tables.
 */
import { LogExplainer, type LogExplanation, type LoggedException } from '../faults/explainLog.js';
import { checkPageFaultsTask, type PagingOverride } from '../faults/logAgainstTables.js';
import { QemuLogParser, parseQemuLogStream } from '../faults/qemuLog.js';
import type { TablesCheck } from '../json/explainLog.js';
import { runAsync, type AsyncPhysMemory } from '../paging/memory.js';
import type { CpuFeatures } from '../paging/mode.js';

/** Stable codes of {@link LogInputError}. */
export type LogInputErrorCode =
  /** Reading the log failed (no such file, permission denied, a directory ...). */
  | 'E_UNREADABLE'
  /** The log has no lines. */
  | 'E_EMPTY'
  /** None of its lines is one QEMU writes. */
  | 'E_NOT_QEMU_LOG';

/** A log that cannot be explained; `code` is stable, the message one line that says what would be right. */
export class LogInputError extends Error {
  constructor(
    readonly code: LogInputErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'LogInputError';
  }
}

/**
 * Reads the QEMU log `chunks` as it streams (hundreds of MB are fine) and explains it; `name` names
 * it in messages. Throws LogInputError; errors without an `E...` code (bugs) pass through.
 */
export async function explainQemuLog(chunks: AsyncIterable<string | Uint8Array>, name: string): Promise<LogExplanation> {
  const parser = new QemuLogParser();
  const explainer = new LogExplainer();
  try {
    for await (const e of parseQemuLogStream(chunks, parser)) explainer.push(e);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('E')) throw e;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new LogInputError('E_UNREADABLE', `cannot read ${name}: ${why}`, { cause: e });
  }
  const { lines, recognised } = parser.stats;
  if (lines === 0) throw new LogInputError('E_EMPTY', `${name} is empty: expected a QEMU log (qemu-system-x86_64 -d int,cpu_reset -D FILE)`);
  if (recognised === 0) {
    throw new LogInputError(
      'E_NOT_QEMU_LOG',
      `${name} is not a QEMU -d int log: none of its ${lines} line${lines === 1 ? '' : 's'} is one QEMU writes (v=.., check_exception, Triple fault, CPU Reset, a register dump); run QEMU with -d int,cpu_reset -D FILE`,
    );
  }
  return explainer.finish(parser.stats);
}

/** The #PFs of a log held against tables: the walk of each, or why it was not walked. */
export interface LogTables {
  checks: Map<LoggedException, TablesCheck>;
  skipped: Map<LoggedException, string>;
}

/** Walks the CR2 of every #PF of `x` on `mem`, in the registers the log shows with `override` on top. */
export async function logTables(mem: AsyncPhysMemory, x: LogExplanation, features: CpuFeatures, override: PagingOverride = {}): Promise<LogTables> {
  const checks = new Map<LoggedException, TablesCheck>();
  const skipped = new Map<LoggedException, string>();
  for (const r of await runAsync(checkPageFaultsTask(x, features, override), mem)) {
    if ('skipped' in r) skipped.set(r.exception, r.skipped);
    else checks.set(r.exception, { walk: r.walk, agrees: r.comparison.agrees, explanation: r.comparison.explanation });
  }
  return { checks, skipped };
}
