/**
 * `pagewalk phys2virt PA`: every linear address that maps a physical address.
 */
import { Command } from 'commander';
import { aliasJson } from '../../json/map.js';
import { hex, hexPad } from '../../paging/addr.js';
import { phys2virtAsync } from '../../paging/phys2virt.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT } from '../errors.js';
import { parseNumber } from '../numbers.js';
import { humanSize } from '../output.js';
import { rangeRights } from '../renderMap.js';

/** Builds the `phys2virt` command. */
export function phys2virtCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('phys2virt').description('every linear address that maps a physical address').argument('<pa>', 'the physical address'),
  ).action((paText: string, opts: CommonOptions) =>
    inSession(run, opts, async (s, out) => {
      const pa = parseNumber(paText, 'PA', (1n << 52n) - 1n);
      const aliases = await phys2virtAsync(s.target, s.ctx, pa);
      if (aliases.length === 0) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) return out.jsonValue({ pa: hex(pa), cr3: hex(s.ctx.cr3), mode: s.ctx.mode, aliases: aliases.map(aliasJson) });
      const c = out.c;
      if (aliases.length === 0) return out.line(`${hex(pa)} is not mapped in CR3 ${hex(s.ctx.cr3)}`);
      out.line(`${c.bold(hex(pa))} is mapped at ${aliases.length} linear address${aliases.length === 1 ? '' : 'es'}:`);
      for (const a of aliases) {
        const name = s.symbols?.symbolize(a.va);
        out.line(`  ${hexPad(a.va)}${name ? ` <${name}>` : ''}  ${humanSize(a.range.pageSize)} page  ${rangeRights(a.range, c)}`);
      }
    }),
  );
}
