/**
 * `pagewalk post-mortem [--log FILE]`: why a guest triple-faulted, from the state QEMU keeps when it
 * runs with `-action reboot=shutdown,shutdown=pause` (or `-no-reboot -no-shutdown`): the guest
 * stops in the `shutdown` state with RIP, RSP, CR2 and CR3 as they were. The pre-flight of that
 * state, the instruction at RIP and its memory accesses, CR2, and with --log the chain QEMU's
 * `-d int` log shows. `watch-cr3` and `catch-pf` print the same when the guest triple-faults under
 * them; `regs` and `check` on a shut-down guest point here. Exit status 1 when the state explains
 * a triple fault.
 */
import { Command } from 'commander';
import { postMortemJson } from '../../json/watch.js';
import { hex } from '../../paging/addr.js';
import { guestRunState } from '../../watch/driven.js';
import { postMortem, type PostMortem } from '../../watch/postMortem.js';
import { inSession, withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT } from '../errors.js';
import type { Output } from '../output.js';
import { renderWalk } from '../renderWalk.js';
import { logReader, rejectOverrides, renderHints, renderPreflightDetails } from './watchCr3.js';

interface PostMortemOptions extends CommonOptions {
  log?: string;
}

/** The post-mortem as text; `shutDown` false when the guest is not in QEMU's shutdown state (the state is then its current one). */
export function renderPostMortem(out: Output, pm: PostMortem, shutDown = true): void {
  const c = out.c;
  const head = shutDown ? c.bold(c.red('Triple fault')) + c.bold(' (post-mortem of the state kept)') : c.bold('Post-mortem of the current state (the guest is not shut down)');
  out.line(head + c.bold(`: RIP ${hex(pm.cpu.rip)}, RSP ${hex(pm.cpu.rsp)}, CR2 ${hex(pm.cpu.cr2)}, CR3 ${hex(pm.cpu.cr3)}`));
  if (pm.instruction) out.line(c.dim(`  the instruction at RIP: ${pm.instruction.text}`));
  out.line(`  ${pm.summary}`);
  if (pm.preflight.verdict !== 'safe' || pm.preflight.problems.length > 0) renderPreflightDetails(out, pm.preflight, []);
  if (pm.access) {
    out.line(`  The instruction's ${pm.access.access} at ${hex(pm.access.va)}:`);
    for (const line of renderWalk(pm.access.walk, c)) out.line(`  ${line}`);
  }
  if (pm.cr2 && pm.cr2.walk.fault && !(pm.access && pm.access.va === pm.cpu.cr2)) {
    out.line(`  CR2 ${hex(pm.cpu.cr2)} (the last #PF's address), as a ${pm.cr2.access}:`);
    for (const line of renderWalk(pm.cr2.walk, c)) out.line(`  ${line}`);
  }
  renderHints(out, pm.hints, '  ');
  if (pm.log) out.line(`  QEMU's log: ${pm.log.explanation}`);
}

/** Builds the `post-mortem` command. */
export function postMortemCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('post-mortem')
      .description("why the guest triple-faulted, from the state QEMU keeps with -action reboot=shutdown,shutdown=pause")
      .option('--log <file>', "QEMU's -d int log (-D FILE): adds the chain QEMU took"),
  ).action((opts: PostMortemOptions) =>
    inSession(run, opts, async (s, out) => {
      rejectOverrides(opts, 'post-mortem');
      const state = await guestRunState(s.target);
      if (state !== 'shutdown') {
        out.note(
          state === null
            ? 'the target cannot tell whether the guest is shut down: what follows holds the state as if it had triple-faulted there'
            : `the guest is not shut down (it is ${state}): what follows is the post-mortem of its current state, as if it had triple-faulted there`,
        );
      }
      const pm = await postMortem(s.target, { features: s.features, log: (await logReader(opts.log))?.(), ram: await s.target.ram() });
      if (pm.explained) run.status = Math.max(run.status, EXIT.DANGER);
      if (out.json) return out.jsonValue({ state, ...postMortemJson(pm) });
      renderPostMortem(out, pm, state === 'shutdown' || state === null);
    }),
  );
}
