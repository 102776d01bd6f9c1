/**
 * `pagewalk emu`: serves a scenario of the bundled emulator to any tool, the way QEMU serves a VM
 * (`-gdb tcp::P -qmp unix:PATH,server=on -S`): a gdbstub for GDB and pagewalk, and optionally a
 * QMP monitor. It prints where it listens and runs until interrupted (SIGINT or SIGTERM close the
 * sockets and exit 0), or until a client ends it (GDB's `kill`, QMP's `quit`). `--list` names the
 * scenarios.
 */
import { Command } from 'commander';
import { Machine } from '../../emu/machine.js';
import { QmpServer } from '../../emu/qmpServer.js';
import { RspServer } from '../../emu/rspServer.js';
import { SCENARIOS, ScenarioError, findScenario, type Scenario } from '../../emu/scenarios/index.js';
import { EmuSession, type ExitReason } from '../../emu/session.js';
import { ListenError, type ListenAddress } from '../../net/singleClient.js';
import { hex } from '../../paging/addr.js';
import type { CliRun } from '../command.js';
import { UsageError } from '../errors.js';
import { parseSmall } from '../numbers.js';
import { Output } from '../output.js';

interface EmuOptions {
  scenario?: string;
  gdbPort?: string;
  gdbSocket?: string;
  qmp?: string;
  run?: boolean;
  list?: boolean;
  json?: boolean;
}

/** One scenario as `emu --list --json` prints it. */
export interface ScenarioListing {
  name: string;
  title: string;
  description: string;
}

/** The scenarios, as `--list --json` prints them. */
export function scenarioListing(): ScenarioListing[] {
  return SCENARIOS.map((s) => ({ name: s.name, title: s.title, description: s.description }));
}

/** `--qmp PATH|PORT`: a number is a TCP port on 127.0.0.1, `HOST:PORT` a TCP address, anything else a unix socket path. */
function qmpAddress(text: string): ListenAddress {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { port: parseSmall(t, '--qmp', 0, 65535) };
  const tcp = /^(?:tcp:)?([^/:]+):(\d+)$/.exec(t);
  if (tcp) return { host: tcp[1]!, port: parseSmall(tcp[2]!, '--qmp port', 0, 65535) };
  if (t === '' || t === 'unix:') throw new UsageError('--qmp: expected a unix socket path, a TCP port, or HOST:PORT');
  return { path: t.replace(/^unix:/, '') };
}

function scenarioNamed(name: string | undefined): Scenario {
  const names = SCENARIOS.map((s) => s.name).join(', ');
  if (name === undefined) throw new UsageError(`emu: pass --scenario NAME (one of ${names}), or --list`);
  try {
    return findScenario(name);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(`--scenario: ${e.message}`);
    throw e;
  }
}

/** Builds the `emu` command. */
export function emuCommand(run: CliRun): Command {
  return new Command('emu')
    .description('serve a scenario of the bundled emulator over the GDB protocol (and QMP), as QEMU would')
    .option('--scenario <name>', 'the scenario to serve (see --list)')
    .option('--gdb-port <port>', 'serve the gdbstub on 127.0.0.1:PORT (0 picks a free port)')
    .option('--gdb-socket <path>', 'serve the gdbstub on a unix socket instead')
    .option('--qmp <path|port>', 'also serve QMP: a unix socket path, a TCP port on 127.0.0.1, or HOST:PORT')
    .option('--run', 'start running at once (default: stopped at the hand-over, like QEMU with -S)')
    .option('--list', 'list the scenarios')
    .option('--json', 'print JSON: the scenario list, or one line saying where the servers listen')
    .action(async (opts: EmuOptions) => {
      const out = new Output(run.io, opts.json === true);
      if (opts.list) {
        if (out.json) return out.jsonValue(scenarioListing());
        const width = Math.max(...SCENARIOS.map((s) => s.name.length));
        for (const s of SCENARIOS) out.line(`${out.c.bold(s.name.padEnd(width))}  ${s.title}`);
        return;
      }
      const scenario = scenarioNamed(opts.scenario);
      if (opts.gdbPort === undefined && opts.gdbSocket === undefined) {
        throw new UsageError('emu: pass --gdb-port PORT (e.g. 1234, or 0 for any free port) or --gdb-socket PATH');
      }
      if (opts.gdbPort !== undefined && opts.gdbSocket !== undefined) throw new UsageError('emu: pass --gdb-port or --gdb-socket, not both');
      const gdbAt: ListenAddress = opts.gdbSocket !== undefined ? { path: opts.gdbSocket } : { port: parseSmall(opts.gdbPort!, '--gdb-port', 0, 65535) };
      const qmpAt = opts.qmp === undefined ? null : qmpAddress(opts.qmp);
      await serveScenario(run, out, scenario, gdbAt, qmpAt, opts.run === true);
    });
}

/** Serves until a signal or a client ends the emulator. */
async function serveScenario(run: CliRun, out: Output, scenario: Scenario, gdbAt: ListenAddress, qmpAt: ListenAddress | null, start: boolean): Promise<void> {
  const machine = new Machine(scenario.build().config);
  const session = new EmuSession(machine);
  let rsp: RspServer | null = null;
  let qmp: QmpServer | null = null;
  try {
    rsp = await RspServer.listen(session, gdbAt);
    if (qmpAt) qmp = await QmpServer.listen(session, qmpAt);
  } catch (e) {
    session.quit('host-signal');
    await rsp?.close();
    if (e instanceof ListenError) throw new UsageError(e.message);
    throw e;
  }
  const ended = new Promise<ExitReason>((resolve) => session.once('exit', resolve));
  const onSignal = (): void => session.quit('host-signal');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  machine.on('serial-line', (line) => void run.io.stderr.write(`[serial] ${line}\n`));
  if (out.json) {
    out.jsonValue({ scenario: scenario.name, gdb: rsp.label, qmp: qmp?.label ?? null, rip: hex(machine.cpu.rip), state: start ? 'running' : 'prelaunch' }, false);
  } else {
    out.line(`pagewalk emu: scenario ${out.c.bold(scenario.name)}: ${scenario.title}`);
    out.line(`  gdb  ${rsp.label}    (gdb -ex 'target remote ${rsp.label}')`);
    if (qmp) out.line(`  qmp  ${qmp.label}`);
    out.line(start ? 'running.' : `stopped at the hand-over, RIP ${hex(machine.cpu.rip)}: continue in GDB (or QMP cont) runs it.`);
    out.line('Ctrl-C ends it.');
  }
  if (start) session.cont();
  try {
    const reason = await ended;
    if (!out.json) out.line(`pagewalk emu: ended (${reason})`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all([rsp.close(), qmp?.close()]);
  }
}
