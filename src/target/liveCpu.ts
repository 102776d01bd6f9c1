/**
 * The CPU state of a live QEMU, from what its two interfaces report: the gdbstub's `g` registers
 * (by target.xml name: cr0..cr4, efer, rip, rsp, eflags, selectors, GPRs, fs_base/gs_base) and the
 * monitor's `info registers` (the only source of GDTR, IDTR, TR, LDTR and the segments' hidden
 * parts). `notes` says which source each part came from when it is not the obvious one.
 */
import type { CpuState, Segment } from '../paging/cpu.js';
import { EFER } from '../paging/registers.js';
import type { HmpSegment, InfoRegisters } from '../qmp/hmp.js';
import { TargetError } from './target.js';

const GPRS_64 = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const GPRS_32 = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'esp'];
const SEGMENTS = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const;

/** What the user is told about the registers the gdbstub lacks, by where they came from. */
export const LIVE_NOTES = {
  fromMonitor: (label: string): string => `GDTR, IDTR, TR and segment bases: from \`info registers\` through ${label} (the gdbstub lacks them)`,
  noMonitor: 'GDTR, IDTR, TR and segment bases are unknown: the gdbstub lacks them and has no QEMU monitor to ask (add --qmp)',
  truncated: '`info registers` shows only the low 32 bits of RIP, RSP and the general registers in compatibility mode (long mode, 32-bit code)',
  otherCpu: (label: string): string =>
    `GDTR, IDTR, TR and segment bases are unknown: \`info registers\` through ${label} shows another CPU than the gdbstub (its RIP or CR3 differ)`,
} as const;

function seg(s: HmpSegment): Segment {
  return { selector: s.selector, base: s.base, limit: s.limit, flags: s.flags };
}

/**
 * The CPU state `info registers` describes (QMP targets). 32-bit layouts are widened to the 64-bit
 * names, with a note when the CPU is in long mode (compatibility mode: the upper halves exist, unseen).
 */
export function cpuFromInfoRegisters(info: InfoRegisters): CpuState {
  const notes: string[] = [];
  const gpr: Record<string, bigint> = {};
  if (info.layout === '64-bit') {
    for (const n of GPRS_64) if (info.gprs[n] !== undefined) gpr[n] = info.gprs[n]!;
  } else {
    GPRS_32.forEach((n, i) => {
      if (info.gprs[n] !== undefined) gpr[GPRS_64[i]!] = info.gprs[n]!;
    });
    if ((info.efer & EFER.LMA) !== 0n) notes.push(LIVE_NOTES.truncated);
  }
  const cpu: CpuState = {
    cr0: info.cr0,
    cr2: info.cr2,
    cr3: info.cr3,
    cr4: info.cr4,
    efer: info.efer,
    rip: info.rip,
    rsp: info.rsp,
    rflags: info.rflags,
    gpr,
    cs: seg(info.cs),
    ss: seg(info.ss),
    ds: seg(info.ds),
    es: seg(info.es),
    fs: seg(info.fs),
    gs: seg(info.gs),
    tr: seg(info.tr),
    ldtr: seg(info.ldt),
    gdtr: { ...info.gdt },
    idtr: { ...info.idt },
    notes,
  };
  if (info.pkru !== undefined) cpu.pkru = info.pkru;
  return cpu;
}

/**
 * The CPU state from the gdbstub's registers (`g`, by name), completed with `info registers` when
 * the monitor answered (`shown` non-null, read at the same stop; used only when its RIP and CR3 are
 * the gdbstub's, i.e. it is the same CPU) and `monitorLabel` says through what. Throws TargetError
 * (E_FORMAT) when neither source has CR0, CR3, CR4 or RIP.
 */
export function cpuFromGdbRegisters(regs: ReadonlyMap<string, bigint>, shown: InfoRegisters | null, monitorLabel: string | null): CpuState {
  const notes: string[] = [];
  // With several CPUs the monitor's current CPU need not be the one the gdbstub stopped on.
  const rip = regs.get('rip') ?? regs.get('eip');
  const cr3 = regs.get('cr3');
  const sameCpu = shown !== null && (rip === undefined || rip === shown.rip) && (cr3 === undefined || cr3 === shown.cr3);
  const info = sameCpu ? shown : null;
  const pick = (names: readonly string[], fallback: bigint | undefined, what: string): bigint => {
    for (const n of names) {
      const v = regs.get(n);
      if (v !== undefined) return v;
    }
    if (fallback !== undefined) return fallback;
    throw new TargetError('E_FORMAT', `the gdbstub reports no ${what} register (it has ${[...regs.keys()].slice(0, 40).join(', ')}), and no monitor gave it`);
  };
  const gpr: Record<string, bigint> = {};
  const wide = regs.has('rax');
  (wide ? GPRS_64 : GPRS_32).forEach((n, i) => {
    const v = regs.get(n);
    if (v !== undefined) gpr[GPRS_64[i]!] = v;
  });
  const cpu: CpuState = {
    cr0: pick(['cr0'], info?.cr0, 'CR0'),
    cr2: pick(['cr2'], info?.cr2 ?? 0n, 'CR2'),
    cr3: pick(['cr3'], info?.cr3, 'CR3'),
    cr4: pick(['cr4'], info?.cr4, 'CR4'),
    efer: pick(['efer'], info?.efer ?? 0n, 'EFER'),
    rip: pick(['rip', 'eip', 'pc'], info?.rip, 'RIP'),
    rsp: pick(['rsp', 'esp', 'sp'], info?.rsp, 'RSP'),
    rflags: pick(['eflags', 'rflags'], info?.rflags, 'RFLAGS'),
    gpr,
    notes,
  };
  if (!regs.has('efer') && !info) notes.push('EFER is unknown (the gdbstub does not report it): taken as 0');
  for (const name of SEGMENTS) {
    const selector = regs.get(name);
    const hidden = info?.[name];
    if (hidden && (selector === undefined || Number(selector) === hidden.selector)) cpu[name] = seg(hidden);
    else if (selector !== undefined) cpu[name] = { selector: Number(selector & 0xffffn) };
  }
  const fsBase = regs.get('fs_base');
  const gsBase = regs.get('gs_base');
  if (fsBase !== undefined && cpu.fs && cpu.fs.base === undefined) cpu.fs.base = fsBase;
  if (gsBase !== undefined && cpu.gs && cpu.gs.base === undefined) cpu.gs.base = gsBase;
  const pkru = regs.get('pkru');
  if (pkru !== undefined) cpu.pkru = Number(pkru & 0xffffffffn);
  if (info) {
    cpu.tr = seg(info.tr);
    cpu.ldtr = seg(info.ldt);
    cpu.gdtr = { ...info.gdt };
    cpu.idtr = { ...info.idt };
    if (info.pkru !== undefined) cpu.pkru ??= info.pkru;
    notes.push(LIVE_NOTES.fromMonitor(monitorLabel ?? 'the QEMU monitor'));
  } else {
    notes.push(shown ? LIVE_NOTES.otherCpu(monitorLabel ?? 'the QEMU monitor') : LIVE_NOTES.noMonitor);
  }
  return cpu;
}
