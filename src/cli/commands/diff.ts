/**
 * `pagewalk diff --cr3 A --against B`: what address space A maps that B does not, or maps
 * differently (and what B maps that A lost).
 */
import { Command } from 'commander';
import { diffEntryJson } from '../../json/map.js';
import { hex, hexPad } from '../../paging/addr.js';
import { diffRangesAsync } from '../../paging/diff.js';
import { withCr3 } from '../../paging/mode.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { parseNumber } from '../numbers.js';
import { humanSize, pad } from '../output.js';
import { rangeRights } from '../renderMap.js';
import { windowOptions } from './map.js';

interface DiffOptions extends CommonOptions {
  against: string;
  from?: string;
  to?: string;
}

/** Builds the `diff` command. */
export function diffCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('diff')
      .description('compare two address spaces: --cr3 A (default: the current one) against --against B')
      .requiredOption('--against <cr3>', 'the CR3 of the address space to compare with')
      .option('--from <va>', 'first linear address to compare')
      .option('--to <va>', 'last linear address to compare (inclusive)'),
  ).action((opts: DiffOptions) =>
    inSession(run, opts, async (s, out) => {
      const before = withCr3(s.ctx, parseNumber(opts.against, '--against'));
      const it = diffRangesAsync(s.target, s.ctx, before, windowOptions(s, opts.from, opts.to));
      const c = out.c;
      if (!out.json) out.line(c.bold(`${s.ctx.mode} paging: CR3 ${hex(s.ctx.cr3)} against ${hex(before.cr3)}`));
      const counts = { added: 0, removed: 0, changed: 0 };
      let first = true;
      if (out.json) out.io.stdout.write(`{"cr3":"${hex(s.ctx.cr3)}","against":"${hex(before.cr3)}","mode":"${s.ctx.mode}","entries":[`);
      for await (const d of it) {
        counts[d.kind]++;
        if (out.json) {
          out.io.stdout.write((first ? '\n' : ',\n') + JSON.stringify(diffEntryJson(d)));
          first = false;
          continue;
        }
        const mark = d.kind === 'added' ? c.green('+') : d.kind === 'removed' ? c.red('-') : c.yellow('~');
        const span = `${hexPad(d.va)}  ${hexPad(d.va + d.size - 1n)}  ${pad(humanSize(d.size), 6, true)}`;
        const side = (r: NonNullable<typeof d.now>): string => `${rangeRights(r, c)} ${humanSize(r.pageSize)} -> ${hex(r.pa + (d.va - r.va))}`;
        const text =
          d.kind === 'added' ? side(d.now!) : d.kind === 'removed' ? side(d.before!) : `${side(d.before!)}  =>  ${side(d.now!)}`;
        out.line(`${mark} ${span}  ${text}`);
      }
      if (out.json) {
        out.io.stdout.write(`\n],"counts":${JSON.stringify(counts)}}\n`);
      } else {
        out.line(c.dim(`${counts.added} added, ${counts.removed} removed, ${counts.changed} changed`));
      }
    }),
  );
}
