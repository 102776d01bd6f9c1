/**
 * `pagewalk fault --cr2 X --error-code E [--rip R]`: a page fault decoded bit by bit and held
 * against the tables. Exit status 1: the tables (still) fault.
 */
import { Command } from 'commander';
import { compareFault } from '../../faults/againstTables.js';
import { diagnoseAsync } from '../../faults/diagnose.js';
import { decodeErrorCode } from '../../faults/errorCode.js';
import { faultJson } from '../../json/fault.js';
import { hintJson } from '../../json/watch.js';
import { hex } from '../../paging/addr.js';
import { runAsync } from '../../paging/memory.js';
import { walkTask } from '../../paging/walk.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { parseNumber } from '../numbers.js';
import { table } from '../output.js';
import { renderWalk } from '../renderWalk.js';
import { renderHints } from './watchCr3.js';

interface FaultOptions extends CommonOptions {
  cr2?: string;
  errorCode?: string;
  rip?: string;
}

/** Builds the `fault` command. */
export function faultCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('fault')
      .description('decode a page fault (CR2 and error code) and explain it against the tables')
      .option('--cr2 <va>', 'the faulting linear address (default: the target\'s CR2)')
      .requiredOption('--error-code <code>', 'the #PF error code (QEMU\'s e=, hex with 0x or decimal)')
      .option('--rip <va>', 'where the CPU was (default: the target\'s RIP)'),
  ).action((opts: FaultOptions) =>
    inSession(run, opts, async (s, out) => {
      const code = parseNumber(opts.errorCode!, '--error-code', 0xffffffffn);
      const decoded = decodeErrorCode(Number(code));
      if (decoded.undefinedBits !== 0) {
        throw new UsageError(`--error-code: ${hex(code)} sets bits no CPU defines (${hex(decoded.undefinedBits)}); a #PF error code uses bits 0-7 and 15`);
      }
      const cr2 = opts.cr2 !== undefined ? s.address(opts.cr2, '--cr2') : s.cpu.cr2;
      const rip = opts.rip !== undefined ? s.address(opts.rip, '--rip') : s.cpu.rip !== 0n ? s.cpu.rip : undefined;
      const w = await runAsync(walkTask(s.ctx, cr2, { kind: decoded.access, user: decoded.user }), s.target);
      const cmp = compareFault(decoded, w, rip);
      const hints = w.fault ? await diagnoseAsync(s.target, { ctx: s.ctx, walk: w, rsp: s.cpu.rsp, ram: await s.target.ram() }) : [];
      if (w.fault) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) return out.jsonValue({ ...faultJson(cr2, rip, decoded, w, cmp), hints: hints.map(hintJson) });
      const c = out.c;
      out.line(`${c.bold('#PF')} at CR2 ${c.bold(hex(cr2))}, error code ${c.bold(hex(code))}${rip !== undefined ? `, RIP ${hex(rip)}` : ''}`);
      const rows = decoded.bits
        .filter((b) => b.bit <= 5 || b.set)
        .map((b) => [`  ${b.name}=${b.set ? 1 : 0}`, b.set ? b.meaning : c.dim(b.meaning)]);
      for (const line of table(rows)) out.line(line);
      out.line(`  => a ${decoded.summary}`);
      for (const p of decoded.pitfalls) out.line(`  ${c.yellow('!')} ${p}`);
      out.line();
      out.line('The tables now:');
      for (const line of renderWalk(w, c)) out.line(line);
      out.line();
      out.line((cmp.agrees ? c.green('✓ ') : c.yellow('? ')) + cmp.explanation);
      renderHints(out, hints, '');
    }),
  );
}
