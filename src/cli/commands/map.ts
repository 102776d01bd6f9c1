/**
 * `pagewalk map [--from VA --to VA]`: every mapping, coalesced into ranges, streamed.
 */
import { Command } from 'commander';
import { mapRangeJson, mapSummaryJson } from '../../json/map.js';
import { hex } from '../../paging/addr.js';
import { mapRangesAsync, type MapOptions, type MapSummary } from '../../paging/map.js';
import { cr3ReservedWarning, mapTitle, mapTotalLine, mapWarnings } from '../../report/map.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { mapHeader, mapLine, vaDigits } from '../renderMap.js';
import type { Session } from '../session.js';

interface MapCliOptions extends CommonOptions {
  from?: string;
  to?: string;
}

/** Parses --from/--to into map options, checking them against the mode. */
export function windowOptions(s: Session, from?: string, to?: string): MapOptions {
  const opts: MapOptions = {};
  if (from !== undefined) opts.from = s.address(from, '--from');
  if (to !== undefined) opts.to = s.address(to, '--to');
  if (opts.from !== undefined && opts.to !== undefined && opts.from > opts.to) {
    throw new UsageError(`--from ${hex(opts.from)} is above --to ${hex(opts.to)}`);
  }
  return opts;
}

/** Builds the `map` command. */
export function mapCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('map')
      .description('every mapping, coalesced into ranges with rights and page size')
      .option('--from <va>', 'first linear address to list')
      .option('--to <va>', 'last linear address to list (inclusive)'),
  ).action((opts: MapCliOptions) =>
    inSession(run, opts, async (s, out) => {
      const reserved = cr3ReservedWarning(s.ctx);
      if (reserved) {
        out.warn(reserved);
        run.status = Math.max(run.status, EXIT.DANGER);
      }
      const it = mapRangesAsync(s.target, s.ctx, windowOptions(s, opts.from, opts.to));
      let summary: MapSummary;
      if (out.json) {
        // Streamed as one JSON document: a million ranges are never held at once.
        out.io.stdout.write(`{"cr3":"${hex(s.ctx.cr3)}","mode":"${s.ctx.mode}","ranges":[`);
        let first = true;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            summary = r.value;
            break;
          }
          out.io.stdout.write((first ? '\n' : ',\n') + JSON.stringify(mapRangeJson(r.value)));
          first = false;
        }
        out.io.stdout.write(`\n],"summary":${JSON.stringify(mapSummaryJson(summary))}}\n`);
      } else {
        const c = out.c;
        out.line(mapTitle(c, s.ctx));
        out.line(mapHeader(c, vaDigits(s.ctx.vaBits)));
        let bytes = 0n;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            summary = r.value;
            break;
          }
          bytes += r.value.size;
          out.line(mapLine(r.value, c, vaDigits(s.ctx.vaBits)));
        }
        out.line(mapTotalLine(c, summary, bytes));
      }
      // With --json, the summary lists what could not be listed; loops are warned of either way.
      const { unlisted, loops } = mapWarnings(summary, 'pagewalk check');
      for (const w of out.json ? loops : [...unlisted, ...loops]) out.warn(w);
      if (summary.truncated.length > 0) run.status = Math.max(run.status, EXIT.DANGER);
    }),
  );
}
