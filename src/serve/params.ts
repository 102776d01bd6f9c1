/**
 * The parameters of each method, checked before anything runs: by name (an object), known
 * members only, each of its declared kind. A failure is a {@link ParamsError}, answered as
 * JSON-RPC's "invalid params" with a message that names the member and what would be right.
 */

/** What a member holds. */
export type ParamKind =
  /** An address or other 64-bit value: a non-negative safe integer, or text (`0x...`, decimal, a symbol). */
  | { kind: 'address' }
  /** One address, or up to `max` of them in an array. */
  | { kind: 'addresses'; max: number }
  | { kind: 'boolean' }
  | { kind: 'string'; maxChars: number; pattern?: RegExp }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'integer'; min: number; max: number };

/** The parameters of one method: members, and which of them are required. */
export interface ParamsSpec {
  members: Record<string, ParamKind>;
  required?: readonly string[];
}

/** Parameters that do not fit the method's spec. */
export class ParamsError extends Error {
  readonly code = 'E_BAD_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'ParamsError';
  }
}

/** Longest address text accepted (a symbol plus an offset). */
const MAX_ADDRESS_CHARS = 256;

function checkAddress(v: unknown, where: string): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new ParamsError(`${where}: ${v} is not a whole number from 0 to 2^53; pass larger values as hex text ("0xffffffff80000000")`);
    return;
  }
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > MAX_ADDRESS_CHARS) throw new ParamsError(`${where}: expected an address as text of 1 to ${MAX_ADDRESS_CHARS} characters`);
    return;
  }
  throw new ParamsError(`${where}: expected an address (hex text such as "0xffffffff80000000", or a number), got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

function checkMember(name: string, kind: ParamKind, v: unknown, method: string): void {
  const where = `${method}: "${name}"`;
  switch (kind.kind) {
    case 'address':
      checkAddress(v, where);
      return;
    case 'addresses':
      if (Array.isArray(v)) {
        if (v.length === 0 || v.length > kind.max) throw new ParamsError(`${where}: expected 1 to ${kind.max} addresses, got ${v.length}`);
        v.forEach((x, i) => checkAddress(x, `${where}[${i}]`));
      } else {
        checkAddress(v, where);
      }
      return;
    case 'boolean':
      if (typeof v !== 'boolean') throw new ParamsError(`${where}: expected true or false, got ${describe(v)}`);
      return;
    case 'string':
      if (typeof v !== 'string') throw new ParamsError(`${where}: expected a string, got ${describe(v)}`);
      if (v.length > kind.maxChars) throw new ParamsError(`${where}: ${v.length} characters is over the limit of ${kind.maxChars}`);
      if (kind.pattern && !kind.pattern.test(v)) throw new ParamsError(`${where}: ${JSON.stringify(v.slice(0, 40))} does not match ${kind.pattern}`);
      return;
    case 'enum':
      if (typeof v !== 'string' || !kind.values.includes(v)) throw new ParamsError(`${where}: expected one of ${kind.values.join(', ')}, got ${describe(v)}`);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < kind.min || v > kind.max) {
        throw new ParamsError(`${where}: expected a whole number from ${kind.min} to ${kind.max}, got ${describe(v)}`);
      }
      return;
  }
}

/** `params` checked against `spec`: absent means no members; the members are returned as a plain record. */
export function checkParams(method: string, spec: ParamsSpec, params: unknown): Record<string, unknown> {
  if (params === undefined) params = {};
  if (Array.isArray(params)) {
    throw new ParamsError(`${method}: pass parameters by name, as an object${Object.keys(spec.members).length ? ` (${Object.keys(spec.members).join(', ')})` : ''}`);
  }
  if (typeof params !== 'object' || params === null) throw new ParamsError(`${method}: params must be an object`);
  const p = params as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(p)) {
    const kind = Object.hasOwn(spec.members, key) ? spec.members[key] : undefined;
    if (!kind) {
      const known = Object.keys(spec.members);
      throw new ParamsError(`${method}: unknown parameter ${JSON.stringify(key.slice(0, 40))}${known.length ? ` (known: ${known.join(', ')})` : ' (it takes none)'}`);
    }
    checkMember(key, kind, p[key], method);
    out[key] = p[key];
  }
  for (const key of spec.required ?? []) {
    if (!(key in out)) throw new ParamsError(`${method}: "${key}" is required`);
  }
  return out;
}
