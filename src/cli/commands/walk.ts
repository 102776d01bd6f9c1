/**
 * `pagewalk walk VA...`: the translation path of each address, effective rights, and whether the
 * access would fault (exit status 1 when one does).
 */
import { Command, Option } from 'commander';
import { walkJson } from '../../json/walk.js';
import { runAsync } from '../../paging/memory.js';
import type { AccessKind } from '../../paging/rights.js';
import { walkTask } from '../../paging/walk.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT } from '../errors.js';
import { renderWalk } from '../renderWalk.js';

interface WalkOptions extends CommonOptions {
  access: AccessKind;
  user?: boolean;
}

/** Builds the `walk` command. */
export function walkCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('walk')
      .description('translate linear addresses: every level, effective rights, and whether the access faults')
      .argument('<va...>', 'linear addresses (hex with 0x, decimal, or symbols: --elf, or a scenario label on --emu)')
      .addOption(new Option('--access <kind>', 'the access to check').choices(['read', 'write', 'exec']).default('read'))
      .option('--user', 'check a user-mode (CPL 3) access instead of a supervisor one'),
  ).action((vas: string[], opts: WalkOptions) =>
    inSession(run, opts, async (s, out) => {
      const addresses = vas.map((v) => s.address(v, 'VA'));
      const access = { kind: opts.access, user: opts.user === true };
      const results = [];
      for (const va of addresses) results.push(await runAsync(walkTask(s.ctx, va, access), s.target));
      if (results.some((r) => r.fault !== null)) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) {
        const shaped = results.map(walkJson);
        return out.jsonValue(shaped.length === 1 ? shaped[0] : shaped);
      }
      const sym = s.symbols ? (va: bigint) => s.symbols!.symbolize(va) : undefined;
      results.forEach((r, i) => {
        if (i > 0) out.line();
        for (const line of renderWalk(r, out.c, sym)) out.line(line);
      });
    }),
  );
}
