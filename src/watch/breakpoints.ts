/**
 * The breakpoints a watch keeps in a target: inserted in order of priority, refusals noted (KVM
 * takes four hardware breakpoints), and all of them removed when the watch ends, so the guest is
 * left as the user had it, stopped where the watch stopped.
 */
import type { DebugControl } from '../target/debuggee.js';
import { TargetError } from '../target/target.js';

/** Refusals in a row after which no more insertions are tried (the target is full). */
const MAX_REFUSALS = 4;

/** A watch's breakpoints in one target. */
export class BreakpointSet {
  private readonly armed: bigint[] = [];
  /** The target refused a breakpoint: it has room for few. */
  private limited = false;

  constructor(private readonly control: DebugControl) {}

  /** The breakpoints in place, oldest first. */
  get addresses(): readonly bigint[] {
    return this.armed;
  }

  has(va: bigint): boolean {
    return this.armed.includes(va);
  }

  /**
   * Puts breakpoints at `wanted`, most important first; those in place stay. Once the target has
   * refused one, breakpoints not wanted any more are taken out first to make room. Returns what is
   * in place and what was refused (a refusal is the target's answer, not an error; a lost target is).
   */
  async arm(wanted: readonly bigint[]): Promise<{ armed: bigint[]; refused: bigint[] }> {
    if (this.limited) {
      for (const va of [...this.armed]) if (!wanted.includes(va)) await this.remove(va);
    }
    const refused: bigint[] = [];
    let inRow = 0;
    for (const va of wanted) {
      if (this.armed.includes(va)) continue;
      if (inRow >= MAX_REFUSALS) {
        refused.push(va);
        continue;
      }
      try {
        await this.control.insertBreakpoint(va);
        this.armed.push(va);
        inRow = 0;
      } catch (e) {
        if (!(e instanceof TargetError) || e.code === 'E_LOST') throw e;
        this.limited = true;
        refused.push(va);
        inRow++;
      }
    }
    return { armed: [...this.armed], refused };
  }

  /** Removes the breakpoint at `va` (a target that is gone is not an error here). */
  async remove(va: bigint): Promise<void> {
    const i = this.armed.indexOf(va);
    if (i < 0) return;
    this.armed.splice(i, 1);
    try {
      await this.control.removeBreakpoint(va);
    } catch (e) {
      if (!(e instanceof TargetError)) throw e;
    }
  }

  /** Removes every breakpoint. */
  async clear(): Promise<void> {
    for (const va of [...this.armed].reverse()) await this.remove(va);
  }
}
