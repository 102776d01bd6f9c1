/**
 * `regs`: the paging registers of the current stop, decoded; the CLI's text and JSON.
 */
import { regsJson } from '../../json/regs.js';
import { table } from '../../cli/output.js';
import { hex } from '../../paging/addr.js';
import { CR0, CR4, EFER, setBits } from '../../paging/registers.js';
import type { CommandContext, CommandOutput } from '../context.js';

/** Runs `regs`. */
export async function regsCommand(c: CommandContext): Promise<CommandOutput> {
  const { cpu, ctx } = c.session;
  const j = regsJson(cpu, ctx.maxPhyAddr, []);
  const col = c.colors;
  const on = (names: string[]): string => (names.length ? names.join(' ') : col.dim('(none)'));
  const sym = (v: bigint): string => {
    const n = c.symbolize(v);
    return n ? `${hex(v)} <${n}>` : hex(v);
  };
  const cr3Detail = j.cr3.pcid !== null ? `table ${j.cr3.base}, PCID ${j.cr3.pcid}` : `table ${j.cr3.base}${j.cr3.pwt ? ' PWT' : ''}${j.cr3.pcd ? ' PCD' : ''}`;
  const rows: string[][] = [
    ['mode', col.bold(ctx.mode === 'none' ? 'no paging' : `${ctx.mode} paging`), col.dim(`${ctx.vaBits}-bit linear addresses, MAXPHYADDR ${ctx.maxPhyAddr}`)],
    ['CR0', j.cr0.value, on(setBits(cpu.cr0, CR0))],
    ['CR3', j.cr3.value, cr3Detail],
    ['CR4', j.cr4.value, on(setBits(cpu.cr4, CR4))],
    ['EFER', j.efer.value, on(setBits(cpu.efer, EFER))],
    ['RIP', sym(cpu.rip), ''],
    ['RSP', sym(cpu.rsp), ''],
    ['CR2', sym(cpu.cr2), ''],
    ['RFLAGS', j.rflags, ''],
  ];
  if (j.cs) rows.push(['CS', j.cs.selector, `CPL ${Number(cpu.cs!.selector & 3)}`]);
  if (j.gdtr) rows.push(['GDTR', j.gdtr.base, `limit ${j.gdtr.limit}`]);
  if (j.idtr) rows.push(['IDTR', j.idtr.base, `limit ${j.idtr.limit}`]);
  if (j.tr) rows.push(['TR', j.tr.selector, j.tr.base ? `base ${j.tr.base}` : '']);
  return { text: table(rows), warnings: [], result: j };
}
