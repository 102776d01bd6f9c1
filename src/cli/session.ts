/**
 * A CLI session: the target the options name, its CPU state with the command line's overrides on
 * top, the paging context derived from it, and the notes that say what was assumed.
 */
import type { CpuState } from '../paging/cpu.js';
import { pagingContext, type CpuFeatures, type PagingContext, type PagingMode } from '../paging/mode.js';
import { CR0, CR4, EFER } from '../paging/registers.js';
import { buildExample } from '../image/example.js';
import { openDump } from '../target/dump.js';
import { openLiveTarget } from '../target/liveTarget.js';
import { openScenarioTarget } from '../target/emuTarget.js';
import { ScenarioError } from '../emu/scenarios/index.js';
import { MemoryTarget } from '../target/memoryTarget.js';
import { loadElfSymbols, type SymbolTable } from '../target/elfSymbols.js';
import type { Target } from '../target/target.js';
import { parseEndpoint as parseQmpEndpoint } from '../qmp/transport.js';
import { parseEndpoint as parseGdbEndpoint } from '../rsp/endpoint.js';
import { UsageError } from './errors.js';
import { parseAddress, parseNumber, parseSmall, type SymbolLookup } from './numbers.js';

/** The target and override options every target-using command takes. */
export interface TargetOptions {
  dump?: string;
  /** The built-in example machine (src/image/example.ts). */
  example?: boolean;
  /** QEMU's gdbstub: HOST:PORT or a unix socket path. */
  gdb?: string;
  /** QEMU's QMP socket: a path or HOST:PORT. */
  qmp?: string;
  /** The file behind the guest's RAM (memory-backend-file, share=on); needs --gdb or --qmp. */
  memPath?: string;
  /** A scenario of the bundled emulator, opened in process at its start. */
  emu?: string;
  cr0?: string;
  cr3?: string;
  cr4?: string;
  efer?: string;
  mode?: string;
  maxphyaddr?: string;
  /** commander's negatable `--no-1g-pages`: false when given. */
  '1gPages'?: boolean;
  pkru?: string;
  elf?: string;
}

/** An open target with everything derived from it. */
export interface Session {
  target: Target;
  /** The CPU state with the overrides applied. */
  cpu: CpuState;
  /** The CPU state as the target reported it, before overrides. */
  targetCpu: CpuState;
  features: CpuFeatures;
  ctx: PagingContext;
  /** What was assumed or inferred, for the user. */
  notes: string[];
  symbols: SymbolTable | null;
  /** Resolves an address argument (numbers, and symbols with --elf or on --emu). */
  address(text: string, what: string): bigint;
  close(): Promise<void>;
}

/**
 * Opens the target named by the options: exactly one of --dump, --example, --emu, or a live QEMU
 * (--gdb, --qmp, or both, with --mem-path on top). Throws UsageError for a wrong combination or a malformed
 * endpoint, TargetError when the target cannot be opened.
 */
export async function openTarget(o: TargetOptions): Promise<Target> {
  const live = o.gdb !== undefined || o.qmp !== undefined;
  const named = [o.dump !== undefined && '--dump FILE', o.example === true && '--example', live && '--gdb/--qmp', o.emu !== undefined && '--emu SCENARIO'].filter(Boolean);
  if (named.length > 1) {
    throw new UsageError(`pass one target, not ${named.join(' and ')}: --dump FILE, --example, --emu SCENARIO, or a live QEMU with --gdb HOST:PORT and/or --qmp PATH`);
  }
  if (o.memPath !== undefined && !live) {
    throw new UsageError('--mem-path FILE reads the RAM of a live QEMU: pass --gdb HOST:PORT or --qmp PATH with it (registers, and memory outside RAM, come from there)');
  }
  if (live) return openLiveTarget({ gdb: o.gdb === undefined ? undefined : gdbEndpoint(o.gdb), qmp: o.qmp === undefined ? undefined : qmpEndpoint(o.qmp), memPath: o.memPath });
  if (o.dump) return openDump(o.dump);
  if (o.emu !== undefined) return emuTarget(o.emu);
  if (o.example) {
    const m = buildExample();
    return new MemoryTarget(m.mem, m.cpu, { maxPhyAddr: 40, gbPages: true }, 'the built-in example machine');
  }
  throw new UsageError(
    "no target: pass --dump FILE (a raw physical memory image, or an ELF core from QEMU's dump-guest-memory), --example for the built-in example machine, --emu SCENARIO for the bundled emulator, or --gdb HOST:PORT and/or --qmp PATH for a running QEMU",
  );
}

/** The scenario's machine at its start; an unknown name is bad input listing the valid ones. */
function emuTarget(name: string): Target {
  try {
    return openScenarioTarget(name);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(`--emu: ${e.message}`);
    throw e;
  }
}

function gdbEndpoint(text: string): string {
  try {
    parseGdbEndpoint(text);
    return text;
  } catch (e) {
    throw new UsageError(`--gdb: ${(e as Error).message}`);
  }
}

function qmpEndpoint(text: string): string {
  try {
    parseQmpEndpoint(text);
    return text;
  } catch (e) {
    throw new UsageError(`--qmp: ${(e as Error).message}`);
  }
}

const MODE_REGS: Record<Exclude<PagingMode, 'none'>, { cr0: bigint; cr4: bigint; efer: bigint }> = {
  '32-bit': { cr0: CR0.PG | CR0.WP | CR0.PE, cr4: CR4.PSE, efer: 0n },
  PAE: { cr0: CR0.PG | CR0.WP | CR0.PE, cr4: CR4.PAE, efer: EFER.NXE },
  '4-level': { cr0: CR0.PG | CR0.WP | CR0.PE, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA | EFER.NXE },
  '5-level': { cr0: CR0.PG | CR0.WP | CR0.PE, cr4: CR4.PAE | CR4.LA57, efer: EFER.LME | EFER.LMA | EFER.NXE },
};

/** Said when CR4.PKE is on and nothing gave PKRU (QEMU's gdbstub and `info registers` do not). */
export const PKRU_UNKNOWN =
  'CR4.PKE is on, but the target does not report PKRU: protection keys of user pages are checked as if PKRU were 0, every key allowed (pass --pkru VALUE, what rdpkru gives in the guest)';

/** Parses `--mode` (32-bit, pae, 4-level, 5-level; case-insensitive). */
export function parseMode(text: string): Exclude<PagingMode, 'none'> {
  const t = text.trim().toLowerCase();
  const m = ({ '32-bit': '32-bit', '32': '32-bit', pae: 'PAE', '4-level': '4-level', '4': '4-level', '5-level': '5-level', '5': '5-level' } as const)[t];
  if (!m) throw new UsageError(`--mode: expected 32-bit, pae, 4-level or 5-level, got '${text}'`);
  return m;
}

/**
 * Applies the command line's register overrides to `cpu`. A target without registers (a raw
 * image) walks in 4-level long mode unless told otherwise, with a note.
 */
export function applyOverrides(cpu: CpuState, o: TargetOptions, notes: string[]): CpuState {
  const out: CpuState = { ...cpu, notes: [...cpu.notes] };
  const noRegisters = cpu.cr0 === 0n && cpu.cr3 === 0n && cpu.cr4 === 0n && cpu.efer === 0n;
  if (o.mode !== undefined) {
    Object.assign(out, MODE_REGS[parseMode(o.mode)]);
  } else if (noRegisters && o.cr3 !== undefined && o.cr0 === undefined && o.cr4 === undefined) {
    Object.assign(out, MODE_REGS['4-level']);
    notes.push('the target has no paging registers: assuming 4-level long mode with CR0.WP and EFER.NXE (pass --mode or --cr0/--cr4/--efer to say otherwise)');
  }
  if (o.cr0 !== undefined) out.cr0 = parseNumber(o.cr0, '--cr0');
  if (o.cr3 !== undefined) out.cr3 = parseNumber(o.cr3, '--cr3');
  if (o.cr4 !== undefined) out.cr4 = parseNumber(o.cr4, '--cr4');
  if (o.efer !== undefined) out.efer = parseNumber(o.efer, '--efer');
  if (o.pkru !== undefined) out.pkru = Number(parseNumber(o.pkru, '--pkru', 0xffffffffn));
  // Notes that tell the user to pass an option they have passed no longer apply.
  const given = (['cr0', 'cr3', 'cr4', 'efer', 'mode'] as const).filter((k) => o[k] !== undefined);
  out.notes = out.notes.filter((n) => !given.some((k) => n.includes(`--${k}`)));
  return out;
}

/** Opens a session for the options; its symbols come from --elf, or else from the target (a scenario's labels). */
export async function openSession(o: TargetOptions): Promise<Session> {
  const symbols = o.elf ? await loadElfSymbols(o.elf) : null;
  const target = await openTarget(o);
  return sessionFor(target, o, symbols ?? target.symbols ?? null);
}

/**
 * Builds a session around an open target. If that fails the target is closed, unless
 * `closeOnError` is false (a TUI refreshing after a stop keeps its target through a passing error).
 */
export async function sessionFor(target: Target, o: TargetOptions, symbols: SymbolTable | null = null, closeOnError = true): Promise<Session> {
  try {
    const notes: string[] = [];
    const targetCpu = await target.cpuState();
    const cpu = applyOverrides(targetCpu, o, notes);
    const known = await target.cpuFeatures();
    const features: CpuFeatures = { ...known };
    if (o.maxphyaddr !== undefined) features.maxPhyAddr = parseSmall(o.maxphyaddr, '--maxphyaddr', 32, 52);
    else if (known.maxPhyAddr === undefined) notes.push('MAXPHYADDR is unknown: assuming 52 (pass --maxphyaddr N, e.g. 40 for QEMU\'s default CPU)');
    if (o['1gPages'] === false) features.gbPages = false;
    if (cpu.pkru !== undefined) features.pkru = cpu.pkru;
    else if ((cpu.cr4 & CR4.PKE) !== 0n) notes.push(PKRU_UNKNOWN);
    const ctx = pagingContext(cpu, features);
    if (ctx.mode === 'none') notes.push('paging is off (CR0.PG=0): linear addresses are physical addresses');
    const lookup: SymbolLookup | undefined = symbols ? (n) => symbols.lookup(n) : undefined;
    return {
      target,
      cpu,
      targetCpu,
      features,
      ctx,
      notes: [...cpu.notes, ...notes],
      symbols,
      address: (text, what) => parseAddress(text, what, lookup),
      close: () => target.close(),
    };
  } catch (e) {
    if (closeOnError) await target.close();
    throw e;
  }
}
