/**
 * `pagewalk diff --cr3 A --against B`: what address space A maps that B does not, or maps
 * differently (and what B maps that A lost).
 */
import { Command } from 'commander';
import type { DiffCountsJson } from '../../json/map.js';
import { diffEntryJson } from '../../json/map.js';
import { withCr3 } from '../../paging/mode.js';
import { diffCountsLine, diffLine, diffReport } from '../../report/diff.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { parseNumber } from '../numbers.js';
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
      const d = diffReport(s.target, s.ctx, before, windowOptions(s, opts.from, opts.to));
      const c = out.c;
      // Streamed as it comes (one JSON document with --json): a million entries are never held at once.
      if (out.json) out.io.stdout.write(`${JSON.stringify(d.header).slice(0, -1)},"entries":[`);
      else out.line(d.title(c));
      let first = true;
      let counts: DiffCountsJson;
      for (;;) {
        const r = await d.entries.next();
        if (r.done) {
          counts = r.value;
          break;
        }
        if (out.json) {
          out.io.stdout.write((first ? '\n' : ',\n') + JSON.stringify(diffEntryJson(r.value)));
          first = false;
        } else {
          out.line(diffLine(c, r.value));
        }
      }
      if (out.json) out.io.stdout.write(`\n],"counts":${JSON.stringify(counts)}}\n`);
      else out.line(diffCountsLine(c, counts));
    }),
  );
}
