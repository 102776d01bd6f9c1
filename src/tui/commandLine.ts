/**
 * The TUI's command line: each line goes to the script executor of `pagewalk run` (one scope of
 * variables and breakpoints for the whole TUI session), against the stop on screen. What a command
 * shows in a pane goes there (walk to the path, map to the map, check and fault to the fault pane,
 * step and cont to a redraw of the stop); what only prints goes to the output pane.
 */
import pc from 'picocolors';
import { parseAddress, type SymbolLookup } from '../cli/numbers.js';
import type { Session } from '../cli/session.js';
import { parseLine, reportFailure, ScriptExecutor, type ScriptOutput } from '../script/index.js';
import { statementName } from '../script/ast.js';
import type { AccessKind } from '../paging/rights.js';
import { TargetError, type Target } from '../target/target.js';
import type { TuiController } from './controller.js';
import type { CpuView } from './cpuView.js';

/** Commands that let the guest run: the screen shows it running, and Ctrl-C reaches it. */
const DRIVING = new Set(['step', 'cont', 'watch-cr3']);

/** Commands whose answer the panes show: their text is not repeated in the output pane. */
const SHOWN_IN_PANES = new Set(['walk', 'map', 'check', 'fault', 'step', 'cont']);

/** A CLI session over the TUI's target and the stop on screen (the TUI owns the target: closing it here does nothing). */
export function sessionOfView(target: Target, view: CpuView, symbols: Session['symbols']): Session {
  const lookup: SymbolLookup | undefined = symbols ? (n) => symbols.lookup(n) : undefined;
  return {
    target,
    cpu: view.cpu,
    targetCpu: view.targetCpu,
    features: view.features,
    ctx: view.ctx,
    notes: view.notes,
    symbols,
    address: (text, what) => parseAddress(text, what, lookup),
    close: async () => undefined,
  };
}

/** The walk JSON fields the path pane needs. */
interface WalkResultJson {
  va: string;
  cr3: string;
  access: { kind: AccessKind; user: boolean };
}

/** Runs command lines for a TUI. */
export class TuiCommands {
  private executor: ScriptExecutor | null = null;
  private running = false;
  /** Lines run one after another, in the order they were entered. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly controller: TuiController) {}

  /** Runs one line after those entered before it; errors and failed assertions are printed, never thrown. */
  run(line: string): Promise<void> {
    const next = this.queue.then(() => this.runNow(line));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(line: string): Promise<void> {
    const c = this.controller;
    let name: string;
    try {
      const statement = parseLine(line, 1);
      if (!statement) return;
      name = statementName(statement);
    } catch (e) {
      this.printFailure(line, e);
      return;
    }
    this.running = true;
    c.print(pc.dim(`: ${line}`));
    try {
      const outputs = await c.withTarget(DRIVING.has(name), async (target, view) => {
        const session = sessionOfView(target, view, c.source.symbols);
        const executor = this.executorFor(session);
        try {
          return await executor.executeLine(line, 1);
        } catch (e) {
          this.printFailure(line, e, name);
          return [];
        }
      });
      if (outputs) await this.show(outputs);
    } finally {
      this.running = false;
    }
  }

  /** Stops what a running command drives (a `cont`, a `watch-cr3`, a `step N`). */
  async interrupt(): Promise<boolean> {
    if (!this.running || !this.executor) return false;
    await this.executor.interrupt();
    return true;
  }

  /** Removes the breakpoints the command line inserted. */
  async dispose(): Promise<void> {
    await this.executor?.dispose();
  }

  private executorFor(session: Session): ScriptExecutor {
    if (!this.executor) {
      this.executor = new ScriptExecutor(session, {
        colors: pc.createColors(true),
        targetOptions: this.controller.source.options,
        // Outputs print as they come (watch-cr3 reports each CR3 write before it ends).
        onOutput: (out) => this.print(out),
      });
    } else {
      this.executor.setSession(session);
    }
    return this.executor;
  }

  private print(out: ScriptOutput): void {
    const c = this.controller;
    for (const w of out.warnings) c.print(pc.yellow(`warning: ${w}`));
    if (!SHOWN_IN_PANES.has(out.command)) for (const l of out.text) c.print(l);
  }

  /** Puts what the panes show there. */
  private async show(outputs: ScriptOutput[]): Promise<void> {
    const c = this.controller;
    for (const out of outputs) {
      const r = out.result as Record<string, unknown> | null;
      if (!r) continue;
      switch (out.command) {
        case 'walk': {
          const walks = (Array.isArray(r) ? r : [r]) as WalkResultJson[];
          const last = walks[walks.length - 1];
          if (!last) break;
          const cr3 = BigInt(last.cr3);
          await c.walk(BigInt(last.va), { kind: last.access.kind, user: last.access.user }, cr3 === c.state.view?.ctx.cr3 ? null : cr3);
          c.notify(walks.length > 1 ? `walked ${walks.length} addresses: the last one is in the path pane` : 'walked: see the path pane', 'info');
          break;
        }
        case 'map': {
          const cr3 = BigInt(r.cr3 as string);
          await c.map(cr3 === c.state.view?.ctx.cr3 ? null : cr3);
          c.notify('listed: see the map pane', 'info');
          break;
        }
        case 'check':
          await c.check(BigInt(r.cr3 as string));
          break;
        case 'fault': {
          const rip = r.rip === null ? null : BigInt(r.rip as string);
          await c.fault(BigInt(r.cr2 as string), Number(BigInt(r.errorCode as string)), rip);
          c.notify('see the fault pane', 'info');
          break;
        }
      }
    }
  }

  /** Prints a failure as `pagewalk run` tells it (a caret under the culprit); a lost target is the controller's to report. */
  private printFailure(line: string, e: unknown, command?: string): void {
    if (e instanceof TargetError && e.code === 'E_LOST') throw e;
    const c = this.controller;
    const report = reportFailure(e, 'command', 1, line, command);
    for (const l of report.lines) c.print(pc.red(l));
    c.notify(report.lines[0]?.replace(/^command:1:(\d+:)? /, '') ?? 'the command failed', 'error');
  }
}
