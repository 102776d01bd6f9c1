/**
 * The commands that move the guest or say where it stops: `step [N]`, `cont`, `break VA...`,
 * `delete [VA...]`. They need a debuggable target (the emulator, QEMU's gdbstub); on any other the
 * context's `control()` fails with a line-numbered error.
 */
import { hex } from '../../paging/addr.js';
import type { Stop } from '../../target/debuggee.js';
import type { CommandContext, CommandOutput } from '../context.js';
import { ScriptError } from '../errors.js';

/** A stop as JSON: the cause, the signal, and the exit status when the guest exited. */
export function stopJson(stop: Stop): { cause: string; signal: number | null; exitCode?: number } {
  return { cause: stop.cause, signal: stop.signal, ...(stop.exitCode !== undefined && { exitCode: stop.exitCode }) };
}

/** Where the guest stands after `stop`: RIP with its symbol, or that it is gone. */
async function where(c: CommandContext, stop: Stop): Promise<{ rip: bigint | null; at: string }> {
  if (stop.cause === 'exited') return { rip: null, at: `the guest exited${stop.exitCode !== undefined ? ` (status ${stop.exitCode})` : ''}` };
  const s = await c.stopped(stop);
  const name = c.symbolize(s.cpu.rip);
  return { rip: s.cpu.rip, at: `RIP ${c.colors.bold(hex(s.cpu.rip))}${name ? ` <${name}>` : ''}` };
}

/** Runs `step [N]`: N single steps, ending early at a stop that is not a step (a shutdown, say) or on interrupt. */
export async function stepCommand(c: CommandContext): Promise<CommandOutput> {
  const arg = c.statement.args[0];
  const count = arg ? await c.number(arg, 'the step count') : 1n;
  if (count < 1n || count > 1_000_000n) throw new ScriptError('E_VALUE', `step takes 1 to 1000000 steps, not ${count}`, arg!.span);
  const control = c.control();
  let done = 0;
  let stop: Stop = { cause: 'step', signal: 5 };
  while (BigInt(done) < count && !c.signal.aborted) {
    stop = await control.step();
    done++;
    if (stop.cause !== 'step') break;
    // An in-process emulator steps without touching the event loop: let an interrupt (Ctrl-C, a TUI key) in now and then.
    if (done % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const { rip, at } = await where(c, stop);
  const steps = `${done} step${done === 1 ? '' : 's'}`;
  const line = stop.cause === 'step' && BigInt(done) === count ? `${steps}: ${at}` : `stopped (${stop.cause}) after ${steps} of ${count}: ${at}`;
  return { text: [line], warnings: [], result: { steps: done, stop: stopJson(stop), rip: rip === null ? null : hex(rip) } };
}

/** Runs `cont`: resumes and waits for the next stop. */
export async function contCommand(c: CommandContext): Promise<CommandOutput> {
  const stop = await c.control().cont();
  const { rip, at } = await where(c, stop);
  return { text: [`stopped (${stop.cause}): ${at}`], warnings: [], result: { stop: stopJson(stop), rip: rip === null ? null : hex(rip) } };
}

/** Runs `break VA...`. */
export async function breakCommand(c: CommandContext): Promise<CommandOutput> {
  const control = c.control();
  const text: string[] = [];
  const added: string[] = [];
  for (const arg of c.statement.args) {
    const va = await c.number(arg, 'the breakpoint address');
    const name = c.symbolize(va);
    const label = `${hex(va)}${name ? ` <${name}>` : ''}`;
    if (c.breakpoints.has(va)) {
      text.push(`breakpoint at ${label} (already set)`);
      continue;
    }
    await control.insertBreakpoint(va);
    c.breakpoints.add(va);
    added.push(hex(va));
    text.push(`breakpoint at ${label}`);
  }
  return { text, warnings: [], result: { inserted: added, breakpoints: [...c.breakpoints].map(hex) } };
}

/** Runs `delete [VA...]`: the given breakpoints, or every one the script set. */
export async function deleteCommand(c: CommandContext): Promise<CommandOutput> {
  const control = c.control();
  const targets: bigint[] = [];
  for (const arg of c.statement.args) {
    const va = await c.number(arg, 'the breakpoint address');
    if (!c.breakpoints.has(va)) {
      const set = [...c.breakpoints].map(hex).join(', ');
      throw new ScriptError('E_VALUE', `no breakpoint at ${hex(va)} (${set ? `set: ${set}` : 'none is set'})`, arg.span);
    }
    targets.push(va);
  }
  if (c.statement.args.length === 0) targets.push(...c.breakpoints);
  for (const va of targets) {
    await control.removeBreakpoint(va);
    c.breakpoints.delete(va);
  }
  const text = targets.length === 0 ? ['no breakpoints to delete'] : [`deleted ${targets.length === 1 ? 'the breakpoint' : `${targets.length} breakpoints`} at ${targets.map(hex).join(', ')}`];
  return { text, warnings: [], result: { removed: targets.map(hex), breakpoints: [...c.breakpoints].map(hex) } };
}
