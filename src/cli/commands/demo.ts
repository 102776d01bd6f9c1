/**
 * `pagewalk demo`: the terminal UI on the bundled emulator, with a picker of its scenarios. By
 * default the kernel of `stack-unmapped` runs under the CR3 watch, which stops it before the
 * `mov cr3` that would triple-fault and shows why: the warning, the walk that fails and the chain
 * of exceptions. Without a terminal (a pipe, CI) it prints the guided tour instead: real pagewalk
 * commands on the built-in example machine, a 64-bit kernel about to load tables that forget its
 * boot stack. `--list` names the scenarios; `--save` writes the example machine as an ELF core.
 */
import { Command } from 'commander';
import { SCENARIOS, ScenarioError, findScenario, type Scenario } from '../../emu/scenarios/index.js';
import { writeElfCore } from '../../image/elfCore.js';
import { buildExample, EXAMPLE } from '../../image/example.js';
import { hex } from '../../paging/addr.js';
import { emuSource } from '../../tui/sources.js';
import { cr3Watch } from '../../tui/watchRun.js';
import type { CliRun } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { Output } from '../output.js';
import { scenarioListing } from './emu.js';
import { loadTui } from './tui.js';

interface DemoOptions {
  save?: string;
  scenario?: string;
  list?: boolean;
  json?: boolean;
}

/** The scenario the demo starts with: the CR3 watch catches its triple fault before the `mov cr3` executes. */
export const DEMO_SCENARIO = 'stack-unmapped';

function scenarioNamed(name: string): Scenario {
  try {
    return findScenario(name);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(`--scenario: ${e.message}`);
    throw e;
  }
}

/** Builds the `demo` command; `runCommand` runs another pagewalk command line in the same process. */
export function demoCommand(run: CliRun, runCommand: (argv: string[]) => Promise<number>): Command {
  return new Command('demo')
    .description('the terminal UI on the bundled emulator: a kernel whose next mov cr3 would triple-fault, caught before it runs (a guided tour of commands without a terminal)')
    .option('--scenario <name>', `the emulator scenario to run (default ${DEMO_SCENARIO}; see --list)`)
    .option('--list', 'list the scenarios')
    .option('--json', 'with --list: print the list as JSON')
    .option('--save <file>', "write the example machine as an ELF core (as QEMU's dump-guest-memory would) instead of the demo")
    .action(async (opts: DemoOptions) => {
      const out = new Output(run.io, opts.json === true);
      if (opts.list) {
        if (out.json) return out.jsonValue(scenarioListing().map((s) => ({ ...s, default: s.name === DEMO_SCENARIO })));
        const width = Math.max(...SCENARIOS.map((s) => s.name.length));
        for (const s of SCENARIOS) out.line(`${out.c.bold(s.name.padEnd(width))}  ${s.title}${s.name === DEMO_SCENARIO ? out.c.dim('  (the default)') : ''}`);
        return;
      }
      if (opts.json) throw new UsageError('demo --json goes with --list (the demo itself is a terminal UI)');
      const m = buildExample();
      if (opts.save) {
        await writeElfCore(m.mem, m.cpu, opts.save);
        out.line(`wrote ${opts.save}: try  pagewalk check --dump ${opts.save} --cr3 ${hex(m.kernelCr3)}`);
        return;
      }
      const scenario = scenarioNamed(opts.scenario ?? DEMO_SCENARIO);
      const terminal = run.io.stdout.isTTY === true && process.stdin.isTTY === true;
      if (terminal) {
        const { runTui } = await loadTui();
        await runTui({
          source: emuSource(scenario),
          watch: cr3Watch(),
          run: true,
          picker: { items: scenarioListing(), source: (name) => emuSource(findScenario(name)) },
          env: run.io.env,
        });
        return;
      }
      if (opts.scenario !== undefined) {
        out.line(`${out.c.bold(scenario.name)}: ${scenario.title}`);
        out.line(scenario.description);
        out.line();
        out.line(`The demo's screen needs a terminal: run  pagewalk demo --scenario ${scenario.name}  in one,`);
        out.line(`or serve the scenario to GDB and pagewalk:  pagewalk emu --scenario ${scenario.name} --gdb-port 1234`);
        return;
      }
      const c = out.c;
      const step = async (title: string, argv: string[]): Promise<number> => {
        out.line();
        out.line(c.bold(c.cyan(`# ${title}`)));
        out.line(c.dim(`$ pagewalk ${argv.join(' ')}`));
        return runCommand(argv);
      };
      out.line(c.bold('pagewalk demo: an example 64-bit kernel, just handed over by its loader.'));
      out.line(`It runs at ${hex(EXAMPLE.rip)} on the loader's tables (CR3 ${hex(m.loaderCr3)}), on the loader's stack,`);
      out.line(`and is about to load its own tables (CR3 ${hex(m.kernelCr3)}). Will it survive?`);
      await step('Where are we? The paging registers', ['regs', '--example']);
      await step('The next instruction, walked through the loaded tables', ['walk', '--example', '--access', 'exec', hex(EXAMPLE.rip)]);
      await step('Everything the loader mapped', ['map', '--example']);
      await step("The kernel's new tables, before it loads them", ['map', '--example', '--cr3', hex(m.kernelCr3)]);
      const verdict = await step('Pre-flight: what happens on `mov cr3`?', ['check', '--example', '--cr3', hex(m.kernelCr3)]);
      await step('The boot stack, walked through the new tables', ['walk', '--example', '--cr3', hex(m.kernelCr3), '--access', 'write', hex(EXAMPLE.rsp - 8n)]);
      await step('With the HHDM covering all of RAM, the same switch is safe', ['check', '--example', '--cr3', hex(m.fixedCr3)]);
      out.line();
      out.line(c.bold('Try it on a dump:') + `  pagewalk demo --save /tmp/example.core && pagewalk check --dump /tmp/example.core --cr3 ${hex(m.kernelCr3)}`);
      // The tour itself succeeded; the danger it shows is the point, not a failure.
      run.status = verdict >= EXIT.BAD_INPUT ? verdict : EXIT.OK;
    });
}
