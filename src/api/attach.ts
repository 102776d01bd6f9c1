/**
 * `attach()`: the Node API's way in. It opens the target the options name, as the CLI does
 * (`{ emu: 'good' }` is `--emu good`), reads its registers once so that a wrong option fails here
 * rather than at the first call, and returns the session.
 */
import { openTarget, type TargetOptions } from '../cli/session.js';
import { loadElfSymbols, type SymbolTable } from '../target/elfSymbols.js';
import type { Target } from '../target/target.js';
import { toApiError } from './errors.js';
import { targetOptions, type AttachOptions } from './options.js';
import { PagewalkSession } from './session.js';

/** The options that name a target, rather than say how to read it. */
const TARGET_NAMES = ['gdb', 'qmp', 'memPath', 'dump', 'emu', 'example'] as const;

/**
 * Opens the target named by `options` (exactly one of gdb/qmp, dump, emu, example) and returns a
 * session on it. Throws ApiError: E_BAD_INPUT (options), E_OPEN (unreachable, busy), E_FORMAT.
 */
export async function attach(options: AttachOptions): Promise<PagewalkSession> {
  let o: TargetOptions;
  let symbols: SymbolTable | null;
  let target: Target;
  try {
    o = targetOptions(options);
    symbols = o.elf !== undefined ? await loadElfSymbols(o.elf) : null;
    target = await openTarget(o);
  } catch (e) {
    throw toApiError(e);
  }
  return attachTarget(target, options, symbols ?? target.symbols ?? null);
}

/**
 * A session on a target opened elsewhere (any `Target`: a MemoryTarget over a SparseMemory, an
 * EmuTarget on a machine of your own); the session owns it and closes it. `options` may carry
 * register overrides; target-naming options are ignored. Throws ApiError (the target is closed then).
 */
export async function attachTarget(target: Target, options: AttachOptions = {}, symbols: SymbolTable | null = null): Promise<PagewalkSession> {
  let session: PagewalkSession;
  try {
    const overrides = targetOptions(options);
    for (const k of TARGET_NAMES) delete overrides[k];
    session = new PagewalkSession(target, overrides, symbols);
  } catch (e) {
    await target.close().catch(() => undefined);
    throw toApiError(e);
  }
  try {
    await session.regs();
  } catch (e) {
    await session.close().catch(() => undefined);
    throw toApiError(e);
  }
  return session;
}
