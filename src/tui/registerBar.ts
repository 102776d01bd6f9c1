/**
 * The register bar: the paging mode and CR0, CR3, CR4 and EFER decoded on the first line; RIP, RSP
 * and CR2 (with symbols when an ELF is loaded) on the second. Segments that do not fit the width
 * are left out, least important first, so the values themselves always show.
 */
import { regsJson } from '../json/regs.js';
import { hex } from '../paging/addr.js';
import { cpl, type CpuState } from '../paging/cpu.js';
import type { PagingContext } from '../paging/mode.js';
import { CR0, CR4, EFER, setBits } from '../paging/registers.js';
import { visibleLength } from '../cli/output.js';
import type { Paint } from './paint.js';

/** A piece of a line and how readily it is dropped (higher goes first). */
interface Segment {
  text: string;
  drop: number;
}

/** Joins segments with two spaces, leaving out the most droppable ones until the line fits `width`. */
function fit(segments: Segment[], width: number): string {
  const kept = [...segments];
  const length = (): number => kept.reduce((n, s) => n + visibleLength(s.text), 0) + 2 * Math.max(0, kept.length - 1);
  while (length() > width) {
    const most = Math.max(...kept.map((s) => s.drop));
    if (most <= 0) break;
    kept.splice(kept.findIndex((s) => s.drop === most), 1);
  }
  return kept.map((s) => s.text).join('  ');
}

/** The two lines of the register bar for `cpu` under `ctx`; `sym` names addresses when symbols are loaded. */
export function registerBarLines(cpu: CpuState, ctx: PagingContext, p: Paint, width: number, sym?: (va: bigint) => string | undefined): [string, string] {
  const { c } = p;
  const j = regsJson(cpu, ctx.maxPhyAddr, []);
  const bits = (value: bigint, table: Readonly<Record<string, bigint>>): string => {
    const on = setBits(value, table);
    return on.length > 0 ? c.cyan(on.join(' ')) : c.dim('-');
  };
  const reg = (name: string, value: string): string => `${c.dim(name)} ${c.bold(value)}`;
  const mode = ctx.mode === 'none' ? 'no paging' : `${ctx.mode} paging`;
  const cr3 = j.cr3.pcid !== null ? `table ${j.cr3.base} PCID ${j.cr3.pcid}` : `table ${j.cr3.base}${j.cr3.pwt ? ' PWT' : ''}${j.cr3.pcd ? ' PCD' : ''}`;
  const first: Segment[] = [
    { text: c.bold(c.magenta(mode)), drop: 0 },
    { text: reg('CR0', j.cr0.value), drop: 0 },
    { text: bits(cpu.cr0, CR0), drop: 3 },
    { text: reg('CR3', j.cr3.value), drop: 0 },
    { text: c.cyan(cr3), drop: 4 },
    { text: reg('CR4', j.cr4.value), drop: 0 },
    { text: bits(cpu.cr4, CR4), drop: 2 },
    { text: reg('EFER', j.efer.value), drop: 0 },
    { text: bits(cpu.efer, EFER), drop: 1 },
  ];
  const named = (v: bigint): string => {
    const n = sym?.(v);
    return n ? `${hex(v)} <${n}>` : hex(v);
  };
  const second: Segment[] = [
    { text: reg('RIP', named(cpu.rip)), drop: 0 },
    { text: reg('RSP', named(cpu.rsp)), drop: 0 },
    { text: reg('CR2', named(cpu.cr2)), drop: 0 },
    { text: reg('RFLAGS', hex(cpu.rflags)), drop: 2 },
    ...(cpu.cs ? [{ text: reg('CPL', String(cpl(cpu))), drop: 1 }] : []),
  ];
  return [fit(first, width), fit(second, width)];
}
