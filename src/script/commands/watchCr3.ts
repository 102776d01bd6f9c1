/**
 * `watch-cr3 [--count N] [--stop-on danger|every]`: the CR3 watch of `pagewalk watch-cr3` inside a
 * script. Each event (sites, every CR3 write with its pre-flight, the stop) is emitted as it comes,
 * with the CLI's text and JSON (one object per event, as `pagewalk watch-cr3 --json` prints them);
 * the command's own result says how the watch ended. Like the CLI command, it leaves the guest
 * stopped where the watch stopped, and the script goes on from there.
 */
import { elfCodeOf, leaveStopped, renderWatchEvent } from '../../cli/commands/watchCr3.js';
import { watchEventJson } from '../../json/watch.js';
import { watchCr3 } from '../../watch/cr3Watch.js';
import { captureOutput } from '../capture.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';

/** Runs `watch-cr3`. */
export async function watchCr3Command(c: CommandContext): Promise<CommandOutput> {
  const countExpr = c.statement.options.get('count');
  const count = await c.optionNumber('count');
  if (count !== undefined && (count < 1n || count > 1_000_000_000n)) throw new ScriptError('E_VALUE', `--count takes 1 to 1000000000 writes, not ${count}`, countExpr!.span);
  c.control();
  const { target, features } = c.session;
  const elf = await elfCodeOf(c.targetOptions.elf);
  leaveStopped(target);
  const r = await watchCr3(target, {
    features,
    count: count === undefined ? undefined : Number(count),
    stopOn: (c.optionWord('stop-on') as 'danger' | 'every' | undefined) ?? null,
    elf,
    ram: await target.ram(),
    signal: c.signal,
    onEvent: (e) => {
      const { text, warnings } = captureOutput(c.colors, (out) => renderWatchEvent(out, e));
      if (text[0] === '') text.shift();
      c.emit({ text, warnings, result: watchEventJson(e) });
    },
  });
  if (r.end !== 'exited') await c.stopped({ cause: r.end === 'shutdown' ? 'shutdown' : 'breakpoint', signal: r.end === 'shutdown' ? 3 : 5 });
  return { text: [], warnings: [], result: { end: r.end, writes: r.writes, dangerous: r.dangerous } };
}
