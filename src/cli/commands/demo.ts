/**
 * `pagewalk demo`: a guided tour on the built-in example machine, a 64-bit kernel that its loader
 * has just handed over and that is about to load page tables which forget the boot stack.
 * Each step is a real pagewalk command, shown as the user would type it.
 */
import { Command } from 'commander';
import { writeElfCore } from '../../image/elfCore.js';
import { buildExample, EXAMPLE } from '../../image/example.js';
import { hex } from '../../paging/addr.js';
import type { CliRun } from '../command.js';
import { EXIT } from '../errors.js';
import { Output } from '../output.js';

interface DemoOptions {
  save?: string;
}

/** Builds the `demo` command; `runCommand` runs another pagewalk command line in the same process. */
export function demoCommand(run: CliRun, runCommand: (argv: string[]) => Promise<number>): Command {
  return new Command('demo')
    .description('a guided tour on the built-in example machine: a kernel about to load tables that would triple-fault')
    .option('--save <file>', 'write the example machine as an ELF core (as QEMU\'s dump-guest-memory would) instead of the tour')
    .action(async (opts: DemoOptions) => {
      const out = new Output(run.io, false);
      const c = out.c;
      const m = buildExample();
      if (opts.save) {
        await writeElfCore(m.mem, m.cpu, opts.save);
        out.line(`wrote ${opts.save}: try  pagewalk check --dump ${opts.save} --cr3 ${hex(m.kernelCr3)}`);
        return;
      }
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
