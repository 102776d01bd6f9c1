/**
 * What `attach()` takes, and how the API's loose inputs (addresses as bigint, number or text)
 * become the CLI's target options and exact values.
 */
import { UsageError } from '../cli/errors.js';
import { parseAddress, type SymbolLookup } from '../cli/numbers.js';
import type { TargetOptions } from '../cli/session.js';
import { ApiError } from './errors.js';

/** A number as a script may give it: a bigint, a safe integer, or text (`0x...`, decimal, or a symbol with `elf`). */
export type Numberish = bigint | number | string;

/** The target to attach to (exactly one kind), and register overrides, as the CLI's options. */
export interface AttachOptions {
  /** QEMU's gdbstub: `HOST:PORT` or `unix:PATH`; may be combined with `qmp`. */
  gdb?: string;
  /** QEMU's QMP socket: a path or `HOST:PORT`. */
  qmp?: string;
  /** The file behind the guest's RAM (memory-backend-file, share=on), with `gdb` or `qmp`. */
  memPath?: string;
  /** A raw physical memory image or an ELF core from `dump-guest-memory`. */
  dump?: string;
  /** A scenario of the bundled emulator, opened in process at its start (`good`, `stack-unmapped`, ...). */
  emu?: string;
  /** The built-in example machine (a kernel about to load tables that forget its stack). */
  example?: boolean;
  /** Walk with this CR3 instead of the target's (every method; `check(cr3)` pre-flights another). */
  cr3?: Numberish;
  /** Override CR0. */
  cr0?: Numberish;
  /** Override CR4. */
  cr4?: Numberish;
  /** Override IA32_EFER. */
  efer?: Numberish;
  /** Set CR0/CR4/EFER for a paging mode. */
  mode?: '32-bit' | 'pae' | '4-level' | '5-level';
  /** The CPU's physical address width (default: from the target, else 52 with a note). */
  maxPhyAddr?: number;
  /** False: the CPU has no 1 GiB pages (PS in a PDPTE is then a reserved bit). */
  gbPages?: boolean;
  /** The PKRU register, for protection-key checks. */
  pkru?: Numberish;
  /** A kernel ELF whose symbols may be used as addresses (`walk('kmain')`). */
  elf?: string;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set<keyof AttachOptions>([
  'gdb', 'qmp', 'memPath', 'dump', 'emu', 'example', 'cr3', 'cr0', 'cr4', 'efer', 'mode', 'maxPhyAddr', 'gbPages', 'pkru', 'elf',
]);

/** A register value as the CLI's option text. */
function registerText(v: Numberish | undefined, what: string): string | undefined {
  if (v === undefined) return undefined;
  return `0x${toUnsigned(v, what).toString(16)}`;
}

/**
 * The CLI's target options for `o`. Throws ApiError E_BAD_INPUT for an option that does not exist
 * (a typo such as `gbd`) or a value of the wrong type.
 */
export function targetOptions(o: AttachOptions): TargetOptions {
  if (typeof o !== 'object' || o === null) throw new ApiError('E_BAD_INPUT', 'attach() takes an options object such as { emu: "good" } or { gdb: "127.0.0.1:1234" }');
  const unknown = Object.keys(o).filter((k) => !KNOWN_OPTIONS.has(k));
  if (unknown.length > 0) throw new ApiError('E_BAD_INPUT', `attach(): unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${[...KNOWN_OPTIONS].join(', ')})`);
  for (const k of ['gdb', 'qmp', 'memPath', 'dump', 'emu', 'elf', 'mode'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new ApiError('E_BAD_INPUT', `attach(): ${k} must be a string`);
  }
  for (const k of ['example', 'gbPages'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ApiError('E_BAD_INPUT', `attach(): ${k} must be true or false`);
  }
  if (o.maxPhyAddr !== undefined && (!Number.isInteger(o.maxPhyAddr) || o.maxPhyAddr < 32 || o.maxPhyAddr > 52)) {
    throw new ApiError('E_BAD_INPUT', `attach(): maxPhyAddr must be a whole number of bits from 32 to 52, not ${String(o.maxPhyAddr)}`);
  }
  const t: TargetOptions = {
    gdb: o.gdb,
    qmp: o.qmp,
    memPath: o.memPath,
    dump: o.dump,
    emu: o.emu,
    example: o.example,
    cr0: registerText(o.cr0, 'cr0'),
    cr3: registerText(o.cr3, 'cr3'),
    cr4: registerText(o.cr4, 'cr4'),
    efer: registerText(o.efer, 'efer'),
    mode: o.mode,
    maxphyaddr: o.maxPhyAddr === undefined ? undefined : String(o.maxPhyAddr),
    pkru: registerText(o.pkru, 'pkru'),
    elf: o.elf,
  };
  if (o.gbPages === false) t['1gPages'] = false;
  // commander leaves absent options out: so does this, so that `k in o` tests keep their meaning.
  for (const k of Object.keys(t) as (keyof TargetOptions)[]) if (t[k] === undefined) delete t[k];
  return t;
}

/**
 * `v` as an unsigned 64-bit value: a bigint or a safe integer as it is, text as the CLI reads it
 * (`0x` hex, decimal, or with `symbols` a symbol plus or minus an offset). Throws ApiError E_BAD_INPUT.
 */
export function toUnsigned(v: unknown, what: string, symbols?: SymbolLookup): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << 64n) throw new ApiError('E_BAD_INPUT', `${what}: ${v} is outside 0..0xffffffffffffffff`);
    return v;
  }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new ApiError('E_BAD_INPUT', `${what}: ${v} is not a whole number from 0 to 2^53 (pass larger addresses as a bigint or as hex text)`);
    }
    return BigInt(v);
  }
  if (typeof v === 'string') {
    try {
      return parseAddress(v, what, symbols);
    } catch (e) {
      if (e instanceof UsageError) throw new ApiError('E_BAD_INPUT', e.message, { cause: e });
      throw e;
    }
  }
  throw new ApiError('E_BAD_INPUT', `${what}: expected an address (a bigint, a number, or text such as "0xffffffff80000000"), got ${v === null ? 'null' : typeof v}`);
}
