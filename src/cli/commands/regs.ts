/**
 * `pagewalk regs`: the paging registers, decoded.
 */
import { Command } from 'commander';
import { regsJson } from '../../json/regs.js';
import { hex } from '../../paging/addr.js';
import { CR0, CR4, EFER, setBits } from '../../paging/registers.js';
import { guestRunState } from '../../watch/driven.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { table } from '../output.js';

/** Builds the `regs` command. */
export function regsCommand(run: CliRun): Command {
  return withTargetOptions(new Command('regs').description('the paging registers, decoded: mode, CR0, CR3, CR4, EFER, RIP, RSP, CR2')).action(
    (opts: CommonOptions) =>
      inSession(run, opts, async (s, out) => {
        if ((await guestRunState(s.target)) === 'shutdown') out.note('the guest is shut down after a triple fault (QEMU kept its state): `pagewalk post-mortem` explains why');
        const j = regsJson(s.cpu, s.ctx.maxPhyAddr, []);
        if (out.json) return out.jsonValue(j);
        const c = out.c;
        const on = (names: string[]): string => (names.length ? names.join(' ') : c.dim('(none)'));
        const sym = (v: bigint): string => {
          const n = s.symbols?.symbolize(v);
          return n ? `${hex(v)} <${n}>` : hex(v);
        };
        const cr3Detail =
          j.cr3.pcid !== null
            ? `table ${j.cr3.base}, PCID ${j.cr3.pcid}`
            : `table ${j.cr3.base}${j.cr3.pwt ? ' PWT' : ''}${j.cr3.pcd ? ' PCD' : ''}`;
        const rows: string[][] = [
          ['mode', c.bold(s.ctx.mode === 'none' ? 'no paging' : `${s.ctx.mode} paging`), c.dim(`${s.ctx.vaBits}-bit linear addresses, MAXPHYADDR ${s.ctx.maxPhyAddr}`)],
          ['CR0', j.cr0.value, on(setBits(s.cpu.cr0, CR0))],
          ['CR3', j.cr3.value, cr3Detail],
          ['CR4', j.cr4.value, on(setBits(s.cpu.cr4, CR4))],
          ['EFER', j.efer.value, on(setBits(s.cpu.efer, EFER))],
          ['RIP', sym(s.cpu.rip), ''],
          ['RSP', sym(s.cpu.rsp), ''],
          ['CR2', sym(s.cpu.cr2), ''],
          ['RFLAGS', j.rflags, ''],
        ];
        if (j.cs) rows.push(['CS', j.cs.selector, `CPL ${Number(s.cpu.cs!.selector & 3)}`]);
        if (j.gdtr) rows.push(['GDTR', j.gdtr.base, `limit ${j.gdtr.limit}`]);
        if (j.idtr) rows.push(['IDTR', j.idtr.base, `limit ${j.idtr.limit}`]);
        if (j.tr) rows.push(['TR', j.tr.selector, j.tr.base ? `base ${j.tr.base}` : '']);
        for (const line of table(rows)) out.line(line);
      }),
  );
}
