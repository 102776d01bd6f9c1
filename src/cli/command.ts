/**
 * What every command shares: the target options, opening a session around an action, and the
 * exit status the action settles on.
 */
import { Command, Option } from 'commander';
import { Output, type Io } from './output.js';
import { openSession, type Session, type TargetOptions } from './session.js';

/** Options every command takes. */
export interface CommonOptions extends TargetOptions {
  json?: boolean;
}

/** The state of one CLI run that commands report into. */
export interface CliRun {
  io: Io;
  /** The exit status so far; commands raise it to EXIT.DANGER when the answer is a fault. */
  status: number;
}

/** Adds `--json` and the target options to `cmd`. */
export function withTargetOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print JSON instead of text')
    .option('--dump <file>', 'raw physical memory image (offset = physical address) or ELF core from dump-guest-memory')
    .option('--example', 'the built-in example machine (a 64-bit kernel about to load its own tables)')
    .option('--gdb <host:port>', "a running QEMU's gdbstub (-gdb tcp::1234, or a unix socket path); may be combined with --qmp")
    .option('--qmp <path|host:port>', "a running QEMU's QMP socket (-qmp unix:PATH,server=on); works while GDB holds the gdbstub")
    .option('--mem-path <file>', 'read guest RAM straight from the file of -object memory-backend-file,mem-path=FILE,share=on (with --gdb or --qmp)')
    .option('--emu <scenario>', 'the bundled emulator, in process: a scenario at its start (pagewalk emu --list names them)')
    .option('--cr3 <value>', 'walk with this CR3 instead of the target\'s')
    .option('--cr0 <value>', 'override CR0')
    .option('--cr4 <value>', 'override CR4')
    .option('--efer <value>', 'override IA32_EFER')
    .addOption(new Option('--mode <mode>', 'set CR0/CR4/EFER for a paging mode: 32-bit, pae, 4-level or 5-level (any case)'))
    .option('--maxphyaddr <bits>', 'the CPU\'s physical address width (default: from the target, else 52)')
    .option('--no-1g-pages', 'the CPU has no 1 GiB pages (PS in a PDPTE is then a reserved bit)')
    .option('--pkru <value>', 'the PKRU register, for protection-key checks')
    .option('--elf <file>', 'kernel ELF whose symbols may be used as addresses');
}

/** Adds only `--json` (commands that need no target). */
export function withJsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of text');
}

/** Opens a session, prints its notes to stderr, runs `fn`, and closes the session whatever happens. */
export async function inSession<T>(run: CliRun, opts: CommonOptions, fn: (s: Session, out: Output) => Promise<T>): Promise<T> {
  const out = new Output(run.io, opts.json === true);
  const session = await openSession(opts);
  try {
    for (const n of session.notes) out.note(n);
    return await fn(session, out);
  } finally {
    await session.close();
  }
}
