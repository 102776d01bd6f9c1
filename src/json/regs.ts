/**
 * The JSON shape of `regs`: the paging registers decoded.
 */
import { hex } from '../paging/addr.js';
import type { CpuState, Segment } from '../paging/cpu.js';
import { cr3Root, pagingMode, vaBitsOf } from '../paging/mode.js';
import { CR0, CR4, EFER, has } from '../paging/registers.js';

/** Decoded paging registers, as JSON. */
export interface RegsJson {
  mode: string;
  vaBits: number;
  cr0: { value: string; pe: boolean; wp: boolean; pg: boolean };
  cr3: { value: string; base: string; pcid: number | null; pwt: boolean | null; pcd: boolean | null };
  cr4: { value: string; pse: boolean; pae: boolean; pge: boolean; la57: boolean; pcide: boolean; smep: boolean; smap: boolean; pke: boolean; pks: boolean };
  efer: { value: string; sce: boolean; lme: boolean; lma: boolean; nxe: boolean };
  rip: string;
  rsp: string;
  cr2: string;
  rflags: string;
  cs: SegmentJson | null;
  ss: SegmentJson | null;
  gdtr: { base: string; limit: string } | null;
  idtr: { base: string; limit: string } | null;
  tr: SegmentJson | null;
  notes: string[];
}

/** A segment register, as JSON. */
export interface SegmentJson {
  selector: string;
  base: string | null;
  limit: string | null;
}

function seg(s: Segment | undefined): SegmentJson | null {
  if (!s) return null;
  return { selector: hex(s.selector), base: s.base === undefined ? null : hex(s.base), limit: s.limit === undefined ? null : hex(s.limit) };
}

/** Shapes the registers of `cpu`, decoded for paging. `maxPhyAddr` bounds the CR3 base. */
export function regsJson(cpu: CpuState, maxPhyAddr = 52, notes: string[] = cpu.notes): RegsJson {
  const mode = pagingMode(cpu);
  const pcide = has(cpu.cr4, CR4.PCIDE) && (mode === '4-level' || mode === '5-level');
  return {
    mode,
    vaBits: vaBitsOf(mode),
    cr0: { value: hex(cpu.cr0), pe: has(cpu.cr0, CR0.PE), wp: has(cpu.cr0, CR0.WP), pg: has(cpu.cr0, CR0.PG) },
    cr3: {
      value: hex(cpu.cr3),
      base: hex(cr3Root(mode === 'none' ? '4-level' : mode, cpu.cr3, maxPhyAddr)),
      pcid: pcide ? Number(cpu.cr3 & 0xfffn) : null,
      pwt: pcide ? null : (cpu.cr3 & 8n) !== 0n,
      pcd: pcide ? null : (cpu.cr3 & 0x10n) !== 0n,
    },
    cr4: {
      value: hex(cpu.cr4),
      pse: has(cpu.cr4, CR4.PSE),
      pae: has(cpu.cr4, CR4.PAE),
      pge: has(cpu.cr4, CR4.PGE),
      la57: has(cpu.cr4, CR4.LA57),
      pcide: has(cpu.cr4, CR4.PCIDE),
      smep: has(cpu.cr4, CR4.SMEP),
      smap: has(cpu.cr4, CR4.SMAP),
      pke: has(cpu.cr4, CR4.PKE),
      pks: has(cpu.cr4, CR4.PKS),
    },
    efer: {
      value: hex(cpu.efer),
      sce: has(cpu.efer, EFER.SCE),
      lme: has(cpu.efer, EFER.LME),
      lma: has(cpu.efer, EFER.LMA),
      nxe: has(cpu.efer, EFER.NXE),
    },
    rip: hex(cpu.rip),
    rsp: hex(cpu.rsp),
    cr2: hex(cpu.cr2),
    rflags: hex(cpu.rflags),
    cs: seg(cpu.cs),
    ss: seg(cpu.ss),
    gdtr: cpu.gdtr ? { base: hex(cpu.gdtr.base), limit: hex(cpu.gdtr.limit) } : null,
    idtr: cpu.idtr ? { base: hex(cpu.idtr.base), limit: hex(cpu.idtr.limit) } : null,
    tr: seg(cpu.tr),
    notes: [...notes],
  };
}
