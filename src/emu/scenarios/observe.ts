/**
 * What a scenario run did, read the way one reads QEMU: the exception lines of a `-d int,cpu_reset`
 * log (the emulator's or QEMU's own), the first exception parsed from them, and a run of a built
 * scenario on a fresh emulated machine with its outcome in the terms of {@link ScenarioOutcome}.
 */
import { hasErrorCode } from '../exceptions.js';
import { Machine, type StopEvent } from '../machine.js';
import type { TlbModel } from '../cpu.js';
import type { ScenarioBuild, ScenarioOutcome } from './scenario.js';

/** The first exception of a run. */
export type FirstException = NonNullable<ScenarioOutcome['first']>;

const INTERRUPT_LINE = /^\s*\d+: v=([0-9a-f]{2}) e=([0-9a-f]{4}) i=([01]) cpl=\d IP=[0-9a-f]{4}:([0-9a-f]{16}) pc=[0-9a-f]{16} SP=[0-9a-f]{4}:[0-9a-f]{16}(?: CR2=([0-9a-f]{16}))?/;

/** True for a line that says something about exceptions: `check_exception ...`, a `v=` line, `Triple fault`. */
export function isExceptionLine(line: string): boolean {
  return line.startsWith('check_exception ') || line === 'Triple fault' || INTERRUPT_LINE.test(line);
}

/** The exception lines of a log, in order (register dumps, resets and SMM lines dropped). */
export function exceptionLines(log: readonly string[]): string[] {
  return log.filter(isExceptionLine);
}

/** A `v=` line parsed: the vector, the error code (null for software interrupts and vectors without one), CR2 (#PF only) and RIP. */
export function parseInterruptLine(line: string): FirstException | null {
  const m = INTERRUPT_LINE.exec(line);
  if (!m) return null;
  const vector = parseInt(m[1]!, 16);
  const software = m[3] === '1';
  return {
    vector,
    errorCode: software || !hasErrorCode(vector) ? null : parseInt(m[2]!, 16),
    cr2: m[5] !== undefined ? BigInt(`0x${m[5]}`) : null,
    rip: BigInt(`0x${m[4]!}`),
  };
}

/** The first exception a log shows, or undefined when it shows none. */
export function firstException(log: readonly string[]): FirstException | undefined {
  for (const line of log) {
    const e = parseInterruptLine(line);
    if (e) return e;
  }
  return undefined;
}

/** A scenario run on the emulator. */
export interface ScenarioRun {
  machine: Machine;
  /** Why the run ended: halted, shutdown (triple fault), or limit (still running). */
  stop: StopEvent;
  outcome: ScenarioOutcome;
  /** The exception lines of the emulator's `-d int` log. */
  exceptions: string[];
  /** Everything written to COM1. */
  serial: string;
}

/**
 * Runs `build` on a fresh machine (triple faults shut it down) until it halts, shuts down or has
 * executed `maxInstructions` (default 1 million), and says how it ended.
 */
export function runScenario(build: ScenarioBuild, opts: { tlbModel?: TlbModel; maxInstructions?: number } = {}): ScenarioRun {
  const machine = new Machine({ ...build.config, tripleFault: 'shutdown', tlbModel: opts.tlbModel ?? build.config.tlbModel });
  const stop = machine.run({ maxInstructions: opts.maxInstructions ?? 1_000_000 });
  const exceptions = exceptionLines(machine.log.lines);
  const first = firstException(exceptions);
  const kind: ScenarioOutcome['kind'] = stop.reason === 'shutdown' ? 'triple-fault' : first ? 'fault' : 'runs';
  return { machine, stop, outcome: first ? { kind, first } : { kind }, exceptions, serial: machine.serialText() };
}
