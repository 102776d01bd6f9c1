/**
 * `pagewalk map [--from VA --to VA]`: every mapping, coalesced into ranges, streamed.
 */
import { Command } from 'commander';
import { mapRangeJson, mapSummaryJson } from '../../json/map.js';
import { hex } from '../../paging/addr.js';
import { mapRangesAsync, type MapOptions, type MapSummary } from '../../paging/map.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { humanSize } from '../output.js';
import { mapHeader, mapLine } from '../renderMap.js';
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
      if (s.ctx.cr3Reserved !== 0n) {
        out.warn(`CR3 ${hex(s.ctx.cr3)} has reserved bits set (${hex(s.ctx.cr3Reserved)}): loading it raises #GP, so it maps nothing`);
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
        out.line(c.bold(`${s.ctx.mode} paging, CR3 ${hex(s.ctx.cr3)}`));
        out.line(mapHeader(c));
        let bytes = 0n;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            summary = r.value;
            break;
          }
          bytes += r.value.size;
          out.line(mapLine(r.value, c));
        }
        out.line(c.dim(`${summary.ranges} ranges, ${summary.leaves} pages, ${humanSize(bytes)} mapped`));
        if (summary.reservedEntries > 0) out.warn(`${summary.reservedEntries} present entries have reserved bits set and map nothing (see \`pagewalk check\`)`);
        for (const u of summary.unreadable) out.warn(`the ${u.level} table at ${hex(u.table)} (for ${hex(u.va)}) lies outside readable memory: its mappings are not listed`);
      }
      for (const t of summary.truncated) {
        out.warn(`tables loop: the ${t.level} table at ${hex(t.table)} is reached from itself (at ${hex(t.va)}); the rest of that subtree is not listed`);
      }
      if (summary.truncated.length > 0) run.status = Math.max(run.status, EXIT.DANGER);
    }),
  );
}
