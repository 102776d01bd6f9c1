/**
 * The functions expressions call to ask the target: `mapped`, `pa`, `faults`, `verdict`,
 * `writable`, `executable`, `user`. Each walks (or pre-flights) the current tables; none changes
 * the guest.
 */
import type { Session } from '../cli/session.js';
import { AddressError, hex } from '../paging/addr.js';
import { runAsync, type AsyncPhysMemory } from '../paging/memory.js';
import { withCr3, type PagingContext } from '../paging/mode.js';
import { preflightAsync } from '../paging/preflight.js';
import type { Access, AccessKind } from '../paging/rights.js';
import { SUPERVISOR_READ, walkTask, type WalkResult } from '../paging/walk.js';
import { ScriptError } from './errors.js';
import type { Span } from './span.js';
import { typeName, type Value } from './values.js';

const ACCESS: Readonly<Record<string, AccessKind>> = { read: 'read', r: 'read', write: 'write', w: 'write', exec: 'exec', x: 'exec', execute: 'exec', fetch: 'exec' };

/** Runs `fn`; an address the mode cannot express (AddressError) is a ScriptError (E_VALUE) at `span`. */
export async function addressAt<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AddressError) throw new ScriptError('E_VALUE', e.message, span);
    throw e;
  }
}

/** Walks `va` for `access`; an address the mode cannot express is a ScriptError (E_VALUE) at `span`. */
export function walkAt(mem: AsyncPhysMemory, ctx: PagingContext, va: bigint, access: Access, span: Span): Promise<WalkResult> {
  return addressAt(span, () => runAsync(walkTask(ctx, va, access), mem));
}

function numberArg(v: Value | undefined, span: Span | undefined, fn: string, param: string, at: Span): bigint {
  if (typeof v !== 'bigint') throw new ScriptError('E_TYPE', `${fn}: ${param} must be a number, not ${v === undefined ? 'nothing' : typeName(v)}`, span ?? at);
  return v;
}

function stringArg(v: Value | undefined, span: Span | undefined, fn: string, param: string, at: Span): string {
  if (typeof v !== 'string') throw new ScriptError('E_TYPE', `${fn}: ${param} must be a string such as "write", not ${v === undefined ? 'nothing' : typeName(v)}`, span ?? at);
  return v;
}

/**
 * Calls function `name` of the language against `session`. Throws ScriptError: E_TYPE for a wrong
 * argument, E_VALUE for `pa` of an unmapped address or an unknown access kind.
 */
export async function callQuery(session: Session, name: string, args: readonly Value[], spans: readonly Span[], span: Span): Promise<Value> {
  const { target, ctx } = session;
  const va = (): bigint => numberArg(args[0], spans[0], name, name === 'verdict' ? 'CR3' : 'the address', span);
  switch (name) {
    case 'mapped':
      return (await walkAt(target, ctx, va(), SUPERVISOR_READ, spans[0] ?? span)).translation !== null;
    case 'pa': {
      const w = await walkAt(target, ctx, va(), SUPERVISOR_READ, spans[0] ?? span);
      if (w.translation) return w.translation.pa;
      throw new ScriptError('E_VALUE', `pa(${hex(w.va)}): not mapped: ${w.fault?.explanation ?? 'the walk does not complete'}`, span);
    }
    case 'writable':
    case 'executable':
    case 'user': {
      const t = (await walkAt(target, ctx, va(), SUPERVISOR_READ, spans[0] ?? span)).translation;
      if (!t) return false;
      return name === 'writable' ? t.rights.write : name === 'executable' ? t.rights.execute : t.rights.user;
    }
    case 'faults': {
      const address = va();
      const word = stringArg(args[1], spans[1], name, 'the access', span);
      const kind = ACCESS[word.toLowerCase()];
      if (!kind) throw new ScriptError('E_VALUE', `faults: the access is "read", "write" or "exec", not "${word}"`, spans[1] ?? span);
      let user = false;
      if (args.length > 2) {
        const mode = stringArg(args[2], spans[2], name, 'the mode', span).toLowerCase();
        if (mode !== 'user' && mode !== 'supervisor') throw new ScriptError('E_VALUE', `faults: the mode is "user" or "supervisor", not "${mode}"`, spans[2] ?? span);
        user = mode === 'user';
      }
      return (await walkAt(target, ctx, address, { kind, user }, spans[0] ?? span)).fault !== null;
    }
    case 'verdict': {
      const cr3 = va();
      const pre = await preflightAsync(target, { ctx: withCr3(ctx, cr3), cpu: { ...session.cpu, cr3 } });
      return pre.verdict;
    }
  }
  throw new ScriptError('E_NAME', `unknown function '${name}'`, span);
}
