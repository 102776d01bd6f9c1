/**
 * `regs`, as the CLI, the run language and the APIs answer it: the paging registers of the
 * session, decoded; as JSON and as text.
 */
import { table, type Colors } from '../cli/output.js';
import type { Session } from '../cli/session.js';
import { regsJson, type RegsJson } from '../json/regs.js';
import { hex } from '../paging/addr.js';
import { linearIp } from '../paging/cpu.js';
import { CR0, CR4, EFER, setBits } from '../paging/registers.js';

/** The registers, decoded. */
export interface RegsReport {
  json: RegsJson;
  /** The registers as aligned rows, coloured with `c`; addresses named with the session's symbols. */
  lines(c: Colors): string[];
}

/** Decodes the session's registers; `notes` go into the JSON (the CLI prints them apart, on stderr). */
export function regsReport(s: Session, notes: string[] = []): RegsReport {
  const { cpu, ctx } = s;
  const j = regsJson(cpu, ctx.maxPhyAddr, notes);
  return {
    json: j,
    lines(c) {
      const on = (names: string[]): string => (names.length ? names.join(' ') : c.dim('(none)'));
      const sym = (v: bigint): string => {
        const n = s.symbols?.symbolize(v);
        return n ? `${hex(v)} <${n}>` : hex(v);
      };
      const cr3Detail = j.cr3.pcid !== null ? `table ${j.cr3.base}, PCID ${j.cr3.pcid}` : `table ${j.cr3.base}${j.cr3.pwt ? ' PWT' : ''}${j.cr3.pcd ? ' PCD' : ''}`;
      const real = (cpu.cr0 & CR0.PE) === 0n;
      const mode = real ? 'real mode, no paging' : ctx.mode === 'none' ? 'no paging' : `${ctx.mode} paging`;
      const ip = real ? `CS:IP ${(cpu.cs?.selector ?? 0).toString(16).padStart(4, '0')}:${(cpu.rip & 0xffffn).toString(16).padStart(4, '0')}, linear ${hex(linearIp(cpu))}` : '';
      const rows: string[][] = [
        ['mode', c.bold(mode), c.dim(`${ctx.vaBits}-bit linear addresses, MAXPHYADDR ${ctx.maxPhyAddr}`)],
        ['CR0', j.cr0.value, on(setBits(cpu.cr0, CR0))],
        ['CR3', j.cr3.value, cr3Detail],
        ['CR4', j.cr4.value, on(setBits(cpu.cr4, CR4))],
        ['EFER', j.efer.value, on(setBits(cpu.efer, EFER))],
        ['RIP', sym(cpu.rip), ip],
        ['RSP', sym(cpu.rsp), ''],
        ['CR2', sym(cpu.cr2), ''],
        ['RFLAGS', j.rflags, ''],
      ];
      if (j.cs) rows.push(['CS', j.cs.selector, `CPL ${Number(cpu.cs!.selector & 3)}`]);
      if (j.gdtr) rows.push(['GDTR', j.gdtr.base, `limit ${j.gdtr.limit}`]);
      if (j.idtr) rows.push(['IDTR', j.idtr.base, `limit ${j.idtr.limit}`]);
      if (j.tr) rows.push(['TR', j.tr.selector, j.tr.base ? `base ${j.tr.base}` : '']);
      return table(rows);
    },
  };
}
