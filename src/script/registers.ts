/**
 * Registers as script variables: `$rip`, `$rsp`, `$cr3`, `$cr2`, every general register the target
 * reports (`$rax` ... `$r15`), `$efer`, segment selectors, descriptor-table bases, and GDB's
 * `$pc` and `$sp`. They are read from the CPU state of the current stop, so they change as the guest runs.
 */
import type { CpuState } from '../paging/cpu.js';

const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const SEGMENTS = ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldtr'] as const;

/** Every register name a script may read (whether the target reports it or not), in `help` order. */
export const REGISTER_NAMES: readonly string[] = [
  'rip',
  'rsp',
  'cr0',
  'cr2',
  'cr3',
  'cr4',
  'efer',
  'rflags',
  ...GPRS.filter((r) => r !== 'rsp'),
  ...SEGMENTS,
  'fs_base',
  'gs_base',
  'gdtr',
  'idtr',
  'pkru',
  'pc',
  'sp',
];

/** True when `name` (without `$`) is a register: such variables cannot be `set`. */
export function isRegisterName(name: string): boolean {
  return REGISTER_NAMES.includes(name.toLowerCase());
}

/** The value of register `name` in `cpu`; undefined when the target does not report it. */
export function registerValue(cpu: CpuState, name: string): bigint | undefined {
  const n = name.toLowerCase();
  switch (n) {
    case 'rip':
    case 'pc':
      return cpu.rip;
    case 'rsp':
    case 'sp':
      return cpu.rsp;
    case 'cr0':
    case 'cr2':
    case 'cr3':
    case 'cr4':
    case 'efer':
    case 'rflags':
      return cpu[n];
    case 'fs_base':
      return cpu.fs?.base;
    case 'gs_base':
      return cpu.gs?.base;
    case 'gdtr':
    case 'idtr':
      return cpu[n]?.base;
    case 'pkru':
      return cpu.pkru === undefined ? undefined : BigInt(cpu.pkru);
  }
  if ((SEGMENTS as readonly string[]).includes(n)) {
    const s = cpu[n as (typeof SEGMENTS)[number]];
    return s === undefined ? undefined : BigInt(s.selector);
  }
  return cpu.gpr[n];
}
